"""A Dubbo2 call bridged onto a Triple (wrapper-mode) provider, for the Dubbo2 ingress.

A Dubbo2 request body is one hessian stream — class definitions and back-references may
cross argument boundaries — while Triple's ``TripleRequestWrapper`` carries each argument as
its own hessian2 document.  So the arguments are decoded wire-faithfully (``typed=True``:
``Long``, typed lists and maps, POJOs with their class names) and each is re-encoded on
its own; the descriptor becomes ``argTypes`` as JVM binary names, and the attachments
become Triple headers exactly as the HTTP path sends them.

The reply goes the other way with no decode at all: ``TripleResponseWrapper.data`` is one
standalone hessian2 value, which is precisely what follows the response flag in a Dubbo2
response body; the trailers become the response attachments (for consumers whose dubbo
version reads them).  gRPC statuses become the Dubbo statuses a consumer acts on.
"""

from __future__ import annotations

from dataclasses import dataclass

from tribridge.codecs.dubbo import DubboProtocolError, decode_request_body, encode_error_response
from tribridge.codecs.dubbo.frame import (
    OK,
    SERVICE_ERROR,
    pack_frame,
)
from tribridge.codecs.dubbo.messages import (
    DUBBO_VERSION,
    RESPONSE_FLAG,
    RESPONSE_NULL_VALUE,
    RESPONSE_VALUE,
    RESPONSE_WITH_EXCEPTION,
    supports_response_attachments,
)
from tribridge.codecs.hessian2 import MAX_DEPTH, Encoder, HessianError, encode
from tribridge.codecs.hessian2.javatypes import parse_descriptor
from tribridge.codecs.hessian2.values import JavaTypeError
from tribridge.codecs.triple import (
    RequestWrapperTemplate,
    TripleProtocolError,
    attachments_to_headers,
    decode_response_wrapper,
    headers_to_attachments,
    is_hessian,
)
from tribridge.invoke.replies import GENERIC_ARG_TYPES
from tribridge.statuses import grpc_to_dubbo
from tribridge.upstream.triple import APP_NAME, TripleCallError, TripleReply


class BridgeError(Exception):
    """The Dubbo2 request cannot be expressed as a Triple call (answered 40)."""


@dataclass(slots=True)
class TripleRequest:
    path: str
    payload: bytes
    headers: list[tuple[str, str | bytes]]
    dubbo_version: str


def triple_request(body: bytes, interface: str, max_depth: int = MAX_DEPTH) -> TripleRequest:
    """The Triple call for a Dubbo2 request body; ``interface`` is the Triple service name
    (the path the consumer called)."""
    try:
        inv = decode_request_body(body, typed=True, max_depth=max_depth)
        types = [jt.class_name() for jt in parse_descriptor(inv.desc)]
        args = [encode(a) for a in inv.args]
    except (DubboProtocolError, HessianError, JavaTypeError) as e:
        raise BridgeError(f"cannot bridge the request to Triple: {e}") from None
    att = inv.attachments
    method = inv.method
    headers: list[tuple[str, str | bytes]] = [("tri-consumer-appname", APP_NAME)]
    version = att.get("version", inv.version)
    if isinstance(version, str) and version and version != "0.0.0":
        headers.append(("tri-service-version", version))
    if inv.group:
        headers.append(("tri-service-group", inv.group))
    if inv.is_generic:
        method = "$invoke"
        types = list(GENERIC_ARG_TYPES)
        headers.append(("generic", str(att.get("generic") or "true")))
    headers += attachments_to_headers(att)
    payload = RequestWrapperTemplate(types).encode(args)
    return TripleRequest(f"/{interface}/{method}", payload, headers, inv.dubbo_version)


def dubbo_response(request_id: int, reply: TripleReply, dubbo_version: str) -> bytes:
    """A Dubbo2 response frame for a completed Triple call (value, null or exception)."""
    try:
        w = decode_response_wrapper(reply.data)
        if not is_hessian(w.serialize_type):
            raise TripleProtocolError(
                f"response serialized as {w.serialize_type!r}, expected hessian2"
            )
    except TripleProtocolError as e:
        return encode_error_response(request_id, SERVICE_ERROR, f"tribridge: bad Triple reply: {e}")
    if reply.exception_code:
        flag = RESPONSE_WITH_EXCEPTION
    elif not w.data or w.data == b"N":
        flag = RESPONSE_NULL_VALUE
    else:
        flag = RESPONSE_VALUE
    with_att = supports_response_attachments(dubbo_version)
    enc = Encoder()
    enc.write_int(flag + 3 if with_att else flag)
    out = bytes(enc.buf)
    if flag != RESPONSE_NULL_VALUE:
        out += w.data
    if with_att:
        att: dict[str, object] = {"dubbo": DUBBO_VERSION}
        if reply.trailers:
            trailers = headers_to_attachments(reply.trailers)
            att.update((k, v) for k, v in trailers.items() if isinstance(v, str))
        out += encode(att)
    return pack_frame(RESPONSE_FLAG, OK, request_id, out)


def dubbo_status(e: TripleCallError) -> int:
    """The Dubbo2 status a consumer gets for a failed Triple call (``statuses.GRPC_TO_DUBBO``)."""
    return grpc_to_dubbo(e.code)
