"""Robustness: the hessian2 decoder and the Dubbo2 codec against truncated, mutated and
hostile input.  The contract (codecs/hessian2/decoder.py, codecs/dubbo/frame.py): every
malformed input raises the codec's own error (``HessianError`` / ``DubboProtocolError``) and
nothing else, with memory bounded by the input and time bounded by input length and depth.
"""

from __future__ import annotations

import datetime as dt
import random
import struct
import time
import tracemalloc
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from tribridge.codecs.dubbo import (
    GENERIC_DESC,
    HEADER_LEN,
    DubboProtocolError,
    Frame,
    FrameDecoder,
    JavaException,
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
    pack_frame,
    supports_response_attachments,
    unpack_header,
)
from tribridge.codecs.hessian2 import (
    MAX_DEPTH,
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

HL = "com.alibaba.com.caucho.hessian.io.java8."
UTC = dt.UTC


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def header(flag: int, status: int, rid: int, length: int) -> bytes:
    return struct.pack(">HBBqi", 0xDABB, flag, status, rid, length)


def one_frame(data: bytes, **kw: Any) -> Frame:
    frames = FrameDecoder(**kw).feed(data)
    assert len(frames) == 1
    return frames[0]


def _sample_values() -> list[Any]:
    shared: dict = {"k": [1, 2]}
    loop: list = []
    loop.append(loop)
    exc = java_exception("java.lang.IllegalStateException", "boom")
    return [
        None,
        True,
        0,
        -2049,
        2**31 - 1,
        Long(7),
        Long(-262145),
        Long(2**40),
        1.5,
        0.009,
        -32768.0,
        float("nan"),
        "",
        "hello",
        "héllo😀" * 5,
        "x" * 40,
        "é" * 1100,
        b"",
        b"\x00\xff" * 10,
        b"b" * 1100,
        dt.datetime(2024, 1, 1, tzinfo=UTC),
        dt.datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC),
        [],
        [1, "a", None, [2.5, [Long(3)]]],
        list(range(20)),
        TypedList("[int", [Int(1), Int(2)]),
        TypedList("[string", [str(i) for i in range(9)]),
        {"a": 1, "b": {"c": [True, False]}},
        TypedMap("java.util.LinkedHashMap", {Long(1): "x", "y": None}),
        [shared, shared, TypedList("[int", []), TypedList("[int", [Int(5)])],
        loop,
        Decimal("12.50"),
        HessianObject("com.x.User", {"id": Long(1), "name": "n", "tags": ["a"]}),
        [HessianObject("com.x.P", {"v": Int(i)}) for i in range(3)],
        [HessianObject(f"c{i}", {}) for i in range(18)],
        exc,
        HessianObject(HL + "LocalDateHandle", {"year": Int(2024), "month": Int(1), "day": Int(2)}),
    ]


SAMPLES = [encode(v) for v in _sample_values()]


# =============================================================================================
# hessian: truncation and mutation
# =============================================================================================


@pytest.mark.parametrize("wire", SAMPLES, ids=range(len(SAMPLES)))
def test_every_truncation_raises_hessian_error(wire: bytes) -> None:
    assert decode(wire) is not None or wire == b"N"
    for cut in range(len(wire)):
        for typed in (False, True):
            with pytest.raises(HessianError):
                decode(wire[:cut], typed=typed)


def test_truncations_of_chunked_values() -> None:
    for wire in (encode("a" * 40000), encode("😀" * 20000), encode(b"z" * 70000)):
        chunk_points = [i for i in range(len(wire)) if wire[i] in (0x41, 0x42, 0x52, 0x53)]
        cuts = set(range(0, len(wire), 997)) | {
            p + d for p in chunk_points[:8] for d in (0, 1, 2, 3)
        }
        for cut in sorted(c for c in cuts if c < len(wire)):
            with pytest.raises(HessianError):
                decode(wire[:cut])


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        p = rng.randrange(len(buf) + 1) if buf else 0
        if op < 0.5 and buf:
            buf[min(p, len(buf) - 1)] = rng.randrange(256)
        elif op < 0.7 and buf:
            del buf[min(p, len(buf) - 1)]
        elif op < 0.9:
            buf.insert(p, rng.randrange(256))
        else:
            buf[p:p] = rng.choice([h("49 7f ff ff ff"), h("51 90"), h("58 d7 ff ff"), b"\xff" * 3])
    return bytes(buf)


def _only(fn: Callable[[], Any], allowed: type[BaseException], budget: list[float]) -> str:
    start = time.perf_counter()
    try:
        fn()
        outcome = "value"
    except allowed:
        outcome = "error"
    elapsed = time.perf_counter() - start
    budget.append(elapsed)
    return outcome


def test_random_mutations_raise_only_hessian_error() -> None:
    rng = random.Random(20240601)
    times: list[float] = []
    outcomes = {"value": 0, "error": 0}
    for i in range(4000):
        data = _mutate(rng, rng.choice(SAMPLES))
        typed = bool(i & 1)
        outcomes[_only(lambda d=data, t=typed: decode(d, typed=t), HessianError, times)] += 1
    assert outcomes["error"] > 1000 and outcomes["value"] > 50
    assert max(times) < 1.0
    assert sum(times) < 20.0


