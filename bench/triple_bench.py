"""Gateway -> Triple vs gateway -> Dubbo2, like for like, in one run.

Servers (all started here, 127.0.0.1, free ports):

* **demo**: the Dubbo2 demo provider (interop/demo_provider.py, asyncio + our codecs);
* **node**: a wrapper-mode Triple server on node's http2 module (interop/node/triple_server.js
  ``raw``: TripleRequestWrapper/ResponseWrapper, hessian.js), serving the demo provider's
  ``greet``.  Its own ceiling (h2load) is well above the demo provider's, so it is the
  reference server for the 0.7x target;
* **grpcio**: grpc.aio's C core with Python handlers and our hessian codec
  (interop/triple_peers.py ``fast``), a slower server shown for comparison.

Measured per round (wrk: 1 thread, N connections; rounds alternate so background load hits
every setup alike), for each gateway Triple client (``upstream.triple_client``):

* wrk -> gateway -> demo (Dubbo2)            -- the reference
* wrk -> gateway -> node / grpcio (Triple)
* a direct grpc.aio client process -> node   -- what a Python gRPC client alone reaches

and once: each server's ceiling without the gateway (h2load for Triple, a pipelined asyncio
client of our codec for Dubbo2), and the load average before each round.

    .venv/bin/python bench/triple_bench.py [--seconds 5] [--rounds 3] [--connections 50]
        [--clients grpcio,h2]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway_vs_nginx import PY, ROOT, free_port, stop, wait_port, wrk
from tribridge.interop.triple_peers import DEMO_SERVICE

NODE_DIR = ROOT / "interop" / "node"


NODE_IFACE = "com.tribridge.bench.NodeGreeter"
GRPC_IFACE = "com.tribridge.bench.GrpcGreeter"


def gateway_config(dport: int, nport: int, gport: int, http_port: int, client: str) -> str:
    # both Triple servers answer greet under any interface name
    return f"""
listen: {{host: 127.0.0.1, port: {http_port}}}
access_log: false
upstream: {{triple_client: {client}}}
registries:
  static:
    type: static
    services:
      {DEMO_SERVICE}: ["127.0.0.1:{dport}?version=1.0.0"]
      {NODE_IFACE}: ["tri://127.0.0.1:{nport}/{NODE_IFACE}"]
      {GRPC_IFACE}: ["tri://127.0.0.1:{gport}/{GRPC_IFACE}"]
services:
  - interface: {DEMO_SERVICE}
    version: 1.0.0
    methods: {{greet: [java.lang.String]}}
  - interface: {NODE_IFACE}
    version: 1.0.0
    methods: {{greet: [java.lang.String]}}
  - interface: {GRPC_IFACE}
    version: 1.0.0
    methods: {{greet: [java.lang.String]}}
routes:
  - {{method: GET, path: "/d/{{name}}", service: {DEMO_SERVICE}, call: greet,
     params: [{{from: path, name: name, type: java.lang.String}}]}}
  - {{method: GET, path: "/t/{{name}}", service: {NODE_IFACE}, call: greet,
     params: [{{from: path, name: name, type: java.lang.String}}]}}
  - {{method: GET, path: "/g/{{name}}", service: {GRPC_IFACE}, call: greet,
     params: [{{from: path, name: name, type: java.lang.String}}]}}
"""


DIRECT_GRPC = """
import asyncio, sys, time, grpc, grpc.aio
from tribridge.codecs.hessian2 import encode
from tribridge.codecs.triple import encode_request_wrapper
port, conc, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
async def main():
    ch = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    m = ch.unary_unary(sys.argv[4])
    md = (("tri-service-version", "1.0.0"),)
    n = 0
    end = time.monotonic() + secs
    async def worker():
        nonlocal n
        while time.monotonic() < end:
            payload = encode_request_wrapper([encode("world")], ["java.lang.String"])
            await m(payload, metadata=md, timeout=5)
            n += 1
    t = time.monotonic()
    await asyncio.gather(*[worker() for _ in range(conc)])
    print(n / (time.monotonic() - t))
    await ch.close()
import uvloop; uvloop.run(main())
"""

#: N requests pipelined on one connection, ``conc`` in flight: the demo provider's ceiling
DIRECT_DUBBO = """
import asyncio, sys, time
from tribridge.codecs.dubbo import FrameDecoder, RequestTemplate
port, conc, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
tmpl = RequestTemplate(sys.argv[4], "greet", "Ljava/lang/String;", "1.0.0", {})
class P(asyncio.Protocol):
    def __init__(self):
        self.dec, self.rid, self.n, self.end = FrameDecoder(), 0, 0, time.monotonic() + secs
        self.done = asyncio.get_running_loop().create_future()
        self.inflight = 0
    def connection_made(self, t):
        self.t = t
        for _ in range(conc):
            self.send()
    def send(self):
        self.rid += 1
        self.inflight += 1
        self.t.write(tmpl.frame(self.rid, ["world"]))
    def data_received(self, data):
        for fr in self.dec.feed(data):
            self.n += 1
            self.inflight -= 1
            if time.monotonic() < self.end:
                self.send()
            elif not self.inflight and not self.done.done():
                self.done.set_result(None)
