"""Dubbo2 protocol codec (sans-IO): frames, request/response bodies, events."""

from .._accel import implementation
from . import frame as _frame
from . import messages as _messages
from .frame import (
    DEFAULT_MAX_PAYLOAD,
    HEADER_LEN,
    DubboProtocolError,
    Frame,
    FrameDecoder,
    pack_frame,
    unpack_header,
)
from .messages import (
    GENERIC_DESC,
    Invocation,
    JavaException,
    RequestTemplate,
    Result,
    decode_request_body,
    decode_response,
    encode_error_response,
    encode_event,
    encode_heartbeat,
    encode_heartbeat_response,
    encode_request,
    encode_response,
    exception_from_value,
    generic_args,
    generic_template,
    java_exception,
    supports_response_attachments,
)

#: ``"compiled"`` (the Cython build of frame.py / messages.py) or ``"python"``
IMPLEMENTATION = implementation((_frame, _messages))

__all__ = [
    "DEFAULT_MAX_PAYLOAD",
    "GENERIC_DESC",
    "HEADER_LEN",
    "IMPLEMENTATION",
    "DubboProtocolError",
    "Frame",
    "FrameDecoder",
    "Invocation",
    "JavaException",
    "RequestTemplate",
    "Result",
    "decode_request_body",
    "decode_response",
    "encode_error_response",
    "encode_event",
    "encode_heartbeat",
    "encode_heartbeat_response",
    "encode_request",
    "encode_response",
    "exception_from_value",
    "generic_args",
    "generic_template",
    "java_exception",
    "pack_frame",
    "supports_response_attachments",
    "unpack_header",
]
