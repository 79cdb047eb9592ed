"""tribridge side by side with Apache dubbo-go-pixiu and nginx's proxy hop, in one run.

One command gives every figure of issue 17 (docs/benchmarks.md):

    scripts/bench-setup.sh
    .venv/bin/python bench/gateway_peers.py            # as root; about 6-8 min

Three phases, each alternating between the variants round by round (this machine is shared:
rounds that alternate see the same noise; ratios and the gateway CPU seconds per request, read
from /proc, move much less than absolute req/s):

1. **throughput, one worker each**: ``wrk -t1 -c50`` per variant; req/s and the gateway's CPU
   µs per request (utime+stime of the gateway and its descendants over the run / requests);
2. **latency at a fixed rate** (open loop, ``--rate`` req/s, each request timed from the moment
   it was due): p50 / p99 through each gateway and, in the same round, of a direct call of the
   same thing (a Dubbo2 call from this process to the provider; for nginx a request to its
   ``return 200`` backend), and the difference: the latency the gateway adds;
3. **throughput, two workers each** (``tribridge run --workers 2``, Pixiu ``-m 2``, nginx
   ``worker_processes 2``; ``wrk -t2``): the two cores used by every gateway.

Access logs are ON in every variant unless ``--access-log off``, each to its own file: tribridge's
lines (stdout, batched by the gateway), nginx's (``buffer=4k flush=200ms``, the same batching),
Pixiu's ``dgp.filter.http.accesslog`` (its only mode: one open + write per line).

Variants:

* ``tribridge``: as installed (compiled codecs where built; the header says which), body
  ``{"name": "world"}``, the field ``name`` as the ``String`` argument, a static address;
* ``tribridge-pure``: the same with ``TRIBRIDGE_PURE_PYTHON=1`` (the pure-Python codecs);
* ``--tribridge NAME=SITE``: another build of tribridge (``PYTHONPATH=SITE``, e.g. another git
  revision installed there; ``bench/compare_revisions.py`` does that);
* ``pixiu-zk``: Pixiu v1.1.0's ``dgp.filter.http.apiconfig`` + ``dgp.filter.http.dubboproxy``
  (an API config mapping ``requestBody.name`` to argument 0, a cached generic reference found
  through ZooKeeper): Pixiu's main HTTP -> Dubbo path;
* ``pixiu``: Pixiu's ``dgp.filter.http.directdubboproxy`` (path ``/{app}/{interface}/{method}``,
  version / group / types in ``x-dubbo-service-*`` headers, the body ``"world"`` as the argument
  list), a static cluster endpoint;
* ``floor``: ``bench/floor_hop.py``, the least a Python (uvloop) process must do
  per request for this hop — parse, transcode with the compiled codec, answer, log — and
  nothing else: what no trimming of tribridge's own work could beat on this machine;
* ``nginx``: an nginx worker proxying to an nginx ``return 200`` backend, the bare HTTP hop.

Every Dubbo gateway calls ``GreetService.greet(String)`` (group g1, version 1.0.0) on ONE
Apache Dubbo 3.3 Java provider (``interop/java/peer``'s ``Provider``).

**Network.** The script (root only) re-runs itself inside a network namespace it creates (and
deletes at the end) with only loopback plus one private address on ``lo`` (10.233.x.y/32,
chosen by PID).  Apache Dubbo neither registers nor binds a loopback address (told 127.0.0.1
it binds all interfaces), and dubbo-go inside Pixiu listens on ``*:50051`` and a random port
for its own Triple services (not configurable from Pixiu's file in v1.1.0): inside the
namespace those reach nothing outside it.  The provider and ZooKeeper use the private
address, the gateways 127.0.0.1 on free ports; the namespace's listening sockets are printed.
Every process started is stopped by its PID.

Needs ``scripts/setup.sh`` (Java peer, wrk, nginx, ZooKeeper) and ``scripts/bench-setup.sh``
(Pixiu).  ``--json FILE`` writes every sample (``bench/compare_revisions.py`` reads it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gateway_vs_nginx import NGINX_CONF, free_port, stop, wait_port

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PIXIU = ROOT / "bench" / "pixiu" / "bin" / "pixiu"
JAVA33 = ROOT / "interop" / "java" / "dubbo33" / "target"
SERVICE = "com.tribridge.compat.GreetService"
PATH = f"/bench/{SERVICE}/greet"
BODY = '{"name":"world"}'
DIRECT_BODY = '"world"'  # Pixiu's directdubboproxy takes the argument list as the body
GREETING = "hello world from g1/1.0.0"
ANSWER = f'"{GREETING}"'.encode()
TICK = os.sysconf("SC_CLK_TCK")
#: set by the outer run for the inner one: "<namespace> <private address>"
NETNS_ENV = "TRIBRIDGE_BENCH_NETNS"
DEFAULT_VARIANTS = "tribridge,tribridge-pure,floor,pixiu-zk,pixiu,nginx"
PHASES = ("throughput", "latency", "workers2")  # the default; "profile" on request
JVM_FLAGS = [
    "-XX:+UseSerialGC",
    "-Xmx256m",
    "-Djava.net.preferIPv4Stack=true",
    "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
    "-Ddubbo.application.logger=slf4j",
    "-Ddubbo.application.qos-enable=false",
    "-Ddubbo.application.qos.enable=false",
    "-Ddubbo.qos.enable=false",
    *(
        f"--add-opens=java.base/{p}=ALL-UNNAMED"
        for p in ("java.lang", "java.util", "java.math", "java.io", "java.time", "java.net",
                  "java.lang.reflect", "java.util.concurrent", "java.text", "sun.nio.ch")
    ),
]  # fmt: skip
HEADERS = {
    "Content-Type": "application/json",
    "x-dubbo-service-version": "1.0.0",
    "x-dubbo-service-group": "g1",
    "x-dubbo-service-method-overloading": "java.lang.String",
}

# wrk sends the same request to every peer (nginx ignores the headers and body); the headers
# are what Pixiu's directdubboproxy filter reads, tribridge's route names them in its config.
WRK_LUA = 'wrk.method = "POST"\nwrk.body = \'{body}\'\n' + "".join(
    f'wrk.headers["{k}"] = "{v}"\n' for k, v in HEADERS.items()
)


def tribridge_config(provider: str, http_port: int, access_log: bool) -> str:
    return f"""
