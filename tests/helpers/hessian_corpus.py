"""The interop corpus: typed values across every hessian2 tag family and its edges.

Each entry is ``(name, value, canonical)``; ``canonical`` says Java's bytes are fixed for
this value (so ours must equal them), otherwise only values are compared (binary chunking,
HashMap/HashSet iteration order are free choices).
"""

from __future__ import annotations

import datetime as dt
import math
import random
from typing import Any

from tribridge.codecs.hessian2 import HessianObject, Int, Long, TypedList, TypedMap

INT_EDGES = [
    -(2**31),
    -(2**31) + 1,
    -262145,
    -262144,
    -262143,
    -2049,
    -2048,
    -2047,
    -17,
    -16,
    -15,
    -1,
    0,
    1,
    46,
    47,
    48,
    255,
    256,
    2047,
    2048,
    262143,
    262144,
    2**31 - 2,
    2**31 - 1,
]
LONG_EDGES = [
    -(2**63),
    -(2**63) + 1,
    -(2**31) - 1,
    -(2**31),
    -262145,
    -262144,
    -262143,
    -2049,
    -2048,
    -2047,
    -9,
    -8,
    -7,
    -1,
    0,
    1,
    14,
    15,
    16,
    2047,
    2048,
    262143,
    262144,
    2**31 - 1,
    2**31,
    2**53 + 1,
    2**63 - 1,
]
DOUBLE_EDGES = [
    0.0,
    1.0,
    -1.0,
    2.0,
    127.0,
    128.0,
    -128.0,
    -129.0,
    32767.0,
    32768.0,
    -32768.0,
    -32769.0,
    0.5,
    1.5,
    -1.5,
    0.001,
    -0.001,
    12.345,
    2147483.647,
    -2147483.648,
    2147483.648,
    0.1,
    0.2,
    1e-3 * 7,
    65536.0,
    1e10,
    1e300,
    -1e-300,
    5e-324,
    1.7976931348623157e308,
    math.pi,
    -math.e,
    123456.789,
    3.0e9,
    float("inf"),
    float("-inf"),
]
STRING_LENGTHS = [
    0,
    1,
    31,
    32,
    33,
    1023,
    1024,
    1025,
    4096,
    32767,
    32768,
    32769,
    65535,
    65536,
    65537,
]
BINARY_LENGTHS = [
    0,
    1,
    15,
    16,
    17,
    1023,
    1024,
    1025,
    4093,
    4096,
    8189,
    32768,
    65535,
    65536,
    100_000,
]
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

P = "com.tribridge.interop."


def _date(ms: int) -> dt.datetime:
    return EPOCH + dt.timedelta(milliseconds=ms)


def user(i: int) -> HessianObject:
    # Caucho writes java.lang.* and primitive fields first, then the rest.
    return HessianObject(
        P + "User",
        {
            "id": Long(1000 + i),
            "name": f"user-{i}",
            "age": Int(20 + i),
            "score": 1.5 * i,
            "active": i % 2 == 0,
            "created": _date(1_700_000_000_000 + i * 60_000),
            "tags": ["a", f"t{i}"],
            "attrs": None,
        },
    )


