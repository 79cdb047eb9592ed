"""The gateway: HTTP requests -> routes -> Dubbo calls -> JSON responses.

Routes compile once into a ``RouteTable`` (exact paths in a dict, templates as regexes).
Everything a request is routed by — routes, services, registries, auto-route and tracing
settings — sits in one immutable ``RoutingState``; the handler reads ``self.state`` once per
request, and a config reload (gateway/ops/hotconfig.py) builds a new state and swaps that one
reference, so connections, upstream pools and unchanged services' subscriptions live on.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import parse_qs, quote

import orjson
from tribridge.codecs.hessian2 import HessianError, PairMap, parse_types
from tribridge.config.limits import json_elements_exceed
from tribridge.config.model import AutoRoutes, GatewayConfig, ParamSource, RouteConfig
from tribridge.config.services import ServiceConfig
from tribridge.errors import GatewayError, bad_request, not_found
from tribridge.http.headers import passthrough_names, timeout_header, under_prefix
from tribridge.http.messages import HttpLimits, Request, Response
from tribridge.http.server import HttpServer
from tribridge.invoke.invoker import Call, Service
from tribridge.invoke.jsonmap import JSONDecodeError, dumps, loads
from tribridge.ops.accesslog import AccessLog
from tribridge.ops.metrics import RequestStats
from tribridge.ops.tracing import Tracer
from tribridge.registries import open_registry
from tribridge.registries.base import Registry, ServiceKey
from tribridge.registries.static import StaticRegistry
from tribridge.routing.idl_routes import IdlRouter
from tribridge.security.exposure import Exposure, reserved_method
from tribridge.security.tls import client_tls_for
from tribridge.streaming.calls import Element, Streams
from tribridge.streaming.websocket import is_upgrade
from tribridge.upstream.pool import PoolSet

log = logging.getLogger("tribridge")
access_log = logging.getLogger("tribridge.access")

TYPES_HEADER = "x-tribridge-types"
#: auto-routed services followed at once (each holds a registry subscription)
MAX_AUTO_SERVICES = 4096
VERSION_HEADER = "x-dubbo-version"
GROUP_HEADER = "x-dubbo-group"
_VAR = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MISSING = object()
_perf = time.perf_counter
#: metrics route label of auto routes (``POST /{interface}/{method}``)
AUTO_ROUTE = "auto"


@dataclass
class CompiledRoute:
    cfg: RouteConfig
    regex: re.Pattern[str] | None
    label: str = ""

    def __post_init__(self) -> None:
        self.label = f"{self.cfg.http_method} {self.cfg.path}"


class RouteTable:
    """Immutable once built."""

    def __init__(self, routes: list[RouteConfig]) -> None:
        self.exact: dict[tuple[str, str], CompiledRoute] = {}
        self.templated: list[CompiledRoute] = []
        for r in routes:
            if "{" in r.path:
                pattern = (
                    "^"
                    + _VAR.sub(
                        lambda m: f"(?P<{m.group(1)}>[^/]+)",
                        re.escape(r.path).replace(r"\{", "{").replace(r"\}", "}"),
                    )
                    + "$"
                )
                self.templated.append(CompiledRoute(r, re.compile(pattern)))
            else:
                self.exact[(r.http_method, r.path)] = CompiledRoute(r, None)

    def match(self, method: str, path: str) -> tuple[CompiledRoute, dict[str, str]] | None:
        hit = self.exact.get((method, path))
        if hit is not None:
            return hit, {}
        for cr in self.templated:
            if cr.cfg.http_method != method:
                continue
            m = cr.regex.match(path) if cr.regex else None
            if m:
                return cr, m.groupdict()
        return None

    def allowed_methods(self, path: str) -> list[str]:
        out = {m for (m, p) in self.exact if p == path}
        out.update(cr.cfg.http_method for cr in self.templated if cr.regex and cr.regex.match(path))
        return sorted(out)


@dataclass(frozen=True, slots=True)
class RoutingState:
    """What one config means for routing; never mutated, replaced whole on reload."""

    cfg: GatewayConfig
    routes: RouteTable
    services: Mapping[str, Service]  # configured services by interface
    registries: Mapping[str, Registry]
    auto: AutoRoutes | None
    passthrough: tuple[str, ...]
    tracer: Tracer
    version: str
    exposure: Exposure
    guard: Any = None  # guard.Guard (auth, rate limits) or None
    idl: IdlRouter | None = None
    loaded_at: float = field(default_factory=time.time)

    def registry_for(self, sc: Any) -> Registry | None:
        name = self.registry_name(sc)
        return self.registries[name] if name is not None else None

    def registry_name(self, sc: Any) -> str | None:
        if sc.registry in self.registries:
            return str(sc.registry)
        return next(iter(self.registries), None)


def build_state(
    cfg: GatewayConfig,
    services: Mapping[str, Service],
    registries: Mapping[str, Registry],
    guard: Any = None,
    idl: IdlRouter | None = None,
) -> RoutingState:
    return RoutingState(
        cfg=cfg,
        routes=RouteTable(cfg.routes),
        services=dict(services),
        registries=dict(registries),
        auto=cfg.auto,
        passthrough=passthrough_names(cfg),
        tracer=Tracer(cfg.tracing),
        version=cfg.digest or "unversioned",
        exposure=Exposure(
            cfg.auto.expose if cfg.auto is not None else [],
            {n: r["expose"] for n, r in cfg.registries.items() if r.get("expose") is not None},
        ),
        guard=guard,
        idl=idl,
    )


def build_idl(
    cfg: GatewayConfig, guard: Any, pools: PoolSet, streams: Any = None
) -> IdlRouter | None:
    if not cfg.idl_services:
        return None
    idl = IdlRouter(
        cfg.idl_services,
        cfg.idl_routes,
        cfg.auto.prefix if cfg.auto is not None else "/",
        passthrough_names(cfg),
        pools.triple_client(),
    )
    idl.guard = guard
    idl.max_json_elements = cfg.max_json_elements
    idl.streams = streams
    return idl


def open_registries(cfg: GatewayConfig) -> dict[str, Registry]:
    out: dict[str, Registry] = {}
    for name, r in cfg.registries.items():
        out[name] = open_one_registry(name, r)
    return out


def open_one_registry(name: str, spec: dict[str, Any]) -> Registry:
    if "url" in spec:
        return open_registry(spec["url"], name)
    return StaticRegistry(spec["services"], name)


def _json_body(req: Request, max_elements: int) -> Any:
    if not req.body.strip():
        return _MISSING
    try:
        doc = loads(req.body)  # exact: big integers and long decimals are not rounded
    except JSONDecodeError as e:
        raise GatewayError(400, "invalid_json", f"request body is not valid JSON: {e}") from None
    if json_elements_exceed(req.body, doc, max_elements):
        # each value costs microseconds to coerce, police and encode: a 1 MB body of
        # ``[[],[],...]`` would hold the event loop for a second (docs/security.md)
        raise GatewayError(
            400,
            "too_many_elements",
            f"request body holds more than {max_elements} JSON values (limits.max_json_elements)",
        )
    return doc


def _field(body: Any, dotted: str) -> Any:
    cur = body
    for part in dotted.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return _MISSING
    return cur


class Gateway:
    def __init__(self, cfg: GatewayConfig) -> None:
        self.pools = PoolSet(cfg.upstream)
        #: streams over SSE, NDJSON and WebSocket (docs/streaming.md)
        self.streams = Streams(cfg.streaming)
        registries = open_registries(cfg)
        probe = build_state(cfg, {}, registries)
        services = {sc.interface: self._new_service(probe, sc) for sc in cfg.services}
        guard = cfg.security.guard()
        self.state: RoutingState = build_state(
            cfg, services, registries, guard, build_idl(cfg, guard, self.pools, self.streams)
        )
        #: auto-routed services discovered at run time (outside the immutable state)
        self._auto: dict[str, Service] = {}
        self.http: HttpServer | None = None
        self.admin: Any = None  # gateway/ops/admin.py AdminServer when ``admin.port`` is set
        self.watcher: Any = None  # gateway/ops/hotconfig.py ConfigWatcher when watching a file
        self.started = time.time()
        self.stats = RequestStats()
        #: the HTTP server's access_log hook while ``cfg.access_log`` (lines in batches)
        self.access = AccessLog(access_log)
        self.reload_counts: dict[str, int] = {"ok": 0, "rejected": 0, "unchanged": 0}
        self._reload_lock = asyncio.Lock()
        self._metrics: Any = None

        from tribridge.relay.links import (
            attach as attach_relay,  # Dubbo2 ingress and relay links
        )

        self.relay = attach_relay(self)

    def _new_service(self, st: RoutingState, sc: ServiceConfig) -> Service:
        svc = Service(sc, self.pools)
        self.secure_service(st, svc)
        return svc

    @staticmethod
    def secure_service(st: RoutingState, svc: Service) -> None:
        """Class policy and upstream TLS of ``st``'s config (re-applied to kept services on
        reload: plain attribute stores, atomic for requests in flight)."""
        sec = st.cfg.security
        svc.class_policy = sec.classes
        profiles = sec.upstream_tls
        reg = st.registry_name(svc.cfg)
        svc.tls_for = lambda iface, ep: client_tls_for(profiles, iface, reg, ep)

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
        uses ``state.services`` and ``_auto`` directly)."""
        return self.all_services()

    def all_services(self) -> dict[str, Service]:
        out = dict(self._auto)
        out.update(self.state.services)
        return out

    def registry_status(self) -> dict[str, dict[str, Any]]:
        """Each registry's own status plus what the gateway saw: newest snapshot time and
        whether every snapshot from it is healthy."""
        st = self.state
        out: dict[str, dict[str, Any]] = {}
        for name, reg in st.registries.items():
            try:
                info = dict(reg.status())
                # rejected registry records (registries/records.py), for every source alike
                info.setdefault("skipped_records", reg.skips.summary())
            except Exception as e:  # a status() bug must not break /metrics
                info = {"name": name, "status_error": str(e)}
            snaps = [
                s.snapshot
                for s in self.all_services().values()
                if st.registry_for(s.cfg) is reg and not s.snapshot.pending
            ]
            info.setdefault("connected", all(s.healthy for s in snaps) if snaps else True)
            info.setdefault("last_sync", max((s.at for s in snaps), default=None))
            info["services"] = len(snaps)
            errors = sorted({s.error for s in snaps if s.error})
            if errors:
                info["errors"] = errors
            out[name] = info
        return out

    def metrics_text(self) -> bytes:
        if self._metrics is None:
            from tribridge.ops.metrics import make_registry

            self._metrics = make_registry(self)[1]
        return self._metrics()

    async def reload(self, cfg: GatewayConfig) -> list[str]:
        """Swap in a new config without dropping anything; returns warnings (settings that
        need a restart).  Raises ``ConfigError`` (old config kept) when it cannot apply."""
        from tribridge.config.model import ConfigError
        from tribridge.ops.hotconfig import apply_config

        async with self._reload_lock:
            try:
                warnings = await apply_config(self, cfg)
            except ConfigError:
                self.reload_counts["rejected"] += 1
                raise
            self.reload_counts["ok"] += 1
            return warnings

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
            self._subscribe(st, svc)
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
            from tribridge.ops.admin import AdminServer

            self.admin = AdminServer(self)
            await self.admin.start(self.cfg.admin_host, admin_port)

    def watch(self, path: str, interval: float | None = None) -> None:
        """Follow the config file: poll it every ``interval`` s (config ``reload.interval``;
        0 = never) and re-read it on ``check_now()`` (SIGHUP)."""
        from tribridge.ops.hotconfig import ConfigWatcher

        if self.watcher is not None:
            self.watcher.stop()
        self.watcher = ConfigWatcher(self, path, interval)
        self.watcher.start()

    @property
    def port(self) -> int:
        assert self.http is not None
        return self.http.port

    async def stop(self, grace: float = 10.0) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        if self.admin is not None:
            await self.admin.stop()
        if self.relay is not None:
            await self.relay.stop(grace)
        if self.http is not None:
            await self.http.shutdown(grace)
        self.access.flush()  # the last lines, not a timer's wait later
        from tribridge.ops.hotconfig import retire_now

        await retire_now(self)  # components replaced by reloads and not closed yet
        await self.pools.aclose()
        st = self.state
        if st.idl is not None:
            await st.idl.close()
        for r in st.registries.values():
            await r.close()
        if st.guard is not None:
            await st.guard.close()

    def _subscribe(self, st: RoutingState, svc: Service) -> None:
        reg = st.registry_for(svc.cfg)
        if reg is None:
            return
        svc.registry = reg
        snap = reg.subscribe(svc.cfg.key, svc.update)
        if snap is not None:
            svc.update(snap)

    def _auto_service(self, st: RoutingState, interface: str, group: str = "") -> Service | None:
        """The configured service, else the auto service of (interface, group): a group is
        a separate Dubbo service (an empty group matches only ungrouped providers), so the
        x-dubbo-group header picks its own subscription, as the Dubbo2 ingress does; every
        version stays in one snapshot and the call's version filters it."""
        svc = st.services.get(interface)
        if svc is not None:
            return svc
        key = str(ServiceKey(interface, "", group))  # "interface" or "group/interface"
        svc = self._auto.get(key)
        if svc is not None:
            return svc
        if not st.exposure.service(interface, st.registry_name(ServiceConfig(interface))):
            return None
        if len(self._auto) >= MAX_AUTO_SERVICES:
            raise GatewayError(
                503, "too_many_services", f"more than {MAX_AUTO_SERVICES} auto-routed services"
            )
        svc = self._new_service(st, ServiceConfig(interface, group=group))
        self._subscribe(st, svc)
        if not svc.snapshot.endpoints and not svc.snapshot.pending:
            self._drop_auto(st, svc)
            return None
        self._auto[key] = svc
        return svc

    def _drop_auto(self, st: RoutingState, svc: Service) -> None:
        """Forget an auto service nobody provides, so unknown names hold no watches."""
        reg = st.registry_for(svc.cfg)
        if reg is not None:
            reg.unsubscribe(svc.cfg.key, svc.update)
        svc.release()
        key = str(svc.cfg.key)
        if self._auto.get(key) is svc:
            del self._auto[key]

    async def _after_guard(
        self,
        st: RoutingState,
        pending: Any,
        svc: Service,
        call: Call,
        label: str,
        t0: float,
        trace: Any,
    ) -> Response:
        """Authentication had to fetch keys first; then the call goes the slow way."""
        try:
            await pending
        except GatewayError as e:
            return self._done(st, _error(e), label, svc.cfg.interface, call.method, t0, trace)
        if svc.snapshot.pending:
            return await self._after_settle(st, svc, call, label, t0, trace)
        try:
            prep = svc.prepare(call)
        except GatewayError as e:
            return self._done(st, _error(e), label, svc.cfg.interface, call.method, t0, trace)
        return await self._invoke_slow(st, svc, prep, label, t0, trace)

    def _never_provided(self, svc: Service) -> bool:
        """An auto service the registry has answered about but never had a provider for:
        answer 404 and hold no watch (a name that once had providers answers 503)."""
        snap = svc.snapshot
        return (
            self._auto.get(str(svc.cfg.key)) is svc
            and not snap.pending
            and not snap.endpoints
            and not svc.ever_provided
        )

    async def _after_settle(
        self, st: RoutingState, svc: Service, call: Call, label: str, t0: float, trace: Any
    ) -> Response:
        """First call of a service whose registry has not answered yet: wait briefly."""
        try:
            await svc.settled(st.cfg.registry_wait)
            if self._never_provided(svc):
                self._drop_auto(st, svc)
                raise not_found(
                    f"no exposed service {svc.cfg.interface!r}: no provider registered",
                    service=svc.cfg.interface,
                    method=call.method,
                )
            prep = svc.prepare(call)
            resp = self._result_response(svc, call, await svc.invoke_prepared(prep))
        except GatewayError as e:
            resp = _error(e)
        return self._done(st, resp, label, svc.cfg.interface, call.method, t0, trace)

    # ---- request handling ----------------------------------------------------------------

    def handle(self, req: Request) -> Response | asyncio.Future[Response] | Any:
        """Answer directly, with a future completed by the provider's reply (the common
        case: no task per request), or with a coroutine when a connection must be opened."""
        st = self.state  # read once: a reload during this request does not mix configs
        if st.idl is not None:
            idl = st.idl.handle(req)
            if idl is not None:
                return idl
        t0 = _perf()
        trace = None
        try:
            target = self._route(st, req)
            if type(target) is Response:
                return target
            label, svc, call = target  # type: ignore[misc]
            tracer = st.tracer
            if tracer.active:
                trace = tracer.inject(req.headers, call.attachments, svc.cfg.interface, call.method)
            kind = self.streams.kind(req, svc.cfg, call.method)
            if kind is not None:
                return self._stream(st, req, svc, call, kind, label, t0, trace)
            guard = st.guard
            if guard is not None:
                pending = guard.check(req, svc.cfg.interface, call.method, call.attachments)
                if pending is not None:
                    return self._after_guard(st, pending, svc, call, label, t0, trace)
            if svc.snapshot.pending:
                return self._after_settle(st, svc, call, label, t0, trace)
            prep = svc.prepare(call)
            sent = svc.send_fast(prep)
        except GatewayError as e:
            x = e.extra
            return self._done(
                st,
                _error(e),
                getattr(e, "route", ""),
                x.get("service", ""),
                x.get("method", ""),
                t0,
                trace,
            )
        if sent is None:
            return self._invoke_slow(st, svc, prep, label, t0, trace)
        pool, fut = sent
        out: asyncio.Future[Response] = fut.get_loop().create_future()
        fut.add_done_callback(partial(self._finish, st, svc, prep, pool, out, label, t0, trace))
        return out

    def _stream(
        self,
        st: RoutingState,
        req: Request,
        svc: Service,
        call: Call,
        kind: str,
        label: str,
        t0: float,
        trace: Any,
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
            lambda v: self._result_response(svc, call, Element(v)).body,
            lambda status: self._done(
                st, Response(status), label, svc.cfg.interface, call.method, t0, trace
            ),
        )

    def _done(
        self,
        st: RoutingState,
        resp: Response,
        label: str,
        service: str,
        method: str,
        t0: float,
        trace: Any,
    ) -> Response:
        """Count the response (and end its span); every routed request passes here once."""
        status = resp.status
        self.stats.observe(label, service, method, status, _perf() - t0)
        if trace is not None:
            tr = st.tracer.finish(trace, status)
            if tr is not None:
                resp.headers.append(("traceresponse", tr))
        return resp

    def _finish(
        self,
        st: RoutingState,
        svc: Service,
        prep: Any,
        pool: Any,
        out: asyncio.Future[Response],
        label: str,
        t0: float,
        trace: Any,
        fut: asyncio.Future[Any],
    ) -> None:
        try:
            resp = self._result_response(svc, prep.call, svc.finish(prep, pool, fut))
        except GatewayError as e:
            resp = _error(e)
        except Exception as e:
            if not out.done():
                out.set_exception(e)
            return
        self._done(st, resp, label, svc.cfg.interface, prep.call.method, t0, trace)
        if not out.done():
            out.set_result(resp)

    async def _invoke_slow(
        self, st: RoutingState, svc: Service, prep: Any, label: str, t0: float, trace: Any
    ) -> Response:
        try:
            resp = self._result_response(svc, prep.call, await svc.invoke_prepared(prep))
        except GatewayError as e:
            resp = _error(e)
        return self._done(st, resp, label, svc.cfg.interface, prep.call.method, t0, trace)

    def _route(self, st: RoutingState, req: Request) -> Response | tuple[str, Service, Call]:
        path = req.path
        if path == "/healthz":
            return Response(200, b'{"status":"ok"}')
        if path == "/readyz":
            return self._ready(st)
        if path == "/metrics" and st.cfg.metrics_on_main and req.method == "GET":
            return Response(200, self.metrics_text(), content_type=_PROM_CT)
        hit = st.routes.match(req.method, path)
        if hit is not None:
            cr, path_vars = hit
            svc = st.services[cr.cfg.service]
            try:
                return cr.label, svc, self._explicit_call(st, cr.cfg, svc, req, path_vars)
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
                svc = self._auto_service(st, iface, group)
                if svc is not None and self._never_provided(svc):
                    self._drop_auto(st, svc)
                    svc = None
                if svc is None:
                    raise not_found(f"no exposed service {iface!r}", service=iface, method=method)
                if not svc.exposes(method) or not st.exposure.method(iface, method, reg):
                    raise not_found(
                        f"method {method!r} of {iface} is not exposed", service=iface, method=method
                    )
                try:
                    call = self._auto_call(st, svc, method, req, auto.header_overrides)
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

    def _ready(self, st: RoutingState) -> Response:
        """503 while any service (Java or IDL) has no provider, which includes every
        registry-discovered service whose registry has not answered yet (``pending``)."""
        states = [
            (str(s.cfg.key), s.snapshot.pending, bool(s.snapshot.endpoints))
            for s in self.all_services().values()
        ]
        if st.idl is not None:
            states += [
                (str(s.cfg.key), s.pending, bool(s.targets)) for s in st.idl.services.values()
            ]
        missing = [k for k, pending, has in states if pending or not has]
        body = {
            "ready": not missing,
            "services": len(states),
            "without_providers": missing,
            "pending": [k for k, pending, _ in states if pending],
        }
        return Response(200 if not missing else 503, orjson.dumps(body))

    def _attachments(self, st: RoutingState, req: Request) -> dict[str, str]:
        h = req.headers
        return {k: h[k] for k in st.passthrough if k in h}

    def _auto_call(
        self, st: RoutingState, svc: Service, method: str, req: Request, overrides: bool
    ) -> Call:
        body = _json_body(req, st.cfg.max_json_elements)
        if body is _MISSING:
            args: list[Any] = []
        elif isinstance(body, list):
            args = body
        elif isinstance(body, dict):
            args = [body]
        else:
            args = [body]
        h = req.headers
        types = None
        hint = h.get(TYPES_HEADER)
        if hint is not None:
            try:
                types = parse_types(hint)
            except HessianError as e:
                raise bad_request(f"{TYPES_HEADER}: {e}") from None
        call = Call(method, args, types, attachments=self._attachments(st, req))
        if overrides:
            call.version = h.get(VERSION_HEADER)
            call.group = h.get(GROUP_HEADER)
            call.timeout = timeout_header(h)
        return call

    def _explicit_call(
        self,
        st: RoutingState,
        rc: RouteConfig,
        svc: Service,
        req: Request,
        path_vars: dict[str, str],
    ) -> Call:
        args: list[Any] = []
        types: list[Any] = []
        body: Any = _MISSING
        query: dict[str, list[str]] | None = None
        for p in rc.params:
            value: Any
            if p.source == "path":
                value = path_vars.get(p.name or "", _MISSING)
            elif p.source == "query":
                if query is None:
                    query = parse_qs(req.query, keep_blank_values=True)
                vals = query.get(p.name or "")
                value = (
                    _MISSING
                    if not vals
                    else (
                        vals
                        if p.type is not None and p.type.kind in ("array", "list", "set")
                        else vals[-1]
                    )
                )
            elif p.source == "header":
                value = req.headers.get((p.name or "").lower(), _MISSING)
            elif p.source == "const":
                value = p.default
            else:
                if body is _MISSING:
                    body = _json_body(req, st.cfg.max_json_elements)
                value = (
                    body
                    if p.source == "body"
                    else (_field(body, p.name or "") if body is not _MISSING else _MISSING)
                )
            if value is _MISSING:
                if p.required:
                    raise bad_request(self._missing_msg(p), service=rc.service, method=rc.method)
                value = p.default
            args.append(value)
            types.append(p.type)
        call = Call(rc.method, args, attachments=self._attachments(st, req))
        if all(t is not None for t in types) and rc.method not in svc.cfg.methods:
            call.types = types
        call.version = rc.version
        call.group = rc.group
        call.timeout = rc.timeout
        return call

    @staticmethod
    def _missing_msg(p: ParamSource) -> str:
        where = {
            "path": "path variable",
            "query": "query parameter",
            "header": "header",
            "body": "request body",
            "body_field": "body field",
        }[p.source]
        return f"missing {where}" + (f" {p.name!r}" if p.name and p.source != "body" else "")

    def _result_response(self, svc: Service, call: Call, res: Any) -> Response:
        if not res.ok:
            raise svc.result_error(res, call)
        value = res.value
        enums = svc.enum_classes
        if enums:
            value = _enum_names(value, enums)
        if not svc.cfg.include_class:
            value = _strip_class(value)
        try:
            body = dumps(value)
        except ValueError as e:
            raise GatewayError(
                502, "unrepresentable_result", str(e), service=svc.cfg.interface, method=call.method
            ) from None
        if svc.cfg.response_attachments and res.attachments:
            return Response(
                200, body, attachment_headers(res.attachments, svc.cfg.response_attachments)
            )
        return Response(200, body)