def test_random_garbage_raises_only_hessian_error() -> None:
    rng = random.Random(7)
    times: list[float] = []
    outcomes = {"value": 0, "error": 0}
    for _ in range(3000):
        data = rng.randbytes(rng.randint(0, 64))
        outcomes[_only(lambda d=data: decode(d), HessianError, times)] += 1
        outcomes[_only(lambda d=data: Decoder(d, typed=True).read(), HessianError, times)] += 1
    assert outcomes["error"] > 2000 and outcomes["value"] > 100
    assert max(times) < 1.0
    assert sum(times) < 10.0


# =============================================================================================
# hessian: hostile cases
# =============================================================================================


@pytest.mark.parametrize(
    "wire",
    [
        h("79") * 100_000 + h("4e"),
        h("48") * 100_000,
        h("57") * 100_000,
        h("71 01 54") + h("71 90") * 50_000,
    ],
    ids=["fixed-list", "map", "var-list", "typed-list"],
)
def test_deep_nesting_is_refused_quickly(wire: bytes) -> None:
    start = time.perf_counter()
    with pytest.raises(HessianError, match="nesting"):
        decode(wire)
    assert time.perf_counter() - start < 1.0


def test_deep_object_nesting_is_refused() -> None:
    wire = h("43 01 41 91 01 76") + h("60") * 100_000 + h("4e")
    with pytest.raises(HessianError, match="nesting"):
        decode(wire)


def test_nesting_just_under_the_limit_decodes() -> None:
    """The default limit is MAX_DEPTH, the class policy's (one limit for both)."""
    wire = h("79") * MAX_DEPTH + h("4e")
    v = decode(wire)
    for _ in range(MAX_DEPTH):
        v = v[0]
    assert v is None
    with pytest.raises(HessianError, match="nesting"):
        decode(h("79") * (MAX_DEPTH + 1) + h("4e"))
    with pytest.raises(HessianError, match="nesting"):
        Decoder(h("79") * 20 + h("4e"), max_depth=10).read()


@pytest.mark.parametrize("levels", [2_000, 200_000])
def test_no_max_depth_lifts_the_recursion_bound(levels: int) -> None:
    """A caller's huge max_depth is capped (1024): the compiled reader and writer recurse on
    the C stack, which would overflow (a crash, not an error) long before 200 000 levels;
    the interpreted ones turn the interpreter's RecursionError into the codec's error."""
    dec = Decoder(h("79") * levels + h("4e"), max_depth=10**9)
    assert dec.max_depth == 1024
    with pytest.raises(HessianError, match="nesting"):
        dec.read()
    deep: list[Any] = []
    for _ in range(levels):
        deep = [deep]
    enc = Encoder(max_depth=10**9)
    assert enc.max_depth == 1024
    with pytest.raises((HessianError, RecursionError)):
        enc.write(deep)


# Tags whose operand (a length, an index, a class name) once was read as a full value at
# depth 0, so a run of them recursed until RecursionError.
RECURSION_CASES = {
    "X-length": h("58") * 100_000,
    "V-length": h("56 01 54") + h("56 90") * 50_000,
    "Q-index": h("51") * 100_000,
    "O-index": h("4f") * 100_000,
    "C-name": h("43") * 100_000,
}


def test_long_chain_of_class_definitions_is_iterative() -> None:
    # Legal hessian: 50,000 definitions before a null. Read in a loop, not by recursion.
    assert decode(h("43 01 61 90") * 50_000 + h("4e")) is None


@pytest.mark.parametrize("wire", list(RECURSION_CASES.values()), ids=list(RECURSION_CASES))
def test_nesting_through_length_index_and_class_def_is_bounded(wire: bytes) -> None:
    with pytest.raises(HessianError):
        decode(wire)


def test_request_body_deep_length_nesting_raises_protocol_error() -> None:
    with pytest.raises(DubboProtocolError):
        decode_request_body(h("58") * 100_000)


HUGE_HEADERS = {
    "string-S-ffff": h("53 ff ff 61 62 63"),
    "string-R-ffff": h("52 ff ff 61 62 63"),
    "string-short-1023": h("33 ff 61"),
    "binary-B-ffff": h("42 ff ff 61 62 63"),
    "binary-A-ffff": h("41 ff ff 61 62 63"),
    "binary-short": h("37 ff 61"),
    "list-X-int-max": h("58 49 7f ff ff ff 90 90 90"),
    "list-X-negative": h("58 49 80 00 00 00 90"),
    "list-V-int-max": h("56 04 5b696e74 49 7f ff ff ff 90"),
    "list-X-long-form": h("58 59 7f ff ff ff 90"),
    "classdef-fields-int-max": h("43 01 61 49 7f ff ff ff 01 62 60"),
    "object-O-int-max": h("43 01 61 90 4f 49 7f ff ff ff"),
    "ref-int-max": h("79 51 49 7f ff ff ff"),
    "type-ref-int-max": h("71 49 7f ff ff ff 90"),
    "long-L-short": h("4c 00 00 00"),
    "double-D-short": h("44 00"),
    "date-short": h("4a 00 00"),
}


