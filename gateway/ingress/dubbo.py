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
from functools import partial
from typing import Any, Protocol

from tribridge.codecs.dubbo import (
    DubboProtocolError,
    Frame,
    decode_request_body,
    encode_error_response,
    pack_frame,
)
from tribridge.codecs.dubbo.frame import (
    BAD_REQUEST,
    HESSIAN2,
    SERIALIZATION_ERROR,
    SERVER_THREADPOOL_EXHAUSTED_ERROR,
    SERVICE_ERROR,
)
from tribridge.config.limits import DEFAULT_FD_RESERVE, connection_cap
from tribridge.config.model import GatewayConfig
from tribridge.config.relay import IngressConfig, norm_version
from tribridge.ingress.consumer import Consumer
from tribridge.ingress.routes import IngressReply, IngressRoutes, ServiceHost, Target
from tribridge.ingress.triple_bridge import (
    BridgeError,
    dubbo_response,
    dubbo_status,
    triple_request,
)
from tribridge.invoke import attempts
from tribridge.invoke.attempts import Plan
from tribridge.invoke.invoker import Service
from tribridge.invoke.replies import TRIPLE_FAILURES, TripleFailed
from tribridge.registries.base import Endpoint
from tribridge.security.policy import ClassPolicy, PolicyRefused
from tribridge.statuses import upstream_to_dubbo
from tribridge.upstream.errors import NoEndpoint, UpstreamError
from tribridge.upstream.pool import PoolSet
from tribridge.upstream.protocols import TripleTransport, UpstreamConnection, UpstreamPool
from tribridge.upstream.triple import TripleCallError

log = logging.getLogger("tribridge.dubbo_ingress")

#: decode failures that are class-policy rules: (message fragment, rule)
_DECODE_RULES = (
    ("nesting deeper than", "too_deep"),
    ("after the attachments", "trailing_bytes"),
    ("max_elements", "too_many_elements"),
)


class IngressHost(ServiceHost, Protocol):
    """What a Dubbo2 listener reads of the gateway (``routing.app.Gateway``) besides what
    its routes read: the config (limits, registry wait), the class policy requests are
    decoded under, and the upstream pools (payload limit, the shared Triple client).  The
    relay runtime (``relay.links``) builds its listeners from the same gateway and reads no
    more: the ``relay`` / ``dubbo_ingress`` sections and ``pools.relay_links``."""

    pools: PoolSet

    @property
    def cfg(self) -> GatewayConfig: ...
    @property
    def class_policy(self) -> ClassPolicy: ...


