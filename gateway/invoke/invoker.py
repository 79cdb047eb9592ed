"""Calling one Dubbo service: signature -> wire arguments -> instance -> result or error.

``Service`` holds everything that is per service and per snapshot (endpoints, balancer,
pre-encoded request heads per method), so a call does only per-call work: coerce the
arguments, encode them, pick an instance, send, decode.
"""

from __future__ import annotations

import asyncio
import fnmatch
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from tribridge.codecs.dubbo import (
    DubboProtocolError,
    Frame,
    RequestTemplate,
    Result,
    decode_response,
    generic_args,
    generic_template,
)
from tribridge.codecs.dubbo.frame import (
    BAD_REQUEST,
    OK,
    SERVER_THREADPOOL_EXHAUSTED_ERROR,
)
from tribridge.codecs.dubbo.messages import exception_from_value
from tribridge.codecs.hessian2 import (
    Decoder,
    HessianError,
    JavaType,
    JavaTypeError,
    TypeRegistry,
    coerce,
    descriptor_of,
    encode,
)
from tribridge.codecs.hessian2.javatypes import infer
from tribridge.codecs.triple import (
    Code,
    RequestWrapperTemplate,
    Status,
    TripleProtocolError,
    attachments_to_headers,
    decode_response_wrapper,
    headers_to_attachments,
    is_hessian,
)
from tribridge.config.services import ServiceConfig
from tribridge.errors import GatewayError, provider_text
from tribridge.invoke.jsonmap import JSONDecodeError, dumps, loads
from tribridge.registries.base import Endpoint, Listener, Registry, ServiceKey, Snapshot
from tribridge.security.policy import ClassPolicy
from tribridge.security.tls import client_tls_for
from tribridge.statuses import dubbo_failure_to_http, http1_to_grpc
from tribridge.upstream.pool import (
    CallTimeout,
    ConnectFailed,
    InstancePool,
    LoadBalancer,
    NoEndpoint,
    PoolSet,
    UpstreamError,
    make_balancer,
)
from tribridge.upstream.triple import APP_NAME, TripleCallError, status_error


@dataclass(slots=True)
class _Prepared:
    call: Call
    tmpl: RequestTemplate
    wire: list[Any]
    eps: list[Endpoint]
    timeout: float
    idempotent: bool
    hash_key: str | None
    types: list[JavaType] | None = None
    generic: bool = False
    #: the instance ``send_fast`` chose when it handed over to the async path
    first: Endpoint | None = None
    #: ``send_fast`` started a Triple call: its future yields a ``TripleReply``
    triple: bool = False


@dataclass(slots=True)
class Call:
    """One invocation request, already parsed from HTTP."""

    method: str
    args: list[Any]
    types: list[JavaType] | None = None  # request hint
    version: str | None = None
    group: str | None = None
    timeout: float | None = None
    attachments: dict[str, str] = field(default_factory=dict)


DEFAULT_POLICY = ClassPolicy()
#: (version, group) pairs a service follows besides its own, for calls that choose another
#: (a route's ``group:`` / ``version:``, the x-dubbo-group / x-dubbo-version headers);
#: clients choose them, so they are bounded
MAX_FOLLOWED_KEYS = 32


def _endpoint_tls(interface: str, ep: Endpoint) -> Any:
    return client_tls_for([], interface, None, ep)


#: How a Java provider says an argument's wire type did not fit the type it declares
#: (hessian-lite deserializers, Caucho's field readers, reflection).
_TYPE_MISMATCH = (
    "unexpected object",
    "argument type mismatch",
    "cannot be cast",
    "classcastexception",
    "can't convert",
    "cannot convert",
    "expected ",
)
TYPE_HINT = (
    "the provider could not read an argument as the Java type it declares; say the type: "
    'a class tag where nothing declares it ({"class": "java.math.BigDecimal", "value": '
    '"12.50"}, also inside POJOs, lists and maps), or x-tribridge-types / configured '
    "method types / provider metadata for the parameters"
)


def with_type_hint(message: str) -> str:
    """A provider's refusal to read an argument, with what to do about it appended."""
    lowered = message.lower()
    if any(s in lowered for s in _TYPE_MISMATCH):
        return f"{message} [hint: {TYPE_HINT}]"
    return message