listen: {{host: 127.0.0.1, port: {http_port}}}
access_log: {"true" if access_log else "false"}
registries:
  static: {{type: static, services: {{{SERVICE}: ["{provider}?version=1.0.0&group=g1"]}}}}
services:
  - interface: {SERVICE}
    version: 1.0.0
    group: g1
    methods: {{greet: {{types: [java.lang.String]}}}}
routes:
  - {{method: POST, path: "{PATH}", service: {SERVICE}, call: greet,
     params: [{{from: body, name: name, type: java.lang.String}}]}}
"""


def pixiu_listener(http_port: int, filters: str, routes: str) -> str:
    return f"""
static_resources:
  listeners:
    - name: "net/http"
      protocol_type: "HTTP"
      address: {{socket_address: {{address: "127.0.0.1", port: {http_port}}}}}
      filter_chains:
        filters:
          - name: dgp.filter.httpconnectionmanager
            config:
              route_config:
                routes:
{routes}
              http_filters:
{filters}
      config: {{idle_timeout: "5000ms", read_timeout: "5000ms", write_timeout: "5000ms"}}
"""


def pixiu_access_log(path: Path | None) -> str:
    if path is None:
        return ""
    return (
        "                - name: dgp.filter.http.accesslog\n"
        f'                  config: {{outPutPath: "{path}"}}\n'
    )


def pixiu_config(host: str, provider_port: int, http_port: int, log: Path | None) -> str:
    """Pixiu v1.1.0's HTTP -> Dubbo2 direct generic call, static endpoint, no registry."""
    routes = (
        '                  - match: {prefix: "/bench"}\n'
        '                    route: {cluster: "greet", cluster_not_found_response_code: 505}'
    )
    filters = pixiu_access_log(log) + (
        "                - name: dgp.filter.http.directdubboproxy\n                  config:"
    )
    return pixiu_listener(http_port, filters, routes) + f"""
  clusters:
    - name: "greet"
      lb_policy: "lb"
      endpoints:
        - id: 1
          socket_address: {{address: {host}, port: {provider_port}}}
"""


def pixiu_zk_config(zk: str, api_path: Path, http_port: int, log: Path | None) -> str:
    """Pixiu's API-config path: a generic reference per API, cached, found in ZooKeeper."""
    filters = pixiu_access_log(log) + f"""\
                - name: dgp.filter.http.apiconfig
                  config: {{path: "{api_path}"}}
                - name: dgp.filter.http.dubboproxy
                  config:
                    dubboProxyConfig:
                      registries:
                        zookeeper: {{protocol: zookeeper, timeout: "3s", address: "{zk}"}}
                      timeout_config: {{connect_timeout: "5s", request_timeout: "5s"}}"""
    return pixiu_listener(http_port, filters, '                  - match: {prefix: "/"}')


