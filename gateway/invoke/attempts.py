"""The one attempt loop: every door's call to a provider goes through ``run``.

Explicit and auto HTTP routes (``invoke.invoker.Service``), IDL routes
(``routing.idl_routes``), the Dubbo2 ingress and the relay listener built on it all call a
provider the same way:

- **deadline**: the call's timeout counts from its start; each attempt gets what is left
  of it, and no attempt starts once it has passed;
- **retries**: up to ``tries`` attempts on distinct instances, but another instance is
  tried only when the request never left (``UpstreamError.sent`` is False: connect failed,
  link down, provider backlogged) or the method is declared ``idempotent``;
- **ejection**: a failure that counts against the instance (``UpstreamError.ejects``, or an
  attempt that answers ``healthy=False``) is recorded on its pool, a healthy answer resets
  the count; the pool ejects after ``eject_after`` in a row, and ``pick`` prefers instances
  that are not ejected (all ejected: try them anyway — panic mode, not fail closed);
- **events**: ``AttemptFailed`` and ``InstanceEjected`` to the gateway's listeners.

The loop knows nothing of the protocol: an attempt is a coroutine given the instance, its
pool (``upstream.protocols.UpstreamPool``) and the time left, which answers
``(value, healthy)`` — ``healthy`` True / False / None (counts for neither) — or raises an
``UpstreamError``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from tribridge.invoke.call import RequestContext
from tribridge.invoke.events import NO_EVENTS, AttemptFailed, Events, InstanceEjected
from tribridge.registries.base import Endpoint
from tribridge.upstream.errors import CallTimeout, NoEndpoint, UpstreamError
from tribridge.upstream.protocols import UpstreamPool

T = TypeVar("T")

#: an attempt: (instance, its pool, seconds left) -> (value, healthy)
Attempt = Callable[[Endpoint, UpstreamPool, float], Awaitable[tuple[T, bool | None]]]


class Balancer(Protocol):
    """What ``pick`` needs from a load balancer (``upstream.balancers``)."""

    def select(
        self, eps: Sequence[Endpoint], pools: Sequence[Any], hash_key: str | None
    ) -> int: ...


def pick(
    eps: Sequence[Endpoint],
    exclude: set[tuple[str, int]],
    pool_for: Callable[[Endpoint], UpstreamPool],
    balancer: Balancer,
    hash_key: str | None = None,
) -> Endpoint:
    """One instance of ``eps`` not in ``exclude``: the balancer's choice among the
    available ones (not ejected, not READONLY), or among all when none is."""
    if len(eps) == 1 and not exclude:
        # one instance: every balancer answers 0 and panic mode takes it even when it is
        # ejected or READONLY, so neither its pool nor the clock need be looked at
        return eps[0]
    now = time.monotonic()
    usable = [e for e in eps if (e.host, e.port) not in exclude]
    if not usable:
        raise NoEndpoint("no provider instance left to try")
    pools = [pool_for(e) for e in usable]
    healthy = [i for i, p in enumerate(pools) if p.available(now)]
    if healthy and len(healthy) != len(usable):
        usable = [usable[i] for i in healthy]
        pools = [pools[i] for i in healthy]
    # else: every instance is ejected or readonly — try them anyway (panic mode)
    return usable[balancer.select(usable, pools, hash_key)]


@dataclass(slots=True)
class Plan(Generic[T]):
    """How one call may be attempted."""

    #: the service, for events and messages
    service: str
    #: attempts at most (1 + retries)
    tries: int
    #: whether a request that may have reached a provider may be sent again
    idempotent: bool
    #: ``time.monotonic()`` past which no attempt starts
    deadline: float
    #: (instances tried) -> the next instance; raises ``NoEndpoint`` when none is left
    pick: Callable[[set[tuple[str, int]]], Endpoint]
    #: instance -> its pool
    pool_for: Callable[[Endpoint], UpstreamPool]
    #: last failure (None: no instance at all) -> what the call answers instead
    give_up: Callable[[UpstreamError | None], T]
    events: Events = NO_EVENTS
    ctx: RequestContext | None = None
    #: an instance already chosen (the fast path picked it, then found no open connection)
    first: Endpoint | None = None


async def run(plan: Plan[T], attempt: Attempt[T]) -> T:
    """Attempt the call until an instance answers or the plan's rules say stop."""
    tried: set[tuple[str, int]] = set()
    last: UpstreamError | None = None
    first, plan.first = plan.first, None
    for n in range(max(plan.tries, 1)):
        # what is left of the deadline, in whole milliseconds up (the unit every protocol
        # carries it in: a first attempt gets the call's whole timeout)
        left = math.ceil((plan.deadline - time.monotonic()) * 1000) / 1000
        if left <= 0:
            if last is None or not isinstance(last, CallTimeout):
                last = CallTimeout(f"deadline passed after {n} attempt(s)")
            break
        if first is not None:
            ep, first = first, None
        else:
            try:
                ep = plan.pick(tried)
            except NoEndpoint:
                break
        tried.add((ep.host, ep.port))
        pool = plan.pool_for(ep)
        was = pool.available(time.monotonic())
        try:
            value, healthy = await attempt(ep, pool, left)
        except UpstreamError as e:
            last = e
            if e.ejects:
                pool.record_failure()
            _ejected(plan, pool, was)
            retrying = (not e.sent or plan.idempotent) and n + 1 < plan.tries
            if plan.events.wants(AttemptFailed):
                plan.events.dispatch(
                    AttemptFailed(plan.ctx, plan.service, pool.address, e.code, str(e), retrying)
                )
            if e.sent and not plan.idempotent:
                break
            continue
        if healthy:
            pool.record_success()
        elif healthy is False:
            pool.record_failure()
            _ejected(plan, pool, was)
        return value
    return plan.give_up(last)


def _ejected(plan: Plan[Any], pool: UpstreamPool, was: bool) -> None:
    """``InstanceEjected`` when this attempt's failure — recorded here, or by the pool for
    a refused connect — took the instance out of the balancer's choice."""
    if was and plan.events.wants(InstanceEjected) and not pool.available(time.monotonic()):
        plan.events.dispatch(InstanceEjected(plan.service, pool.address))


def record(
    pool: UpstreamPool,
    healthy: bool,
    service: str,
    events: Events,
    error: UpstreamError | None = None,
) -> None:
    """The loop's rules for an attempt made outside it (the fast path's first attempt,
    completed by a callback, never retried): success resets the instance's failure count,
    a failure counts towards ejection, and ``error`` (no answer) is an ``AttemptFailed``."""
    if healthy:
        pool.record_success()
        return
    if error is not None and events.wants(AttemptFailed):
        events.dispatch(AttemptFailed(None, service, pool.address, error.code, str(error), False))
    was = pool.available(time.monotonic())
    pool.record_failure()
    if was and events.wants(InstanceEjected) and not pool.available(time.monotonic()):
        events.dispatch(InstanceEjected(service, pool.address))
