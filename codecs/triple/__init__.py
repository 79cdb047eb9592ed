"""Dubbo3 Triple codec (sans-IO): gRPC message framing, wrapper messages, status."""

from .errors import TripleProtocolError
from .framing import DEFAULT_MAX_MESSAGE, MessageDecoder, encode_message
from .metadata import attachments_to_headers, headers_to_attachments
from .status import (
    Code,
    Status,
    code_name,
    decode_grpc_message,
    encode_grpc_message,
    exception_code,
    parse_status,
)
from .wrapper import (
    HESSIAN_WRAPPER,
    ExceptionWrapper,
    RequestWrapper,
    RequestWrapperTemplate,
    ResponseWrapper,
    decode_exception_wrapper,
    decode_request_wrapper,
    decode_response_wrapper,
    encode_exception_wrapper,
    encode_request_wrapper,
    encode_response_wrapper,
    is_hessian,
)

__all__ = [
    "DEFAULT_MAX_MESSAGE",
    "HESSIAN_WRAPPER",
    "Code",
    "ExceptionWrapper",
    "MessageDecoder",
    "RequestWrapper",
    "RequestWrapperTemplate",
    "ResponseWrapper",
    "Status",
    "TripleProtocolError",
    "attachments_to_headers",
    "code_name",
    "decode_exception_wrapper",
    "decode_grpc_message",
    "decode_request_wrapper",
    "decode_response_wrapper",
    "encode_exception_wrapper",
    "encode_grpc_message",
    "encode_message",
    "encode_request_wrapper",
    "encode_response_wrapper",
    "exception_code",
    "headers_to_attachments",
    "is_hessian",
    "parse_status",
]
