#!/usr/bin/env python3
"""Render docs/compatibility.md from a run of the Java compatibility tests.

    TRIBRIDGE_COMPAT_JSON=/tmp/compat.json .venv/bin/python -m pytest -p no:cacheprovider \\
        tests/interop/test_java_matrix.py tests/interop/test_java_types.py
    .venv/bin/python scripts/compat_matrix.py /tmp/compat.json > docs/compatibility.md

The JSON is written by tests/conftest.py (one entry per test: outcome, seconds, calls); the
cell list and the known differences come from tests/interop/test_java_matrix.py itself, so a cell
that was not run shows as such instead of disappearing.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.java_compat import (  # noqa: E402
    BARE_BIGDECIMAL_ROWS,
    BARE_ROWS,
    PRECISION_ROWS,
    ROWS,
    TARGETS,
)
from tests.interop.test_java_matrix import (  # noqa: E402
    DIFFERENCES,
    DOORS,
    PENDING,
    _cells,
    group_cells,
    pending_reason,
)

DISCOVERY = {
    "direct": "direct address",
    "zk-interface": "ZooKeeper, interface-level",
    "zk-app": "ZooKeeper, application-level (MetadataService)",
    "nacos-interface": "Nacos (emulator), interface-level",
    "nacos-app": "Nacos (emulator), application-level",
}
DOOR = {
    "http-route": "HTTP explicit route",
    "http-auto": "HTTP auto route",
    "cli": "`tribridge call`",
    "java-ingress": "Java consumer → Dubbo2 ingress",
    "java-relay": "Java consumer → gateway A → relay → gateway B",
}
COMMAND = """TRIBRIDGE_COMPAT_JSON=/tmp/compat.json .venv/bin/python -m pytest -p no:cacheprovider \\
    tests/interop/test_java_matrix.py tests/interop/test_java_types.py
