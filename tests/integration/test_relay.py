"""Relay links between two gateways on 127.0.0.1: mutual TLS, calls from HTTP/JSON and from
a real Dubbo consumer (dubbo-ssl-python), per-call timeouts, a slow service next to fast
ones, link failure with fast errors and backoff, and recovery after a remote restart.
(tests/integration/test_relay_netns.py does the same across real network isolation.)"""

from __future__ import annotations

import itertools
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dubbo_ssl.client import DubboClient
from dubbo_ssl.common.exceptions import DubboResponseException
from tribridge.codecs.dubbo import decode_response, encode_heartbeat, encode_request
from tribridge.codecs.dubbo.frame import SERVICE_ERROR
from tribridge.interop.registration import ZkPublisher, register_demo_provider
from tribridge.interop.testing import BackgroundLoop, http_request
from tribridge.security.certs import make_certs

from tests.conftest import free_port
from tests.helpers.dubbo_raw import RawDubbo

S = "com.tribridge.demo.DemoService"


def b_config(provider_port: int, relay_port: int, certs: Path) -> str:
    return f"""
registries:
  static: {{type: static, services: {{{S}: ["127.0.0.1:{provider_port}?version=1.0.0"]}}}}
relay:
  tls: {{cert: {certs}/server.pem, key: {certs}/server.key, ca: {certs}/ca.pem}}
  listen: {{host: 127.0.0.1, port: {relay_port}}}
  exports: ["com.tribridge.demo.*"]
  allow: [gateway-a]
"""


def a_config(relay_port: int, certs: Path, client: str = "gateway-a") -> str:
    return f"""
registries:
  static: {{type: static, services: {{{S}: ["relay:b"], com.tribridge.Hidden: ["relay:b"]}}}}
relay:
  tls: {{cert: {certs}/{client}.pem, key: {certs}/{client}.key, ca: {certs}/ca.pem}}
  links:
    b: {{address: "127.0.0.1:{relay_port}", server_name: tribridge-relay, heartbeat: 1s}}
services:
  - interface: {S}
    version: 1.0.0
    retries: 0
    methods:
      greet: {{types: [java.lang.String]}}
      slow: {{types: [int]}}
      getUser: {{types: [long]}}
      fail: {{types: [java.lang.String]}}
passthrough_headers: [x-request-id]
auto_routes: {{prefix: /, expose: ["com.tribridge.*"]}}
dubbo_ingress:
  listen: {{host: 127.0.0.1, port: 0}}
  routes:
    - {{interface: "com.tribridge.*", to: "relay:b"}}
"""


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("certs")
    # the CLI, as a user would run it
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tribridge.cli",
            "certs",
            "make",
            str(d),
            "--client",
            "gateway-a",
            "--client",
            "intruder",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "gateway-a:" in out.stdout
    make_certs(d / "other")  # a second, unrelated CA
    return d