#: prefix of the response headers that carry provider response attachments
ATTACHMENT_HEADER = "x-dubbo-attachment-"


def attachment_headers(attachments: dict[str, Any], wanted: list[str]) -> list[tuple[str, str]]:
    """``x-dubbo-attachment-<name>`` headers for the configured response attachments.
    Names are matched case-insensitively and sent lower-cased; strings that are not
    printable ASCII are percent-encoded (UTF-8), bytes base64-encoded, other values JSON."""
    every = "*" in wanted
    out: list[tuple[str, str]] = []
    for key, value in attachments.items():
        name = str(key).lower()
        if not (every or name in wanted) or not _HEADER_TOKEN.match(name):
            continue
        if isinstance(value, (bytes, bytearray)):
            text = base64.b64encode(bytes(value)).decode()
        elif isinstance(value, str):
            text = (
                value
                if _PRINTABLE.match(value)
                else quote(value, safe=" !\"#$&'()*+,/:;<=>?@[]^`{|}~")
            )
        else:
            try:
                text = dumps(value).decode()
            except ValueError:
                continue
        out.append((ATTACHMENT_HEADER + name, text))
    return out


_HEADER_TOKEN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_PRINTABLE = re.compile(r"^[\x20-\x7e]*$")


_PROM_CT = "text/plain; version=0.0.4; charset=utf-8"