@pytest.mark.parametrize("wire", list(HUGE_HEADERS.values()), ids=list(HUGE_HEADERS))
def test_lengths_beyond_input_fail_without_allocating(wire: bytes) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(HessianError):
            decode(wire)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10 * 1024 * 1024


def test_billion_element_header_fails_fast_and_small() -> None:
    wire = h("58 49 7f ff ff ff") + h("90") * 1000
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(HessianError, match="exceeds"):
            decode(wire)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 0.5
    assert peak < 10 * 1024 * 1024


@pytest.mark.parametrize(
    ("wire", "match"),
    [
        (h("51 95"), "reference"),
        (h("79 51 91"), "reference"),
        (h("60"), "class definition"),
        (h("6f"), "class definition"),
        (h("4f 90"), "class definition"),
        (h("71 95"), "type reference"),
        (h("55 95 5a"), "type reference"),
        (h("4d 90 5a"), "type reference"),
        (h("56 90 90"), "type reference"),
        (h("71 4e"), "type"),
        (h("71 54"), "type"),
        (h("40"), "unknown tag"),
        (h("45"), "unknown tag"),
        (h("47"), "unknown tag"),
        (h("50"), "unknown tag"),
        (h("79 50"), "unknown tag"),
        (h("43 4e 90"), "class definition without a name"),
        (h("43 00 90"), "class definition without a name"),
        (h("43 01 61 91 4e"), "null field name"),
        (h("43 01 61 01 62"), "expected int"),
        (h("52 00 01 61 91"), "string chunk"),
        (h("41 00 01 61 91"), "binary chunk"),
        (h("57 91"), "end marker"),
        (h("48 91"), "truncated"),
        (h("48 91 92"), "end marker"),
        (h(""), "truncated"),
        (h("91 91"), "trailing"),
    ],
)
def test_structural_errors(wire: bytes, match: str) -> None:
    with pytest.raises(HessianError, match=match):
        decode(wire)


@pytest.mark.parametrize(
    "wire",
    [
        h("01 ff"),
        h("01 80"),
        h("01 c0 80"),  # overlong NUL
        h("01 c3 28"),  # bad continuation
        h("01 e0 80 80"),  # overlong 3-byte
        h("02 f8 88 80 80 80"),  # 5-byte form
        h("02 f4 90 80 80"),  # beyond U+10FFFF
        h("02 f0 9f 98"),  # truncated 4-byte
        h("01 e2 82"),  # truncated 3-byte
        h("53 00 02 61 ff"),
        h("52 00 01 ff 01 61"),
        h("30 02 c3 a9 ff"),
    ],
)
def test_bad_utf8_in_strings(wire: bytes) -> None:
    with pytest.raises(HessianError):
        decode(wire)


def test_self_referencing_structures_decode() -> None:
    lst = decode(h("79 51 90"))
    assert isinstance(lst, list) and len(lst) == 1 and lst[0] is lst
    typed = decode(h("71 01 54 51 90"), typed=True)
    assert typed.type == "T" and typed[0] is typed
    m = decode(h("48 01 61 51 90 5a"))
    assert m["a"] is m
    obj = decode(h("43 01 54 92 01 61 01 62 60 51 90 7a 51 90 51 91"))
    assert obj["a"] is obj
    assert obj["b"][0] is obj and obj["b"][1] is obj["b"]


def test_reference_loops_do_not_hang() -> None:
    start = time.perf_counter()
    # a list of 50k references to itself
    v = decode(h("58 d4 c3 50") + h("51 90") * 50_000)
    assert len(v) == 50_000 and all(x is v for x in v[:10])
    # a map whose key is itself (unhashable) and whose value is itself
    pm = decode(h("48 51 90 51 90 5a"))
    assert pm is not None
    # two exceptions whose causes point at each other
    a = java_exception("java.lang.RuntimeException", "a")
    b = java_exception("java.lang.IllegalStateException", "b")
    a.fields["cause"] = b
    b.fields["cause"] = a
    decoded = decode(encode(a))
    exc = exception_from_value(decoded)
    assert exc.cls == "java.lang.RuntimeException"
    assert exc.cause is not None and exc.cause.cls == "java.lang.IllegalStateException"
    assert exc.cause.cause is None
    assert time.perf_counter() - start < 2.0


def test_many_class_definitions_use_O_beyond_15() -> None:
    wire = bytearray(h("58 c8 40"))  # 64 objects
    for i in range(64):
        wire += h("43 02") + f"{i:02d}".encode() + h("90")
        if i < 16:
            wire.append(0x60 + i)
        elif i < 48:
            wire += bytes([0x4F, 0x90 + i])
        else:
            wire += bytes([0x4F, 0xC8, i])
    v = decode(bytes(wire), typed=True)
    assert [o.cls for o in v] == [f"{i:02d}" for i in range(64)]


