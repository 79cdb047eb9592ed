"""tribridge as a Dubbo2 provider: unmodified Dubbo consumers call it as if it were the service.

A request is routed by interface / version / group / method (first matching route, as in
Envoy's dubbo_proxy) to a provider this gateway resolves through its own registries
(``to: local``) or to another gateway over a relay link (``to: relay:NAME``).  The request
body is forwarded byte for byte — only the 8-byte request id in the header is rewritten —
so arguments, attachments (``timeout``, ``group``, ``token``, tracing) and the consumer's
dubbo version (which decides the response flags) reach the provider as the consumer sent
them; the provider's response body comes back untouched under the consumer's id.

The body is still decoded once: the group and the timeout live in the attachments map,
which follows the arguments.  Failures that never reached a provider are answered the way
a consumer understands: no route -> SERVICE_NOT_FOUND (60) with Java's "Service … not
found" wording (Envoy's dubbo_proxy answers 60 too), no provider / link down -> 70,
provider silent past the timeout -> SERVER_TIMEOUT (31), undecodable body -> 40.
Heartbeats are answered; ``close(grace)`` sends READONLY to every consumer first, as a Java
provider does on graceful shutdown, so consumers stop sending before the port closes.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from tribridge.codecs.dubbo import (
    DubboProtocolError,
    Frame,
    FrameDecoder,
    decode_request_body,
    encode_error_response,
    encode_event,
    encode_heartbeat_response,
    pack_frame,
)
from tribridge.codecs.dubbo.frame import (
    BAD_REQUEST,
    HESSIAN2,
    SERIALIZATION_ERROR,
    SERVER_THREADPOOL_EXHAUSTED_ERROR,
    SERVER_TIMEOUT,
    SERVICE_ERROR,
    SERVICE_NOT_FOUND,
)
from tribridge.registries.base import Endpoint, ServiceKey

from .ingress_triple import BridgeError, dubbo_response, dubbo_status, triple_request
from .invoker import TRIPLE_FAILURES, Service, ServiceConfig
from .policy import denied_in_body
from .relay_config import IngressConfig, IngressRoute, norm_version
from .triple import TripleCallError
from .upstream import CallTimeout, ConnectFailed, NoEndpoint, UpstreamError

if TYPE_CHECKING:
    from .app import Gateway

log = logging.getLogger("tribridge.dubbo_ingress")

MAX_SERVICES = 4096  # (interface, version, group) keys followed for ingress calls
_ROUTE_CACHE = 8192


class IngressReply(Exception):
    """A failure answered with a non-20 status and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def service_label(path: str, version: str, group: str) -> str:
    """``group/path:version`` as Java prints a service key."""
    key = f"{group}/{path}" if group else path
    return f"{key}:{version}" if version else key


