"""End to end: HTTP/JSON -> tribridge -> Triple providers (apache-dubbo and grpcio servers
in subprocesses, serving a Java-interface-style service in wrapper mode).

Every gateway test runs with each HTTP/2 client (``upstream.triple_client``: grpcio's
grpc.aio, python-hyper h2, lean): the ``triple_client`` fixture is parametrized."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
from tribridge.codecs.hessian2 import decode, encode
from tribridge.codecs.triple import decode_response_wrapper, encode_request_wrapper
from tribridge.interop.testing import BackgroundLoop, http_request
from tribridge.interop.triple_peers import (
    DEMO_SERVICE,
    RAW_SERVICE,
    SERVICE,
    TriplePeer,
    start_node_server,
    start_peer,
)
from tribridge.statuses import grpc_to_http
from tribridge.upstream.triple import TripleCallError, make_triple_client

from tests.conftest import free_port, tb

METHODS = """
    methods:
      greet: [java.lang.String]
      add: [int, int]
      addLong: [long, long]
      echo: [java.lang.Object]
      names: ["java.lang.String[]"]
      fail: [java.lang.String]
      sleep: {types: [int], timeout: 300ms}
      status: [int, java.lang.String]
      headers: []
"""


CLIENTS = ["grpcio", "h2", "lean"]
#: set by the ``triple_client`` fixture before a test's gateways are configured
CLIENT = {"name": "grpcio"}


@pytest.fixture(scope="module", params=CLIENTS, autouse=True)
def triple_client(request: pytest.FixtureRequest) -> str:
    CLIENT["name"] = request.param
    return request.param


def config(iface: str, urls: list[str], extra: str = "", version: str = "1.0.0") -> str:
    eps = "\n".join(f"        - {u}" for u in urls)
    return f"""