# ---- conversions of well-known classes with hostile field values ----------------------------

HOSTILE_HANDLES = {
    "localdate-year-huge": HessianObject(
        HL + "LocalDateHandle", {"year": Long(2**40), "month": Int(1), "day": Int(1)}
    ),
    "localtime-hour-huge": HessianObject(
        HL + "LocalTimeHandle",
        {"hour": Long(2**40), "minute": Int(0), "second": Int(0), "nano": Int(0)},
    ),
    "localtime-nano-huge": HessianObject(
        HL + "LocalTimeHandle",
        {"hour": Int(1), "minute": Int(0), "second": Int(0), "nano": Long(2**62)},
    ),
    "instant-seconds-nan": HessianObject(
        HL + "InstantHandle", {"seconds": float("nan"), "nanos": Int(0)}
    ),
}


@pytest.mark.parametrize("value", list(HOSTILE_HANDLES.values()), ids=list(HOSTILE_HANDLES))
def test_hostile_java_time_handles_stay_maps(value: HessianObject) -> None:
    try:
        got = decode(encode(value))
    except HessianError:
        return
    assert got["class"] == value.cls


@pytest.mark.parametrize(
    "value",
    [
        HessianObject(HL + "LocalDateHandle", {"year": Int(2024), "month": Int(13), "day": Int(1)}),
        HessianObject(HL + "LocalDateHandle", {"year": "x", "month": Int(1), "day": Int(1)}),
        HessianObject(HL + "LocalDateHandle", {"year": Int(2024)}),
        HessianObject(HL + "InstantHandle", {"seconds": Long(2**62), "nanos": Int(0)}),
        HessianObject(HL + "InstantHandle", {"seconds": "s", "nanos": Int(0)}),
        HessianObject("java.math.BigDecimal", {"value": None}),
        HessianObject("java.math.BigInteger", {"signum": "x", "mag": []}),
        HessianObject("java.math.BigInteger", {"signum": Int(1), "mag": ["x"]}),
        HessianObject("java.sql.Date", {"value": "x"}),
    ],
)
def test_malformed_well_known_objects_decode_as_maps(value: HessianObject) -> None:
    got = decode(encode(value))
    assert isinstance(got, dict) and got["class"] == value.cls


def test_biginteger_conversion_time_is_linear() -> None:
    big = HessianObject(
        "java.math.BigInteger",
        {"signum": Int(1), "mag": TypedList("[int", [Int(-1)] * 80_000)},
    )
    wire = encode(big)  # 80 KB
    start = time.perf_counter()
    decode(wire, typed=True)
    typed_time = time.perf_counter() - start
    start = time.perf_counter()
    value = decode(wire)
    plain_time = time.perf_counter() - start
    assert value == 2 ** (32 * 80_000) - 1
    assert plain_time < 0.5 + 20 * typed_time, (plain_time, typed_time)


def test_decoder_end_bounds_strings() -> None:
    dec = Decoder(h("03 61 62 63"), end=2)
    try:
        v = dec.read()
    except HessianError:
        return
    raise AssertionError(f"read {v!r} past end=2 (pos={dec.pos})")


def test_decoder_end_bounds_other_values() -> None:
    with pytest.raises(HessianError):
        Decoder(h("23 61 62 63"), end=2).read()
    with pytest.raises(HessianError):
        Decoder(h("03 c3 a9 62 63"), end=3).read()
    dec = Decoder(h("91 92 93"), pos=1, end=2)
    assert dec.read() == 2 and dec.at_end()


# =============================================================================================
# Dubbo2 framing
# =============================================================================================


def test_bad_magic() -> None:
    dec = FrameDecoder()
    with pytest.raises(DubboProtocolError, match="magic"):
        dec.feed(b"GET / HTTP/1.1\r\nHost: x\r\n")
    assert dec.buffered == 0
    with pytest.raises(DubboProtocolError, match="magic"):
        FrameDecoder().feed(pack_frame(0x02, 20, 1, b"N") + b"\x00" * 16)
    with pytest.raises(DubboProtocolError, match="magic"):
        unpack_header(b"\xda\xbc" + bytes(14))
    with pytest.raises(DubboProtocolError):
        unpack_header(b"\xda\xbb")


def test_partial_header_waits() -> None:
    dec = FrameDecoder()
    assert dec.feed(header(0x02, 20, 1, 1)[:15]) == []
    assert dec.buffered == 15
    assert dec.feed(header(0x02, 20, 1, 1)[15:] + b"N") == [Frame(0x02, 20, 1, b"N")]
    assert dec.buffered == 0


