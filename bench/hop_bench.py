"""The whole hop in one process, without sockets: A/B of the Python work per request.

HTTP request bytes go into the real listener (``HttpConnection``, httptools), through
``Gateway.handle`` and a real provider connection (``DubboConnection``) whose transport answers
every request frame with a real reply frame on the next loop pass, and the answer comes out as
HTTP bytes, the access log on (lines formatted and written to /dev/null in batches).  Fifty
client connections keep one request each in flight, as ``wrk -c50`` does.  What is left out is
the kernel (no socket, no syscall) and the provider's own work, which the socket benchmarks
(``gateway_peers.py``) include and whose noise is larger than most single changes to this path;
so this is the bench for a change to the Python side, and gateway_peers the one for figures.

Each variant is a site directory holding a regular install of one tree, as for
``call_path_bench.py`` (empty: the working tree); rounds alternate between variants, each in a
fresh child process, the order reversed every other round, and the median CPU time per request
per variant is printed::

    pip install --no-deps --no-build-isolation --target /tmp/site-base <tree at the base>
    .venv/bin/python bench/hop_bench.py base=/tmp/site-base new=

The figure includes the bench's own stand-ins (the client feeding requests, the provider
turning request frames into replies: ~1 µs per request), the same for every variant.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu_per_request import alternate_children
from gateway_peers import BODY, HEADERS, PATH, tribridge_config

CHILD = r"""
import asyncio, logging, os, sys, time
from tribridge.codecs.dubbo import encode_response
from tribridge.config.model import parse_config
from tribridge.config.upstream import UpstreamSettings
from tribridge.http.connection import HttpConnection
from tribridge.http.messages import HttpLimits
from tribridge.http.server import HttpServer, run
from tribridge.routing.app import ACCESS_LOGGER, Gateway
from tribridge.upstream import pool as pool_mod
from tribridge.upstream.pool import DubboConnection

CFG = os.environ["HOP_CONFIG"]  # gateway_peers.py's tribridge config, access log on
REQ = os.environ["HOP_REQUEST"].encode("latin-1")  # what wrk sends there
REPLY = encode_response(0, "Hello, world")  # its request id patched per call


class Provider:
    # The provider connection's transport: each written request frame answered with a real
    # reply frame under its id, all of one write in one read on the next loop pass.
    def __init__(self, loop):
        self.loop = loop
        self.conn = None

    def write(self, data):
        out = []
        i, n = 0, len(data)
        while i < n:
            size = int.from_bytes(data[i + 12 : i + 16], "big")
            out.append(REPLY[:4] + data[i + 4 : i + 12] + REPLY[12:])
            i += 16 + size
        self.loop.call_soon(self.conn.data_received, b"".join(out))

    def set_write_buffer_limits(self, high=None, low=None): pass
    def get_write_buffer_size(self): return 0
    def is_closing(self): return False
    def close(self): pass
    def abort(self): pass
    def get_extra_info(self, name, default=None): return default


class Client:
    # One keep-alive client connection's transport: the answer written, the next request
    # goes in on the next loop pass, until the run's budget is spent.
    def __init__(self, run, port):
        self.run = run
        self.port = port
        self.conn = None

    def write(self, data):
        if not data.startswith(b"HTTP/1.1 200 OK\r\n") or not data.endswith(b'"Hello, world"'):
            raise SystemExit(f"unexpected answer: {data[:300]!r}")
        self.run.answered(self)

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", self.port) if name == "peername" else default

    def set_write_buffer_limits(self, high=None, low=None): pass
    def get_write_buffer_size(self): return 0
    def is_closing(self): return False
    def close(self): pass
    def pause_reading(self): pass
    def resume_reading(self): pass


class Run:
    def __init__(self, loop, n):
        self.loop = loop
        self.left = n  # requests still to send
        self.pending = n  # answers still to come
        self.done = loop.create_future()

    def send(self, client):
        if self.left > 0:
            self.left -= 1
            self.loop.call_soon(client.conn.data_received, REQ)

    def answered(self, client):
        self.pending -= 1
        if self.pending == 0:
            self.done.set_result(None)
        else:
            self.send(client)


async def main(n):
    loop = asyncio.get_running_loop()
    log = logging.getLogger(ACCESS_LOGGER)
    handler = logging.StreamHandler(open("/dev/null", "w"))
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    gw = Gateway(parse_config(CFG))
    st = gw.state
    for svc in st.services.values():
        reg = st.registry_for(svc.cfg)
        svc.update(reg.subscribe(svc.cfg.key, svc.update))
    prov = Provider(loop)
    up = DubboConnection(loop, UpstreamSettings())
    prov.conn = up
    up.connection_made(prov)
    pool_mod.InstancePool.ready_connection = lambda self: up
    srv = HttpServer(gw.handle, HttpLimits(), access_log=gw.access)
    srv._loop = loop

    async def one_run(count):
        r = Run(loop, count)
        clients = []
        for i in range(50):
            c = Client(r, 40000 + i)
            conn = HttpConnection(srv)
            c.conn = conn
            conn.connection_made(c)
            clients.append(c)
        for c in clients:
            r.send(c)
        await r.done
        for c in clients:
            c.conn.connection_lost(None)

    await one_run(5000)  # warm up
    best = float("inf")
    for _ in range(5):  # the least of five: CPU steal on a shared machine only adds
        c0 = time.process_time()
        await one_run(n // 5)
        best = min(best, time.process_time() - c0)
    gw.access.flush()
    print(best / (n // 5) * 1e6)


run(main(int(sys.argv[1])))
"""


def main() -> int:
    body = BODY
    head = "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items())
    os.environ["HOP_CONFIG"] = tribridge_config("127.0.0.1:1", 0, access_log=True)
    os.environ["HOP_REQUEST"] = (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n{head}"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    )
    return alternate_children(CHILD, sys.argv[1:], n=40000)


if __name__ == "__main__":
    sys.exit(main())