def corpus() -> list[tuple[str, Any, bool]]:
    out: list[tuple[str, Any, bool]] = []
    add = out.append
    add(("null", None, True))
    add(("true", True, True))
    add(("false", False, True))
    for v in INT_EDGES:
        add((f"int {v}", Int(v), True))
    for v in LONG_EDGES:
        add((f"long {v}", Long(v), True))
    for v in DOUBLE_EDGES:
        add((f"double {v!r}", v, True))
    rnd = random.Random(7)
    alphabet = "aZ09 é—中\u07ff\u0800\uffff😀𝄞\U0010ffff"
    for i in range(30):
        n = rnd.choice([1, 5, 31, 32, 200, 1023, 1024, 5000, 33000])
        add((f"random unicode {i}", "".join(rnd.choice(alphabet) for _ in range(n)), True))
        add((f"random date {i}", _date(rnd.randint(-(2**40), 2**42)), True))
    for _ in range(30):
        add(("int random", Int(rnd.randint(-(2**31), 2**31 - 1)), True))
        add(("long random", Long(rnd.randint(-(2**63), 2**63 - 1)), True))
        add(("double random", rnd.uniform(-1e6, 1e6), True))
    for n in STRING_LENGTHS:
        add((f"ascii string {n}", "".join(chr(97 + i % 26) for i in range(n)), True))
    for n in [1, 31, 32, 1023, 1024, 32768, 32769]:
        add((f"latin/cjk string {n}", ("é中" * n)[:n], True))
    # non-BMP characters straddling the 32k chunk boundary (units 32767/32768)
    for pad in (32766, 32767, 32768):
        add((f"emoji at unit {pad}", "a" * pad + "😀" + "b" * 5, True))
    add(("emoji string 20000", "😀" * 20000, True))
    add(("mixed unicode", "a😀b—ü\u0000\u07ff\u0800\uffff𝄞", True))
    for n in BINARY_LENGTHS:
        add((f"binary {n}", bytes((i * 7) & 0xFF for i in range(n)), n <= 1023))
    for ms in [
        0,
        60_000,
        -60_000,
        1_700_000_000_000,
        1_700_000_000_123,
        -1,
        2**31 * 60_000,
        253_402_300_799_999,
        1_699_999_980_000,
    ]:
        add((f"date {ms}", _date(ms), True))
    # lists
    add(("empty untyped list", [], True))
    for n in (1, 7, 8, 9, 100):
        add((f"untyped list {n}", [Int(i) for i in range(n)], True))
    for n in (0, 1, 7, 8, 300):
        add((f"int[] {n}", TypedList("[int", [Int(i - 3) for i in range(n)]), True))
    add(("long[]", TypedList("[long", [Long(v) for v in LONG_EDGES]), True))
    add(("double[]", TypedList("[double", [1.5, 0.0, -2.25]), True))
    add(("boolean[]", TypedList("[boolean", [True, False, True]), True))
    add(("String[]", TypedList("[string", ["a", "", "😀"]), True))
    add(("String[] 9", TypedList("[string", [str(i) for i in range(9)]), True))
    add(("Object[]", TypedList("[object", [Int(1), "x", None, Long(2), 2.5]), True))
    add(("nested lists", [[Int(1), [Int(2), []]], [], ["x"]], True))
    add(("int[][]", TypedList("[[int", [TypedList("[int", [Int(1)]), TypedList("[int", [])]), True))
    add(("HashSet", TypedList("java.util.HashSet", [Int(1), Int(2), Int(3)]), False))
    add(
        (
            "type refs reused",
            [
                TypedList("[int", [Int(1)]),
                TypedList("[int", [Int(2)]),
                TypedList("[string", ["x"]),
                TypedList("[int", []),
            ],
            True,
        )
    )
    # maps
    add(("empty map", {}, True))
    add(("string map", {"a": Int(1)}, True))
    add(("map int keys", {Int(1): "one"}, True))
    add(("map long key", {Long(5): Long(6)}, True))
    add(("map null value", {"k": None}, True))
    add(
        (
            "LinkedHashMap",
            TypedMap("java.util.LinkedHashMap", {"z": Int(1), "a": Int(2), "m": Int(3)}),
            True,
        )
    )
    add(("TreeMap", TypedMap("java.util.TreeMap", {"a": Int(1), "b": Int(2)}), True))
    add(("map of lists", {"xs": [Int(1), Int(2)]}, True))
    add(("HashMap several", {f"k{i}": Int(i) for i in range(10)}, False))
    # objects
    for i in range(3):
        add((f"User {i}", user(i), True))
    add(("list of 20 users", [user(i) for i in range(20)], True))
    home = HessianObject(P + "Address", {"city": "Berlin", "street": "Main", "zip": Int(10115)})
    add(
        (
            "Person shared address",
            HessianObject(P + "Person", {"name": "Ada", "home": home, "work": home}),
            True,
        )
    )
    other = HessianObject(P + "Address", {"city": "Oslo", "street": "Side", "zip": Int(1)})
    add(
        (
            "Person distinct addresses",
            HessianObject(P + "Person", {"name": "Bob", "home": home, "work": other}),
            True,
        )
    )
    root = HessianObject(P + "TreeNode", {"name": "root", "parent": None, "children": None})
    child = HessianObject(P + "TreeNode", {"name": "child", "parent": root, "children": []})
    root.fields["children"] = [child]
    add(("TreeNode cycle", root, True))
    add(("enum RED", HessianObject(P + "Color", {"name": "RED"}), True))
    add(
        (
            "enums in list",
            [
                HessianObject(P + "Color", {"name": "GREEN"}),
                HessianObject(P + "Color", {"name": "BLUE"}),
            ],
            True,
        )
    )
    # shared / cyclic references in plain containers
    shared = {"s": Int(1)}
    add(("shared map", [shared, shared, shared], True))
    selfref: list[Any] = [Int(1)]
    selfref.append(selfref)
    add(("self-referencing list", selfref, True))
    m: dict[Any, Any] = {"me": None}
    m["me"] = m
    add(("self-referencing map", m, True))
    return out