PIXIU_API = f"""
name: bench
description: tribridge bench
resources:
  - path: '{PATH}'
    type: restful
    description: greet
    methods:
      - httpVerb: POST
        enable: true
        timeout: 5s
        inboundRequest: {{requestType: http}}
        integrationRequest:
          requestType: dubbo
          mappingParams:
            - {{name: requestBody.name, mapTo: 0, mapType: "java.lang.String"}}
          applicationName: bench
          interface: {SERVICE}
          method: greet
          group: g1
          version: 1.0.0
          clusterName: bench
"""

PIXIU_LOG = """
level: "error"
development: false
encoding: "console"
outputPaths: ["stderr"]
errorOutputPaths: ["stderr"]
"""


# ---- measuring ------------------------------------------------------------------------------


def tree_pids(pid: int) -> list[int]:
    """The process and its descendants (nginx's workers, tribridge's worker processes)."""
    out, todo = [], [pid]
    while todo and len(out) < 256:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return out


def cpu_seconds(pid: int) -> float:
    total = 0.0
    for p in tree_pids(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
    return total


def wrk(url: str, seconds: int, conns: int, threads: int, script: str) -> tuple[float, int, int]:
    """(req/s, requests, errors) of one bounded wrk run: non-2xx answers and socket errors."""
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "-s", script, url],
        capture_output=True, text=True, timeout=seconds + 30, check=True,
    ).stdout  # fmt: skip
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    n = re.search(r"(\d+) requests in", out)
    if not rps or not n:
        raise RuntimeError(f"wrk output not understood:\n{out}")
    errors = sum(
        int(x)
        for x in re.findall(r"(?:Non-2xx or 3xx responses|connect|read|write|timeout):? (\d+)", out)
    )
    return float(rps.group(1)), int(n.group(1)), errors


async def paced(one: Callable[[float], Awaitable[None]], n: int, rate: float) -> None:
    """Start ``n`` calls at ``rate`` per second (open loop: a slow answer does not delay the
    next call), each given the moment it was due; bounded by the schedule plus 30 s."""
    start = time.perf_counter()
    tasks = []
    for i in range(n):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(due)))
    await asyncio.wait_for(asyncio.gather(*tasks), 30)


async def _read_http_response(r: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, keep-alive) of one HTTP/1.1 response: Content-Length or chunked."""
    head = (await r.readuntil(b"\r\n\r\n")).lower()
    status = int(head[9:12])
    m = re.search(rb"\r\ncontent-length:\s*(\d+)", head)
    if m:
        body = await r.readexactly(int(m.group(1)))
    elif b"\r\ntransfer-encoding: chunked" in head:
        parts = []
        while True:
            size = int((await r.readuntil(b"\r\n")).split(b";")[0], 16)
            parts.append((await r.readexactly(size + 2))[:-2])
            if size == 0:
                break
        body = b"".join(parts)
    else:
        raise RuntimeError(f"response without a length: {head[:200]!r}")
    return status, body, b"\r\nconnection: close" not in head


async def http_latencies(port: int, body: str, n: int, rate: float) -> tuple[list[float], int]:
    """Latencies (s) of ``n`` POSTs at a fixed rate over a pool of keep-alive connections, and
    the number of answers that were not 200 with the expected body."""
    head = "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items())
    req = (f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}"
           f"Content-Length: {len(body)}\r\n\r\n{body}").encode()  # fmt: skip
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(64):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    out: list[float] = []
    errors = 0

    async def one(due: float) -> None:
        nonlocal errors
        r, w = await pool.get()
        try:
            w.write(req)
            status, got, keep = await _read_http_response(r)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            status, got, keep = 0, b"", False
        out.append(time.perf_counter() - due)
        if status != 200 or (got.strip() != ANSWER and got != b'"Hello, world"'):
            errors += 1
        if not keep:
            w.close()
            r, w = await asyncio.open_connection("127.0.0.1", port)
        pool.put_nowait((r, w))

    await paced(one, n, rate)
    while not pool.empty():
        pool.get_nowait()[1].close()
    return out, errors


class _DubboClient(asyncio.Protocol):
    """The direct call: one multiplexed Dubbo2 connection, replies matched by request id."""

    def __init__(self) -> None:
        from tribridge.codecs.dubbo import FrameDecoder

        self.frames = FrameDecoder()
        self.waiting: dict[int, asyncio.Future[Any]] = {}
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport instances

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        for frame in self.frames.feed(data):
            fut = self.waiting.pop(frame.request_id, None)
            if fut is not None and not fut.done():
                fut.set_result(frame)


async def dubbo_latencies(host: str, port: int, n: int, rate: float) -> tuple[list[float], int]:
    """Latencies (s) of ``n`` direct ``greet("world")`` calls at a fixed rate, and the number
    of replies that were not the greeting."""
    from tribridge.codecs.dubbo import RequestTemplate, decode_response

    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(_DubboClient, host, port)
    tmpl = RequestTemplate(SERVICE, "greet", "Ljava/lang/String;", "1.0.0", {"group": "g1"})
    out: list[float] = []
    errors = 0
    ids = iter(range(1, n + 1))

    async def one(due: float) -> None:
        nonlocal errors
        rid = next(ids)
        fut = client.waiting[rid] = loop.create_future()
        client.transport.write(tmpl.frame(rid, ["world"]))
        res = decode_response(await asyncio.wait_for(fut, 10))
        out.append(time.perf_counter() - due)
        errors += not (res.ok and res.value == GREETING)

    await paced(one, n, rate)
    client.transport.close()
    return out, errors


def pct(xs: list[float], p: float) -> float:
    """The ``p`` quantile of latencies in seconds, in milliseconds."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] * 1000


