"""Dubbo2 message bodies (hessian2): requests, generic ``$invoke``, responses, events.

A request body is one hessian stream: dubbo version, path, version, method, descriptor, the
arguments, then the attachments map.  The five leading strings never touch the stream's
reference tables, so ``RequestTemplate`` pre-encodes them once per (service, method) and a
call only encodes its arguments and attachments.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from ..hessian2 import MAX_DEPTH, Decoder, Encoder, HessianError, HessianObject, TypedList
from .frame import (
    FLAG_EVENT,
    FLAG_REQUEST,
    FLAG_TWOWAY,
    HESSIAN2,
    OK,
    STATUS_NAMES,
    DubboProtocolError,
    Frame,
    pack_frame,
)

DUBBO_VERSION = "2.0.2"
GENERIC_DESC = "Ljava/lang/String;[Ljava/lang/String;[Ljava/lang/Object;"

RESPONSE_WITH_EXCEPTION = 0
RESPONSE_VALUE = 1
RESPONSE_NULL_VALUE = 2
RESPONSE_WITH_EXCEPTION_WITH_ATTACHMENTS = 3
RESPONSE_VALUE_WITH_ATTACHMENTS = 4
RESPONSE_NULL_VALUE_WITH_ATTACHMENTS = 5

READONLY_EVENT = "R"
WRITEABLE_EVENT = "W"

FLAG_REQ_TWOWAY = FLAG_REQUEST | FLAG_TWOWAY | HESSIAN2
FLAG_REQ_ONEWAY = FLAG_REQUEST | HESSIAN2
HEARTBEAT_FLAG = FLAG_REQUEST | FLAG_TWOWAY | FLAG_EVENT | HESSIAN2
EVENT_FLAG = FLAG_REQUEST | FLAG_EVENT | HESSIAN2
RESPONSE_FLAG = HESSIAN2
HEARTBEAT_RESPONSE_FLAG = FLAG_EVENT | HESSIAN2


def _strings(*values: str) -> bytes:
    enc = Encoder()
    for v in values:
        enc.write_string(v)
    return bytes(enc.buf)


class RequestTemplate:
    """Pre-encoded head of a request body for one (path, version, method, descriptor)."""

    __slots__ = ("_att_head", "base_attachments", "desc", "method", "path", "prefix", "version")

    def __init__(
        self,
        path: str,
        method: str,
        desc: str,
        version: str | None = None,
        attachments: dict[str, str] | None = None,
    ) -> None:
        self.path = path
        self.version = version or "0.0.0"
        self.method = method
        self.desc = desc
        self.prefix = _strings(DUBBO_VERSION, path, self.version, method, desc)
        base = {"path": path, "interface": path, "version": self.version}
        base.update(attachments or {})
        self.base_attachments = base
        # The constant attachments are strings (no reference slots), so their map entries
        # can be pre-encoded; per-call entries follow and, like HashMap.put, win on repeats.
        self._att_head = b"H" + _strings(*(x for kv in base.items() for x in kv))

    def body(self, args: list[Any] | tuple[Any, ...], attachments: dict[str, Any] | None) -> bytes:
        enc = Encoder()
        buf = enc.buf
        buf += self.prefix
        for a in args:
            enc.write(a)
        buf += self._att_head
        if attachments:
            for k, v in attachments.items():
                enc.write(k)
                enc.write(v)
        buf.append(0x5A)
        return bytes(buf)

    def frame(
        self,
        request_id: int,
        args: list[Any] | tuple[Any, ...],
        attachments: dict[str, Any] | None = None,
        twoway: bool = True,
    ) -> bytes:
        flag = FLAG_REQ_TWOWAY if twoway else FLAG_REQ_ONEWAY
        return pack_frame(flag, 0, request_id, self.body(args, attachments))


def generic_template(
    path: str, version: str | None = None, attachments: dict[str, str] | None = None
) -> RequestTemplate:
    att = {"generic": "true"}
    att.update(attachments or {})
    return RequestTemplate(path, "$invoke", GENERIC_DESC, version, att)


def generic_args(method: str, type_names: list[str] | None, args: list[Any]) -> list[Any]:
    """``$invoke`` arguments: method, ``String[]`` of type names, ``Object[]`` of values."""
    types = TypedList("[string", type_names) if type_names is not None else None
    return [method, types, TypedList("[object", args)]


def encode_request(
    request_id: int,
    path: str,
    method: str,
    desc: str,
    args: list[Any],
    attachments: dict[str, Any] | None = None,
    version: str | None = None,
    twoway: bool = True,
) -> bytes:
    return RequestTemplate(path, method, desc, version).frame(request_id, args, attachments, twoway)


def encode_heartbeat(request_id: int) -> bytes:
    return pack_frame(HEARTBEAT_FLAG, 0, request_id, b"N")


def encode_heartbeat_response(request_id: int, serialization: int = HESSIAN2) -> bytes:
    return pack_frame(FLAG_EVENT | serialization, OK, request_id, b"N")


def encode_event(request_id: int, event: str = READONLY_EVENT) -> bytes:
    return pack_frame(EVENT_FLAG, 0, request_id, _strings(event))


# ---- decoding ------------------------------------------------------------------------------


@dataclass(slots=True)
class Invocation:
    """A decoded request body (the gateway as a Dubbo2 server, and tests)."""

    dubbo_version: str
    path: str
    version: str
    method: str
    desc: str
    args: list[Any]
    attachments: dict[str, Any]
    #: every class the body defines (object definitions) and every list / map type it
    #: names: what a Java reader would instantiate, for a class policy to judge
    classes: tuple[str, ...] = ()
    #: every string under a ``"class"`` map key (``PojoUtils.realize`` instantiates those)
    class_keys: tuple[str, ...] = ()
    #: binary values that are Java-serialized object graphs (``nativejava`` payloads)
    java_serialized: int = 0

    @property
    def group(self) -> str:
        g = self.attachments.get("group")
        return g if isinstance(g, str) else ""

    @property
    def is_generic(self) -> bool:
        return self.method in ("$invoke", "$invokeAsync") and self.desc == GENERIC_DESC


@functools.lru_cache(maxsize=1024)
def _arg_count(desc: str) -> int:
    """Arguments a descriptor declares; cached (a gateway sees few distinct ones, and a
    bad one raises, which is never cached)."""
    from ..hessian2.javatypes import parse_descriptor

    return len(parse_descriptor(desc))


def decode_request_body(
    body: bytes,
    *,
    typed: bool = False,
    max_depth: int = MAX_DEPTH,
    max_elements: int | None = None,
) -> Invocation:
    try:
        dec = Decoder(body, typed=typed, max_depth=max_depth, max_elements=max_elements)
        head = [dec.read_string() for _ in range(5)]
        if any(h is None for h in head[1:4]):
            raise DubboProtocolError("request body: null path, version or method")
        dver, path, version, method, desc = (h or "" for h in head)
        nargs = _arg_count(desc)
        args = [dec.read() for _ in range(nargs)]
        att: Any = {} if dec.at_end() else dec.read()
        if not isinstance(att, dict):
            raise DubboProtocolError(f"request attachments must be a map, got {type(att).__name__}")
        if not dec.at_end():
            # Nothing follows the attachments in a Dubbo request; bytes that no reader here
            # looks at are bytes no class policy has judged.
            raise DubboProtocolError(f"{dec.end - dec.pos} bytes after the attachments")
    except HessianError as e:
        raise DubboProtocolError(f"bad request body: {e}") from None
    return Invocation(
        dver,
        path,
        version,
        method,
        desc,
        args,
        dict(att),
        dec.named_classes(),
        dec.class_keys(),
        dec.java_serialized,
    )


@dataclass(slots=True)
class JavaException:
    """A Throwable from a provider, reduced to what a caller can act on."""

    cls: str
    message: str | None
    cause: JavaException | None = None
    raw: Any = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"class": self.cls, "message": self.message}
        if self.cause is not None:
            out["cause"] = self.cause.to_json()
        return out


def exception_from_value(obj: Any, _seen: set[int] | None = None) -> JavaException:
    """Java's Throwable fields: ``detailMessage``, ``cause`` (``cause == this`` means none);
    Dubbo's GenericException carries ``exceptionClass``/``exceptionMessage``."""
    seen = _seen if _seen is not None else set()
    seen.add(id(obj))
    if isinstance(obj, HessianObject):
        cls, fields = obj.cls, obj.fields
    elif isinstance(obj, dict):
        cls, fields = str(obj.get("class", "java.lang.Throwable")), obj
    elif isinstance(obj, str):
        return JavaException("java.lang.RuntimeException", obj, raw=obj)
    else:
        return JavaException("java.lang.Throwable", _text(obj), raw=obj)
    if isinstance(fields.get("exceptionClass"), str):
        return JavaException(
            fields["exceptionClass"],
            _text(fields["exceptionMessage"])
            if "exceptionMessage" in fields
            else _text(fields.get("detailMessage")),
            raw=obj,
        )
    msg = fields.get("detailMessage", fields.get("message"))
    cause_obj = fields.get("cause")
    cause = None
    if cause_obj is not None and id(cause_obj) not in seen:
        cause = exception_from_value(cause_obj, seen)
    return JavaException(cls, _text(msg), cause, obj)


