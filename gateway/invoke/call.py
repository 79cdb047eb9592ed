"""Protocol-neutral call and outcome types, and the request context every door fills in.

A ``Call`` is what a client asked for (method, arguments, attachments, deadline), whatever
door it came through; an ``Outcome`` is what came back — a value with its attachments, or a
``GatewayError`` — whatever protocol the provider spoke (Dubbo2 results and Triple replies
both become one, so neither is dressed up as the other).  A ``RequestContext`` carries one
request's bookkeeping (route label, service, method, start time, trace handle, headers to
add to the answer) from the door through the attempt loop to the answer, in one object
instead of positional arguments; the event hooks (``invoke.events``) read and fill it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tribridge.codecs.hessian2 import JavaType
from tribridge.errors import GatewayError
from tribridge.invoke.events import NO_EVENTS, CallEnded, CallStarted, Events


@dataclass(slots=True)
class Call:
    """One invocation request, already parsed from its door (HTTP, Dubbo2, the CLI)."""

    method: str
    args: list[Any]
    types: list[JavaType] | None = None  # request hint
    version: str | None = None
    group: str | None = None
    #: seconds the whole call may take (its deadline, counted from when it starts);
    #: None: the method's or the service's configured timeout
    timeout: float | None = None
    attachments: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Outcome:
    """A provider's answer: ``value`` with its ``attachments``, or ``error``."""

    value: Any = None
    attachments: Mapping[str, Any] = field(default_factory=dict)
    error: GatewayError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def unwrap(self) -> Any:
        """The value, or the error raised."""
        if self.error is not None:
            raise self.error
        return self.value

    @classmethod
    def failed(cls, error: GatewayError) -> Outcome:
        return cls(error=error)


@dataclass(slots=True)
class RequestContext:
    """One routed request's state between its door and its answer.

    ``route`` is the metrics label (``GET /users/{id}``, ``auto``, ``idl …``); ``tracer``
    the config's ``ops.tracing.Tracer`` (None: no tracing); ``headers`` the incoming
    request's headers and ``attachments`` the outgoing call's (the tracing hook reads the
    one and writes the other); ``trace`` the handle the tracing hook keeps between start
    and end; ``reply_headers`` headers the end hooks add to the answer."""

    route: str
    service: str
    method: str
    started: float = field(default_factory=time.perf_counter)
    events: Events = NO_EVENTS
    tracer: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    attachments: dict[str, str] = field(default_factory=dict)
    trace: Any = None
    reply_headers: list[tuple[str, str]] = field(default_factory=list)

    def start(self) -> None:
        """The call is about to leave: ``CallStarted`` to the hooks (tracing injects)."""
        ev = self.events
        if ev.wants(CallStarted):
            ev.dispatch(CallStarted(self))

    def end(self, status: int) -> list[tuple[str, str]]:
        """The request is answered with ``status`` (HTTP): ``CallEnded`` to the hooks
        (metrics count it, tracing ends its span); -> headers to add to the answer.
        Every routed request ends exactly once."""
        ev = self.events
        if ev.wants(CallEnded):
            ev.dispatch(CallEnded(self, status))
        return self.reply_headers
