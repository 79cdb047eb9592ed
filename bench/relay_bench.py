"""What a relay hop costs: one gateway vs two gateways joined by a mutual-TLS relay link.

Processes (all on 127.0.0.1, free ports, stopped by PID): the Python demo provider; gateway
G (HTTP + Dubbo2 ingress -> provider); gateway A (HTTP + Dubbo2 ingress -> relay link) and
gateway B (relay listener -> provider).  Same run, same machine:

* latency at a fixed modest rate (Dubbo2 client -> ingress, and HTTP), p50 / p99:
  direct to the provider, through G, through A -> B; the relay hop's added latency is
  (A -> B) - (G);
* throughput: wrk on HTTP, and a closed-loop Dubbo2 client with calls in flight, through
  G vs through A -> B.

    .venv/bin/python bench/relay_bench.py [--rate 500] [--requests 3000] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway_vs_nginx import (
    PY,
    ROOT,
    SERVICE,
    _paced,
    free_port,
    pct,
    stop,
    wait_port,
    wrk,
)

METHODS = "methods: {greet: {types: [java.lang.String]}}"
ROUTE = f"""routes:
  - {{method: GET, path: "/hello/{{name}}", service: {SERVICE}, call: greet,
     params: [{{from: path, name: name, type: java.lang.String}}]}}"""


def single(pport: int, http: int, dport: int) -> str:
    return f"""
listen: {{host: 127.0.0.1, port: {http}}}
access_log: false
registries: {{static: {{type: static, services: {{{SERVICE}: ["127.0.0.1:{pport}?version=1.0.0"]}}}}}}
services: [{{interface: {SERVICE}, version: 1.0.0, {METHODS}}}]
{ROUTE}
dubbo_ingress: {{listen: {{host: 127.0.0.1, port: {dport}}}, routes: [{{interface: "*", to: local}}]}}
"""


def remote(pport: int, http: int, rport: int, certs: Path) -> str:
    return f"""
listen: {{host: 127.0.0.1, port: {http}}}
access_log: false
registries: {{static: {{type: static, services: {{{SERVICE}: ["127.0.0.1:{pport}?version=1.0.0"]}}}}}}
relay:
  tls: {{cert: {certs}/server.pem, key: {certs}/server.key, ca: {certs}/ca.pem}}
  listen: {{host: 127.0.0.1, port: {rport}}}
  exports: ["*"]
"""


def calling(http: int, dport: int, rport: int, certs: Path) -> str:
    return f"""
listen: {{host: 127.0.0.1, port: {http}}}
access_log: false
registries: {{static: {{type: static, services: {{{SERVICE}: ["relay:b"]}}}}}}
relay:
  tls: {{cert: {certs}/client.pem, key: {certs}/client.key, ca: {certs}/ca.pem}}
  links: {{b: {{address: "127.0.0.1:{rport}", server_name: tribridge-relay}}}}
