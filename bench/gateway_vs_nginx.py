"""Throughput of one tribridge worker (HTTP -> Dubbo2 demo provider) vs nginx's proxy hop.

Same run, alternating: wrk against tribridge -> demo provider, and wrk against nginx (one
worker) -> an nginx ``return 200`` backend.  Prints the ratio, then the gateway's added p50 /
p99 latency over a direct Dubbo2 call at a fixed moderate rate.

    .venv/bin/python bench/gateway_vs_nginx.py [--seconds 5] [--rounds 3] [--connections 50]

Everything binds to 127.0.0.1 on free ports; every process started is stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SERVICE = "com.tribridge.demo.DemoService"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port} after {timeout}s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wrk(url: str, seconds: int, conns: int) -> float:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", url],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if not m:
        raise RuntimeError(f"wrk output not understood:\n{out}")
    if non2xx:
        raise RuntimeError(f"{non2xx.group(1)} error responses from {url}")
    return float(m.group(1))


NGINX_CONF = """
worker_processes {workers};
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  upstream backend {{ server 127.0.0.1:{backend}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{backend};
    location / {{ default_type application/json; return 200 '"Hello, world"'; }}
  }}
  server {{
    listen 127.0.0.1:{proxy};
    {access_log}
    location / {{ proxy_pass http://backend; proxy_http_version 1.1;
                 proxy_set_header Connection ""; }}
  }}
}}
"""


def gateway_config(provider_port: int, http_port: int) -> str:
    return f"""
listen: {{host: 127.0.0.1, port: {http_port}}}
access_log: false
registries:
  static: {{type: static, services: {{{SERVICE}: ["127.0.0.1:{provider_port}?version=1.0.0"]}}}}
services:
  - interface: {SERVICE}
    version: 1.0.0
    methods: {{greet: {{types: [java.lang.String]}}}}
routes:
  - {{method: GET, path: "/hello/{{name}}", service: {SERVICE}, call: greet,
     params: [{{from: path, name: name, type: java.lang.String}}]}}
"""


async def latencies_direct(port: int, n: int, rate: float) -> list[float]:
    from tribridge.codecs.dubbo import RequestTemplate
    from tribridge.config.upstream import UpstreamSettings
    from tribridge.upstream.pool import DubboConnection

    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(
        lambda: DubboConnection(loop, UpstreamSettings()), "127.0.0.1", port
    )
    tmpl = RequestTemplate(SERVICE, "greet", "Ljava/lang/String;", "1.0.0")
    out: list[float] = []

    async def one() -> None:
        rid = conn.next_id()
        t0 = time.perf_counter()
        await conn.call(rid, tmpl.frame(rid, ["world"]), 5.0)
        out.append(time.perf_counter() - t0)

    await _paced(one, n, rate)
    conn.close()
    return out


async def latencies_http(port: int, n: int, rate: float) -> list[float]:
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(32)]
    free = list(conns)
    out: list[float] = []
    req = b"GET /hello/world HTTP/1.1\r\nHost: x\r\n\r\n"

    async def one() -> None:
        r, w = free.pop()
        t0 = time.perf_counter()
        w.write(req)
        await r.readuntil(b"\r\n\r\n")
        await r.readexactly(len(b'"Hello, world"'))
        out.append(time.perf_counter() - t0)
        free.append((r, w))

    await _paced(one, n, rate)
    for _, w in conns:
        w.close()
    return out


async def _paced(fn, n: int, rate: float) -> None:  # type: ignore[no-untyped-def]
    tasks = []
    start = time.perf_counter()
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(fn()))
    await asyncio.wait_for(asyncio.gather(*tasks), 60)


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] * 1000


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--rate", type=float, default=1000.0, help="fixed rate for latency, req/s")
    ap.add_argument("--requests", type=int, default=3000)
    args = ap.parse_args()
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"{tool} is not installed (scripts/setup.sh installs it)")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    procs: list[subprocess.Popen] = []
    tmp = tempfile.mkdtemp(prefix="tribridge-bench-")
    try:
        pport = free_port()
        prov = subprocess.Popen(
            [PY, "-m", "tribridge.interop.demo_provider", "--port", str(pport)],
            stdout=subprocess.DEVNULL,
            cwd=ROOT,
        )
        procs.append(prov)
        wait_port(pport)
        gport = free_port()
        cfg = Path(tmp) / "gw.yaml"
        cfg.write_text(gateway_config(pport, gport))
        gw = subprocess.Popen(
            [PY, "-m", "tribridge.cli", "run", "-c", str(cfg)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
        )
        procs.append(gw)
        wait_port(gport)
        backend, proxy = free_port(), free_port()
        (Path(tmp) / "nginx.conf").write_text(
            NGINX_CONF.format(tmp=tmp, backend=backend, proxy=proxy, workers=1, access_log="")
        )
        ng = subprocess.Popen(
            [nginx, "-p", tmp, "-c", f"{tmp}/nginx.conf", "-g", "daemon off;"],
            stderr=subprocess.DEVNULL,
        )
        procs.append(ng)
        wait_port(proxy)
        gw_url = f"http://127.0.0.1:{gport}/hello/world"
        ng_url = f"http://127.0.0.1:{proxy}/hello/world"
        wrk(gw_url, 1, args.connections)  # warm up both
        wrk(ng_url, 1, args.connections)
        gw_rps, ng_rps = [], []
        for r in range(args.rounds):
            gw_rps.append(wrk(gw_url, args.seconds, args.connections))
            ng_rps.append(wrk(ng_url, args.seconds, args.connections))
            print(
                f"round {r + 1}: tribridge {gw_rps[-1]:,.0f} req/s   nginx proxy {ng_rps[-1]:,.0f} req/s",
                flush=True,
            )
        g, n = statistics.median(gw_rps), statistics.median(ng_rps)
        print(
            f"median: tribridge {g:,.0f} req/s, nginx proxy hop {n:,.0f} req/s, ratio {g / n:.2f}"
        )
        direct = asyncio.run(latencies_direct(pport, args.requests, args.rate))
        via = asyncio.run(latencies_http(gport, args.requests, args.rate))
        print(
            f"latency at {args.rate:.0f} req/s ({args.requests} calls): direct Dubbo2 p50 "
            f"{pct(direct, 0.5):.3f} ms p99 {pct(direct, 0.99):.3f} ms; via tribridge p50 "
            f"{pct(via, 0.5):.3f} ms p99 {pct(via, 0.99):.3f} ms; added p50 "
            f"{pct(via, 0.5) - pct(direct, 0.5):.3f} ms p99 {pct(via, 0.99) - pct(direct, 0.99):.3f} ms"
        )
        print(f"cpu count {os.cpu_count()}")
    finally:
        for p in reversed(procs):
            stop(p)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
