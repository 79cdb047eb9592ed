"""Bounded resources (issue 21 item 4; docs/security.md "Resource limits").

Each test pushes one attacker past one limit and shows, at the same time, a bystander
served within a bounded time; where memory is the point it is measured (tracemalloc sees
the gateway: it runs on a loop in this process).  Every test fails when its limit is
removed: the attacker is then held (or answered) instead of refused, or memory grows with
the flood.
"""

from __future__ import annotations

import asyncio
import gc
import http.client
import itertools
import socket
import struct
import time
import tracemalloc
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from tribridge.codecs.dubbo import decode_response, encode_heartbeat, encode_request
from tribridge.codecs.dubbo.frame import BAD_REQUEST
from tribridge.config import limits
from tribridge.config.model import ConfigError, parse_config
from tribridge.config.relay import IngressConfig
from tribridge.http.messages import HttpLimits, Response
from tribridge.http.server import HttpServer
from tribridge.ingress.consumer import Consumer
from tribridge.interop.testing import BackgroundLoop, http_request
from tribridge.ops.metrics import make_registry
from tribridge.upstream.triple import TripleCallError, TripleSettings
from tribridge.upstream.triple_h2 import H2TripleClient

from tests.helpers.dubbo_raw import RawDubbo

pytestmark = pytest.mark.timeout(60)

S = "com.tribridge.demo.DemoService"
STALL = "com.evil.Stalled"
HTTP_CAP = 24
INGRESS_CAP = 12
WRITE_HIGH = 16 * 1024
UNREAD_CAP = 256 * 1024
BODY_BUDGET = 3 * 1024 * 1024
FRAME_BUDGET = 1024 * 1024
QUEUED_CAP = 256 * 1024
INGRESS_ELEMENTS = 50_000


class _Stalled(asyncio.Protocol):
    """A provider that accepts and then never reads a byte."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.pause_reading()  # type: ignore[attr-defined]


class Env:
    def __init__(self, bg: BackgroundLoop) -> None:
        self.bg = bg
        good = bg.start_provider(version="1.0.0")

        async def stalled() -> asyncio.Server:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # inherited on accept
            sock.bind(("127.0.0.1", 0))
            return await asyncio.get_running_loop().create_server(_Stalled, sock=sock)

        self.stalled = bg.run(stalled())
        stall_port = self.stalled.sockets[0].getsockname()[1]
        self.gw = bg.start_gateway(f"""
access_log: false
limits: {{max_connections: {HTTP_CAP}, write_buffer_bytes: {WRITE_HIGH},
          max_unread_response_bytes: {UNREAD_CAP}, max_body_bytes: 2097152,
          max_buffered_body_bytes: {BODY_BUDGET}, body_timeout: 5, max_json_elements: 50000}}
upstream: {{write_buffer_bytes: {WRITE_HIGH}, max_queued_bytes: {QUEUED_CAP},
           heartbeat_interval: 60}}
registries:
  static:
    type: static
    services:
      {S}: ["127.0.0.1:{good.port}?version=1.0.0"]
      {STALL}: ["127.0.0.1:{stall_port}"]
services:
  - {{interface: {S}, version: 1.0.0}}
  - {{interface: {STALL}, timeout: 1500ms, retries: 0, methods: {{put: [java.lang.String]}}}}
routes:
  - {{method: GET, path: /good, service: {S}, call: add,
     params: [{{from: const, value: 40, type: int}}, {{from: const, value: 2, type: int}}]}}
  - {{method: POST, path: /stall, service: {STALL}, call: put,
     params: [{{from: body, type: java.lang.String}}]}}
auto_routes: {{prefix: /, expose: ["{S}"]}}
dubbo_ingress:
  listen: {{host: 127.0.0.1, port: 0}}
  routes: [{{interface: "com.tribridge.*", to: local}}]
  max_connections: {INGRESS_CAP}
  write_buffer_bytes: {WRITE_HIGH}
  max_unread_reply_bytes: {UNREAD_CAP}
  max_buffered_frame_bytes: {FRAME_BUDGET}
  frame_timeout: 1s
  max_services: 3
  max_elements: {INGRESS_ELEMENTS}