class Pair:
    bg: BackgroundLoop
    provider: Any
    a: Any
    b: Any
    relay_port: int

    @property
    def link(self) -> Any:
        return self.a.relay.links["b"]

    def wait_link(self, up: bool = True, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.link.up != up:
            assert time.monotonic() < deadline, f"link not {'up' if up else 'down'}"
            time.sleep(0.02)


@pytest.fixture(scope="module")
def pair(certs: Path) -> Iterator[Pair]:
    p = Pair()
    with BackgroundLoop() as bg:
        p.bg = bg
        p.provider = bg.start_provider(version="1.0.0")
        p.relay_port = free_port()
        p.b = bg.start_gateway(b_config(p.provider.port, p.relay_port, certs))
        p.a = bg.start_gateway(a_config(p.relay_port, certs))
        p.wait_link()
        yield p


def test_http_json_through_relay(pair: Pair) -> None:
    port = pair.a.port
    assert http_request(port, "POST", f"/{S}/greet", ["Ada"]) == (200, "Hello, Ada")
    status, body = http_request(
        port, "POST", f"/{S}/getUser", [7], headers={"x-request-id": "req-7"}
    )
    assert status == 200 and body["id"] == 7 and body["class"] == "com.tribridge.demo.User"
    assert pair.provider.last_attachments["getUser"]["x-request-id"] == "req-7"
    status, body = http_request(port, "POST", f"/{S}/fail", ["nope"])
    assert status == 500 and body["error"]["exception"] == "java.lang.IllegalStateException"


def test_not_exported_service_is_refused_by_remote(pair: Pair) -> None:
    status, body = http_request(pair.a.port, "POST", "/com.tribridge.Hidden/x", ["y"])
    assert status == 404, body
    assert "not exported over the tribridge relay" in body["error"]["message"]


def test_dubbo_consumer_through_relay(pair: Pair) -> None:
    c = DubboClient(S, group=None, version="1.0.0", host=f"127.0.0.1:{pair.a.relay.ingress.port}")
    ctx = {"timeout": "4000", "x-trace-id": "abc"}
    assert c.call("greet", ["Bob"], context=ctx, timeout=5) == "Hello, Bob"
    att = pair.provider.last_attachments["greet"]
    assert att["x-trace-id"] == "abc" and att["timeout"] == "4000"
    assert c.call("add", [40, 2], timeout=5) == 42
    with pytest.raises(DubboResponseException, match="IllegalStateException: bad"):
        c.call("fail", ["bad"], timeout=5)


def test_slow_service_does_not_stall_others_on_the_link(pair: Pair) -> None:
    connects = pair.link.connects
    slow: list[Any] = []
    t = threading.Thread(
        target=lambda: slow.append(http_request(pair.a.port, "POST", f"/{S}/slow", [2000]))
    )
    t0 = time.monotonic()
    t.start()
    time.sleep(0.1)
    worst = 0.0
    for i in range(20):
        s = time.monotonic()
        assert http_request(pair.a.port, "POST", f"/{S}/greet", [f"n{i}"]) == (200, f"Hello, n{i}")
        worst = max(worst, time.monotonic() - s)
    assert not slow, "the slow call finished first: the test proves nothing"
    assert worst < 1.0, f"a fast call waited {worst:.2f}s behind the slow one"
    t.join(10)
    assert slow == [(200, "done")] and time.monotonic() - t0 >= 1.9
    assert pair.link.connects == connects  # all on the one link connection


def test_per_call_timeout_over_the_link(pair: Pair) -> None:
    t0 = time.monotonic()
    status, body = http_request(
        pair.a.port, "POST", f"/{S}/slow", [3000], headers={"x-dubbo-timeout": "300"}
    )
    took = time.monotonic() - t0
    assert status == 504, body
    assert 0.25 < took < 2.5
    assert pair.link.up
    assert http_request(pair.a.port, "POST", f"/{S}/greet", ["x"]) == (200, "Hello, x")


def _tls_client(certs: Path, cert: str | None, ca: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    ctx.check_hostname = False
    if cert is not None:
        ctx.load_cert_chain(certs / f"{cert}.pem", certs / f"{cert}.key")
    return ctx


def _heartbeat_answered(ctx: ssl.SSLContext, port: int) -> bool:
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=3) as raw,
            ctx.wrap_socket(raw, server_hostname="tribridge-relay") as s,
        ):
            s.sendall(encode_heartbeat(1))
            s.settimeout(3)
            return len(s.recv(64)) > 0
    except (OSError, ssl.SSLError):
        return False


def test_relay_listener_requires_an_allowed_client_certificate(pair: Pair, certs: Path) -> None:
    ca = certs / "ca.pem"
    assert _heartbeat_answered(_tls_client(certs, "gateway-a", ca), pair.relay_port)
    assert not _heartbeat_answered(_tls_client(certs, None, ca), pair.relay_port)
    # signed by the right CA but not in relay.allow
    assert not _heartbeat_answered(_tls_client(certs, "intruder", ca), pair.relay_port)
    # a certificate from another CA
    other = _tls_client(certs / "other", "client", ca)
    assert not _heartbeat_answered(other, pair.relay_port)
    # plain TCP gets nothing either
    assert not _heartbeat_answered_plain(pair.relay_port)


def _heartbeat_answered_plain(port: int) -> bool:
    try:
        raw = RawDubbo("127.0.0.1", port, timeout=2)
    except OSError:
        return False
    try:
        raw.send(encode_heartbeat(1))
        raw.recv(2)
        return True
    except (OSError, TimeoutError, ValueError):
        return False
    finally:
        raw.close()