# ---- the peers ------------------------------------------------------------------------------


@dataclass
class Peer:
    """One running gateway: where to send, what to send, whose CPU to read, and the direct
    call its added latency is measured against."""

    name: str
    port: int
    pid: int
    body: str = BODY
    direct: Callable[[int, float], Awaitable[tuple[list[float], int]]] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"


@dataclass
class Bench:
    """Everything one run starts, stopped by PID at the end."""

    args: argparse.Namespace
    tmp: Path
    host: str
    provider_port: int = 0
    zk: Any = None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[TextIO] = field(default_factory=list)

    def spawn(self, cmd: list[str], env: dict[str, str] | None = None,
              stdout: Path | None = None) -> subprocess.Popen[bytes]:  # fmt: skip
        out: Any = subprocess.DEVNULL
        if stdout is not None:
            out = open(stdout, "a")  # noqa: SIM115 (closed in close())
            self.logs.append(out)
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL,
                             stdin=subprocess.DEVNULL, cwd=ROOT, env=env)  # fmt: skip
        self.procs.append(p)
        return p

    def stop_all(self, procs: list[subprocess.Popen[bytes]]) -> None:
        for p in reversed(procs):
            stop(p)
            if p in self.procs:
                self.procs.remove(p)

    def close(self) -> None:
        self.stop_all(list(self.procs))
        if self.zk is not None:
            self.zk.close()
        for f in self.logs:
            f.close()

    def access_log(self, name: str) -> Path | None:
        return self.tmp / f"{name}-access.log" if self.args.access_log == "on" else None

    def direct_dubbo(self, n: int, rate: float) -> Awaitable[tuple[list[float], int]]:
        return dubbo_latencies(self.host, self.provider_port, n, rate)


