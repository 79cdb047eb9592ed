"""tribridge as a Dubbo2 provider: dubbo-ssl-python (a real, unmodified Dubbo consumer)
calls the gateway's ingress, which forwards to our demo provider and to sofa-rpc-node."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from dubbo_ssl.client import DubboClient
from dubbo_ssl.common.exceptions import DubboResponseException
from tribridge.codecs.dubbo import (
    Frame,
    FrameDecoder,
    decode_response,
    encode_heartbeat,
    encode_request,
    encode_response,
    pack_frame,
)
from tribridge.codecs.dubbo.frame import (
    BAD_REQUEST,
    OK,
    SERVER_TIMEOUT,
    SERVICE_ERROR,
    SERVICE_NOT_FOUND,
)
from tribridge.interop.testing import BackgroundLoop

from tests.conftest import free_port
from tests.helpers.dubbo_raw import RawDubbo

S = "com.tribridge.demo.DemoService"
SOFA = "com.tribridge.demo.SofaService"


class _Env:
    bg: BackgroundLoop
    p1: Any  # demo provider, group g1
    p2: Any  # demo provider, group g2
    gw: Any
    port: int


CONFIG = """
registries:
  static:
    type: static
    services:
      {s}: ["127.0.0.1:{p1}?version=1.1.0&group=g1", "127.0.0.1:{p2}?version=1.1.0&group=g2",
            "127.0.0.1:{p0}?version=1.0.0"]
      {sofa}: ["127.0.0.1:{sofa_port}?version=1.0.0"]
      com.tribridge.Dead: ["127.0.0.1:{dead}?version=1.0.0"]
services:
  - {{interface: com.tribridge.Dead, retries: 1}}
dubbo_ingress:
  listen: {{host: 127.0.0.1, port: 0}}
  routes:
    - {{interface: {s}, version: 1.1.0, group: g3, to: local}}
    - {{interface: {s}, version: 1.1.0, group: g1, to: local}}
    - {{interface: {s}, version: 1.0.0, group: "", to: local}}
    - {{interface: {s}, version: 2.0.0, method: "g*", to: local}}
    - {{interface: "com.tribridge.demo.Sofa*", to: local}}
    - {{interface: com.tribridge.Dead, to: local}}