@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.parametrize("length", [-1, -(2**31)])
def test_negative_length(skip: bool, length: int) -> None:
    with pytest.raises(DubboProtocolError, match="negative"):
        FrameDecoder(skip_oversized=skip).feed(header(0x02, 20, 1, length))
    with pytest.raises(DubboProtocolError, match="negative"):
        unpack_header(header(0x02, 20, 1, length))


def test_unpack_header_fields() -> None:
    assert unpack_header(header(0xC2, 0, -5, 7) + b"rest") == (0xC2, 0, -5, 7)


def test_oversized_frame_raises_before_the_body_arrives() -> None:
    dec = FrameDecoder(max_payload=1024)
    with pytest.raises(DubboProtocolError, match="payload limit"):
        dec.feed(header(0x02, 20, 1, 1025))
    assert dec.buffered == 0
    tracemalloc.start()
    try:
        with pytest.raises(DubboProtocolError, match="payload limit"):
            FrameDecoder().feed(header(0xC2, 0, 1, 2**31 - 1))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024
    # exactly at the limit is fine
    body = b"x" * 1024
    assert FrameDecoder(max_payload=1024).feed(pack_frame(0x02, 20, 1, body))[0].body == body


def test_oversized_frame_is_skipped_and_the_next_one_decodes() -> None:
    nxt = pack_frame(0x02, 20, 2, b"\x94\x01a\x48\x5a")
    dec = FrameDecoder(max_payload=2000, skip_oversized=True)
    first = dec.feed(header(0x02, 20, 1, 5000) + b"y" * 100)
    assert first == [Frame(0x02, 20, 1, b"", oversize=5000)]
    assert dec.buffered == 0  # the body is never buffered
    assert dec.feed(b"y" * 2000) == []
    assert dec.buffered == 0
    got = dec.feed(b"y" * 2900 + nxt[:10])
    assert got == [] and dec.buffered == 10
    got = dec.feed(nxt[10:])
    assert got == [Frame(0x02, 20, 2, nxt[HEADER_LEN:])]
    res = decode_response(first[0])
    assert res.status == 90 and res.status_name == "CLIENT_ERROR"
    assert "5000" in (res.error or "")
    assert decode_response(got[0]).value == "a"
    # the same in a single chunk
    stream = header(0x02, 20, 1, 5000) + b"y" * 5000 + nxt
    frames = FrameDecoder(max_payload=2000, skip_oversized=True).feed(stream)
    assert [f.oversize for f in frames] == [5000, 0]
    assert frames[1].request_id == 2


def test_oversized_skip_memory_is_bounded() -> None:
    limit = 1 << 20
    dec = FrameDecoder(max_payload=limit, skip_oversized=True)
    chunk = b"z" * (1 << 20)
    tracemalloc.start()
    try:
        assert dec.feed(header(0x02, 20, 1, 4 * limit))[0].oversize == 4 * limit
        for _ in range(4):
            assert dec.feed(chunk) == []
            assert dec.buffered == 0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * limit
    assert not dec.mid_frame


def test_absurd_declared_length_is_not_skipped() -> None:
    """Skipping 2 GB would stall every call sharing the connection: refuse, so the
    client closes it and reconnects."""
    dec = FrameDecoder(max_payload=1024, skip_oversized=True)
    with pytest.raises(DubboProtocolError, match="exceeds the payload limit"):
        dec.feed(header(0x02, 20, 1, 2**31 - 1))


# =============================================================================================
# Dubbo2 bodies
# =============================================================================================


def _valid_request_body() -> bytes:
    frame = encode_request(
        1,
        "org.example.Svc",
        "call",
        "Ljava/lang/String;IJLcom/x/User;",
        ["w", Int(3), Long(4), HessianObject("com.x.User", {"id": Long(1), "name": "n"})],
        {"group": "g", "timeout": "1000"},
    )
    return frame[HEADER_LEN:]


def _valid_response_bodies() -> list[bytes]:
    out = []
    for data in (
        encode_response(1, "hello world"),
        encode_response(1, [1, {"a": Long(2)}], with_attachments=False),
        encode_response(1, None),
        encode_response(1, exception=java_exception("java.lang.RuntimeException", "x")),
    ):
        out.append(data[HEADER_LEN:])
    return out


def test_garbage_request_bodies_raise_only_protocol_error() -> None:
    rng = random.Random(99)
    base = _valid_request_body()
    assert decode_request_body(base).method == "call"
    times: list[float] = []
    outcomes = {"value": 0, "error": 0}
    for i in range(3000):
        data = _mutate(rng, base) if i % 3 else rng.randbytes(rng.randint(0, 80))
        outcomes[_only(lambda d=data: decode_request_body(d), DubboProtocolError, times)] += 1
    for cut in range(len(base)):
        _only(lambda d=base[:cut]: decode_request_body(d), DubboProtocolError, times)
    assert outcomes["error"] > 1000
    assert max(times) < 1.0 and sum(times) < 20.0


