"""A Dubbo2 provider of ``com.tribridge.demo.DemoService`` that answers like Java does.

Built on a bare ``asyncio.Protocol`` and our sans-IO codecs, it mirrors what a Java Dubbo
3.x provider (hessian2, ``serialization.security.check`` on, ``dubbo-compatible`` on the
classpath) puts on the wire:

* direct calls: the descriptor must match; each argument is read as
  ``readObject(declaredClass)`` would (a POJO from an object *or* an untyped map, an enum from
  an enum object or a map with ``name``).  An argument Java could not read becomes ``null``,
  as ``DecodeableRpcInvocation`` logs and leaves it (primitives then fail with an NPE);
* generic calls (``$invoke``/``$invokeAsync``): ``PojoUtils.realize`` of the arguments,
  ``PojoUtils.generalize`` of the result, business exceptions as
  ``com.alibaba.dubbo.rpc.service.GenericException``.  What ``GenericFilter`` *throws* (no
  such method, unknown type name, a bad argument it cannot realize) is not a business result
  but status 70, as in Java;
* status 40 for an undecodable body, a foreign serialization id, an unknown path/version or
  method/descriptor; status 70 for a group mismatch; response flags 3/4/5 only for request
  dubbo versions 2.0.2..2.0.99; heartbeats answered; one-way requests never answered;
* ``close(grace)`` sends the READONLY event to every client, then waits for in-flight calls.

Run standalone: ``python -m tribridge.interop.demo_provider --port 0`` prints ``READY <port>``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as _dt
import math
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

from tribridge.codecs.dubbo import (
    DEFAULT_MAX_PAYLOAD,
    GENERIC_DESC,
    HEADER_LEN,
    DubboProtocolError,
    Frame,
    decode_request_body,
    encode_error_response,
    encode_response,
    java_exception,
    supports_response_attachments,
)
from tribridge.codecs.dubbo.connection import Connection, Heartbeat, ProtocolError, Request, Role
from tribridge.codecs.dubbo.frame import (
    BAD_REQUEST,
    BAD_RESPONSE,
    HESSIAN2,
    SERIALIZATION_ERROR,
    SERVICE_ERROR,
)
from tribridge.codecs.hessian2 import (
    Decoder,
    HessianError,
    HessianObject,
    Long,
    PairMap,
    TypedList,
    TypedMap,
    parse_type,
)
from tribridge.codecs.hessian2.javatypes import PRIMITIVES
from tribridge.interop.standalone import serve_until_signalled

SERVICE = "com.tribridge.demo.DemoService"
USER = "com.tribridge.demo.User"
COLOR = "com.tribridge.demo.Color"
COLORS = ("RED", "GREEN", "BLUE")
GENERIC_EXCEPTION = "com.alibaba.dubbo.rpc.service.GenericException"
ECHO_DESC = "Ljava/lang/Object;"
#: Dubbo3's MetadataService (application-level discovery asks it which services we serve)
METADATA_SERVICE = "org.apache.dubbo.metadata.MetadataService"
METADATA_SERVICE_VERSION = "1.0.0"

STRING = "java.lang.String"
OBJECT = "java.lang.Object"
LIST = "java.util.List"
MAP = "java.util.Map"
DATE = "java.util.Date"
DECIMAL = "java.math.BigDecimal"
BYTES = "byte[]"

USER_FIELDS: tuple[tuple[str, str], ...] = (
    ("id", "long"),
    ("name", STRING),
    ("age", "int"),
    ("email", STRING),
    ("tags", "java.util.List<java.lang.String>"),
    ("color", COLOR),
)

_INT_BITS = {"int": 32, "long": 64}
_PARSE_DATE = "%Y-%m-%d %H:%M:%S"  # CompatibleTypeUtils.DATE_FORMAT (yyyy-MM-dd HH:mm:ss)
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
MAX_LIST_USERS = 200_000  # a guard for this test peer; Java would try to allocate


def _descriptor(type_name: str) -> str:
    """JVM descriptor of a Java type name (generic parameters are erased)."""
    return parse_type(type_name).descriptor()


# ---- errors as Java raises them ------------------------------------------------------------


class JavaError(Exception):
    """A business exception of the service: travels as status 20 + a Throwable."""

    def __init__(self, cls: str, message: str | None = None) -> None:
        super().__init__(f"{cls}: {message}")
        self.cls = cls
        self.message = message


class _StatusReply(Exception):
    """A non-20 response (status + the message Java would write)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Unreadable(Exception):
    """A value hessian's ``readObject(declaredClass)`` would fail on."""


def java_text(cls: str, message: str | None, where: str) -> str:
    """``StringUtils.toString(throwable)``: the class and message, then the stack trace."""
    head = cls if message is None else f"{cls}: {message}"
    return f"{head}\n{head}\n\tat {where}\n"


def _exc_str(cls: str, message: str | None) -> str:
    """``Throwable.toString()``."""
    return cls if message is None else f"{cls}: {message}"


def _rpc_failure(message: str | None) -> _StatusReply:
    """An exception thrown (not returned) by ``GenericFilter``: wrapped in an RpcException,
    it escapes the filter chain and ``HeaderExchangeHandler`` answers SERVICE_ERROR (70)
    with its stack-trace text."""
    return _StatusReply(
        SERVICE_ERROR,
        java_text(
            "org.apache.dubbo.rpc.RpcException",
            message,
            "org.apache.dubbo.rpc.filter.GenericFilter.invoke(GenericFilter.java)",
        ),
    )


def _bad_request(cls: str, message: str) -> _StatusReply:
    return _StatusReply(
        BAD_REQUEST,
        "Fail to decode request due to: "
        + java_text(
            cls,
            message,
            "org.apache.dubbo.rpc.protocol.dubbo.DecodeableRpcInvocation.decode"
            "(DecodeableRpcInvocation.java)",
        ),
    )