def _error(e: GatewayError) -> Response:
    headers = getattr(e, "headers", None)
    return Response(e.status, e.body(), list(headers) if headers else [])


def _enum_names(v: Any, enums: frozenset[str]) -> Any:
    """Enum objects -> their constant name, as Dubbo's generic results do."""
    if isinstance(v, dict):
        if v.get("class") in enums and "name" in v and len(v) == 2:
            return v["name"]
        return {k: _enum_names(x, enums) for k, x in v.items()}
    if isinstance(v, list):
        return [_enum_names(x, enums) for x in v]
    if isinstance(v, PairMap):
        # enum keys (Map<Color, V>) decode as objects, which Python cannot hash: once they are
        # names the map is an ordinary JSON object, as for any other map
        pairs = [(_enum_names(k, enums), _enum_names(x, enums)) for k, x in v.pairs]
        if all(isinstance(k, (str, int, float, bool)) or k is None for k, _ in pairs):
            return dict(pairs)
        return PairMap(v.type, pairs)
    return v


def _strip_class(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _strip_class(x) for k, x in v.items() if k != "class"}
    if isinstance(v, list):
        return [_strip_class(x) for x in v]
    return v


def setup_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access_log.addHandler(handler)
    access_log.setLevel(level)
    access_log.propagate = False
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


async def serve_forever(gw: Gateway) -> None:
    """Until SIGINT/SIGTERM; SIGHUP re-reads the config file the gateway watches."""
    import signal

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        loop.add_signal_handler(signal.SIGHUP, _on_sighup, gw)
    except (NotImplementedError, RuntimeError, AttributeError):
        pass
    await stop.wait()
    await gw.stop()


def _on_sighup(gw: Gateway) -> None:
    if gw.watcher is None:
        log.warning("SIGHUP: no config file to re-read (not started with -c FILE)")
        return
    gw.watcher.check_now()
