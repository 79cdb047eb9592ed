"""Provider answers and failures as ``Outcome``s: the Dubbo2 and Triple error mappings.

The status tables themselves are ``tribridge.statuses``; what lives here are the rules that
also read a message or a reply (a Dubbo2 "not found" text -> 404, a Java refusal to read an
argument -> a type hint appended), and the turning of each protocol's reply into the one
protocol-neutral ``Outcome``.
"""

from __future__ import annotations

from typing import Any

import orjson
from tribridge.codecs.dubbo import Result
from tribridge.codecs.dubbo.frame import BAD_REQUEST
from tribridge.codecs.dubbo.messages import JavaException, exception_from_value
from tribridge.codecs.hessian2 import Decoder, HessianError
from tribridge.codecs.triple import (
    Code,
    Status,
    TripleProtocolError,
    decode_response_wrapper,
    headers_to_attachments,
    is_hessian,
)
from tribridge.config.services import ServiceConfig
from tribridge.errors import GatewayError, provider_text
from tribridge.invoke.call import Call, Outcome
from tribridge.statuses import dubbo_failure_to_http, http1_to_grpc
from tribridge.upstream.errors import CallTimeout, UpstreamError
from tribridge.upstream.triple import TripleCallError, status_error

#: ``$invoke(String, String[], Object[])`` as ``Class.getName()`` names
GENERIC_ARG_TYPES = ("java.lang.String", "[Ljava.lang.String;", "[Ljava.lang.Object;")
#: statuses that count against an instance's health (outlier ejection), and that a call
#: to an ``idempotent`` method may try on another instance
TRIPLE_FAILURES = frozenset(
    {Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.RESOURCE_EXHAUSTED, Code.INTERNAL}
)

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


class TripleFailed(UpstreamError):
    """A Triple attempt that got no answer the attempt loop should pass on as one: the
    request never left, or a status in ``TRIPLE_FAILURES`` (the instance's failure)."""

    def __init__(self, cause: TripleCallError, where: str) -> None:
        super().__init__(f"{where}: {cause}")
        self.cause = cause
        self.sent = cause.sent
        self.ejects = cause.code in TRIPLE_FAILURES
        self.code = "connect_failed" if not cause.sent else "upstream_error"


def upstream_error(e: UpstreamError | None, cfg: ServiceConfig, call: Call) -> GatewayError:
    """What the client gets when no instance answered (``e``: the last failure)."""
    if isinstance(e, TripleFailed) and e.sent:
        return triple_error(e.cause, cfg, call)
    extra = {"service": cfg.interface, "method": call.method}
    if isinstance(e, CallTimeout):
        return GatewayError(504, "upstream_timeout", str(e), **extra)
    if e is None:
        return GatewayError(503, "no_provider", "no provider instance available", **extra)
    return GatewayError(503 if not e.sent else 502, e.code, str(e), **extra)


def exception_error(exc: JavaException, cfg: ServiceConfig, call: Call) -> GatewayError:
    """The provider threw: 500 ``provider_exception`` with the Java class and cause."""
    extra: dict[str, Any] = {"service": cfg.interface, "method": call.method}
    return GatewayError(
        500,
        "provider_exception",
        provider_text(exc.message or exc.cls, cfg.java_stack_traces, extra),
        exception=exc.cls,
        cause=exc.cause.to_json() if exc.cause else None,
        **extra,
    )


def result_error(res: Result, cfg: ServiceConfig, call: Call) -> GatewayError:
    """Map a non-OK Dubbo2 result to the HTTP error the client sees."""
    if res.exception is not None:
        return exception_error(res.exception, cfg, call)
    extra: dict[str, Any] = {"service": cfg.interface, "method": call.method}
    msg = provider_text(res.error or res.status_name, cfg.java_stack_traces, extra)
    status, code = dubbo_failure_to_http(res.status, msg)
    if code == "not_found":
        return GatewayError(
            404,
            "not_found",
            msg,
            dubbo_status=res.status,
            version=call.version if call.version is not None else cfg.version,
            group=call.group if call.group is not None else cfg.group,
            **extra,
        )
    if res.status == BAD_REQUEST:  # the provider could not read an argument
        msg = with_type_hint(msg)
    return GatewayError(status, code, msg, dubbo_status=res.status, **extra)


def result_outcome(res: Result, cfg: ServiceConfig, call: Call) -> Outcome:
    """A decoded Dubbo2 response as an ``Outcome``."""
    if res.ok:
        return Outcome(res.value, res.attachments)
    return Outcome(error=result_error(res, cfg, call))


def triple_outcome(reply: Any, cfg: ServiceConfig, call: Call) -> Outcome:
    """A wrapper-mode Triple reply (``TripleResponseWrapper`` of one hessian2 value, or
    Java's exception when ``exception_code`` is set) as an ``Outcome``."""
    try:
        w = decode_response_wrapper(reply.data)
        if not is_hessian(w.serialize_type):
            raise TripleProtocolError(
                f"response serialized as {w.serialize_type!r}, expected hessian2"
            )
        value = Decoder(w.data).read() if w.data else None
    except (TripleProtocolError, HessianError) as e:
        return Outcome.failed(
            GatewayError(
                502, "bad_provider_response", str(e), service=cfg.interface, method=call.method
            )
        )
    if reply.exception_code:
        return Outcome.failed(exception_error(exception_from_value(value), cfg, call))
    return Outcome(value, headers_to_attachments(reply.trailers) if reply.trailers else {})


def triple_error(e: TripleCallError, cfg: ServiceConfig, call: Call) -> GatewayError:
    """A non-OK Triple status as the client's error (``statuses.GRPC_TO_HTTP``)."""
    extra: dict[str, Any] = {"service": cfg.interface, "method": call.method}
    if e.http[0] == 404:
        extra["version"] = call.version if call.version is not None else cfg.version
        extra["group"] = call.group if call.group is not None else cfg.group
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
