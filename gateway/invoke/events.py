"""Typed events of the call path, dispatched to listeners registered per event type.

In the style of grpclib's ``events``: the call path does not know who watches it.  It
builds an event only when someone listens for that type (``Events.wants``), and the
listeners — metrics (``ops.metrics.subscribe``), tracing (``ops.tracing.subscribe``), tests —
register themselves.  Listeners run synchronously on the event loop, in registration order;
an exception in one propagates (a listener bug must show in tests, not vanish).

The events carry the request's context typed as ``EventContext``, what listeners read and
fill of it: the context (``invoke.call.RequestContext``) dispatches these events, so this
module names only the Protocol and the call types import it, never the other way round.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar


class EventContext(Protocol):
    """What listeners read and fill of one routed request's context
    (``invoke.call.RequestContext``): metrics read its labels and start time, tracing reads
    its tracer and incoming headers, writes the outgoing attachments and keeps its handle in
    ``trace``, and adds reply headers at the end."""

    route: str
    service: str
    method: str
    started: float
    #: the config's ``ops.tracing.Tracer`` or None (typed as ``RequestContext`` types it:
    #: this module sits below ``ops``)
    tracer: Any
    headers: Mapping[str, str]
    attachments: dict[str, str]
    trace: Any

    def add_reply_header(self, name: str, value: str) -> None: ...


@dataclass(slots=True)
class CallStarted:
    """A routed call is about to leave the gateway (its attachments may still change)."""

    ctx: EventContext


@dataclass(slots=True)
class CallEnded:
    """A routed request was answered with HTTP ``status``."""

    ctx: EventContext
    status: int


@dataclass(slots=True)
class AttemptFailed:
    """One attempt of a call got no provider answer (``code``: ``UpstreamError.code``);
    ``retrying``: another instance is tried next.  ``ctx`` is None for calls without a
    request context (the Dubbo2 ingress forwards bytes)."""

    ctx: EventContext | None
    service: str
    address: str
    code: str
    message: str
    retrying: bool


@dataclass(slots=True)
class InstanceEjected:
    """An instance crossed ``eject_after`` consecutive failures and is skipped for a while."""

    service: str
    address: str


E = TypeVar("E")


class Events:
    """Listeners by event type."""

    __slots__ = ("by_kind",)

    def __init__(self) -> None:
        #: event type -> its listeners (read by hot paths that dispatch themselves;
        #: change it only through ``subscribe`` / ``unsubscribe``)
        self.by_kind: dict[type[Any], list[Callable[[Any], None]]] = {}

    def subscribe(self, kind: type[E], listener: Callable[[E], None]) -> None:
        self.by_kind.setdefault(kind, []).append(listener)

    def unsubscribe(self, kind: type[E], listener: Callable[[E], None]) -> None:
        fns = self.by_kind.get(kind)
        if fns is not None and listener in fns:
            fns.remove(listener)

    def wants(self, kind: type[Any]) -> bool:
        """Whether anyone listens for ``kind`` (build the event only then)."""
        return bool(self.by_kind.get(kind))

    def dispatch(self, event: object) -> None:
        for fn in self.by_kind.get(type(event), ()):
            fn(event)


class _NoEvents(Events):
    """Listens to nothing and refuses listeners: the default for calls without a gateway
    (the CLI, tests), so one shared instance never collects subscriptions."""

    __slots__ = ()

    def subscribe(self, kind: type[E], listener: Callable[[E], None]) -> None:
        raise TypeError("NO_EVENTS takes no listeners; give the caller its own Events")


NO_EVENTS: Events = _NoEvents()
