"""An in-memory call path: the router and the invoker without sockets or threads.

As grpclib's ``testing.ChannelFor`` puts a client and a server on one in-process channel,
``InMemoryPools`` stands where the gateway's ``upstream.pool.PoolSet`` stands and answers
every Dubbo2 call from a Python handler, on the event loop, through the real codecs:

- the request frame the invoker encoded is read by a server-role sans-IO
  ``codecs.dubbo.connection.Connection`` and its body decoded (``decode_request_body``),
  so the handler sees the ``Invocation`` a Java provider would;
- the handler's answer is encoded as a provider encodes it (``encode_response`` /
  ``encode_error_response``) and read back by a client-role ``Connection``, so the invoker
  decodes real reply bytes.

Each address gets an ``InMemoryPool`` (the ``upstream.protocols.UpstreamPool`` the attempt
loop needs) whose faults are scripted per call — a provider that times out, a connection
lost after sending, a backlogged provider, a refused connect — with the pool's own outlier
ejection rules (``eject_after`` / ``eject_seconds``), so retries, deadlines and ejection are
unit tests.  ``open_gateway`` builds a ``routing.app.Gateway`` on such pools and follows its
registries without listening anywhere; ``request`` hands it an HTTP request and awaits the
answer, as the listener would.

Test side only (``tribridge.interop``): production never imports it.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from tribridge.codecs.dubbo import (
    Frame,
    Invocation,
    decode_request_body,
    encode_error_response,
    encode_response,
    java_exception,
)
from tribridge.codecs.dubbo.connection import Connection, Request, Role
from tribridge.codecs.dubbo.connection import Response as DubboResponse
from tribridge.config.model import GatewayConfig, parse_config
from tribridge.config.upstream import UpstreamSettings
from tribridge.http.messages import Request as HttpRequest
from tribridge.http.messages import Response as HttpResponse
from tribridge.registries.base import Endpoint
from tribridge.routing.app import Gateway
from tribridge.upstream.errors import (
    CallTimeout,
    ConnectFailed,
    ConnectionLost,
    UpstreamBusy,
)
from tribridge.upstream.protocols import Waiter


class Fault(enum.Enum):
    """What one call meets instead of the handler's answer."""

    TIMEOUT = "timeout"  # the provider never answers: the call times out
    LOST = "lost"  # the connection drops after the request left
    BUSY = "busy"  # the provider stopped reading: fails fast, never sent


@dataclass
class Thrown(Exception):
    """Raise from a handler: the provider throws ``cls`` (a Java exception reply)."""

    cls: str
    message: str


@dataclass
class Status(Exception):
    """Raise from a handler: a non-OK Dubbo2 status with a message (Java's error reply)."""

    status: int
    message: str


#: a provider: the decoded invocation -> the value it returns (or raise Thrown / Status)
Handler = Callable[[Invocation], Any]


class InMemoryConnection:
    """One 'connection' to an in-memory provider (``UpstreamConnection``)."""

    def __init__(self, pool: InMemoryPool) -> None:
        self.pool = pool
        self.closed = False
        self._client = Connection(Role.CLIENT)
        self._server = Connection(Role.SERVER)
        self.next_id = self._client.next_request_id

    def call(self, request_id: int, frame: bytes, timeout: float) -> asyncio.Future[Frame]:
        fut: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self.send(request_id, frame, timeout, fut)
        return fut

    def send(self, request_id: int, frame: bytes, timeout: float, waiter: Waiter[Frame]) -> None:
        loop = asyncio.get_running_loop()
        pool = self.pool
        pool.calls += 1
        fault = pool.faults.pop(0) if pool.faults else None
        if fault is Fault.BUSY:
            waiter.set_exception(UpstreamBusy("in-memory provider is not reading"))
            return
        reply = self._serve(frame)  # the provider runs (a lost connection: after it ran)
        if fault is Fault.TIMEOUT:
            msg = f"no response from provider within {timeout:g}s"
            loop.call_later(timeout, _fail, waiter, CallTimeout(msg))
        elif fault is Fault.LOST:
            loop.call_soon(_fail, waiter, ConnectionLost("connection to provider closed"))
        else:
            loop.call_soon(self._answer, waiter, reply)

    def send_oneway(self, frame: bytes) -> None:
        self.pool.calls += 1
        self._serve(frame)

    def _serve(self, frame: bytes) -> bytes:
        """The provider's side: frame bytes in, reply bytes out."""
        (ev,) = self._server.receive_data(frame)
        assert type(ev) is Request, ev
        rid = ev.frame.request_id
        inv = decode_request_body(ev.frame.body)
        self.pool.received.append(inv)
        try:
            value = self.pool.handler(inv)
        except Thrown as e:
            return encode_response(rid, exception=java_exception(e.cls, e.message))
        except Status as e:
            return encode_error_response(rid, e.status, e.message)
        return encode_response(rid, value)

    def _answer(self, waiter: Waiter[Frame], reply: bytes) -> None:
        (ev,) = self._client.receive_data(reply)
        assert type(ev) is DubboResponse, ev
        if not waiter.done():
            waiter.set_result(ev.frame)