class Service:
    """Runtime state of one configured (or discovered) service."""

    def __init__(self, cfg: ServiceConfig, pools: PoolSet) -> None:
        self.cfg = cfg
        self.pools = pools
        self.balancer: LoadBalancer = make_balancer(cfg.loadbalance)
        self.snapshot: Snapshot = Snapshot(cfg.key, ())
        self._cfg_enums = frozenset(n for n, d in cfg.types.defs.items() if d.is_enum)
        self._templates: dict[tuple[str, str, str, str, bool, float], RequestTemplate] = {}
        self._settled: list[asyncio.Future[None]] | None = None
        self._merged: tuple[Any, TypeRegistry] | None = None
        #: the gateway's class policy; the default denies dangerous classes everywhere
        self.class_policy: ClassPolicy | None = DEFAULT_POLICY
        self._tls_for: Callable[[str, Endpoint], Any] | None = _endpoint_tls
        #: id(endpoint) -> (endpoint, TLS profile): the lookup runs once per endpoint of a
        #: snapshot, not once per call (profile globs and the URL's ssl params)
        self._tls_cache: dict[int, tuple[Endpoint, Any]] = {}
        self.ever_provided = False
        self._tri_templates: dict[tuple[Any, ...], _TripleTemplate] = {}
        self._enums: tuple[Any, frozenset[str]] | None = None
        #: the registry ``cfg.key`` is followed in (set by the gateway when it subscribes)
        self.registry: Registry | None = None
        #: other (version, group) keys of this interface followed for calls that ask for them
        self._followed: dict[ServiceKey, tuple[Snapshot, Listener]] = {}

    @property
    def tls_for(self) -> Callable[[str, Endpoint], Any] | None:
        """(interface, endpoint) -> tls.ClientTls or None; None: endpoints' ssl params only.
        Set again on reload (upstream TLS re-applied), which forgets cached lookups."""
        return self._tls_for

    @tls_for.setter
    def tls_for(self, fn: Callable[[str, Endpoint], Any] | None) -> None:
        self._tls_for = fn
        self._tls_cache = {}

    @property
    def enum_classes(self) -> frozenset[str]:
        """Enum classes (results show them by name): configured and from provider metadata."""
        d = self.snapshot.definition
        if d is None or not d.types.defs:
            return self._cfg_enums
        if self._enums is None or self._enums[0] is not d:
            names = {n for n, pd in d.types.defs.items() if pd.is_enum}
            self._enums = (d, frozenset(names | self._cfg_enums))
        return self._enums[1]

    def update(self, snap: Snapshot) -> None:
        self.snapshot = snap
        self._tls_cache = {}
        if snap.endpoints:
            self.ever_provided = True
        if not snap.pending and self._settled is not None:
            waiters, self._settled = self._settled, None
            for w in waiters:
                if not w.done():
                    w.set_result(None)

    def type_registry(self) -> TypeRegistry:
        """Configured POJO/enum definitions, over those from provider metadata."""
        d = self.snapshot.definition
        if d is None or not d.types.defs:
            return self.cfg.types
        if self._merged is None or self._merged[0] is not d:
            merged = TypeRegistry(list(d.types.defs.values()))
            for pd in self.cfg.types.defs.values():
                merged.add(pd)
            self._merged = (d, merged)
        return self._merged[1]

    async def settled(self, timeout: float) -> bool:
        """Wait until the registry has answered about this service (False on timeout)."""
        if not self.snapshot.pending:
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._settled is None:
            self._settled = []
        self._settled.append(fut)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return False
        return True

    def pool(self, ep: Endpoint) -> InstancePool:
        hit = self._tls_cache.get(id(ep))
        if hit is not None and hit[0] is ep:
            return self.pools.get(ep, hit[1])
        fn = self._tls_for
        tls = fn(self.cfg.interface, ep) if fn is not None else None
        if len(self._tls_cache) >= 4096:
            self._tls_cache = {}
        self._tls_cache[id(ep)] = (ep, tls)
        return self.pools.get(ep, tls)

    def exposes(self, method: str) -> bool:
        return any(fnmatch.fnmatchcase(method, p) for p in self.cfg.expose_methods)

    # ---- arguments -----------------------------------------------------------------------

    def signature(self, call: Call) -> tuple[list[JavaType] | None, str]:
        """-> (types, where they came from) for error messages."""
        m = self.cfg.methods.get(call.method)
        if m is not None and m.types is not None:
            return m.types, "configured signature"
        if call.types is not None:
            return call.types, "request type hints"
        # the signatures of the export the call goes to (another version's may differ)
        d = self.snapshot_for(call).definition or self.snapshot.definition
        if d is not None:
            types = d.signature(call.method, len(call.args))
            if types is not None:
                return types, d.source
            n = len(d.overloads(call.method))
            if n > 1:
                raise GatewayError(
                    400,
                    "ambiguous_overload",
                    f"{call.method} has {n} overloads in {d.source}; with {len(call.args)} "
                    f"argument(s) the types cannot be chosen: send the x-tribridge-types header",
                    service=self.cfg.interface,
                    method=call.method,
                    overloads=[
                        ",".join(map(str, m.parameter_types)) for m in d.overloads(call.method)
                    ],
                )
        return None, "inferred from JSON"

    def wire_args(
        self, call: Call, types: list[JavaType] | None, generic: bool, source: str
    ) -> list[Any]:
        reg = self.type_registry()
        if types is not None and len(types) != len(call.args):
            raise GatewayError(
                400,
                "bad_arguments",
                f"{call.method} takes {len(types)} argument(s) "
                f"({', '.join(map(str, types))}) per {source}, got {len(call.args)}",
                service=self.cfg.interface,
                method=call.method,
            )
        try:
            if types is None:
                return [infer(a, f"args[{i}]", generic, reg) for i, a in enumerate(call.args)]
            return [
                coerce(a, t, f"args[{i}]", generic=generic, registry=reg)
                for i, (a, t) in enumerate(zip(call.args, types, strict=True))
            ]
        except JavaTypeError as e:
            raise GatewayError(
                400,
                "bad_arguments",
                f"{e} [signature: {source}"
                + (f" ({', '.join(map(str, types))})" if types else "")
                + "]",
                service=self.cfg.interface,
                method=call.method,
            ) from None
        except HessianError as e:
            raise GatewayError(400, "bad_arguments", str(e), method=call.method) from None

    def template(
        self,
        call: Call,
        types: list[JavaType] | None,
        generic: bool,
        timeout: float,
        implied_version: str = "",
    ) -> RequestTemplate:
        version = call.version if call.version is not None else self.cfg.version
        version = version or implied_version
        group = call.group if call.group is not None else self.cfg.group
        desc = descriptor_of(types) if types is not None else ""
        key = (call.method, desc, version, group, generic, timeout)
        t = self._templates.get(key)
        if t is None:
            base: dict[str, str] = {
                "remote.application": "tribridge",
                "timeout": str(int(timeout * 1000)),
            }
            if group:
                base["group"] = group
            if self.cfg.token:
                base["token"] = self.cfg.token
            if generic:
                t = generic_template(self.cfg.interface, version or None, base)
            else:
                t = RequestTemplate(self.cfg.interface, call.method, desc, version or None, base)
            if len(self._templates) > 4096:
                self._templates.clear()
            self._templates[key] = t
        return t

    # ---- endpoints -----------------------------------------------------------------------

    def candidates(self, call: Call) -> list[Endpoint]:
        return list(self.snapshot_for(call).endpoints)

    def snapshot_for(self, call: Call) -> Snapshot:
        """The endpoints a call may use: the service's own snapshot, or — when the call asks
        for another version or group — that key's, followed in the same registry.

        One provider commonly exports an interface in several groups (or versions) on one
        port; the registry keeps one endpoint per export and its own matching rules decide
        which exports a key takes (a static entry without a group serves any group), so a
        call for group g2 of a service configured for g1 asks the registry for g2 instead of
        filtering g1's snapshot, which never held g2's exports."""
        version = call.version if call.version is not None else self.cfg.version
        group = call.group if call.group is not None else self.cfg.group
        key = self.cfg.key
        if (version, group) == (key.version, key.group):
            return self.snapshot
        other = ServiceKey(key.interface, version, group)
        hit = self._followed.get(other)
        snap = hit[0] if hit is not None else None
        reg = self.registry
        if snap is None and reg is not None and len(self._followed) < MAX_FOLLOWED_KEYS:

            def on(snap: Snapshot) -> None:
                cur = self._followed.get(other)
                if cur is not None:
                    self._followed[other] = (snap, cur[1])

            snap = reg.subscribe(other, on) or Snapshot(other, (), healthy=False, pending=True)
            self._followed[other] = (snap, on)
        if snap is not None and not snap.pending:
            return snap
        # not followable, or the registry has not answered about that key yet: narrow our
        # own snapshot (endpoints without a group/version serve any, as static entries do)
        eps = tuple(
            e
            for e in self.snapshot.endpoints
            if (not e.version or not version or e.version == version)
            and (not e.group or e.group == group)
        )
        if eps or snap is None:
            own = self.snapshot
            return Snapshot(other, eps, own.healthy, error=own.error, definition=own.definition)
        return snap

    def release(self) -> None:
        """Stop following the extra keys (whoever unsubscribes ``cfg.key`` calls this)."""
        reg, followed = self.registry, self._followed
        self._followed = {}
        if reg is None:
            return
        for key, (_snap, on) in followed.items():
            reg.unsubscribe(key, on)

    def pick(
        self, eps: Sequence[Endpoint], exclude: set[tuple[str, int]], hash_key: str | None
    ) -> Endpoint:
        now = time.monotonic()
        usable = [e for e in eps if (e.host, e.port) not in exclude]
        if not usable:
            raise NoEndpoint("no provider instance left to try")
        pools = [self.pool(e) for e in usable]
        healthy = [i for i, p in enumerate(pools) if p.available(now)]
        if healthy and len(healthy) != len(usable):
            usable = [usable[i] for i in healthy]
            pools = [pools[i] for i in healthy]
        # else: every instance is ejected or readonly — try them anyway (panic mode)
        return usable[self.balancer.select(usable, pools, hash_key)]

    # ---- the call ------------------------------------------------------------------------

    def prepare(self, call: Call) -> _Prepared:
        """Everything about a call that does not depend on the instance chosen."""
        cfg = self.cfg
        types, source = self.signature(call)
        if self.class_policy is not None:
            self._check_classes(call, types)
            if call.attachments:
                self.class_policy.check_attachments(cfg.interface, call.attachments)
        generic = cfg.call == "generic" or (
            cfg.call == "auto"
            and (types is None or _fields_unknown(call.args, types, self.type_registry()))
        )
        wire = self.wire_args(call, types, generic, source)
        if generic:
            names = [t.generic_name() for t in types] if types is not None else None
            wire = generic_args(call.method, names, wire)
        mcfg = cfg.methods.get(call.method)
        timeout = call.timeout or (mcfg.timeout if mcfg and mcfg.timeout else cfg.timeout)
        snap = self.snapshot_for(call)
        eps = list(snap.endpoints)
        tmpl = self.template(call, types, generic, timeout, _implied_version(call, cfg, eps))
        if not eps and snap.pending:
            raise GatewayError(
                503,
                "registry_not_ready",
                f"the registry has not answered about {cfg.key} yet",
                service=cfg.interface,
                method=call.method,
            )
        if not eps:
            raise GatewayError(
                503,
                "no_provider",
                f"no provider instance of {snap.service} is known"
                + (f" (registry: {snap.error})" if snap.error else ""),
                service=cfg.interface,
                method=call.method,
            )
        hash_key = None
        if self.balancer.name == "consistenthash":
            hash_key = str(call.args[cfg.hash_arg]) if len(call.args) > cfg.hash_arg else ""
        return _Prepared(
            call, tmpl, wire, eps, timeout, bool(mcfg and mcfg.idempotent), hash_key, types, generic
        )

    def _check_classes(self, call: Call, types: list[JavaType] | None) -> None:
        pol = self.class_policy
        assert pol is not None
        if call.types is None:
            for a in call.args:
                if isinstance(a, (dict, list)):
                    break
            else:
                return  # scalars only: no class can hide in them
        reg = self.type_registry()
        if call.types is not None:
            declared: list[JavaType] = []
            m = self.cfg.methods.get(call.method)
            if m is not None and m.types is not None:
                declared.extend(m.types)
            d = self.snapshot.definition
            if d is not None:
                for o in d.overloads(call.method):
                    declared.extend(o.parameter_types)
            pol.check_hint(call.types, declared, reg)
        for a in call.args:
            if isinstance(a, (dict, list)):
                pol.check_args(call.args, types, reg)
                break

    def send_fast(self, prep: _Prepared) -> tuple[InstancePool, asyncio.Future[Frame]] | None:
        """Send on an already-open connection without awaiting anything; ``None`` when the
        call needs the full path (connecting, or retries for an idempotent method)."""
        if prep.idempotent and self.cfg.retries > 0:
            return None
        ep = self.pick(prep.eps, set(), prep.hash_key)
        if (ep.protocol == "tri" or self.cfg.protocol) and self.is_triple(ep):
            return self._send_fast_triple(prep, ep)
        pool = self.pool(ep)
        conn = pool.ready_connection()
        if conn is None:
            prep.first = ep
            return None
        rid = conn.next_id()
        fut = conn.call(rid, prep.tmpl.frame(rid, prep.wire, prep.call.attachments), prep.timeout)
        pool.active += 1
        return pool, fut

    def finish(self, prep: _Prepared, pool: InstancePool, fut: asyncio.Future[Frame]) -> Result:
        """Turn a completed frame future into a Result, or raise the GatewayError."""
        if prep.triple:
            return self._finish_triple(prep, pool, fut)  # type: ignore[arg-type]
        pool.active -= 1
        exc = fut.exception()
        if exc is not None:
            if isinstance(exc, UpstreamError):
                pool.record_failure()
                raise self._upstream_error(exc, prep.call)
            raise exc
        return self._decode(prep, pool, fut.result())

    def _decode(self, prep: _Prepared, pool: InstancePool, fr: Frame) -> Result:
        try:
            res = decode_response(fr)
        except DubboProtocolError as e:
            raise GatewayError(
                502,
                "bad_provider_response",
                str(e),
                service=self.cfg.interface,
                method=prep.call.method,
            ) from None
        if res.status == SERVER_THREADPOOL_EXHAUSTED_ERROR:
            pool.record_failure()
        else:
            pool.record_success()
        return res

    async def invoke(self, call: Call) -> Result:
        return await self.invoke_prepared(self.prepare(call))

    async def invoke_prepared(self, prep: _Prepared) -> Result:
        call = prep.call
        tried: set[tuple[str, int]] = set()
        attempts = 1 + max(self.cfg.retries, 0)
        last: UpstreamError | None = None
        for _ in range(attempts):
            try:
                if prep.first is not None:  # keep the balancer's choice from send_fast
                    ep, prep.first = prep.first, None
                else:
                    ep = self.pick(prep.eps, tried, prep.hash_key)
            except NoEndpoint:
                break
            tried.add((ep.host, ep.port))
            pool = self.pool(ep)
            if self.is_triple(ep):
                pool.active += 1
                try:
                    if self.cfg.transport == "http1":
                        return await self._invoke_http1(prep, ep, pool)
                    return await self._invoke_triple(prep, ep, pool)
                except ConnectFailed as e:
                    last = e
                    continue
                finally:
                    pool.active -= 1
            try:
                conn = await pool.connection()
            except ConnectFailed as e:
                last = e
                continue  # never sent: always safe to try another instance
            rid = conn.next_id()
            frame = prep.tmpl.frame(rid, prep.wire, call.attachments)
            pool.active += 1
            try:
                fr = await conn.call(rid, frame, prep.timeout)
            except UpstreamError as e:
                pool.record_failure()
                last = e
                if e.sent and not prep.idempotent:
                    break
                continue
            finally:
                pool.active -= 1
            return self._decode(prep, pool, fr)
        raise self._upstream_error(last, call)

    def _upstream_error(self, e: UpstreamError | None, call: Call) -> GatewayError:
        extra = {"service": self.cfg.interface, "method": call.method}
        if isinstance(e, CallTimeout):
            return GatewayError(504, "upstream_timeout", str(e), **extra)
        if e is None:
            return GatewayError(503, "no_provider", "no provider instance available", **extra)
        return GatewayError(503 if not e.sent else 502, e.code, str(e), **extra)

    def result_error(self, res: Result, call: Call) -> GatewayError:
        """Map a non-OK Dubbo result to the HTTP error the client sees."""
        extra: dict[str, Any] = {"service": self.cfg.interface, "method": call.method}
        if res.exception is not None:
            exc = res.exception
            return GatewayError(
                500,
                "provider_exception",
                provider_text(exc.message or exc.cls, self.cfg.java_stack_traces, extra),
                exception=exc.cls,
                cause=exc.cause.to_json() if exc.cause else None,
                **extra,
            )
        msg = provider_text(res.error or res.status_name, self.cfg.java_stack_traces, extra)
        status, code = dubbo_failure_to_http(res.status, msg)
        if code == "not_found":
            return GatewayError(
                404,
                "not_found",
                msg,
                dubbo_status=res.status,
                version=call.version if call.version is not None else self.cfg.version,
                group=call.group if call.group is not None else self.cfg.group,
                **extra,
            )
        if res.status == BAD_REQUEST:  # the provider could not read an argument
            msg = with_type_hint(msg)
        return GatewayError(status, code, msg, dubbo_status=res.status, **extra)

    # ---- Triple (wrapper mode) -----------------------------------------------------------

    def is_triple(self, ep: Endpoint) -> bool:
        p = self.cfg.protocol
        return p == "tri" if p else ep.protocol == "tri"

    def _triple_template(self, prep: _Prepared) -> _TripleTemplate:
        call = prep.call
        version = call.version if call.version is not None else self.cfg.version
        group = call.group if call.group is not None else self.cfg.group
        types = prep.types
        key = (call.method, tuple(map(str, types or ())), version, group, prep.generic)
        t = self._tri_templates.get(key)
        if t is None:
            if prep.generic:
                method = "$invoke"
                arg_types = list(GENERIC_ARG_TYPES)
            else:
                method = call.method
                arg_types = [jt.class_name() for jt in types or ()]
            headers: list[tuple[str, str | bytes]] = [("tri-consumer-appname", APP_NAME)]
            if version:
                headers.append(("tri-service-version", version))
            if group:
                headers.append(("tri-service-group", group))
            if prep.generic:
                headers.append(("generic", "true"))
            if self.cfg.token:
                headers.append(("token", self.cfg.token))
            t = _TripleTemplate(
                f"/{self.cfg.interface}/{method}", RequestWrapperTemplate(arg_types), headers
            )
            if len(self._tri_templates) > 4096:
                self._tri_templates.clear()
            self._tri_templates[key] = t
        return t

    def _triple_request(
        self, prep: _Prepared, with_attachments: bool = True
    ) -> tuple[_TripleTemplate, bytes, list[tuple[str, str | bytes]]]:
        call = prep.call
        t = self._triple_template(prep)
        try:
            payload = t.wrapper.encode([encode(a) for a in prep.wire])
        except HessianError as e:
            raise GatewayError(
                400, "bad_arguments", str(e), service=self.cfg.interface, method=call.method
            ) from None
        headers = t.headers
        if call.attachments and with_attachments:
            headers = headers + attachments_to_headers(call.attachments)
        return t, payload, headers

    def _send_fast_triple(
        self, prep: _Prepared, ep: Endpoint
    ) -> tuple[InstancePool, asyncio.Future[Any]] | None:
        """Start a Triple call without a coroutine when the client can (the h2/lean
        clients with an open connection); else hand over to the async path."""
        prep.first = ep
        if self.cfg.transport == "http1":
            return None
        start = getattr(self.pools.triple_client(), "start", None)
        if start is None:
            return None
        t, payload, _ = self._triple_request(prep, with_attachments=False)
        extra = attachments_to_headers(prep.call.attachments) if prep.call.attachments else ()
        pool = self.pool(ep)
        try:
            # the template's headers are a cache key in the client; attachments vary per call
            fut = start(ep, t.path, payload, t.headers, prep.timeout, extra, pool.tls)
        except TripleCallError:
            return None  # the async path reports it (and may try another instance)
        if fut is None:
            return None
        prep.first = None
        prep.triple = True
        pool.active += 1
        return pool, fut

    def _finish_triple(
        self, prep: _Prepared, pool: InstancePool, fut: asyncio.Future[Any]
    ) -> Result:
        pool.active -= 1
        exc = fut.exception()
        if exc is not None:
            if isinstance(exc, TripleCallError):
                if exc.code in TRIPLE_FAILURES:
                    pool.record_failure()
                raise self._triple_error(exc, prep.call)
            raise exc
        pool.record_success()
        return self._triple_result(fut.result(), prep.call)

    async def _invoke_triple(self, prep: _Prepared, ep: Endpoint, pool: InstancePool) -> Result:
        """One Triple attempt; raises ``ConnectFailed`` when the request surely never left
        (the caller then tries another instance), ``GatewayError`` otherwise."""
        call = prep.call
        t, payload, headers = self._triple_request(prep)
        try:
            reply = await self.pools.triple_client().unary(
                ep, t.path, payload, headers, prep.timeout, pool.tls
            )
        except TripleCallError as e:
            if e.code in TRIPLE_FAILURES:
                pool.record_failure()
            if not e.sent:
                raise ConnectFailed(f"{ep.host}:{ep.port}: {e}") from None
            raise self._triple_error(e, call) from None
        pool.record_success()
        return self._triple_result(reply, call)

    async def _invoke_http1(self, prep: _Prepared, ep: Endpoint, pool: InstancePool) -> Result:
        """Triple's HTTP/1.1 unary mode: the call's JSON arguments as the body (one argument:
        itself, as Java binds a single parameter to the whole body; several: a JSON array,
        bound by position), the JSON reply as the value."""
        call = prep.call
        extra = {"service": self.cfg.interface, "method": call.method}
        args = call.args
        try:
            body = (
                dumps(args[0] if len(args) == 1 else args, decimals_as_numbers=True)
                if args
                else b"{}"
            )
        except (TypeError, ValueError) as e:
            raise GatewayError(400, "bad_arguments", str(e), **extra) from None
        version = call.version if call.version is not None else self.cfg.version
        group = call.group if call.group is not None else self.cfg.group
        headers: list[tuple[str, str | bytes]] = [("tri-consumer-appname", APP_NAME)]
        if version:
            headers.append(("tri-service-version", version))
        if group:
            headers.append(("tri-service-group", group))
        if self.cfg.token:
            headers.append(("token", self.cfg.token))
        if call.attachments:
            headers += attachments_to_headers(call.attachments)
        try:
            reply = await self.pools.http1_client().unary(
                ep, f"/{self.cfg.interface}/{call.method}", body, headers, prep.timeout
            )
        except TripleCallError as e:
            if e.code in TRIPLE_FAILURES:
                pool.record_failure()
            if not e.sent:
                raise ConnectFailed(f"{ep.host}:{ep.port}: {e}") from None
            raise self._triple_error(e, call) from None
        if reply.status != 200:
            if reply.status >= 500:
                pool.record_failure()
            raise self._triple_error(TripleCallError(http1_status(reply)), call)
        pool.record_success()
        try:
            value = loads(reply.body) if reply.body else None
        except JSONDecodeError as e:
            raise GatewayError(
                502, "bad_provider_response", f"reply is not JSON: {e}", **extra
            ) from None
        return Result(0, OK, value=value, attachments=reply.attachments())

    def _triple_result(self, reply: Any, call: Call) -> Result:
        try:
            w = decode_response_wrapper(reply.data)
            if not is_hessian(w.serialize_type):
                raise TripleProtocolError(
                    f"response serialized as {w.serialize_type!r}, expected hessian2"
                )
            value = Decoder(w.data).read() if w.data else None
        except (TripleProtocolError, HessianError) as e:
            raise GatewayError(
                502,
                "bad_provider_response",
                str(e),
                service=self.cfg.interface,
                method=call.method,
            ) from None
        res = Result(
            0, OK, attachments=headers_to_attachments(reply.trailers) if reply.trailers else {}
        )
        if reply.exception_code:
            res.exception = exception_from_value(value)
        else:
            res.value = value
        return res

    def _triple_error(self, e: TripleCallError, call: Call) -> GatewayError:
        extra: dict[str, Any] = {"service": self.cfg.interface, "method": call.method}
        if e.http[0] == 404:
            extra["version"] = call.version if call.version is not None else self.cfg.version
            extra["group"] = call.group if call.group is not None else self.cfg.group
        err = status_error(e.status, **extra)
        if e.status.code in (Code.INVALID_ARGUMENT, Code.INTERNAL, Code.UNKNOWN):
            err.message = with_type_hint(err.message)  # Java could not read an argument
        return err


