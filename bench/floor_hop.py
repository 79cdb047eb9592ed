"""The floor of a Python HTTP -> Dubbo2 hop: the least one uvloop process must do per request.

Not a gateway: one hard-wired route, no routing table, no timeouts, no retries, no security
checks, no tracing, no metrics, no error handling worth the name.  Per request it does only
what any Python hop of this kind cannot avoid: httptools parses the request (no header is
kept), orjson reads the body's ``name``, our compiled hessian2 codec encodes the call from a
pre-encoded template and decodes the reply, orjson writes the JSON answer, and an access
line is appended to a buffer written every 4 KiB (as nginx's ``buffer=4k``).  Calls share one
provider connection, their frames written once per loop iteration (as tribridge does).

``bench/gateway_peers.py`` runs it as the ``floor`` variant beside tribridge and nginx, so
its ratio to nginx bounds what any amount of trimming of tribridge's own per-request work
could reach on this machine with this runtime (docs/benchmarks.md)::

    python bench/floor_hop.py --port 8080 --provider 10.0.0.2:20880 --log /tmp/floor.log
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import httptools
import orjson
import uvloop
from tribridge.codecs.dubbo import FrameDecoder, RequestTemplate, decode_response

SERVICE = "com.tribridge.compat.GreetService"
TEMPLATE = RequestTemplate(SERVICE, "greet", "Ljava/lang/String;", "1.0.0", {"group": "g1"})
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"


class Upstream(asyncio.Protocol):
    """One provider connection: request id -> the HTTP connection waiting for its answer."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.waiting: dict[int, Downstream] = {}
        self.decoder = FrameDecoder()
        self.next_id = 0
        self.out: list[bytes] = []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def call(self, who: Downstream, name: str) -> None:
        self.next_id += 1
        rid = self.next_id
        self.waiting[rid] = who
        if not self.out:
            asyncio.get_running_loop().call_soon(self.flush)
        self.out.append(TEMPLATE.frame(rid, [name]))

    def flush(self) -> None:
        out, self.out = self.out, []
        self.transport.write(b"".join(out))

    def data_received(self, data: bytes) -> None:
        for fr in self.decoder.feed(data):
            who = self.waiting.pop(fr.request_id, None)
            if who is not None:
                who.answer(orjson.dumps(decode_response(fr).value))


class AccessLog:
    def __init__(self, path: str | None) -> None:
        self.file = open(path, "ab", buffering=0) if path else None  # noqa: SIM115
        self.buf: list[bytes] = []
        self.size = 0

    def line(self, method: bytes, url: bytes, status: int, n: int, started: float) -> None:
        if self.file is None:
            return
        ms = (time.monotonic() - started) * 1000
        b = b"%d %s %s %d %d %.3f\n" % (int(time.time()), method, url, status, n, ms)
        self.buf.append(b)
        self.size += len(b)
        if self.size >= 4096:
            self.file.write(b"".join(self.buf))
            self.buf, self.size = [], 0


class Downstream(asyncio.Protocol):
    """One HTTP client connection (keep-alive, no pipelining beyond what wrk does)."""

    def __init__(self, up: Upstream, log: AccessLog) -> None:
        self.up = up
        self.log = log
        self.parser = httptools.HttpRequestParser(self)
        self.transport: Any = None
        self.body = b""
        self.url = b""
        self.started = 0.0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_url(self, url: bytes) -> None:
        self.url = url
        self.started = time.monotonic()

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        name = orjson.loads(self.body)["name"]
        self.body = b""
        self.up.call(self, name)

    def answer(self, body: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(HEAD % len(body) + body)
        self.log.line(self.parser.get_method(), self.url, 200, len(body), self.started)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(port: int, provider: str, log_path: str | None) -> None:
    loop = asyncio.get_running_loop()
    host, _, p = provider.rpartition(":")
    _, up = await loop.create_connection(Upstream, host, int(p))
    log = AccessLog(log_path)
    server = await loop.create_server(lambda: Downstream(up, log), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--provider", required=True, help="host:port of the Dubbo provider")
    ap.add_argument("--log", default=None, help="access log file (none: no access log)")
    a = ap.parse_args()
    uvloop.run(serve(a.port, a.provider, a.log))


if __name__ == "__main__":
    main()
