"""What exact JSON parsing costs: ``tribridge.invoke.jsonmap.loads`` vs bare ``orjson.loads``.

    .venv/bin/python bench/json_exact_bench.py        # ~10 s

Each cell is the best of 7 ``timeit`` runs, orjson and jsonmap alternating so load from
elsewhere hits both alike.  "fast" bodies never need the exact parser (the byte scan says
so); "exact" bodies hold a number a double would round and take the standard-library path.
"""

from __future__ import annotations

import gc
import timeit

import orjson
from tribridge.invoke.jsonmap import _may_lose_precision, loads

USER = {
    "id": 12345,
    "name": "Ada Lovelace",
    "tags": ["a", "b", "c"],
    "price": 12.5,
    "ts": 1700000000000,
    "nested": {"x": 1.25, "y": [1, 2, 3, 4, 5]},
}
BODIES: list[tuple[str, bytes]] = [
    ("fast: one string arg", b'["world"]'),
    ("fast: demo addLong", b"[9007199254740993, 1]"),
    ("fast: 5 objects, 0.6 KB", orjson.dumps([USER] * 5)),
    (
        "fast: 19-digit ids, 1 KB",
        orjson.dumps([{"id": 1834567890123456789 + i} for i in range(40)]),
    ),
    (
        "fast: 10 KB, strings + ints",
        orjson.dumps([{"name": "x" * 200, "v": list(range(100))}] * 20),
    ),
    ("exact: >64-bit int", b"[123456789012345678901234567890, 1]"),
    (
        "exact: 5 objects + long decimal",
        orjson.dumps([USER] * 5)[:-1] + b", 0.12345678901234567890]",
    ),
]


def best(fn: object, n: int) -> float:
    return min(timeit.repeat(fn, number=n, repeat=1)) / n * 1e6  # type: ignore[arg-type]


def main() -> None:
    gc.disable()
    print(f"{'body':34} {'bytes':>6} {'orjson µs':>10} {'loads µs':>9} {'extra µs':>9}  path")
    for name, body in BODIES:
        assert loads(body) is not None
        n = max(200, 200_000 // max(len(body), 1))
        a = b = float("inf")
        for _ in range(7):
            a = min(a, best(lambda body=body: orjson.loads(body), n))
            b = min(b, best(lambda body=body: loads(body), n))
        path = "exact" if _may_lose_precision(body) else "orjson"
        print(f"{name:34} {len(body):6d} {a:10.2f} {b:9.2f} {b - a:9.2f}  {path}")


if __name__ == "__main__":
    main()
