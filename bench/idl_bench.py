"""IDL mode throughput: wrk -> tribridge -> grpcio server, vs a direct grpc.aio client.

Same run, alternating rounds: (a) a direct ``grpc.aio`` client process keeping
``--inflight`` unary ``Describe`` calls in flight against the grpcio demo server; (b) wrk
with ``--connections`` POSTing the same request as JSON to the gateway's auto route, the
gateway calling the same server. Prints calls/s of each and ratio = gateway / direct.
The direct client does no JSON work: the ratio is the cost of the whole HTTP+JSON hop.

    .venv/bin/python bench/idl_bench.py [--seconds 5] [--rounds 3]

Everything binds to 127.0.0.1 on free ports; every process started is stopped by its PID.
"""

from __future__ import annotations

import argparse
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
SVC = "idl.demo.v1.Demo"
PERSON = (
    '{"name":"Ann","age":41,"id":"7","tags":["a","b"],"counts":{"x":2},'
    '"color":"BLUE","address":{"city":"Oslo","zip":1}}'
)

DIRECT = r"""
import asyncio, sys, time, grpc, json
from tribridge.interop.grpc_server import load_schema
from tribridge.idl.schema import JsonOptions, json_to_message
port, seconds, inflight = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
mi = load_schema("demo").method("idl.demo.v1.Demo", "Describe")
payload = json_to_message(mi, json.loads(sys.argv[4]), JsonOptions()).SerializeToString()
async def main():
    ch = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    call = ch.unary_unary(mi.path)
    n = 0
    end = time.monotonic() + seconds
    async def worker():
        nonlocal n
        while time.monotonic() < end:
            mi.output.FromString(await call(payload, timeout=10))
            n += 1
    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(inflight)))
    print(n / (time.monotonic() - t0))
    await ch.close()
import uvloop
uvloop.run(main())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 15.0) -> None:
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


def wrk_post(url: str, body: str, seconds: float, conns: int, tmp: Path) -> float:
    script = tmp / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = [[{body}]]\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    out = subprocess.run(
        ["wrk", "-t1", f"-c{conns}", f"-d{int(seconds)}s", "-s", str(script), url],
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--inflight", type=int, default=50)
    a = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed (Debian package wrk; scripts/setup.sh installs it)")
    from tribridge.interop.idl_peers import start_grpc_server

    tmp = Path(tempfile.mkdtemp(prefix="tribridge-idl-bench-"))
    srv = start_grpc_server("demo", reflection="v1")
    gw = None
    try:
        gport = free_port()
        cfg = tmp / "gw.yaml"
        cfg.write_text(
            f"listen: {{host: 127.0.0.1, port: {gport}}}\naccess_log: false\n"
            f"services:\n  - interface: {SVC}\n    endpoints: ['127.0.0.1:{srv.port}']\n"
            "    idl: {reflection: true}\n"
        )
        gw = subprocess.Popen([PY, "-m", "tribridge.cli", "run", "-c", str(cfg)], cwd=ROOT)
        wait_port(gport)
        url = f"http://127.0.0.1:{gport}/{SVC}/Describe"
        wrk_post(url, PERSON, 1, 4, tmp)  # warm-up: reflection fetch, channel
        direct, via = [], []
        for r in range(a.rounds):
            d = float(
                subprocess.run(
                    [PY, "-c", DIRECT, str(srv.port), str(a.seconds), str(a.inflight), PERSON],
                    capture_output=True,
                    text=True,
                    check=True,
                    timeout=a.seconds + 60,
                ).stdout.strip()
            )
            g = wrk_post(url, PERSON, a.seconds, a.connections, tmp)
            direct.append(d)
            via.append(g)
            print(
                f"round {r + 1}: direct grpc.aio {d:8.0f}/s   gateway {g:8.0f}/s   "
                f"ratio {g / d:.2f}",
                flush=True,
            )
        ratios = [g / d for g, d in zip(via, direct, strict=True)]
        print(
            f"median: direct {statistics.median(direct):.0f}/s, gateway "
            f"{statistics.median(via):.0f}/s, ratio gateway/direct {statistics.median(ratios):.2f} "
            f"(range {min(ratios):.2f}-{max(ratios):.2f})"
        )
    finally:
        if gw is not None:
            stop(gw)
        srv.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
