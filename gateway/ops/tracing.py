"""W3C trace context from HTTP into Dubbo attachments (and Triple headers), and back.

The gateway is one hop of the trace: it keeps the caller's trace id, makes a new span id
for its call to the provider and sends ``traceparent: 00-<trace id>-<new span id>-<flags>``
(plus ``tracestate`` unchanged) as Dubbo2 attachments — the keys OpenTelemetry's Dubbo
instrumentation reads.  Triple carries attachments as lower-cased headers, so the same two keys work there; ``triple_headers`` adds ``tri-trace-traceid`` from the
Triple spec for peers that read that instead.  A request without a valid ``traceparent``
starts a new trace when ``generate`` is on.

OpenTelemetry spans are optional (``pip install 'tribridge[otel]'``): with ``otel: true`` and
the SDK importable, each call becomes a CLIENT span whose context is what gets injected.
Without it nothing here imports OpenTelemetry, and the per-request cost is one header
lookup, one regex-free parse and one random number.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Mapping
from typing import Any

from tribridge.config.model import TracingConfig
from tribridge.invoke.events import CallEnded, CallStarted, Events

log = logging.getLogger("tribridge.tracing")

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
#: W3C Trace Context level 2 response header naming the span that answered
TRACERESPONSE = "traceresponse"
_TRACEPARENT = re.compile(
    r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?\Z", re.S
).match
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
#: the module's Mersenne Twister: ids need uniqueness, not secrecy, and os.urandom costs a
#: syscall per id (~3 µs); ``random`` reseeds itself in forked children (register_at_fork)
_rand = random.getrandbits


def parse_traceparent(value: str | None) -> tuple[str, str, str] | None:
    """-> (trace id, parent span id, flags) of a valid header, else None (spec §3.2)."""
    if value is None:
        return None
    m = _TRACEPARENT(value)
    if m is None:
        m = _TRACEPARENT(value.strip().lower())
        if m is None:
            return None
    version, trace_id, span_id, flags, rest = m.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return trace_id, span_id, flags


def new_span_id() -> str:
    while True:
        v = _rand(64)
        if v:
            return f"{v:016x}"


def new_trace_id() -> str:
    while True:
        v = _rand(128)
        if v:
            return f"{v:032x}"


def _new_traceparent() -> str:
    """A new trace's ``traceparent`` (sampled): trace and span id from one random draw,
    hex-encoded and split by ``bytes.hex`` in C (a 192-bit int through a format string
    cost twice as much)."""
    ids = _rand(192).to_bytes(24, "little").hex("-", -16)  # 32 hex digits, "-", 16 more
    if ids.startswith(_ZERO_TRACE) or ids.endswith(_ZERO_SPAN):  # all-zero ids are invalid
        return f"00-{new_trace_id()}-{new_span_id()}-01"
    return "00-" + ids + "-01"


def triple_headers(attachments: dict[str, str]) -> dict[str, str]:
    """Trace headers for a Triple call made with these attachments."""
    out = {k: attachments[k] for k in (TRACEPARENT, TRACESTATE) if k in attachments}
    tp = parse_traceparent(out.get(TRACEPARENT))
    if tp is not None:
        out["tri-trace-traceid"] = tp[0]
    return out


def from_attachments(attachments: dict[str, Any]) -> dict[str, str]:
    """The reverse direction (Dubbo request in, HTTP out): trace headers to forward."""
    out: dict[str, str] = {}
    tp = attachments.get(TRACEPARENT)
    if isinstance(tp, str) and parse_traceparent(tp) is not None:
        out[TRACEPARENT] = tp
        ts = attachments.get(TRACESTATE)
        if isinstance(ts, str):
            out[TRACESTATE] = ts
    return out


class Tracer:
    """Per-config tracing policy; ``inject`` is called once per proxied request."""

    def __init__(self, cfg: TracingConfig) -> None:
        self.cfg = cfg
        self.active = cfg.enabled
        self.response_header = cfg.enabled and cfg.response_header
        self._otel: Any = None
        if cfg.enabled and cfg.otel:
            self._otel = _OtelBridge.create(cfg.service_name)

    def inject(
        self, headers: Mapping[str, str], attachments: dict[str, str], service: str, method: str
    ) -> Any:
        """Put the outgoing trace context into ``attachments``; returns a handle for
        ``finish`` (the traceparent string, or an OpenTelemetry span), or None."""
        if self._otel is not None:
            return self._otel.start(headers, attachments, service, method, self.cfg.generate)
        parsed = parse_traceparent(headers.get(TRACEPARENT))
        if parsed is None:
            if not self.cfg.generate:
                attachments.pop(TRACEPARENT, None)  # an invalid one is not forwarded
                return None
            tp = _new_traceparent()
        else:
            tp = f"00-{parsed[0]}-{new_span_id()}-{parsed[2]}"
            ts = headers.get(TRACESTATE)
            if ts is not None:
                attachments[TRACESTATE] = ts
        attachments[TRACEPARENT] = tp
        return tp

    def finish(self, handle: Any, status: int) -> str | None:
        """End the call's span; returns the ``traceresponse`` value to send, if any."""
        if handle is None:
            return None
        if type(handle) is str:
            return handle if self.response_header else None
        return self._otel.end(handle, status, self.response_header)