def _text(v: Any) -> str | None:
    """A message as text; never raises (Python refuses str() of >4300-digit ints)."""
    if v is None or isinstance(v, str):
        return v
    try:
        return repr(v)
    except ValueError:
        return f"<unprintable {type(v).__name__}>"


class Result:
    """A decoded response: status, then value / exception / error message.

    A plain slotted class with its own ``__init__`` (a dataclass's is generated Python: it
    cost ~0.3 µs of the ~2.9 µs a one-object response takes to decode, compiled)."""

    __slots__ = ("attachments", "error", "event", "exception", "flag", "request_id", "status", "value")

    def __init__(
        self,
        request_id: int,
        status: int,
        flag: int | None = None,
        value: Any = None,
        exception: JavaException | None = None,
        error: str | None = None,
        attachments: dict[str, Any] | None = None,
        event: bool = False,
    ) -> None:
        self.request_id = request_id
        self.status = status
        self.flag = flag
        self.value = value
        self.exception = exception
        self.error = error
        self.attachments: dict[str, Any] = {} if attachments is None else attachments
        self.event = event

    def _fields(self) -> tuple[Any, ...]:
        return (
            self.request_id,
            self.status,
            self.flag,
            self.value,
            self.exception,
            self.error,
            self.attachments,
            self.event,
        )

    def __eq__(self, other: object) -> bool:
        return type(other) is Result and self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclass was

    def __repr__(self) -> str:
        return (
            f"Result(request_id={self.request_id!r}, status={self.status!r}, "
            f"flag={self.flag!r}, value={self.value!r}, exception={self.exception!r}, "
            f"error={self.error!r}, attachments={self.attachments!r}, event={self.event!r})"
        )

    @property
    def ok(self) -> bool:
        return self.status == OK and self.exception is None and not self.event

    @property
    def status_name(self) -> str:
        return STATUS_NAMES.get(self.status, str(self.status))