def test_garbage_response_bodies_raise_only_protocol_error() -> None:
    rng = random.Random(1234)
    bodies = _valid_response_bodies()
    times: list[float] = []
    outcomes = {"value": 0, "error": 0}
    for i in range(4000):
        body = _mutate(rng, rng.choice(bodies)) if i % 4 else rng.randbytes(rng.randint(0, 40))
        flag = rng.choice([0x02, 0x22, 0xE2, 0xA2])
        status = rng.choice([20, 20, 20, 40, 70, 80, 90, 100])
        frame = Frame(flag, status, i, body)
        outcomes[_only(lambda f=frame: decode_response(f), DubboProtocolError, times)] += 1
        outcomes[
            _only(lambda f=frame: decode_response(f, typed=True), DubboProtocolError, times)
        ] += 1
    assert outcomes["error"] > 1000 and outcomes["value"] > 1000
    assert max(times) < 1.0 and sum(times) < 20.0


@pytest.mark.parametrize("where", ["status-40-body", "flag-1-exception", "detailMessage"])
def test_response_with_huge_integer_raises_only_protocol_error(where: str) -> None:
    big = HessianObject(
        "java.math.BigInteger", {"signum": Int(1), "mag": TypedList("[int", [Int(-1)] * 500)}
    )
    if where == "status-40-body":
        frame = Frame(0x02, 40, 1, encode(big))
    elif where == "flag-1-exception":
        frame = Frame(0x02, 20, 1, h("90") + encode(big))
    else:
        exc = HessianObject("java.lang.RuntimeException", {"detailMessage": big})
        frame = Frame(0x02, 20, 1, h("90") + encode(exc))
    try:
        res = decode_response(frame)
    except DubboProtocolError:
        return
    assert res.status in (40, 20)


@pytest.mark.parametrize("flag_byte", ["96", "8f", "49 00 00 01 00", "e1"])
def test_unknown_response_flag(flag_byte: str) -> None:
    frame = Frame(0x02, 20, 1, h(flag_byte) + h("4e"))
    if flag_byte == "e1":
        # a long-tagged 1 is still flag 1 for Java's readByte -> readInt
        assert decode_response(frame).flag == 1
        return
    with pytest.raises(DubboProtocolError, match="unknown response flag"):
        decode_response(frame)


def test_response_flag_must_be_an_int() -> None:
    with pytest.raises(DubboProtocolError):
        decode_response(Frame(0x02, 20, 1, h("01 61")))
    with pytest.raises(DubboProtocolError):
        decode_response(Frame(0x02, 20, 1, b""))


@pytest.mark.parametrize(
    ("status", "name"),
    [
        (25, "SERIALIZATION_ERROR"),
        (40, "BAD_REQUEST"),
        (50, "BAD_RESPONSE"),
        (70, "SERVICE_ERROR"),
        (80, "SERVER_ERROR"),
        (90, "CLIENT_ERROR"),
        (100, "SERVER_THREADPOOL_EXHAUSTED_ERROR"),
    ],
)
def test_error_status_responses(status: int, name: str) -> None:
    message = f"Fail to decode request due to: status {status} é😀"
    data = encode_error_response(77, status, message)
    assert data[:4] == bytes([0xDA, 0xBB, 0x02, status])
    frame = one_frame(data)
    res = decode_response(frame)
    assert res.status == status and res.status_name == name
    assert res.error == message
    assert not res.ok and res.value is None and res.exception is None
    # a null message
    res = decode_response(Frame(0x02, status, 1, h("4e")))
    assert res.error is None and not res.ok
    # a non-string message is shown, not lost
    res = decode_response(Frame(0x02, status, 1, h("95")))
    assert res.error == "5"


def test_heartbeat_frames() -> None:
    data = encode_heartbeat(7)
    assert data == h("da bb e2 00 00 00 00 00 00 00 00 07 00 00 00 01 4e")
    frame = one_frame(data)
    assert frame.is_heartbeat and frame.is_event and frame.is_request and frame.is_twoway
    assert frame.serialization == 2
    reply = encode_heartbeat_response(7)
    assert reply == h("da bb 22 14 00 00 00 00 00 00 00 07 00 00 00 01 4e")
    rf = one_frame(reply)
    assert rf.is_heartbeat and not rf.is_request
    res = decode_response(rf)
    assert res.event and res.value is None and not res.ok
    # an event whose body is not null is not a heartbeat
    assert not Frame(0x22, 20, 1, h("01 52")).is_heartbeat
    # a non-event frame with body N is not a heartbeat
    assert not Frame(0x02, 20, 1, b"N").is_heartbeat


def test_readonly_event() -> None:
    data = encode_event(3)
    assert data == h("da bb a2 00 00 00 00 00 00 00 00 03 00 00 00 02 01 52")
    frame = one_frame(data)
    assert frame.is_event and frame.is_request and not frame.is_twoway
    assert not frame.is_heartbeat
    assert decode_response(frame).value == "R"
    assert decode_response(one_frame(encode_event(4, "W"))).value == "W"
    with pytest.raises(DubboProtocolError):
        decode_response(Frame(0xA2, 0, 1, h("05 52")))