class _OtelBridge:
    """OpenTelemetry glue, imported only when configured."""

    def __init__(self, trace: Any, propagator: Any, tracer: Any) -> None:
        self.trace = trace
        self.propagator = propagator
        self.tracer = tracer

    @classmethod
    def create(cls, name: str) -> _OtelBridge | None:
        try:
            from opentelemetry import trace
            from opentelemetry.trace.propagation.tracecontext import (
                TraceContextTextMapPropagator,
            )
        except ImportError:
            log.warning(
                "tracing.otel is on but opentelemetry is not installed "
                "(pip install 'tribridge[otel]'); propagating W3C headers only"
            )
            return None
        return cls(trace, TraceContextTextMapPropagator(), trace.get_tracer("tribridge"))

    def start(
        self,
        headers: Mapping[str, str],
        attachments: dict[str, str],
        service: str,
        method: str,
        generate: bool,
    ) -> Any:
        ctx = self.propagator.extract(headers)
        if not generate and not self.trace.get_current_span(ctx).get_span_context().is_valid:
            return None
        span = self.tracer.start_span(
            f"{service}/{method}",
            context=ctx,
            kind=self.trace.SpanKind.CLIENT,
            attributes={
                "rpc.system": "apache_dubbo",
                "rpc.service": service,
                "rpc.method": method,
            },
        )
        attachments.pop(TRACEPARENT, None)
        self.propagator.inject(attachments, context=self.trace.set_span_in_context(span))
        return span

    def end(self, span: Any, status: int, response_header: bool) -> str | None:
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(self.trace.Status(self.trace.StatusCode.ERROR))
        span.end()
        if not response_header:
            return None
        sc = span.get_span_context()
        return f"00-{sc.trace_id:032x}-{sc.span_id:016x}-{int(sc.trace_flags):02x}"


def subscribe(events: Events) -> None:
    """Trace every routed call through the call path's hooks (``invoke.events``): at
    ``CallStarted`` the request context's tracer injects the outgoing context into its
    attachments, at ``CallEnded`` it ends the span and adds ``traceresponse``."""
    events.subscribe(CallStarted, _started)
    events.subscribe(CallEnded, _ended)


def _started(ev: CallStarted) -> None:
    c = ev.ctx
    tracer = c.tracer
    if tracer is not None and tracer.active:
        c.trace = tracer.inject(c.headers, c.attachments, c.service, c.method)


def _ended(ev: CallEnded) -> None:
    c = ev.ctx
    if c.trace is not None:
        tr = c.tracer.finish(c.trace, ev.status)
        if tr is not None:
            c.add_reply_header(TRACERESPONSE, tr)