def decode_response(frame: Frame, *, typed: bool = False, max_depth: int = 256) -> Result:
    res = Result(frame.request_id, frame.status, event=frame.is_event)
    if frame.oversize:
        res.status = 90
        res.error = f"response of {frame.oversize} bytes exceeds the payload limit"
        return res
    try:
        dec = Decoder(frame.body, typed=typed, max_depth=max_depth)
        if frame.is_event:
            res.value = None if frame.is_heartbeat else (dec.read() if frame.body else None)
            return res
        if frame.status != OK:
            msg = dec.read() if frame.body else None
            res.error = _text(msg)
            return res
        flag = dec.read_int()
        res.flag = flag
        if flag in (RESPONSE_VALUE, RESPONSE_VALUE_WITH_ATTACHMENTS):
            res.value = dec.read()
        elif flag in (RESPONSE_WITH_EXCEPTION, RESPONSE_WITH_EXCEPTION_WITH_ATTACHMENTS):
            res.exception = exception_from_value(dec.read())
        elif flag not in (RESPONSE_NULL_VALUE, RESPONSE_NULL_VALUE_WITH_ATTACHMENTS):
            raise DubboProtocolError(f"unknown response flag {flag}")
        if flag >= RESPONSE_WITH_EXCEPTION_WITH_ATTACHMENTS:
            att = dec.read()
            if not isinstance(att, dict):
                raise DubboProtocolError("response attachments must be a map")
            res.attachments = att if type(att) is dict else dict(att)  # (a fresh map)
    except HessianError as e:
        raise DubboProtocolError(f"bad response body: {e}") from None
    return res


def supports_response_attachments(dubbo_version: str) -> bool:
    """Java's Version.isSupportResponseAttachment: 2.0.2 <= v <= 2.0.99."""
    parts = dubbo_version.split(".")
    try:
        nums = [int(p) for p in parts[:3]]
    except ValueError:
        return False
    return len(nums) == 3 and nums[0] == 2 and nums[1] == 0 and 2 <= nums[2] <= 99


def encode_response(
    request_id: int,
    value: Any = None,
    *,
    exception: Any = None,
    attachments: dict[str, Any] | None = None,
    with_attachments: bool = True,
    null: bool = False,
) -> bytes:
    """A status-20 response. ``exception`` is a HessianObject (a Throwable's fields)."""
    enc = Encoder()
    if exception is not None:
        flag = RESPONSE_WITH_EXCEPTION
        payload: Any = exception
    elif value is None or null:
        flag = RESPONSE_NULL_VALUE
        payload = None
    else:
        flag = RESPONSE_VALUE
        payload = value
    if with_attachments:
        flag += 3
    enc.write_int(flag)
    if flag not in (RESPONSE_NULL_VALUE, RESPONSE_NULL_VALUE_WITH_ATTACHMENTS):
        enc.write(payload)
    if with_attachments:
        att = {"dubbo": DUBBO_VERSION}
        att.update(attachments or {})
        enc.write(att)
    return pack_frame(RESPONSE_FLAG, OK, request_id, bytes(enc.buf))


def encode_error_response(request_id: int, status: int, message: str) -> bytes:
    enc = Encoder()
    enc.write_string(message)
    return pack_frame(RESPONSE_FLAG, status, request_id, bytes(enc.buf))


def java_exception(cls: str, message: str) -> HessianObject:
    """A Throwable as Java writes it: detailMessage, cause (self), empty stackTrace."""
    exc = HessianObject(cls, {})
    exc.fields["detailMessage"] = message
    exc.fields["cause"] = exc
    exc.fields["stackTrace"] = TypedList("[java.lang.StackTraceElement", [])
    exc.fields["suppressedExceptions"] = TypedList("java.util.Collections$EmptyList", [])
    return exc
