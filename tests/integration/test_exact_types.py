"""Java value classes and exact numbers where nothing declares the type (issue 15 items 1, 5).

Class-tagged JSON (``{"class": "java.math.BigDecimal", "value": "12.50"}``) must give the
bytes Java itself writes for that class in every untyped position (top level, POJO field,
list element, map value), in direct and generic calls alike; JSON numbers must reach
``BigInteger`` / ``BigDecimal`` / ``Object`` slots without a detour through a double.
Interop proof against Caucho is in ``test_hessian2_interop.py``; gateway doors below.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
from decimal import Decimal
from typing import Any

import orjson
import pytest
import yaml
from tribridge.cli.commands import DEMO_SERVICE, demo_config
from tribridge.codecs.dubbo.messages import Result
from tribridge.codecs.hessian2 import (
    HessianObject,
    JavaTypeError,
    Long,
    TypedList,
    TypedMap,
    coerce,
    decode,
    encode,
    parse_type,
)
from tribridge.codecs.hessian2.coercion import infer
from tribridge.codecs.hessian2.javatypes import EMPTY_REGISTRY
from tribridge.interop.testing import BackgroundLoop
from tribridge.invoke import jsonmap

BIG = 123456789012345678901234567890
HL_TIME = "com.alibaba.com.caucho.hessian.io.java8."

# class, JSON value, the hessian value Java writes for it
VALUE_CLASSES: list[tuple[str, Any, Any]] = [
    ("java.math.BigDecimal", "12.50", Decimal("12.50")),
    ("java.math.BigDecimal", 0.1, Decimal("0.1")),
    ("java.math.BigInteger", str(BIG), coerce(BIG, parse_type("java.math.BigInteger"))),
    ("java.math.BigInteger", 7, coerce(7, parse_type("java.math.BigInteger"))),
    ("java.lang.Long", 5, Long(5)),
    ("java.lang.Integer", "5", 5),
    ("java.lang.Short", 7, 7),
    ("java.lang.Byte", -1, -1),
    ("java.lang.Double", 2, 2.0),
    ("java.lang.Float", 0.1, 0.1),
    ("java.lang.Character", "x", "x"),
    ("java.lang.Boolean", True, True),
    ("java.lang.String", "s", "s"),
    ("java.util.Date", "1970-01-01T00:01:00Z", dt.datetime(1970, 1, 1, 0, 1, tzinfo=dt.UTC)),
    (
        "java.sql.Timestamp",
        "2024-01-02T03:04:05.006Z",
        HessianObject(
            "java.sql.Timestamp",
            {"value": dt.datetime(2024, 1, 2, 3, 4, 5, 6000, tzinfo=dt.UTC)},
        ),
    ),
    (
        "java.sql.Date",
        86_400_000,
        HessianObject("java.sql.Date", {"value": dt.datetime(1970, 1, 2, tzinfo=dt.UTC)}),
    ),
    (
        "java.sql.Time",
        "1970-01-01T10:00:00Z",
        HessianObject("java.sql.Time", {"value": dt.datetime(1970, 1, 1, 10, tzinfo=dt.UTC)}),
    ),
    (
        "java.time.LocalDate",
        "2024-02-29",
        HessianObject(HL_TIME + "LocalDateHandle", {"year": 2024, "month": 2, "day": 29}),
    ),
    (
        "java.time.Instant",
        "1970-01-01T00:00:01Z",
        HessianObject(HL_TIME + "InstantHandle", {"seconds": Long(1), "nanos": 0}),
    ),
    (
        "java.util.UUID",
        "123E4567-E89B-12D3-A456-426614174000",
        HessianObject("java.util.UUID", {"value": "123e4567-e89b-12d3-a456-426614174000"}),
    ),
    (
        "java.util.Locale",
        "zh-CN",
        HessianObject("com.alibaba.com.caucho.hessian.io.LocaleHandle", {"value": "zh_CN"}),
    ),
    ("java.lang.Class", "[I", HessianObject("java.lang.Class", {"name": "[I"})),
    (
        "java.time.Duration",
        "PT8H6M12.345S",
        HessianObject(HL_TIME + "DurationHandle", {"seconds": Long(29172), "nanos": 345000000}),
    ),
    (
        "java.time.ZoneOffset",
        "-05:30",
        HessianObject(HL_TIME + "ZoneOffsetHandle", {"seconds": -19800}),
    ),
    (
        "java.time.ZoneId",
        "Asia/Tokyo",
        HessianObject(HL_TIME + "ZoneIdHandle", {"zoneId": "Asia/Tokyo"}),
    ),
    ("java.time.Year", 2024, HessianObject(HL_TIME + "YearHandle", {"year": 2024})),
    ("byte[]", "AAE=", b"\x00\x01"),
    ("int[]", [1, 2], TypedList("[int", [1, 2])),
    ("java.util.HashSet", ["a"], TypedList("java.util.HashSet", ["a"])),
]
IDS = [f"{c}={v!r}" for c, v, _ in VALUE_CLASSES]


def tagged(cls: str, value: Any) -> dict[str, Any]:
    return {"class": cls, "value": value}


# ---- class tags: every untyped position, both call shapes ------------------------------------


@pytest.mark.parametrize(("cls", "value", "java"), VALUE_CLASSES, ids=IDS)
@pytest.mark.parametrize("generic", [False, True], ids=["direct", "generic"])
def test_class_tag_in_every_untyped_position(
    cls: str, value: Any, java: Any, generic: bool
) -> None:
    want = encode(java)
    tag = tagged(cls, value)

    def wire(v: Any) -> bytes:
        return encode(infer(v, "args[0]", generic, EMPTY_REGISTRY))

    assert wire(tag) == want  # top level (an Object parameter, $invoke's Object[])
    assert wire([tag]) == encode([java])  # list element
    assert wire({"k": tag}) == encode({"k": java})  # Map<String, Object> value
    # a field of a POJO nobody declared (no configured types, no metadata)
    pojo = wire({"class": "com.x.Order", "f": tag})
    expect = (
        {"class": "com.x.Order", "f": java}
        if generic
        else HessianObject("com.x.Order", {"f": java})
    )
    assert pojo == encode(expect)


@pytest.mark.parametrize(("cls", "value", "java"), VALUE_CLASSES, ids=IDS)
def test_class_tag_in_a_declared_slot(cls: str, value: Any, java: Any) -> None:
    """The tag is accepted where the type is declared too (it must agree)."""
    assert encode(coerce(tagged(cls, value), parse_type(cls))) == encode(java)
    assert coerce(tagged(cls, None), parse_type(cls)) is None


def test_boxed_and_primitive_tags_agree() -> None:
    assert coerce(tagged("long", 3), parse_type("java.lang.Long")) == Long(3)
    assert coerce(tagged("java.lang.Long", 3), parse_type("long")) == Long(3)


@pytest.mark.parametrize(
    ("slot", "value", "words"),
    [
        ("java.math.BigDecimal", tagged("java.lang.Long", 1), "does not fit"),
        ("java.math.BigDecimal", {"class": "java.math.BigDecimal", "val": "1"}, '"value"'),
        (
            "java.math.BigDecimal",
            {"class": "java.math.BigDecimal", "value": "1", "x": 2},
            '"value"',
        ),
        ("java.math.BigDecimal", tagged("java.math.BigDecimal", "ten"), "decimal"),
        ("java.util.UUID", tagged("java.util.UUID", "nope"), "UUID"),
        ("java.lang.Class", tagged("java.lang.Class", "not a class"), "class name"),
        ("java.lang.Object", tagged("java.lang.Short", 70000), "out of range"),
        ("java.lang.Object", {"class": "no such!", "value": 1}, "class name"),
    ],
)
def test_bad_class_tags_name_the_path(slot: str, value: Any, words: str) -> None:
    with pytest.raises(JavaTypeError) as ei:
        coerce(
            {"a": [value]}, parse_type(f"java.util.Map<String, java.util.List<{slot}>>"), "args[0]"
        )
    assert str(ei.value).startswith("args[0].a[0]") and words in str(ei.value)


def test_tagged_maps_pick_the_map_class() -> None:
    got = infer({"class": "java.util.LinkedHashMap", "b": 1, "a": 2}, "x", False, EMPTY_REGISTRY)
    assert got == TypedMap("java.util.LinkedHashMap", {"b": 1, "a": 2})
    assert type(got) is TypedMap and got.type == "java.util.LinkedHashMap"


# ---- untyped values: no guessing -----------------------------------------------------------


def test_untyped_values_keep_their_json_type() -> None:
    """A decimal-looking string stays a String and a JSON decimal a double, however many
    digits it has; only a class tag or a declared type makes a BigDecimal."""
    got = infer(
        jsonmap.loads(b'["12.50", 12.50, 0.1234567890123456789]'), "a", False, EMPTY_REGISTRY
    )
    assert got == ["12.50", 12.5, 0.12345678901234568]
    assert [type(v) for v in got] == [str, float, float]
    with pytest.raises(JavaTypeError, match="too large for a double"):
        infer(jsonmap.loads(b"[1e400]"), "a", False, EMPTY_REGISTRY)


@pytest.mark.parametrize("n", [2**63, -(2**63) - 1, 2**64, BIG, -BIG])
def test_untyped_integer_beyond_64_bits_is_a_biginteger(n: int) -> None:
    wire = encode(infer(n, "a", True, EMPTY_REGISTRY))
    assert wire == encode(coerce(n, parse_type("java.math.BigInteger")))
    assert decode(wire) == n


def test_exponent_integers_are_exact() -> None:
    """``1e25`` is exactly 10**25 in JSON, not the double next to it."""
    t = parse_type("java.math.BigInteger")
    assert decode(encode(coerce(jsonmap.loads(b"1e25"), t))) == 10**25
    assert coerce(jsonmap.loads(b"1e2"), parse_type("long")) == 100


# ---- exact JSON parsing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"123456789012345678901234567890", BIG),
        (b"[-9223372036854775809]", [-(2**63) - 1]),
        (b"[18446744073709551616]", [2**64]),
        (b'{"a": 0.1234567890123456789}', {"a": Decimal("0.1234567890123456789")}),
        (b"[1.0000000000000001, 0.5]", [Decimal("1.0000000000000001"), 0.5]),
        (b"1e400", Decimal("1e400")),
        (b"[1.5e-400]", [Decimal("1.5e-400")]),
        (b"[1E-0300]", [1e-300]),
        # shapes the byte scan cannot tell from lossy ones: exact path, same values as orjson
        (
            b"[-9223372036854775808, 18446744073709551615, 1700000000.125]",
            [-(2**63), 2**64 - 1, 1700000000.125],
        ),
    ],
)
def test_loads_is_exact(text: bytes, expected: Any) -> None:
    got = jsonmap.loads(text)
    assert got == expected
    assert [type(x) for x in got] == [type(x) for x in expected] if isinstance(got, list) else True
    assert jsonmap.loads(text.decode()) == expected  # the CLI passes str


def test_loads_keeps_orjson_for_ordinary_bodies(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(_: Any) -> Any:
        raise AssertionError("took the slow path")

    monkeypatch.setattr(jsonmap, "_exact_loads", boom)
    for body in (
        b'["world"]',
        b'[1, 2.5, "x", 9223372036854775807, -999999999999999999, 1e-05, 1e300, 0.1234567]',
        # 19-digit ids and digit strings (card numbers) stay on orjson
        b'{"id": 1834567890123456789, "card": "4111111111111111", "u": 9999999999999999999}',
        b"{}",
    ):
        assert jsonmap.loads(body) == orjson.loads(body)
    big = orjson.dumps([{"name": "x" * 200, "v": list(range(100)), "p": 12.25}] * 20)
    assert jsonmap.loads(big) == orjson.loads(big)


@pytest.mark.parametrize(
    "text",
    [
        b"[NaN]",
        b"[Infinity]",
        b"[1,",
        b"[" * 3000 + b"]" * 3000,
        b'"\xff"',
        b"[1" + b"0" * 5000 + b"]",
    ],
)
def test_loads_errors(text: bytes) -> None:
    with pytest.raises(jsonmap.JSONDecodeError):
        jsonmap.loads(text)
    with pytest.raises(json.JSONDecodeError):  # what callers catch
        jsonmap.loads(text + b" 0000000000000000")  # the slow path refuses it too


def test_dumps_writes_big_numbers_exactly() -> None:
    assert jsonmap.dumps({"i": BIG, "d": Decimal("0.10")}) == b'{"i":%d,"d":"0.10"}' % BIG
    assert jsonmap.dumps([HessianObject("c.X", {"n": -BIG})]) == b'[{"class":"c.X","n":-%d}]' % BIG
    assert jsonmap.dumps([Decimal("1E+400")], decimals_as_numbers=True) == b"[1E+400]"
    # Map<BigInteger, V>: keys are strings in JSON (this used to recurse without end)
    assert jsonmap.dumps({BIG: {2**64: BIG}}) == b'{"%d":{"%d":%d}}' % (BIG, 2**64, BIG)


# ---- doors: explicit route, auto route, tribridge call ---------------------------------------


def _post(port: int, path: str, body: bytes) -> tuple[int, bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("POST", path, body=body, headers={"content-type": "application/json"})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


@pytest.fixture(scope="module")
def demo() -> Any:
    with BackgroundLoop() as bg:
        p = bg.start_provider(version="1.0.0")
        cfg = yaml.safe_load(demo_config(p.port, 0))
        cfg["routes"].append(
            {
                "method": "POST",
                "path": "/decimal",
                "service": DEMO_SERVICE,
                "call": "echoDecimal",
                "params": [{"from": "body", "name": "amount", "type": "java.math.BigDecimal"}],
            }
        )
        yield p, bg.start_gateway(yaml.safe_dump(cfg)).port


@pytest.mark.parametrize(
    ("method", "body", "reply", "received"),
    [
        ("echoObject", b"[%d]" % BIG, b"%d" % BIG, coerce(BIG, parse_type("BigInteger"))),
        (
            "echoDecimal",
            b"[0.1234567890123456789012345]",
            b'"0.1234567890123456789012345"',
            Decimal("0.1234567890123456789012345"),
        ),
        (
            "echoObject",
            b'[{"class": "java.math.BigDecimal", "value": "12.50"}]',
            b'"12.50"',
            Decimal("12.50"),
        ),
        ("echoObject", b'[{"class": "java.lang.Long", "value": 5}]', b"5", Long(5)),
        (
            "echoMap",
            b'[{"a": {"class": "java.math.BigDecimal", "value": "1.10"}, "b": 99999999999999999999}]',
            b'{"a":"1.10","b":99999999999999999999}',
            {"a": Decimal("1.10"), "b": coerce(99999999999999999999, parse_type("BigInteger"))},
        ),
    ],
)
def test_auto_route_is_exact(
    demo: Any, method: str, body: bytes, reply: bytes, received: Any
) -> None:
    provider, port = demo
    assert _post(port, f"/{DEMO_SERVICE}/{method}", body) == (200, reply)
    assert encode(provider.last_args[method][0]) == encode(received)


def test_explicit_route_body_field_is_exact(demo: Any) -> None:
    provider, port = demo
    status, out = _post(port, "/decimal", b'{"amount": 12345678901234567890.000000001}')
    assert (status, out) == (200, b'"12345678901234567890.000000001"')
    assert provider.last_args["echoDecimal"] == [Decimal("12345678901234567890.000000001")]


def test_provider_type_rejection_points_at_the_fix() -> None:
    """Java's own words for a string in a BigDecimal field (status 40) get the hint."""
    from tribridge.config.services import ServiceConfig
    from tribridge.config.upstream import UpstreamSettings
    from tribridge.invoke.invoker import TYPE_HINT, Call, Service
    from tribridge.upstream.pool import PoolSet

    svc = Service(ServiceConfig("com.x.Svc"), PoolSet(UpstreamSettings()))
    java = (
        "java.io.IOException: com.x.Order.amount: "
        "com.alibaba.com.caucho.hessian.io.BigDecimalDeserializer: unexpected object "
        "java.lang.String (12.50)"
    )
    err = svc.result_error(Result(1, 40, error=java), Call("m", []))
    assert err.status == 400 and err.code == "provider_rejected_request"
    assert java in err.message and TYPE_HINT in err.message and '"class"' in TYPE_HINT
    other = svc.result_error(Result(1, 40, error="Serialization id 9 is unknown"), Call("m", []))
    assert TYPE_HINT not in other.message