"""


@pytest.fixture(scope="module")
def env(sofa_provider: int) -> Iterator[_Env]:
    e = _Env()
    with BackgroundLoop() as bg:
        e.bg = bg
        p0 = bg.start_provider(version="1.0.0")
        e.p1 = bg.start_provider(version="1.1.0", group="g1")
        e.p2 = bg.start_provider(version="1.1.0", group="g2")
        e.p0 = p0
        e.gw = bg.start_gateway(
            CONFIG.format(
                s=S,
                sofa=SOFA,
                p0=p0.port,
                p1=e.p1.port,
                p2=e.p2.port,
                sofa_port=sofa_provider,
                dead=free_port(),
            )
        )
        e.port = e.gw.relay.ingress.port
        yield e


def client(env: _Env, iface: str = S, group: str | None = None, version: str = "1.0.0") -> Any:
    return DubboClient(iface, group=group, version=version, host=f"127.0.0.1:{env.port}")


def test_dubbo_ssl_python_calls_demo_provider_through_ingress(env: _Env) -> None:
    c = client(env)
    assert c.call("greet", ["Ada"], timeout=5) == "Hello, Ada"
    assert c.call("add", [2, 40], timeout=5) == 42
    before = env.p0.calls
    ctx = {"timeout": "3000", "x-trace-id": "t-123"}
    assert c.call("greet", ["Bob"], context=ctx, timeout=5) == "Hello, Bob"
    assert env.p0.calls == before + 1
    att = env.p0.last_attachments["greet"]
    assert att["x-trace-id"] == "t-123" and att["timeout"] == "3000"
    assert att["path"] == S and att["version"] == "1.0.0"


def test_business_exception_reaches_consumer(env: _Env) -> None:
    with pytest.raises(DubboResponseException, match="IllegalStateException: boom"):
        client(env).call("fail", ["boom"], timeout=5)


def test_routes_by_group_version_and_method(env: _Env) -> None:
    n1, n2 = env.p1.calls, env.p2.calls
    g1 = client(env, group="g1", version="1.1.0")
    assert g1.call("greet", ["g"], timeout=5) == "Hello, g"
    assert (env.p1.calls, env.p2.calls) == (n1 + 1, n2)
    assert env.p1.last_attachments["greet"]["group"] == "g1"
    # g2 has a provider but no route: the ingress does not expose it
    with pytest.raises(DubboResponseException, match="not found"):
        client(env, group="g2", version="1.1.0").call("greet", ["g"], timeout=5)
    # g3 is routed but nobody provides it
    with pytest.raises(DubboResponseException, match="No provider available"):
        client(env, group="g3", version="1.1.0").call("greet", ["g"], timeout=5)
    # version 2.0.0 routes only methods g*; nothing provides 2.0.0
    with pytest.raises(DubboResponseException, match="not found"):
        client(env, version="2.0.0").call("add", [1, 2], timeout=5)
    with pytest.raises(DubboResponseException, match="No provider available"):
        client(env, version="2.0.0").call("greet", ["x"], timeout=5)


def test_unknown_service_is_status_60_with_java_text(env: _Env) -> None:
    with pytest.raises(DubboResponseException, match=r"Service com\.x\.Nope:1\.0\.0 not found"):
        client(env, iface="com.x.Nope").call("m", ["a"], timeout=5)
    raw = RawDubbo("127.0.0.1", env.port)
    try:
        raw.send(encode_request(77, "com.x.Nope", "m", "", [], version="1.0.0"))
        fr = raw.recv()
        assert fr.request_id == 77 and fr.status == SERVICE_NOT_FOUND
        res = decode_response(fr)
        assert "Service com.x.Nope:1.0.0 not found, invocation rejected." in (res.error or "")
    finally:
        raw.close()


def test_sofa_rpc_node_provider_through_ingress(env: _Env) -> None:
    c = client(env, iface=SOFA)
    assert c.call("greet", ["Ada"], timeout=5) == "Hello, Ada"
    assert c.call("add", [2147483647, 1], timeout=5) == -2147483648
    with pytest.raises(DubboResponseException, match="kaput"):
        c.call("fail", ["kaput"], timeout=5)  # sofa: status 80 + message, passed through


def test_heartbeat_bad_body_and_raw_forwarding(env: _Env) -> None:
    raw = RawDubbo("127.0.0.1", env.port)
    try:
        raw.send(encode_heartbeat(-5))
        fr = raw.recv()
        assert (fr.flag, fr.status, fr.request_id, fr.body) == (0x22, OK, -5, b"N")
        raw.send(pack_frame(0xC2, 0, 9, b"\x05hello"))  # truncated request body
        fr = raw.recv()
        assert fr.request_id == 9 and fr.status == BAD_REQUEST
        assert "Fail to decode request" in (decode_response(fr).error or "")
        # a large id on the consumer side comes back unchanged (the gateway rewrote it)
        big = 2**63 - 1
        raw.send(encode_request(big, S, "add", "II", [20, 22], version="1.0.0"))
        fr = raw.recv()
        assert fr.request_id == big and decode_response(fr).value == 42
        # dubbo version 2.0.2 asks for response attachments; the provider decides and
        # the gateway passes the body through: flag 4 with the provider's attachments
        assert fr.body[0] == 0x94
    finally:
        raw.close()


def test_consumer_timeout_attachment_is_applied(env: _Env) -> None:
    raw = RawDubbo("127.0.0.1", env.port)
    try:
        t0 = time.monotonic()
        raw.send(encode_request(1, S, "slow", "I", [3000], {"timeout": "300"}, version="1.0.0"))
        fr = raw.recv(5)
        took = time.monotonic() - t0
        assert fr.status == SERVER_TIMEOUT and 0.25 < took < 2.5
        raw.send(encode_request(2, S, "add", "II", [1, 1], version="1.0.0"))
        assert decode_response(raw.recv()).value == 2  # the connection is still good
    finally:
        raw.close()


def test_unreachable_provider_is_service_error(env: _Env) -> None:
    t0 = time.monotonic()
    with pytest.raises(DubboResponseException, match="cannot connect"):
        client(env, iface="com.tribridge.Dead").call("x", ["y"], timeout=5)
    assert time.monotonic() - t0 < 3
    raw = RawDubbo("127.0.0.1", env.port)
    try:
        raw.send(encode_request(3, "com.tribridge.Dead", "x", "", [], version="1.0.0"))
        assert raw.recv().status == SERVICE_ERROR
    finally:
        raw.close()


# ---- byte-exact forwarding and graceful shutdown (own gateway each) ---------------------


class _Recorder(asyncio.Protocol):
    """A provider stand-in that records the request frames it gets and answers each."""

    frames: list[Frame]

    def __init__(self, frames: list[Frame]) -> None:
        self.frames = frames
        self.dec = FrameDecoder()
        self.t: Any = None

    def connection_made(self, transport: Any) -> None:
        self.t = transport

    def data_received(self, data: bytes) -> None:
        for fr in self.dec.feed(data):
            if fr.is_event:
                continue
            self.frames.append(fr)
            self.t.write(encode_response(fr.request_id, "recorded"))


def test_request_body_is_forwarded_byte_for_byte() -> None:
    frames: list[Frame] = []
    with BackgroundLoop() as bg:

        async def serve() -> Any:
            loop = asyncio.get_running_loop()
            return await loop.create_server(lambda: _Recorder(frames), "127.0.0.1", 0)

        server = bg.run(serve())
        port = server.sockets[0].getsockname()[1]
        gw = bg.start_gateway(
            f"""
