"""Every status mapping between Dubbo2, HTTP and gRPC/Triple: one table per direction.

Why here (``tribridge.statuses``, beside ``tribridge.errors``): every table is the gateway's
policy, not a wire fact — the HTTP side carries the gateway's own ``error.code`` vocabulary
(``not_found``, ``upstream_timeout`` ...), so none belongs in ``codecs``, which import nothing
of ours and need none of them.  They are used by several layers (``upstream`` reads an HTTP
reply as a gRPC code, ``invoke`` answers Dubbo2 and Triple failures in HTTP, ``ingress``
answers Triple failures in Dubbo2), so a home inside one of those layers would make the
others import it sideways; like ``errors``, this module imports only the codecs' constants.

Each table is total over the statuses it maps from: every non-OK Dubbo2 status and every
non-OK gRPC code has a row (tests/unit/test_statuses.py checks it); the ``*_UNKNOWN``
fallbacks are for values outside the protocol's spec (a provider breaking it), and for HTTP
statuses, whose space is open.  The one rule that reads a provider's message as well as its
status (a Java "not found" text -> 404, ``dubbo_failure_to_http``) lives here too, beside the
table it refines, as does the rule that cuts a Java stack trace off a message
(``split_java_trace``): the invoker, the CLI and the ingress all answer with them.
"""

from __future__ import annotations

import re

from tribridge.codecs.dubbo.frame import (
    BAD_REQUEST,
    BAD_RESPONSE,
    CHANNEL_INACTIVE,
    CLIENT_ERROR,
    CLIENT_TIMEOUT,
    SERIALIZATION_ERROR,
    SERVER_ERROR,
    SERVER_THREADPOOL_EXHAUSTED_ERROR,
    SERVER_TIMEOUT,
    SERVICE_ERROR,
    SERVICE_NOT_FOUND,
)
from tribridge.codecs.triple import Code

# ---- gRPC -> HTTP -------------------------------------------------------------------------

#: gRPC code -> (HTTP status, ``error.code`` of the JSON body), for every Triple/gRPC call
#: (wrapper mode and IDL mode; docs/triple.md reproduces it).  HTTP statuses follow Google's
#: mapping (google/rpc/code.proto, as grpc-gateway does), except UNIMPLEMENTED -> 404: it is
#: how a gRPC/Triple server says "no such service or method", like Dubbo2's SERVICE_NOT_FOUND.
#: Error codes are the gateway's own vocabulary, shared with the Dubbo2 path; the gRPC name
#: travels as ``grpc_status``.
GRPC_TO_HTTP: dict[int, tuple[int, str]] = {
    Code.CANCELLED: (499, "cancelled"),
    Code.UNKNOWN: (500, "provider_error"),
    Code.INVALID_ARGUMENT: (400, "provider_rejected_request"),
    Code.DEADLINE_EXCEEDED: (504, "upstream_timeout"),
    Code.NOT_FOUND: (404, "not_found"),
    Code.ALREADY_EXISTS: (409, "conflict"),
    Code.PERMISSION_DENIED: (403, "permission_denied"),
    Code.UNAUTHENTICATED: (401, "unauthenticated"),
    Code.RESOURCE_EXHAUSTED: (429, "provider_overloaded"),
    Code.FAILED_PRECONDITION: (400, "failed_precondition"),
    Code.ABORTED: (409, "aborted"),
    Code.OUT_OF_RANGE: (400, "out_of_range"),
    Code.UNIMPLEMENTED: (404, "not_found"),
    Code.INTERNAL: (500, "provider_error"),
    Code.UNAVAILABLE: (503, "provider_unavailable"),
    Code.DATA_LOSS: (500, "provider_error"),
}
#: a code outside the gRPC spec is the provider breaking the protocol
GRPC_TO_HTTP_UNKNOWN = (502, "provider_error")


def grpc_to_http(code: int) -> tuple[int, str]:
    """HTTP status and error code for a non-OK gRPC code (codes outside the spec: 502)."""
    return GRPC_TO_HTTP.get(code, GRPC_TO_HTTP_UNKNOWN)


# ---- Dubbo2 -> HTTP -----------------------------------------------------------------------

#: Dubbo2 response status -> (HTTP status, ``error.code``) for a provider's non-OK reply.
#: Timeouts and a full thread pool are the provider's condition, said as such (504/503); a
#: refused request is the caller's (400, with a type hint added by the invoker); everything
#: else is a provider failure the gateway passes on (502).  The invoker first turns a
#: "not found" message into 404 ``not_found``, whatever the status says.
DUBBO_TO_HTTP: dict[int, tuple[int, str]] = {
    SERIALIZATION_ERROR: (502, "provider_error"),
    CLIENT_TIMEOUT: (504, "provider_timeout"),
    SERVER_TIMEOUT: (504, "provider_timeout"),
    CHANNEL_INACTIVE: (502, "provider_error"),
    BAD_REQUEST: (400, "provider_rejected_request"),
    BAD_RESPONSE: (502, "provider_error"),
    SERVICE_NOT_FOUND: (404, "not_found"),
    SERVICE_ERROR: (502, "provider_error"),
    SERVER_ERROR: (502, "provider_error"),
    CLIENT_ERROR: (502, "provider_error"),
    SERVER_THREADPOOL_EXHAUSTED_ERROR: (503, "provider_overloaded"),
}
#: a status outside the Dubbo2 spec
DUBBO_TO_HTTP_UNKNOWN = (502, "provider_error")