def http1_status(reply: Any) -> Status:
    """The status of a non-200 HTTP/1.1 Triple reply: JSON ``{"status", "message"}`` where
    ``status`` is a gRPC code (dubbo-node; a number or its decimal string), else the HTTP
    status mapped by the Triple spec's table (``statuses.HTTP1_TO_GRPC``)."""
    code = http1_to_grpc(reply.status)
    message = f"HTTP {reply.status} from provider"
    try:
        doc = orjson.loads(reply.body) if reply.body else None
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, dict):
        st = doc.get("status")
        if isinstance(st, str) and st.isdigit():
            st = int(st)
        if isinstance(st, int) and 0 < st <= 16:
            code = st
        if isinstance(doc.get("message"), str) and doc["message"]:
            message = doc["message"]
    return Status(code, message)


#: ``$invoke(String, String[], Object[])`` as ``Class.getName()`` names
GENERIC_ARG_TYPES = ("java.lang.String", "[Ljava.lang.String;", "[Ljava.lang.Object;")
#: statuses that count against an instance's health (outlier ejection)
TRIPLE_FAILURES = frozenset(
    {Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.RESOURCE_EXHAUSTED, Code.INTERNAL}
)


@dataclass(slots=True)
class _TripleTemplate:
    path: str
    wrapper: RequestWrapperTemplate
    headers: list[tuple[str, str | bytes]]


