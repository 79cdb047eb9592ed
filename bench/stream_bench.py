"""Streams through one gateway worker: messages per second, memory for many concurrent server
streams, and the cost of one idle stream (docs/streaming.md, docs/benchmarks.md).

Started here (127.0.0.1, free ports): the grpcio streaming server (interop/grpc_server.py,
``idl.stream.v1.Ticker``) and one gateway process (``tribridge run``), so the gateway's
memory and CPU are its own (read from /proc). The clients are asyncio sockets in this
process, reading NDJSON / SSE.

* **throughput**: ``--clients`` streams at once, each ``--messages`` messages of ``--size``
  bytes of padding, read as fast as they come: messages/s through the worker;
* **concurrent streams**: ``--streams`` SSE streams held open (the provider sends one message
  every 2 s, so they are live but mostly idle); the worker's RSS before and with them open:
  memory per stream;
* **idle cost**: with those streams open, the worker's CPU over ``--idle-seconds``
  (keep-alive comments every ``--keepalive`` included): CPU per idle stream per second.

    .venv/bin/python bench/stream_bench.py [--clients 8] [--messages 20000] [--size 64]
        [--streams 1000] [--idle-seconds 10] [--keepalive 1s]

Every loop is bounded by counts and ``--timeout``; a smoke run: ``--messages 500 --streams 50
--idle-seconds 1``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway_vs_nginx import PY, free_port, stop, wait_port
from tribridge.interop.idl_peers import start_grpc_server

SVC = "idl.stream.v1.Ticker"
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def request(port: int, body: dict, accept: str) -> bytes:
    data = json.dumps(body).encode()
    return (
        f"POST /{SVC}/Count HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\naccept: {accept}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(data)}\r\n\r\n"
    ).encode() + data


async def open_stream(
    port: int, body: dict, accept: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    r, w = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    w.write(request(port, body, accept))
    head = await r.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head.decode("latin-1").splitlines()[0])
    return r, w


async def count_messages(port: int, n: int, size: int, i: int) -> int:
    """One NDJSON stream read to its end: the number of message lines."""
    r, w = await open_stream(
        port, {"id": f"t{i}", "count": n, "size": size}, "application/x-ndjson"
    )
    got = 0
    while True:
        line = await r.readline()  # chunk size line, data line(s), chunk trailer
        if line == b"0\r\n":
            break
        if line.startswith(b"{"):
            got += 1
    w.close()
    return got


async def throughput(port: int, clients: int, n: int, size: int, timeout: float) -> dict:
    t0 = time.perf_counter()
    counts = await asyncio.wait_for(
        asyncio.gather(*(count_messages(port, n, size, i) for i in range(clients))), timeout
    )
    dt = time.perf_counter() - t0
    total = sum(counts)
    assert total == clients * n, (total, clients * n)
    return {"messages": total, "seconds": round(dt, 3), "messages_per_s": round(total / dt)}


async def hold_streams(
    port: int, pid: int, streams: int, idle_seconds: float, timeout: float
) -> dict:
    base = rss(pid)
    opened: list[asyncio.StreamWriter] = []
    readers: list[asyncio.StreamReader] = []

    async def one(i: int) -> None:
        body = {"id": f"h{i}", "count": 1_000_000, "delayMs": 2000}
        r, w = await open_stream(port, body, "text/event-stream")
        await r.readuntil(b"\n\n")  # the first event: the stream is live end to end
        opened.append(w)
        readers.append(r)

    sem = asyncio.Semaphore(100)  # open them 100 at a time

    async def gated(i: int) -> None:
        async with sem:
            await one(i)

    await asyncio.wait_for(asyncio.gather(*(gated(i) for i in range(streams))), timeout)
    await asyncio.sleep(1.0)
    held = rss(pid)
    drain = [asyncio.ensure_future(_drain(r)) for r in readers]
    c0 = cpu_seconds(pid)
    await asyncio.sleep(idle_seconds)
    cpu = cpu_seconds(pid) - c0
    for t in drain:
        t.cancel()
    for w in opened:
        w.close()
    return {
        "streams": streams,
        "rss_before_mb": round(base / 2**20, 1),
        "rss_with_streams_mb": round(held / 2**20, 1),
        "kib_per_stream": round((held - base) / streams / 1024, 1),
        "idle_seconds": idle_seconds,
        "cpu_seconds": round(cpu, 3),
        "cpu_us_per_stream_second": round(cpu / streams / idle_seconds * 1e6, 2),
    }


async def _drain(r: asyncio.StreamReader) -> None:
    while await r.read(65536):
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--idle-seconds", type=float, default=10.0)
    ap.add_argument("--keepalive", default="1s")
    ap.add_argument("--timeout", type=float, default=300.0)
    a = ap.parse_args()
    with start_grpc_server("stream", reflection="v1") as srv, tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        cfg = Path(tmp) / "gw.yaml"
        cfg.write_text(
            f"""
listen: {{host: 127.0.0.1, port: {port}}}
access_log: false
streaming: {{keepalive: {a.keepalive}, max_streams: {a.streams + a.clients + 10}}}
services:
  - interface: {SVC}
    protocol: grpc
    endpoints: ["127.0.0.1:{srv.port}"]
    idl: {{reflection: true}}
"""
        )
        gw = subprocess.Popen(
            [PY, "-m", "tribridge.cli", "run", "-c", str(cfg)], stderr=subprocess.DEVNULL
        )
        try:
            wait_port(port, 20)
            out = {
                "throughput": asyncio.run(
                    throughput(port, a.clients, a.messages, a.size, a.timeout)
                ),
                "concurrent": asyncio.run(
                    hold_streams(port, gw.pid, a.streams, a.idle_seconds, a.timeout)
                ),
                "load_average": os.getloadavg(),
            }
        finally:
            stop(gw)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