class _Refuser:
    """Accepts TCP and hangs up at once (a dead TLS peer); counts attempts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.times: list[float] = []
        self._stop = False
        self.sock.settimeout(0.05)
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()

    def _loop(self) -> None:
        deadline = time.monotonic() + 60
        while not self._stop and time.monotonic() < deadline:
            try:
                c, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.times.append(time.monotonic())
            c.close()

    def close(self) -> None:
        self._stop = True
        self.t.join(2)
        self.sock.close()


def _linked_pair(
    bg: BackgroundLoop, certs: Path, heartbeat: str = "1s", b_extra: str = "", a_extra: str = ""
) -> tuple[Any, Any, Any, Any]:
    """(gateway A, gateway B, A's link to B, the provider behind B), the link up."""
    provider = bg.start_provider(version="1.0.0")
    relay_port = free_port()
    b = bg.start_gateway(b_config(provider.port, relay_port, certs) + b_extra)
    a = bg.start_gateway(
        a_config(relay_port, certs).replace("heartbeat: 1s", f"heartbeat: {heartbeat}") + a_extra
    )
    link = a.relay.links["b"]
    deadline = time.monotonic() + 10
    while not link.up:
        assert time.monotonic() < deadline, "relay link did not come up"
        time.sleep(0.02)
    return a, b, link, provider


def test_link_down_gives_fast_errors_and_backs_off(certs: Path) -> None:
    refuser = _Refuser()
    try:
        with BackgroundLoop() as bg:
            a = bg.start_gateway(a_config(refuser.port, certs))
            time.sleep(2.0)
            t0 = time.monotonic()
            status, body = http_request(a.port, "POST", f"/{S}/greet", ["x"])
            took = time.monotonic() - t0
            assert status == 503, body
            assert body["error"]["code"] == "relay_link_down"
            assert "relay link 'b'" in body["error"]["message"]
            assert took < 1.0, f"link-down error took {took:.2f}s"
            raw = RawDubbo("127.0.0.1", a.relay.ingress.port)
            try:
                raw.send(
                    encode_request(4, S, "greet", "Ljava/lang/String;", ["x"], version="1.0.0")
                )
                fr = raw.recv(2)
                assert fr.status == SERVICE_ERROR
                assert "relay link 'b'" in (decode_response(fr).error or "")
            finally:
                raw.close()
            attempts = list(refuser.times)
    finally:
        refuser.close()
    # exponential backoff from 0.1 s: about 5 attempts in 2 s (a fixed 0.1 s would be ~20)
    assert 3 <= len(attempts) <= 8, attempts
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps[-1] > 2 * gaps[0], gaps


def test_remote_gateway_restart_and_link_recovers(certs: Path) -> None:
    with BackgroundLoop() as bg:
        provider = bg.start_provider(version="1.0.0")
        relay_port = free_port()
        b = bg.start_gateway(b_config(provider.port, relay_port, certs))
        a = bg.start_gateway(a_config(relay_port, certs))
        link = a.relay.links["b"]
        deadline = time.monotonic() + 10
        while not link.up:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert http_request(a.port, "POST", f"/{S}/greet", ["1"]) == (200, "Hello, 1")
        bg.run(b.stop(1.0))
        deadline = time.monotonic() + 5
        while link.up:
            assert time.monotonic() < deadline, "link still up after the remote stopped"
            time.sleep(0.02)
        t0 = time.monotonic()
        status, body = http_request(a.port, "POST", f"/{S}/greet", ["2"])
        assert status == 503 and body["error"]["code"] == "relay_link_down"
        assert time.monotonic() - t0 < 1.0
        bg.start_gateway(b_config(provider.port, relay_port, certs))  # restarted
        deadline = time.monotonic() + 15
        while True:
            status, body = http_request(a.port, "POST", f"/{S}/greet", ["3"])
            if status == 200:
                break
            assert time.monotonic() < deadline, body
            time.sleep(0.1)
        assert body == "Hello, 3" and link.connects == 2


@pytest.mark.parametrize(("heartbeat", "survives"), [("200ms", True), ("5s", False)])
def test_link_heartbeats_keep_an_idle_link_open(
    certs: Path, heartbeat: str, survives: bool
) -> None:
    """B closes links silent for 600 ms; A's heartbeats (every 200 ms when idle) keep the
    one connection alive, and without them (5 s) B drops it and A reconnects."""
    with BackgroundLoop() as bg:
        provider = bg.start_provider(version="1.0.0")
        relay_port = free_port()
        bg.start_gateway(b_config(provider.port, relay_port, certs) + "  idle_timeout: 600ms\n")
        a = bg.start_gateway(
            a_config(relay_port, certs).replace("heartbeat: 1s", f"heartbeat: {heartbeat}")
        )
        link = a.relay.links["b"]
        deadline = time.monotonic() + 10
        while not link.up:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(2.0)
        assert (link.connects == 1) is survives, link.status()
        assert http_request(a.port, "POST", f"/{S}/greet", ["hb"]) == (200, "Hello, hb")


def test_stopping_the_calling_gateway_lets_relayed_http_calls_finish(certs: Path) -> None:
    with BackgroundLoop() as bg:
        a, _b, link, provider = _linked_pair(bg, certs)
        got: list[Any] = []
        t = threading.Thread(
            target=lambda: got.append(http_request(a.port, "POST", f"/{S}/slow", [600]))
        )
        t.start()
        deadline = time.monotonic() + 5
        while provider.in_flight == 0:  # the call is at the provider, over the link
            assert time.monotonic() < deadline
            time.sleep(0.01)
        bg.run(a.stop(3.0))
        t.join(5)
        assert got == [(200, "done")]
        assert not link.up  # closed with the gateway's pools, after the drain


def test_dubbo_ingress_over_tls_with_dubbo_ssl_python(certs: Path) -> None:
    """dubbo-ssl-python's TLS mode (verify = CA file) against a TLS Dubbo2 ingress."""
    with BackgroundLoop() as bg:
        provider = bg.start_provider(version="1.0.0")
        gw = bg.start_gateway(
            f"""
registries: {{static: {{type: static, services: {{{S}: ["127.0.0.1:{provider.port}?version=1.0.0"]}}}}}}
dubbo_ingress:
  listen: {{host: 127.0.0.1, port: 0}}
  tls: {{cert: {certs}/server.pem, key: {certs}/server.key}}
  routes: [{{interface: "com.tribridge.*", to: local}}]
"""
        )
        port = gw.relay.ingress.port
        c = DubboClient(S, group=None, version="1.0.0", host=f"127.0.0.1:{port}",
                        verify=str(certs / "ca.pem"))  # fmt: skip
        assert c.call("greet", ["tls"], timeout=5) == "Hello, tls"
        assert not _heartbeat_answered_plain(port)  # plain Dubbo2 is not accepted


def test_relay_listener_caps_calls_in_flight_per_link(certs: Path) -> None:
    """``relay.max_in_flight``: calls past the cap on one link are refused at once
    (status 100 -> HTTP 503) while the ones admitted finish."""
    with BackgroundLoop() as bg:
        a, _b, _link, _provider = _linked_pair(bg, certs, b_extra="  max_in_flight: 2\n")
        got: list[Any] = []
        threads = [
            threading.Thread(
                target=lambda: got.append(http_request(a.port, "POST", f"/{S}/slow", [800]))
            )
            for _ in range(2)
        ]
        for t in threads:
            t.start()
        time.sleep(0.3)
        status, body = http_request(a.port, "POST", f"/{S}/greet", ["over"])
        assert status == 503 and body["error"]["code"] == "provider_overloaded", body
        assert "more than 2 calls in flight" in body["error"]["message"]
        for t in threads:
            t.join(10)
        assert got == [(200, "done"), (200, "done")]
        assert http_request(a.port, "POST", f"/{S}/greet", ["after"]) == (200, "Hello, after")


def _slow_call_in_thread(a: Any, ms: int) -> tuple[threading.Thread, list[Any]]:
    got: list[Any] = []
    t = threading.Thread(
        target=lambda: got.append(http_request(a.port, "POST", f"/{S}/slow", [ms]))
    )
    t.start()
    return t, got


def test_link_dropped_with_calls_in_flight_fails_them_fast_and_reconnects(certs: Path) -> None:
    """A network reset under calls in flight: they fail at once (not at their timeout),
    the link reconnects by itself, and new calls succeed."""
    with BackgroundLoop() as bg:
        a, b, link, _provider = _linked_pair(bg, certs)
        calls = [_slow_call_in_thread(a, 5000) for _ in range(3)]
        time.sleep(0.3)
        assert link.active == 3

        async def reset() -> int:
            conns = list(b.relay.relay_server._conns)
            for c in conns:
                c.transport.abort()
            return len(conns)

        t0 = time.monotonic()
        assert bg.run(reset()) == 1  # everything was on the one link connection
        for t, _ in calls:
            t.join(10)
        took = time.monotonic() - t0
        assert took < 2.0, f"calls on the dropped link took {took:.2f}s to fail"
        for _, got in calls:
            ((status, body),) = got
            assert (status, body["error"]["code"]) == (502, "connection_lost"), body
        deadline = time.monotonic() + 10
        while http_request(a.port, "POST", f"/{S}/greet", ["back"]) != (200, "Hello, back"):
            assert time.monotonic() < deadline, "link did not recover after the reset"
            time.sleep(0.1)
        assert link.connects == 2


def test_silent_remote_is_detected_by_heartbeats(certs: Path) -> None:
    """Gateway B stops reading (a hung process, a black-holed route): A's heartbeats go
    unanswered, A closes the link after three silent intervals, fails the call in flight,
    and reconnects."""
    with BackgroundLoop() as bg:
        a, b, link, _provider = _linked_pair(bg, certs, heartbeat="300ms")
        t, got = _slow_call_in_thread(a, 10_000)
        time.sleep(0.2)

        async def hang() -> None:
            for c in list(b.relay.relay_server._conns):
                c.transport.pause_reading()

        t0 = time.monotonic()
        bg.run(hang())
        t.join(15)
        took = time.monotonic() - t0
        ((status, body),) = got
        assert (status, body["error"]["code"]) == (502, "connection_lost"), body
        assert took < 5.0, f"silent link detected after {took:.2f}s"
        deadline = time.monotonic() + 10
        while http_request(a.port, "POST", f"/{S}/greet", ["back"]) != (200, "Hello, back"):
            assert time.monotonic() < deadline, "link did not recover"
            time.sleep(0.1)
        assert link.connects >= 2


def test_remote_resolves_through_its_own_zookeeper(certs: Path, zookeeper: str) -> None:
    """B finds the provider in its own ZooKeeper (Dubbo's URL format); A knows only the
    link. A provider registered while the link is in use is reached without a restart."""
    root = "relay" + uuid.uuid4().hex[:8]
    zk = f"zookeeper://{zookeeper}?root={root}&metadata_root={root}-meta&max_backoff=300ms"
    with (
        BackgroundLoop() as bg,
        ZkPublisher(zookeeper, root=root, metadata_root=root + "-meta") as pub,
    ):
        p1 = bg.start_provider(version="1.0.0", group="g1")
        register_demo_provider(pub, p1)
        relay_port = free_port()
        bg.start_gateway(
            f"""
registries: {{zk: "{zk}"}}
relay:
  tls: {{cert: {certs}/server.pem, key: {certs}/server.key, ca: {certs}/ca.pem}}
  listen: {{host: 127.0.0.1, port: {relay_port}}}
  exports: ["com.tribridge.demo.*"]
"""
        )
        a = bg.start_gateway(a_config(relay_port, certs))
        c1 = DubboClient(S, group="g1", version="1.0.0", host=f"127.0.0.1:{a.relay.ingress.port}")
        assert c1.call("greet", ["zk"], timeout=5) == "Hello, zk"
        assert p1.last_attachments["greet"]["group"] == "g1"
        p2 = bg.start_provider(version="1.0.0", group="g2")
        register_demo_provider(pub, p2)
        c2 = DubboClient(S, group="g2", version="1.0.0", host=f"127.0.0.1:{a.relay.ingress.port}")
        deadline = time.monotonic() + 10
        while True:
            try:
                assert c2.call("greet", ["new"], timeout=5) == "Hello, new"
                break
            except DubboResponseException:
                assert time.monotonic() < deadline, "the new provider never became reachable"
                time.sleep(0.1)
        assert "greet" in p2.last_attachments


def test_relay_link_state_in_metrics_follows_a_live_link(certs: Path) -> None:
    """``tribridge_relay_link_up`` scraped from A (prometheus_client's parser): 1 while
    the link is up, 0 once the remote gateway has stopped."""
    from prometheus_client.parser import text_string_to_metric_families

    def link_up(a: Any) -> float:
        status, raw = http_request(a.port, "GET", "/metrics")
        assert status == 200
        text = raw.decode() if isinstance(raw, bytes) else raw
        for fam in text_string_to_metric_families(text):
            for smp in fam.samples:
                if smp.name == "tribridge_relay_link_up" and smp.labels.get("link") == "b":
                    return smp.value
        raise AssertionError("no tribridge_relay_link_up{link=b} sample")

    with BackgroundLoop() as bg:
        a, b, link, _provider = _linked_pair(bg, certs, a_extra="metrics: {on_main_port: true}\n")
        assert link_up(a) == 1
        bg.run(b.stop(1.0))
        deadline = time.monotonic() + 5
        while link.up:
            assert time.monotonic() < deadline, "link still up after the remote stopped"
            time.sleep(0.02)
        assert link_up(a) == 0


def test_relay_listener_caps_connections(certs: Path) -> None:
    """``relay.max_connections``: a connection past the cap is closed (once its TLS
    handshake is done) while the link already up keeps serving (docs/security.md)."""
    with BackgroundLoop() as bg:
        a, b, _link, _provider = _linked_pair(bg, certs, b_extra="  max_connections: 1\n")
        ctx = _tls_client(certs, "gateway-a", certs / "ca.pem")
        assert not _heartbeat_answered(ctx, b.relay.relay_server.port)
        assert b.relay.relay_server.refused >= 1
        assert http_request(a.port, "POST", f"/{S}/greet", ["still"]) == (200, "Hello, still")