def test_triple_type_rejection_points_at_the_fix() -> None:
    from tribridge.codecs.triple.status import Code, Status
    from tribridge.config.services import ServiceConfig
    from tribridge.invoke.call import Call
    from tribridge.invoke.replies import TYPE_HINT, triple_error
    from tribridge.upstream.triple import TripleCallError

    cfg = ServiceConfig("com.x.Svc", protocol="tri")
    java = "BigDecimalDeserializer: unexpected object java.lang.String (12.50)"
    err = triple_error(TripleCallError(Status(Code.INTERNAL, java)), cfg, Call("m", []))
    assert java in err.message and TYPE_HINT in err.message
    late = triple_error(
        TripleCallError(Status(Code.UNAVAILABLE, "expected ...")), cfg, Call("m", [])
    )
    assert TYPE_HINT not in late.message


# ---- the other java.time classes: hessian-lite's handles out, Java's toString() back --------


@pytest.mark.parametrize(
    ("cls", "text", "back"),
    [
        ("java.time.ZonedDateTime", "2024-01-02T03:04:05+08:00[Asia/Shanghai]", None),
        (
            "java.time.ZonedDateTime",
            "2024-07-01T12:00:00[Europe/Paris]",
            "2024-07-01T12:00:00+02:00[Europe/Paris]",
        ),
        ("java.time.ZonedDateTime", "2024-01-02T03:04:05Z", None),
        ("java.time.ZonedDateTime", "2024-01-02T03:04:05-05:30", None),
        ("java.time.OffsetDateTime", "2024-01-02T03:04:05+01:00", None),
        ("java.time.OffsetTime", "10:15:30-08:00", None),
        ("java.time.Duration", "PT8H6M12.345S", None),
        ("java.time.Duration", "-PT0.5S", "PT-0.5S"),
        ("java.time.Duration", "P2DT3H", "PT51H"),
        ("java.time.Duration", "PT0S", None),
        ("java.time.Period", "P1Y2M3W4D", "P1Y2M25D"),
        ("java.time.Period", "P0D", None),
        ("java.time.Year", "2024", None),
        ("java.time.YearMonth", "2024-02", None),
        ("java.time.MonthDay", "--02-29", None),
        ("java.time.ZoneOffset", "+05:30", None),
        ("java.time.ZoneId", "America/New_York", None),
    ],
)
def test_other_java_time_round_trip(cls: str, text: str, back: str | None) -> None:
    """Typed or tagged, each goes out as hessian-lite's ``java8.*Handle`` (its readResolve
    builds the value); a reply carrying the handle comes back as Java's ``toString()``."""
    wire = encode(coerce(text, parse_type(cls)))
    assert wire == encode(infer(tagged(cls, text), "a", True, EMPTY_REGISTRY))
    assert decode(wire) == (back or text)
    assert HL_TIME.encode() in wire


