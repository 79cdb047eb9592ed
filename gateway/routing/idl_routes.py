"""IDL mode in the gateway: HTTP/JSON -> protobuf -> gRPC/Triple unary call -> JSON.

``IdlRouter.handle(req)`` answers ``None`` for requests that are not for an IDL service
(the Java routes then run as before), else a ``Response`` or a coroutine producing one.

The call goes the way every other door's does: through the attempt loop
(``invoke.attempts``: deadline, retries of requests that never left — and of ``idempotent``
methods —, outlier ejection over the instances' pools), on the gateway's shared Triple
client with the upstream TLS profiles (``security.upstream_tls``), counted and traced by
the call path's event hooks (``invoke.events``: metrics route label ``IDL <method> <path>``,
or ``auto``).

A non-OK gRPC status is answered as on the wrapper-mode path: ``triple.status_error`` with
the one table, ``tribridge.statuses.GRPC_TO_HTTP``.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any
from urllib.parse import parse_qs

import orjson
from tribridge.codecs.triple import Code, Status
from tribridge.config.idl import IdlRouteConfig, IdlServiceConfig
from tribridge.config.limits import DEFAULT_MAX_JSON_ELEMENTS, json_elements_exceed
from tribridge.errors import GatewayError, bad_request, not_found
from tribridge.http.headers import timeout_header, under_prefix
from tribridge.http.messages import Request, Response
from tribridge.idl.schema import (
    REFRESH_INTERVAL,
    IdlError,
    MethodInfo,
    ReflectionSchemaSource,
    ReplyDecodeError,
    RequestMismatch,
    SchemaSource,
    StaticSchemaSource,
    UnknownMethod,
    UnknownService,
    json_to_message,
    message_to_json,
)
from tribridge.idl.templates import BindError, set_field
from tribridge.invoke import attempts
from tribridge.invoke.attempts import Plan
from tribridge.invoke.call import RequestContext
from tribridge.invoke.events import NO_EVENTS, Events
from tribridge.invoke.replies import TRIPLE_FAILURES, TripleFailed
from tribridge.registries.base import Endpoint, Registry, Snapshot
from tribridge.security.tls import ClientTls, client_tls_for
from tribridge.streaming.websocket import is_upgrade
from tribridge.upstream.balancers import RoundRobin
from tribridge.upstream.errors import CallTimeout, UpstreamError
from tribridge.upstream.pool import PoolSet
from tribridge.upstream.protocols import TripleAnswer, UpstreamPool
from tribridge.upstream.triple import TripleCallError, TripleClient, status_error

log = logging.getLogger("tribridge.idl")

#: headers a client may not smuggle into upstream metadata
_RESERVED = ("grpc-", "tri-", ":", "content-type", "te", "user-agent", "host", "connection")


class IdlService:
    """One IDL service: where its schema comes from and which providers serve it."""

    def __init__(self, cfg: IdlServiceConfig, client: TripleClient) -> None:
        self.cfg = cfg
        self.client = client
        self.source: SchemaSource
        if cfg.schema is not None:
            self.source = StaticSchemaSource(cfg.schema)
        else:
            self.source = ReflectionSchemaSource(client.open_stream, cfg.reflection or "auto")
        self.endpoints: list[Endpoint] = [_endpoint(a, cfg.protocol) for a in cfg.endpoints]
        self.targets: list[str] = list(cfg.endpoints)
        #: registry-discovered: True until its registry has answered once (``/readyz``)
        self.pending = not cfg.endpoints
        self._rr = itertools.count()
        self.balancer = RoundRobin()
        self._last_mismatch_refresh = 0.0

    def update(self, snap: Snapshot) -> None:
        if self.cfg.endpoints:
            return
        self.pending = snap.pending
        eps = [e for e in snap.endpoints if e.enabled]
        preferred = [e for e in eps if e.protocol == self.cfg.protocol]
        usable = preferred or [e for e in eps if e.protocol in ("tri", "grpc")] or eps
        self.endpoints = usable
        self.targets = [f"{e.host}:{e.port}" for e in usable]

    def pick(self) -> str | None:
        t = self.targets
        if not t:
            return None
        return t[next(self._rr) % len(t)]

    def metadata(self, req: Request, passthrough: tuple[str, ...]) -> list[tuple[str, str]]:
        h = req.headers
        md = [(k, h[k]) for k in passthrough if k in h and not k.startswith(_RESERVED)]
        if self.cfg.protocol == "tri":
            if self.cfg.version:
                md.append(("tri-service-version", self.cfg.version))
            if self.cfg.group:
                md.append(("tri-service-group", self.cfg.group))
            md.append(("tri-consumer-appname", "tribridge"))
        return md


class IdlRouter:
    def __init__(
        self,
        services: list[IdlServiceConfig],
        routes: list[IdlRouteConfig],
        auto_prefix: str = "/",
        passthrough: tuple[str, ...] = (),
        client: TripleClient | None = None,
        pools: PoolSet | None = None,
    ) -> None:
        """``client``: the gateway's shared Triple client (``PoolSet.triple_client()``),
        so IDL and wrapper-mode calls to one provider share its channel; ``pools``: the
        gateway's, whose per-instance pools keep health (ejection) and calls in flight."""
        self._own_client = client is None
        self.client = client if client is not None else TripleClient()
        self.pools = pools if pools is not None else PoolSet()
        #: ``security.upstream_tls`` profiles (set by app.build_idl)
        self.tls_profiles: list[ClientTls] = []
        self.services = {s.interface: IdlService(s, self.client) for s in services}
        self.routes = routes
        self.prefix = auto_prefix if auto_prefix.endswith("/") else auto_prefix + "/"
        self.passthrough = passthrough
        #: the gateway's guard.Guard (auth, rate limits), or None
        self.guard: Any = None
        #: ``limits.max_json_elements`` (set by app.build_idl)
        self.max_json_elements = DEFAULT_MAX_JSON_ELEMENTS
        #: the gateway's streaming.calls.Streams: streaming methods are served when set
        self.streams: Any = None

    # ---- lifecycle ------------------------------------------------------------------------

    def subscribe(self, registry_for: Callable[[IdlServiceConfig], Registry | None]) -> None:
        for svc in self.services.values():
            if svc.cfg.endpoints:
                continue
            reg = registry_for(svc.cfg)
            if reg is None:
                continue
            snap = reg.subscribe(svc.cfg.key, svc.update)
            if snap is not None:
                svc.update(snap)

    async def close(self) -> None:
        if self._own_client:  # a shared client is closed by its owner
            await self.client.close()

    # ---- routing --------------------------------------------------------------------------

    def handle(
        self, req: Request, tracer: Any = None, events: Events = NO_EVENTS
    ) -> Response | Coroutine[Any, Any, Response] | None:
        """``tracer``: the config's ``ops.tracing.Tracer``; ``events``: the gateway's hooks."""
        path = req.path
        allowed: list[str] = []
        for rc in self.routes:
            vars_ = rc.template.match(path)
            if vars_ is None:
                continue
            if rc.http_method != req.method:
                allowed.append(rc.http_method)
                continue
            ctx = RequestContext(
                f"IDL {rc.http_method} {rc.template.text}", rc.service, rc.method,
                events=events, tracer=tracer, headers=req.headers,
            )  # fmt: skip
            svc = self.services[rc.service]
            return self._ended(ctx, self._run(svc, rc.method, req, rc, vars_, ctx))
        rest = under_prefix(self.prefix, path)
        if rest is not None:
            svc_name, _, method = rest.rpartition("/")
            svc = self.services.get(svc_name)
            if svc is not None and svc.cfg.auto_route and method:
                if req.method != "POST" and not is_upgrade(req):
                    return _error(
                        GatewayError(405, "method_not_allowed", f"{path}: auto routes take POST")
                    )
                ctx = RequestContext(
                    AUTO_ROUTE, svc_name, method, events=events, tracer=tracer, headers=req.headers
                )
                return self._ended(ctx, self._run(svc, method, req, None, {}, ctx))
        if allowed:
            return _error(
                GatewayError(
                    405,
                    "method_not_allowed",
                    f"{req.method} {path} not routed; allowed: {', '.join(sorted(set(allowed)))}",
                )
            )
        return None

    @staticmethod
    async def _ended(ctx: RequestContext, answer: Awaitable[Response]) -> Response:
        """The answer, once the end hooks have seen it (metrics, tracing's header)."""
        resp = await answer
        extra = ctx.end(resp.status)
        if extra:
            resp.headers.extend(extra)
        return resp

    async def _run(
        self,
        svc: IdlService,
        method: str,
        req: Request,
        rc: IdlRouteConfig | None,
        path_vars: dict[str, str],
        ctx: RequestContext,
    ) -> Response:
        name = svc.cfg.interface
        try:
            forwarded = await self._guard(req, name, method)
            mi = await self._method(svc, method)
            try:
                msg = json_to_message(mi, self._json(mi, req, rc, path_vars), svc.cfg.json)
            except RequestMismatch as e:
                fresh = await self._after_mismatch(svc, mi)
                if fresh is None:
                    raise bad_request(str(e), service=name, method=method) from None
                mi = fresh
                msg = json_to_message(mi, self._json(mi, req, rc, path_vars), svc.cfg.json)
            if not svc.endpoints:
                raise GatewayError(503, "no_provider", f"no provider of {name}", service=name)
            if not mi.unary:
                target = svc.pick()
                if target is None:
                    raise GatewayError(503, "no_provider", f"no provider of {name}", service=name)
                return await self.streams.idl(  # type: ignore[no-any-return]
                    req,
                    self.client,
                    target,
                    mi,
                    svc.cfg.json,
                    _override(svc.metadata(req, self.passthrough), forwarded),
                    self._json(mi, req, rc, path_vars),
                    {"service": name, "method": method},
                )
            ctx.start()  # tracing puts its context into ctx.attachments
            md = _override(svc.metadata(req, self.passthrough), {**ctx.attachments, **forwarded})
            answer = await attempts.run(
                self._plan(svc, method, self._timeout(req, rc, svc), ctx),
                partial(self._attempt, svc, mi.path, msg.SerializeToString(), md),
            )
            if isinstance(answer, TripleCallError):
                raise self._status_error(svc, method, answer)
            try:
                body = message_to_json(mi, answer.data, svc.cfg.json)
            except ReplyDecodeError as e:
                raise GatewayError(502, "bad_reply", str(e), service=name, method=method) from None
            return Response(200, body)
        except GatewayError as e:
            return _error(e)
        except RequestMismatch as e:
            return _error(bad_request(str(e), service=name, method=method))
        except BindError as e:
            return _error(bad_request(str(e), service=name, method=method))

    def _plan(
        self, svc: IdlService, method: str, timeout: float, ctx: RequestContext
    ) -> Plan[TripleAnswer | TripleCallError]:
        cfg = svc.cfg

        def pool_for(ep: Endpoint) -> UpstreamPool:
            tls = client_tls_for(self.tls_profiles, cfg.interface, cfg.registry, ep)
            return self.pools.get(ep, tls)

        def pick(tried: set[tuple[str, int]]) -> Endpoint:
            return attempts.pick(svc.endpoints, tried, pool_for, svc.balancer)

        return Plan(
            service=cfg.interface,
            tries=1 + cfg.retries,
            idempotent=method in cfg.idempotent,
            deadline=time.monotonic() + timeout,
            pick=pick,
            pool_for=pool_for,
            give_up=partial(_give_up, cfg.interface),
            events=ctx.events,
            ctx=ctx,
        )

    async def _attempt(
        self,
        svc: IdlService,
        path: str,
        payload: bytes,
        md: list[tuple[str, str]],
        ep: Endpoint,
        pool: UpstreamPool,
        left: float,
    ) -> tuple[TripleAnswer | TripleCallError, bool | None]:
        """One call to one instance: the reply, or a status that is the provider's answer
        (raises ``TripleFailed`` for the instance's failures: retried per the plan)."""
        pool.active += 1
        try:
            reply = await self.client.unary(ep, path, payload, md, left, pool.tls)
        except TripleCallError as e:
            if not e.sent or e.code in TRIPLE_FAILURES:
                raise TripleFailed(e, f"{ep.host}:{ep.port}") from None
            return e, None
        finally:
            pool.active -= 1
        return reply, True

    async def _guard(self, req: Request, service: str, method: str) -> dict[str, str | None]:
        """Auth and rate limits as for Dubbo routes; -> metadata the guard set or removed."""
        if self.guard is None:
            return {}
        h = req.headers
        before = {k: h[k] for k in self.passthrough if k in h}
        att = dict(before)
        pending = self.guard.check(req, service, method, att)
        if pending is not None:
            await pending
        return {k: att.get(k) for k in set(before) | set(att) if before.get(k) != att.get(k)}

    async def _method(self, svc: IdlService, method: str) -> MethodInfo:
        name = svc.cfg.interface
        hit = svc.source.cached(name, method)
        if hit is None:
            try:
                hit = await svc.source.method(name, method, svc.pick())
            except UnknownService as e:
                raise not_found(str(e), service=name, method=method) from None
            except UnknownMethod as e:
                raise not_found(str(e), service=name, method=method) from None
            except IdlError as e:
                raise GatewayError(
                    503, "descriptors_unavailable", str(e), service=name, method=method
                ) from None
        if not hit.unary and self.streams is None:
            raise GatewayError(
                501,
                "streaming_not_supported",
                f"{hit.path} is a streaming method",
                service=name,
                method=method,
            )
        return hit

    async def _after_mismatch(self, svc: IdlService, mi: MethodInfo) -> MethodInfo | None:
        """A reflected schema may be stale (provider redeployed with new fields): look
        again once, rate-limited, before calling the request malformed."""
        src = svc.source
        if not isinstance(src, ReflectionSchemaSource):
            return None
        now = time.monotonic()
        if now - svc._last_mismatch_refresh < REFRESH_INTERVAL:
            return None
        svc._last_mismatch_refresh = now
        src.invalidate(svc.cfg.interface)
        try:
            return await self._method(svc, mi.name)
        except GatewayError:
            return None

    def _json(
        self, mi: MethodInfo, req: Request, rc: IdlRouteConfig | None, path_vars: dict[str, str]
    ) -> Any:
        body: Any = None
        if req.body.strip():
            try:
                body = orjson.loads(req.body)
            except orjson.JSONDecodeError as e:
                raise GatewayError(
                    400, "invalid_json", f"request body is not valid JSON: {e}"
                ) from None
            if json_elements_exceed(req.body, body, self.max_json_elements):
                raise GatewayError(
                    400,
                    "too_many_elements",
                    f"request body holds more than {self.max_json_elements} JSON values "
                    "(limits.max_json_elements)",
                )
        if rc is None:
            return {} if body is None else body
        desc = mi.input.DESCRIPTOR
        if rc.body == "*":
            if body is not None and not isinstance(body, dict):
                raise BindError(f"the body must be a JSON object ({desc.full_name})")
            out: dict[str, Any] = dict(body or {})
        else:
            out = {}
            if rc.body is not None and body is not None:
                out[rc.body] = body
        for var, value in path_vars.items():
            set_field(out, desc, var, [value], f"path variable {var!r}")
        if rc.body != "*" and req.query:
            for key, values in parse_qs(req.query, keep_blank_values=True).items():
                if key in path_vars:
                    raise BindError(f"query parameter {key!r} is bound by the path")
                if rc.body is not None and key.split(".")[0] == rc.body:
                    raise BindError(f"query parameter {key!r} is bound by the body")
                set_field(out, desc, key, values, f"query parameter {key!r}")
        return out

    @staticmethod
    def _timeout(req: Request, rc: IdlRouteConfig | None, svc: IdlService) -> float:
        t = timeout_header(req.headers)
        if t is not None:
            return t
        if rc is not None and rc.timeout is not None:
            return rc.timeout
        return svc.cfg.timeout

    @staticmethod
    def _status_error(svc: IdlService, method: str, e: TripleCallError) -> GatewayError:
        if e.code in (Code.UNIMPLEMENTED, Code.UNAVAILABLE):
            # unknown at the provider or provider gone: its schema may have changed
            svc.source.invalidate(svc.cfg.interface)
        return status_error(e.status, service=svc.cfg.interface, method=method)


