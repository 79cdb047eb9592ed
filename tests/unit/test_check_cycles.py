"""scripts/check_cycles.py: components and the loops it reports."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import grimp

_spec = importlib.util.spec_from_file_location(
    "check_cycles", Path(__file__).parents[2] / "scripts" / "check_cycles.py"
)
assert _spec is not None and _spec.loader is not None
cc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cc)


def _graph(*edges: str) -> grimp.ImportGraph:
    g = grimp.ImportGraph()
    for edge in edges:
        a, b = edge.split(">")
        g.add_import(importer=a, imported=b)
    return g


def test_components_and_a_shortest_loop() -> None:
    g = _graph("t.a>t.b", "t.b>t.c", "t.c>t.a", "t.c>t.d", "t.d>t.e", "t.e>t.d", "t.f>t.a")
    prod = cc.production_graph(g, excluded=())
    found = cc.cycles(prod)
    assert found == [frozenset({"t.a", "t.b", "t.c"}), frozenset({"t.d", "t.e"})]
    assert cc.shortest_loop(prod, found[0]) == ["t.a", "t.b", "t.c", "t.a"]
    assert cc.shortest_loop(prod, found[1]) == ["t.d", "t.e", "t.d"]


def test_acyclic_and_excluded_modules() -> None:
    g = _graph("t.a>t.b", "t.b>t.c", "t.a>t.c", "t.c>t.interop.x", "t.interop.x>t.a")
    assert cc.cycles(cc.production_graph(g, excluded=())) == [
        frozenset({"t.a", "t.b", "t.c", "t.interop.x"})
    ]
    assert cc.cycles(cc.production_graph(g, excluded=("t.interop",))) == []


def test_self_import_is_a_cycle() -> None:
    assert cc.cycles(cc.production_graph(_graph("t.a>t.a"), excluded=())) == [frozenset({"t.a"})]


def test_a_long_chain_needs_no_recursion() -> None:
    n = 5000
    edges = [f"t.m{i}>t.m{i + 1}" for i in range(n)] + [f"t.m{n}>t.m0"]
    (comp,) = cc.cycles(cc.production_graph(_graph(*edges), excluded=()))
    assert len(comp) == n + 1