def test_zoned_date_time_handle_fields() -> None:
    """ZonedDateTimeHandle{dateTime: LocalDateTimeHandle, offset: ZoneOffsetHandle, zoneId}."""
    h = coerce(
        "2024-01-02T03:04:05.006+08:00[Asia/Shanghai]", parse_type("java.time.ZonedDateTime")
    )
    assert h.cls == HL_TIME + "ZonedDateTimeHandle" and list(h.fields) == [
        "dateTime",
        "offset",
        "zoneId",
    ]
    assert h.fields["dateTime"].fields["time"].fields["nano"] == 6_000_000
    assert h.fields["offset"] == HessianObject(HL_TIME + "ZoneOffsetHandle", {"seconds": 28800})
    assert h.fields["zoneId"] == "Asia/Shanghai"


@pytest.mark.parametrize(
    ("cls", "text"),
    [
        ("java.time.ZonedDateTime", "2024-01-02T03:04:05"),
        ("java.time.OffsetDateTime", "2024-01-02T03:04:05"),
        ("java.time.Duration", "P"),
        ("java.time.Duration", "8 hours"),
        ("java.time.Period", "P1H"),
        ("java.time.MonthDay", "02-30"),
        ("java.time.ZoneId", "Nowhere/Atlantis"),
        ("java.time.Year", 20.5),
    ],
)
def test_other_java_time_errors(cls: str, text: Any) -> None:
    with pytest.raises(JavaTypeError, match=cls.replace(".", r"\.")):
        coerce(text, parse_type(cls), "args[0]")