def dubbo_to_http(status: int) -> tuple[int, str]:
    """HTTP status and error code for a non-OK Dubbo2 response status."""
    return DUBBO_TO_HTTP.get(status, DUBBO_TO_HTTP_UNKNOWN)


#: what Java providers write when the service or method does not exist, whatever status they
#: send it with (Dubbo answers an unknown service with SERVICE_ERROR (70) "Not found exported
#: service", an unknown generic method with 70 "No such method", a bad descriptor with
#: BAD_REQUEST (40) "Service not found", and Dubbo 3.3 a ``$invoke`` of a service key (version,
#: group) it does not export with 40 "... RpcInvocation [methodName=$invoke,
#: parameterTypes=null]": it found no method to read the arguments for); matched lower-case
NOT_FOUND_TEXTS = (
    "not found",
    "no such method",
    "no such service",
    "cannot find",
    "can not find",
    "not exist",
    "parametertypes=null]",
)
#: statuses that are about time or load: their text never makes them a 404
_NEVER_NOT_FOUND = frozenset({CLIENT_TIMEOUT, SERVER_TIMEOUT, SERVER_THREADPOOL_EXHAUSTED_ERROR})


def dubbo_failure_to_http(status: int, message: str) -> tuple[int, str]:
    """``dubbo_to_http`` refined by the message: an unknown service or method is the
    client's 404 ``not_found``, not a provider failure (502), whichever status carried it."""
    if status not in _NEVER_NOT_FOUND:
        lowered = message.lower()
        if any(t in lowered for t in NOT_FOUND_TEXTS):
            return 404, "not_found"
    return dubbo_to_http(status)


#: a stack frame (``\tat pkg.Class.method(File.java:12)``) or ``... 12 more``
_FRAME = re.compile(r"^\s+(?:at \S+\(.*\)|\.\.\. \d+ more)\s*$", re.MULTILINE)


def split_java_trace(text: str) -> tuple[str, str]:
    """``(message, trace)``: a provider's error text without the Java stack trace Dubbo
    appends (``StringUtils.toString(throwable)``: the exception, then its frames), so stack
    frames, class layouts and file paths never reach an HTTP client; ``trace`` is the whole
    text when there was one (for the log), else ``""``."""
    m = _FRAME.search(text)
    if m is None:
        return text, ""
    lines: list[str] = []
    for line in text[: m.start()].rstrip().splitlines():
        if not lines or line != lines[-1]:  # printStackTrace repeats the toString() line
            lines.append(line)
    return "\n".join(lines), text


# ---- gRPC -> Dubbo2 -----------------------------------------------------------------------

#: gRPC code -> Dubbo2 response status, for the Dubbo2 ingress answering a consumer whose call
#: went to a Triple provider: the statuses a Java consumer acts on (timeout, no such service,
#: bad request, overloaded) where a code means the same; SERVICE_ERROR (70) otherwise.
GRPC_TO_DUBBO: dict[int, int] = {
    Code.CANCELLED: SERVICE_ERROR,
    Code.UNKNOWN: SERVICE_ERROR,
    Code.INVALID_ARGUMENT: BAD_REQUEST,
    Code.DEADLINE_EXCEEDED: SERVER_TIMEOUT,
    Code.NOT_FOUND: SERVICE_NOT_FOUND,
    Code.ALREADY_EXISTS: SERVICE_ERROR,
    Code.PERMISSION_DENIED: SERVICE_ERROR,
    Code.UNAUTHENTICATED: SERVICE_ERROR,
    Code.RESOURCE_EXHAUSTED: SERVER_THREADPOOL_EXHAUSTED_ERROR,
    Code.FAILED_PRECONDITION: SERVICE_ERROR,
    Code.ABORTED: SERVICE_ERROR,
    Code.OUT_OF_RANGE: SERVICE_ERROR,
    Code.UNIMPLEMENTED: SERVICE_NOT_FOUND,
    Code.INTERNAL: SERVICE_ERROR,
    Code.UNAVAILABLE: SERVICE_ERROR,
    Code.DATA_LOSS: SERVICE_ERROR,
}
#: a code outside the gRPC spec
GRPC_TO_DUBBO_UNKNOWN = SERVICE_ERROR


def grpc_to_dubbo(code: int) -> int:
    """Dubbo2 response status for a non-OK gRPC code."""
    return GRPC_TO_DUBBO.get(code, GRPC_TO_DUBBO_UNKNOWN)


