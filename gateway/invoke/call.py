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
from types import MappingProxyType
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


_NO_ATTACHMENTS: Mapping[str, Any] = MappingProxyType({})


class Outcome:
    """A provider's answer: ``value`` with its ``attachments``, or ``error``.

    A plain slotted class, not a dataclass: one is built per call, on the hot path."""

    __slots__ = ("attachments", "error", "value")

    def __init__(
        self,
        value: Any = None,
        attachments: Mapping[str, Any] = _NO_ATTACHMENTS,
        error: GatewayError | None = None,
    ) -> None:
        self.value = value
        self.attachments = attachments
        self.error = error

    def __repr__(self) -> str:
        if self.error is not None:
            return f"Outcome(error={self.error!r})"
        return f"Outcome({self.value!r}, attachments={dict(self.attachments)!r})"

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


class RequestContext:
    """One routed request's state between its door and its answer.

    ``route`` is the metrics label (``GET /users/{id}``, ``auto``, ``IDL …``); ``started``
    its ``time.perf_counter()``; ``tracer`` the config's ``ops.tracing.Tracer`` (None: no
    tracing); ``headers`` the incoming request's headers and ``attachments`` the outgoing
    call's (the tracing hook reads the one and writes the other); ``trace`` the handle the
    tracing hook keeps between start and end; ``reply_headers`` headers the end hooks add
    to the answer (``add_reply_header``).  A plain slotted class: one per request."""

    __slots__ = (
        "attachments",
        "events",
        "headers",
        "method",
        "reply_headers",
        "route",
        "service",
        "started",
        "trace",
        "tracer",
    )

    def __init__(
        self,
        route: str,
        service: str,
        method: str,
        started: float | None = None,
        events: Events = NO_EVENTS,
        tracer: Any = None,
        headers: Mapping[str, str] = _NO_ATTACHMENTS,
        attachments: dict[str, str] | None = None,
    ) -> None:
        self.route = route
        self.service = service
        self.method = method
        self.started = time.perf_counter() if started is None else started
        self.events = events
        self.tracer = tracer
        self.headers = headers
        self.attachments: dict[str, str] = {} if attachments is None else attachments
        self.trace: Any = None
        self.reply_headers: list[tuple[str, str]] | None = None

    def add_reply_header(self, name: str, value: str) -> None:
        if self.reply_headers is None:
            self.reply_headers = []
        self.reply_headers.append((name, value))

    def start(self) -> None:
        """The call is about to leave: ``CallStarted`` to the hooks (tracing injects)."""
        fns = self.events.by_kind.get(CallStarted)
        if fns:
            ev = CallStarted(self)
            for fn in fns:
                fn(ev)

    def end(self, status: int) -> list[tuple[str, str]] | None:
        """The request is answered with ``status`` (HTTP): ``CallEnded`` to the hooks
        (metrics count it, tracing ends its span); -> headers to add to the answer.
        Every routed request ends exactly once."""
        fns = self.events.by_kind.get(CallEnded)
        if fns:
            ev = CallEnded(self, status)
            for fn in fns:
                fn(ev)
        return self.reply_headers
