"""Every failure is an answer: an HTTP status plus ``{"error": {...}}``, never a traceback."""

from __future__ import annotations

from typing import Any

import orjson


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