# ---- gateway failure -> Dubbo2 ------------------------------------------------------------

#: A call the Dubbo2 ingress (or the relay listener) could not complete, by the failure's
#: code (``upstream.pool.UpstreamError.code``: the upstream half of the ``error.code``
#: vocabulary) -> the Dubbo2 status its consumer gets.  A Java consumer acts on timeouts
#: (SERVER_TIMEOUT) and a full provider (SERVER_THREADPOOL_EXHAUSTED_ERROR, so it tries
#: another); a provider it cannot reach, a relay link down and every other failure that
#: never produced an answer are SERVICE_ERROR, as Java's "No provider available" is.
UPSTREAM_TO_DUBBO: dict[str, int] = {
    "timeout": SERVER_TIMEOUT,
    "upstream_backlogged": SERVER_THREADPOOL_EXHAUSTED_ERROR,
    "connect_failed": SERVICE_ERROR,
    "connection_lost": SERVICE_ERROR,
    "no_endpoint": SERVICE_ERROR,
    "relay_link_down": SERVICE_ERROR,
    "upstream_error": SERVICE_ERROR,
}
#: a failure code not in the table
UPSTREAM_TO_DUBBO_UNKNOWN = SERVICE_ERROR


def upstream_to_dubbo(code: str) -> int:
    """Dubbo2 response status for a call that failed upstream with ``code``."""
    return UPSTREAM_TO_DUBBO.get(code, UPSTREAM_TO_DUBBO_UNKNOWN)


# ---- HTTP -> gRPC -------------------------------------------------------------------------
# Two tables, because two specs answer differently: a gRPC-over-HTTP/2 reply without
# ``grpc-status`` is a proxy or a non-gRPC server in the way (gRPC's table: 400 is INTERNAL),
# while a Triple HTTP/1.1 error reply is the Triple server itself (400 is INVALID_ARGUMENT).

#: HTTP/2 status of a reply without ``grpc-status`` -> gRPC code (gRPC's
#: doc/http-grpc-status-mapping.md); any other status: UNKNOWN
HTTP2_TO_GRPC: dict[int, int] = {
    400: Code.INTERNAL,
    401: Code.UNAUTHENTICATED,
    403: Code.PERMISSION_DENIED,
    404: Code.UNIMPLEMENTED,
    429: Code.UNAVAILABLE,
    502: Code.UNAVAILABLE,
    503: Code.UNAVAILABLE,
    504: Code.UNAVAILABLE,
}

#: HTTP status of a Triple HTTP/1.1 error reply without a usable code -> gRPC code (the
#: Triple spec's table, as dubbo-node's ``codeFromHttpStatus``); any other status: UNKNOWN
HTTP1_TO_GRPC: dict[int, int] = {
    400: Code.INVALID_ARGUMENT,
    401: Code.UNAUTHENTICATED,
    403: Code.PERMISSION_DENIED,
    404: Code.UNIMPLEMENTED,
    408: Code.DEADLINE_EXCEEDED,
    409: Code.ABORTED,
    412: Code.FAILED_PRECONDITION,
    413: Code.RESOURCE_EXHAUSTED,
    415: Code.INTERNAL,
    429: Code.UNAVAILABLE,
    431: Code.RESOURCE_EXHAUSTED,
    502: Code.UNAVAILABLE,
    503: Code.UNAVAILABLE,
    504: Code.UNAVAILABLE,
}
HTTP_TO_GRPC_UNKNOWN = Code.UNKNOWN


def http2_to_grpc(status: int) -> int:
    """gRPC code for an HTTP/2 reply that carries no ``grpc-status``."""
    return HTTP2_TO_GRPC.get(status, HTTP_TO_GRPC_UNKNOWN)


def http1_to_grpc(status: int) -> int:
    """gRPC code for a Triple HTTP/1.1 error reply that carries no usable code."""
    return HTTP1_TO_GRPC.get(status, HTTP_TO_GRPC_UNKNOWN)


#: HTTP/2 RST_STREAM error code -> gRPC code (gRPC's PROTOCOL-HTTP2.md "Errors"); any other
#: error code: INTERNAL
RESET_TO_GRPC: dict[int, int] = {
    0x7: Code.UNAVAILABLE,  # REFUSED_STREAM
    0x8: Code.CANCELLED,  # CANCEL
    0xB: Code.RESOURCE_EXHAUSTED,  # ENHANCE_YOUR_CALM
    0xC: Code.PERMISSION_DENIED,  # INADEQUATE_SECURITY
}
RESET_TO_GRPC_UNKNOWN = Code.INTERNAL


def reset_to_grpc(error_code: int) -> int:
    """gRPC code for a stream the provider reset with ``error_code``."""
    return RESET_TO_GRPC.get(error_code, RESET_TO_GRPC_UNKNOWN)
