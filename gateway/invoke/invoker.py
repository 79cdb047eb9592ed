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
from functools import partial
from typing import Any

from tribridge.codecs.dubbo import (
    DubboProtocolError,
    Frame,
    RequestTemplate,
    Result,
    decode_response,
    generic_args,
    generic_template,
)
from tribridge.codecs.dubbo.frame import SERVER_THREADPOOL_EXHAUSTED_ERROR
from tribridge.codecs.hessian2 import (
    HessianError,
    JavaType,
    JavaTypeError,
    TypeRegistry,
    coerce,
    descriptor_of,
)
from tribridge.codecs.hessian2.coercion import infer
from tribridge.config.services import ServiceConfig
from tribridge.errors import GatewayError
from tribridge.invoke import attempts
from tribridge.invoke.attempts import Plan
from tribridge.invoke.call import Call, Outcome, RequestContext
from tribridge.invoke.events import NO_EVENTS, Events
from tribridge.invoke.prepared import MethodPlan, Prepared
from tribridge.invoke.replies import (
    TYPE_HINT,
    result_error,
    result_outcome,
    upstream_error,
    with_type_hint,
)
from tribridge.invoke.triple_calls import TripleCalls
from tribridge.registries.base import Endpoint, Listener, Registry, ServiceKey, Snapshot
from tribridge.security.policy import ClassPolicy
from tribridge.security.tls import client_tls_for
from tribridge.upstream.balancers import LoadBalancer, make_balancer
from tribridge.upstream.errors import UpstreamError
from tribridge.upstream.pool import PoolSet
from tribridge.upstream.protocols import UpstreamPool, Waiter

#: names other modules import from here (the call types live in ``invoke.call``, the
#: reply mappings in ``invoke.replies``)
__all__ = ["TYPE_HINT", "Call", "Outcome", "Service", "with_type_hint"]


DEFAULT_POLICY = ClassPolicy()
#: method plans a service keeps (``Service._plan``); clients choose methods and timeouts
MAX_PLANS = 1024
#: (version, group) pairs a service follows besides its own, for calls that choose another
#: (a route's ``group:`` / ``version:``, the x-dubbo-group / x-dubbo-version headers);
#: clients choose them, so they are bounded
MAX_FOLLOWED_KEYS = 32


def _endpoint_tls(interface: str, ep: Endpoint) -> Any:
    return client_tls_for([], interface, None, ep)


