"""HttpServer against raw sockets: a real server on an ephemeral 127.0.0.1 port per test."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from tribridge.http.messages import HttpError, HttpLimits, Later, Request, Response
from tribridge.http.server import HttpServer

pytestmark = pytest.mark.timeout(20)

T = 3.0  # upper bound for any single read in these tests


# ----------------------------------------------------------------------------- helpers



async def connect(srv: HttpServer):
    return await asyncio.open_connection("127.0.0.1", srv.port)


async def read_response(reader: asyncio.StreamReader, head: bool = False):
    """One response: (status, headers with lower-cased names, body)."""

    async def go():
        line = await reader.readline()
        if not line:
            raise EOFError("connection closed before a response")
        parts = line.decode("latin-1").split(" ", 2)
        assert parts[0] == "HTTP/1.1", line
        status = int(parts[1])
        headers: dict[str, str] = {}
        while True:
            h = await reader.readline()
            if h in (b"\r\n", b""):
                break
            name, _, value = h.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = b""
        n = int(headers.get("content-length", "0"))
        if n and not head:
            body = await reader.readexactly(n)
        return status, headers, body

    return await asyncio.wait_for(go(), T)


async def expect_closed(reader: asyncio.StreamReader) -> None:
    """The server closed the connection (EOF or reset) without sending anything more."""
    try:
        rest = await asyncio.wait_for(reader.read(), T)
    except ConnectionResetError:
        return
    assert rest == b""


def error_code(body: bytes) -> str:
    doc = json.loads(body)
    assert set(doc) == {"error"} and set(doc["error"]) == {"code", "message"}, doc
    return doc["error"]["code"]


def echo(req: Request) -> Response:
    return Response(
        200,
        json.dumps(
            {
                "method": req.method,
                "path": req.path,
                "query": req.query,
                "body": req.body.decode("latin-1"),
                "headers": req.headers,
                "keep_alive": req.keep_alive,
                "client": list(req.client) if req.client else None,
            }
        ).encode(),
    )


def get(path: str = "/", extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode()


# ----------------------------------------------------------------------------- basics


async def test_simple_get(serve):
    srv = await serve(echo)
    r, w = await connect(srv)
    w.write(get("/a%20b/c?x=1&y=%20", "X-Rep: 1\r\nx-rep: 2\r\n"))
    status, headers, body = await read_response(r)
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "keep-alive"
    assert headers["date"].endswith(" GMT")
    assert int(headers["content-length"]) == len(body)
    doc = json.loads(body)
    assert doc["method"] == "GET"
    assert doc["path"] == "/a b/c"  # percent-decoded
    assert doc["query"] == "x=1&y=%20"  # raw
    assert doc["headers"]["host"] == "t"
    assert doc["headers"]["x-rep"] == "1, 2"
    assert doc["keep_alive"] is True
    assert doc["client"][0] == "127.0.0.1"
    w.close()


async def test_post_body_and_async_handler(serve):
    async def handler(req: Request) -> Response:
        await asyncio.sleep(0)
        return Response(
            201, req.body[::-1], headers=[("X-Len", str(len(req.body)))], content_type="text/plain"
        )

    srv = await serve(handler)
    r, w = await connect(srv)
    w.write(b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
    status, headers, body = await read_response(r)
    assert (status, body) == (201, b"olleh")
    assert headers["x-len"] == "5"
    assert headers["content-type"] == "text/plain"
    w.close()


async def test_handler_may_return_a_future(serve):
    loop = asyncio.get_running_loop()

    def handler(req: Request):
        fut = loop.create_future()
        loop.call_later(0.01, fut.set_result, Response(200, b'"late"'))
        return fut

    srv = await serve(handler)
    r, w = await connect(srv)
    w.write(get() + get())
    assert (await read_response(r))[2] == b'"late"'
    assert (await read_response(r))[2] == b'"late"'
    w.close()


async def test_handler_may_return_a_later(serve):
    """A ``Later`` (the gateway's fast path): answered when another callback resolves it,
    in request order whatever the order of resolution; one already done is answered as a
    Response; a failed one is a 500 and the connection's other answers are untouched."""
    loop = asyncio.get_running_loop()
    laters: dict[str, Later] = {}

    def handler(req: Request) -> Later:
        later = laters[req.path] = Later()
        if req.path == "/now":
            later.resolve(Response(200, b'"now"'))
        return later

    srv = await serve(handler)
    r, w = await connect(srv)
    w.write(get("/a") + get("/now") + get("/bad") + get("/b"))
    await _until(lambda: len(laters) == 4)
    laters["/b"].resolve(Response(200, b'"b"'))  # last first
    laters["/bad"].fail(RuntimeError("the resolver's own failure"))
    loop.call_soon(laters["/a"].resolve, Response(201, b'"a"'))
    got = [(await read_response(r)) for _ in range(4)]
    assert [(s, b) for s, _, b in got[:2]] == [(201, b'"a"'), (200, b'"now"')]
    assert got[2][0] == 500 and error_code(got[2][2]) == "internal"
    assert (got[3][0], got[3][2]) == (200, b'"b"')
    w.close()


async def test_a_later_is_written_inside_the_callback_that_resolves_it(serve):
    """No loop iteration between the resolving callback and the write: the answer is in
    the client's socket before ``resolve`` returns (where a future's callback would wait
    for the next loop pass)."""
    laters: list[Later] = []

    def handler(req: Request) -> Later:
        laters.append(Later())
        return laters[-1]

    srv = await serve(handler)
    with socket.create_connection(("127.0.0.1", srv.port)) as sock:
        sock.sendall(get())
        await _until(lambda: bool(laters))
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            sock.recv(1024)
        laters[0].resolve(Response(200, b'"in time"'))
        assert sock.recv(4096).endswith(b'"in time"')  # no await since resolve()


async def _until(cond, timeout: float = T) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "condition never met"
        await asyncio.sleep(0.005)


async def test_keep_alive_reuses_one_connection(serve):
    seen = []

    def handler(req: Request) -> Response:
        seen.append(req.client)
        return Response(200, req.path.encode())

    srv = await serve(handler)
    r, w = await connect(srv)
    for i in range(5):
        w.write(get(f"/{i}"))
        status, headers, body = await read_response(r)
        assert (status, body, headers["connection"]) == (200, f"/{i}".encode(), "keep-alive")
    assert srv.active_connections == 1
    assert len(set(seen)) == 1 and len(seen) == 5  # same client port each time
    w.close()


async def test_pipelined_responses_keep_request_order(serve):
    finished = []

    async def handler(req: Request) -> Response:
        i = int(req.path[1:])
        await asyncio.sleep((5 - i) * 0.03)  # the first request finishes last
        finished.append(i)
        return Response(200, str(i).encode())

    srv = await serve(handler)
    r, w = await connect(srv)
    w.write(b"".join(get(f"/{i}") for i in range(5)))  # one write
    bodies = [(await read_response(r))[2] for _ in range(5)]
    assert bodies == [b"0", b"1", b"2", b"3", b"4"]
    assert finished == [4, 3, 2, 1, 0]  # handlers did finish out of order
    w.close()


async def test_pipeline_mixes_sync_and_async_handlers(serve):
    async def slow(req):
        await asyncio.sleep(0.05)
        return Response(200, b"slow")

    def handler(req: Request):
        return slow(req) if req.path == "/slow" else Response(200, b"fast")

    srv = await serve(handler)
    r, w = await connect(srv)
    w.write(get("/fast") + get("/slow") + get("/fast") + get("/fast"))
    assert [(await read_response(r))[2] for _ in range(4)] == [b"fast", b"slow", b"fast", b"fast"]
    w.close()


async def test_chunked_body_is_reassembled(serve):
    srv = await serve(echo)
    r, w = await connect(srv)
    w.write(b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
    await w.drain()
    await asyncio.sleep(0.02)
    w.write(b"lo\r\n1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\nX-Trailer: t\r\n\r\n")
    status, _, body = await read_response(r)
    doc = json.loads(body)
    assert status == 200 and doc["body"] == "hello world!"
    assert "x-trailer" not in doc["headers"]
    w.close()


async def test_head_has_no_body(serve):
    srv = await serve(lambda req: Response(200, b"0123456789"))
    r, w = await connect(srv)
    w.write(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n" + get())
    status, headers, body = await read_response(r, head=True)
    assert (status, headers["content-length"], body) == (200, "10", b"")
    # the next response starts right after the HEAD headers: no stray body bytes
    assert (await read_response(r))[2] == b"0123456789"
    w.close()


async def test_expect_100_continue(serve):
    srv = await serve(echo)
    r, w = await connect(srv)
    w.write(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    line = await asyncio.wait_for(r.readline(), T)
    assert line == b"HTTP/1.1 100 Continue\r\n"
    assert await asyncio.wait_for(r.readline(), T) == b"\r\n"
    w.write(b"data")
    status, _, body = await read_response(r)
    assert status == 200 and json.loads(body)["body"] == "data"
    w.close()


async def test_expect_100_continue_refused_when_too_large(serve):
    called = []
    srv = await serve(lambda req: called.append(1) or Response(200), HttpLimits(max_body_bytes=10))
    r, w = await connect(srv)
    w.write(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
    status, headers, body = await read_response(r)  # 413 straight away, no 100
    assert status == 413 and error_code(body) == "body_too_large"
    assert headers["connection"] == "close" and not called
    w.close()


async def test_http10_closes_by_default(serve):
    srv = await serve(echo)
    r, w = await connect(srv)
    w.write(b"GET /old HTTP/1.0\r\n\r\n")
    status, headers, body = await read_response(r)
    assert status == 200 and headers["connection"] == "close"
    assert json.loads(body)["keep_alive"] is False
    await expect_closed(r)


async def test_http10_keep_alive_on_request(serve):
    srv = await serve(echo)
    r, w = await connect(srv)
    for _ in range(2):
        w.write(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        status, headers, _ = await read_response(r)
        assert status == 200 and headers["connection"] == "keep-alive"
    w.close()


async def test_connection_close_ignores_later_pipelined_requests(serve):
    calls = []
    srv = await serve(lambda req: calls.append(req.path) or Response(200))
    r, w = await connect(srv)
    w.write(get("/1", "Connection: close\r\n") + get("/2"))
    status, headers, _ = await read_response(r)
    assert status == 200 and headers["connection"] == "close"
    await expect_closed(r)
    assert calls == ["/1"]


async def test_status_without_body(serve):
    srv = await serve(lambda req: Response(204, b"ignored"))
    r, w = await connect(srv)
    w.write(get() + get())
    for _ in range(2):
        status, headers, body = await read_response(r)
        assert status == 204 and "content-length" not in headers and body == b""
    w.close()


# ----------------------------------------------------------------------------- limits & malformed


async def test_oversized_headers_431(serve):
    srv = await serve(echo, HttpLimits(max_header_bytes=1024))
    r, w = await connect(srv)
    w.write(get("/", "X-Big: " + "a" * 2000 + "\r\n"))
    status, headers, body = await read_response(r)
    assert status == 431 and error_code(body) == "header_too_large"
    assert headers["connection"] == "close"
    await expect_closed(r)


async def test_oversized_headers_trickled_431(serve):
    # headers that never complete: bounded by raw bytes, not by the parser's buffer
    srv = await serve(echo, HttpLimits(max_header_bytes=1024))
    r, w = await connect(srv)
    w.write(b"GET / HTTP/1.1\r\nX-Big: ")
    for _ in range(6):
        await asyncio.sleep(0.01)
        w.write(b"b" * 300)
    status, _, body = await read_response(r)
    assert status == 431 and error_code(body) == "header_too_large"
    await expect_closed(r)


async def test_oversized_content_length_413_without_reading_body(serve):
    called = []
    srv = await serve(
        lambda req: called.append(1) or Response(200), HttpLimits(max_body_bytes=1000)
    )
    r, w = await connect(srv)
    w.write(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n\r\n")  # no body sent
    status, headers, body = await read_response(r)
    assert status == 413 and error_code(body) == "body_too_large"
    assert headers["connection"] == "close" and not called
    await expect_closed(r)


async def test_413_survives_client_still_sending_body(serve):
    srv = await serve(echo, HttpLimits(max_body_bytes=1000))
    r, w = await connect(srv)
    w.write(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 300000\r\n\r\n" + b"x" * 300000)
    status, _, body = await read_response(r)  # not destroyed by a reset
    assert status == 413 and error_code(body) == "body_too_large"
    w.close()


async def test_chunked_body_over_limit_413(serve):
    called = []
    srv = await serve(lambda req: called.append(1) or Response(200), HttpLimits(max_body_bytes=100))
    r, w = await connect(srv)
    w.write(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(3):
        w.write(b"40\r\n" + b"z" * 64 + b"\r\n")
        await asyncio.sleep(0.01)
    status, _, body = await read_response(r)
    assert status == 413 and error_code(body) == "body_too_large"
    assert not called
    await expect_closed(r)


@pytest.mark.parametrize(
    "head",
    [
        "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
        "Content-Length: 3\r\nContent-Length: 3\r\n",
        "Content-Length: 3\r\nContent-Length: 4\r\n",
        "Content-Length: 3, 3\r\n",
        "Content-Length: +3\r\n",
        "Content-Length: -1\r\n",
        "Transfer-Encoding: chunked, gzip\r\n",
    ],
    ids=["cl-te", "te-cl", "dup-cl", "two-cl", "list-cl", "plus-cl", "neg-cl", "te-not-last"],
)
async def test_smuggling_vectors_400_and_close(serve, head):
    called = []
    srv = await serve(lambda req: called.append(1) or Response(200))
    r, w = await connect(srv)
    w.write(f"POST / HTTP/1.1\r\nHost: t\r\n{head}\r\n".encode() + b"3\r\nabc\r\n0\r\n\r\n" + get())
    status, headers, body = await read_response(r)
    assert status == 400 and error_code(body) == "bad_request"
    assert headers["connection"] == "close"
    await expect_closed(r)
    assert not called  # neither the smuggled nor the following request reached the handler


@pytest.mark.parametrize("te", ["gzip", "gzip, chunked", "identity"])
async def test_unsupported_transfer_encoding_501(serve, te):
    srv = await serve(echo)
    r, w = await connect(srv)
    w.write(f"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: {te}\r\n\r\n".encode())
    status, _, body = await read_response(r)
    assert status == 501 and error_code(body) == "not_implemented"
    await expect_closed(r)


@pytest.mark.parametrize(
    "data",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\n\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"hello world\r\n\r\n",
    ],
    ids=["tls", "bad-token", "bare-lf", "version", "text"],
)
async def test_garbage_400_json_and_close(serve, data):
    srv = await serve(echo)
    r, w = await connect(srv)
    w.write(data)
    status, headers, body = await read_response(r)
    assert status == 400 and error_code(body) == "bad_request"
    assert headers["connection"] == "close"
    await expect_closed(r)


async def test_error_after_pipelined_requests_keeps_order(serve):
    async def handler(req):
        await asyncio.sleep(0.05)
        return Response(200, b"ok")

    srv = await serve(handler)
    r, w = await connect(srv)
    w.write(get("/1") + get("/2") + b"BROKEN\r\n\r\n")
    assert (await read_response(r))[:1] == (200,)
    assert (await read_response(r))[:1] == (200,)
    status, headers, body = await read_response(r)
    assert status == 400 and error_code(body) == "bad_request"
    assert headers["connection"] == "close"
    await expect_closed(r)


# ----------------------------------------------------------------------------- timeouts


async def test_slowloris_headers_408_then_close(serve):
    srv = await serve(echo, HttpLimits(header_timeout=0.3))
    r, w = await connect(srv)
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    async def trickle():  # one byte every 20 ms: ~1.2 s, far beyond the 0.3 s limit
        for b in b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 20:
            w.write(bytes((b,)))
            await asyncio.sleep(0.02)

    sender = asyncio.create_task(trickle())
    try:
        status, headers, body = await read_response(r)
    finally:
        sender.cancel()
    elapsed = loop.time() - t0
    assert status == 408 and error_code(body) == "request_timeout"
    assert headers["connection"] == "close"
    assert 0.25 < elapsed < 1.0  # bytes kept arriving, yet the header deadline held
    await expect_closed(r)


async def test_body_timeout_408(serve):
    srv = await serve(echo, HttpLimits(body_timeout=0.2))
    r, w = await connect(srv)
    w.write(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
    status, _, body = await read_response(r)
    assert status == 408 and error_code(body) == "request_timeout"
    await expect_closed(r)


async def test_idle_keep_alive_connection_closed_silently(serve):
    srv = await serve(echo, HttpLimits(idle_timeout=0.2))
    r, w = await connect(srv)
    w.write(get())
    assert (await read_response(r))[0] == 200
    t0 = asyncio.get_running_loop().time()
    await expect_closed(r)  # no 408, just EOF
    assert 0.15 < asyncio.get_running_loop().time() - t0 < 1.0
    assert srv.active_connections == 0


async def test_slow_handler_is_not_a_timeout(serve):
    async def handler(req):
        await asyncio.sleep(0.4)
        return Response(200, b"done")

    srv = await serve(handler, HttpLimits(header_timeout=0.1, body_timeout=0.1, idle_timeout=0.1))
    r, w = await connect(srv)
    w.write(get())
    assert (await read_response(r))[2] == b"done"
    w.close()


async def test_handler_runs_in_a_task_with_its_own_context(serve):
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    async def handler(req: Request) -> Response:
        before = var.get()
        var.set(req.path)  # must not leak into the next request on this connection
        async with asyncio.timeout(1):  # needs a current task
            await asyncio.sleep(0.001)
        return Response(200, before.encode())

    srv = await serve(handler)
    r, w = await connect(srv)
    w.write(get("/a") + get("/b"))
    assert [(await read_response(r))[2] for _ in range(2)] == [b"unset", b"unset"]
    w.close()


async def test_absolute_form_and_upgrade_requests(serve):
    srv = await serve(echo)
    r, w = await connect(srv)
    # absolute-form is its canonical path, and its authority is the Host (RFC 9112 3.2.2)
    w.write(b"GET http://example.com/x%79/?q=1 HTTP/1.1\r\nHost: evil.test\r\n\r\n")
    status, _, body = await read_response(r)
    assert status == 200 and json.loads(body)["path"] == "/xy"
    assert json.loads(body)["query"] == "q=1"
    assert json.loads(body)["headers"]["host"] == "example.com"
    # upgrades are not supported: answered as a plain request, then the connection closes
    w.write(get("/ws", "Connection: Upgrade\r\nUpgrade: websocket\r\n") + b"\x81\x05hello")
    status, headers, _ = await read_response(r)
    assert status == 200 and headers["connection"] == "close"
    await expect_closed(r)


async def test_half_closed_client_still_gets_its_responses(serve):
    async def handler(req):
        await asyncio.sleep(0.05)
        return Response(200, req.path.encode())

    srv = await serve(handler)
    r, w = await connect(srv)
    w.write(get("/1") + get("/2"))
    w.write_eof()
    assert (await read_response(r))[2] == b"/1"
    status, headers, body = await read_response(r)
    assert (status, body, headers["connection"]) == (200, b"/2", "close")
    await expect_closed(r)


# ----------------------------------------------------------------------------- handler failures


async def test_handler_exception_500_and_connection_survives(serve):
    async def handler(req: Request) -> Response:
        if req.path == "/boom":
            raise RuntimeError("secret internals")
        if req.path == "/sync-boom":
            raise ValueError("also secret")
        await asyncio.sleep(0.01)
        return Response(200, b"fine")

    def wrapper(req):
        if req.path == "/sync-boom":
            raise ValueError("also secret")
        return handler(req)

    srv = await serve(wrapper)
    r, w = await connect(srv)
    r2, w2 = await connect(srv)
    w.write(get("/boom"))
    status, headers, body = await read_response(r)
    assert status == 500 and error_code(body) == "internal"
    assert b"secret" not in body and b"Traceback" not in body
    assert headers["connection"] == "keep-alive"
    w.write(get("/sync-boom") + get("/ok"))
    status, _, body = await read_response(r)
    assert status == 500 and b"secret" not in body
    assert (await read_response(r))[:3:2] == (200, b"fine")  # same connection still works
    w2.write(get("/ok"))
    assert (await read_response(r2))[:3:2] == (200, b"fine")  # other connection unaffected
    w.close()
    w2.close()


async def test_bad_handler_results_become_500(serve):
    def handler(req: Request):
        if req.path == "/none":
            return None
        if req.path == "/str-body":
            return Response(200, "not bytes")  # type: ignore[arg-type]
        if req.path == "/inject":
            return Response(200, b"x", headers=[("X-A", "1\r\nSet-Cookie: evil=1")])
        return Response(200, b"ok")

    srv = await serve(handler)
    r, w = await connect(srv)
    w.write(get("/none") + get("/str-body") + get("/inject") + get("/fine"))
    for _ in range(3):
        status, headers, body = await read_response(r)
        assert status == 500 and error_code(body) == "internal"
        assert "set-cookie" not in headers
    assert (await read_response(r))[2] == b"ok"
    w.close()


async def test_async_handler_failures_become_500(serve):
    async def handler(req: Request):
        if req.path == "/none":
            return None
        if req.path == "/cancelled":
            fut = asyncio.get_running_loop().create_future()
            fut.cancel()
            await fut  # CancelledError not caused by the server: an answer, not a hang
        await asyncio.sleep(0)
        return Response(200, b"ok")

    srv = await serve(handler)
    r, w = await connect(srv)
    w.write(get("/none") + get("/cancelled") + get("/fine"))
    for _ in range(2):
        status, _, body = await read_response(r)
        assert status == 500 and error_code(body) == "internal"
    assert (await read_response(r))[2] == b"ok"
    w.close()


async def test_on_error_hook_and_http_error(serve):
    seen = []

    def on_error(req, exc):
        seen.append((req.path, type(exc).__name__))
        return Response(502, b'{"error":{"code":"upstream","message":"m"}}')

    def handler(req):
        raise KeyError("x")

    srv = await serve(handler, on_error=on_error)
    r, w = await connect(srv)
    w.write(get("/h"))
    status, _, body = await read_response(r)
    assert status == 502 and error_code(body) == "upstream"
    assert seen == [("/h", "KeyError")]
    w.close()

    async def raises_http_error(req):
        raise HttpError(404, "not_found", "no route")

    srv2 = await serve(raises_http_error)
    r, w = await connect(srv2)
    w.write(get("/nowhere"))
    status, _, body = await read_response(r)
    assert status == 404 and error_code(body) == "not_found"
    w.close()


async def test_access_log_once_per_response(serve):
    log = []

    async def handler(req):
        await asyncio.sleep(0.02 if req.path == "/slow" else 0)
        if req.path == "/err":
            raise RuntimeError
        return Response(200)

    srv = await serve(
        handler, access_log=lambda req, resp, dt: log.append((req.path, resp.status, dt))
    )
    r, w = await connect(srv)
    w.write(get("/slow") + get("/fast") + get("/err"))
    for _ in range(3):
        await read_response(r)
    assert [(p, s) for p, s, _ in log] == [("/slow", 200), ("/fast", 200), ("/err", 500)]
    assert log[0][2] >= 0.015 and all(dt >= 0 for *_, dt in log)
    w.close()


# ----------------------------------------------------------------------------- back-pressure


async def test_max_pipeline_defers_handlers(serve):
    gate = asyncio.Event()
    started = []

    async def handler(req):
        started.append(req.path)
        await gate.wait()
        return Response(200, req.path.encode())

    srv = await serve(handler, HttpLimits(max_pipeline=2))
    r, w = await connect(srv)
    w.write(b"".join(get(f"/{i}") for i in range(8)))
    await asyncio.sleep(0.1)
    assert started == ["/0", "/1"]  # the rest waits, unread or parsed but not started
    gate.set()
    bodies = [(await read_response(r))[2] for _ in range(8)]
    assert bodies == [f"/{i}".encode() for i in range(8)]
    w.close()


async def test_slow_reader_stops_request_reading(serve):
    calls = []
    big = b"x" * (4 * 1024 * 1024)

    def handler(req):
        calls.append(1)
        return Response(200, big, content_type="application/octet-stream")

    srv = await serve(handler)
    r, w = await connect(srv)
    n = 40
    w.write(b"".join(get(f"/{i}") for i in range(n)))
    await asyncio.sleep(0.3)  # we do not read: transport pauses writing -> server stops reading
    assert len(calls) < n
    for _ in range(n):
        status, _, body = await read_response(r)
        assert status == 200 and len(body) == len(big)
    assert len(calls) == n
    w.close()


# ----------------------------------------------------------------------------- shutdown


async def test_graceful_shutdown_finishes_in_flight_request(serve):
    started = asyncio.Event()

    async def handler(req):
        if req.path == "/slow":
            started.set()
            await asyncio.sleep(0.3)
            return Response(200, b"slow done")
        return Response(200, b"quick")

    srv = await serve(handler)
    port = srv.port
    r_idle, w_idle = await connect(srv)  # idle keep-alive connection
    w_idle.write(get("/q"))
    assert (await read_response(r_idle))[2] == b"quick"
    r, w = await connect(srv)
    w.write(get("/slow"))
    await asyncio.wait_for(started.wait(), T)

    shutdown = asyncio.create_task(srv.shutdown(grace=5))
    await asyncio.sleep(0.05)
    with pytest.raises(OSError):  # no longer accepting
        await asyncio.open_connection("127.0.0.1", port)
    await expect_closed(r_idle)  # idle connection closed at once
    status, headers, body = await read_response(r)
    assert (status, body) == (200, b"slow done")
    assert headers["connection"] == "close"
    await expect_closed(r)
    w.close()  # as a client does on EOF; the server then finishes at once
    await asyncio.wait_for(shutdown, 1.0)
    assert srv.active_connections == 0


async def test_shutdown_grace_expires_aborts(serve):
    async def handler(req):
        await asyncio.sleep(30)
        return Response(200)

    srv = await serve(handler)
    r, w = await connect(srv)
    w.write(get())
    await asyncio.sleep(0.05)
    t0 = asyncio.get_running_loop().time()
    await asyncio.wait_for(srv.shutdown(grace=0.2), T)
    assert asyncio.get_running_loop().time() - t0 < 1.5
    await expect_closed(r)
    assert srv.active_connections == 0


async def test_many_connections_concurrently(serve):
    async def handler(req):
        await asyncio.sleep(0.001)
        return Response(200, req.path.encode())

    srv = await serve(handler)

    async def client(i):
        r, w = await connect(srv)
        for j in range(5):
            w.write(get(f"/{i}/{j}"))
            assert (await read_response(r))[2] == f"/{i}/{j}".encode()
        w.close()

    await asyncio.gather(*(client(i) for i in range(50)))


def test_run_helper_serves_on_uvloop_or_asyncio():
    """``run`` picks uvloop when installed; the server works on whichever loop it gets."""
    from tribridge.http.server import run

    async def main():
        srv = HttpServer(lambda req: Response(200, b"x"))
        await srv.start()
        r, w = await connect(srv)
        w.write(get() + get("/", "Connection: close\r\n"))
        first = await read_response(r)
        second = await read_response(r)
        await expect_closed(r)
        await srv.shutdown(grace=0.5)
        return type(asyncio.get_running_loop()).__module__, first, second

    loop_module, first, second = run(main())
    try:
        import uvloop  # noqa: F401

        assert loop_module.startswith("uvloop")
    except ImportError:
        assert loop_module.startswith("asyncio")
    assert first[0] == second[0] == 200 and second[1]["connection"] == "close"


def test_access_log_times_below_a_millisecond_under_uvloop() -> None:
    """The gateway runs on uvloop, whose ``loop.time()`` counts whole milliseconds: the
    access line's duration must come from a finer clock (a sub-millisecond answer logged as
    0 or 1 ms says nothing)."""
    import uvloop

    durations: list[float] = []

    async def main() -> None:
        srv = HttpServer(lambda req: Response(200), access_log=lambda q, s, dt: durations.append(dt))
        await srv.start("127.0.0.1", 0)
        try:
            r, w = await connect(srv)
            for _ in range(20):
                w.write(get("/"))
                await read_response(r)
            w.close()
        finally:
            await srv.shutdown(grace=0.5)

    uvloop.run(main())
    assert len(durations) == 20
    # whole milliseconds every time: the loop's clock; any fraction: a fine one
    # (to a micro-millisecond: a difference of two millisecond readings is not exact in floats)
    assert any(abs(dt * 1000 - round(dt * 1000)) > 1e-6 for dt in durations), durations
    assert all(0 <= dt < 1.0 for dt in durations)