listen: {{host: 127.0.0.1, port: 0}}
upstream: {{triple_client: {CLIENT["name"]}}}
passthrough_headers: [x-request-id, traceid]
registries:
  static:
    type: static
    services:
      {iface}:
{eps}
services:
  - interface: {iface}
    version: "{version}"
    group: blue
    retries: 0
{extra}
auto_routes: {{prefix: /, expose: ["com.tribridge.*"]}}
"""


@pytest.fixture(scope="session")
def dubbo_peer() -> Iterator[TriplePeer]:
    peer = start_peer("dubbo", free_port())
    try:
        yield peer
    finally:
        peer.close()


@pytest.fixture(scope="session")
def dubbo_peer2() -> Iterator[TriplePeer]:
    """A second apache-dubbo server for tests that open their own connections.
    apache-dubbo 3.0.0b1 sends *error* responses on the client connection that was opened
    last (seen with both grpcio, given separate subchannels, and h2 clients), so another
    connection to ``dubbo_peer`` would steal the error replies meant for gw_dubbo."""
    peer = start_peer("dubbo", free_port())
    try:
        yield peer
    finally:
        peer.close()


@pytest.fixture(scope="module")
def bg(triple_client: str) -> Iterator[BackgroundLoop]:
    with BackgroundLoop() as loop:
        yield loop


@pytest.fixture(scope="module")
def gw_dubbo(bg: BackgroundLoop, dubbo_peer: TriplePeer) -> int:
    cfg = config(SERVICE, [f"tri://127.0.0.1:{dubbo_peer.port}/{SERVICE}"], METHODS)
    return bg.start_gateway(cfg).port


@pytest.fixture(scope="module")
def gw_grpc(bg: BackgroundLoop, grpc_peer: TriplePeer) -> int:
    cfg = config(SERVICE, [f"tri://127.0.0.1:{grpc_peer.port}/{SERVICE}"], METHODS)
    return bg.start_gateway(cfg).port


def rpc(port: int, method: str, args: object, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return http_request(port, "POST", f"/{SERVICE}/{method}", args, headers)


# ---- success ---------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["gw_dubbo", "gw_grpc"])
def test_several_types(which: str, request: pytest.FixtureRequest) -> None:
    gw = request.getfixturevalue(which)
    peer = "apache-dubbo" if which == "gw_dubbo" else "grpcio"
    assert rpc(gw, "greet", ["Ada ✓"]) == (200, f"Hello, Ada ✓ (via {peer})")
    assert rpc(gw, "add", [2, 40]) == (200, 42)
    assert rpc(gw, "addLong", [9007199254740993, 1]) == (200, 9007199254740994)
    assert rpc(gw, "names", [["a", "b"]]) == (200, ["A", "B"])
    doc = {"k": [1, 2.5, True, None, "x"], "n": {"m": "v"}}
    assert rpc(gw, "echo", [doc]) == (200, doc)
    assert rpc(gw, "echo", [None]) == (200, None)


def test_generic_invoke_over_triple(bg: BackgroundLoop, dubbo_peer2: TriplePeer) -> None:
    # no signature configured: $invoke with the generic header, argTypes of $invoke
    gw = bg.start_gateway(
        config(SERVICE, [f"tri://127.0.0.1:{dubbo_peer2.port}/{SERVICE}"], "    call: auto")
    ).port
    assert rpc(gw, "greet", ["Bo"]) == (200, "Hello, Bo (via apache-dubbo)")
    assert rpc(gw, "add", [1, 2]) == (200, 3)


def test_raw_bytes_method_through_client(dubbo_peer2: TriplePeer, triple_client: str) -> None:
    async def go() -> bytes:
        c = make_triple_client(triple_client)
        try:
            r = await c.unary(
                ("127.0.0.1", dubbo_peer2.port), f"/{RAW_SERVICE}/reverse", b"abc", {}, 3
            )
            return r.data
        finally:
            await c.close()

    assert asyncio.run(go()) == b"cba"


def test_large_messages_flow_control(gw_grpc: int) -> None:
    # 900 kB each way (the gateway's HTTP body limit is 1 MiB): far past HTTP/2's initial
    # 64 KiB windows and 16 KiB frames, so the clients must send in pieces as
    # WINDOW_UPDATEs arrive and give their receive window back
    big = "x" * (900 * 1024)
    status, body = rpc(gw_grpc, "echo", [big])
    assert status == 200 and body == big


@pytest.fixture(scope="session")
def node_h2() -> Iterator[TriplePeer]:
    peer = start_node_server("h2")
    try:
        yield peer
    finally:
        peer.close()


def test_dubbo_node_wrapper_mode(bg: BackgroundLoop, node_h2: TriplePeer) -> None:
    # @apachedubbo/dubbo-node over h2c, wrapper mode (its protobuf runtime reads the
    # TripleRequestWrapper, hessian.js the arguments); it routes on tri-service-* headers
    cfg = config(
        DEMO_SERVICE,
        [f"tri://127.0.0.1:{node_h2.port}/{DEMO_SERVICE}"],
        "    methods: {greet: [java.lang.String], add: [int, int]}",
        version="",
    ).replace("group: blue", "group: ''")
    gw = bg.start_gateway(cfg).port
    path = f"/{DEMO_SERVICE}"
    assert http_request(gw, "POST", f"{path}/greet", ["nd ✓"]) == (200, "Hello, nd ✓")
    assert http_request(gw, "POST", f"{path}/add", [2147483647, 1]) == (200, -2147483648)
    v2 = {"x-dubbo-version": "2.0.0", "x-dubbo-group": "g2"}
    assert http_request(gw, "POST", f"{path}/greet", ["b"], v2) == (200, "Hello, b v2")
    # no signature for "hello": a generic $invoke, which dubbo-node does not serve
    status, body = http_request(gw, "POST", f"{path}/hello", ["x"])
    assert status == 404 and body["error"]["grpc_status"] == "UNIMPLEMENTED", body


# ---- headers ---------------------------------------------------------------------------------


def test_version_group_appname_and_attachments_seen_by_server(gw_grpc: int) -> None:
    status, body = rpc(gw_grpc, "headers", [], {"traceid": "T-1", "x-request-id": "r9"})
    assert status == 200, body
    assert body["tri-service-version"] == "1.0.0"
    assert body["tri-service-group"] == "blue"
    assert body["tri-consumer-appname"] == "tribridge"
    assert body["traceid"] == "T-1" and body["x-request-id"] == "r9"
    assert "generic" not in body


def test_request_override_headers(gw_grpc: int) -> None:
    status, body = rpc(gw_grpc, "headers", [], {"x-dubbo-version": "2.0.0", "x-dubbo-group": "red"})
    assert status == 200
    assert body["tri-service-version"] == "2.0.0" and body["tri-service-group"] == "red"


def test_trailers_come_back_as_attachments(grpc_peer: TriplePeer, triple_client: str) -> None:
    from tribridge.config.services import ServiceConfig
    from tribridge.config.upstream import UpstreamSettings
    from tribridge.invoke.invoker import Call, Service
    from tribridge.registries.base import Endpoint, ServiceKey, Snapshot
    from tribridge.upstream.pool import PoolSet

    async def go():  # type: ignore[no-untyped-def]
        pools = PoolSet(UpstreamSettings(triple_client=triple_client))
        cfg = ServiceConfig(SERVICE, "1.0.0", retries=0)
        from tribridge.codecs.hessian2 import parse_types
        from tribridge.config.services import MethodConfig

        cfg.methods["greet"] = MethodConfig("greet", parse_types("java.lang.String"))
        svc = Service(cfg, pools)
        svc.update(Snapshot(ServiceKey(SERVICE), (Endpoint("127.0.0.1", grpc_peer.port, "tri"),)))
        try:
            return await svc.invoke(Call("greet", ["z"], attachments={"traceId": "abc"}))
        finally:
            await pools.aclose()

    res = asyncio.run(go())
    assert res.ok and res.value == "Hello, z (via grpcio)"
    assert res.attachments["x-served-by"] == "grpcio"
    assert res.attachments["x-echo"] == b"\x00\xff"
    assert res.attachments["traceid"] == "abc"  # the attachment reached the server


# ---- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["gw_dubbo", "gw_grpc"])
def test_unknown_method_and_service_404(which: str, request: pytest.FixtureRequest) -> None:
    gw = request.getfixturevalue(which)
    # a typed (non-generic) call goes to /{iface}/nope, which the server does not have
    status, body = rpc(gw, "nope", ["x"], {"x-tribridge-types": "java.lang.String"})
    assert status == 404 and body["error"]["code"] == "not_found", body
    assert body["error"]["grpc_status"] == "UNIMPLEMENTED"
    status, body = http_request(gw, "POST", "/com.tribridge.Unknown/x", [])
    assert status == 404


def test_business_exception_500_with_class(gw_grpc: int) -> None:
    status, body = rpc(gw_grpc, "fail", ["boom"])
    assert status == 500, body
    err = body["error"]
    assert err["code"] == "provider_exception"
    assert err["exception"] == "java.lang.IllegalStateException"
    assert err["message"] == "failing on purpose: boom"


def test_server_error_status_apache_dubbo(gw_dubbo: int) -> None:
    # apache-dubbo reports a raised exception as INTERNAL with "Invoke method failed: ..."
    status, body = rpc(gw_dubbo, "fail", ["boom"])
    assert status == 500 and body["error"]["code"] == "provider_error", body
    assert body["error"]["grpc_status"] == "INTERNAL"
    assert "failing on purpose: boom" in body["error"]["message"]


@pytest.mark.parametrize(
    ("code", "http", "name"),
    [
        (3, 400, "INVALID_ARGUMENT"),
        (5, 404, "NOT_FOUND"),
        (7, 403, "PERMISSION_DENIED"),
        (8, 429, "RESOURCE_EXHAUSTED"),
        (13, 500, "INTERNAL"),
        (14, 503, "UNAVAILABLE"),
        (16, 401, "UNAUTHENTICATED"),
        (2, 500, "UNKNOWN"),
        (1, 499, "CANCELLED"),
        (15, 500, "DATA_LOSS"),
        (10, 409, "ABORTED"),
    ],
)
def test_status_table(gw_grpc: int, code: int, http: int, name: str) -> None:
    status, body = rpc(gw_grpc, "status", [code, f"says {name} 100% ✓"])
    assert status == http, body
    assert body["error"]["grpc_status"] == name and body["error"]["grpc_code"] == code
    assert body["error"]["message"] == f"says {name} 100% ✓"
    assert body["error"]["code"] == grpc_to_http(code)[1]  # same table as the IDL path


def test_json_not_fitting_signature_400(gw_grpc: int) -> None:
    status, body = rpc(gw_grpc, "add", ["x", 1])
    assert status == 400 and body["error"]["code"] == "bad_arguments", body
    status, body = rpc(gw_grpc, "add", [1])
    assert status == 400


def test_gadget_class_refused_before_a_triple_call(gw_grpc: int) -> None:
    # the class policy is judged in Service.prepare, before the Triple request is built
    args = [{"a": [{"class": "com.sun.rowset.JdbcRowSetImpl", "dataSourceName": "ldap://x"}]}]
    status, body = rpc(gw_grpc, "echo", args)
    assert status == 400 and body["error"]["code"] == "class_not_allowed", body
    assert body["error"]["rule"] == "deny:com.sun.*"


def test_deadline_504(gw_grpc: int) -> None:
    t = time.monotonic()
    status, body = rpc(gw_grpc, "sleep", [3000])
    assert status == 504 and body["error"]["code"] == "upstream_timeout", body
    assert time.monotonic() - t < 2.8  # deadline 300 ms, the server sleeps 3 s
    assert rpc(gw_grpc, "sleep", [10]) == (200, 10)


def test_deadline_504_apache_dubbo(bg: BackgroundLoop, dubbo_peer2: TriplePeer) -> None:
    # apache-dubbo sleeps on its worker thread (time.sleep): a short sleep, so the next
    # tests on this server do not queue behind it
    gw = bg.start_gateway(
        config(SERVICE, [f"tri://127.0.0.1:{dubbo_peer2.port}/{SERVICE}"], METHODS)
    ).port
    t = time.monotonic()
    status, body = rpc(gw, "sleep", [1200])
    assert status == 504 and body["error"]["code"] == "upstream_timeout", body
    assert time.monotonic() - t < 1.0  # deadline 300 ms
    time.sleep(1.0)  # let the server's sleeping call finish
    assert rpc(gw, "sleep", [10]) == (200, 10)
    assert rpc(gw, "greet", ["after"]) == (200, "Hello, after (via apache-dubbo)")


def test_mixed_dubbo2_and_triple_instances(bg: BackgroundLoop, grpc_peer: TriplePeer) -> None:
    provider = bg.start_provider(version="1.0.0")
    cfg = config(
        DEMO_SERVICE,
        [
            f"dubbo://127.0.0.1:{provider.port}/{DEMO_SERVICE}?version=1.0.0",
            f"tri://127.0.0.1:{grpc_peer.port}/{DEMO_SERVICE}?version=1.0.0",
        ],
        "    loadbalance: roundrobin\n    methods: {greet: [java.lang.String]}",
    ).replace("group: blue", "group: ''")
    gw = bg.start_gateway(cfg).port
    seen = {http_request(gw, "POST", f"/{DEMO_SERVICE}/greet", ["x"])[1] for _ in range(6)}
    assert seen == {"Hello, x", "Hello, x (via grpcio)"}


# ---- provider failures -----------------------------------------------------------------------


def test_killed_mid_call_then_reconnect(bg: BackgroundLoop) -> None:
    # the grpcio server, not apache-dubbo: after an apache-dubbo restart the grpcio client's
    # calls often all hung until their deadline (flaky on main too) -- apache-dubbo 3.0.0b1
    # answers on the connection opened last (see dubbo_peer2), and grpc may open two
    port = free_port()
    peer = start_peer("grpc", port)
    try:
        gw = bg.start_gateway(
            config(
                SERVICE,
                [f"tri://127.0.0.1:{port}/{SERVICE}"],
                # 1 s calls, so the loop below outlives a call that hangs
                METHODS.replace("300ms", "10s") + "    timeout: 1s\n",
            )
        ).port
        assert rpc(gw, "greet", ["a"])[0] == 200
        out: list[tuple[int, object, float]] = []

        def slow() -> None:
            t = time.monotonic()
            s, b = rpc(gw, "sleep", [9000])
            out.append((s, b, time.monotonic() - t))

        th = threading.Thread(target=slow)
        th.start()
        time.sleep(0.5)
        peer.kill()
        th.join(15)
        status, body, took = out[0]
        assert status in (502, 503), body
        assert took < 6.0, took  # the call sleeps 9 s: the gateway did not wait it out
        # while down: fast 503
        t = time.monotonic()
        status, body = rpc(gw, "greet", ["a"])
        assert status == 503 and time.monotonic() - t < 3.0, body
        peer = start_peer("grpc", port)
        deadline = time.monotonic() + 20
        seen = []
        while time.monotonic() < deadline:
            t = time.monotonic()
            status, body = rpc(gw, "greet", ["back"])
            seen.append((status, round(time.monotonic() - t, 2), str(body)[:80]))
            if status == 200:
                break
            time.sleep(0.1)
        assert (status, body) == (200, "Hello, back (via grpcio)"), seen
    finally:
        peer.close()


def test_client_api_errors(grpc_peer: TriplePeer, triple_client: str) -> None:
    async def go() -> list[object]:
        c = make_triple_client(triple_client)
        out: list[object] = []
        try:
            ok = await c.unary(
                ("127.0.0.1", grpc_peer.port),
                f"/{SERVICE}/fail",
                encode_request_wrapper([encode("q")], ["java.lang.String"]),
                [("tri-service-version", "1.0.0")],
                3,
            )
            out.append(ok.exception_code)
            out.append(decode(decode_response_wrapper(ok.data).data)["detailMessage"])
            try:
                await c.unary(("127.0.0.1", free_port()), f"/{SERVICE}/greet", b"", {}, 2)
            except TripleCallError as e:
                out.append((e.status.name, e.sent, e.http[0]))
        finally:
            await c.close()
        return out

    assert asyncio.run(go()) == [3, "failing on purpose: q", ("UNAVAILABLE", False, 503)]


def test_cli_call_triple(grpc_peer: TriplePeer, dubbo_peer2: TriplePeer) -> None:

    r = tb(
        "call", f"tri://127.0.0.1:{grpc_peer.port}/{SERVICE}", "add", "[2, 3]", "--types", "int,int"
    )
    assert (r.returncode, r.stdout.strip()) == (0, "5"), r.stderr
    r = tb("call", f"tri://127.0.0.1:{dubbo_peer2.port}", f"{SERVICE}.greet", '["cli"]')
    assert (r.returncode, r.stdout.strip()) == (0, '"Hello, cli (via apache-dubbo)"'), r.stderr
    r = tb(
        "call", f"tri://127.0.0.1:{grpc_peer.port}/{SERVICE}", "fail", '["x"]', "--types", "String"
    )
    assert r.returncode == 1 and "java.lang.IllegalStateException" in r.stderr


def test_service_protocol_tri_forces_triple(bg: BackgroundLoop, grpc_peer: TriplePeer) -> None:
    from tribridge.config.model import ConfigError, parse_config

    cfg = config(SERVICE, [f"127.0.0.1:{grpc_peer.port}"], "    protocol: tri\n" + METHODS)
    gw = bg.start_gateway(cfg).port
    assert rpc(gw, "add", [20, 22]) == (200, 42)
    with pytest.raises(ConfigError, match="protocol"):
        parse_config(config(SERVICE, ["127.0.0.1:1"], "    protocol: http"), "<t>")