def _java_class_of(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, HessianObject):
        return v.cls
    if isinstance(v, bool):
        return "java.lang.Boolean"
    if isinstance(v, Long):
        return "java.lang.Long"
    if isinstance(v, int):
        return "java.lang.Integer" if -(2**31) <= v < 2**31 else "java.lang.Long"
    if isinstance(v, float):
        return "java.lang.Double"
    if isinstance(v, str):
        return STRING
    if isinstance(v, (bytes, bytearray)):
        return "[B"
    if isinstance(v, Decimal):
        return DECIMAL
    if isinstance(v, _dt.datetime):
        return DATE
    if isinstance(v, (TypedList, TypedMap, PairMap)) and v.type:
        return {"[object": "[Ljava.lang.Object;", "[string": "[Ljava.lang.String;"}.get(
            v.type, v.type
        )
    if isinstance(v, list):
        return "java.util.ArrayList"
    if isinstance(v, (dict, PairMap)):
        return "java.util.HashMap"
    return OBJECT


def _class_cast(v: Any, target: str) -> JavaError:
    return JavaError(
        "java.lang.ClassCastException",
        f"class {_java_class_of(v)} cannot be cast to class {target}",
    )


def _number_format(text: str) -> str:
    """``new BigDecimal(text)`` failing, as ``RpcException(e)`` prints it."""
    bad = next((c for c in text if not (c.isdigit() or c in "+-.eE")), None)
    detail = (
        f'Character {bad} is neither a decimal digit number, decimal point, nor "e" '
        "notation exponential mark."
        if bad is not None
        else None
    )
    return _exc_str("java.lang.NumberFormatException", detail)


# ---- Java number semantics -----------------------------------------------------------------


def _wrap(v: int, bits: int) -> int:
    half = 1 << (bits - 1)
    return ((v + half) % (1 << bits)) - half


def _d2i(v: float, bits: int) -> int:
    """Java's ``(int)``/``(long)`` cast of a double: truncation, saturation, NaN -> 0."""
    if math.isnan(v):
        return 0
    hi = (1 << (bits - 1)) - 1
    if v >= hi:
        return hi
    if v <= -hi - 1:
        return -hi - 1
    return int(v)


def _number_value(v: Any, bits: int) -> int:
    """``Number.intValue()``/``longValue()``."""
    if isinstance(v, float):
        return _d2i(v, bits)
    if isinstance(v, Decimal):
        return _wrap(int(v), bits) if v.is_finite() else 0
    return _wrap(int(v), bits)


def _as_result(v: int, t: str) -> Any:
    return Long(v) if t == "long" else v