def _implied_version(call: Call, cfg: ServiceConfig, eps: Sequence[Endpoint]) -> str:
    """A service followed without a version (auto routes) whose providers all register
    one version: call with it, as a consumer that asked for that version would."""
    if call.version is not None or cfg.version or not eps:
        return ""
    v = eps[0].version
    return v if v and all(e.version == v for e in eps) else ""


def _fields_unknown(args: Sequence[Any], types: Sequence[JavaType], reg: TypeRegistry) -> bool:
    """Whether an argument carries a POJO whose field types nobody told us.

    A direct call must write every field with its Java type (a ``BigDecimal`` field sent as
    a string is refused by Java's deserializer); when only the class name is known (a type
    hint, a ``class`` tag), a generic call lets the provider convert each field to its own
    declared type (``PojoUtils.realize``) instead of the gateway guessing one."""
    for a, t in zip(args, types, strict=False):
        if t.kind == "class" and isinstance(a, dict) and reg.get(t.name) is None:
            return True
        if _untyped_tag(a, reg, 0):
            return True
    return False


def _untyped_tag(v: Any, reg: TypeRegistry, depth: int) -> bool:
    """A ``class``-tagged object below ``v`` naming a non-JDK class without a definition
    (bounded by the policy's depth; the body's element count is bounded before this)."""
    if depth > 64:
        return False
    if isinstance(v, dict):
        c = v.get("class")
        if isinstance(c, str) and not c.startswith("java.") and reg.get(c) is None:
            # ``{"class": E, "name": C}`` is an enum constant: nothing to type
            return not (len(v) == 2 and "name" in v)
        return any(_untyped_tag(x, reg, depth + 1) for x in v.values())
    if isinstance(v, list):
        return any(_untyped_tag(x, reg, depth + 1) for x in v)
    return False

