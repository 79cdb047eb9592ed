"""Every failure is an answer: an HTTP status plus ``{"error": {...}}``, never a traceback."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from tribridge.statuses import split_java_trace

log = logging.getLogger("tribridge.errors")


class GatewayError(Exception):
    """A failure the client gets as JSON: ``status`` is HTTP, ``code`` is machine-readable."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = {k: v for k, v in extra.items() if v is not None}

    def body(self) -> bytes:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        err.update(self.extra)
        return orjson.dumps({"error": err}, default=str)


def not_found(message: str, **extra: Any) -> GatewayError:
    return GatewayError(404, "not_found", message, **extra)


def bad_request(message: str, **extra: Any) -> GatewayError:
    return GatewayError(400, "bad_request", message, **extra)


def provider_text(text: str, include_trace: bool, extra: dict[str, Any]) -> str:
    """A provider's error text for the client: without the Java stack trace Dubbo appends
    to it, which is logged (with the service and method in ``extra``) and added to ``extra``
    as ``java_stack_trace`` only when ``errors.java_stack_traces`` is on."""
    msg, trace = split_java_trace(text)
    if trace:
        where = f"{extra.get('service', '?')}.{extra.get('method', '?')}"
        log.warning("%s: provider failure with a Java stack trace:\n%s", where, trace)
        if include_trace:
            extra["java_stack_trace"] = trace
    return msg