class _Consumer(asyncio.Protocol):
    """One consumer connection: frames in, replies out (coalesced per loop iteration)."""

    def __init__(self, ingress: DubboIngress) -> None:
        self.ingress = ingress
        self.decoder = FrameDecoder(ingress.cfg.max_payload)
        self.transport: Any = None
        self.in_flight = 0
        self.last_read = time.monotonic()
        self.peer = "?"
        self._out: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.peer = f"{peer[0]}:{peer[1]}"
        if not self.ingress._admit(self, transport):
            transport.abort()
            return
        self.ingress._conns.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.ingress._conns.discard(self)

    def data_received(self, data: bytes) -> None:
        self.last_read = time.monotonic()
        try:
            frames = self.decoder.feed(data)
        except DubboProtocolError as e:
            # Java hands non-dubbo bytes to telnet; a gateway hangs up on them.
            log.info("%s: closing consumer connection %s: %s", self.ingress.label, self.peer, e)
            self.close()
            return
        for fr in frames:
            self.ingress._on_frame(self, fr)

    def send(self, data: bytes) -> None:
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(data)

    def _flush(self) -> None:
        out, self._out = self._out, []
        t = self.transport
        if out and t is not None and not t.is_closing():
            t.write(out[0] if len(out) == 1 else b"".join(out))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class DubboIngress:
    """A Dubbo2 listener in front of the gateway's providers and relay links.

    ``links`` maps relay link names to objects with the ``InstancePool`` call surface
    (``ready_connection()``, ``await connection()``, ``active``, ``record_*``)."""

    def __init__(
        self,
        gw: Gateway,
        cfg: IngressConfig,
        links: dict[str, Any] | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        label: str = "dubbo ingress",
        allow: list[str] | None = None,
        not_found_hint: str = "no route in the tribridge dubbo ingress",
    ) -> None:
        self.gw = gw
        self.cfg = cfg
        self.links = links if links is not None else {}
        self.ssl_context = ssl_context
        self.label = label
        self.allow = set(allow) if allow is not None else None
        self.not_found_hint = not_found_hint
        self._server: Any = None
        self._conns: set[_Consumer] = set()
        self._services: dict[ServiceKey, Service] = {}
        self._routes: dict[tuple[str, str, str, str], IngressRoute | None] = {}
        self._tasks: set[asyncio.Future[Any]] = set()
        self._event_ids = itertools.count(1)
        self._idle_handle: asyncio.TimerHandle | None = None
        self.in_flight = 0
        self._drained: asyncio.Future[None] | None = None
        self.requests = 0

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Consumer(self),
            self.cfg.host,
            self.cfg.port,
            ssl=self.ssl_context,
            ssl_handshake_timeout=10.0 if self.ssl_context is not None else None,
            reuse_address=True,
        )
        self.cfg.port = self._server.sockets[0].getsockname()[1]
        self._schedule_idle_check()

    @property
    def port(self) -> int:
        return self.cfg.port

    @property
    def connections(self) -> int:
        return len(self._conns)

    async def close(self, grace: float = 5.0) -> None:
        """READONLY to every consumer, stop accepting, let calls in flight finish (up to
        ``grace`` seconds), then close the connections."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        if self._idle_handle is not None:
            self._idle_handle.cancel()
        for c in list(self._conns):
            c.send(encode_event(next(self._event_ids)))
        if self.in_flight and grace > 0:
            self._drained = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self._drained), grace)
            except TimeoutError:
                log.warning(
                    "%s: %d call(s) still in flight after grace", self.label, self.in_flight
                )
        for t in list(self._tasks):
            t.cancel()
        for c in list(self._conns):
            c._flush()
            c.close()
        for svc in self._services.values():
            reg = self.gw.state.registry_for(svc.cfg)
            if reg is not None and svc.cfg.interface not in self.gw.services:
                reg.unsubscribe(svc.cfg.key, svc.update)
                svc.release()
        self._services.clear()
        await server.wait_closed()

    def _admit(self, conn: _Consumer, transport: asyncio.BaseTransport) -> bool:
        if self._server is None:
            return False
        if self.allow is None:
            return True
        cert = transport.get_extra_info("peercert") or {}
        names = {v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"}
        if names & self.allow:
            return True
        log.warning("%s: refusing %s: certificate CN %s not allowed", self.label, conn.peer, names)
        return False

    def _schedule_idle_check(self) -> None:
        every = max(self.cfg.idle_timeout / 3, 0.05)
        self._idle_handle = asyncio.get_running_loop().call_later(every, self._idle_check)

    def _idle_check(self) -> None:
        if self._server is None:
            return
        limit = time.monotonic() - self.cfg.idle_timeout
        for c in list(self._conns):
            if c.last_read < limit and not c.in_flight:
                log.info("%s: closing idle consumer connection %s", self.label, c.peer)
                c.close()
        self._schedule_idle_check()

    # ---- requests ------------------------------------------------------------------------

    def _on_frame(self, conn: _Consumer, fr: Frame) -> None:
        if not fr.is_request:
            return  # a heartbeat response from the consumer
        if fr.is_event:
            if fr.is_heartbeat and fr.is_twoway:
                conn.send(encode_heartbeat_response(fr.request_id, fr.serialization))
            return
        self.requests += 1
        rid = fr.request_id
        try:
            target = self._target(conn, fr)
        except IngressReply as e:
            if fr.is_twoway:
                conn.send(encode_error_response(rid, e.status, e.message))
            return
        pool, up, timeout, ctx = target
        if up is not None:
            self._send(conn, fr, pool, up, timeout, ctx)
            return
        task = asyncio.ensure_future(self._slow(conn, fr, timeout, ctx))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _target(self, conn: _Consumer, fr: Frame) -> tuple[Any, Any, float, tuple[Any, ...]]:
        """-> (pool, ready connection or None, timeout, routing context)."""
        if self._server is None:
            raise IngressReply(SERVICE_ERROR, f"{self.label} is shutting down (READONLY)")
        if fr.serialization != HESSIAN2:
            raise IngressReply(
                BAD_REQUEST,
                f"Unexpected serialization id:{fr.serialization} received from network, "
                "please check if the peer send the right id.",
            )
        if conn.in_flight >= self.cfg.max_in_flight:
            raise IngressReply(
                SERVER_THREADPOOL_EXHAUSTED_ERROR,
                f"{self.label}: more than {self.cfg.max_in_flight} calls in flight on one "
                "connection",
            )
        try:
            inv = decode_request_body(fr.body)
        except DubboProtocolError as e:
            raise IngressReply(BAD_REQUEST, f"Fail to decode request due to: {e}") from None
        att = inv.attachments
        path = inv.path
        version = norm_version(att.get("version", inv.version))
        group = inv.group
        denied = denied_in_body(self.gw.class_policy, inv)
        if denied is not None:
            cls, rule = denied
            log.warning("%s: refused %s.%s from %s: class %s (deny:%s)",
                        self.label, path, inv.method, conn.peer, cls, rule)  # fmt: skip
            raise IngressReply(
                BAD_REQUEST,
                f"Fail to decode request due to: tribridge ({self.label}): class {cls!r} is "
                f"not allowed (rule deny:{rule}); the call was not forwarded",
            )
        route = self._route(path, version, group, inv.method)
        if route is None:
            raise IngressReply(
                SERVICE_NOT_FOUND,
                f"Service {service_label(path, version, group)} not found, invocation "
                f"rejected. ({self.not_found_hint}; method {inv.method})",
            )
        link_name = route.relay_link
        if link_name is not None:
            link = self.links[link_name]
            timeout = self._timeout(att.get("timeout"), route.timeout)
            return link, link.ready_connection(), timeout, (link, None, path, version, group)
        svc = self._service(path, version, group)
        timeout = self._timeout(att.get("timeout"), route.timeout or svc.cfg.timeout)
        if svc.snapshot.pending:
            return None, None, timeout, (None, svc, path, version, group)
        eps = svc.snapshot.endpoints
        if not eps:
            raise self._no_provider(svc, path, version, group)
        try:
            ep = svc.pick(eps, set(), None)
        except NoEndpoint:
            raise self._no_provider(svc, path, version, group) from None
        if svc.is_triple(ep):
            return None, None, timeout, (None, svc, path, version, group)
        pool = svc.pool(ep)
        return pool, pool.ready_connection(), timeout, (None, svc, path, version, group)

    def _route(self, path: str, version: str, group: str, method: str) -> IngressRoute | None:
        key = (path, version, group, method)
        try:
            return self._routes[key]
        except KeyError:
            pass
        hit = next((r for r in self.cfg.routes if r.matches(path, version, group, method)), None)
        if len(self._routes) >= _ROUTE_CACHE:
            self._routes.clear()
        self._routes[key] = hit
        return hit

    def _timeout(self, att: Any, default: float | None) -> float:
        """The consumer's ``timeout`` attachment (ms), else the route's or service's."""
        ms: float | None = None
        if isinstance(att, (int, str)) and not isinstance(att, bool):
            try:
                ms = float(att)
            except ValueError:
                ms = None
        if ms is not None and ms > 0:
            return min(ms / 1000, self.cfg.max_timeout)
        return default or 5.0

    def _service(self, path: str, version: str, group: str) -> Service:
        key = ServiceKey(path, version, group)
        svc = self._services.get(key)
        if svc is not None:
            return svc
        if len(self._services) >= MAX_SERVICES:
            raise IngressReply(SERVICE_ERROR, f"{self.label}: more than {MAX_SERVICES} services")
        base = self.gw.services.get(path)
        cfg = ServiceConfig(path, version, group)
        if base is not None:
            cfg.registry = base.cfg.registry
            cfg.loadbalance = base.cfg.loadbalance
            cfg.retries = base.cfg.retries
            cfg.timeout = base.cfg.timeout
        st = self.gw.state
        svc = self.gw._new_service(st, cfg)
        self.gw._subscribe(st, svc)
        self._services[key] = svc
        return svc

    def _no_provider(self, svc: Service, path: str, version: str, group: str) -> IngressReply:
        err = svc.snapshot.error
        return IngressReply(
            SERVICE_ERROR,
            f"No provider available for the service {service_label(path, version, group)} "
            f"from tribridge ({self.label})" + (f": registry: {err}" if err else ""),
        )

    def _send(
        self,
        conn: _Consumer,
        fr: Frame,
        pool: Any,
        up: Any,
        timeout: float,
        ctx: tuple[Any, ...],
    ) -> asyncio.Future[Frame] | None:
        uid = up.next_id()
        frame = pack_frame(fr.flag, 0, uid, fr.body)
        if not fr.is_twoway:
            up.send_oneway(frame)
            return None
        fut = up.call(uid, frame, timeout)
        self._begin(conn, pool)
        fut.add_done_callback(partial(self._reply, conn, fr.request_id, pool, ctx))
        return fut

    def _reply(
        self, conn: _Consumer, rid: int, pool: Any, ctx: tuple[Any, ...], fut: asyncio.Future[Frame]
    ) -> None:
        self._done(conn, pool)
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            if isinstance(exc, UpstreamError):
                pool.record_failure()
                conn.send(self._error_frame(rid, exc, ctx))
            return
        res = fut.result()
        if res.oversize:
            conn.send(
                encode_error_response(
                    rid,
                    SERIALIZATION_ERROR,
                    f"Data length too large: {res.oversize}, max payload: "
                    f"{self.gw.pools.settings.max_payload}",
                )
            )
            return
        if res.status == SERVER_THREADPOOL_EXHAUSTED_ERROR:
            pool.record_failure()
        else:
            pool.record_success()
        conn.send(pack_frame(res.flag, res.status, rid, res.body))

    def _begin(self, conn: _Consumer, pool: Any) -> None:
        pool.active += 1
        conn.in_flight += 1
        self.in_flight += 1

    def _done(self, conn: _Consumer, pool: Any) -> None:
        pool.active -= 1
        conn.in_flight -= 1
        self.in_flight -= 1
        if self.in_flight == 0 and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def _error_frame(self, rid: int, exc: UpstreamError, ctx: tuple[Any, ...]) -> bytes:
        link, _svc, path, version, group = ctx
        label = service_label(path, version, group)
        where = f"relay link {link.name!r}" if link is not None else "provider"
        if isinstance(exc, CallTimeout):
            return encode_error_response(rid, SERVER_TIMEOUT, f"tribridge: {label}: {where}: {exc}")
        return encode_error_response(rid, SERVICE_ERROR, f"tribridge: {label}: {exc}")

    async def _triple(
        self, conn: _Consumer, fr: Frame, svc: Service, ep: Endpoint, pool: Any, timeout: float
    ) -> None:
        """Bridge one call onto a Triple provider (gateway/ingress_triple.py); raises
        ``ConnectFailed`` when the request surely never left, so another instance is tried."""
        try:
            req = triple_request(fr.body, svc.cfg.interface)
        except BridgeError as e:
            raise IngressReply(BAD_REQUEST, str(e)) from None
        rid = fr.request_id
        self._begin(conn, pool)
        try:
            reply = await self.gw.pools.triple_client().unary(
                ep, req.path, req.payload, req.headers, timeout, pool.tls
            )
        except TripleCallError as e:
            if e.code in TRIPLE_FAILURES:
                pool.record_failure()
            if not e.sent:
                raise ConnectFailed(f"{ep.host}:{ep.port}: {e}") from None
            if fr.is_twoway:
                conn.send(
                    encode_error_response(
                        rid, dubbo_status(e), f"tribridge: {svc.cfg.interface} over Triple: {e}"
                    )
                )
            return
        finally:
            self._done(conn, pool)
        pool.record_success()
        if fr.is_twoway:
            conn.send(dubbo_response(rid, reply, req.dubbo_version))

    async def _slow(self, conn: _Consumer, fr: Frame, timeout: float, ctx: tuple[Any, ...]) -> None:
        """Connect first (or wait for the registry), trying other instances on connect
        failures — a request that never left cannot have run twice."""
        link, svc, path, version, group = ctx
        rid = fr.request_id
        try:
            if link is not None:
                up = await link.connection()
                self._send(conn, fr, link, up, timeout, ctx)
                return
            if svc.snapshot.pending and not await svc.settled(self.gw.cfg.registry_wait):
                raise IngressReply(
                    SERVICE_ERROR,
                    f"tribridge: the registry has not answered about "
                    f"{service_label(path, version, group)} yet",
                )
            tried: set[tuple[str, int]] = set()
            last: UpstreamError | None = None
            for _ in range(1 + max(svc.cfg.retries, 0)):
                eps = svc.snapshot.endpoints
                if not eps:
                    raise self._no_provider(svc, path, version, group)
                try:
                    ep = svc.pick(eps, tried, None)
                except NoEndpoint:
                    break
                tried.add((ep.host, ep.port))
                pool = svc.pool(ep)
                try:
                    if svc.is_triple(ep):
                        await self._triple(conn, fr, svc, ep, pool, timeout)
                        return
                    up = await pool.connection()
                except ConnectFailed as e:
                    last = e
                    continue
                self._send(conn, fr, pool, up, timeout, ctx)
                return
            raise IngressReply(
                SERVICE_ERROR,
                f"tribridge: {service_label(path, version, group)}: "
                + (str(last) if last else "no provider instance left to try"),
            )
        except IngressReply as e:
            if fr.is_twoway:
                conn.send(encode_error_response(rid, e.status, e.message))
        except UpstreamError as e:
            if fr.is_twoway:
                conn.send(self._error_frame(rid, e, ctx))