def start_provider(b: Bench, prefix_registry: str) -> str:
    """The Java provider; returns its Dubbo version."""
    b.provider_port = free_port()
    jlog = b.tmp / "provider.log"
    with open(jlog, "wb") as out:
        prov = subprocess.Popen(
            ["java", *JVM_FLAGS, "-cp", f"{JAVA33}/classes:{JAVA33}/lib/*",
             "com.tribridge.compat.Provider", "app=bench", f"host={b.host}",
             f"protocols=dubbo:{b.provider_port}", f"registry={prefix_registry}"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    b.procs.append(prov)
    wait_marker(jlog, "READY", prov, 120)
    return next(ln.split()[2] for ln in jlog.read_text().splitlines() if ln.startswith("READY"))


def tribridge_env(name: str, sites: dict[str, str]) -> dict[str, str] | None:
    """The environment of a tribridge variant, or None when ``name`` is not one."""
    if not (name.startswith("tribridge") or name in sites):
        return None
    env = {k: v for k, v in os.environ.items() if k not in ("TRIBRIDGE_PURE_PYTHON", NETNS_ENV)}
    if name == "tribridge-pure":
        env["TRIBRIDGE_PURE_PYTHON"] = "1"
    if name in sites:
        env["PYTHONPATH"] = str(Path(sites[name]).resolve())
    return env


def start_peers(b: Bench, wanted: list[str], workers: int,
                profile: Path | None = None) -> list[Peer]:  # fmt: skip
    """Every wanted gateway with ``workers`` workers, each checked to answer the greeting;
    ``profile``: the tribridge variants run under cProfile, writing there on exit."""
    args, tmp = b.args, b.tmp
    peers: list[Peer] = []
    sites = dict(s.split("=", 1) for s in args.tribridge)
    for name in wanted:
        port = free_port()
        env = tribridge_env(name, sites)
        if env is not None:
            cfg = tmp / f"{name}.yaml"
            cfg.write_text(tribridge_config(f"{b.host}:{b.provider_port}", port,
                                            args.access_log == "on"))  # fmt: skip
            prof = ["-m", "cProfile", "-o", str(profile)] if profile else []
            cmd = [PY, *prof, "-m", "tribridge.cli", "run", "-c", str(cfg), "--workers", str(workers)]
            p = b.spawn(cmd, env, stdout=b.access_log(name))
            peers.append(Peer(name, port, p.pid, direct=b.direct_dubbo))
        elif name.startswith("pixiu"):
            cfg = tmp / f"{name}.yaml"
            log = b.access_log(name)
            if name == "pixiu-zk":
                (tmp / "api.yaml").write_text(PIXIU_API)
                cfg.write_text(pixiu_zk_config(b.zk.address, tmp / "api.yaml", port, log))
            else:
                cfg.write_text(pixiu_config(b.host, b.provider_port, port, log))
            (tmp / "pixiu-log.yaml").write_text(PIXIU_LOG)
            # dubbo-go / getty log INFO lines (per connection) that -g (level error) does not
            # silence in v1.1.0: to /dev/null.  -m N: GOMAXPROCS=N, N workers.
            p = b.spawn([str(PIXIU), "gateway", "start", "-g", str(tmp / "pixiu-log.yaml"),
                         "-m", str(workers), "-c", str(cfg)])  # fmt: skip
            body = DIRECT_BODY if name == "pixiu" else BODY
            peers.append(Peer(name, port, p.pid, body, direct=b.direct_dubbo))
        elif name == "floor":
            if workers != 1:
                continue  # one process by design: the floor of ONE worker
            log = b.access_log(name)
            cmd = [PY, str(ROOT / "bench" / "floor_hop.py"), "--port", str(port),
                   "--provider", f"{b.host}:{b.provider_port}", *(["--log", str(log)] if log else [])]  # fmt: skip
            p = b.spawn(cmd, tribridge_env("tribridge", sites))
            peers.append(Peer(name, port, p.pid, direct=b.direct_dubbo))
        elif name == "nginx":
            backend = free_port()
            log = b.access_log(name)
            access = f"access_log {log} combined buffer=4k flush=200ms;" if log else ""
            conf = tmp / f"nginx-{workers}.conf"
            conf.write_text(NGINX_CONF.format(tmp=tmp, backend=backend, proxy=port,
                                              workers=workers, access_log=access))  # fmt: skip
            nginx = shutil.which("nginx") or "/usr/sbin/nginx"
            p = b.spawn([nginx, "-p", str(tmp), "-c", str(conf), "-g", "daemon off;"])

            def direct(n: int, rate: float, backend: int = backend) -> Awaitable[Any]:
                return http_latencies(backend, BODY, n, rate)

            peers.append(Peer(name, port, p.pid, direct=direct))
        else:
            raise SystemExit(f"unknown variant {name!r}")
    for peer in peers:
        wait_port(peer.port, 60)
        if peer.name != "nginx":
            answered(peer)
    return peers


def answered(peer: Peer) -> None:
    """One request by hand: the gateway answers the provider's greeting (Pixiu's first call
    resolves its reference, so a few tries)."""
    import http.client

    deadline = time.monotonic() + 20
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", peer.port, timeout=10)
            c.request("POST", PATH, peer.body, HEADERS)
            r = c.getresponse()
            body = r.read()
            c.close()
            if r.status == 200 and body.strip() == ANSWER:
                return
            problem = f"{r.status} {body[:300]!r}"
        except OSError as e:
            problem = repr(e)
        if time.monotonic() > deadline:
            raise RuntimeError(f"{peer.name} on port {peer.port} answered {problem}")
        time.sleep(0.5)


def wait_marker(log: Path, marker: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while marker not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{marker!r} not seen in {log}:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def builds(b: Bench, wanted: list[str]) -> dict[str, str]:
    """Which tribridge each tribridge variant runs (file, codec implementations), asked of a
    child process with that variant's environment."""
    sites = dict(s.split("=", 1) for s in b.args.tribridge)
    probe = ("import tribridge; from tribridge.codecs import dubbo, hessian2; "
             "print(tribridge.__file__, hessian2.IMPLEMENTATION, dubbo.IMPLEMENTATION)")  # fmt: skip
    out = {}
    for name in wanted:
        env = tribridge_env(name, sites)
        if env is None:
            continue
        r = subprocess.run([PY, "-c", probe], env=env, cwd=b.tmp, capture_output=True,
                           text=True, timeout=60, check=True)  # fmt: skip
        out[name] = r.stdout.strip()
        if name in sites and not out[name].startswith(str(Path(sites[name]).resolve())):
            raise SystemExit(f"{name}: PYTHONPATH={sites[name]} runs {out[name]}")
    return out


def listeners() -> list[tuple[str, str, int]]:
    """Every listening TCP socket here (``ss -ltnpH``): (address, process name, pid)."""
    r = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, timeout=10, check=True)
    rows = []
    for line in r.stdout.splitlines():
        proc = re.search(r'"([^"]+)",pid=(\d+)', line)
        rows.append((line.split()[3], *((proc.group(1), int(proc.group(2))) if proc else ("?", 0))))
    return rows


def show_listeners() -> None:
    """Print every listening socket of the bench's network namespace (all of them are ours)."""
    rows = "; ".join(f"{a} {n}" for a, n, _ in listeners())
    print(f"listening sockets inside the bench's private network namespace: {rows}", flush=True)


# ---- phases -------------------------------------------------------------------------------


def throughput(peers: list[Peer], args: argparse.Namespace, threads: int,
               tmp: Path) -> dict[str, dict[str, list[float]]]:  # fmt: skip
    """Alternating wrk rounds: req/s, gateway CPU µs per request, errors."""
    conns = args.connections
    scripts = {}
    for p in peers:
        scripts[p.name] = str(tmp / f"{p.name}.lua")
        Path(scripts[p.name]).write_text(WRK_LUA.replace("{body}", p.body))
    for p in peers:  # warm up (the JVM's JIT most of all); errors don't count
        wrk(p.url, args.warmup, conns, threads, scripts[p.name])
    res: dict[str, dict[str, list[float]]] = {
        p.name: {"rps": [], "cpu_us": [], "errors": []} for p in peers
    }
    for r in range(args.rounds):
        # the order flips every round (ABBA): no variant always runs first after a pause
        for p in peers if r % 2 == 0 else peers[::-1]:
            c0 = cpu_seconds(p.pid)
            x, n, errs = wrk(p.url, args.seconds, conns, threads, scripts[p.name])
            res[p.name]["rps"].append(x)
            res[p.name]["cpu_us"].append((cpu_seconds(p.pid) - c0) / max(n, 1) * 1e6)
            res[p.name]["errors"].append(errs)
        print(f"  round {r + 1}: " + "   ".join(
            f"{p.name} {res[p.name]['rps'][-1]:,.0f} req/s {res[p.name]['cpu_us'][-1]:.0f} µs"
            + (f" ({res[p.name]['errors'][-1]:.0f} errors)" if res[p.name]["errors"][-1] else "")
            for p in peers
        ), flush=True)  # fmt: skip
    return res


def latency(peers: list[Peer], args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    """Alternating rounds at a fixed rate: for each gateway its direct call, then through it."""
    n, rate = args.requests, args.rate
    res: dict[str, dict[str, list[float]]] = {
        p.name: {k: [] for k in ("p50", "p99", "direct_p50", "direct_p99", "errors")}
        for p in peers
    }

    async def run() -> None:
        for p in peers:  # warm up both paths
            assert p.direct is not None
            await p.direct(min(n, 500), rate)
            await http_latencies(p.port, p.body, min(n, 500), rate)
        for r in range(args.rounds):
            for p in peers:
                assert p.direct is not None
                direct, e1 = await p.direct(n, rate)
                via, e2 = await http_latencies(p.port, p.body, n, rate)
                row = res[p.name]
                row["direct_p50"].append(pct(direct, 0.5))
                row["direct_p99"].append(pct(direct, 0.99))
                row["p50"].append(pct(via, 0.5))
                row["p99"].append(pct(via, 0.99))
                row["errors"].append(e1 + e2)
            print(f"  round {r + 1}: " + "   ".join(
                f"{p.name} {res[p.name]['p50'][-1]:.3f}/{res[p.name]['p99'][-1]:.3f} ms "
                f"(direct {res[p.name]['direct_p50'][-1]:.3f}/{res[p.name]['direct_p99'][-1]:.3f})"
                + (f" {res[p.name]['errors'][-1]:.0f} errors" if res[p.name]["errors"][-1] else "")
                for p in peers
            ), flush=True)  # fmt: skip

    try:
        import uvloop

        uvloop.run(run())
    except ImportError:
        asyncio.run(run())
    return res


def print_throughput(title: str, res: dict[str, dict[str, list[float]]]) -> None:
    med = statistics.median
    ng = med(res["nginx"]["rps"]) if "nginx" in res else None
    px = med(res["pixiu-zk"]["rps"]) if "pixiu-zk" in res else None
    print(f"{title}, median of rounds:")
    print(f"  {'variant':16} {'req/s':>9} {'/nginx':>7} {'/pixiu-zk':>9} {'CPU µs/req':>11} errors")
    for name, row in res.items():
        m = med(row["rps"])
        print(f"  {name:16} {m:9,.0f} {(f'{m / ng:.2f}' if ng else '-'):>7} "
              f"{(f'{m / px:.2f}' if px else '-'):>9} {med(row['cpu_us']):11.1f} "
              f"{sum(row['errors']):.0f}")  # fmt: skip


def print_latency(res: dict[str, dict[str, list[float]]], args: argparse.Namespace) -> None:
    med = statistics.median
    print(f"latency at {args.rate:.0f} req/s, {args.requests} requests per sample, "
          "median of rounds (ms):")  # fmt: skip
    print(f"  {'variant':16} {'p50':>7} {'p99':>7} {'direct p50':>10} {'direct p99':>10} "
          f"{'added p50':>9} {'added p99':>9} errors")  # fmt: skip
    for name, row in res.items():
        added50 = med(a - d for a, d in zip(row["p50"], row["direct_p50"], strict=True))
        added99 = med(a - d for a, d in zip(row["p99"], row["direct_p99"], strict=True))
        print(f"  {name:16} {med(row['p50']):7.3f} {med(row['p99']):7.3f} "
              f"{med(row['direct_p50']):10.3f} {med(row['direct_p99']):10.3f} "
              f"{added50:9.3f} {added99:9.3f} {sum(row['errors']):.0f}")  # fmt: skip


def profile(b: Bench, wanted: list[str]) -> None:
    """One tribridge variant under cProfile for one wrk run; the functions that took the most
    time of their own (cProfile slows Python code, not C or syscalls: shares, not µs)."""
    import pstats

    if not wanted:
        raise SystemExit("--phases profile: no tribridge variant among --only")
    out = b.tmp / "gateway.prof"
    peers = start_peers(b, wanted, 1, profile=out)
    print(f"profile of {wanted[0]} under cProfile, wrk -t1 -c{b.args.connections} "
          f"-d{b.args.seconds}s:", flush=True)  # fmt: skip
    throughput(peers, argparse.Namespace(**{**vars(b.args), "rounds": 1}), 1, b.tmp)
    b.stop_all([p for p in b.procs if p.pid == peers[0].pid])  # SIGTERM: cProfile writes out
    keep = os.environ.get("PROFILE_OUT")  # the raw profile kept for pstats / snakeviz
    if keep:
        shutil.copyfile(out, keep)
    stats = pstats.Stats(str(out))
    stats.sort_stats("tottime").print_stats(int(os.environ.get("PROFILE_ROWS", "25")))


# ---- the run ------------------------------------------------------------------------------


def run_in_private_netns(argv: list[str]) -> int:
    """Create a network namespace with lo and one private address, run this script inside it
    (same arguments), delete the namespace afterwards."""
    from interop.netns import Namespaces, run_ip

    nets = Namespaces("tbgp")
    n = os.getpid() % 16384  # a private address chosen by our PID
    addr = f"10.233.{n // 64}.{(n % 64) * 4 + 2}"
    try:
        nets.add("b")
        run_ip("ip", "-n", nets.name("b"), "addr", "add", f"{addr}/32", "dev", "lo")
        env = {**os.environ, NETNS_ENV: f"{nets.name('b')} {addr}"}
        budget = 3600  # far above a default run (about 8 min); the inner run bounds itself
        return subprocess.run([*nets.exec_prefix("b"), PY, __file__, *argv], env=env,
                              timeout=budget).returncode  # fmt: skip
    finally:
        nets.delete()


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=5, help="per wrk run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=4, help="seconds of wrk per variant first")
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--rate", type=float, default=500.0, help="fixed rate of the latency phase")
    ap.add_argument("--requests", type=int, default=1500, help="per latency sample")
    ap.add_argument("--phases", default=",".join(PHASES),
                    help=f"some of {','.join(PHASES)},profile (cProfile of the first tribridge)")  # fmt: skip
    ap.add_argument("--only", default=None, help=f"variants (default {DEFAULT_VARIANTS})")
    ap.add_argument("--tribridge", action="append", default=[], metavar="NAME=SITE",
                    help="another tribridge variant: PYTHONPATH=SITE (an installed tree)")
    ap.add_argument("--access-log", choices=("on", "off"), default="on")
    ap.add_argument("--json", type=Path, help="write every sample here")
    args = ap.parse_args()
    for what, lo, hi in (("seconds", 1, 60), ("rounds", 1, 20), ("connections", 1, 1000),
                         ("requests", 10, 100_000), ("rate", 1, 20_000)):  # fmt: skip
        if not lo <= getattr(args, what) <= hi:
            ap.error(f"--{what} must be within {lo}..{hi}")
    return args


def main() -> int:
    args = parse_args()
    inside = os.environ.get(NETNS_ENV)
    if inside is None:
        if os.geteuid() != 0:
            # Dubbo binds 0.0.0.0 when told 127.0.0.1 (it refuses loopback), dubbo-go inside
            # Pixiu binds *:50051: neither may run outside a namespace of its own
            raise SystemExit("run as root: the bench runs in a private network namespace")
        return run_in_private_netns(sys.argv[1:])
    names = [*(n.split("=", 1)[0] for n in args.tribridge)]
    wanted = args.only.split(",") if args.only else [*DEFAULT_VARIANTS.split(","), *names]
    phases = args.phases.split(",")
    if set(phases) - {*PHASES, "profile"}:
        raise SystemExit(f"--phases: {set(phases) - {*PHASES, 'profile'}} unknown")
    if not shutil.which("wrk") or not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        raise SystemExit("wrk and nginx are needed: run scripts/setup.sh")
    if not (JAVA33 / "lib").is_dir():
        raise SystemExit("the Java Dubbo 3.3 provider is not built: run scripts/setup.sh")
    if any(n.startswith("pixiu") for n in wanted) and not PIXIU.exists():
        raise SystemExit(f"{PIXIU} missing: run scripts/bench-setup.sh")
    host = inside.split()[1]
    b = Bench(args, Path(tempfile.mkdtemp(prefix="tribridge-peers-")), host)
    results: dict[str, Any] = {"variants": wanted, "args": {k: str(v) for k, v in vars(args).items()}}
    try:
        registry = "N/A"
        if "pixiu-zk" in wanted:
            from interop.zk_server import ZookeeperServer

            b.zk = ZookeeperServer(host=host)
            b.zk.start(timeout=30)
            registry = f"zookeeper://{b.zk.address}"
        version = start_provider(b, registry)
        results["builds"] = builds(b, wanted)
        print(f"load average before: {os.getloadavg()}; cpus {os.cpu_count()}; provider Apache "
              f"Dubbo {version} at {host}:{b.provider_port}; access logs {args.access_log}",
              flush=True)  # fmt: skip
        for name, what in results["builds"].items():
            print(f"  {name}: {what}")
        if "throughput" in phases or "latency" in phases:
            peers = start_peers(b, wanted, 1)
            show_listeners()
            if "throughput" in phases:
                print(f"throughput, one worker each, wrk -t1 -c{args.connections} "
                      f"-d{args.seconds}s:", flush=True)  # fmt: skip
                results["throughput"] = throughput(peers, args, 1, b.tmp)
            if "latency" in phases:
                print(f"latency, one worker each, {args.rate:.0f} req/s:", flush=True)
                results["latency"] = latency(peers, args)
            b.stop_all([p for p in b.procs if p.pid in {q.pid for q in peers}])
        if "workers2" in phases:
            peers = start_peers(b, wanted, 2)
            print(f"throughput, two workers each, wrk -t2 -c{args.connections} "
                  f"-d{args.seconds}s:", flush=True)  # fmt: skip
            results["workers2"] = throughput(peers, args, 2, b.tmp)
        if "profile" in phases:
            sites = dict(s.split("=", 1) for s in args.tribridge)
            profile(b, [n for n in wanted if tribridge_env(n, sites) is not None][:1])
        print(f"load average after: {os.getloadavg()}")
        if "throughput" in results:
            print_throughput("throughput, one worker each", results["throughput"])
        if "latency" in results:
            print_latency(results["latency"], args)
        if "workers2" in results:
            print_throughput("throughput, two workers each", results["workers2"])
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    finally:
        b.close()
        shutil.rmtree(b.tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