""")
        self.port = self.gw.http.port
        self.ing = self.gw.relay.ingress
        self.ing_port = self.ing.port

    def loop_cpu(self) -> float:
        """CPU seconds of the gateway's event-loop thread alone: the process's CPU would
        count every other session fixture's threads too."""

        async def now() -> float:
            return time.thread_time()

        return float(self.bg.run(now()))

    def served(self, within: float = 1.5) -> None:
        """The bystander: one HTTP call on a fresh connection, answered in time."""
        t0 = time.monotonic()
        assert http_request(self.port, "GET", "/good", timeout=within + 1) == (200, 42)
        assert time.monotonic() - t0 < within

    def dubbo_served(self, raw: RawDubbo | None = None, within: float = 1.5) -> None:
        """The Dubbo bystander: a call through the ingress, answered in time."""
        own = raw is None
        conn = raw or RawDubbo("127.0.0.1", self.ing_port)
        try:
            t0 = time.monotonic()
            conn.send(encode_request(7, S, "add", "II", [40, 2], version="1.0.0"))
            fr = conn.recv(within)
            assert fr.request_id == 7 and decode_response(fr).value == 42
            assert time.monotonic() - t0 < within
        finally:
            if own:
                conn.close()

    def quiet(self) -> None:
        """Wait until earlier tests' connections are gone from both listeners."""
        assert wait_for(lambda: self.gw.http.active_connections == 0 and not self.ing._conns)


