"""Gateway -> Triple vs gateway -> Dubbo2, and a direct grpcio client, in one run.

* gateway -> Dubbo2: wrk -> tribridge (``GET /d/{name}``) -> demo provider (Dubbo2)
* gateway -> Triple: wrk -> tribridge (``GET /t/{name}``) -> grpcio server in wrapper mode
  (interop/triple_peers.py: TripleRequestWrapper + hessian2, as a Java provider)
* direct grpcio: a grpc.aio client process, same concurrency, -> the same grpcio server,
  with the same wrapper payload: the Triple server's own ceiling on this machine

Rounds alternate so background load hits all three alike.  Also times the wrapper codec
(hand-written vs protobuf runtime).

    .venv/bin/python bench/triple_bench.py [--seconds 5] [--rounds 3] [--connections 50]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway_vs_nginx import PY, ROOT, free_port, stop, wait_port, wrk
from tribridge.interop.triple_peers import DEMO_SERVICE, SERVICE


def gateway_config(dubbo_port: int, tri_port: int, http_port: int) -> str:
    return f"""
listen: {{host: 127.0.0.1, port: {http_port}}}
access_log: false
registries:
  static:
    type: static
    services:
      {DEMO_SERVICE}: ["127.0.0.1:{dubbo_port}?version=1.0.0"]
      {SERVICE}: ["tri://127.0.0.1:{tri_port}/{SERVICE}"]
services:
  - interface: {DEMO_SERVICE}
    version: 1.0.0
    methods: {{greet: [java.lang.String]}}
  - interface: {SERVICE}
    version: 1.0.0
    methods: {{greet: [java.lang.String]}}
routes:
  - {{method: GET, path: "/d/{{name}}", service: {DEMO_SERVICE}, call: greet,
     params: [{{from: path, name: name, type: java.lang.String}}]}}
  - {{method: GET, path: "/t/{{name}}", service: {SERVICE}, call: greet,
     params: [{{from: path, name: name, type: java.lang.String}}]}}
"""


DIRECT = """
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


def direct_grpc(port: int, conns: int, seconds: int) -> float:
    out = subprocess.run(
        [PY, "-c", DIRECT, str(port), str(conns), str(seconds), f"/{SERVICE}/greet"],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
        cwd=ROOT,
    )
    return float(out.stdout.strip())


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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=50)
    args = ap.parse_args()
    procs: list[subprocess.Popen] = []
    tmp = tempfile.mkdtemp(prefix="tribridge-tri-bench-")
    try:
        dport, tport, gport = free_port(), free_port(), free_port()
        procs.append(
            subprocess.Popen(
                [PY, "-m", "tribridge.interop.demo_provider", "--port", str(dport)],
                stdout=subprocess.DEVNULL,
                cwd=ROOT,
            )
        )
        procs.append(
            subprocess.Popen(
                [PY, "-m", "tribridge.interop.triple_peers", "grpc", str(tport)],
                stdout=subprocess.DEVNULL,
                cwd=ROOT,
            )
        )
        wait_port(dport)
        wait_port(tport)
        cfg = Path(tmp) / "gw.yaml"
        cfg.write_text(gateway_config(dport, tport, gport))
        procs.append(
            subprocess.Popen(
                [PY, "-m", "tribridge.cli", "run", "-c", str(cfg)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=ROOT,
            )
        )
        wait_port(gport)
        base = f"http://127.0.0.1:{gport}"
        wrk(f"{base}/d/world", 1, args.connections)  # warm up both paths
        wrk(f"{base}/t/world", 1, args.connections)
        d, t, g = [], [], []
        for r in range(args.rounds):
            d.append(wrk(f"{base}/d/world", args.seconds, args.connections))
            t.append(wrk(f"{base}/t/world", args.seconds, args.connections))
            g.append(direct_grpc(tport, args.connections, args.seconds))
            print(
                f"round {r + 1}: gateway->Dubbo2 {d[-1]:.0f}/s  gateway->Triple {t[-1]:.0f}/s"
                f"  direct grpcio->Triple {g[-1]:.0f}/s",
                flush=True,
            )
        md, mt, mg = (statistics.median(x) for x in (d, t, g))
        print(f"median: Dubbo2 path {md:.0f}/s, Triple path {mt:.0f}/s, direct grpcio {mg:.0f}/s")
        print(f"Triple path / Dubbo2 path = {mt / md:.2f}; Triple path / direct = {mt / mg:.2f}")
    finally:
        for p in reversed(procs):
            stop(p)
    print("\nwrapper codec, us per operation (best of 5):")
    for name, us in codec_rows():
        print(f"  {name:48s} {us:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