registries: {{static: {{type: static, services: {{com.x.Rec: ["127.0.0.1:{port}"]}}}}}}
dubbo_ingress:
  listen: {{host: 127.0.0.1, port: 0}}
  routes: [{{interface: "com.x.*", to: local}}]
"""
        )
        raw = RawDubbo("127.0.0.1", gw.relay.ingress.port)
        try:
            req = encode_request(
                -42,
                "com.x.Rec",
                "m",
                "Ljava/lang/String;J",
                ["a" * 300, 2**40],
                {"timeout": "2500", "token": "s3cret", "k": "v"},
            )
            raw.send(req)
            fr = raw.recv()
            assert fr.request_id == -42 and decode_response(fr).value == "recorded"
            assert len(frames) == 1
            assert frames[0].body == req[16:]  # untouched
            assert frames[0].flag == req[2]
            assert frames[0].request_id != -42  # the gateway's own id upstream
        finally:
            raw.close()
            bg.run(_close(server))


async def _close(server: Any) -> None:
    server.close()


def test_graceful_shutdown_sends_readonly_then_finishes_calls() -> None:
    with BackgroundLoop() as bg:
        p = bg.start_provider(version="1.0.0")
        gw = bg.start_gateway(
            f"""
registries: {{static: {{type: static, services: {{{S}: ["127.0.0.1:{p.port}?version=1.0.0"]}}}}}}
dubbo_ingress:
  listen: {{host: 127.0.0.1, port: 0}}
  routes: [{{interface: "com.tribridge.*", to: local}}]
"""
        )
        ingress = gw.relay.ingress
        raw = RawDubbo("127.0.0.1", ingress.port)
        try:
            raw.send(encode_request(5, S, "slow", "I", [400], version="1.0.0"))
            time.sleep(0.1)
            closing = asyncio.run_coroutine_threadsafe(ingress.close(3.0), bg.loop)
            ev = raw.recv(2)
            assert ev.is_request and ev.is_event and not ev.is_twoway
            assert ev.flag == 0xA2 and ev.body == b"\x01R"  # READONLY, as Java sends it
            fr = raw.recv(3)
            assert fr.request_id == 5 and decode_response(fr).value == "done"
            closing.result(5)
            assert raw.closed_by_peer(2)
        finally:
            raw.close()


def test_idle_consumer_connection_is_closed() -> None:
    with BackgroundLoop() as bg:
        gw = bg.start_gateway(
            """
dubbo_ingress:
  listen: {host: 127.0.0.1, port: 0}
  idle_timeout: 300ms
  routes: [{interface: "*", to: local}]
"""
        )
        raw = RawDubbo("127.0.0.1", gw.relay.ingress.port)
        try:
            raw.send(encode_heartbeat(1))
            assert raw.recv(2).request_id == 1
            t0 = time.monotonic()
            assert raw.closed_by_peer(3)
            assert 0.2 < time.monotonic() - t0 < 2
        finally:
            raw.close()
