"""Property tests for the hessian2 codec and the Dubbo2 frame splitter (hypothesis)."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import math
import sys
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tribridge.codecs import _accel
from tribridge.codecs.dubbo import HEADER_LEN, DubboProtocolError, Frame, FrameDecoder, pack_frame
from tribridge.codecs.hessian2 import (
    Decoder,
    Encoder,
    HessianError,
    HessianObject,
    Int,
    Long,
    TypedList,
    TypedMap,
    decode,
    encode,
)

UTC = dt.UTC
PROPS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FEW = settings(PROPS, max_examples=40)


# ---- a type-faithful comparison --------------------------------------------------------------


def canon(v: Any, _seen: dict[int, int] | None = None) -> Any:
    """A tagged tree that tells int from long from double and keeps container types;
    NaN compares equal to NaN, and shared containers are labelled."""
    seen = {} if _seen is None else _seen
    if v is None or isinstance(v, bool):
        return ("lit", v)
    if isinstance(v, Long):
        return ("long", int(v))
    if isinstance(v, int):
        return ("int", int(v))
    if isinstance(v, float):
        return ("double", "NaN") if math.isnan(v) else ("double", v)
    if isinstance(v, str):
        return ("string", v)
    if isinstance(v, (bytes, bytearray)):
        return ("binary", bytes(v))
    if isinstance(v, dt.datetime):
        return ("date", v)
    if id(v) in seen:
        return ("ref", seen[id(v)])
    seen[id(v)] = len(seen)
    if isinstance(v, list):
        return ("list", getattr(v, "type", None), tuple(canon(x, seen) for x in v))
    if isinstance(v, dict):
        pairs = tuple((canon(k, seen), canon(x, seen)) for k, x in v.items())
        return ("map", getattr(v, "type", None), pairs)
    if isinstance(v, HessianObject):
        return ("object", v.cls, tuple((f, canon(x, seen)) for f, x in v.fields.items()))
    raise TypeError(type(v))


# ---- strategies ------------------------------------------------------------------------------

ints = st.integers(-(2**31), 2**31 - 1).map(Int)
longs = st.integers(-(2**63), 2**63 - 1).map(Long)
edge_ints = st.sampled_from(
    [-(2**31), -262145, -262144, -2049, -2048, -17, -16, 47, 48, 2047, 2048, 262143, 262144]
).map(Int)
edge_longs = st.sampled_from(
    [-(2**63), -(2**31) - 1, -(2**31), -262145, -9, -8, 15, 16, 2**31 - 1, 2**31, 2**63 - 1]
).map(Long)
doubles = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.001, -0.001, 1.5, 2147483.647, 2147483.648, 3000000.5, 32768.0, -129.0, 0.3, 0.009]
)
short_text = st.text(max_size=40)
astral_text = st.text(
    alphabet=st.characters(min_codepoint=0x1F000, max_codepoint=0x1FAFF) | st.sampled_from("aé"),
    max_size=40,
)
long_text = st.builds(
    lambda unit, n, tail: unit * n + tail,
    st.sampled_from(["a", "é", "😀", "a😀", "\u0800"]),
    st.integers(0, 36000),
    st.sampled_from(["", "b", "😀"]),
)
texts = short_text | astral_text | long_text
binaries = st.binary(max_size=64) | st.builds(
    lambda b, n: b * n, st.binary(min_size=1, max_size=3), st.integers(0, 25000)
)
datetimes = st.builds(
    lambda d, ms: d.replace(microsecond=ms * 1000),
    st.datetimes(timezones=st.just(UTC)),
    st.integers(0, 999),
)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    ints,
    longs,
    edge_ints,
    edge_longs,
    doubles,
    texts,
    binaries,
    datetimes,
)
keys = st.one_of(st.text(max_size=10), ints, longs, st.booleans(), st.none(), st.binary(max_size=4))
type_names = st.sampled_from(["[int", "[string", "[object", "java.util.HashSet", "com.x.Y"])
class_names = st.sampled_from(["com.x.A", "com.x.B", "java.lang.RuntimeException"])
field_names = st.lists(st.sampled_from(["a", "b", "name", "value", "é"]), unique=True, max_size=4)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    small = st.lists(children, max_size=10)
    return st.one_of(
        small,
        st.builds(TypedList, type_names, small),
        st.dictionaries(keys, children, max_size=6),
        st.builds(
            TypedMap,
            st.sampled_from(["java.util.LinkedHashMap", "java.util.TreeMap"]),
            st.dictionaries(keys, children, max_size=6),
        ),
        st.builds(
            lambda cls, names, vals: HessianObject(cls, dict(zip(names, vals, strict=False))),
            class_names,
            field_names,
            st.lists(children, min_size=4, max_size=4),
        ),
    )


typed_values = st.recursive(leaves, _containers, max_leaves=30)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=25,
)


# ---- hessian properties ----------------------------------------------------------------------


@PROPS
@given(typed_values)
def test_typed_round_trip(value: Any) -> None:
    wire = encode(value)
    back = decode(wire, typed=True)
    assert canon(back) == canon(value)
    # a typed decode re-encodes to the very same bytes
    assert encode(back) == wire


@FEW
@given(long_text)
@example("a" * 32767 + "😀" + "b")
@example("😀" * 16384 + "a")
@example("é" * 70000)
@example("a" * 65535 + "😀" * 3)
def test_long_strings_round_trip_and_chunk_boundaries(text: str) -> None:
    wire = encode(text)
    assert decode(wire) == text
    # Java's chunking: 0x8000 units per non-final chunk, one less if that would end the
    # chunk on a high surrogate
    pos = 0
    consumed = ""
    while wire[pos] == 0x52:
        n = int.from_bytes(wire[pos + 1 : pos + 3], "big")
        assert n in (0x8000, 0x7FFF)
        dec = Decoder(b"\x53" + wire[pos + 1 :])
        chunk = dec.read()  # decoded alone: a split pair would leave a lone high surrogate
        assert not ("\ud800" <= chunk[-1] <= "\udbff")
        consumed += chunk
        pos += dec.pos
    assert consumed + decode(wire[pos:]) == text


@PROPS
@given(doubles)
def test_double_round_trip(v: float) -> None:
    back = decode(encode(v))
    assert type(back) is float
    if math.isnan(v):
        assert math.isnan(back)
    else:
        assert back == v


@PROPS
@given(st.one_of(ints, longs, edge_ints, edge_longs))
def test_integer_round_trip_keeps_width(v: int) -> None:
    back = decode(encode(v), typed=True)
    assert back == v
    assert type(back) is (Long if type(v) is Long else int)


@PROPS
@given(datetimes)
def test_date_round_trip(v: dt.datetime) -> None:
    back = decode(encode(v))
    assert back == v and back.tzinfo is not None


@PROPS
@given(json_values)
def test_plain_round_trip_json_like(value: Any) -> None:
    back = decode(encode(value))
    assert canon(back) == canon(value)
    assert back == value


@PROPS
@given(typed_values)
def test_encoder_is_deterministic(value: Any) -> None:
    first = encode(value)
    assert encode(value) == first
    assert encode(copy.deepcopy(value)) == first
    enc = Encoder()
    enc.write(value)
    assert enc.getvalue() == first


@FEW
@given(st.lists(typed_values, min_size=1, max_size=4))
def test_shared_values_round_trip_as_references(values: list[Any]) -> None:
    # every container written twice: the second time is a reference to the same object
    doubled = [v for v in values for _ in range(2)]
    wire = encode(doubled)
    back = decode(wire, typed=True)
    assert canon(back) == canon(doubled)
    for i in range(0, len(back), 2):
        if isinstance(values[i // 2], (list, dict, HessianObject)):
            assert back[i] is back[i + 1]


# ---- frame splitter --------------------------------------------------------------------------

frames_st = st.lists(
    st.tuples(
        st.sampled_from([0xC2, 0x82, 0xE2, 0xA2, 0x02, 0x22]),
        st.sampled_from([0, 20, 40, 70, 100]),
        st.integers(-(2**63), 2**63 - 1),
        st.binary(max_size=300),
    ),
    min_size=1,
    max_size=6,
)


def _split(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(stream) + 1) for c in cuts})
    out, prev = [], 0
    for p in [*points, len(stream)]:
        out.append(stream[prev:p])
        prev = p
    return out


@PROPS
@given(frames_st, st.lists(st.integers(0, 10_000), max_size=20))
def test_frame_decoder_any_split(
    frames: list[tuple[int, int, int, bytes]], cuts: list[int]
) -> None:
    stream = b"".join(pack_frame(*f) for f in frames)
    expected = [Frame(flag, status, rid, body) for flag, status, rid, body in frames]
    dec = FrameDecoder()
    got: list[Frame] = []
    for piece in _split(stream, cuts):
        got += dec.feed(piece)
    assert got == expected
    assert dec.buffered == 0


@FEW
@given(frames_st)
def test_frame_decoder_byte_by_byte(frames: list[tuple[int, int, int, bytes]]) -> None:
    stream = b"".join(pack_frame(*f) for f in frames)
    dec = FrameDecoder()
    got: list[Frame] = []
    for i in range(len(stream)):
        got += dec.feed(stream[i : i + 1])
        assert dec.buffered < HEADER_LEN + 300
    assert [(f.flag, f.status, f.request_id, f.body) for f in got] == frames


@PROPS
@given(frames_st, st.lists(st.integers(0, 10_000), max_size=20), st.integers(0, 200))
def test_frame_decoder_skips_oversized_under_any_split(
    frames: list[tuple[int, int, int, bytes]], cuts: list[int], limit: int
) -> None:
    stream = b"".join(pack_frame(*f) for f in frames)
    dec = FrameDecoder(max_payload=limit, skip_oversized=True)
    got: list[Frame] = []
    for piece in _split(stream, cuts):
        got += dec.feed(piece)
        assert dec.buffered <= HEADER_LEN + limit
    expected = [
        Frame(flag, status, rid, b"", oversize=len(body))
        if len(body) > limit
        else Frame(flag, status, rid, body)
        for flag, status, rid, body in frames
    ]
    assert got == expected
    assert dec.buffered == 0


# ---- compiled vs pure Python: the same bytes, values, errors and side channels ---------------


def _both() -> tuple[Any, Any]:
    """(compiled, pure) module pairs for the accelerated codec modules; FAILS when the
    compiled ones are not built (scripts/setup.sh builds them for every test run)."""
    compiled = {n: sys.modules[n] for n in _accel.ACCELERATED}
    assert all(_accel.implementation_of(m) == "compiled" for m in compiled.values()), (
        "compiled codecs not built"
    )
    return compiled, _accel.pure_twins()


def _outcome(fn: Any) -> tuple[str, str]:
    try:
        return "ok", repr(fn())
    except (HessianError, DubboProtocolError) as e:
        return "error", f"{type(e).__name__}: {e}"


DEC = "tribridge.codecs.hessian2.decoder"
ENC = "tribridge.codecs.hessian2.encoder"


@PROPS
@given(typed_values)
def test_compiled_encoder_writes_the_pure_encoders_bytes(value: Any) -> None:
    compiled, pure = _both()
    wire = pure[ENC].encode(value)
    assert compiled[ENC].encode(value) == wire
    for typed in (False, True):
        got = [
            _outcome(lambda m=m, t=typed: m[DEC].decode(wire, typed=t)) for m in (compiled, pure)
        ]
        assert got[0] == got[1]


def _read_all(mod: Any, data: bytes, typed: bool, depth: int, budget: int | None) -> Any:
    """Every value in ``data`` plus what the side channels reported and where it stopped."""
    dec = mod.Decoder(data, typed=typed, max_depth=depth, max_elements=budget)
    values = []
    try:
        while not dec.at_end():
            values.append(dec.read())
    finally:
        side = (dec.pos, dec.named_classes(), dec.class_keys(), dec.java_serialized)
    return values, side


def _mutants(draw: Any) -> bytes:
    wire = bytearray(encode(draw(typed_values)))
    for _ in range(draw(st.integers(0, 4))):
        if not wire:
            break
        i = draw(st.integers(0, len(wire) - 1))
        op = draw(st.sampled_from(["flip", "cut", "insert"]))
        if op == "flip":
            wire[i] = draw(st.integers(0, 255))
        elif op == "cut":
            del wire[i:]
        else:
            wire[i:i] = draw(st.binary(min_size=1, max_size=4))
    return bytes(wire)


hostile_bytes = st.binary(max_size=64) | st.composite(_mutants)()


@PROPS
@given(
    hostile_bytes,
    st.booleans(),
    st.integers(0, 20) | st.just(128),
    st.none() | st.integers(0, 50),
)
@example(b"\x43\x07java.io\x91\x01a\x60\x4e", False, 128, None)
@example(b"\x79" * 30 + b"\x4e", True, 10, None)
@example(b"\x22\xac\xed", False, 128, None)
def test_compiled_decoder_matches_pure_on_any_bytes(
    data: bytes, typed: bool, depth: int, budget: int | None
) -> None:
    compiled, pure = _both()
    got = [
        _outcome(lambda m=m: _read_all(m[DEC], data, typed, depth, budget))
        for m in (compiled, pure)
    ]
    assert got[0] == got[1]
    # the class-name side channel survives an error half way, the same on both sides
    sides = []
    for m in (compiled, pure):
        dec = m[DEC].Decoder(data, typed=typed, max_depth=depth, max_elements=budget)
        with contextlib.suppress(HessianError):
            while not dec.at_end():
                dec.read()
        sides.append((dec.pos, dec.named_classes(), dec.class_keys(), dec.java_serialized))
    assert sides[0] == sides[1]


@PROPS
@given(
    st.lists(typed_values, max_size=3),
    st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3),
)
def test_compiled_request_codec_matches_pure(args: list[Any], att: dict[str, str]) -> None:
    compiled, pure = _both()
    msg = "tribridge.codecs.dubbo.messages"
    desc = "Ljava/lang/Object;" * len(args)
    frames = [
        m[msg].RequestTemplate("com.x.S", "m", desc, "1.0", {"k": "v"}).frame(9, args, att)
        for m in (compiled, pure)
    ]
    assert frames[0] == frames[1]
    body = frames[0][HEADER_LEN:]
    for typed in (False, True):
        got = [
            _outcome(lambda m=m, t=typed: m[msg].decode_request_body(body, typed=t))
            for m in (compiled, pure)
        ]
        assert got[0] == got[1]
    resp = [m[msg].encode_response(9, args, attachments=att) for m in (compiled, pure)]
    assert resp[0] == resp[1]


@PROPS
@given(frames_st, st.lists(st.integers(0, 10_000), max_size=20), st.integers(0, 300), st.booleans())
def test_compiled_frame_decoder_matches_pure(
    frames: list[tuple[int, int, int, bytes]], cuts: list[int], limit: int, skip: bool
) -> None:
    compiled, pure = _both()
    mod = "tribridge.codecs.dubbo.frame"
    stream = b"".join(pure[mod].pack_frame(*f) for f in frames)
    assert stream == b"".join(compiled[mod].pack_frame(*f) for f in frames)
    results = []
    for m in (compiled, pure):
        dec = m[mod].FrameDecoder(max_payload=limit, skip_oversized=skip)
        out: list[Any] = []
        try:
            for piece in _split(stream, cuts):
                out += [
                    (f.flag, f.status, f.request_id, f.body, f.oversize) for f in dec.feed(piece)
                ]
            out.append(("ok", dec.buffered, dec.mid_frame))
        except DubboProtocolError as e:
            out.append(("error", str(e)))
        results.append(out)
    assert results[0] == results[1]


JT = "tribridge.codecs.hessian2.javatypes"
CO = "tribridge.codecs.hessian2.coercion"
#: declared types the gateway coerces JSON into (a POJO, generics, arrays, value classes)
COERCE_TYPES = [
    "int", "long", "short", "byte", "double", "float", "boolean", "char", "java.lang.Integer",
    "java.lang.Long", "java.lang.String", "java.lang.Object", "java.math.BigDecimal",
    "java.math.BigInteger", "java.util.Date", "java.util.List<java.lang.Long>",
    "java.util.Map<String, java.lang.Integer>", "java.util.Set<String>", "int[]", "byte[]",
    "java.util.UUID", "java.time.LocalDate", "java.time.Duration", "java.util.LinkedHashMap",
    "com.x.User", "com.x.User[]", "com.x.Color",
]  # fmt: skip
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
    | st.sampled_from(["12", "2024-01-02", "PT1H", "RED", "com.x.User", "AAE="]),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["id", "name", "class", "age", "x"]), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


def _registry(jt: Any) -> Any:
    user = [("id", "long"), ("name", "java.lang.String"), ("age", "int"), ("tags", "java.util.List<String>")]
    return jt.TypeRegistry([
        jt.PojoDef("com.x.User", [(n, jt.parse_type(t)) for n, t in user]),
        jt.PojoDef("com.x.Color", [], ["RED", "GREEN"]),
    ])  # fmt: skip


@PROPS
@given(json_values, st.sampled_from(COERCE_TYPES), st.booleans())
def test_compiled_coercion_matches_pure(value: Any, type_name: str, generic: bool) -> None:
    compiled, pure = _both()
    got = [
        _outcome(
            lambda m=m: m[CO].coerce(
                value, m[JT].parse_type(type_name), "args[0]",
                generic=generic, registry=_registry(m[JT]),
            )
        )
        for m in (compiled, pure)
    ]  # fmt: skip
    assert got[0] == got[1]
    inferred = [_outcome(lambda m=m: m[CO].infer(value, "args[0]", generic, _registry(m[JT])))
                for m in (compiled, pure)]  # fmt: skip
    assert inferred[0] == inferred[1]


@PROPS
@given(json_values, st.sampled_from(COERCE_TYPES))
@example(5, "int")
@example(2**31, "int")
@example(2**40, "java.lang.Long")
@example("x", "java.lang.String")
@example(1.5, "double")
@example(True, "java.lang.Boolean")
@example(True, "int")
@example(7, "java.lang.Object")
def test_coercion_fast_path_agrees_with_coerce(value: Any, type_name: str) -> None:
    """``_as_is`` (the no-path shortcut for fields and elements) either declines or returns
    exactly what ``coerce`` does: same value, same Python type (``Int`` vs ``Long`` vs ``int``)."""
    for side in _both():
        jt, co = side[JT], side[CO]
        t = jt.parse_type(type_name)
        fast = co._as_is(value, t)
        if fast is co._NO:
            continue
        slow = co.coerce(value, t, "args[0]", registry=_registry(jt))
        assert (type(fast), fast) == (type(slow), slow)
