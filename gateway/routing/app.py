"""The gateway: HTTP requests -> routes -> Dubbo calls -> JSON responses.

``Gateway`` ties the routing pieces together and runs them: the current ``RoutingState``
(``routing.state``: route table, configured services, registries, guard, IDL router), the
service directory (``routing.directory``: configured, auto and ingress services), parameter
mapping (``routing.params``), result rendering (``routing.render``), readiness
(``routing.readiness``), and the lifecycle of listeners, registries, admin API and config
watcher.  The handler reads ``self.state`` once per request; a config reload
(``ops.hotconfig``) builds a new state and swaps that one reference, so connections, upstream
pools and unchanged services' subscriptions live on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from tribridge.config.model import GatewayConfig
from tribridge.config.services import ServiceConfig
from tribridge.contract.endpoint import Contract
from tribridge.errors import GatewayError, not_found
from tribridge.http.headers import under_prefix
from tribridge.http.messages import HttpLimits, Later, Request, Response
from tribridge.http.server import HttpServer
from tribridge.invoke.call import Call, Outcome, RequestContext
from tribridge.invoke.events import Events
from tribridge.invoke.invoker import Service
from tribridge.invoke.prepared import Prepared
from tribridge.ops import metrics, tracing
from tribridge.ops.accesslog import AccessLog
from tribridge.ops.admin import PROM_CONTENT_TYPE, AdminServer
from tribridge.ops.hotconfig import ConfigWatcher, Reloads
from tribridge.ops.metrics import RequestStats, make_registry
from tribridge.registries.base import Registry
from tribridge.relay.links import attach as attach_relay
from tribridge.routing.directory import ServiceDirectory
from tribridge.routing.idl_routes import IdlRouter
from tribridge.routing.params import GROUP_HEADER, auto_call, explicit_call
from tribridge.routing.readiness import ready_response, registry_status
from tribridge.routing.render import error_response, result_response
from tribridge.routing.routes import RouteTable
from tribridge.routing.state import RoutingState, build_idl, build_state, open_registries
from tribridge.security.exposure import Exposure, reserved_method
from tribridge.streaming.calls import Streams
from tribridge.streaming.websocket import is_upgrade
from tribridge.upstream.pool import PoolSet

log = logging.getLogger("tribridge")
#: the logger of access lines (``routing.serve.setup_logging`` sends it to stdout)
ACCESS_LOGGER = "tribridge.access"
access_log = logging.getLogger(ACCESS_LOGGER)

_perf = time.perf_counter
#: metrics route label of auto routes (``POST /{interface}/{method}``)
AUTO_ROUTE = "auto"


class Gateway:
    def __init__(self, cfg: GatewayConfig, pools: PoolSet | None = None) -> None:
        """``pools``: where calls go (default: real connections per ``cfg.upstream``;
        ``tribridge.interop.harness`` passes in-memory ones)."""
        self.pools = pools if pools is not None else PoolSet(cfg.upstream)
        #: the call path's event listeners (invoke.events): metrics, tracing, tests
        self.events = Events()
        #: streams over SSE, NDJSON and WebSocket (docs/streaming.md)
        self.streams = Streams(cfg.streaming)
        #: every Service the gateway calls: configured, auto-routed, ingress-created
        self.directory = ServiceDirectory(self.pools, self.events)
        registries = open_registries(cfg)
        probe = build_state(cfg, {}, registries)
        services, _ = self.directory.configure(probe, None, follow=False)  # followed at start
        guard = cfg.security.guard()
        self.state: RoutingState = build_state(
            cfg, services, registries, guard, build_idl(cfg, guard, self.pools, self.streams)
        )
        self.http: HttpServer | None = None
        self.admin: AdminServer | None = None  # when ``admin.port`` is set
        self.watcher: ConfigWatcher | None = None  # when watching a config file
        self.started = time.time()
        self.stats = RequestStats()
        metrics.subscribe(self.events, self.stats)
        tracing.subscribe(self.events)
        #: the HTTP server's access_log hook while ``cfg.access_log`` (lines in batches)
        self.access = AccessLog(access_log)
        #: reloads: lock, outcome counters, the parse in progress, replaced parts retiring
        self.reloads = Reloads(self)
        self._metrics: Any = None
        self.relay = attach_relay(self)  # Dubbo2 ingress and relay links
        #: /openapi.json, /docs, /mcp (gateway/contract/, docs/contract.md)
        self.contract = Contract(self)

    # ---- views of the current state ------------------------------------------------------

    @property
    def guard(self) -> Any:
        return self.state.guard

    @property
    def idl(self) -> IdlRouter | None:
        return self.state.idl

    @property
    def exposure(self) -> Exposure:
        return self.state.exposure

    @property
    def class_policy(self) -> Any:
        return self.state.cfg.security.classes

    @property
    def cfg(self) -> GatewayConfig:
        return self.state.cfg

    @property
    def routes(self) -> RouteTable:
        return self.state.routes

    @property
    def registries(self) -> Mapping[str, Registry]:
        return self.state.registries

    @property
    def services(self) -> Mapping[str, Service]:
        """Configured and auto-routed services (a fresh read-only view; the request path
        uses ``state.services`` and the directory directly)."""
        return self.all_services()

    def all_services(self) -> dict[str, Service]:
        return self.directory.all(self.state)

    @property
    def reload_counts(self) -> dict[str, int]:
        """Reload outcomes since start: ok, rejected, unchanged."""
        return self.reloads.counts

    def registry_status(self) -> dict[str, dict[str, Any]]:
        """Each registry's own status plus what the gateway saw (``routing.readiness``)."""
        return registry_status(self.state, self.all_services().values())

    def ready(self) -> Response:
        """``/readyz``: 503 while any service (Java or IDL) has no provider, which includes
        every registry-discovered service whose registry has not answered yet."""
        return ready_response(self.state, self.all_services().values())

    def metrics_text(self) -> bytes:
        if self._metrics is None:
            self._metrics = make_registry(self)[1]
        return self._metrics()

    async def reload(self, cfg: GatewayConfig) -> list[str]:
        """Swap in a new config without dropping anything; returns warnings (settings that
        need a restart).  Raises ``ConfigError`` (old config kept) when it cannot apply."""
        return await self.reloads.reload(cfg)

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(
        self,
        host: str | None = None,
        port: int | None = None,
        admin_port: int | None = None,
        **kw: Any,
    ) -> None:
        """``admin_port`` overrides ``admin.port`` (0: any free port)."""
        st = self.state
        for r in st.registries.values():
            await r.start()
        for svc in st.services.values():
            self.directory.follow(st, svc)
        if st.idl is not None:
            st.idl.subscribe(st.registry_for)
        if self.relay is not None:
            await self.relay.start()
        limits = HttpLimits(**self.cfg.limits)
        self.http = HttpServer(
            self.handle,
            limits,
            access_log=self.access if self.cfg.access_log else None,
        )
        tls = self.cfg.security.listen_tls
        if tls is not None and "ssl" not in kw:
            kw["ssl"] = tls.context()
        await self.http.start(host or self.cfg.host, self.cfg.port if port is None else port, **kw)
        if admin_port is None:
            admin_port = self.cfg.admin_port
        if admin_port is not None:
            self.admin = AdminServer(self)
            await self.admin.start(self.cfg.admin_host, admin_port)

    def watch(self, path: str, interval: float | None = None) -> None:
        """Follow the config file: poll it every ``interval`` s (config ``reload.interval``;
        0 = never) and re-read it on ``check_now()`` (SIGHUP)."""
        if self.watcher is not None:
            self.watcher.stop()
        self.watcher = ConfigWatcher(self.reloads, path, interval)
        self.watcher.start()

    @property
    def port(self) -> int:
        assert self.http is not None
        return self.http.port

    async def stop(self, grace: float = 10.0) -> None:
        self.contract.close()
        if self.watcher is not None:
            self.watcher.stop()
        if self.admin is not None:
            await self.admin.stop()
        if self.relay is not None:
            await self.relay.stop(grace)
        if self.http is not None:
            await self.http.shutdown(grace)
        self.access.flush()  # the last lines, not a timer's wait later
        await self.reloads.retire_now()  # components replaced by reloads and not closed yet
        await self.pools.aclose()
        st = self.state
        if st.idl is not None:
            await st.idl.close()
        for r in st.registries.values():
            await r.close()
        if st.guard is not None:
            await st.guard.close()

    async def _after_guard(
        self, st: RoutingState, pending: Any, svc: Service, call: Call, ctx: RequestContext
    ) -> Response:
        """Authentication had to fetch keys first; then the call goes the slow way."""
        try:
            await pending
        except GatewayError as e:
            return self._done(ctx, error_response(e))
        if svc.snapshot.pending:
            return await self._after_settle(st, svc, call, ctx)
        try:
            prep = svc.prepare(call)
        except GatewayError as e:
            return self._done(ctx, error_response(e))
        return await self._invoke_slow(svc, prep, ctx)

    async def _after_settle(
        self, st: RoutingState, svc: Service, call: Call, ctx: RequestContext
    ) -> Response:
        """First call of a service whose registry has not answered yet: wait briefly."""
        try:
            await svc.settled(st.cfg.registry_wait)
            if self.directory.never_provided(svc):
                self.directory.drop(st, svc)
                raise not_found(
                    f"no exposed service {svc.cfg.interface!r}: no provider registered",
                    service=svc.cfg.interface,
                    method=call.method,
                )
            prep = svc.prepare(call)
            resp = result_response(svc, call, await svc.invoke_prepared(prep, ctx))
        except GatewayError as e:
            resp = error_response(e)
        return self._done(ctx, resp)

    # ---- request handling ----------------------------------------------------------------

    def handle(self, req: Request) -> Response | Later | Any:
        """Answer directly, with a ``Later`` the provider's reply completes (the common
        case: no task, no future per request), or with a coroutine when a connection must
        be opened."""
        st = self.state  # read once: a reload during this request does not mix configs
        if req.path in st.cfg.contract.paths:
            return self.contract.handle(req)
        if st.idl is not None:
            idl = st.idl.handle(req, st.tracer, self.events)
            if idl is not None:
                return idl
        t0 = _perf()
        ctx: RequestContext | None = None
        try:
            target = self._route(st, req)
            if type(target) is Response:
                return target
            label, svc, call = target  # type: ignore[misc]
            ctx = RequestContext(
                label,
                svc.cfg.interface,
                call.method,
                t0,
                self.events,
                st.tracer,
                req.headers,
                call.attachments,
            )
            ctx.start()  # tracing puts its context into the attachments
            kind = self.streams.kind(req, svc.cfg, call.method)
            if kind is not None:
                return self._stream(st, req, svc, call, kind, ctx)
            guard = st.guard
            if guard is not None:
                pending = guard.check(req, svc.cfg.interface, call.method, call.attachments)
                if pending is not None:
                    return self._after_guard(st, pending, svc, call, ctx)
            if svc.snapshot.pending:
                return self._after_settle(st, svc, call, ctx)
            prep = svc.prepare(call)
            reply = _Reply(svc, prep, ctx)
            sent = svc.send_fast(prep, reply)
        except GatewayError as e:
            # counted under what the error names (route label "" when no route matched)
            x = e.extra
            route = getattr(e, "route", "")
            err = RequestContext(
                route, x.get("service", ""), x.get("method", ""), t0, self.events, st.tracer
            )
            if ctx is not None:
                err.trace = ctx.trace
            return self._done(err, error_response(e))
        if not sent:
            return self._invoke_slow(svc, prep, ctx)
        return reply

    def _stream(
        self,
        st: RoutingState,
        req: Request,
        svc: Service,
        call: Call,
        kind: str,
        ctx: RequestContext,
    ) -> Any:
        """A streaming call (tribridge.streaming): elements rendered as unary results are,
        the stream counted and traced once, when it ends."""
        return self.streams.wrapper(
            req,
            svc,
            call,
            kind,
            st.guard,
            st.cfg.registry_wait,
            lambda v: result_response(svc, call, Outcome(v)).body,
            lambda status: self._done(ctx, Response(status)),
        )

    @staticmethod
    def _done(ctx: RequestContext, resp: Response) -> Response:
        """Every routed request passes here once: the end hooks count it (metrics), end
        its span and add their headers (tracing's ``traceresponse``)."""
        extra = ctx.end(resp.status)
        if extra:
            resp.headers.extend(extra)
        return resp

    async def _invoke_slow(self, svc: Service, prep: Any, ctx: RequestContext) -> Response:
        try:
            resp = result_response(svc, prep.call, await svc.invoke_prepared(prep, ctx))
        except GatewayError as e:
            resp = error_response(e)
        return self._done(ctx, resp)

    def _route(self, st: RoutingState, req: Request) -> Response | tuple[str, Service, Call]:
        path = req.path
        if path == "/healthz":
            return Response(200, b'{"status":"ok"}')
        if path == "/readyz":
            return self.ready()
        if path == "/metrics" and st.cfg.metrics_on_main and req.method == "GET":
            return Response(200, self.metrics_text(), content_type=PROM_CONTENT_TYPE)
        hit = st.routes.match(req.method, path)
        if hit is not None:
            cr, path_vars = hit
            svc = st.services[cr.cfg.service]
            try:
                return cr.label, svc, explicit_call(st, cr, svc, req, path_vars)
            except GatewayError as e:
                e.route = cr.label  # type: ignore[attr-defined]
                raise
        auto = st.auto
        rest = under_prefix(auto.prefix, path) if auto is not None else None
        if rest is not None:
            iface, _, method = rest.rpartition("/")
            if iface and method and "/" not in iface:
                if req.method != "POST" and not is_upgrade(req):
                    raise GatewayError(405, "method_not_allowed", f"{path}: auto routes take POST")
                reason = reserved_method(method)
                if reason is not None:
                    raise not_found(
                        f"method {method!r} is never callable over HTTP: {reason}",
                        service=iface,
                        method=method,
                    )
                known = st.services.get(iface)
                reg = st.registry_name(known.cfg if known else ServiceConfig(iface))
                if not st.exposure.service(iface, reg):
                    raise not_found(f"no exposed service {iface!r}", service=iface, method=method)
                group = (req.headers.get(GROUP_HEADER) or "") if auto.header_overrides else ""
                svc = self.directory.lookup(st, iface, group)
                if svc is not None and self.directory.never_provided(svc):
                    self.directory.drop(st, svc)
                    svc = None
                if svc is None:
                    raise not_found(f"no exposed service {iface!r}", service=iface, method=method)
                if not svc.exposes(method) or not st.exposure.method(iface, method, reg):
                    raise not_found(
                        f"method {method!r} of {iface} is not exposed", service=iface, method=method
                    )
                try:
                    call = auto_call(st, method, req, auto.header_overrides)
                except GatewayError as e:
                    e.route = AUTO_ROUTE  # type: ignore[attr-defined]
                    raise
                return AUTO_ROUTE, svc, call
        allowed = st.routes.allowed_methods(path)
        if allowed:
            raise GatewayError(
                405,
                "method_not_allowed",
                f"{req.method} {path} not routed; allowed: {', '.join(allowed)}",
            )
        raise not_found(f"no route for {req.method} {path}")


class _Reply(Later):
    """The fast path's answer: the waiter ``send_fast`` hands the provider connection. The
    reply (or the call's error) is rendered and handed to the listener right in the
    connection's ``data_received``, with no future and no loop hop in between."""

    __slots__ = ("ctx", "prep", "svc")

    def __init__(self, svc: Service, prep: Prepared, ctx: RequestContext) -> None:
        self.resp = None  # Later's state, set here: one call less per request
        self._exc = None
        self._then = None
        self.svc = svc
        self.prep = prep
        self.ctx = ctx

    def set_result(self, answer: Any) -> None:
        self._complete(answer, None)

    def set_exception(self, exc: BaseException) -> None:
        self._complete(None, exc)

    def _complete(self, answer: Any, exc: BaseException | None) -> None:
        # (called once: the connection completes a waiter that is not ``done()`` yet)
        svc, prep = self.svc, self.prep
        try:
            try:
                resp = result_response(svc, prep.call, svc.finish(prep, answer, exc))
            except GatewayError as e:
                resp = error_response(e)
            Gateway._done(self.ctx, resp)
        except (Exception, asyncio.CancelledError) as e:  # the listener answers it as it
            self.fail(e)  # answers a failed handler (500): never a request left hanging
            return
        self.resolve(resp)