def test_response_value_exact_bytes() -> None:
    data = encode_response(1, "hello world")
    assert data == h(
        "da bb 02 14 00 00 00 00 00 00 00 01 00 00 00 1b"
        "94 0b 68656c6c6f20776f726c64 48 05 647562626f 05 322e302e32 5a"
    )
    res = decode_response(one_frame(data))
    assert res.ok and res.flag == 4 and res.value == "hello world"
    assert res.attachments == {"dubbo": "2.0.2"}


EXC_BODY = (
    h("43 1f")
    + b"java.lang.IllegalStateException"
    + h("92 0d")
    + b"detailMessage"
    + h("05")
    + b"cause"
    + h("60 04")
    + b"boom"
    + h("51 90")
)


@pytest.mark.parametrize("typed", [False, True])
def test_response_flag_0_exception_with_self_cause(typed: bool) -> None:
    res = decode_response(Frame(0x02, 20, 9, h("90") + EXC_BODY), typed=typed)
    assert res.flag == 0 and not res.ok and res.value is None
    exc = res.exception
    assert isinstance(exc, JavaException)
    assert exc.cls == "java.lang.IllegalStateException"
    assert exc.message == "boom"
    assert exc.cause is None
    assert exc.to_json() == {"class": "java.lang.IllegalStateException", "message": "boom"}
    assert res.attachments == {}


def test_response_flags_0_to_5_with_encoder() -> None:
    exc = java_exception("java.lang.IllegalArgumentException", "bad arg")
    cases = [
        (encode_response(1, exception=exc, with_attachments=False), 0),
        (encode_response(1, [1, 2], with_attachments=False), 1),
        (encode_response(1, None, with_attachments=False), 2),
        (encode_response(1, exception=exc, attachments={"k": "v"}), 3),
        (encode_response(1, Long(5), attachments={"k": "v"}), 4),
        (encode_response(1, None, attachments={"k": "v"}), 5),
        (encode_response(1, "ignored", null=True), 5),
    ]
    for data, flag in cases:
        body = data[HEADER_LEN:]
        assert body[0] == 0x90 + flag
        res = decode_response(one_frame(data))
        assert res.flag == flag
        if flag in (0, 3):
            assert res.exception is not None and res.exception.cls.endswith("ArgumentException")
            assert res.exception.message == "bad arg" and res.exception.cause is None
            assert not res.ok
        else:
            assert res.ok and res.exception is None
        if flag == 1:
            assert res.value == [1, 2]
        if flag == 4:
            assert res.value == 5
        if flag in (2, 5):
            assert res.value is None
        if flag >= 3:
            assert res.attachments["dubbo"] == "2.0.2"
            assert res.attachments.get("k", "v") == "v"
        else:
            assert res.attachments == {}
    # the exception's cause is written as a reference to itself
    assert h("51 90") in encode_response(1, exception=exc)


def test_response_flags_handcrafted() -> None:
    att = h("48 01 6b 01 76 5a")
    assert decode_response(Frame(2, 20, 1, h("92"))).value is None
    res = decode_response(Frame(2, 20, 1, h("95") + att))
    assert res.flag == 5 and res.value is None and res.attachments == {"k": "v"}
    res = decode_response(Frame(2, 20, 1, h("93") + EXC_BODY + att))
    assert res.exception is not None and res.exception.message == "boom"
    assert res.attachments == {"k": "v"}
    res = decode_response(Frame(2, 20, 1, h("94 e5") + att), typed=True)
    assert res.value == 5 and type(res.value) is Long
    with pytest.raises(DubboProtocolError, match="attachments"):
        decode_response(Frame(2, 20, 1, h("94 e5 91")))
    with pytest.raises(DubboProtocolError):
        decode_response(Frame(2, 20, 1, h("94 e5")))  # attachments missing
    with pytest.raises(DubboProtocolError):
        decode_response(Frame(2, 20, 1, h("91")))  # value missing


def test_exception_cause_chain_and_generic_exception() -> None:
    outer = java_exception("java.lang.RuntimeException", "outer")
    inner = java_exception("java.lang.IllegalArgumentException", "inner")
    outer.fields["cause"] = inner
    res = decode_response(one_frame(encode_response(1, exception=outer)))
    assert res.exception is not None
    assert res.exception.to_json() == {
        "class": "java.lang.RuntimeException",
        "message": "outer",
        "cause": {"class": "java.lang.IllegalArgumentException", "message": "inner"},
    }
    gen = HessianObject(
        "com.alibaba.dubbo.rpc.service.GenericException",
        {
            "detailMessage": "com.x.BizException: no stock",
            "cause": None,
            "exceptionClass": "com.x.BizException",
            "exceptionMessage": "no stock",
        },
    )
    gen.fields["cause"] = gen
    for typed in (False, True):
        res = decode_response(one_frame(encode_response(1, exception=gen)), typed=typed)
        assert res.exception is not None
        assert res.exception.cls == "com.x.BizException"
        assert res.exception.message == "no stock"
    # a string or a scalar where a Throwable was expected is still reported
    res = decode_response(Frame(2, 20, 1, h("90 03 61 62 63")))
    assert res.exception is not None and res.exception.message == "abc"
    res = decode_response(Frame(2, 20, 1, h("90 95")))
    assert res.exception is not None and res.exception.cls == "java.lang.Throwable"