.venv/bin/python scripts/compat_matrix.py /tmp/compat.json > docs/compatibility.md"""


def _pom_version(module: str, prop: str) -> str:
    text = (ROOT / "interop" / "java" / module / "pom.xml").read_text()
    m = re.search(rf"<{prop}>([^<]+)</{prop}>", text)
    return m.group(1) if m else "?"


def _param(test_id: str) -> str:
    return test_id[test_id.index("[") + 1 : -1]


def render(data: dict[str, Any]) -> str:
    results: dict[str, dict[str, Any]] = {}
    for r in data["results"]:
        results[r["test"].split("::", 1)[1]] = r
    meta = data.get("meta", {})
    out: list[str] = []
    w = out.append
    w("# Compatibility with Apache Dubbo (Java)\n")
    w("Generated from one test run against real Apache Dubbo processes (our own services in")
    w("`interop/java/`, built from Maven Central by `scripts/setup.sh`, run in a network namespace")
    w("the tests create). Regenerate with:\n")
    w("```sh\n" + COMMAND + "\n```\n")
    w("## Versions\n")
    w("| peer | version |\n|---|---|")
    w(
        f"| Apache Dubbo 3.3 line | {_pom_version('dubbo33', 'dubbo.version')} (curator 5.1, ZooKeeper client 3.8) |"
    )
    w(
        f"| Apache Dubbo 2.7 line | {_pom_version('dubbo27', 'dubbo.version')} (curator 4.2, ZooKeeper client 3.5) |"
    )
    w("| ZooKeeper server | 3.8 (Debian) |")
    for key, p in sorted(meta.get("providers", {}).items()):
        ports = ", ".join(f"{k} :{v}" for k, v in p["ports"].items())
        w(f"| provider `{key}` | Dubbo {p['dubbo']} ({ports}) |")
    if "startup_seconds" in meta:
        w(f"\nStarting every JVM (5 providers, 2 consumers, 3 ZooKeeper servers, the Nacos emulator): "
          f"{meta['startup_seconds']} s of this run.\n")  # fmt: skip

    def cell_mark(test_id: str, diff_key: str) -> str:
        if diff_key in DIFFERENCES:
            return "✗ difference"
        r = results.get(test_id)
        if r is None:
            return "not run"
        calls = r["properties"].get("calls")
        n = f" ({calls} checks)" if calls else ""
        if r["outcome"] == "passed":
            return "✓" + n
        why = pending_reason(test_id)
        return f"✗ pending ({why})" if why else f"✗ {r['outcome']}"

    w("## Matrix\n")
    w("Each cell is one test making several representative calls (POJOs with BigDecimal, dates,")
    w("enums and nested objects; long precision; checked, unchecked and JDK exceptions;")
    w("attachments both ways; 1 MB payloads; a timeout; void; CompletableFuture; null returns;")
    w("for the Java consumer doors, 29 checks compared in Java).\n")
    header = "| provider and protocol | discovery | " + " | ".join(DOOR[d] for d in DOORS) + " |"
    w(header)
    w("|" + "---|" * (len(DOORS) + 2))
    rows: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    passed = total = 0
    for c in _cells():
        mark = cell_mark(f"test_cell[{c.id}]", c.id)
        rows[(c.target, c.discovery)][c.door] = mark
        total += 1
        passed += mark.startswith("✓")
    for (target, disc), doors in rows.items():
        w(
            f"| {target} | {DISCOVERY[disc]} | "
            + " | ".join(doors.get(d, "—") for d in DOORS)
            + " |"
        )
    w(f"\n**{passed} of {total} cells pass.**\n")

    w("## One interface in two groups and two versions on one port\n")
    gdoors = ("http-auto", "cli", "java-ingress", "java-relay")
    w("| provider and protocol | discovery | " + " | ".join(DOOR[d] for d in gdoors) + " |")
    w("|" + "---|" * (len(gdoors) + 2))
    grows: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    gp = gt = 0
    for c in group_cells():
        mark = cell_mark(f"test_groups_and_versions[{c.id}]", f"groups:{c.id}")
        grows[(c.target, c.discovery)][c.door] = mark
        gt += 1
        gp += mark.startswith("✓")
    for (target, disc), doors in grows.items():
        w(
            f"| {target} | {DISCOVERY[disc]} | "
            + " | ".join(doors.get(d, "—") for d in gdoors)
            + " |"
        )
    w(f"\n**{gp} of {gt} cells pass.**\n")

    w("## Every type row (tests/interop/test_java_types.py)\n")
    w("HTTP/JSON → tribridge (configured signatures) → provider, which echoes; rows are the")
    w("README's JSON ⇄ Java table and more (see `tests/helpers/java_compat.py`).\n")
    w("A *bare* gateway has no signature configured: types come from `x-tribridge-types`, the")
    w("`class` of objects and inference (`BARE_ROWS`).\n")
    w("*Exact numbers*: integers beyond 64 bits and high-precision decimals in `BigInteger`,")
    w("`BigDecimal` and `Object` slots (`PRECISION_ROWS`). *Untyped BigDecimal*: a POJO's")
    w("`BigDecimal` field on a bare gateway, and the `{\"class\": \"java.math.BigDecimal\",")
    w("\"value\": …}` form (`BARE_BIGDECIMAL_ROWS`).\n")
    w(
        "| provider and protocol | rows passed | bare-gateway rows passed | exact-number rows "
        "| untyped BigDecimal rows |\n|---|---|---|---|---|"
    )

    def count(test: str, rows: list[Any], t: Any) -> int:
        return sum(
            1 for r in rows if results.get(f"{test}[{r.id}-{t.id}]", {}).get("outcome") == "passed"
        )

    for t in TARGETS:
        w(
            f"| {t.id} | {count('test_type_row', ROWS, t)} of {len(ROWS)} "
            f"| {count('test_bare_row', BARE_ROWS, t)} of {len(BARE_ROWS)} "
            f"| {count('test_precision_row', PRECISION_ROWS, t)} of {len(PRECISION_ROWS)} "
            f"| {count('test_bare_bigdecimal_row', BARE_BIGDECIMAL_ROWS, t)} of "
            f"{len(BARE_BIGDECIMAL_ROWS)} |"
        )
    w("")
    waiting = sorted(
        {pending_reason(t) for t, r in results.items() if r["outcome"] != "passed"} - {None}
    )
    if waiting:
        w("## Pending: tribridge fixes in flight\n")
        w("These tests fail on this run and pass once the named fix merges:\n")
        for k in waiting:
            w(f"- ({k}) {PENDING[k]}.")
        w("")
    bad = [t for t, r in results.items() if r["outcome"] != "passed" and not pending_reason(t)]
    if bad:
        w("## Failing for another reason\n")
        w("\n".join(f"- `{t}`" for t in bad) + "\n")
    if DIFFERENCES:
        w("## Differences not fixed\n")
        seen: dict[str, list[str]] = defaultdict(list)
        for cell, why in DIFFERENCES.items():
            seen[why].append(cell)
        for why, cells in seen.items():
            w(f"- {', '.join(f'`{c}`' for c in cells)}: {why}.")
        w("")
    return "\n".join(out)


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    data = json.loads(Path(sys.argv[1]).read_text())
    sys.stdout.write(render(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