class Service:
    """Runtime state of one configured (or discovered) service."""

    def __init__(self, cfg: ServiceConfig, pools: PoolSet) -> None:
        self.cfg = cfg
        self.pools = pools
        self.balancer: LoadBalancer = make_balancer(cfg.loadbalance)
        self.snapshot: Snapshot = Snapshot(cfg.key, ())
        self._cfg_enums = frozenset(n for n, d in cfg.types.defs.items() if d.is_enum)
        self._templates: dict[tuple[str, str, str, str, bool, float], RequestTemplate] = {}
        #: method plans (``_plan``): per snapshot, not per call
        self._plans: dict[tuple[str, int, str | None, str | None, float | None], MethodPlan] = {}
        self._settled: list[asyncio.Future[None]] | None = None
        self._merged: tuple[Any, TypeRegistry] | None = None
        #: the gateway's class policy; the default denies dangerous classes everywhere
        self.class_policy: ClassPolicy | None = DEFAULT_POLICY
        self._tls_for: Callable[[str, Endpoint], Any] | None = _endpoint_tls
        #: id(endpoint) -> (endpoint, its pool): the lookup runs once per endpoint of a
        #: snapshot, not once per call (TLS profile globs, the URL's ssl params, the key)
        self._pool_cache: dict[int, tuple[Endpoint, Any]] = {}
        self.ever_provided = False
        #: the Triple half (wrapper mode, HTTP/1.1 unary): templates, attempts
        self.triple = TripleCalls(self)
        #: the gateway's event listeners (``invoke.events``); set by the gateway
        self.events: Events = NO_EVENTS
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
        self._pool_cache = {}

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
        self._pool_cache = {}
        self._plans = {}  # made from the old snapshot (its endpoints, definition, types)
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

    def pool(self, ep: Endpoint) -> Any:
        """The pool of ``ep``'s address and TLS profile: looked up once per endpoint of a
        snapshot (pools live as long as the ``PoolSet``), a relay link every time (links
        to other gateways come and go)."""
        hit = self._pool_cache.get(id(ep))
        if hit is not None and hit[0] is ep:
            return hit[1]
        if ep.protocol == "relay":
            return self.pools.get(ep)
        fn = self._tls_for
        pool = self.pools.get(ep, fn(self.cfg.interface, ep) if fn is not None else None)
        if len(self._pool_cache) >= 4096:
            self._pool_cache = {}
        self._pool_cache[id(ep)] = (ep, pool)
        return pool

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
        self,
        call: Call,
        types: list[JavaType] | None,
        generic: bool,
        source: str,
        reg: TypeRegistry,
    ) -> list[Any]:
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
            args = call.args
            paths = _ARG_PATHS if len(args) <= len(_ARG_PATHS) else _arg_paths(len(args))
            if types is None:
                return [infer(a, paths[i], generic, reg) for i, a in enumerate(args)]
            return [
                coerce(a, t, paths[i], generic=generic, registry=reg)
                for i, (a, t) in enumerate(zip(args, types, strict=True))
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
        cfg = self.cfg
        version = call.version if call.version is not None else cfg.version
        group = call.group if call.group is not None else cfg.group
        if version == cfg.version and group == cfg.group:
            return self.snapshot  # the common case: no ServiceKey built per call
        key = cfg.key
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
        return attempts.pick(eps, exclude, self.pool, self.balancer, hash_key)

    # ---- the call ------------------------------------------------------------------------

    def prepare(self, call: Call) -> Prepared:
        """Everything about a call that does not depend on the instance chosen: its
        method's plan (once per snapshot) and the arguments (per call)."""
        cfg = self.cfg
        plan = self._plan(call)
        types = plan.types
        args = call.args
        plain = True  # scalars only (most calls): no class can hide in them
        for a in args:
            if type(a) not in _SCALARS:
                plain = False
                break
        pol = self.class_policy
        if pol is not None:
            if not plain or call.types is not None:
                self._check_classes(call, types)
            if call.attachments:
                pol.check_attachments(cfg.interface, call.attachments)
        generic = plan.generic
        if generic is None:  # "auto" with a signature: a POJO of unknown fields goes generic
            generic = not plain and _fields_unknown(args, types or (), plan.reg)
        wire = self.wire_args(call, types, generic, plan.source, plan.reg)
        if generic:
            wire = generic_args(call.method, plan.generic_names, wire)
        eps = plan.eps
        if not eps:
            raise _no_instance(plan.snap, cfg, call.method)
        hash_key = None
        if self.balancer.name == "consistenthash":
            hash_key = str(call.args[cfg.hash_arg]) if len(call.args) > cfg.hash_arg else ""
        tmpl = plan.tmpl_generic if generic else plan.tmpl
        assert tmpl is not None
        return Prepared(
            call, tmpl, wire, eps, plan.timeout, plan.idempotent, hash_key, types, generic
        )

    def _plan(self, call: Call) -> MethodPlan:
        """The call's method plan: cached per (method, argument count, version, group,
        timeout) while the snapshot it was made from is current; calls with type hints
        (which vary per request) get a fresh one."""
        snap = self.snapshot_for(call)
        if call.types is not None:
            return self._make_plan(call, snap)
        key = (call.method, len(call.args), call.version, call.group, call.timeout)
        plan = self._plans.get(key)
        if plan is None or plan.snap is not snap:
            plan = self._make_plan(call, snap)
            if len(self._plans) >= MAX_PLANS:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def _make_plan(self, call: Call, snap: Snapshot) -> MethodPlan:
        cfg = self.cfg
        types, source = self.signature(call)
        generic: bool | None = False  # "direct"
        if cfg.call == "generic":
            generic = True
        elif cfg.call == "auto":
            generic = True if types is None else None  # None: per call, by the arguments
        mcfg = cfg.methods.get(call.method)
        timeout = call.timeout or (mcfg.timeout if mcfg and mcfg.timeout else cfg.timeout)
        eps = snap.endpoints  # an immutable tuple: shared, not copied per call
        implied = _implied_version(call, cfg, eps)
        return MethodPlan(
            snap=snap,
            types=types,
            source=source,
            reg=self.type_registry(),
            generic=generic,
            generic_names=[t.generic_name() for t in types] if types is not None else None,
            timeout=timeout,
            idempotent=bool(mcfg and mcfg.idempotent),
            eps=eps,
            tmpl=None if generic else self.template(call, types, False, timeout, implied),
            tmpl_generic=(
                None if generic is False else self.template(call, types, True, timeout, implied)
            ),
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

    def send_fast(self, prep: Prepared, waiter: Waiter[Any]) -> bool:
        """The call's first attempt on an already-open connection, without awaiting
        anything: ``waiter`` gets the provider's answer or the error (perhaps at once),
        ``finish`` makes it the outcome. False when the call needs the attempt loop
        (connecting, or retries for an idempotent method)."""
        if prep.idempotent and self.cfg.retries > 0:
            return False
        eps = prep.eps
        ep = eps[0] if len(eps) == 1 else self.pick(eps, set(), prep.hash_key)
        if (ep.protocol == "tri" or self.cfg.protocol) and self.is_triple(ep):
            return self.triple.send_fast(prep, ep, waiter)
        pool = self.pool(ep)
        conn = pool.ready_connection()
        if conn is None:
            prep.first = ep
            return False
        rid = conn.next_id()
        frame = prep.tmpl.frame(rid, prep.wire, prep.call.attachments)
        prep.pool = pool
        pool.active += 1
        conn.send(rid, frame, prep.timeout, waiter)
        return True

    def finish(self, prep: Prepared, answer: Any, exc: BaseException | None) -> Outcome:
        """The outcome of a call ``send_fast`` started: its waiter's ``answer``, or ``exc``."""
        if prep.triple:
            return self.triple.finish(prep, answer, exc)
        pool = prep.pool
        assert pool is not None
        pool.active -= 1
        if exc is not None:
            if isinstance(exc, UpstreamError):
                attempts.record(pool, False, self.cfg.interface, self.events, exc)
                return Outcome.failed(upstream_error(exc, self.cfg, prep.call))
            raise exc
        out, healthy = self._decode(prep, answer)
        if healthy:
            pool.record_success()
        else:
            attempts.record(pool, False, self.cfg.interface, self.events)
        return out

    def _decode(self, prep: Prepared, fr: Frame) -> tuple[Outcome, bool]:
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
        if res.ok:  # inline: once per call
            return Outcome(res.value, res.attachments), True
        return (
            result_outcome(res, self.cfg, prep.call),
            res.status != SERVER_THREADPOOL_EXHAUSTED_ERROR,
        )

    async def invoke(self, call: Call, ctx: RequestContext | None = None) -> Outcome:
        """Prepare and run a call: its outcome, errors before sending included."""
        try:
            return await self.invoke_prepared(self.prepare(call), ctx)
        except GatewayError as e:
            return Outcome.failed(e)

    async def invoke_prepared(self, prep: Prepared, ctx: RequestContext | None = None) -> Outcome:
        """Run a prepared call through the attempt loop (``invoke.attempts``)."""
        call = prep.call
        if not prep.deadline:  # the fast path needs none: set when the loop first runs
            prep.deadline = time.monotonic() + prep.timeout
        plan: Plan[Outcome] = Plan(
            service=self.cfg.interface,
            tries=1 + max(self.cfg.retries, 0),
            idempotent=prep.idempotent,
            deadline=prep.deadline,
            pick=lambda tried: self.pick(prep.eps, tried, prep.hash_key),
            pool_for=self.pool,
            give_up=lambda last: Outcome.failed(upstream_error(last, self.cfg, call)),
            events=self.events,
            ctx=ctx,
            first=prep.first,
        )
        prep.first = None
        try:
            return await attempts.run(plan, partial(self._attempt, prep))
        except GatewayError as e:
            return Outcome.failed(e)

    async def _attempt(
        self, prep: Prepared, ep: Endpoint, pool: UpstreamPool, timeout: float
    ) -> tuple[Outcome, bool | None]:
        """One attempt on one instance, in whatever protocol it speaks."""
        if self.is_triple(ep):
            if self.cfg.transport == "http1":
                return await self.triple.attempt_http1(prep, ep, pool, timeout)
            return await self.triple.attempt(prep, ep, pool, timeout)
        conn = await pool.connection()
        rid = conn.next_id()
        frame = prep.tmpl.frame(rid, prep.wire, prep.call.attachments)
        pool.active += 1
        try:
            fr = await conn.call(rid, frame, timeout)
        finally:
            pool.active -= 1
        return self._decode(prep, fr)

    def result_error(self, res: Result, call: Call) -> GatewayError:
        """Map a non-OK Dubbo result to the HTTP error the client sees."""
        return result_error(res, self.cfg, call)

    def is_triple(self, ep: Endpoint) -> bool:
        p = self.cfg.protocol
        return p == "tri" if p else ep.protocol == "tri"


def _implied_version(call: Call, cfg: ServiceConfig, eps: Sequence[Endpoint]) -> str:
    """A service followed without a version (auto routes) whose providers all register
    one version: call with it, as a consumer that asked for that version would."""
    if call.version is not None or cfg.version or not eps:
        return ""
    v = eps[0].version
    return v if v and all(e.version == v for e in eps) else ""


_SCALARS = frozenset((str, int, float, bool, type(None)))


def _arg_paths(n: int) -> tuple[str, ...]:
    """Where each of ``n`` arguments is, for error messages."""
    return tuple(f"args[{i}]" for i in range(n))


_ARG_PATHS = _arg_paths(32)  # (no string built per argument of a call)


def _no_instance(snap: Snapshot, cfg: ServiceConfig, method: str) -> GatewayError:
    """503 for a call with no instance to go to: the registry has not answered yet, or
    knows none."""
    if snap.pending:
        return GatewayError(
            503,
            "registry_not_ready",
            f"the registry has not answered about {cfg.key} yet",
            service=cfg.interface,
            method=method,
        )
    return GatewayError(
        503,
        "no_provider",
        f"no provider instance of {snap.service} is known"
        + (f" (registry: {snap.error})" if snap.error else ""),
        service=cfg.interface,
        method=method,
    )


def _fields_unknown(args: Sequence[Any], types: Sequence[JavaType], reg: TypeRegistry) -> bool:
    """Whether an argument carries a POJO whose field types nobody told us.

    A direct call must write every field with its Java type (a ``BigDecimal`` field sent as
    a string is refused by Java's deserializer); when only the class name is known (a type
    hint, a ``class`` tag), a generic call lets the provider convert each field to its own
    declared type (``PojoUtils.realize``) instead of the gateway guessing one."""
    for a, t in zip(args, types, strict=False):
        if type(a) in _SCALARS:
            continue  # no object can hide in it (most arguments: one type check)
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
