"""The gateway: HTTP requests -> routes -> Dubbo calls -> JSON responses.

Routes compile once into a ``RouteTable`` (exact paths in a dict, templates as regexes);
the handler reads the current table through one attribute, so a new table can be swapped in
without touching connections.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import parse_qs

import orjson
from tribridge.codecs.hessian2 import HessianError, parse_types
from tribridge.registries import open_registry
from tribridge.registries.base import Registry
from tribridge.registries.static import StaticRegistry

from .config import GatewayConfig, ParamSource, RouteConfig
from .errors import GatewayError, bad_request, not_found
from .exposure import Exposure, reserved_method
from .headers import timeout_header
from .http_server import HttpLimits, HttpServer, Request, Response
from .idl_gateway import IdlRouter
from .invoker import Call, Service, ServiceConfig
from .jsonmap import dumps
from .tls import client_tls_for
from .upstream import PoolSet

log = logging.getLogger("tribridge")
access_log = logging.getLogger("tribridge.access")

TYPES_HEADER = "x-tribridge-types"
#: auto-routed services followed at once (each holds a registry subscription)
MAX_AUTO_SERVICES = 4096
VERSION_HEADER = "x-dubbo-version"
GROUP_HEADER = "x-dubbo-group"
_VAR = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MISSING = object()


@dataclass
class CompiledRoute:
    cfg: RouteConfig
    regex: re.Pattern[str] | None


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


def _json_body(req: Request) -> Any:
    if not req.body.strip():
        return _MISSING
    try:
        return orjson.loads(req.body)
    except orjson.JSONDecodeError as e:
        raise GatewayError(400, "invalid_json", f"request body is not valid JSON: {e}") from None


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
        self.cfg = cfg
        self.pools = PoolSet(cfg.upstream)
        self.registries: dict[str, Registry] = {}
        for name, r in cfg.registries.items():
            if "url" in r:
                self.registries[name] = open_registry(r["url"], name)
            else:
                self.registries[name] = StaticRegistry(r["services"], name)
        self.services: dict[str, Service] = {}
        sec = cfg.security
        self.guard = sec.guard()
        self.class_policy = sec.classes
        for sc in cfg.services:
            self.services[sc.interface] = self._new_service(sc)
        self.routes = RouteTable(cfg.routes)
        self.http: HttpServer | None = None
        self.started = time.time()
        self._passthrough = tuple(cfg.passthrough_headers)
        self._auto: set[str] = set()
        self.exposure = Exposure(
            cfg.auto.expose if cfg.auto is not None else [],
            {n: r["expose"] for n, r in cfg.registries.items() if r.get("expose") is not None},
        )

        self.idl: IdlRouter | None = None
        if cfg.idl_services:
            self.idl = IdlRouter(
                cfg.idl_services,
                cfg.idl_routes,
                cfg.auto.prefix if cfg.auto is not None else "/",
                self._passthrough,
                self.pools.triple_client(),
            )
            self.idl.guard = self.guard
        from .relay import attach as attach_relay  # Dubbo2 ingress and relay links

        self.relay = attach_relay(self)

    def _new_service(self, sc: ServiceConfig) -> Service:
        svc = Service(sc, self.pools)
        svc.class_policy = self.class_policy
        profiles = self.cfg.security.upstream_tls
        reg = self._registry_name(sc)
        svc.tls_for = lambda iface, ep: client_tls_for(profiles, iface, reg, ep)
        return svc

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self, host: str | None = None, port: int | None = None, **kw: Any) -> None:
        for r in self.registries.values():
            await r.start()
        for svc in self.services.values():
            self._subscribe(svc)
        if self.idl is not None:
            self.idl.subscribe(self._registry_for)  # type: ignore[arg-type]
        if self.relay is not None:
            await self.relay.start()
        limits = HttpLimits(**self.cfg.limits)
        self.http = HttpServer(
            self.handle,
            limits,
            access_log=self._access if self.cfg.access_log else None,
        )
        tls = self.cfg.security.listen_tls
        if tls is not None and "ssl" not in kw:
            kw["ssl"] = tls.context()
        await self.http.start(host or self.cfg.host, self.cfg.port if port is None else port, **kw)

    @property
    def port(self) -> int:
        assert self.http is not None
        return self.http.port

    async def stop(self, grace: float = 10.0) -> None:
        if self.relay is not None:
            await self.relay.stop(grace)
        if self.http is not None:
            await self.http.shutdown(grace)
        await self.pools.aclose()
        if self.idl is not None:
            await self.idl.close()
        for r in self.registries.values():
            await r.close()
        if self.guard is not None:
            await self.guard.close()

    def _registry_for(self, sc: ServiceConfig) -> Registry | None:
        name = self._registry_name(sc)
        return self.registries[name] if name is not None else None

    def _registry_name(self, sc: ServiceConfig) -> str | None:
        if sc.registry in self.registries:
            return sc.registry
        return next(iter(self.registries), None)

    def _subscribe(self, svc: Service) -> None:
        reg = self._registry_for(svc.cfg)
        if reg is None:
            return
        snap = reg.subscribe(svc.cfg.key, svc.update)
        if snap is not None:
            svc.update(snap)

    def _auto_service(self, interface: str) -> Service | None:
        svc = self.services.get(interface)
        if svc is not None:
            return svc
        if not self.exposure.service(interface, self._registry_name(ServiceConfig(interface))):
            return None
        if len(self._auto) >= MAX_AUTO_SERVICES:
            raise GatewayError(
                503, "too_many_services", f"more than {MAX_AUTO_SERVICES} auto-routed services"
            )
        svc = self._new_service(ServiceConfig(interface))
        self._subscribe(svc)
        if not svc.snapshot.endpoints and not svc.snapshot.pending:
            self._drop_auto(svc)
            return None
        self.services[interface] = svc
        self._auto.add(interface)
        return svc

    def _drop_auto(self, svc: Service) -> None:
        """Forget an auto service nobody provides, so unknown names hold no watches."""
        reg = self._registry_for(svc.cfg)
        if reg is not None:
            reg.unsubscribe(svc.cfg.key, svc.update)
        if self.services.get(svc.cfg.interface) is svc:
            del self.services[svc.cfg.interface]
        self._auto.discard(svc.cfg.interface)

    async def _after_guard(self, pending: Any, svc: Service, call: Call) -> Response:
        """Authentication had to fetch keys first; then the call goes the slow way."""
        try:
            await pending
        except GatewayError as e:
            return _error(e)
        if svc.snapshot.pending:
            return await self._after_settle(svc, call)
        try:
            prep = svc.prepare(call)
        except GatewayError as e:
            return _error(e)
        return await self._invoke_slow(svc, prep)

    def _never_provided(self, svc: Service) -> bool:
        """An auto service the registry has answered about but never had a provider for:
        answer 404 and hold no watch (a name that once had providers answers 503)."""
        snap = svc.snapshot
        return (
            svc.cfg.interface in self._auto
            and not snap.pending
            and not snap.endpoints
            and not svc.ever_provided
        )

    async def _after_settle(self, svc: Service, call: Call) -> Response:
        """First call of a service whose registry has not answered yet: wait briefly."""
        try:
            await svc.settled(self.cfg.registry_wait)
            if self._never_provided(svc):
                self._drop_auto(svc)
                raise not_found(
                    f"no exposed service {svc.cfg.interface!r}: no provider registered",
                    service=svc.cfg.interface,
                    method=call.method,
                )
            prep = svc.prepare(call)
            return self._result_response(svc, call, await svc.invoke_prepared(prep))
        except GatewayError as e:
            return _error(e)

    # ---- request handling ----------------------------------------------------------------

    def _access(self, req: Request, resp: Response, elapsed: float) -> None:
        access_log.info(
            orjson.dumps(
                {
                    "ts": round(time.time(), 3),
                    "method": req.method,
                    "path": req.path,
                    "status": resp.status,
                    "ms": round(elapsed * 1000, 3),
                    "client": req.client[0] if req.client else None,
                    "bytes": len(resp.body),
                }
            ).decode()
        )

    def handle(self, req: Request) -> Response | asyncio.Future[Response] | Any:
        """Answer directly, with a future completed by the provider's reply (the common
        case: no task per request), or with a coroutine when a connection must be opened."""
        if self.idl is not None:
            idl = self.idl.handle(req)
            if idl is not None:
                return idl
        try:
            target = self._route(req)
            if isinstance(target, Response):
                return target
            svc, call = target
            if self.guard is not None:
                pending = self.guard.check(req, svc.cfg.interface, call.method, call.attachments)
                if pending is not None:
                    return self._after_guard(pending, svc, call)
            if svc.snapshot.pending:
                return self._after_settle(svc, call)
            prep = svc.prepare(call)
            sent = svc.send_fast(prep)
        except GatewayError as e:
            return _error(e)
        if sent is None:
            return self._invoke_slow(svc, prep)
        pool, fut = sent
        out: asyncio.Future[Response] = fut.get_loop().create_future()
        fut.add_done_callback(partial(self._finish, svc, prep, pool, out))
        return out

    def _finish(
        self,
        svc: Service,
        prep: Any,
        pool: Any,
        out: asyncio.Future[Response],
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
        if not out.done():
            out.set_result(resp)

    async def _invoke_slow(self, svc: Service, prep: Any) -> Response:
        try:
            return self._result_response(svc, prep.call, await svc.invoke_prepared(prep))
        except GatewayError as e:
            return _error(e)

    def _route(self, req: Request) -> Response | tuple[Service, Call]:
        path = req.path
        if path == "/healthz":
            return Response(200, b'{"status":"ok"}')
        if path == "/readyz":
            return self._ready()
        hit = self.routes.match(req.method, path)
        if hit is not None:
            cr, path_vars = hit
            svc = self.services[cr.cfg.service]
            return svc, self._explicit_call(cr.cfg, svc, req, path_vars)
        auto = self.cfg.auto
        if auto is not None and path.startswith(auto.prefix):
            rest = path[len(auto.prefix) :].strip("/")
            iface, _, method = rest.rpartition("/")
            if iface and method and "/" not in iface:
                if req.method != "POST":
                    raise GatewayError(405, "method_not_allowed", f"{path}: auto routes take POST")
                reason = reserved_method(method)
                if reason is not None:
                    raise not_found(
                        f"method {method!r} is never callable over HTTP: {reason}",
                        service=iface,
                        method=method,
                    )
                known = self.services.get(iface)
                reg = self._registry_name(known.cfg if known else ServiceConfig(iface))
                if not self.exposure.service(iface, reg):
                    raise not_found(f"no exposed service {iface!r}", service=iface, method=method)
                svc = self._auto_service(iface)
                if svc is not None and self._never_provided(svc):
                    self._drop_auto(svc)
                    svc = None
                if svc is None:
                    raise not_found(f"no exposed service {iface!r}", service=iface, method=method)
                if not svc.exposes(method) or not self.exposure.method(iface, method, reg):
                    raise not_found(
                        f"method {method!r} of {iface} is not exposed", service=iface, method=method
                    )
                return svc, self._auto_call(svc, method, req, auto.header_overrides)
        allowed = self.routes.allowed_methods(path)
        if allowed:
            raise GatewayError(
                405,
                "method_not_allowed",
                f"{req.method} {path} not routed; allowed: {', '.join(allowed)}",
            )
        raise not_found(f"no route for {req.method} {path}")

    def _ready(self) -> Response:
        """503 while any service (Java or IDL) has no provider, which includes every
        registry-discovered service whose registry has not answered yet (``pending``)."""
        states = [
            (str(s.cfg.key), s.snapshot.pending, bool(s.snapshot.endpoints))
            for s in self.services.values()
        ]
        if self.idl is not None:
            states += [
                (str(s.cfg.key), s.pending, bool(s.targets)) for s in self.idl.services.values()
            ]
        missing = [k for k, pending, has in states if pending or not has]
        body = {
            "ready": not missing,
            "services": len(states),
            "without_providers": missing,
            "pending": [k for k, pending, _ in states if pending],
        }
        return Response(200 if not missing else 503, orjson.dumps(body))

    def _attachments(self, req: Request) -> dict[str, str]:
        h = req.headers
        return {k: h[k] for k in self._passthrough if k in h}

    def _auto_call(self, svc: Service, method: str, req: Request, overrides: bool) -> Call:
        body = _json_body(req)
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
        call = Call(method, args, types, attachments=self._attachments(req))
        if overrides:
            call.version = h.get(VERSION_HEADER)
            call.group = h.get(GROUP_HEADER)
            call.timeout = timeout_header(h)
        return call

    def _explicit_call(
        self, rc: RouteConfig, svc: Service, req: Request, path_vars: dict[str, str]
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
                    body = _json_body(req)
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
        call = Call(rc.method, args, attachments=self._attachments(req))
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
            return Response(200, dumps(value))
        except ValueError as e:
            raise GatewayError(
                502, "unrepresentable_result", str(e), service=svc.cfg.interface, method=call.method
            ) from None


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
    import signal

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    await stop.wait()
    await gw.stop()