def _fail(waiter: Waiter[Frame], exc: BaseException) -> None:
    if not waiter.done():
        waiter.set_exception(exc)


class InMemoryPool:
    """One provider address (``UpstreamPool``): its handler, scripted faults, and the
    same consecutive-failure ejection as ``upstream.pool.InstancePool``."""

    def __init__(self, address: str, handler: Handler | None, settings: UpstreamSettings):
        self.address = address
        self.handler: Handler = handler or _unreachable
        #: no handler: nothing listens there (every connect is refused)
        self.down = handler is None
        self.settings = settings
        self.tls: Any = None
        self.active = 0
        self.failures = 0
        self.ejected_until = 0.0
        #: faults for the next calls, in order (None: answer normally)
        self.faults: list[Fault | None] = []
        #: calls that reached the provider's side, and what it decoded
        self.calls = 0
        self.connects = 0
        self.received: list[Invocation] = []
        self.conns: list[InMemoryConnection] = []
        self.readonly = False

    def available(self, now: float) -> bool:
        return now >= self.ejected_until and not self.readonly

    def ready_connection(self) -> InMemoryConnection | None:
        return self.conns[0] if self.conns else None

    async def connection(self) -> InMemoryConnection:
        if self.down:
            self.record_failure()  # as InstancePool counts a refused connect
            raise ConnectFailed(f"cannot connect to {self.address}: connection refused")
        if not self.conns:
            self.connects += 1
            self.conns.append(InMemoryConnection(self))
        return self.conns[0]

    def record_failure(self) -> None:
        self.failures += 1
        if self.failures >= self.settings.eject_after:
            self.ejected_until = time.monotonic() + self.settings.eject_seconds
            self.failures = 0

    def record_success(self) -> None:
        self.failures = 0

    def close(self) -> None:
        self.conns = []

    def status(self) -> dict[str, object]:
        return {"address": self.address, "calls": self.calls, "active": self.active}


def _unreachable(inv: Invocation) -> Any:
    raise AssertionError(f"a call reached an address nobody serves: {inv.path}.{inv.method}")


class InMemoryPools:
    """Stands for ``upstream.pool.PoolSet``: one ``InMemoryPool`` per provider address.

    ``providers`` maps ``host:port`` to its handler; an address without one refuses every
    connect.  Dubbo2 only: a Triple endpoint fails the test that routes to it."""

    def __init__(
        self, providers: Mapping[str, Handler], settings: UpstreamSettings | None = None
    ) -> None:
        self.settings = settings or UpstreamSettings()
        self.providers = dict(providers)
        self.pools: dict[str, InMemoryPool] = {}
        self.relay_links: dict[str, Any] = {}

    def get(self, ep: Endpoint, tls: Any = None) -> InMemoryPool:
        key = f"{ep.host}:{ep.port}"
        pool = self.pools.get(key)
        if pool is None:
            pool = InMemoryPool(key, self.providers.get(key), self.settings)
            self.pools[key] = pool
        return pool

    def __getitem__(self, address: str) -> InMemoryPool:
        """The pool of ``host:port`` (created if no call has gone there yet)."""
        host, _, port = address.rpartition(":")
        return self.get(Endpoint(host, int(port)))

    def triple_client(self) -> Any:
        raise NotImplementedError("the in-memory harness serves Dubbo2 providers only")

    http1_client = triple_client

    def close(self) -> None:
        for p in self.pools.values():
            p.close()

    async def aclose(self) -> None:
        self.close()


def open_gateway(
    config: str | GatewayConfig, providers: Mapping[str, Handler]
) -> tuple[Gateway, InMemoryPools]:
    """A gateway whose calls go to ``providers`` (``host:port`` -> handler), following its
    registries (static ones answer at once) without listening on any port."""
    cfg = parse_config(config, "<harness>") if isinstance(config, str) else config
    pools = InMemoryPools(providers, cfg.upstream)
    gw = Gateway(cfg, pools=pools)  # type: ignore[arg-type]
    st = gw.state
    for svc in st.services.values():
        reg = st.registry_for(svc.cfg)
        if reg is not None:
            svc.registry = reg
            snap = reg.subscribe(svc.cfg.key, svc.update)
            if snap is not None:
                svc.update(snap)
    return gw, pools


async def request(
    gw: Gateway,
    method: str,
    path: str,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
) -> HttpResponse:
    """Hand ``gw`` one HTTP request (``body``: bytes, or a value sent as JSON) and await
    its answer, as the listener would."""
    raw = body if isinstance(body, bytes) else b"" if body is None else orjson.dumps(body)
    p, _, query = path.partition("?")
    h = {k.lower(): v for k, v in (headers or {}).items()}
    out = gw.handle(HttpRequest(method, p, query, h, raw, ("127.0.0.1", 1), True))
    if inspect.isawaitable(out):
        out = await out
    assert isinstance(out, HttpResponse), out
    return out


def json_body(resp: HttpResponse) -> Any:
    return orjson.loads(resp.body)
