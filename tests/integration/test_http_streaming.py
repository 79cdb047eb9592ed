"""The HTTP/1.1 listener's streamed responses (http/streaming.py) against raw sockets:
chunked framing, pipelined requests waiting behind a stream, HTTP/1.0, HEAD, a client that
leaves, a handler that answers after the client left, shutdown, and a 101 switch."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest
from tribridge.cli.commands import DEMO_SERVICE, demo_config
from tribridge.http.messages import Request, Response
from tribridge.http.streaming import StreamResponse, StreamSink
from tribridge.interop.testing import http_request

pytestmark = pytest.mark.timeout(20)

T = 3.0



async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    line = await asyncio.wait_for(reader.readline(), T)
    status = int(line.split()[1])
    headers: dict[str, str] = {}
    while True:
        h = await asyncio.wait_for(reader.readline(), T)
        if h in (b"\r\n", b""):
            return status, headers
        name, _, value = h.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()


async def read_chunks(reader: asyncio.StreamReader) -> list[bytes]:
    """Chunked body: every chunk as sent, until the last (0) chunk."""
    out = []
    while True:
        size = int((await asyncio.wait_for(reader.readline(), T)).strip(), 16)
        if size == 0:
            assert await asyncio.wait_for(reader.readline(), T) == b"\r\n"
            return out
        out.append(await asyncio.wait_for(reader.readexactly(size), T))
        assert await asyncio.wait_for(reader.readexactly(2), T) == b"\r\n"


def ticker(n: int, delay: float = 0.0, log: list[str] | None = None):  # type: ignore[no-untyped-def]
    async def produce(sink: StreamSink) -> None:
        try:
            for i in range(n):
                sink.write(b"tick %d\n" % i)
                await sink.drain()
                if delay:
                    await asyncio.sleep(delay)
        except asyncio.CancelledError:
            if log is not None:
                log.append("cancelled")
            raise

    return produce


async def test_chunked_stream_then_pipelined_request_in_order(serve) -> None:  # type: ignore[no-untyped-def]
    ends: list[object] = []

    def handler(req: Request) -> Response:
        if req.path == "/stream":
            return StreamResponse(
                200, b"", [], "text/plain", produce=ticker(5, 0.01), on_end=ends.append
            )
        return Response(200, b'{"after":true}')

    srv = await serve(handler)
    r, w = await asyncio.open_connection("127.0.0.1", srv.port)
    w.write(b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\nGET /next HTTP/1.1\r\nhost: x\r\n\r\n")
    status, headers = await read_head(r)
    assert status == 200 and headers["transfer-encoding"] == "chunked"
    assert headers["content-type"] == "text/plain" and "content-length" not in headers
    assert await read_chunks(r) == [b"tick %d\n" % i for i in range(5)]
    status, headers = await read_head(r)  # the pipelined request, answered after the stream
    assert status == 200
    assert await r.readexactly(int(headers["content-length"])) == b'{"after":true}'
    assert len(ends) == 1 and isinstance(ends[0], StreamSink) and not ends[0].gone
    w.close()


async def test_http10_stream_is_delimited_by_close(serve) -> None:  # type: ignore[no-untyped-def]
    srv = await serve(lambda req: StreamResponse(200, b"", [], "text/plain", produce=ticker(3)))
    r, w = await asyncio.open_connection("127.0.0.1", srv.port)
    w.write(b"GET / HTTP/1.0\r\n\r\n")
    status, headers = await read_head(r)
    assert status == 200
    assert "transfer-encoding" not in headers and headers["connection"] == "close"
    assert await asyncio.wait_for(r.read(), T) == b"tick 0\ntick 1\ntick 2\n"
    w.close()


async def test_head_sends_no_body_and_runs_no_producer(serve) -> None:  # type: ignore[no-untyped-def]
    ran: list[str] = []

    async def produce(sink: StreamSink) -> None:
        ran.append("ran")

    srv = await serve(lambda req: StreamResponse(200, b"", [], "text/plain", produce=produce))
    r, w = await asyncio.open_connection("127.0.0.1", srv.port)
    w.write(b"HEAD / HTTP/1.1\r\nhost: x\r\n\r\nHEAD / HTTP/1.1\r\nhost: x\r\n\r\n")
    for _ in range(2):
        status, _headers = await read_head(r)
        assert status == 200
    with pytest.raises(TimeoutError):  # no body, not even a last chunk
        await asyncio.wait_for(r.read(1), 0.3)
    w.close()
    assert ran == []


async def test_client_leaving_cancels_the_producer(serve) -> None:  # type: ignore[no-untyped-def]
    log: list[str] = []
    ends: list[object] = []
    srv = await serve(
        lambda req: StreamResponse(
            200, b"", [], "text/plain", produce=ticker(10_000, 0.01, log), on_end=ends.append
        )
    )
    r, w = await asyncio.open_connection("127.0.0.1", srv.port)
    w.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    await read_head(r)
    await asyncio.wait_for(r.readline(), T)
    w.close()
    for _ in range(100):
        if log:
            break
        await asyncio.sleep(0.02)
    assert log == ["cancelled"]
    assert len(ends) == 1 and ends[0].gone  # type: ignore[attr-defined]


async def test_stream_answered_after_the_client_left_is_abandoned(serve) -> None:  # type: ignore[no-untyped-def]
    ends: list[object] = []
    gate = asyncio.Event()

    async def handler(req: Request) -> Response:
        await gate.wait()
        return StreamResponse(200, b"", [], "text/plain", produce=ticker(1), on_end=ends.append)

    srv = await serve(handler)
    _r, w = await asyncio.open_connection("127.0.0.1", srv.port)
    w.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    await asyncio.sleep(0.1)
    sock = w.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    w.transport.abort()  # RST: gone for good (a half-close would still be answered)
    await asyncio.sleep(0.1)
    gate.set()
    for _ in range(50):
        if ends:
            break
        await asyncio.sleep(0.02)
    assert ends == [None]  # on_end(None): never started, its resources released


async def test_shutdown_asks_the_producer_to_end(serve) -> None:  # type: ignore[no-untyped-def]
    async def produce(sink: StreamSink) -> None:
        sink.write(b"first\n")
        await sink.closing
        sink.write(b"bye\n")

    srv = await serve(lambda req: StreamResponse(200, b"", [], "text/plain", produce=produce))
    r, w = await asyncio.open_connection("127.0.0.1", srv.port)
    w.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    await read_head(r)
    stop = asyncio.ensure_future(srv.shutdown(grace=2.0))
    assert await read_chunks(r) == [b"first\n", b"bye\n"]
    assert await asyncio.wait_for(r.read(), T) == b""  # then the connection closes
    await stop
    w.close()


async def test_switching_protocols_hands_over_the_bytes(serve) -> None:  # type: ignore[no-untyped-def]
    async def produce(sink: StreamSink) -> None:
        got = asyncio.Queue()
        sink.listen(got.put_nowait, lambda: got.put_nowait(b""))
        while data := await got.get():
            sink.write(data.upper())

    def handler(req: Request) -> Response:
        return StreamResponse(101, b"", [("upgrade", "shout")], "", produce=produce)

    srv = await serve(handler)
    r, w = await asyncio.open_connection("127.0.0.1", srv.port)
    # the first bytes of the new protocol come in the same packet as the request
    w.write(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: shout\r\n\r\nhello ")
    status, headers = await read_head(r)
    assert status == 101 and headers["upgrade"] == "shout"
    assert headers["connection"].lower() == "upgrade"
    assert await asyncio.wait_for(r.readexactly(6), T) == b"HELLO "
    w.write(b"world")
    assert await asyncio.wait_for(r.readexactly(5), T) == b"WORLD"
    w.close()


def test_a_dubbo2_provider_cannot_stream(tribridge_loop, dubbo_demo_provider) -> None:  # type: ignore[no-untyped-def]
    """Dubbo2 has no streams: asking for one is a clear 501, not a broken call."""
    gw = tribridge_loop.start_gateway(demo_config(dubbo_demo_provider.port, 0))
    status, body = http_request(
        gw.port, "POST", f"/{DEMO_SERVICE}/greet", ["x"], {"accept": "text/event-stream"}
    )
    assert status == 501 and body["error"]["code"] == "streaming_not_supported"
    status, body = http_request(gw.port, "POST", f"/{DEMO_SERVICE}/greet", ["x"])
    assert status == 200  # the same call without Accept: unary, as before