async def main():
    loop = asyncio.get_running_loop()
    t0 = time.monotonic()
    _, p = await loop.create_connection(P, "127.0.0.1", port)
    await p.done
    print(p.n / (time.monotonic() - t0))
import uvloop; uvloop.run(main())
"""


def run_py(script: str, *args: object, seconds: float) -> float:
    out = subprocess.run(
        [PY, "-c", script, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
        cwd=ROOT,
    )
    return float(out.stdout.strip())


def h2load(port: int, path: str, body: Path, n: int, conc: int) -> float:
    if shutil.which("h2load") is None:
        return float("nan")
    out = subprocess.run(
        [
            "h2load",
            "-n",
            str(n),
            "-c",
            "1",
            "-m",
            str(conc),
            "-d",
            str(body),
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    m = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out)
    ok = re.search(r"(\d+) succeeded", out)
    if not m or not ok or int(ok.group(1)) != n:
        raise RuntimeError(f"h2load output not understood or failures:\n{out}")
    return float(m.group(1))


def codec_rows() -> list[tuple[str, float]]:
    from tribridge.codecs.hessian2 import encode
    from tribridge.codecs.triple import (
        RequestWrapperTemplate,
        decode_response_wrapper,
        encode_response_wrapper,
    )
    from tribridge.codecs.triple import wrapper_pb as pb
    from tribridge.codecs.triple.wrapper import iter_fields

    args = [encode("world"), encode(42)]
    types = ["java.lang.String", "int"]
    tmpl = RequestWrapperTemplate(types)
    resp = encode_response_wrapper(encode("Hello, world" * 4), "java.lang.String")

    def pb_decode() -> bytes:
        m = pb.TripleResponseWrapper()
        m.ParseFromString(resp)
        return m.data

    cases = {
        "encode request, pre-encoded template (used)": lambda: tmpl.encode(args),
        "encode request, protobuf runtime": lambda: pb.TripleRequestWrapper(
            serializeType="hessian4", args=args, argTypes=types
        ).SerializeToString(),
        "decode response, protobuf runtime (used)": lambda: decode_response_wrapper(resp),
        "decode response, protobuf runtime, bare": pb_decode,
        "decode response, hand-written reader": lambda: iter_fields(resp),
    }
    n = 50000
    return [
        (name, min(timeit.repeat(f, number=n, repeat=5)) / n * 1e6) for name, f in cases.items()
    ]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--clients", default="grpcio,h2,lean", help="gateway Triple clients to compare")
    ap.add_argument("--no-codec", action="store_true")
    args = ap.parse_args()
    clients = [c for c in args.clients.split(",") if c]
    procs: list[subprocess.Popen] = []
    tmp = Path(tempfile.mkdtemp(prefix="tribridge-tri-bench-"))
    path = f"/{DEMO_SERVICE}/greet"
    try:
        dport, nport, gport = free_port(), free_port(), free_port()
        procs.append(
            subprocess.Popen(
                [PY, "-m", "tribridge.interop.demo_provider", "--port", str(dport)],
                stdout=subprocess.DEVNULL,
                cwd=ROOT,
            )
        )
        procs.append(
            subprocess.Popen(
                ["node", "triple_server.js", "raw", str(nport)],
                stdout=subprocess.DEVNULL,
                cwd=NODE_DIR,
            )
        )
        procs.append(
            subprocess.Popen(
                [PY, "-m", "tribridge.interop.triple_peers", "fast", str(gport)],
                stdout=subprocess.DEVNULL,
                cwd=ROOT,
            )
        )
        for p in (dport, nport, gport):
            wait_port(p)
        gws: dict[str, int] = {}
        gw_pids: dict[str, int] = {}
        for c in clients:
            hport = free_port()
            cfg = tmp / f"gw-{c}.yaml"
            cfg.write_text(gateway_config(dport, nport, gport, hport, c))
            procs.append(
                subprocess.Popen(
                    [PY, "-m", "tribridge.cli", "run", "-c", str(cfg)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    cwd=ROOT,
                )
            )
            gws[c] = hport
            gw_pids[c] = procs[-1].pid
        for hport in gws.values():
            wait_port(hport)
        body = tmp / "greet.grpc"
        from tribridge.codecs.hessian2 import encode
        from tribridge.codecs.triple import encode_message, encode_request_wrapper

        body.write_bytes(
            encode_message(encode_request_wrapper([encode("world")], ["java.lang.String"]))
        )
        # warm up every path (node's JIT especially)
        h2load(nport, path, body, 20000, args.connections)
        for hport in gws.values():
            for p in ("d", "t", "g"):
                wrk(f"http://127.0.0.1:{hport}/{p}/world", 1, args.connections)

        print(f"load average before: {load()}")
        print("server ceilings, no gateway:")
        ceil_d = run_py(
            DIRECT_DUBBO, dport, args.connections, args.seconds, DEMO_SERVICE, seconds=args.seconds
        )
        ceil_n = h2load(nport, path, body, 40000, args.connections)
        ceil_g = h2load(gport, path, body, 10000, args.connections)
        print(f"  demo provider (Dubbo2, pipelined asyncio client): {ceil_d:.0f}/s")
        print(f"  node raw Triple server (h2load):                  {ceil_n:.0f}/s")
        print(f"  grpcio fast Triple server (h2load):               {ceil_g:.0f}/s")

        rows: dict[str, list[float]] = {}
        #: gateway CPU microseconds per request: independent of how much CPU the servers
        #: and wrk take from the shared cores
        cpu: dict[str, list[float]] = {}

        def note(name: str, v: float) -> None:
            rows.setdefault(name, []).append(v)

        for r in range(args.rounds):
            la = load()
            line = [f"round {r + 1} (load {la}):"]
            for c, hport in gws.items():
                base = f"http://127.0.0.1:{hport}"
                for key, p in (
                    (f"{c}: gw->Dubbo2", "d"),
                    (f"{c}: gw->Triple node", "t"),
                    (f"{c}: gw->Triple grpcio", "g"),
                ):
                    c0 = cpu_seconds(gw_pids[c])
                    note(key, wrk(f"{base}/{p}/world", args.seconds, args.connections))
                    used = cpu_seconds(gw_pids[c]) - c0
                    cpu.setdefault(key, []).append(used / (rows[key][-1] * args.seconds) * 1e6)
                    line.append(f"{key} {rows[key][-1]:.0f} ({cpu[key][-1]:.0f}us)")
            note(
                "direct grpc.aio->node",
                run_py(
                    DIRECT_GRPC, nport, args.connections, args.seconds, path, seconds=args.seconds
                ),
            )
            line.append(f"direct grpc.aio->node {rows['direct grpc.aio->node'][-1]:.0f}")
            print("  ".join(line), flush=True)
        print(f"load average after: {load()}")
        med = {k: statistics.median(v) for k, v in rows.items()}
        print("\nmedians:")
        for k, v in med.items():
            print(f"  {k:32s} {v:8.0f}/s")
        print("\ngateway CPU per request (median, us), and Dubbo2/Triple CPU ratio:")
        for c in gws:
            d = statistics.median(cpu[f"{c}: gw->Dubbo2"])
            t = statistics.median(cpu[f"{c}: gw->Triple node"])
            g = statistics.median(cpu[f"{c}: gw->Triple grpcio"])
            print(
                f"  [{c}] Dubbo2 {d:.0f}  Triple(node) {t:.0f}  Triple(grpcio) {g:.0f}"
                f"  -> CPU-normalized Triple(node)/Dubbo2 = {d / t:.2f}"
            )
        print("\nratios (medians of this run):")
        for c in gws:
            d = med[f"{c}: gw->Dubbo2"]
            print(
                f"  [{c}] Triple(node)/Dubbo2 = {med[f'{c}: gw->Triple node'] / d:.2f}   "
                f"Triple(grpcio)/Dubbo2 = {med[f'{c}: gw->Triple grpcio'] / d:.2f}"
            )
        # per-round ratios are less sensitive to load drifting between rounds
        for c in gws:
            per = [
                t / d
                for t, d in zip(
                    rows[f"{c}: gw->Triple node"], rows[f"{c}: gw->Dubbo2"], strict=True
                )
            ]
            print(f"  [{c}] per-round Triple(node)/Dubbo2: " + ", ".join(f"{x:.2f}" for x in per))
        first = next(iter(gws))
        for other in list(gws)[1:]:
            per = [
                y / x
                for x, y in zip(
                    rows[f"{first}: gw->Triple node"],
                    rows[f"{other}: gw->Triple node"],
                    strict=True,
                )
            ]
            print(
                f"  gw->Triple node, {other} client / {first} client, per round: "
                + ", ".join(f"{x:.2f}" for x in per)
            )
    finally:
        for p in reversed(procs):
            stop(p)
        shutil.rmtree(tmp, ignore_errors=True)
    if not args.no_codec:
        print("\nwrapper codec, us per operation (best of 5):")
        for name, us in codec_rows():
            print(f"  {name:48s} {us:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
