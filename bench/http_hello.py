"""Hello-world HttpServer for load tests: ``python bench/http_hello.py PORT [async]``.

Answers every request with a constant JSON body on 127.0.0.1:PORT (uvloop when installed).
With ``async`` the handler is a coroutine (one task per request) instead of returning the
Response directly. Point wrk at it: ``wrk -t1 -c50 -d5s http://127.0.0.1:PORT/``.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from tribridge.http.messages import Request, Response
from tribridge.http.server import HttpServer, run

BODY = b'{"message":"hello"}'


def hello(req: Request) -> Response:
    return Response(200, BODY)


async def hello_async(req: Request) -> Response:
    return Response(200, BODY)


async def main(port: int, use_async: bool) -> None:
    server = HttpServer(hello_async if use_async else hello)
    await server.start("127.0.0.1", port)
    print(
        f"listening on 127.0.0.1:{server.port} loop={type(asyncio.get_running_loop()).__module__}",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.shutdown(grace=1.0)


if __name__ == "__main__":
    run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8080, "async" in sys.argv[2:]))
