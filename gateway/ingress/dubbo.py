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
import logging
import ssl
import time
from collections import OrderedDict
from functools import partial
from typing import TYPE_CHECKING, Any

from tribridge.codecs.dubbo import (
    DubboProtocolError,
    Frame,
    decode_request_body,
    encode_error_response,
    pack_frame,
)
from tribridge.codecs.dubbo.connection import Connection, Heartbeat, ProtocolError, Request, Role
from tribridge.codecs.dubbo.frame import (
    BAD_REQUEST,
    HESSIAN2,
    SERIALIZATION_ERROR,
    SERVER_THREADPOOL_EXHAUSTED_ERROR,
    SERVER_TIMEOUT,
    SERVICE_ERROR,
    SERVICE_NOT_FOUND,
)
from tribridge.codecs.hessian2 import TypeRegistry
from tribridge.config.limits import DEFAULT_FD_RESERVE, connection_cap
from tribridge.config.relay import IngressConfig, IngressRoute, norm_version
from tribridge.config.services import ServiceConfig
from tribridge.ingress.triple_bridge import (
    BridgeError,
    dubbo_response,
    dubbo_status,
    triple_request,
)
from tribridge.invoke.invoker import TRIPLE_FAILURES, Service
from tribridge.registries.base import Endpoint, ServiceKey
from tribridge.security.policy import PolicyRefused, known_classes
from tribridge.upstream.pool import (
    CallTimeout,
    ConnectFailed,
    NoEndpoint,
    UpstreamBusy,
    UpstreamError,
)
from tribridge.upstream.triple import TripleCallError

if TYPE_CHECKING:
    from tribridge.routing.app import Gateway

log = logging.getLogger("tribridge.dubbo_ingress")