def _java_str(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(int(v))  # str(Long(7)) is "Long(7)"
    if isinstance(v, float):
        return repr(float(v))
    return str(v)


# ---- the demo types ------------------------------------------------------------------------

_COLOR_OBJECTS = {name: HessianObject(COLOR, {"name": name}) for name in COLORS}


def color(name: str) -> HessianObject:
    """The enum constant as Java writes it (one instance per constant, so repeats are refs)."""
    return _COLOR_OBJECTS[name]


def make_user(user_id: int) -> HessianObject:
    """``getUser(id)``'s deterministic answer."""
    user_id = int(user_id)  # str(Long(7)) is "Long(7)"
    return HessianObject(
        USER,
        {
            "id": Long(user_id),
            "name": f"user{user_id}",
            "age": 20 + abs(user_id) % 50,
            "email": f"user{user_id}@example.com",
            "tags": ["demo", f"id{user_id}"],
            "color": color(COLORS[abs(user_id) % 3]),
        },
    )


def _enum_constant(name: Any) -> HessianObject:
    """``Enum.valueOf(Color.class, name)``."""
    if not isinstance(name, str):
        raise JavaError("java.lang.NullPointerException", "Name is null")
    if name not in _COLOR_OBJECTS:
        raise JavaError("java.lang.IllegalArgumentException", f"No enum constant {COLOR}.{name}")
    return _COLOR_OBJECTS[name]


# ---- reading arguments as Java's hessian reader does (direct calls) -----------------------


class _Reader:
    """``readObject(declaredClass)`` and, for untyped positions, ``readObject()``.

    The input is a ``typed=True`` decode; the output is what the Java object graph would be
    re-written as: unknown classes become ``HashMap``s, ``BigDecimal`` a ``Decimal``, a
    ``User`` gets exactly its declared fields, and shared references stay shared.
    """

    def __init__(self) -> None:
        self.memo: dict[int, tuple[Any, Any]] = {}

    def declared(self, t: str, v: Any) -> Any:
        if v is None:
            return None
        if t in _INT_BITS:
            return _as_result(self.read_int(v, _INT_BITS[t]), t)
        if t == STRING:
            return self.read_string(v)
        if t == BYTES:
            if isinstance(v, (bytes, bytearray)):
                return bytes(v)
            raise _Unreadable
        if t == USER:
            return self.user(v)
        if t == COLOR:
            return self.color(v)
        if t == LIST or t.startswith(LIST + "<"):
            if isinstance(v, list):
                return self.value(v)
            raise _Unreadable
        if t == MAP:
            if isinstance(v, (dict, PairMap)):
                return self.value(v)
            if isinstance(v, HessianObject) and not _loadable(v.cls):
                return self.value(v)
            raise _Unreadable
        if t == DATE:
            if isinstance(v, _dt.datetime):
                return v
            raise _Unreadable
        if t == DECIMAL:
            d = self.value(v)
            if isinstance(d, Decimal):
                return d
            raise _Unreadable
        return self.value(v)

    @staticmethod
    def read_int(v: Any, bits: int) -> int:
        # Hessian2Input.readInt/readLong: booleans, ints, longs and doubles convert.
        if isinstance(v, bool):
            return int(v)
        if isinstance(v, int):
            return _wrap(int(v), bits)
        if isinstance(v, float):
            return _d2i(v, bits)
        raise _Unreadable

    @staticmethod
    def read_string(v: Any) -> str | None:
        # Hessian2Input.readString also accepts booleans and numbers.
        if v is None or isinstance(v, str):
            return v
        if isinstance(v, (bool, int, float)):
            return _java_str(v)
        raise _Unreadable

    def color(self, v: Any) -> HessianObject | None:
        if v is None:
            return None
        if isinstance(v, HessianObject) and v.cls != COLOR and _loadable(v.cls):
            raise _Unreadable  # an instance of another known class
        if isinstance(v, (HessianObject, dict)):
            fields = v.fields if isinstance(v, HessianObject) else v
            try:
                return _enum_constant(fields.get("name"))
            except JavaError:
                raise _Unreadable from None
        raise _Unreadable

    def user(self, v: Any) -> HessianObject | None:
        if v is None:
            return None
        hit = self.memo.get(id(v))
        if hit is not None:
            return hit[1]
        if isinstance(v, HessianObject):
            if v.cls != USER and _loadable(v.cls):
                raise _Unreadable
            src: dict[Any, Any] = v.fields
        elif isinstance(v, dict):
            src = v
        else:
            raise _Unreadable
        out = HessianObject(USER, {})
        self.memo[id(v)] = (v, out)
        for name, t in USER_FIELDS:
            raw = src.get(name)
            if t in _INT_BITS:
                # a primitive field: null reads as 0 (readInt/readLong of 'N')
                val = _as_result(0 if raw is None else self.read_int(raw, _INT_BITS[t]), t)
            elif t == STRING:
                val = self.read_string(raw)
            elif t == COLOR:
                val = self.color(raw)
            elif raw is None:
                val = None
            elif isinstance(raw, list):
                val = [self.value(x) for x in raw]
            else:
                raise _Unreadable
            out.fields[name] = val
        return out

    def value(self, v: Any) -> Any:
        """An untyped position: wire types survive, unknown classes become maps."""
        if not isinstance(v, (HessianObject, list, dict, PairMap)):
            return v
        hit = self.memo.get(id(v))
        if hit is not None:
            return hit[1]
        if isinstance(v, HessianObject):
            if v.cls == USER:
                return self.user(v)
            if v.cls == COLOR:
                out_c = self.color(v)
                self.memo[id(v)] = (v, out_c)
                return out_c
            if v.cls == DECIMAL:
                try:
                    d = Decimal(v.fields.get("value"))
                except (InvalidOperation, TypeError, ValueError):
                    raise _Unreadable from None
                self.memo[id(v)] = (v, d)
                return d
            if _loadable(v.cls):
                out_o = HessianObject(v.cls, {})
                self.memo[id(v)] = (v, out_o)
                out_o.fields.update((k, self.value(x)) for k, x in v.fields.items())
                return out_o
            out_m: dict[Any, Any] = {}  # class not found: hessian-lite reads a HashMap
            self.memo[id(v)] = (v, out_m)
            out_m.update((k, self.value(x)) for k, x in v.fields.items())
            return out_m
        if isinstance(v, list):
            out_l: list[Any] = TypedList(v.type) if isinstance(v, TypedList) else []
            self.memo[id(v)] = (v, out_l)
            out_l.extend(self.value(x) for x in v)
            return out_l
        if isinstance(v, PairMap):
            out_p = PairMap(v.type if _loadable_map(v.type) else None)
            self.memo[id(v)] = (v, out_p)
            out_p.pairs.extend((self.value(k), self.value(x)) for k, x in v.pairs)
            return out_p
        typ = v.type if isinstance(v, TypedMap) else None
        out_d: dict[Any, Any] = TypedMap(typ) if typ and _loadable_map(typ) else {}
        self.memo[id(v)] = (v, out_d)
        return _fill_map(
            out_d, [(self.value(k), self.value(x)) for k, x in v.items()], self.memo, v
        )


def _fill_map(
    out: dict[Any, Any], pairs: list[tuple[Any, Any]], memo: dict[int, Any], orig: Any
) -> Any:
    """Fill a converted map; keys that became unhashable (an object turned into a map) make
    it a ``PairMap``, as the decoder does (earlier self-references keep the dict)."""
    try:
        for k, x in pairs:
            out[k] = x
    except TypeError:
        pm = PairMap(getattr(out, "type", None), pairs)
        memo[id(orig)] = (orig, pm)
        return pm
    return out


def _loadable(cls: str) -> bool:
    """Classes a Java provider of this service can load (and its allow-list permits)."""
    return cls in (USER, COLOR) or cls.startswith(("java.", "com.alibaba.com.caucho."))


def _loadable_map(type_name: str | None) -> bool:
    return bool(type_name) and _loadable(type_name or "")


# ---- PojoUtils.realize (generic calls) -----------------------------------------------------


class _Realizer:
    """``PojoUtils.realize(args, parameterTypes)`` + ``CompatibleTypeUtils``.

    Failures inside realize raise ``_StatusReply`` (GenericFilter throws -> status 70); a value
    left unconverted that the method cannot take raises a deferred ClassCastException, which
    Java hits only when it invokes the method (a business exception).
    """

    def __init__(self) -> None:
        self.memo: dict[int, tuple[Any, Any]] = {}

    def declared(self, t: str, v: Any) -> Any:
        if v is None:
            return None
        if t in _INT_BITS:
            return _as_result(self.number(v, t), t)
        if t == STRING:
            if isinstance(v, str):
                return v
            raise _class_cast(v, STRING)
        if t == BYTES:
            if isinstance(v, (bytes, bytearray)):
                return bytes(v)
            if isinstance(v, list):
                try:
                    return bytes(_number_value(self.number(x, "int"), 8) & 0xFF for x in v)
                except JavaError:
                    raise _class_cast(v, "[B") from None
            raise _class_cast(v, "[B")
        if t == USER:
            return self.user(v)
        if t == COLOR:
            return self.color(v)
        if t == LIST or t.startswith(LIST + "<"):
            if isinstance(v, list):
                return [self.obj(x) for x in v]
            raise _class_cast(v, LIST)
        if t == MAP:
            if isinstance(v, (dict, PairMap)):
                return self.obj(v)
            raise _class_cast(v, MAP)
        if t == DATE:
            return self.date(v)
        if t == DECIMAL:
            return self.decimal(v)
        return self.obj(v)

    @staticmethod
    def number(v: Any, t: str) -> int:
        bits = _INT_BITS[t]
        if isinstance(v, bool):
            raise _class_cast(v, "java.lang.Number")
        if isinstance(v, (int, float, Decimal)):
            return _number_value(v, bits)
        if isinstance(v, str):
            # CompatibleTypeUtils: new BigDecimal(string).intValue() / longValue()
            try:
                d = Decimal(v)
                if not d.is_finite():
                    raise InvalidOperation
            except InvalidOperation:
                raise _rpc_failure(_number_format(v)) from None
            return _number_value(d, bits)
        raise _class_cast(v, "java.lang.Number")

    def color(self, v: Any) -> HessianObject | None:
        if v is None:
            return None
        if isinstance(v, HessianObject) and v.cls == COLOR:
            return v
        if isinstance(v, str):
            name: Any = v
        elif isinstance(v, dict):
            name = v.get("name")
        else:
            raise _class_cast(v, COLOR)
        try:
            return _enum_constant(name)
        except JavaError as e:
            raise _rpc_failure(_exc_str(e.cls, e.message)) from None

    def user(self, v: Any) -> HessianObject | None:
        if v is None:
            return None
        if isinstance(v, HessianObject) and v.cls == USER:
            return v
        if not isinstance(v, dict):
            raise _class_cast(v, USER)
        cls = v.get("class")
        if isinstance(cls, str) and cls != USER and _loadable(cls):
            raise _class_cast(v, USER)
        hit = self.memo.get(id(v))
        if hit is not None:
            return hit[1]
        out = HessianObject(USER, {})
        self.memo[id(v)] = (v, out)
        for name, t in USER_FIELDS:
            raw = v.get(name)
            try:
                if t in _INT_BITS:
                    val = _as_result(0 if raw is None else self.number(raw, t), t)
                elif t == STRING:
                    if raw is not None and not isinstance(raw, str):
                        raise _class_cast(raw, STRING)
                    val = raw
                elif t == COLOR:
                    val = self.color(raw)
                elif raw is None:
                    val = None
                elif isinstance(raw, list):
                    val = [self.obj(x) for x in raw]
                else:
                    raise _class_cast(raw, LIST)
            except JavaError as e:
                # setter.invoke fails -> PojoUtils throws RuntimeException -> status 70
                raise _rpc_failure(
                    _exc_str(
                        "java.lang.RuntimeException",
                        f"Failed to set pojo User property {name} value {_java_str(raw)}"
                        f"(class {_java_class_of(raw)}), cause: {e.message}",
                    )
                ) from None
            out.fields[name] = val
        return out

    def date(self, v: Any) -> _dt.datetime:
        if isinstance(v, _dt.datetime):
            return v
        if isinstance(v, str):
            try:
                return _dt.datetime.strptime(v, _PARSE_DATE).replace(tzinfo=_dt.UTC)
            except ValueError:
                raise _rpc_failure(
                    _exc_str(
                        "java.lang.IllegalStateException",
                        f"Failed to parse date {v} by format yyyy-MM-dd HH:mm:ss, "
                        f'cause: Unparseable date: "{v}"',
                    )
                ) from None
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return _EPOCH + _dt.timedelta(milliseconds=_number_value(v, 64))
        raise _class_cast(v, DATE)

    @staticmethod
    def decimal(v: Any) -> Decimal:
        if isinstance(v, Decimal):
            return v
        if isinstance(v, (str, int, float)) and not isinstance(v, bool):
            try:
                d = Decimal(v if isinstance(v, str) else repr(v))
                if not d.is_finite():
                    raise InvalidOperation
            except InvalidOperation:
                raise _rpc_failure(_number_format(v)) from None
            return d
        raise _class_cast(v, DECIMAL)

    def obj(self, v: Any) -> Any:
        """Target ``Object``: a map naming a loadable class becomes an instance of it."""
        if not isinstance(v, (list, dict, PairMap)):
            return v
        hit = self.memo.get(id(v))
        if hit is not None:
            return hit[1]
        if isinstance(v, dict):
            cls = v.get("class")
            if cls == USER:
                return self.user(v)
            if cls == COLOR:
                return self.color(v)
            out_d: dict[Any, Any] = TypedMap(v.type) if isinstance(v, TypedMap) else {}
            self.memo[id(v)] = (v, out_d)
            for k, x in v.items():
                out_d[k] = self.obj(x)
            return out_d
        if isinstance(v, PairMap):
            out_p = PairMap(v.type)
            self.memo[id(v)] = (v, out_p)
            out_p.pairs.extend((k, self.obj(x)) for k, x in v.pairs)
            return out_p
        out_l: list[Any] = TypedList(v.type) if isinstance(v, TypedList) else []
        self.memo[id(v)] = (v, out_l)
        out_l.extend(self.obj(x) for x in v)
        return out_l


# ---- PojoUtils.generalize (generic results) ------------------------------------------------

_PRIMITIVE_ARRAYS = {
    "[int",
    "[long",
    "[short",
    "[byte",
    "[boolean",
    "[double",
    "[float",
    "[char",
    "[string",
    "[date",
}
_SETS = {"java.util.HashSet", "java.util.LinkedHashSet", "java.util.TreeSet", "java.util.Set"}


def generalize(value: Any, memo: dict[int, tuple[Any, Any]] | None = None) -> Any:
    """POJO -> ``HashMap`` with ``class``; enum -> name; List -> ArrayList; other collections
    -> HashSet; arrays of non-primitives -> ``Object[]``; maps keep their class; numbers
    (``BigDecimal`` too), strings, dates and primitive arrays stay as they are."""
    memo = {} if memo is None else memo
    if not isinstance(value, (HessianObject, list, dict, PairMap)):
        return value
    hit = memo.get(id(value))
    if hit is not None:
        return hit[1]
    if isinstance(value, HessianObject):
        if value.cls == COLOR:
            return value.fields.get("name")
        if value.cls != USER:
            return value  # JDK objects (BigInteger, handles): left to hessian
        out: dict[Any, Any] = {"class": value.cls}
        memo[id(value)] = (value, out)
        for k, x in value.fields.items():
            out[k] = generalize(x, memo)
        return out
    if isinstance(value, list):
        t = value.type if isinstance(value, TypedList) else None
        if t in _PRIMITIVE_ARRAYS or (t and t.startswith("[java.lang.")):
            return value
        if t and t.startswith("["):
            out_l: list[Any] = TypedList("[object")
        elif t in _SETS:
            out_l = TypedList("java.util.HashSet")
        else:
            out_l = []
        memo[id(value)] = (value, out_l)
        out_l.extend(generalize(x, memo) for x in value)
        return out_l
    if isinstance(value, PairMap):
        out_p = PairMap(value.type)
        memo[id(value)] = (value, out_p)
        out_p.pairs.extend((generalize(k, memo), generalize(x, memo)) for k, x in value.pairs)
        return out_p
    out_d: dict[Any, Any] = TypedMap(value.type) if isinstance(value, TypedMap) else {}
    memo[id(value)] = (value, out_d)
    pairs = [(generalize(k, memo), generalize(x, memo)) for k, x in value.items()]
    return _fill_map(out_d, pairs, memo, value)


# ---- the service ---------------------------------------------------------------------------


def _npe() -> JavaError:
    return JavaError("java.lang.NullPointerException")


async def _greet(name: str | None) -> str:
    return f"Hello, {_java_str(name)}"


async def _add(a: int, b: int) -> int:
    return _wrap(a + b, 32)


async def _add_long(a: int, b: int) -> Long:
    return Long(_wrap(a + b, 64))


async def _get_user(user_id: int) -> HessianObject:
    return make_user(user_id)


async def _echo_user(user: HessianObject | None) -> HessianObject | None:
    return user


async def _list_users(count: int) -> list[HessianObject]:
    if count < 0:
        raise JavaError("java.lang.IllegalArgumentException", f"Illegal Capacity: {count}")
    if count > MAX_LIST_USERS:
        raise JavaError("java.lang.IllegalArgumentException", f"count above {MAX_LIST_USERS}")
    return [make_user(i) for i in range(1, count + 1)]


async def _fail(message: str | None) -> None:
    raise JavaError("java.lang.IllegalStateException", message)


async def _echo_bytes(data: bytes | None) -> bytes | None:
    return data


async def _color_of(c: HessianObject | None) -> str:
    if c is None:
        raise _npe()
    return c.fields["name"]


async def _next_color(c: HessianObject | None) -> HessianObject:
    if c is None:
        raise _npe()
    return color(COLORS[(COLORS.index(c.fields["name"]) + 1) % len(COLORS)])


async def _slow(millis: int) -> str:
    if millis < 0:
        raise JavaError("java.lang.IllegalArgumentException", "timeout value is negative")
    await asyncio.sleep(millis / 1000)
    return "done"


async def _sum(values: list[Any] | None) -> Long:
    if values is None:
        raise _npe()
    total = 0
    for v in values:
        if v is None:
            raise _npe()
        if isinstance(v, bool) or not isinstance(v, (int, float, Decimal)):
            raise _class_cast(v, "java.lang.Number")
        total += _number_value(v, 64)
    return Long(_wrap(total, 64))


async def _echo(value: Any) -> Any:
    return value


async def _noop() -> None:
    return None


@dataclass(frozen=True, slots=True)
class DemoMethod:
    name: str
    params: tuple[str, ...]
    returns: str
    fn: Callable[..., Awaitable[Any]]

    @property
    def descriptor(self) -> str:
        return "".join(_descriptor(p) for p in self.params)


DEMO_METHODS: dict[str, DemoMethod] = {
    m.name: m
    for m in (
        DemoMethod("greet", (STRING,), STRING, _greet),
        DemoMethod("add", ("int", "int"), "int", _add),
        DemoMethod("addLong", ("long", "long"), "long", _add_long),
        DemoMethod("getUser", ("long",), USER, _get_user),
        DemoMethod("echoUser", (USER,), USER, _echo_user),
        DemoMethod("listUsers", ("int",), f"java.util.List<{USER}>", _list_users),
        DemoMethod("fail", (STRING,), STRING, _fail),
        DemoMethod("echoBytes", (BYTES,), BYTES, _echo_bytes),
        DemoMethod("colorOf", (COLOR,), STRING, _color_of),
        DemoMethod("nextColor", (COLOR,), COLOR, _next_color),
        DemoMethod("slow", ("int",), STRING, _slow),
        DemoMethod("sum", (LIST,), "long", _sum),
        DemoMethod("echoMap", (MAP,), MAP, _echo),
        DemoMethod("echoDate", (DATE,), DATE, _echo),
        DemoMethod("echoDecimal", (DECIMAL,), DECIMAL, _echo),
        DemoMethod("echoObject", (OBJECT,), OBJECT, _echo),
        DemoMethod("noop", (), "void", _noop),
    )
}

#: method -> JVM parameter descriptor, as a direct call sends it (``"add": "II"``)
DEMO_SIGNATURES: dict[str, str] = {name: m.descriptor for name, m in DEMO_METHODS.items()}
#: method -> Java return type
DEMO_RETURN_TYPES: dict[str, str] = {name: m.returns for name, m in DEMO_METHODS.items()}
#: the service's POJO and enum, in the gateway's config form
DEMO_TYPES: dict[str, dict[str, Any]] = {
    USER: {"fields": dict(USER_FIELDS)},
    COLOR: {"enum": list(COLORS)},
}




def service_definition(parameters: dict[str, str] | None = None) -> dict[str, Any]:
    """The ``FullServiceDefinition`` a Java provider of this service publishes to the
    metadata report (``ServiceDefinitionBuilder.buildFullDefinition``): methods with
    parameter/return type names, and a ``TypeDefinition`` per type they use."""
    seen: dict[str, dict[str, Any]] = {}

    def type_def(name: str) -> None:
        if name in seen:
            return
        if name == USER:
            seen[name] = {"type": USER, "properties": dict(USER_FIELDS)}
            for _f, t in USER_FIELDS:
                type_def(t)
        elif name == COLOR:
            seen[name] = {"type": COLOR, "enums": list(COLORS)}
        elif name.startswith("java.util.List<"):
            seen[name] = {"type": name, "items": [name[len("java.util.List<") : -1]]}
            type_def(name[len("java.util.List<") : -1])
        else:
            seen[name] = {"type": name}

    methods = []
    for m in DEMO_METHODS.values():
        for t in (*m.params, m.returns):
            if t != "void":
                type_def(t)
        methods.append(
            {
                "name": m.name,
                "parameterTypes": list(m.params),
                "returnType": m.returns,
                "annotations": [],
                "parameters": [],
            }
        )
    return {
        "canonicalName": SERVICE,
        "codeSource": "file:/app/demo-api.jar",
        "methods": methods,
        "types": list(seen.values()),
        "annotations": [],
        "parameters": dict(parameters or {}),
    }


def _name_to_desc(name: str) -> str:
    """``ReflectUtils.name2class`` for ``$invoke``'s type names, as a descriptor."""
    name = name.strip()
    if name.endswith("[]"):
        return "[" + _name_to_desc(name[:-2])
    if name.startswith("["):
        return name.replace(".", "/")
    if name in PRIMITIVES:
        return PRIMITIVES[name]
    if not name or "<" in name or not _loadable(name):
        raise _rpc_failure(name)  # RpcException(ClassNotFoundException.getMessage(), e)
    return "L" + name.replace(".", "/") + ";"


def _norm_version(v: Any) -> str:
    return "" if v in (None, "", "0.0.0") else str(v)


# ---- the server ----------------------------------------------------------------------------


class _Connection(asyncio.Protocol):
    def __init__(self, provider: DemoProvider) -> None:
        self.provider = provider
        #: framing, heartbeats, READONLY (sans-IO, codecs/dubbo/connection.py)
        self.wire = Connection(Role.SERVER, max_payload=provider.payload)
        self.transport: Any = None  # asyncio or uvloop transport (no common base class)
        self._out: list[bytes] = []
        self.peer = "?"
        self.local = "?"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername") or ("?", 0)
        local = transport.get_extra_info("sockname") or ("?", 0)
        self.peer = f"{peer[0]}:{peer[1]}"
        self.local = f"{local[0]}:{local[1]}"
        self.provider._conns.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.provider._conns.discard(self)

    def data_received(self, data: bytes) -> None:
        events = self.wire.receive_data(data)
        if events and type(events[-1]) is ProtocolError:
            # Java hands non-dubbo bytes to telnet or fails the channel; we just hang up.
            self.close()
            return
        for ev in events:
            if type(ev) is Request:
                self.provider._on_request(self, ev.frame)
            elif type(ev) is Heartbeat and ev.reply is not None:
                # HeartbeatHandler: answer two-way heartbeats; other events (READONLY...) are
                # noted by Java and never answered.
                self.send(ev.reply)

    def send(self, data: bytes) -> None:
        # Replies produced in one loop iteration leave in one write.
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(data)

    def _flush(self) -> None:
        out, self._out = self._out, []
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(out))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _drive(coro: Any, done: asyncio.Future[None], _fut: Any = None) -> None:
    """Step an eagerly started coroutine each time what it waits on completes — what a
    Task does, without creating one for the many calls that never suspend."""
    try:
        waiting = coro.send(None)
    except StopIteration:
        if not done.done():
            done.set_result(None)
        return
    except BaseException as e:
        if not done.done():
            done.set_exception(e)
        return
    if waiting is None:  # bare yield (asyncio.sleep(0))
        done.get_loop().call_soon(_drive, coro, done)
    else:
        waiting._asyncio_future_blocking = False
        waiting.add_done_callback(partial(_drive, coro, done))