def test_value_class_replies_read_as_their_json_form() -> None:
    """What Java writes for these classes comes back as the README's JSON out."""
    ts = dt.datetime(2024, 1, 2, 3, 4, 5, 6000, tzinfo=dt.UTC)
    reply = [
        HessianObject("java.sql.Timestamp", {"value": ts}),
        HessianObject("java.util.UUID", {"value": "123e4567-e89b-12d3-a456-426614174000"}),
        HessianObject("com.alibaba.com.caucho.hessian.io.LocaleHandle", {"value": "zh_CN"}),
        HessianObject("java.lang.Class", {"name": "[Ljava.lang.String;"}),
        coerce(BIG, parse_type("java.math.BigInteger")),
        Decimal("12.50"),
    ]
    assert jsonmap.loads(jsonmap.dumps(decode(encode(reply)))) == [
        "2024-01-02T03:04:05.006000+00:00",
        "123e4567-e89b-12d3-a456-426614174000",
        "zh_CN",
        "[Ljava.lang.String;",
        BIG,
        "12.50",
    ]


def test_every_java_time_class_has_a_parser() -> None:
    from tribridge.codecs.hessian2 import javatime, javatypes

    assert set(javatime._JTIME_HANDLES) == set(javatypes._JTIME_CLASSES)
