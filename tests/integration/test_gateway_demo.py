"""End to end: HTTP/JSON -> tribridge -> the Python demo provider (our Dubbo2 server)."""

from __future__ import annotations

import socket
import time

import pytest
from tribridge.cli.commands import DEMO_SERVICE as S
from tribridge.cli.commands import demo_config
from tribridge.interop.testing import BackgroundLoop, http_request


@pytest.fixture(scope="module")
def gw(bg: BackgroundLoop, provider) -> int:  # type: ignore[no-untyped-def]
    return bg.start_gateway(demo_config(provider.port, 0)).port


def rpc(gw: int, method: str, args: object, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return http_request(gw, "POST", f"/{S}/{method}", args, headers)


# ---- routes and parameter mapping ------------------------------------------------------------


def test_path_variable(gw: int) -> None:
    assert http_request(gw, "GET", "/hello/world") == (200, "Hello, world")


def test_query_parameters(gw: int) -> None:
    assert http_request(gw, "GET", "/add?a=2&b=40") == (200, 42)


def test_missing_query_parameter(gw: int) -> None:
    status, body = http_request(gw, "GET", "/add?a=2")
    assert status == 400 and "'b'" in body["error"]["message"]


def test_pojo_result_and_enum_name(gw: int) -> None:
    status, body = http_request(gw, "GET", "/users/7")
    assert status == 200
    assert body["class"] == "com.tribridge.demo.User"
    assert body["id"] == 7 and body["age"] == 27 and body["color"] == "GREEN"


def test_whole_body_pojo(gw: int, provider) -> None:  # type: ignore[no-untyped-def]
    status, body = http_request(gw, "POST", "/users", {"id": 1, "name": "Ada", "age": 36})
    assert status == 200 and body["name"] == "Ada" and body["id"] == 1


def test_unknown_pojo_field_is_400(gw: int) -> None:
    status, body = http_request(gw, "POST", "/users", {"id": 1, "nmae": "typo"})
    assert status == 400 and "nmae" in body["error"]["message"]


def test_header_overrides_and_passthrough(gw: int, provider) -> None:  # type: ignore[no-untyped-def]
    status, _ = rpc(gw, "greet", ["x"], {"x-request-id": "req-42", "x-dubbo-timeout": "1500"})
    assert status == 200
    att = provider.last_attachments["greet"]
    assert att["x-request-id"] == "req-42" and att["timeout"] == "1500"
    assert att["path"] == S and att["version"] == "1.0.0"


# ---- Java type families ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "args", "expected"),
    [
        ("greet", ["😀 x"], "Hello, 😀 x"),
        ("add", [2147483647, 0], 2147483647),
        ("addLong", [9007199254740993, 1], 9007199254740994),
        ("addLong", [-(2**63), 0], -(2**63)),
        ("sum", [[1, 2, 3]], 6),
        ("echoBytes", ["AAEC/w=="], "AAEC/w=="),
        ("echoDecimal", ["12345678901234567890.000000001"], "12345678901234567890.000000001"),
        ("echoDate", ["2024-01-02T03:04:05.678Z"], "2024-01-02T03:04:05.678000+00:00"),
        ("echoMap", [{"a": 1, "b": [True, None]}], {"a": 1, "b": [True, None]}),
        ("colorOf", ["BLUE"], "BLUE"),
        ("nextColor", ["BLUE"], "RED"),
        ("noop", [], None),
        ("echoObject", [1.5], 1.5),
    ],
)
def test_type_families(gw: int, method: str, args: list, expected: object) -> None:
    assert rpc(gw, method, args) == (200, expected)


def test_list_of_pojos(gw: int) -> None:
    status, body = rpc(gw, "listUsers", [3])
    assert status == 200 and [u["id"] for u in body] == [1, 2, 3]


def test_type_hint_header_makes_a_long(gw: int, provider) -> None:  # type: ignore[no-untyped-def]
    from tribridge.codecs.hessian2 import Long

    status, _ = rpc(gw, "echoObject", [5], {"x-tribridge-types": "java.lang.Object"})
    assert status == 200
    assert type(provider.last_args["echoObject"][0]) is int
    status, _ = rpc(gw, "addLong", [5, 6])
    assert status == 200
    assert all(type(a) is Long or isinstance(a, int) for a in provider.last_args["addLong"])


# ---- errors --------------------------------------------------------------------------------


def test_provider_exception(gw: int) -> None:
    status, body = rpc(gw, "fail", ["boom"])
    assert status == 500
    assert body["error"]["exception"] == "java.lang.IllegalStateException"
    assert body["error"]["message"] == "boom"


def test_wrong_argument_type(gw: int) -> None:
    status, body = rpc(gw, "add", [1, "two"])
    assert status == 400 and "args[1]" in body["error"]["message"]


