"""Gateway CPU time per request, A/B across source trees (or config variants), same run.

Throughput on a shared 2-core machine moves with whatever else runs; CPU seconds the gateway
process spends per answered request move much less.  Each variant is a gateway process (from
its own tree's .venv) in front of one shared demo provider; wrk drives each in turn, rounds
alternate, and the gateway's utime+stime (from /proc) is divided by wrk's request count.

    .venv/bin/python bench/cpu_per_request.py --variant main=/work/main \\
        --variant ops=. --variant ops-notrace=.:'tracing: {enabled: false}'

    # access log on (written to the gateway's stdout, here /dev/null)
    .venv/bin/python bench/cpu_per_request.py --variant main=/work/main --variant new=. \\
        --access-log main --access-log new

    # the compiled codecs against the pure-Python ones, same tree
    .venv/bin/python bench/cpu_per_request.py --variant compiled=. --variant pure=. --pure pure

Everything binds to 127.0.0.1 on free ports; every process started is stopped by its PID.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway_vs_nginx import free_port, gateway_config, stop, wait_port

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def wrk(url: str, seconds: int, conns: int) -> int:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", url],
        capture_output=True, text=True, timeout=seconds + 30, check=True,
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"error responses from {url}:\n{out}")
    m = re.search(r"(\d+) requests in", out)
    if not m:
        raise RuntimeError(f"wrk output not understood:\n{out}")
    return int(m.group(1))


def alternate_children(child: str, argv: list[str], n: int, rounds: int = 8) -> int:
    """In-process benches (call_path_bench, hop_bench): ``NAME=SITE`` variants (a site
    directory holding an install of one tree; empty: the working tree), each round running
    ``child`` once per variant in a fresh interpreter (``python -c child n``, PYTHONPATH=SITE,
    printing µs per request), the order reversed every other round (a variant's slot in a
    round biases it: ABBA); prints every round and the medians."""
    variants = [a.split("=", 1) for a in argv if "=" in a]
    results: dict[str, list[float]] = {name: [] for name, _ in variants}
    for r in range(rounds):
        line = []
        for name, site in variants if r % 2 == 0 else variants[::-1]:
            out = subprocess.run(
                [sys.executable, "-c", child, str(n)],
                env=dict(os.environ, PYTHONPATH=site),
                capture_output=True,
                text=True,
            )
            if out.returncode != 0:
                raise SystemExit(f"variant {name} ({site or 'working tree'}) failed:\n{out.stderr}")
            us = float(out.stdout.strip())
            results[name].append(us)
            line.append(f"{name} {us:.2f} µs")
        print(f"round {r + 1}: " + "   ".join(line), flush=True)
    print_medians(results)
    return 0


def print_medians(results: dict[str, list[float]]) -> None:
    """Each variant's median CPU time per request, against the first variant's."""
    first = next(iter(results))
    base = statistics.median(results[first])
    for name, xs in results.items():
        m = statistics.median(xs)
        print(f"median {name}: {m:.2f} µs CPU/request ({m / base:.3f}x {first})")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", action="append", required=True,
                    help="NAME=TREE[:EXTRA_YAML] (TREE has .venv; EXTRA_YAML is appended)")
    ap.add_argument("--pure", action="append", default=[], metavar="NAME",
                    help="run variant NAME with TRIBRIDGE_PURE_PYTHON=1 (pure-Python codecs)")
    ap.add_argument("--access-log", action="append", default=[], metavar="NAME",
                    help="access log on in variant NAME (lines go to the gateway's stdout, /dev/null)")
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--connections", type=int, default=50)
    args = ap.parse_args()
    procs: list[subprocess.Popen] = []
    tmp = tempfile.mkdtemp(prefix="tribridge-cpu-")
    try:
        pport = free_port()
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tribridge.interop.demo_provider", "--port", str(pport)],
            stdout=subprocess.DEVNULL, cwd=ROOT,
        ))
        wait_port(pport)
        variants: list[tuple[str, int, int]] = []
        for spec in args.variant:
            name, _, rest = spec.partition("=")
            tree, _, extra = rest.partition(":")
            tree_path = Path(tree).resolve()
            port = free_port()
            cfg = Path(tmp) / f"{name}.yaml"
            text = gateway_config(pport, port)
            if name in args.access_log:
                text = text.replace("access_log: false", "access_log: true")
            cfg.write_text(text + (extra + "\n" if extra else ""))
            env = {k: v for k, v in os.environ.items() if k != "TRIBRIDGE_PURE_PYTHON"}
            if name in args.pure:
                env["TRIBRIDGE_PURE_PYTHON"] = "1"
            p = subprocess.Popen(
                [str(tree_path / ".venv/bin/python"), "-m", "tribridge.cli", "run", "-c", str(cfg)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tree_path, env=env,
            )
            procs.append(p)
            wait_port(port)
            variants.append((name, port, p.pid))
        for _, port, _ in variants:  # warm up
            wrk(f"http://127.0.0.1:{port}/hello/world", 1, args.connections)
        results: dict[str, list[float]] = {n: [] for n, _, _ in variants}
        for r in range(args.rounds):
            line = []
            for name, port, pid in variants:
                c0 = cpu_seconds(pid)
                n = wrk(f"http://127.0.0.1:{port}/hello/world", args.seconds, args.connections)
                us = (cpu_seconds(pid) - c0) / n * 1e6
                results[name].append(us)
                line.append(f"{name} {us:.1f} µs ({n / args.seconds:,.0f} req/s)")
            print(f"round {r + 1}: " + "   ".join(line), flush=True)
        print_medians(results)
    finally:
        for p in reversed(procs):
            stop(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
