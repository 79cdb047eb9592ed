"""``tribridge call --stream KIND``: a Triple streaming method from the shell.

Straight to a ``tri://`` provider (Java-interface mode, as ``tribridge call`` does for unary
methods), with the gateway's own codec and client: every message the provider sends is one
NDJSON line on stdout, in order; the stream's error, if any, one JSON error on stderr (exit
1). A server stream takes the JSON argument array; client and bidi streams read one JSON
value per line from stdin (end of input ends the client's side).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from tribridge.codecs.hessian2 import TypeRegistry
from tribridge.errors import GatewayError
from tribridge.invoke.jsonmap import dumps, loads
from tribridge.registries.base import Endpoint
from tribridge.streaming.codecs import WrapperCodec
from tribridge.upstream.triple_call import APP_NAME, TripleCallError, TripleSettings, status_error
from tribridge.upstream.triple_grpcio import TripleClient

#: stdin lines longer than this are refused (one JSON message per line)
MAX_LINE = 8 * 1024 * 1024


def call_stream(
    cfg: Any, target: Any, method: str, values: list[Any], kind: str, timeout: float
) -> int:
    if target.endpoint is None or target.endpoint[2] != "tri":
        sys.stderr.write('{"error":{"code":"bad_target","message":"streams need tri://"}}\n')
        return 2
    host, port, _ = target.endpoint
    m = cfg.methods.get(method)
    codec = WrapperCodec(m.types if m and m.types else [], TypeRegistry(), dumps)
    headers: list[tuple[str, str | bytes]] = [("tri-consumer-appname", APP_NAME)]
    if cfg.version:
        headers.append(("tri-service-version", cfg.version))
    if cfg.group:
        headers.append(("tri-service-group", cfg.group))

    async def main() -> int:
        client = TripleClient(TripleSettings(connect_timeout=min(timeout, 5.0)))
        ep = Endpoint(host, port, "tri")
        path = f"/{cfg.interface}/{method}"
        feeder: asyncio.Future[None] | None = None
        try:
            if kind == "server":
                up = client.stream(ep, path, codec.request(values), headers, timeout)
            else:
                up = client.stream(ep, path, None, headers, timeout)
                feeder = asyncio.ensure_future(_feed(up, codec))
            while (msg := await up.read()) is not None:
                sys.stdout.write(codec.reply(msg).decode() + "\n")
                sys.stdout.flush()
            return 0
        except TripleCallError as e:
            err = status_error(e.status, service=cfg.interface, method=method)
            sys.stderr.write(err.body().decode() + "\n")
            return 1
        except GatewayError as e:
            sys.stderr.write(e.body().decode() + "\n")
            return 1
        finally:
            if feeder is not None and not feeder.done():
                feeder.cancel()
            await client.close()

    return int(asyncio.run(main()))


async def _feed(up: Any, codec: WrapperCodec) -> None:
    """stdin lines (one JSON value each) to the provider, then the end of our side."""
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline, MAX_LINE)
        if not line:
            break
        if line.strip():
            await up.write(codec.element(loads(line)))
    await up.done_writing()


__all__ = ["call_stream"]