def test_int_overflow_is_rejected(gw: int) -> None:
    status, body = rpc(gw, "add", [2**31, 1])
    assert status == 400 and "out of range" in body["error"]["message"]


def test_unknown_service_never_reaches_provider(gw: int, provider) -> None:  # type: ignore[no-untyped-def]
    before = provider.requests
    status, body = http_request(gw, "POST", "/com.evil.Service/run", [])
    assert status == 404 and body["error"]["service"] == "com.evil.Service"
    assert provider.requests == before


def test_unknown_method_is_404(gw: int) -> None:
    status, body = rpc(gw, "nosuch", [1], {"x-tribridge-types": "int"})
    assert status == 404 and body["error"]["method"] == "nosuch"


def test_invalid_json(gw: int) -> None:
    status, body = http_request(gw, "POST", f"/{S}/greet", b"[1,")
    assert status == 400 and body["error"]["code"] == "invalid_json"


def test_no_route(gw: int) -> None:
    assert http_request(gw, "GET", "/nothing/here/at/all")[0] == 404


def test_timeout_then_connection_still_usable(gw: int) -> None:
    status, body = rpc(gw, "slow", [1500], {"x-dubbo-timeout": "150"})
    assert status == 504 and body["error"]["code"] == "upstream_timeout"
    assert rpc(gw, "greet", ["again"]) == (200, "Hello, again")


def test_slow_call_does_not_block_others(gw: int, bg: BackgroundLoop) -> None:
    import threading

    results: dict[str, object] = {}
    t = threading.Thread(target=lambda: results.setdefault("slow", rpc(gw, "slow", [600])))
    t.start()
    time.sleep(0.1)
    t0 = time.perf_counter()
    assert rpc(gw, "greet", ["fast"]) == (200, "Hello, fast")
    assert time.perf_counter() - t0 < 0.4
    t.join(5)
    assert results["slow"] == (200, "done")


def test_provider_killed_mid_request(bg: BackgroundLoop) -> None:
    victim = bg.start_provider(version="1.0.0")
    port = bg.start_gateway(demo_config(victim.port, 0)).port
    import threading

    out: dict[str, object] = {}
    t = threading.Thread(target=lambda: out.setdefault("r", rpc(port, "slow", [3000])))
    t.start()
    time.sleep(0.3)
    bg.run(victim.close(0.0))
    t.join(10)
    status, body = out["r"]  # type: ignore[misc]
    assert status in (502, 503)
    assert body["error"]["code"] in ("connection_lost", "connect_failed")
    # afterwards: a clear 503, fast
    t0 = time.perf_counter()
    status, body = rpc(port, "greet", ["x"])
    assert status == 503 and time.perf_counter() - t0 < 2


def test_readyz_and_healthz(gw: int) -> None:
    assert http_request(gw, "GET", "/healthz")[0] == 200
    status, body = http_request(gw, "GET", "/readyz")
    assert status == 200 and body["ready"] is True


# ---- HTTP behaviour ------------------------------------------------------------------------


def _raw(port: int, payload: bytes, timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                return b"".join(chunks)
            chunks.append(b)


def test_pipelined_requests_answer_in_order(gw: int) -> None:
    reqs = (
        b"".join(
            f"POST /{S}/slow HTTP/1.1\r\nHost: x\r\nContent-Length: {len(str([ms]))}\r\n\r\n{[ms]}".encode()
            for ms in (300, 10, 100)
        )
        + b"GET /hello/last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    out = _raw(gw, reqs)
    assert out.count(b"HTTP/1.1 200") == 4
    assert out.index(b'"done"') < out.index(b'"Hello, last"')


def test_keep_alive_reuses_connection(gw: int) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", gw, timeout=5)
    for i in range(5):
        conn.request("GET", f"/hello/n{i}")
        r = conn.getresponse()
        assert r.status == 200 and r.read() == f'"Hello, n{i}"'.encode()
    conn.close()


def test_malformed_http_gets_400_and_others_unaffected(gw: int) -> None:
    out = _raw(gw, b"NOT HTTP AT ALL\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400")
    assert http_request(gw, "GET", "/hello/ok") == (200, "Hello, ok")


def test_oversized_body_is_413(gw: int) -> None:
    out = _raw(
        gw, f"POST /{S}/greet HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n".encode()
    )
    assert out.startswith(b"HTTP/1.1 413")


def test_chunked_request_body(gw: int) -> None:
    body = b'["chunky"]'
    req = (
        f"POST /{S}/greet HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        f"{3:x}\r\n".encode()
        + body[:3]
        + b"\r\n"
        + f"{len(body) - 3:x}\r\n".encode()
        + body[3:]
        + b"\r\n0\r\n\r\n"
    )
    out = _raw(gw, req)
    assert out.startswith(b"HTTP/1.1 200") and out.endswith(b'"Hello, chunky"')
