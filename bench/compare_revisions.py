"""Two git revisions of tribridge against the same provider, alternating rounds, in one run.

Each revision is exported (``git archive``: a throw-away tree, nothing added to the repository's
worktree list) and installed as a regular package, its compiled codecs built
(``TRIBRIDGE_REQUIRE_COMPILED=1`` where the revision has them; an older revision without
``setup.py`` installs pure Python, and the header says which), into
``build/bench-revisions/<commit>/site`` (kept: the next run of the same commit reuses it).
Then ``bench/gateway_peers.py`` runs both as variants (``--tribridge NAME=SITE``, same
interpreter and dependencies, ``PYTHONPATH`` pointing at the revision's install) in front of
the one Java Dubbo provider, rounds alternating, and this script prints throughput and gateway
CPU µs per request of each and the ratios (B / A).

    .venv/bin/python bench/compare_revisions.py main~1 main            # ~2 min plus builds
    .venv/bin/python bench/compare_revisions.py A B --phases throughput,latency --rounds 5

As root (``gateway_peers.py`` runs in a network namespace of its own).  Arguments after the two
revisions go to ``gateway_peers.py`` (``--seconds``, ``--rounds``,
``--phases``, ``--access-log``, ...); the default phase here is ``throughput``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CACHE = ROOT / "build" / "bench-revisions"


def commit_of(rev: str) -> str:
    r = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", f"{rev}^{{commit}}"],
                       capture_output=True, text=True, timeout=30)  # fmt: skip
    if r.returncode != 0:
        raise SystemExit(f"not a revision: {rev!r} ({r.stderr.strip()})")
    return r.stdout.strip()


def site_for(commit: str) -> Path:
    """The revision installed into its own folder (built once per commit)."""
    site = CACHE / commit / "site"
    done = CACHE / commit / "complete"
    if done.exists():
        return site
    shutil.rmtree(CACHE / commit, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="tribridge-rev-") as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", commit],
                                 capture_output=True, timeout=120, check=True).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, timeout=120, check=True)
        env = {**os.environ, "TRIBRIDGE_REQUIRE_COMPILED": "1", "CFLAGS": "-g0"}
        env.pop("TRIBRIDGE_PURE_PYTHON", None)
        print(f"building {commit[:12]} into {site} ...", flush=True)
        subprocess.run([PY, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                        "--target", str(site), tmp], env=env, timeout=1200, check=True)  # fmt: skip
    done.write_text(commit + "\n")
    return site


def main() -> int:
    ap = argparse.ArgumentParser(usage="%(prog)s REV_A REV_B [gateway_peers.py options]")
    ap.add_argument("a")
    ap.add_argument("b")
    args, rest = ap.parse_known_args()
    commits = [commit_of(args.a), commit_of(args.b)]
    if commits[0] == commits[1]:
        raise SystemExit(f"{args.a} and {args.b} are the same commit")
    names = [f"{label}-{c[:8]}" for label, c in zip("AB", commits, strict=True)]
    sites = [site_for(c) for c in commits]
    if not any(re.match(r"--phases\b", r) for r in rest):
        rest = ["--phases", "throughput", *rest]
    with tempfile.TemporaryDirectory(prefix="tribridge-cmp-") as tmp:
        out = Path(tmp) / "results.json"
        cmd = [PY, str(ROOT / "bench" / "gateway_peers.py"), "--only", ",".join(names),
               *(f"--tribridge={n}={s}" for n, s in zip(names, sites, strict=True)),
               "--json", str(out), *rest]  # fmt: skip
        print(f"A = {args.a} ({commits[0][:12]}), B = {args.b} ({commits[1][:12]})", flush=True)
        r = subprocess.run(cmd, timeout=3600)
        if r.returncode != 0 or not out.exists():
            return r.returncode or 1
        results = json.loads(out.read_text())
    med = statistics.median
    print("\nB / A (medians of rounds):")
    for phase in ("throughput", "workers2"):
        if phase in results:
            a, b = (results[phase][n] for n in names)
            print(f"  {phase}: req/s {med(b['rps']) / med(a['rps']):.3f}, "
                  f"CPU µs/request {med(b['cpu_us']) / med(a['cpu_us']):.3f} "
                  f"({med(a['cpu_us']):.1f} -> {med(b['cpu_us']):.1f})")  # fmt: skip
    if "latency" in results:
        a, b = (results["latency"][n] for n in names)
        for q in ("p50", "p99"):
            added = [med(x - d for x, d in zip(r[q], r[f"direct_{q}"], strict=True)) for r in (a, b)]
            print(f"  added {q}: {added[0]:.3f} -> {added[1]:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