_ROUTE_CACHE = 8192
#: decode failures that are class-policy rules: (message fragment, rule)
_DECODE_RULES = (
    ("nesting deeper than", "too_deep"),
    ("after the attachments", "trailing_bytes"),
    ("max_elements", "too_many_elements"),
)


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
    """One consumer connection: frames in, replies out (coalesced per loop iteration).

    Bounded both ways: a consumer that stops reading its replies (a heartbeat or request
    flood) is no longer read once the transport passes ``write_buffer_bytes``, and dropped
    past ``max_unread_reply_bytes``; a partial frame counts against the listener's
    ``max_buffered_frame_bytes`` and must complete within ``frame_timeout``."""

    def __init__(self, ingress: DubboIngress) -> None:
        self.ingress = ingress
        #: framing, heartbeats, READONLY (sans-IO, codecs/dubbo/connection.py)
        self.wire = Connection(Role.SERVER, max_payload=ingress.cfg.max_payload)
        self.transport: Any = None
        self.in_flight = 0
        self.last_read = time.monotonic()
        self.peer = "?"
        self._out: list[bytes] = []
        self.held = 0  # partial-frame bytes counted in the listener's budget
        self.frame_since = 0.0  # monotonic time a partial frame began (0: none)
        self.write_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.peer = f"{peer[0]}:{peer[1]}"
        ing = self.ingress
        if len(ing._conns) >= ing._cap:
            ing.refused += 1
            transport.abort()  # nothing to say in Dubbo before a request; existing ones live on
            return
        if not ing._admit(self, transport):
            transport.abort()
            return
        transport.set_write_buffer_limits(ing.cfg.write_buffer_bytes)  # type: ignore[attr-defined]
        ing._conns.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.ingress._conns.discard(self)
        self._out = []
        if self.held:
            self.ingress._held -= self.held
            self.held = 0

    def pause_writing(self) -> None:
        # the consumer lags reading its replies: stop reading its requests until it catches up
        self.write_paused = True
        t = self.transport
        if t is not None and not t.is_closing():
            t.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        t = self.transport
        if t is not None and not t.is_closing():
            t.resume_reading()

    def data_received(self, data: bytes) -> None:
        self.last_read = now = time.monotonic()
        wire = self.wire
        events = wire.receive_data(data)
        if events and type(last := events[-1]) is ProtocolError:
            # Java hands non-dubbo bytes to telnet; a gateway hangs up on them.
            ing = self.ingress
            log.info("%s: closing consumer connection %s: %s", ing.label, self.peer, last.message)
            self.close()
            return
        buffered = wire.buffered
        if buffered != self.held and self._hold(buffered, now):
            return
        on_request = self.ingress._on_request
        for ev in events:
            if type(ev) is Request:
                on_request(self, ev.frame)
            elif type(ev) is Heartbeat and ev.reply is not None:
                self.send(ev.reply)
            # else: heartbeat answers and other events from a consumer need nothing

    def _hold(self, buffered: int, now: float) -> bool:
        """Account a partial frame in the listener's budget; True: over it, closed."""
        ing = self.ingress
        ing._held += buffered - self.held
        if not self.held or not buffered:
            self.frame_since = now if buffered else 0.0
        self.held = buffered
        if ing._held <= ing.cfg.max_buffered_frame_bytes:
            return False
        log.warning(
            "%s: closing %s: partial frames of all consumers exceed %d bytes",
            ing.label,
            self.peer,
            ing.cfg.max_buffered_frame_bytes,
        )
        self.abort()
        return True

    def send(self, data: bytes) -> None:
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(data)

    def _flush(self) -> None:
        out, self._out = self._out, []
        t = self.transport
        if out and t is not None and not t.is_closing():
            if self._overflowing(t):
                return
            t.write(out[0] if len(out) == 1 else b"".join(out))
            self._overflowing(t)  # this write may have crossed both marks at once

    def _overflowing(self, t: Any) -> bool:
        """Past the high-water mark with ``max_unread_reply_bytes`` queued: abort -> True."""
        if (
            not self.write_paused
            or t.get_write_buffer_size() <= self.ingress.cfg.max_unread_reply_bytes
        ):
            return False
        log.warning(
            "%s: consumer %s stopped reading its replies; aborting", self.ingress.label, self.peer
        )
        self.abort()
        return True

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop at once: unread input and output go (``close`` would flush them first)."""
        if self.held:
            self.ingress._held -= self.held
            self.held = 0
        self.wire = Connection(Role.SERVER, max_payload=self.ingress.cfg.max_payload)
        if self.transport is not None:
            self.transport.abort()


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
        self._cap = cfg.max_connections  # lowered to RLIMIT_NOFILE - fd_reserve at start()
        self._held = 0  # partial-frame bytes of all consumers (max_buffered_frame_bytes)
        #: connections refused past the cap
        self.refused = 0
        #: LRU: least recently called first (max_services)
        self._services: OrderedDict[ServiceKey, Service] = OrderedDict()
        self._routes: dict[tuple[str, str, str, str], IngressRoute | None] = {}
        #: (path, version, group, method) -> (what it was computed from, allowlist)
        self._known: dict[
            tuple[str, str, str, str], tuple[tuple[Any, ...], frozenset[str] | None]
        ] = {}
        self._tasks: set[asyncio.Future[Any]] = set()
        self._idle_handle: asyncio.TimerHandle | None = None
        self.in_flight = 0
        self._drained: asyncio.Future[None] | None = None
        self.requests = 0

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        reserve = self.gw.cfg.limits.get("fd_reserve", DEFAULT_FD_RESERVE)
        self._cap = connection_cap(self.cfg.max_connections, reserve, self.label)
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
            c.send(c.wire.readonly_event())
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
            self._forget(svc)
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
        every = max(min(self.cfg.idle_timeout, self.cfg.frame_timeout) / 3, 0.05)
        self._idle_handle = asyncio.get_running_loop().call_later(every, self._idle_check)

    def _idle_check(self) -> None:
        if self._server is None:
            return
        now = time.monotonic()
        limit = now - self.cfg.idle_timeout
        stalled = now - self.cfg.frame_timeout
        for c in list(self._conns):
            if c.frame_since and c.frame_since < stalled:
                log.info("%s: closing %s: frame not completed in time", self.label, c.peer)
                c.abort()
            elif c.last_read < limit and not c.in_flight:
                log.info("%s: closing idle consumer connection %s", self.label, c.peer)
                c.close()
        self._schedule_idle_check()

    # ---- requests ------------------------------------------------------------------------

    def _on_request(self, conn: _Consumer, fr: Frame) -> None:
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
        policy = self.gw.class_policy
        try:
            # the policy's depth limit: nothing deeper is accepted, so nothing is unjudged
            inv = decode_request_body(
                fr.body, max_depth=policy.max_depth, max_elements=self.cfg.max_elements
            )
        except DubboProtocolError as e:
            # the class-policy limits of decoding name their rule like every other refusal
            rule = next((r for m, r in _DECODE_RULES if m in str(e)), None)
            if rule is not None:
                raise IngressReply(
                    BAD_REQUEST,
                    f"Fail to decode request due to: tribridge ({self.label}): {e} "
                    f"(rule {rule}); the call was not forwarded",
                ) from None
            raise IngressReply(BAD_REQUEST, f"Fail to decode request due to: {e}") from None
        att = inv.attachments
        path = inv.path
        version = norm_version(att.get("version", inv.version))
        group = inv.group
        try:
            policy.judge_invocation(inv, self._known_classes(path, version, group, inv))
        except PolicyRefused as e:
            log.warning("%s: refused %s.%s from %s: %s (rule %s)",
                        self.label, path, inv.method, conn.peer, e.message, e.rule)  # fmt: skip
            raise IngressReply(
                BAD_REQUEST,
                f"Fail to decode request due to: tribridge ({self.label}): {e.message} "
                f"(rule {e.rule}); the call was not forwarded",
            ) from None
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

    def _known_classes(
        self, path: str, version: str, group: str, inv: Any
    ) -> frozenset[str] | None:
        """The allowlist of the called method's signature — configured ``methods`` types and
        provider metadata overloads of the service, transitively through their POJOs — or
        None when this gateway knows no signature for it (then the deny list judges alone).
        For ``$invoke`` the method is the one named in the first argument."""
        method = inv.method
        if method in ("$invoke", "$invokeAsync") and inv.args and isinstance(inv.args[0], str):
            method = inv.args[0]
        # the configured service (methods, types) and the ingress's own subscription to
        # the same key (provider metadata), whichever exist
        svcs = [
            x
            for x in (
                self.gw.state.services.get(path),
                self._services.get(ServiceKey(path, version, group)),
            )
            if x is not None
        ]
        if not svcs:
            return None
        key = (path, version, group, method)
        stamp = tuple(
            y
            for x in svcs
            for y in (x, x.cfg.methods.get(method), x.snapshot.definition, x.cfg.types)
        )
        hit = self._known.get(key)
        if (
            hit is not None
            and len(hit[0]) == len(stamp)
            and all(a is b for a, b in zip(hit[0], stamp, strict=True))
        ):
            return hit[1]
        overloads: list[Any] = []
        reg = TypeRegistry()
        for x in svcs:
            mcfg = x.cfg.methods.get(method)
            if mcfg is not None and mcfg.types is not None:
                overloads.append(mcfg.types)
            d = x.snapshot.definition
            if d is not None:
                overloads += [o.parameter_types for o in d.overloads(method)]
            for pd in x.type_registry().defs.values():
                reg.add(pd)
        known = known_classes(overloads, reg) if overloads else None
        if len(self._known) >= _ROUTE_CACHE:
            self._known.clear()
        self._known[key] = (stamp, known)
        return known

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
        services = self._services
        svc = services.get(key)
        if svc is not None:
            services.move_to_end(key)
            return svc
        while len(services) >= self.cfg.max_services:
            # the least recently called goes (calls in flight keep their Service object);
            # refusing every new service until a restart would let a scan take the door
            _, old = services.popitem(last=False)
            self._forget(old)
        base = self.gw.services.get(path)
        cfg = ServiceConfig(path, version, group)
        if base is not None:
            cfg.registry = base.cfg.registry
            cfg.loadbalance = base.cfg.loadbalance
            cfg.retries = base.cfg.retries
            cfg.timeout = base.cfg.timeout
        st = self.gw.state
        svc = self.gw.directory.create(st, cfg)
        self._services[key] = svc
        return svc

    def _forget(self, svc: Service) -> None:
        """Stop following ``svc`` in its registry (unless the gateway itself follows it)."""
        reg = self.gw.state.registry_for(svc.cfg)
        if reg is not None and svc.cfg.interface not in self.gw.services:
            reg.unsubscribe(svc.cfg.key, svc.update)
            svc.release()

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
        if isinstance(exc, UpstreamBusy):
            return encode_error_response(
                rid, SERVER_THREADPOOL_EXHAUSTED_ERROR, f"tribridge: {label}: {where}: {exc}"
            )
        return encode_error_response(rid, SERVICE_ERROR, f"tribridge: {label}: {exc}")

    async def _triple(
        self, conn: _Consumer, fr: Frame, svc: Service, ep: Endpoint, pool: Any, timeout: float
    ) -> None:
        """Bridge one call onto a Triple provider (gateway/ingress/triple_bridge.py); raises
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