class DemoProvider:
    """``com.tribridge.demo.DemoService`` over Dubbo2/hessian2 on 127.0.0.1.

    ``calls`` counts method invocations, ``last_attachments[method]`` (also under
    ``"$invoke"`` for generic calls) holds the attachments of the latest one and
    ``last_args[method]`` its arguments as the method received them.
    """

    def __init__(
        self,
        version: str = "1.0.0",
        group: str = "",
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        payload: int = DEFAULT_MAX_PAYLOAD,
        ssl: Any = None,
        also: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """``ssl``: an ``ssl.SSLContext`` (server side) to serve Dubbo over TLS.  ``also``:
        more (version, group) exports of the service on the same port, as a Java provider
        exporting one interface in several groups or versions does; ``export_calls`` counts
        calls per (version, group), so a test can tell which export answered."""
        self.ssl = ssl
        self.version = version
        self.group = group
        self.exports = ((version, group), *also)
        self.export_calls: dict[tuple[str, str], int] = {}
        self.host = host
        self._port = port
        self.payload = payload
        self.calls = 0
        self.requests = 0
        self.last_attachments: dict[str, dict[str, Any]] = {}
        self.last_args: dict[str, list[Any]] = {}
        self._server: asyncio.Server | None = None
        self._conns: set[_Connection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.closing = False
        #: application name (the MetadataService group) and revision -> MetadataInfo object,
        #: set by whoever registers this provider at application level
        self.application = "tribridge-demo"
        self.metadata: dict[str, HessianObject] = {}
        self.metadata_calls = 0

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> DemoProvider:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), self.host, self._port, reuse_address=True, ssl=self.ssl
        )
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def port(self) -> int:
        return self._port

    @property
    def connections(self) -> int:
        return len(self._conns)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    @property
    def service_key(self) -> str:
        """``group/path:version:port`` as Java's exporter map keys it."""
        return self._key(SERVICE, self.version, self.group)

    def _key(self, path: str, version: Any, group: str) -> str:
        key = f"{group}/{path}" if group else path
        if _norm_version(version):
            key += f":{version}"
        return f"{key}:{self._port}"

    async def close(self, grace: float = 1.0) -> None:
        """Graceful stop: READONLY event to every client, wait for in-flight calls up to
        ``grace`` seconds, then close every connection."""
        if self._server is None:
            return
        server, self._server = self._server, None
        self.closing = True
        server.close()
        for conn in list(self._conns):
            conn.send(conn.wire.readonly_event())
        if self._tasks and grace > 0:
            await asyncio.wait(set(self._tasks), timeout=grace)
        for task in list(self._tasks):
            task.cancel()
        for conn in list(self._conns):
            conn.close()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await server.wait_closed()

    async def __aenter__(self) -> DemoProvider:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close(0.1)

    # ---- requests --------------------------------------------------------------------------

    def _on_request(self, conn: _Connection, frame: Frame) -> None:
        self.requests += 1
        # Run the call eagerly: most methods finish without suspending, and then no task is
        # created at all. A call that does suspend (slow) continues in a task.
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        _drive(self._serve(conn, frame), done)
        if not done.done():
            self._tasks.add(done)
            done.add_done_callback(self._tasks.discard)

    async def _serve(self, conn: _Connection, frame: Frame) -> None:
        rid = frame.request_id
        try:
            reply = await self._respond(conn, frame)
        except _StatusReply as e:
            reply = encode_error_response(rid, e.status, e.message)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug here: answer as Java's handler chain would
            reply = encode_error_response(
                rid, SERVICE_ERROR, java_text("java.lang.RuntimeException", repr(e), "demo")
            )
        if frame.is_twoway:  # Java never answers a one-way request, not even an error
            conn.send(reply)

    def _check_head(self, path: Any, version: Any, method: Any = None, desc: Any = None) -> None:
        """The checks ``DecodeableRpcInvocation.decode`` makes, in its order (status 40)."""
        if path != SERVICE or _norm_version(version) not in {
            _norm_version(v) for v, _ in self.exports
        }:
            key = f"{path}:{version}" if _norm_version(version) else str(path)
            raise _bad_request(
                "java.io.IOException", f"Service {key} not found, invocation rejected."
            )
        if method is None:
            return
        if DEMO_SIGNATURES.get(method) == desc:
            return
        if method in ("$invoke", "$invokeAsync") and desc == GENERIC_DESC:
            return
        if method == "$echo" and desc == ECHO_DESC:
            return
        raise _bad_request(
            "java.lang.IllegalArgumentException", f"Service not found:{path}, {method}"
        )

    def _undecodable(self, body: bytes, err: Exception) -> _StatusReply:
        """A body our decoder refused: report the first check Java would have failed."""
        dec = Decoder(body, typed=True)
        head: list[Any] = []
        try:
            while len(head) < 5:
                head.append(dec.read_string())
                if len(head) == 3:
                    self._check_head(head[1], head[2])
        except HessianError:
            pass
        if len(head) == 5:
            self._check_head(*head[1:])
        detail = str(err).removeprefix("bad request body: ")
        return _bad_request("com.alibaba.com.caucho.hessian.io.HessianProtocolException", detail)

    async def _respond(self, conn: _Connection, frame: Frame) -> bytes:
        rid = frame.request_id
        if frame.serialization != HESSIAN2:
            raise _bad_request(
                "java.io.IOException",
                f"Unexpected serialization id:{frame.serialization} received from network, "
                "please check if the peer send the right id.",
            )
        try:
            inv = decode_request_body(frame.body, typed=True)
        except DubboProtocolError as e:
            raise self._undecodable(frame.body, e) from None
        if inv.path == METADATA_SERVICE and self.metadata:
            return self._metadata_call(rid, conn, inv)
        self._check_head(inv.path, inv.version, inv.method, inv.desc)

        # DubboProtocol.getInvoker: keyed by the path/version/group *attachments*
        att = inv.attachments
        path = att.get("path", inv.path)
        version = att.get("version", inv.version)
        export = next(
            (
                (v, g)
                for v, g in self.exports
                if _norm_version(v) == _norm_version(version) and g == inv.group
            ),
            None,
        )
        if path != SERVICE or export is None:
            raise _StatusReply(
                SERVICE_ERROR,
                java_text(
                    "org.apache.dubbo.remoting.RemotingException",
                    f"Not found exported service: {self._key(str(path), version, inv.group)} "
                    f"in [{self.service_key}], may be version or group mismatch , channel: "
                    f"consumer: /{conn.peer} --> provider: /{conn.local}, message:RpcInvocation "
                    f"[methodName={inv.method}, parameterTypesDesc={inv.desc}, arguments=null, "
                    f"attachments={att}]",
                    "org.apache.dubbo.rpc.protocol.dubbo.DubboProtocol.getInvoker"
                    "(DubboProtocol.java)",
                ),
            )

        attach = supports_response_attachments(inv.dubbo_version)
        self.last_attachments[inv.method] = dict(att)
        self.export_calls[export] = self.export_calls.get(export, 0) + 1
        if inv.is_generic:
            return await self._generic(rid, inv.args, att, attach)
        if inv.method == "$echo":
            self.calls += 1
            try:
                value = _Reader().value(inv.args[0])
            except _Unreadable:
                value = None
            return self._ok(rid, value, None, attach)
        m = DEMO_METHODS[inv.method]
        reader = _Reader()
        args: list[Any] = []
        for t, a in zip(m.params, inv.args, strict=True):
            try:
                args.append(reader.declared(t, a))
            except _Unreadable:
                args.append(None)  # "Decode argument failed" is only logged by Java
        try:
            value = await self._call(m, args, att)
        except JavaError as e:
            return self._ok(rid, None, java_exception(e.cls, e.message), attach)
        return self._ok(rid, value, None, attach)

    def _metadata_call(self, rid: int, conn: _Connection, inv: Any) -> bytes:
        """``MetadataService.getMetadataInfo(String revision)``, exported by Dubbo3 under
        group = application name and version 1.0.0."""
        attach = supports_response_attachments(inv.dubbo_version)
        key = f"{inv.group}/{METADATA_SERVICE}:{inv.version}"
        if inv.version != METADATA_SERVICE_VERSION or inv.group != self.application:
            raise _StatusReply(
                SERVICE_ERROR,
                java_text(
                    "org.apache.dubbo.remoting.RemotingException",
                    f"Not found exported service: {key}:{self._port} in "
                    f"[{self.application}/{METADATA_SERVICE}:{METADATA_SERVICE_VERSION}:"
                    f"{self._port}], may be version or group mismatch , channel: consumer: "
                    f"/{conn.peer} --> provider: /{conn.local}",
                    "org.apache.dubbo.rpc.protocol.dubbo.DubboProtocol.getInvoker",
                ),
            )
        if inv.method != "getMetadataInfo" or inv.desc != "Ljava/lang/String;":
            raise _bad_request(
                "java.lang.IllegalArgumentException",
                f"Service not found:{METADATA_SERVICE}, {inv.method}",
            )
        self.metadata_calls += 1
        revision = inv.args[0] if inv.args else None
        return self._ok(rid, self.metadata.get(str(revision)), None, attach)

    async def _call(self, m: DemoMethod, args: list[Any], att: dict[str, Any]) -> Any:
        self.calls += 1
        self.last_args[m.name] = list(args)
        self.last_attachments[m.name] = dict(att)
        for t, a in zip(m.params, args, strict=True):
            if a is None and t in PRIMITIVES:
                raise _npe()  # the proxy unboxes null
        try:
            return await m.fn(*args)
        except (JavaError, asyncio.CancelledError):
            raise
        except Exception as e:  # a Python bug shows as what Java would throw
            raise JavaError("java.lang.RuntimeException", repr(e)) from e

    async def _generic(self, rid: int, raw: list[Any], att: dict[str, Any], attach: bool) -> bytes:
        reader = _Reader()
        name_v, types_v, args_v = raw
        # readObject(String.class), readObject(String[].class), readObject(Object[].class)
        try:
            name = reader.read_string(name_v)
        except _Unreadable:
            name = None
        types = (
            [t if isinstance(t, str) else None for t in types_v]
            if isinstance(types_v, list)
            else None
        )
        gargs: list[Any] | None = None
        if isinstance(args_v, list):
            try:
                gargs = [reader.value(a) for a in args_v]
            except _Unreadable:
                gargs = None  # the whole Object[] fails to read
        if name is None:
            raise _StatusReply(
                SERVICE_ERROR,
                java_text("java.lang.NullPointerException", None, "GenericFilter.invoke"),
            )
        name = name.strip()
        m = DEMO_METHODS.get(name)
        no_method = f"No such method {name} in class interface {SERVICE}"
        if types is not None:
            desc = "".join(_name_to_desc(t or "") for t in types)
            if m is None or m.descriptor != desc:
                raise _rpc_failure(no_method)
        elif m is None:
            raise _rpc_failure(no_method)
        if gargs is None:
            gargs = [None] * len(m.params)
        if len(gargs) != (len(types) if types is not None else len(m.params)):
            raise _rpc_failure(
                "GenericFilter#invoke args.length != types.length, please check your params"
            )
        generic = att.get("generic")
        mode = generic.strip().lower() if isinstance(generic, str) else ""
        if mode not in ("", "true", "raw.return"):
            raise _rpc_failure(
                f"Generic serialization [{generic}] is not supported by the demo provider"
            )

        realizer = _Realizer()
        args: list[Any] = []
        deferred: JavaError | None = None
        for t, a in zip(m.params, gargs, strict=True):
            try:
                args.append(realizer.declared(t, a))
            except JavaError as e:  # left unconverted: fails when the method is invoked
                deferred = deferred or e
                args.append(None)
        try:
            if deferred is not None:
                self.calls += 1
                raise deferred
            value = await self._call(m, args, att)
        except JavaError as e:
            return self._ok(rid, None, generic_exception(e.cls, e.message), attach)
        if mode != "raw.return":
            value = generalize(value)
        return self._ok(rid, value, None, attach)

    def _ok(
        self,
        rid: int,
        value: Any,
        exception: HessianObject | None,
        attach: bool,
    ) -> bytes:
        """A status-20 response, or 25/50 when Java's encodeResponse would fail."""
        try:
            data = encode_response(rid, value, exception=exception, with_attachments=attach)
        except HessianError as e:
            raise _StatusReply(
                BAD_RESPONSE,
                f"Failed to send response: Response [id={rid}, status=20], cause: "
                + java_text("java.io.IOException", str(e), "Hessian2Output.writeObject"),
            ) from None
        size = len(data) - HEADER_LEN
        if size > self.payload:
            raise _StatusReply(
                SERIALIZATION_ERROR,
                f"Data length too large: {size}, max payload: {self.payload}, channel: "
                f"{self.host}:{self._port}",
            )
        return data


def generic_exception(cls: str, message: str | None) -> HessianObject:
    """``new com.alibaba.dubbo.rpc.service.GenericException(cause)`` as Java writes it."""
    exc = java_exception(GENERIC_EXCEPTION, java_text(cls, message, "com.tribridge.demo"))
    exc.fields["useCause"] = False
    exc.fields["exceptionClass"] = cls
    exc.fields["exceptionMessage"] = message
    return exc


# ---- standalone ----------------------------------------------------------------------------


async def _run(args: argparse.Namespace) -> None:
    provider = DemoProvider(args.version, args.group, args.host, args.port)
    await provider.start()
    await serve_until_signalled(str(provider.port), lambda: provider.close(args.grace))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tribridge.interop.demo_provider",
        description=f"a Dubbo2 provider of {SERVICE} (prints READY <port> once listening)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port")
    parser.add_argument("--version", default="1.0.0", help='service version ("" = none)')
    parser.add_argument("--group", default="", help='service group ("" = none)')
    parser.add_argument("--grace", type=float, default=1.0, help="shutdown grace, seconds")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        from tribridge.http.server import run  # uvloop when installed

        run(_run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
