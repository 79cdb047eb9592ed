"""JSON <-> upstream messages for streams, one codec per mode, behind ``MessageCodec``.

* ``WrapperCodec``: Triple's Java-interface mode. A server stream's one request is a
  ``TripleRequestWrapper`` of the non-observer arguments; a client/bidi stream sends one
  wrapper per element; every reply is a ``TripleResponseWrapper`` whose hessian2 value is
  rendered as the unary path renders a result (enum names, ``class`` kept or dropped).
  Arguments are coerced to their declared Java types and judged by the class policy, as on
  the unary path.
* ``IdlCodec``: protobuf (IDL / plain gRPC), with the service's JSON options.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from tribridge.codecs.hessian2 import Decoder, HessianError, encode
from tribridge.codecs.hessian2.coercion import coerce, infer
from tribridge.codecs.hessian2.javatypes import JavaType, TypeRegistry
from tribridge.codecs.triple import (
    RequestWrapperTemplate,
    TripleProtocolError,
    decode_response_wrapper,
    is_hessian,
)
from tribridge.errors import GatewayError, bad_request
from tribridge.idl.schema import (
    MethodInfo,
    ReplyDecodeError,
    RequestMismatch,
    json_to_message,
    message_to_json,
)

#: argTypes entry for an element whose Java type nobody declared (the server resolves a
#: stream method by name: Dubbo reads the element with the method's own declared type)
UNDECLARED = "java.lang.Object"


class MessageCodec(Protocol):
    def request(self, args: Sequence[Any]) -> bytes:
        """A server stream's one request message from the call's arguments."""
        ...

    def element(self, value: Any) -> bytes:
        """One message of a client/bidi stream from one JSON value."""
        ...

    def reply(self, data: bytes) -> bytes:
        """One upstream message as JSON bytes."""
        ...


class WrapperCodec:
    def __init__(
        self,
        arg_types: Sequence[JavaType | None],
        registry: TypeRegistry,
        render: Callable[[Any], bytes],
        check: Callable[[list[Any], list[JavaType] | None], None] | None = None,
        where: dict[str, Any] | None = None,
    ) -> None:
        """``arg_types``: the server stream's non-observer parameters, or the one element
        type of a client/bidi stream (None where undeclared); ``render``: value -> JSON;
        ``check``: the class policy's judgement of arguments."""
        self.types = list(arg_types)
        self.reg = registry
        self.render = render
        self.check = check
        self.where = where or {}
        names = [t.class_name() if t is not None else UNDECLARED for t in self.types]
        self.template = RequestWrapperTemplate(names)
        self.element_template = RequestWrapperTemplate(names[:1] or [UNDECLARED])

    def _wire(self, value: Any, t: JavaType | None, path: str) -> bytes:
        try:
            v = (
                infer(value, path, False, self.reg)
                if t is None
                else coerce(value, t, path, generic=False, registry=self.reg)
            )
            return encode(v)
        except HessianError as e:
            raise bad_request(str(e), **self.where) from None

    def _judge(self, args: list[Any], types: list[JavaType | None]) -> None:
        if self.check is not None and any(isinstance(a, (dict, list)) for a in args):
            known = None if any(t is None for t in types) else types
            self.check(args, known)  # type: ignore[arg-type]

    def request(self, args: Sequence[Any]) -> bytes:
        args = list(args)
        if self.types and len(args) != len(self.types):
            raise bad_request(
                f"the stream takes {len(self.types)} argument(s) "
                f"({', '.join(str(t) for t in self.types)}), got {len(args)}",
                **self.where,
            )
        types = self.types or [None] * len(args)
        self._judge(args, types)
        wire = [
            self._wire(a, t, f"args[{i}]") for i, (a, t) in enumerate(zip(args, types, strict=True))
        ]
        tmpl = self.template if self.types else RequestWrapperTemplate([UNDECLARED] * len(args))
        return tmpl.encode(wire)

    def element(self, value: Any) -> bytes:
        t = self.types[0] if self.types else None
        self._judge([value], [t])
        return self.element_template.encode([self._wire(value, t, "message")])

    def reply(self, data: bytes) -> bytes:
        try:
            w = decode_response_wrapper(data)
            if not is_hessian(w.serialize_type):
                raise TripleProtocolError(
                    f"stream message serialized as {w.serialize_type!r}, expected hessian2"
                )
            value = Decoder(w.data).read() if w.data else None
        except (TripleProtocolError, HessianError) as e:
            raise GatewayError(502, "bad_provider_response", str(e), **self.where) from None
        return self.render(value)


class IdlCodec:
    def __init__(self, mi: MethodInfo, opts: Any, where: dict[str, Any] | None = None) -> None:
        self.mi = mi
        self.opts = opts
        self.where = where or {}

    def request(self, args: Sequence[Any]) -> bytes:
        return self.element(args[0] if args else {})

    def element(self, value: Any) -> bytes:
        try:
            return bytes(json_to_message(self.mi, value, self.opts).SerializeToString())
        except RequestMismatch as e:
            raise bad_request(str(e), **self.where) from None

    def reply(self, data: bytes) -> bytes:
        try:
            return message_to_json(self.mi, data, self.opts)
        except ReplyDecodeError as e:
            raise GatewayError(502, "bad_reply", str(e), **self.where) from None


__all__ = ["IdlCodec", "MessageCodec", "WrapperCodec"]