def wait_for(pred: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


def read_all(s: socket.socket, timeout: float = 2.0) -> bytes:
    s.settimeout(timeout)
    out = b""
    try:
        while chunk := s.recv(65536):
            out += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return out


def read_until(s: socket.socket, marker: bytes, timeout: float = 2.0) -> bytes:
    """Read until ``marker`` arrives (or EOF / timeout): a lingering close takes longer."""
    s.settimeout(timeout)
    out = b""
    try:
        while marker not in out and (chunk := s.recv(65536)):
            out += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return out


def non_reader(port: int, conns: Any, ident: Callable[[Any], Any]) -> tuple[socket.socket, Any]:
    """A client that will never read, and the gateway's protocol object for it.

    Both kernels' buffers are shrunk (ours before connecting, the gateway's send buffer
    through its transport) so that the gateway's own buffering shows within the test's
    time budget instead of after megabytes of loopback autotuning."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    me = s.getsockname()
    found: list[Any] = []
    assert wait_for(lambda: bool(found.extend(c for c in list(conns) if ident(c) == me) or found))
    conn = found[0]
    conn.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    return s, conn


def _http_peer(c: Any) -> Any:
    return c.client


def _dubbo_peer(c: Any) -> Any:
    host, _, port = c.peer.rpartition(":")
    return (host, int(port))


def flood(s: socket.socket, chunk: bytes, total: int, seconds: float = 1.5) -> int:
    """Send ``chunk`` repeatedly (non-blocking) until ``total`` bytes or ``seconds``; -> sent."""
    s.setblocking(False)
    sent = 0
    deadline = time.monotonic() + seconds
    while sent < total and time.monotonic() < deadline:
        try:
            sent += s.send(chunk)
        except BlockingIOError:
            time.sleep(0.005)
        except OSError:
            break
    return sent


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    with BackgroundLoop() as bg:
        e = Env(bg)
        yield e
        bg.run(_close(e.stalled))


async def _close(server: asyncio.Server) -> None:
    server.close()


@pytest.fixture
def peak() -> Iterator[Callable[[], int]]:
    """Peak traced memory since the test began (gateway included)."""
    tracemalloc.start()
    yield lambda: tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()


# ---- connection caps -------------------------------------------------------------------------


def test_http_connections_past_the_cap_get_503_and_existing_ones_are_served(env: Env) -> None:
    env.quiet()
    keep = http.client.HTTPConnection("127.0.0.1", env.port, timeout=3)
    hogs: list[socket.socket] = []
    try:
        keep.request("GET", "/good")
        assert keep.getresponse().read() == b"42"
        hogs = [socket.create_connection(("127.0.0.1", env.port)) for _ in range(HTTP_CAP - 1)]
        assert wait_for(lambda: env.gw.http.active_connections == HTTP_CAP)
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", env.port)) as s:
            out = read_all(s)
        assert out.startswith(b"HTTP/1.1 503 "), out[:100]
        assert b"too_many_connections" in out and b"connection: close" in out
        assert time.monotonic() - t0 < 1.0  # promptly, not after a timeout
        assert env.gw.http.refused >= 1
        t0 = time.monotonic()
        keep.request("GET", "/good")  # the bystander's open connection is still served
        assert keep.getresponse().read() == b"42"
        assert time.monotonic() - t0 < 1.0
    finally:
        keep.close()
        for h in hogs:
            h.close()
    assert wait_for(lambda: env.gw.http.active_connections == 0)
    env.served()  # and new connections are welcome again
    _, render = make_registry(env.gw)
    assert b'tribridge_connections_refused_total{listener="http"} 1.0' in render()


def test_connection_cap_keeps_file_descriptors_back(monkeypatch: pytest.MonkeyPatch) -> None:
    assert limits.connection_cap(10_000, 256) <= max(1, (limits.nofile_limit() or 10**9) - 256)
    monkeypatch.setattr(limits, "nofile_limit", lambda: 300)
    assert limits.connection_cap(10_000, 256) == 44  # min(setting, nofile - reserve)
    assert limits.connection_cap(20, 256) == 20
    assert limits.connection_cap(20, 400) == 1
    # a listener reads it at start: RLIMIT_NOFILE 259 less 256 reserved leaves 3
    monkeypatch.setattr(limits, "nofile_limit", lambda: 259)
    with BackgroundLoop() as bg:
        srv = HttpServer(lambda req: Response(200, b"{}"), HttpLimits(max_connections=1000))
        bg.run(srv.start())
        try:
            socks = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(3)]
            assert wait_for(lambda: srv.active_connections == 3)
            with socket.create_connection(("127.0.0.1", srv.port)) as s:
                assert read_all(s).startswith(b"HTTP/1.1 503 ")
            socks[0].sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            socks[0].settimeout(2)
            assert socks[0].recv(100).startswith(b"HTTP/1.1 200 ")
            for s in socks:
                s.close()
        finally:
            bg.run(srv.shutdown(1.0))


def test_ingress_connections_past_the_cap_are_closed_and_existing_ones_served(env: Env) -> None:
    env.quiet()
    keep = RawDubbo("127.0.0.1", env.ing_port)
    hogs: list[socket.socket] = []
    try:
        env.dubbo_served(keep)
        hogs = [socket.create_connection(("127.0.0.1", env.ing_port)) for _ in range(INGRESS_CAP - 1)]
        assert wait_for(lambda: len(env.ing._conns) == INGRESS_CAP)
        t0 = time.monotonic()
        extra = RawDubbo("127.0.0.1", env.ing_port)
        try:
            assert extra.closed_by_peer(1.0)
        except ConnectionResetError:
            pass
        finally:
            extra.close()
        assert time.monotonic() - t0 < 1.0
        assert env.ing.refused >= 1
        env.dubbo_served(keep)
    finally:
        keep.close()
        for h in hogs:
            h.close()
    assert wait_for(lambda: not env.ing._conns)
    env.dubbo_served()
    _, render = make_registry(env.gw)
    assert b'tribridge_connections_refused_total{listener="dubbo_ingress"} 1.0' in render()


# ---- write back-pressure: consumers that never read ----------------------------------------


def test_http_pipelining_flood_without_reads_is_not_read(env: Env, peak: Callable[[], int]) -> None:
    env.quiet()
    req = b"GET /no/such/route HTTP/1.1\r\nHost: t\r\n\r\n"  # answered by the gateway itself
    total = 200_000 * len(req)  # would queue ~40 MB of 404s if the gateway kept reading
    s, conn = non_reader(env.port, env.gw.http._conns, _http_peer)
    try:
        sent = flood(s, req * 2000, total)
        assert wait_for(lambda: not conn.transport.is_reading()), "still reading a non-reader"
        # what it did read: what kernel buffers took of its replies, and one read more
        assert conn.nbegun * len(req) < sent / 2, (conn.nbegun, sent)
        assert conn.transport.get_write_buffer_size() <= UNREAD_CAP
        env.served()
        assert peak() < 16 * 1024 * 1024, peak()
    finally:
        s.close()


def test_http_client_that_never_reads_big_replies_stays_bounded(env: Env) -> None:
    env.quiet()
    body = b'["' + b"x" * 200_000 + b'"]'
    req = (
        f"POST /{S}/echoObject HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    s, _ = non_reader(env.port, env.gw.http._conns, _http_peer)
    try:
        flood(s, req, len(req) * 20, seconds=1.0)  # 20 replies of 200 KB pipelined, none read

        def bounded() -> bool:
            # aborted past max_unread_response_bytes (memory freed), or reading paused before
            # that many replies were due: either way no more than the cap plus one reply is held
            # (which of the two depends on how many requests one read delivered)
            return all(
                c.transport is None  # aborted
                or (
                    not c.transport.is_reading()
                    and c.transport.get_write_buffer_size() <= UNREAD_CAP + len(req)
                )
                for c in list(env.gw.http._conns)
            )

        assert wait_for(bounded, 4.0)
        env.served()
    finally:
        s.close()


def test_dubbo_heartbeat_flood_without_reads_is_not_read(env: Env, peak: Callable[[], int]) -> None:
    env.quiet()
    hb = b"".join(encode_heartbeat(i) for i in range(2000))
    total = 100 * len(hb)  # 200,000 heartbeats
    s, conn = non_reader(env.ing_port, env.ing._conns, _dubbo_peer)
    try:
        flood(s, hb, total)
        assert wait_for(lambda: not conn.transport.is_reading()), "still reading a non-reader"
        assert conn.transport.get_write_buffer_size() <= UNREAD_CAP
        env.dubbo_served()
        env.served()
        assert peak() < 16 * 1024 * 1024, peak()
    finally:
        s.close()


def test_dubbo_consumer_that_never_reads_big_replies_stays_bounded(env: Env) -> None:
    env.quiet()
    req = encode_request(1, S, "echoBytes", "[B", [b"x" * 200_000], version="1.0.0")
    s, _ = non_reader(env.ing_port, env.ing._conns, _dubbo_peer)
    try:
        flood(s, req, len(req) * 20, seconds=1.0)  # 20 replies of 200 KB, none read

        def bounded() -> bool:
            # dropped past max_unread_reply_bytes, or paused before that many were due
            return all(
                not c.transport.is_reading()
                and c.transport.get_write_buffer_size() <= UNREAD_CAP + len(req)
                for c in list(env.ing._conns)
            )

        assert wait_for(bounded, 4.0)
        env.dubbo_served()
    finally:
        s.close()


def test_dubbo_consumer_with_too_many_unread_replies_is_aborted() -> None:
    """The abort itself, deterministically: replies already in flight when reading paused
    keep arriving (up to max_in_flight of them); past the cap the consumer is dropped."""

    class Ingress:
        cfg = IngressConfig(max_unread_reply_bytes=1000, write_buffer_bytes=100)
        label = "test ingress"
        _held = 0

    class Transport:
        def __init__(self) -> None:
            self.size = 0
            self.aborted = False
            self.reading = True

        def write(self, data: bytes) -> None:
            before, self.size = self.size, self.size + len(data)
            if before <= 100 < self.size:
                consumer.pause_writing()

        def get_write_buffer_size(self) -> int:
            return self.size

        def is_closing(self) -> bool:
            return self.aborted

        def abort(self) -> None:
            self.aborted = True

        def pause_reading(self) -> None:
            self.reading = False

        def resume_reading(self) -> None:
            self.reading = True

    consumer = Consumer(Ingress())  # type: ignore[arg-type]
    t = consumer.transport = Transport()
    for _ in range(10):
        consumer._out = [b"r" * 300]
        consumer._flush()
    assert not t.reading and t.aborted
    assert t.size <= 1000 + 300  # at most one reply past the cap


# ---- write back-pressure: a provider that stops reading ------------------------------------


def test_provider_that_stops_reading_fails_fast_with_503(env: Env) -> None:
    big = '"' + "x" * 400_000 + '"'

    def call(_: int) -> tuple[int, Any]:
        return http_request(env.port, "POST", "/stall", big.encode(), timeout=10)

    t0 = time.monotonic()
    with ThreadPoolExecutor(40) as pool:
        futs = [pool.submit(call, i) for i in range(40)]  # 16 MB at once, to a provider reading none
        time.sleep(0.5)
        env.served()  # another provider, same gateway: unaffected
        results = [f.result() for f in futs]
    codes = [body["error"]["code"] if isinstance(body, dict) else body for _, body in results]
    busy = [r for r in results if r[0] == 503]
    assert busy, codes
    assert all(b["error"]["code"] == "upstream_backlogged" for _, b in busy)
    assert all(st in (503, 504) for st, _ in results), codes
    conns = [c for p in env.gw.pools.pools.values() for c in p.conns if p.address.endswith(
        str(env.stalled.sockets[0].getsockname()[1]))]
    assert all(c.transport is None or c.transport.get_write_buffer_size() <= QUEUED_CAP + 500_000
               for c in conns)
    assert time.monotonic() - t0 < 10


def test_triple_provider_that_stops_reading_fails_fast() -> None:
    """HTTP/2 flow control keeps the wire bounded, but every new call's body would wait for
    window in memory until its deadline: past max_queued_bytes calls fail at once, unsent."""

    async def scenario() -> tuple[list[Any], int, float]:
        server = await asyncio.get_running_loop().create_server(_Stalled, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = H2TripleClient(TripleSettings(max_queued_bytes=QUEUED_CAP), engine="lean")
        t0 = time.monotonic()
        try:
            calls = [
                client.unary(("127.0.0.1", port), "/svc/m", b"x" * 100_000, timeout=1.0)
                for _ in range(20)
            ]
            results = await asyncio.gather(*calls, return_exceptions=True)
            conn = next(iter(client._conns.values()), None)
            held = conn.unsent if conn is not None else 0
            return results, held, time.monotonic() - t0
        finally:
            await client.close()
            server.close()

    with BackgroundLoop() as bg:
        results, held, took = bg.run(scenario())
    fast = [r for r in results if isinstance(r, TripleCallError) and not r.sent]
    assert len(fast) >= 10, results  # 20 x 100 KB against a 256 KB cap
    assert all("not reading" in str(r) for r in fast)
    assert held == 0  # timed-out calls let go of their bodies
    assert took < 3


# ---- partial bodies and partial frames -----------------------------------------------------


def test_partial_http_bodies_share_a_budget(env: Env, peak: Callable[[], int]) -> None:
    env.quiet()
    head = f"POST /{S}/greet HTTP/1.1\r\nHost: t\r\nContent-Length: 1500000\r\n\r\n".encode()
    part = b"x" * 1_100_000
    socks: list[socket.socket] = []
    try:
        for _ in range(2):  # 2.2 MB held, under the 3 MB budget: both wait for their rest
            s = socket.create_connection(("127.0.0.1", env.port))
            s.sendall(head + part)
            socks.append(s)
        assert wait_for(lambda: env.gw.http._held == 2 * len(part))
        third = socket.create_connection(("127.0.0.1", env.port))
        socks.append(third)
        third.sendall(head + part)  # would make 3.3 MB: refused
        out = read_until(third, b"}}")
        assert out.startswith(b"HTTP/1.1 503 ") and b"overloaded" in out, out[:200]
        assert env.gw.http._held <= BODY_BUDGET
        env.served()
        r = http_request(env.port, "POST", f"/{S}/greet", ["bystander"], timeout=3)
        assert r == (200, "Hello, bystander")
        # what the gateway holds: the two partial bodies, not the refused third
        assert peak() < 2 * BODY_BUDGET, peak()
        socks[0].sendall(b"y" * (1_500_000 - len(part)))  # an earlier body still completes
        assert read_until(socks[0], b"}}").startswith(b"HTTP/1.1 400 ")  # (not JSON: 400)
    finally:
        for s in socks:
            s.close()
    assert wait_for(lambda: env.gw.http._held == 0)


def test_partial_dubbo_frames_share_a_budget_and_time_out(env: Env) -> None:
    env.quiet()
    head = struct.pack(">HBBqI", 0xDABB, 0xC2, 0, 1, 4_000_000)  # declares 4 MB
    part = b"x" * 400_000
    socks: list[socket.socket] = []
    try:
        for _ in range(2):  # 800 KB held, under the 1 MB budget
            s = socket.create_connection(("127.0.0.1", env.ing_port))
            s.sendall(head + part)
            socks.append(s)
        assert wait_for(lambda: env.ing._held == 2 * len(head + part)), env.ing._held
        third = socket.create_connection(("127.0.0.1", env.ing_port))
        socks.append(third)
        third.sendall(head + part)
        assert read_all(third) == b""  # closed: over the budget
        assert env.ing._held <= FRAME_BUDGET
        env.dubbo_served()
        # half-sent frames do not live past frame_timeout (1 s) either
        t0 = time.monotonic()
        assert read_all(socks[0], 3) == b""
        assert 0.5 < time.monotonic() - t0 < 2.5
    finally:
        for s in socks:
            s.close()
    assert wait_for(lambda: env.ing._held == 0)


def test_partial_frames_are_timed_from_their_own_first_byte(env: Env) -> None:
    """frame_timeout (1 s) bounds one frame, counted from its first byte: a consumer whose
    every write ends one byte into its next frame, while each frame completes within the
    timeout, is served for longer than the timeout; one that trickles a single stuck frame
    a byte at a time is cut, however fresh its last byte."""
    frames = [encode_request(100 + i, S, "add", "II", [i, 1], version="1.0.0") for i in range(12)]
    stream = b"".join(frames)
    cuts = list(itertools.accumulate(len(f) for f in frames))[:-1]
    raw = RawDubbo("127.0.0.1", env.ing_port)
    try:
        start = 0
        t0 = time.monotonic()
        for end in cuts:  # 11 writes, 0.15 s apart: ~1.7 s always inside a frame
            raw.send(stream[start : end + 1])
            start = end + 1
            time.sleep(0.15)
        raw.send(stream[start:])
        assert time.monotonic() - t0 > 1.5  # longer than frame_timeout in all
        got = {}
        for _ in frames:
            fr = raw.recv(3)
            got[fr.request_id] = decode_response(fr).value
        assert got == {100 + i: i + 1 for i in range(12)}
    finally:
        raw.close()
    stuck = socket.create_connection(("127.0.0.1", env.ing_port))
    try:
        frame = encode_request(9, S, "add", "II", [1, 1], version="1.0.0")
        t0 = time.monotonic()
        closed_after = None
        for i in range(len(frame) - 1):  # never the last byte: a byte every 0.1 s
            try:
                stuck.sendall(frame[i : i + 1])
            except OSError:
                closed_after = time.monotonic() - t0
                break
            stuck.settimeout(0.1)
            try:
                if stuck.recv(1) == b"":
                    closed_after = time.monotonic() - t0
                    break
            except TimeoutError:
                pass
            if time.monotonic() - t0 > 4:
                break
        assert closed_after is not None and 0.8 < closed_after < 3.0, closed_after
    finally:
        stuck.close()
    env.dubbo_served()


# ---- the ingress's service cache -----------------------------------------------------------


def test_ingress_service_cache_evicts_least_recently_used(env: Env) -> None:
    raw = RawDubbo("127.0.0.1", env.ing_port)
    try:
        for i in range(6):  # six unknown versions of the service, max_services 3
            raw.send(encode_request(100 + i, S, "add", "II", [1, 2], version=f"9.{i}"))
            fr = raw.recv(5)
            assert fr.request_id == 100 + i and "more than" not in str(fr.body)
        assert len(env.ing.routes.services) <= 3
        assert [k.version for k in env.ing.routes.services][-1] == "9.5"
        env.dubbo_served(raw)  # a new service still gets in (the old code refused it)
        assert len(env.ing.routes.services) <= 3
    finally:
        raw.close()


# ---- CPU per request -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"[[" + b",".join([b"[]"] * 330_000) + b"]]", b"[[" + b",".join([b"0"] * 500_000) + b"]]"],
    ids=["empty-arrays", "zeros"],
)
def test_json_element_count_is_bounded(env: Env, body: bytes) -> None:
    # the test process holds every earlier test's objects; a full collection set off by the
    # body's 330,000 containers would scan them all, which a gateway process does not hold
    gc.collect()
    gc.freeze()
    try:
        cpu = env.loop_cpu()
        st, out = http_request(env.port, "POST", f"/{S}/echoObject", body, timeout=5)
        cpu = env.loop_cpu() - cpu
    finally:
        gc.unfreeze()
    assert st == 400 and out["error"]["code"] == "too_many_elements", (st, str(out)[:200])
    assert "limits.max_json_elements" in out["error"]["message"]
    assert cpu < 0.5, cpu  # ~1-3 s of CPU before the bound
    env.served()


def test_json_under_the_element_bound_is_served(env: Env) -> None:
    body = b"[[" + b",".join([b"0"] * 40_000) + b"]]"
    st, out = http_request(env.port, "POST", f"/{S}/echoObject", body, timeout=10)
    assert st == 200 and len(out) == 40_000


# ---- deeply nested type hints --------------------------------------------------------------


@pytest.mark.parametrize(
    "hint",
    ["java.util.List<" * 900 + "int" + ">" * 900, "int" + "[]" * 6000, "[" * 10_000 + "I",
     "java.util.Map<java.lang.String," * 500 + "int" + ">" * 500],
    ids=["generics", "array-suffixes", "array-descriptor", "maps"],
)
def test_deeply_nested_type_hint_is_400(env: Env, hint: str) -> None:
    st, out = http_request(
        env.port, "POST", f"/{S}/echoObject", [[1]], headers={"x-tribridge-types": hint}
    )
    assert st == 400, (st, str(out)[:200])
    assert "nested deeper than" in out["error"]["message"]
    env.served()


def test_deeply_nested_descriptor_through_the_ingress_is_status_40(env: Env) -> None:
    raw = RawDubbo("127.0.0.1", env.ing_port)
    try:
        raw.send(encode_request(5, S, "echoObject", "[" * 10_000 + "I", [], version="1.0.0"))
        fr = raw.recv(3)
        assert fr.request_id == 5 and fr.status == BAD_REQUEST
        assert b"nested deeper than" in fr.body
        env.dubbo_served(raw)
    finally:
        raw.close()


def test_ingress_element_count_is_bounded_before_decoding_costs_cpu(env: Env) -> None:
    """A body of many tiny values costs decode CPU per value on the listener's loop: past
    ``dubbo_ingress.max_elements`` it is refused (status 40, rule named) without decoding
    the rest, and a call under the bound on the same connection is served."""
    raw = RawDubbo("127.0.0.1", env.ing_port)
    try:
        many = [[] for _ in range(INGRESS_ELEMENTS + 1)]
        raw.send(encode_request(5, S, "echoObject", "Ljava/lang/Object;", [many], version="1.0.0"))
        t0 = time.monotonic()
        fr = raw.recv(3)
        assert fr.request_id == 5 and fr.status == BAD_REQUEST
        assert b"too_many_elements" in fr.body
        assert time.monotonic() - t0 < 1.0
        env.dubbo_served(raw)
        fine = [[] for _ in range(INGRESS_ELEMENTS // 2)]
        raw.send(encode_request(6, S, "echoObject", "Ljava/lang/Object;", [fine], version="1.0.0"))
        fr = raw.recv(5)
        assert fr.request_id == 6 and fr.status == 20, fr.body[:200]
        assert len(decode_response(fr).value) == INGRESS_ELEMENTS // 2
    finally:
        raw.close()
    env.served()


# ---- settings are validated at load --------------------------------------------------------


@pytest.mark.parametrize(
    "yaml_text",
    [
        "limits: {max_connections: 0}",
        "limits: {max_json_elements: -1}",
        "limits: {max_buffered_body_bytes: '1MB'}",
        "limits: {fd_reserve: -5}",
        "limits: {no_such_limit: 1}",
        "upstream: {max_queued_bytes: 10}",
        "dubbo_ingress: {max_services: 0}",
        "dubbo_ingress: {max_elements: 0}",
        "dubbo_ingress: {max_connections: 0}",
        "dubbo_ingress: {frame_timeout: never}",
        "relay: {max_connections: 0}",
    ],
)
def test_limits_are_validated_at_load(yaml_text: str) -> None:
    with pytest.raises(ConfigError):
        parse_config(yaml_text)


def test_limit_defaults_are_sane() -> None:
    cfg = parse_config("{}")
    lim = HttpLimits(**cfg.limits)
    assert lim.max_connections == limits.DEFAULT_MAX_CONNECTIONS
    assert lim.fd_reserve == limits.DEFAULT_FD_RESERVE
    assert lim.max_buffered_body_bytes >= 16 * lim.max_body_bytes
    assert cfg.max_json_elements == limits.DEFAULT_MAX_JSON_ELEMENTS
    assert cfg.upstream.max_queued_bytes >= cfg.upstream.max_payload
    ing = parse_config("dubbo_ingress: {listen: {port: 0}}").dubbo_ingress
    assert ing.max_services == 4096 and ing.frame_timeout == 30.0
    assert ing.max_elements == 200_000