class DubboIngress:
    """A Dubbo2 listener in front of the gateway's providers and relay links.

    ``links`` maps relay link names to objects with the ``InstancePool`` call surface
    (``ready_connection()``, ``await connection()``, ``active``, ``record_*``)."""

    def __init__(
        self,
        gw: IngressHost,
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
        self._server: Any = None
        self._conns: set[Consumer] = set()
        self._cap = cfg.max_connections  # lowered to RLIMIT_NOFILE - fd_reserve at start()
        self._held = 0  # partial-frame bytes of all consumers (max_buffered_frame_bytes)
        #: connections refused past the cap
        self.refused = 0
        #: routes, services (LRU) and signature allowlists (ingress/routes.py)
        self.routes = IngressRoutes(gw, cfg, label, not_found_hint)
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
            lambda: Consumer(self),
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
        self.routes.close()
        await server.wait_closed()

    def accept(self, conn: Consumer, transport: asyncio.BaseTransport) -> bool:
        """A new consumer connection: counted and bounded -> True, or refused (past the
        connection cap, before ``start`` / after ``close``, certificate name not allowed)
        -> False, and the consumer aborts it."""
        if len(self._conns) >= self._cap:
            self.refused += 1
            return False
        if not self._admit(conn, transport):
            return False
        transport.set_write_buffer_limits(self.cfg.write_buffer_bytes)  # type: ignore[attr-defined]
        self._conns.add(conn)
        return True

    def release(self, conn: Consumer) -> None:
        """A consumer connection is gone."""
        self._conns.discard(conn)

    def hold(self, delta: int) -> bool:
        """Partial-frame bytes of a consumer changed by ``delta``; True: all consumers' now
        exceed ``max_buffered_frame_bytes`` (the consumer that grew drops its connection)."""
        self._held += delta
        return self._held > self.cfg.max_buffered_frame_bytes

    def _admit(self, conn: Consumer, transport: asyncio.BaseTransport) -> bool:
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

    def on_request(self, conn: Consumer, fr: Frame) -> None:
        self.requests += 1
        rid = fr.request_id
        try:
            target = self._target(conn, fr)
        except IngressReply as e:
            if fr.is_twoway:
                conn.send(encode_error_response(rid, e.status, e.message))
            return
        pool, up, where = target
        if up is not None:
            self._send(conn, fr, pool, up, where)
            return
        task = asyncio.ensure_future(self._slow(conn, fr, where))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _target(self, conn: Consumer, fr: Frame) -> tuple[Any, Any, Target]:
        """-> (pool, ready connection or None, where the call goes)."""
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
        path = inv.path
        version = norm_version(inv.attachments.get("version", inv.version))
        group = inv.group
        routes = self.routes
        try:
            policy.judge_invocation(inv, routes.known_classes(path, version, group, inv))
        except PolicyRefused as e:
            log.warning("%s: refused %s.%s from %s: %s (rule %s)",
                        self.label, path, inv.method, conn.peer, e.message, e.rule)  # fmt: skip
            raise IngressReply(
                BAD_REQUEST,
                f"Fail to decode request due to: tribridge ({self.label}): {e.message} "
                f"(rule {e.rule}); the call was not forwarded",
            ) from None
        target = routes.target(inv, path, version, group, self.links)
        svc = target.svc
        if svc is None:  # a relay link
            return target.link, target.link.ready_connection(), target
        if svc.snapshot.pending:
            return None, None, target
        eps = svc.snapshot.endpoints
        if not eps:
            raise routes.no_provider(target)
        try:
            ep = svc.pick(eps, set(), None)
        except NoEndpoint:
            raise routes.no_provider(target) from None
        if svc.is_triple(ep):
            return None, None, target
        pool = svc.pool(ep)
        return pool, pool.ready_connection(), target

    def _send(
        self,
        conn: Consumer,
        fr: Frame,
        pool: UpstreamPool,
        up: UpstreamConnection,
        to: Target,
        timeout: float | None = None,
    ) -> asyncio.Future[Frame] | None:
        """Forward the frame under a fresh id; its reply answers the consumer (``_reply``).
        ``timeout``: what is left of the consumer's (default: all of it)."""
        uid = up.next_id()
        frame = pack_frame(fr.flag, 0, uid, fr.body)
        if not fr.is_twoway:
            up.send_oneway(frame)
            return None
        fut = up.call(uid, frame, to.timeout if timeout is None else timeout)
        self._begin(conn, pool)
        fut.add_done_callback(partial(self._reply, conn, fr.request_id, pool, to))
        return fut

    def _reply(
        self, conn: Consumer, rid: int, pool: UpstreamPool, to: Target, fut: asyncio.Future[Frame]
    ) -> None:
        self._done(conn, pool)
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            if isinstance(exc, UpstreamError):
                pool.record_failure()
                conn.send(self._error_frame(rid, exc, to))
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

    def _begin(self, conn: Consumer, pool: UpstreamPool) -> None:
        pool.active += 1
        conn.in_flight += 1
        self.in_flight += 1

    def _done(self, conn: Consumer, pool: UpstreamPool) -> None:
        pool.active -= 1
        conn.in_flight -= 1
        self.in_flight -= 1
        if self.in_flight == 0 and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    @staticmethod
    def _error_frame(rid: int, exc: UpstreamError, to: Target) -> bytes:
        """The consumer's answer for a call no provider answered (``statuses.UPSTREAM_TO_DUBBO``)."""
        status = upstream_to_dubbo(exc.code)
        if status == SERVICE_ERROR:  # no answer from anyone: the failure says where itself
            return encode_error_response(rid, status, f"tribridge: {to.label}: {exc}")
        where = f"relay link {to.link.name!r}" if to.link is not None else "provider"
        return encode_error_response(rid, status, f"tribridge: {to.label}: {where}: {exc}")

    async def _slow(self, conn: Consumer, fr: Frame, to: Target) -> None:
        """Connect first (or wait for the registry) through the attempt loop: other
        instances are tried only when the request never left (a forwarded body's method
        is not known to be idempotent), within the consumer's timeout."""
        try:
            svc = to.svc
            if svc is not None and svc.snapshot.pending:
                await self._settled(svc, to)
            await attempts.run(self._plan(to), partial(self._attempt, conn, fr, to))
        except IngressReply as e:
            if fr.is_twoway:
                conn.send(encode_error_response(fr.request_id, e.status, e.message))
        except UpstreamError as e:
            if fr.is_twoway:
                conn.send(self._error_frame(fr.request_id, e, to))

    async def _settled(self, svc: Service, to: Target) -> None:
        if not await svc.settled(self.gw.cfg.registry_wait):
            raise IngressReply(
                SERVICE_ERROR, f"tribridge: the registry has not answered about {to.label} yet"
            )

    def _plan(self, to: Target) -> Plan[None]:
        svc = to.svc
        if svc is None:  # a relay link: one attempt, on the link
            link = to.link

            def on_link(tried: set[tuple[str, int]]) -> Endpoint:
                if tried:
                    raise NoEndpoint("relay link tried")
                return Endpoint(link.name, 0, "relay")

            return Plan(to.label, 1, False, to.deadline, on_link, lambda ep: link, _give_up)

        def pick(tried: set[tuple[str, int]]) -> Endpoint:
            eps = svc.snapshot.endpoints
            if not eps:
                raise self.routes.no_provider(to)
            return svc.pick(eps, tried, None)

        tries = 1 + max(svc.cfg.retries, 0)
        return Plan(to.label, tries, False, to.deadline, pick, svc.pool, _give_up, svc.events)

    async def _attempt(
        self,
        conn: Consumer,
        fr: Frame,
        to: Target,
        ep: Endpoint,
        pool: UpstreamPool,
        left: float,
    ) -> tuple[None, bool | None]:
        """One attempt: forward the frame once connected (its reply completes the call
        later, ``_reply``), or bridge it onto a Triple provider."""
        if to.svc is not None and to.svc.is_triple(ep):
            return None, await self._triple(conn, fr, to, ep, pool, left)
        up = await pool.connection()
        self._send(conn, fr, pool, up, to, left)
        return None, None

    async def _triple(
        self, conn: Consumer, fr: Frame, to: Target, ep: Endpoint, pool: UpstreamPool, left: float
    ) -> bool | None:
        """Bridge one call onto a Triple provider (gateway/ingress/triple_bridge.py); raises
        ``TripleFailed`` (not sent) when the request surely never left, so another instance
        is tried; -> the instance's health for the attempt loop."""
        svc = to.svc
        assert svc is not None
        try:
            req = triple_request(fr.body, svc.cfg.interface)
        except BridgeError as e:
            raise IngressReply(BAD_REQUEST, str(e)) from None
        rid = fr.request_id
        client: TripleTransport = self.gw.pools.triple_client()
        self._begin(conn, pool)
        try:
            reply = await client.unary(ep, req.path, req.payload, req.headers, left, pool.tls)
        except TripleCallError as e:
            if not e.sent:
                raise TripleFailed(e, f"{ep.host}:{ep.port}") from None
            if fr.is_twoway:
                msg = f"tribridge: {svc.cfg.interface} over Triple: {e}"
                conn.send(encode_error_response(rid, dubbo_status(e), msg))
            return False if e.code in TRIPLE_FAILURES else None
        finally:
            self._done(conn, pool)
        if fr.is_twoway:
            conn.send(dubbo_response(rid, reply, req.dubbo_version))
        return True


def _give_up(last: UpstreamError | None) -> None:
    """No instance took the call: the last failure answers the consumer (``_slow``)."""
    raise last if last is not None else NoEndpoint("no provider instance left to try")