def test_request_body_generic_invoke() -> None:
    tpl = generic_template("com.x.Svc", attachments={"group": "g1"})
    data = tpl.frame(5, generic_args("sayHello", ["java.lang.String"], ["world"]))
    frame = one_frame(data)
    assert frame.flag == 0xC2 and frame.request_id == 5 and frame.is_twoway
    body = frame.body
    assert body.startswith(
        h("05 322e302e32 09")
        + b"com.x.Svc"
        + h("05 302e302e30 07")
        + b"$invoke"
        + h("30 38")
        + GENERIC_DESC.encode()
        + h("08")
        + b"sayHello"
        + h("71 07")
        + b"[string"
        + h("10")
        + b"java.lang.String"
        + h("71 07")
        + b"[object"
        + h("05")
        + b"world"
        + h("48")
    )
    inv = decode_request_body(body)
    assert inv.is_generic and inv.method == "$invoke" and inv.desc == GENERIC_DESC
    assert inv.args == ["sayHello", ["java.lang.String"], ["world"]]
    assert inv.group == "g1" and inv.version == "0.0.0" and inv.dubbo_version == "2.0.2"
    assert inv.attachments["generic"] == "true"
    assert inv.attachments["path"] == "com.x.Svc" == inv.attachments["interface"]
    typed = decode_request_body(body, typed=True)
    assert typed.args[1].type == "[string" and typed.args[2].type == "[object"
    # $invokeAsync is generic too; a mismatching descriptor is not
    assert decode_request_body(
        encode_request(1, "S", "$invokeAsync", GENERIC_DESC, ["m", None, []])[HEADER_LEN:]
    ).is_generic
    plain = encode_request(1, "S", "$invoke", "Ljava/lang/String;", ["m"])
    assert not decode_request_body(plain[HEADER_LEN:]).is_generic


def test_request_body_worked_example_prefix() -> None:
    data = encode_request(1, "org.example.Greeter", "sayHello", "Ljava/lang/String;", ["world"])
    assert data[:12] == h("da bb c2 00 00 00 00 00 00 00 00 01")
    assert data[HEADER_LEN:].startswith(
        h("05 32 2e 30 2e 32 13")
        + b"org.example.Greeter"
        + h("05 30 2e 30 2e 30 08")
        + b"sayHello"
        + h("12")
        + b"Ljava/lang/String;"
        + h("05")
        + b"world"
        + h("48")
    )
    oneway = encode_request(1, "S", "m", "", [], twoway=False)
    assert oneway[2] == 0x82


def test_request_body_errors() -> None:
    enc = Encoder()
    for s in ("2.0.2", "S", "0.0.0", "m", "I"):
        enc.write_string(s)
    enc.write_int(1)
    head = enc.getvalue()
    assert decode_request_body(head).attachments == {}  # no attachments map at all
    with pytest.raises(DubboProtocolError, match="attachments"):
        decode_request_body(head + h("91"))
    with pytest.raises(DubboProtocolError):
        decode_request_body(head[:-1])  # the argument is missing
    with pytest.raises(DubboProtocolError, match="null"):
        decode_request_body(h("05 322e302e32 4e 00 01 6d 00 48 5a"))
    with pytest.raises(DubboProtocolError):
        decode_request_body(h("05 322e302e32 01 53 00 01 6d 01 56"))  # V is not a parameter type
    with pytest.raises(DubboProtocolError):
        decode_request_body(h("91"))


def test_supports_response_attachments() -> None:
    assert supports_response_attachments("2.0.2") is True
    assert supports_response_attachments("2.0.99") is True
    assert supports_response_attachments("2.0.10") is True
    assert supports_response_attachments("2.5.3") is False
    assert supports_response_attachments("2.0.1") is False
    assert supports_response_attachments("2.0.100") is False
    assert supports_response_attachments("3.0.0") is False
    assert supports_response_attachments("") is False
    assert supports_response_attachments("x.y.z") is False


@pytest.mark.parametrize(
    "value",
    [
        [0] * 11,  # fixed-length list
        {i: i for i in range(11)},  # map
        [[1], [2, 3], [4, 5, 6], [7, 8, 9, 10]],  # nested lists add up
    ],
)
def test_decoder_element_budget_covers_every_container(value: object) -> None:
    """``max_elements`` counts every container entry at every depth, so a body of many tiny
    values is refused before it costs CPU per value; one under the budget decodes."""
    from tribridge.codecs.hessian2 import Decoder, HessianError, encode

    data = encode(value)
    with pytest.raises(HessianError, match="max_elements"):
        Decoder(data, max_elements=10).read()
    assert Decoder(data, max_elements=100).read() == value