#: metrics route label of IDL auto routes (``POST /{package.Service}/{method}``), as for Java
AUTO_ROUTE = "auto"


def _endpoint(address: str, protocol: str) -> Endpoint:
    """A configured ``host:port`` (``[v6]:port``) as an endpoint."""
    host, _, port = address.rpartition(":")
    return Endpoint(host.strip("[]"), int(port), protocol)


def _give_up(service: str, last: UpstreamError | None) -> TripleCallError:
    """No instance answered: the last failure's status (a deadline that passed between
    attempts is DEADLINE_EXCEEDED)."""
    if isinstance(last, TripleFailed):
        return last.cause
    if isinstance(last, CallTimeout):
        return TripleCallError(Status(Code.DEADLINE_EXCEEDED, str(last)))
    raise GatewayError(
        503, "no_provider", f"no provider of {service}: {last or 'none left to try'}",
        service=service,
    )  # fmt: skip


def _error(e: GatewayError) -> Response:
    headers = getattr(e, "headers", None)
    return Response(e.status, e.body(), list(headers) if headers else [])


def _override(md: list[tuple[str, str]], forwarded: dict[str, str | None]) -> list[tuple[str, str]]:
    """Claims the guard forwarded replace (or, when absent, remove) client headers."""
    if not forwarded:
        return md
    out = [(k, v) for k, v in md if k not in forwarded]
    out.extend((k, v) for k, v in forwarded.items() if v is not None)
    return out