services: [{{interface: {SERVICE}, version: 1.0.0, {METHODS}}}]
{ROUTE}
dubbo_ingress: {{listen: {{host: 127.0.0.1, port: {dport}}}, routes: [{{interface: "*", to: "relay:b"}}]}}
"""


async def _dubbo(port: int):  # type: ignore[no-untyped-def]
    from tribridge.codecs.dubbo import RequestTemplate
    from tribridge.config.upstream import UpstreamSettings
    from tribridge.upstream.pool import DubboConnection

    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(
        lambda: DubboConnection(loop, UpstreamSettings()), "127.0.0.1", port
    )
    return conn, RequestTemplate(SERVICE, "greet", "Ljava/lang/String;", "1.0.0")


async def dubbo_latency(port: int, n: int, rate: float) -> list[float]:
    conn, tmpl = await _dubbo(port)
    out: list[float] = []

    async def one() -> None:
        rid = conn.next_id()
        t0 = time.perf_counter()
        fr = await conn.call(rid, tmpl.frame(rid, ["world"]), 5.0)
        assert fr.status == 20, fr
        out.append(time.perf_counter() - t0)

    await _paced(one, 200, rate)  # warm-up
    out.clear()
    await _paced(one, n, rate)
    conn.close()
    return out


async def dubbo_throughput(port: int, seconds: float, in_flight: int) -> float:
    conn, tmpl = await _dubbo(port)
    done = 0
    end = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < end:
            rid = conn.next_id()
            fr = await conn.call(rid, tmpl.frame(rid, ["world"]), 5.0)
            assert fr.status == 20, fr
            done += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    conn.close()
    return done / (time.perf_counter() - t0)


async def http_latency(port: int, n: int, rate: float) -> list[float]:
    """Paced keep-alive GETs; a new connection whenever all open ones are busy."""
    free: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    opened: list[asyncio.StreamWriter] = []
    out: list[float] = []
    req = b"GET /hello/world HTTP/1.1\r\nHost: x\r\n\r\n"

    async def one() -> None:
        if free:
            r, w = free.pop()
        else:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            opened.append(w)
        t0 = time.perf_counter()
        w.write(req)
        head = await r.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        await r.readexactly(len(b'"Hello, world"'))
        out.append(time.perf_counter() - t0)
        free.append((r, w))

    await _paced(one, 200, rate)
    out.clear()
    await _paced(one, n, rate)
    for w in opened:
        w.close()
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc), in seconds."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=500.0, help="fixed rate for latency, req/s")
    ap.add_argument("--requests", type=int, default=1500, help="calls per latency sample")
    ap.add_argument("--rounds", type=int, default=5, help="alternating samples; medians")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=50, help="wrk connections")
    ap.add_argument("--in-flight", type=int, default=50, help="Dubbo2 calls in flight")
    args = ap.parse_args()
    from tribridge.security.certs import make_certs

    procs: list[subprocess.Popen] = []
    tmp = Path(tempfile.mkdtemp(prefix="tribridge-relay-bench-"))
    try:
        make_certs(tmp / "certs")
        pport = free_port()
        procs.append(
            subprocess.Popen(
                [PY, "-m", "tribridge.interop.demo_provider", "--port", str(pport)],
                stdout=subprocess.DEVNULL, cwd=ROOT,
            )
        )  # fmt: skip
        wait_port(pport)
        g_http, g_d, a_http, a_d, b_http, rport = (free_port() for _ in range(6))
        for name, text, port in (
            ("g", single(pport, g_http, g_d), g_d),
            ("b", remote(pport, b_http, rport, tmp / "certs"), rport),
            ("a", calling(a_http, a_d, rport, tmp / "certs"), a_d),
        ):
            (tmp / f"{name}.yaml").write_text(text)
            procs.append(
                subprocess.Popen(
                    [PY, "-m", "tribridge.cli", "run", "-c", str(tmp / f"{name}.yaml")],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
                )
            )  # fmt: skip
            wait_port(port)
        wait_port(a_http)
        time.sleep(0.5)  # the link connects in the background

        n, rate = args.requests, args.rate
        ports = {
            "Dubbo2 direct": ("d", pport),
            "Dubbo2 one gateway": ("d", g_d),
            "Dubbo2 two gateways": ("d", a_d),
            "HTTP one gateway": ("h", g_http),
            "HTTP two gateways": ("h", a_http),
        }
        p50: dict[str, list[float]] = {k: [] for k in ports}
        p99: dict[str, list[float]] = {k: [] for k in ports}
        cpu: dict[str, list[float]] = {k: [] for k in ports}
        gw_pids = {"one": [procs[1].pid], "two": [procs[2].pid, procs[3].pid]}
        for r in range(args.rounds):
            for k, (kind, port) in ports.items():
                fn = dubbo_latency if kind == "d" else http_latency
                pids = gw_pids["two" if "two" in k else "one"] if "direct" not in k else []
                c0 = sum(cpu_seconds(p) for p in pids)
                v = asyncio.run(fn(port, n, rate))
                cpu[k].append((sum(cpu_seconds(p) for p in pids) - c0) / (n + 200) * 1e6)
                p50[k].append(pct(v, 0.5))
                p99[k].append(pct(v, 0.99))
            print(f"round {r + 1}: " + ", ".join(
                f"{k} {p50[k][-1]:.3f}/{p99[k][-1]:.3f}" for k in ports), flush=True)
        med = statistics.median
        print(f"latency at {rate:.0f} calls/s, {n} calls x {args.rounds} rounds: p50 / p99 ms "
              "(median of rounds), best-round p50, gateway CPU per call (median)")
        for k in ports:
            print(f"  {k:22s} {med(p50[k]):.3f} / {med(p99[k]):.3f}   best p50 {min(p50[k]):.3f}"
                  f"   cpu {med(cpu[k]):.0f} us/call")
        for proto in ("Dubbo2", "HTTP"):
            one, two = f"{proto} one gateway", f"{proto} two gateways"
            print(f"  {proto} relay hop adds: p50 {med(p50[two]) - med(p50[one]):.3f} ms, "
                  f"p99 {med(p99[two]) - med(p99[one]):.3f} ms, best p50 "
                  f"{min(p50[two]) - min(p50[one]):.3f} ms, cpu "
                  f"{med(cpu[two]) - med(cpu[one]):.0f} us/call")
        s = args.seconds
        d1 = asyncio.run(dubbo_throughput(g_d, s, args.in_flight))
        d2 = asyncio.run(dubbo_throughput(a_d, s, args.in_flight))
        w1 = wrk(f"http://127.0.0.1:{g_http}/hello/world", s, args.connections)
        w2 = wrk(f"http://127.0.0.1:{a_http}/hello/world", s, args.connections)
        print(f"throughput, {args.in_flight} Dubbo2 calls in flight: one gateway {d1:,.0f}/s, "
              f"two gateways + relay {d2:,.0f}/s, ratio {d2 / d1:.2f}")
        print(f"throughput, wrk -c{args.connections} HTTP: one gateway {w1:,.0f}/s, "
              f"two gateways + relay {w2:,.0f}/s, ratio {w2 / w1:.2f}")
    finally:
        for p in reversed(procs):
            stop(p)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
