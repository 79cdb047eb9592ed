"""JSON -> hessian coercion (``coercion.coerce`` / ``infer``), compiled against pure Python.

The gateway turns every JSON argument into the exact Java value its declared type asks for
before it encodes anything; for POJO-heavy calls that costs more than the encoding itself.
Both implementations run in one process (``_accel.pure_twins``), the two sides of a row
alternating, each cell the best of ``--repeat`` ``timeit`` runs of about ``--budget`` s (gc
off, as timeit does).  ``--profile`` prints a cProfile of the pure side instead.

    .venv/bin/python bench/coerce_bench.py [--budget 0.1] [--repeat 5] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import timeit
from collections.abc import Callable
from types import ModuleType
from typing import Any

from tribridge.codecs import _accel
from tribridge.codecs.hessian2 import coercion, javatypes

JT = "tribridge.codecs.hessian2.javatypes"
CO = "tribridge.codecs.hessian2.coercion"
USER = "com.tribridge.demo.User"
USER_FIELDS = [
    ("id", "long"),
    ("name", "java.lang.String"),
    ("age", "int"),
    ("score", "double"),
    ("active", "boolean"),
    ("email", "java.lang.String"),
]


def user(i: int) -> dict[str, Any]:
    return {"id": 12345678900 + i, "name": f"user{i}", "age": 30, "score": 98.5,
            "active": True, "email": f"u{i}@example.com"}  # fmt: skip


def cases(mods: dict[str, ModuleType]) -> dict[str, Callable[[], Any]]:
    """The rows, built from one implementation's own types and registry."""
    jt, co = mods[JT], mods[CO]
    reg = jt.TypeRegistry([jt.PojoDef(USER, [(n, jt.parse_type(t)) for n, t in USER_FIELDS])])
    one, many = user(1), [user(i) for i in range(100)]
    string, pojo = jt.parse_type("java.lang.String"), jt.parse_type(USER)
    pojos = jt.parse_type(f"java.util.List<{USER}>")
    longs = jt.parse_type("java.util.Map<String, java.util.List<Long>>")
    lmap = {f"k{i}": list(range(10)) for i in range(10)}
    c = co.coerce
    return {
        "String 'world' (the bench route)": lambda: c("world", string, "args[0]", registry=reg),
        "User (6 fields)": lambda: c(one, pojo, "args[0]", registry=reg),
        "User, generic ($invoke map)": lambda: c(one, pojo, "args[0]", generic=True, registry=reg),
        "List<User> x100": lambda: c(many, pojos, "args[0]", registry=reg),
        "Map<String, List<Long>> 10 x 10": lambda: c(lmap, longs, "args[0]", registry=reg),
        "infer (untyped) User-like object": lambda: co.infer(one, "args[0]", True, reg),
        "parse_type Map<String, List<Long>>": lambda: jt.parse_type(
            "java.util.Map<String, java.util.List<Long>>"
        ),
    }


def best(fn: Callable[[], Any], budget: float) -> tuple[float, int]:
    """µs per call of one timeit run of about ``budget`` seconds, and its loop count."""
    n, _ = timeit.Timer(fn).autorange()
    n = max(1, int(n * budget / 0.2))
    return timeit.timeit(fn, number=n) / n * 1e6, n


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=0.1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    if {_accel.implementation_of(m) for m in (javatypes, coercion)} != {"compiled"}:
        raise SystemExit("javatypes / coercion are not compiled here: run scripts/setup.sh")
    pure = _accel.pure_twins()
    sides = {"compiled": cases({JT: javatypes, CO: coercion}), "pure": cases(pure)}
    if args.profile:
        fn = sides["pure"]["List<User> x100"]
        prof = cProfile.Profile()
        prof.runcall(lambda: [fn() for _ in range(200)])
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)
        return 0
    print(f"{'operation':40} {'compiled µs':>12} {'pure µs':>9} {'pure/compiled':>14}")
    for row in sides["compiled"]:
        out: dict[str, float] = {}
        for _ in range(args.repeat):
            for side, table in sides.items():
                us, _ = best(table[row], args.budget)
                out[side] = min(out.get(side, us), us)
        print(f"{row:40} {out['compiled']:12.2f} {out['pure']:9.2f} "
              f"{out['pure'] / out['compiled']:14.2f}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
