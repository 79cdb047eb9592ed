"""Fail on any import cycle among tribridge's production modules (docs/architecture.md).

Run by ``scripts/check_layers.sh`` on its throw-away regular install (grimp, like
import-linter, finds a package by its folder; ours are mapped).  The graph is grimp's: every
``import`` in a module counts, wherever it stands — at the top, inside a function, or under
``if TYPE_CHECKING`` — because each one ties the two modules together: neither can be read,
tested or changed alone.  A back reference that only needs a type is a ``typing.Protocol``
on the side that uses it.  ``tribridge.interop`` (test peers) is left out of the graph.

A cycle is reported as its strongly connected component (every module that can reach every
other through imports), with one shortest loop and the import lines that make it.

There is no allowlist: the redesign (issue 16) removed the last cycle, and a new one fails
the check.
"""

from __future__ import annotations

import argparse
import sys
from collections import deque
from collections.abc import Iterable, Mapping
from itertools import pairwise

PACKAGE = "tribridge"
#: test peers: production never imports them (import-linter contract), so they stay out
EXCLUDED = ("tribridge.interop",)

Graph = Mapping[str, frozenset[str]]


def production_graph(
    graph: object, excluded: Iterable[str] = EXCLUDED
) -> dict[str, frozenset[str]]:
    """``{module: modules it imports}`` from a grimp ``ImportGraph``, test peers removed."""
    skip = tuple(excluded)

    def keep(m: str) -> bool:
        return not any(m == e or m.startswith(e + ".") for e in skip)

    mods = {m for m in graph.modules if keep(m)}  # type: ignore[attr-defined]
    return {
        m: frozenset(graph.find_modules_directly_imported_by(m) & mods)  # type: ignore[attr-defined]
        for m in mods
    }


def cycles(graph: Graph) -> list[frozenset[str]]:
    """Strongly connected components with more than one module, or a module importing itself
    (Tarjan's algorithm, iterative: no recursion limit to hit on a long chain)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[frozenset[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = set()
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.add(m)
                    if m == node:
                        break
                if len(comp) > 1 or node in graph[node]:
                    out.append(frozenset(comp))
    return sorted(out, key=lambda c: sorted(c))


def shortest_loop(graph: Graph, component: frozenset[str]) -> list[str]:
    """One shortest import loop through the component's first module (breadth first)."""
    start = min(component)
    prev: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(graph[node] & component):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(prev[path[-1]])
                return [*reversed(path), start]
            if nxt not in prev:
                prev[nxt] = node
                queue.append(nxt)
    return [start]


def _describe(graph: object, loop: list[str]) -> str:
    lines = []
    for a, b in pairwise(loop):
        details = graph.get_import_details(importer=a, imported=b)  # type: ignore[attr-defined]
        where = ", ".join(f"line {d['line_number']}: {d['line_contents']}" for d in details)
        lines.append(f"    {a} -> {b}  ({where})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    import grimp  # the checker's one dependency (installed with import-linter)

    graph = grimp.build_graph(PACKAGE, cache_dir=None)
    prod = production_graph(graph)
    found = cycles(prod)
    for comp in found:
        print(f"import cycle among {len(comp)} modules: {' '.join(sorted(comp))}")
        print(_describe(graph, shortest_loop(prod, comp)))
    if found:
        return 1
    print(f"import cycles: none among {len(prod)} production modules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
