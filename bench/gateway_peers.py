"""tribridge side by side with Apache dubbo-go-pixiu and nginx's proxy hop, in one run.

Why one run, alternating: this machine is shared, so absolute req/s move with whatever else is
running; rounds that alternate between the peers see the same noise, and the ratios (and the
gateway CPU seconds per request, read from /proc, which move much less) are what count.

The route is the same for every Dubbo gateway: ``POST /bench/com.tribridge.compat.GreetService/greet``
with a JSON body becomes one Dubbo2 (dubbo + hessian2) call of ``GreetService.greet(String)``
(group g1, version 1.0.0) on ONE shared Apache Dubbo 3.3 Java provider (``interop/java/peer``'s
``Provider``), so the backend is not Python.  As root (the default here) the provider runs in a
network namespace created for the run, registered in a ZooKeeper on the host side of a veth pair
(Dubbo will not register a loopback address), so that Pixiu's registry-backed path can be
measured too; otherwise it binds 127.0.0.1 with no registry and ``pixiu-zk`` is skipped.

* ``tribridge``: body ``{"name": "world"}``, the field ``name`` as the argument, a static
  address for the provider.
* ``pixiu-zk``: the same body, Pixiu's ``dgp.filter.http.apiconfig`` + ``dgp.filter.http.dubboproxy``
  (an API config mapping ``requestBody.name`` to argument 0, a cached generic reference found
  through the ZooKeeper registry).
* ``pixiu``: Pixiu's ``dgp.filter.http.directdubboproxy`` (path ``/{app}/{interface}/{method}``,
  version / group / types in ``x-dubbo-service-*`` headers, the body ``"world"`` as the argument
  list), a static cluster endpoint.  Both Pixiu paths make a generic ``$invoke``.
* ``nginx`` (one worker) proxies to an nginx ``return 200`` backend: the cost of a bare HTTP
  proxy hop.

Access logs are off in all.  Gateways run one worker each (Pixiu with ``-m 1``, i.e.
GOMAXPROCS=1) so the comparison is per worker.  ``tribridge`` runs as installed (compiled
codecs where built), ``tribridge-pure`` with ``TRIBRIDGE_PURE_PYTHON=1``.  Needs
``scripts/setup.sh`` (Java peer, wrk, nginx, ZooKeeper) and ``scripts/bench-setup.sh`` (Pixiu).

    .venv/bin/python bench/gateway_peers.py [--seconds 5] [--rounds 3] [--connections 50]

Gateways listen on 127.0.0.1 on free ports (the provider and ZooKeeper on the private /30 of
the namespace's veth pair); every process started is stopped by its PID, the namespace and
link are deleted at the end.
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
import time
from pathlib import Path

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
ANSWER = b'"hello world from g1/1.0.0"'
TICK = os.sysconf("SC_CLK_TCK")
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

# wrk sends the same request to every peer (nginx ignores the headers and body); the headers
# are what Pixiu's directdubboproxy filter reads, tribridge's route names them in its config.
WRK_LUA = """
wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-dubbo-service-version"] = "1.0.0"
wrk.headers["x-dubbo-service-group"] = "g1"
wrk.headers["x-dubbo-service-method-overloading"] = "java.lang.String"
"""


def tribridge_config(provider: str, http_port: int) -> str:
    return f"""
listen: {{host: 127.0.0.1, port: {http_port}}}
access_log: false
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


def pixiu_config(host: str, provider_port: int, http_port: int) -> str:
    """Pixiu v1.1.0's HTTP -> Dubbo2 direct generic call, static endpoint, no registry."""
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
                  - match: {{prefix: "/bench"}}
                    route: {{cluster: "greet", cluster_not_found_response_code: 505}}
              http_filters:
                - name: dgp.filter.http.directdubboproxy
                  config:
      config: {{idle_timeout: "5000ms", read_timeout: "5000ms", write_timeout: "5000ms"}}
  clusters:
    - name: "greet"
      lb_policy: "lb"
      endpoints:
        - id: 1
          socket_address: {{address: {host}, port: {provider_port}}}
"""


def pixiu_zk_config(zk: str, api_path: Path, http_port: int) -> str:
    """Pixiu's API-config path: a generic reference per API, cached, found in ZooKeeper.

    dubbo-go (inside Pixiu) also listens on *:50051 and a random port for its own triple
    services; that is not configurable from Pixiu's file in v1.1.0.
    """
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
                  - match: {{prefix: "/"}}
              http_filters:
                - name: dgp.filter.http.apiconfig
                  config: {{path: "{api_path}"}}
                - name: dgp.filter.http.dubboproxy
                  config:
                    dubboProxyConfig:
                      registries:
                        zookeeper: {{protocol: zookeeper, timeout: "3s", address: "{zk}"}}
                      timeout_config: {{connect_timeout: "5s", request_timeout: "5s"}}
      config: {{idle_timeout: "5000ms", read_timeout: "5000ms", write_timeout: "5000ms"}}
"""


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


def tree_pids(pid: int) -> list[int]:
    """The process and its descendants (nginx's worker, any gateway worker processes)."""
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


def wrk(url: str, seconds: int, conns: int, script: str) -> tuple[float, int, int]:
    """(req/s, requests, errors) of one bounded wrk run: non-2xx answers and socket errors."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "-s", script, url],
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


def check_answer(port: int, body_text: str) -> None:
    """One request by hand: the gateway must answer the provider's greeting, not an error."""
    import http.client

    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", PATH, body_text, {
        "Content-Type": "application/json", "x-dubbo-service-version": "1.0.0",
        "x-dubbo-service-group": "g1", "x-dubbo-service-method-overloading": "java.lang.String",
    })  # fmt: skip
    r = c.getresponse()
    body = r.read()
    c.close()
    if r.status != 200 or body.strip() != ANSWER:
        raise RuntimeError(f"port {port} answered {r.status} {body[:300]!r}")


def wait_marker(log: Path, marker: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while marker not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{marker!r} not seen in {log}:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--only", default="tribridge,tribridge-pure,pixiu-zk,pixiu,nginx",
                    help="comma-separated variants to run")  # fmt: skip
    args = ap.parse_args()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not shutil.which("wrk") or not Path(nginx).exists():
        raise SystemExit("wrk and nginx are needed: run scripts/setup.sh")
    if not PIXIU.exists():
        raise SystemExit(f"{PIXIU} missing: run scripts/bench-setup.sh")
    if not (JAVA33 / "lib").is_dir():
        raise SystemExit("the Java Dubbo 3.3 provider is not built: run scripts/setup.sh")
    wanted = args.only.split(",")
    if "pixiu-zk" in wanted and os.geteuid() != 0:
        print("not root: no network namespace, so no ZooKeeper registration; pixiu-zk skipped")
        wanted.remove("pixiu-zk")
    procs: list[subprocess.Popen] = []
    tmp = Path(tempfile.mkdtemp(prefix="tribridge-peers-"))
    nets = zk = None
    try:
        pport = free_port()
        host, registry, prefix = "127.0.0.1", "N/A", []
        if "pixiu-zk" in wanted:
            from interop.netns import Namespaces
            from interop.zk_server import ZookeeperServer

            n = os.getpid() % 16384  # a /30 of 10.233.0.0/16 chosen by our PID
            net, low = f"10.233.{n // 64}", (n % 64) * 4
            host_ip, host = f"{net}.{low + 1}", f"{net}.{low + 2}"
            nets = Namespaces("tbpx")
            nets.add("java")
            nets.veth("v", None, f"{host_ip}/30", "java", f"{host}/30")
            zk = ZookeeperServer(host=host_ip)
            zk.start(timeout=30)
            registry, prefix = f"zookeeper://{zk.address}", nets.exec_prefix("java")
        jlog = tmp / "provider.log"
        with open(jlog, "wb") as out:
            prov = subprocess.Popen(
                [*prefix, "java", *JVM_FLAGS, "-cp", f"{JAVA33}/classes:{JAVA33}/lib/*",
                 "com.tribridge.compat.Provider", "app=bench", f"host={host}",
                 f"protocols=dubbo:{pport}", f"registry={registry}"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        procs.append(prov)
        wait_marker(jlog, "READY", prov, 120)
        dubbo_version = next(
            ln.split()[2] for ln in jlog.read_text().splitlines() if ln.startswith("READY")
        )
        urls: dict[str, str] = {}
        pids: dict[str, int] = {}
        bodies: dict[str, str] = {}

        def started(name: str, cmd: list[str], port: int, env: dict[str, str] | None = None,
                    body: str = BODY) -> None:  # fmt: skip
            p = subprocess.Popen(
                cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL, cwd=ROOT, env=env,
            )  # fmt: skip
            procs.append(p)
            wait_port(port, 30)
            urls[name], pids[name], bodies[name] = f"http://127.0.0.1:{port}{PATH}", p.pid, body

        clean = {k: v for k, v in os.environ.items() if k != "TRIBRIDGE_PURE_PYTHON"}
        for name, extra in (("tribridge", {}), ("tribridge-pure", {"TRIBRIDGE_PURE_PYTHON": "1"})):
            if name in wanted:
                port = free_port()
                cfg = tmp / f"{name}.yaml"
                cfg.write_text(tribridge_config(f"{host}:{pport}", port))
                started(name, [PY, "-m", "tribridge.cli", "run", "-c", str(cfg)], port,
                        {**clean, **extra})  # fmt: skip
        # dubbo-go / getty log INFO lines (per connection) that -g (level error) does not
        # silence in v1.1.0; stderr goes to /dev/null.  -m 1: GOMAXPROCS=1, one worker.
        (tmp / "pixiu-log.yaml").write_text(PIXIU_LOG)
        pixiu_cmd = [str(PIXIU), "gateway", "start", "-g", str(tmp / "pixiu-log.yaml"), "-m", "1"]
        if "pixiu-zk" in wanted:
            assert zk is not None
            port = free_port()
            (tmp / "api.yaml").write_text(PIXIU_API)
            (tmp / "pixiu-zk.yaml").write_text(pixiu_zk_config(zk.address, tmp / "api.yaml", port))
            started("pixiu-zk", [*pixiu_cmd, "-c", str(tmp / "pixiu-zk.yaml")], port)
        if "pixiu" in wanted:
            port = free_port()
            (tmp / "pixiu.yaml").write_text(pixiu_config(host, pport, port))
            started("pixiu", [*pixiu_cmd, "-c", str(tmp / "pixiu.yaml")], port, body=DIRECT_BODY)
        if "nginx" in wanted:
            backend, proxy = free_port(), free_port()
            (tmp / "nginx.conf").write_text(
                NGINX_CONF.format(tmp=tmp, backend=backend, proxy=proxy)
            )
            started("nginx", [nginx, "-p", str(tmp), "-c", f"{tmp}/nginx.conf",
                              "-g", "daemon off;"], proxy)  # fmt: skip
        scripts: dict[str, str] = {}
        for name, url in urls.items():
            if name != "nginx":
                deadline = time.monotonic() + 20  # Pixiu's first call resolves its reference
                while True:
                    try:
                        check_answer(int(url.split(":")[2].split("/")[0]), bodies[name])
                        break
                    except (RuntimeError, OSError):
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.5)
            scripts[name] = str(tmp / f"{name}.lua")
            Path(scripts[name]).write_text(WRK_LUA.replace("{body}", bodies[name]))
        for name, url in urls.items():  # warm up (the JVM's JIT most of all); errors don't count
            wrk(url, 2, args.connections, scripts[name])
        rps: dict[str, list[float]] = {n: [] for n in urls}
        cpu_us: dict[str, list[float]] = {n: [] for n in urls}
        print(f"load average before: {os.getloadavg()}; cpus {os.cpu_count()}; "
              f"provider Apache Dubbo {dubbo_version} at {host}:{pport}", flush=True)  # fmt: skip
        for r in range(args.rounds):
            for name, url in urls.items():
                c0 = cpu_seconds(pids[name])
                x, n, errs = wrk(url, args.seconds, args.connections, scripts[name])
                cpu = cpu_seconds(pids[name]) - c0
                rps[name].append(x)
                cpu_us[name].append(cpu / n * 1e6)
                if errs:
                    print(f"  {name}: {errs} errors of {n} requests", flush=True)
            print(f"round {r + 1}: " + "   ".join(
                f"{n} {rps[n][-1]:,.0f} req/s {cpu_us[n][-1]:.0f} µs" for n in urls
            ), flush=True)  # fmt: skip
        print(f"load average after: {os.getloadavg()}")
        ng = statistics.median(rps["nginx"]) if "nginx" in rps else None
        px = statistics.median(rps["pixiu-zk"]) if "pixiu-zk" in rps else None
        print(f"{'median':16} {'req/s':>9} {'/nginx':>7} {'/pixiu-zk':>9} {'CPU µs/req':>11}")
        for name in urls:
            m = statistics.median(rps[name])
            print(
                f"{name:16} {m:9,.0f} "
                f"{(f'{m / ng:.2f}' if ng else '-'):>7} {(f'{m / px:.2f}' if px else '-'):>9} "
                f"{statistics.median(cpu_us[name]):11.0f}"
            )
    finally:
        for p in reversed(procs):
            stop(p)
        if zk is not None:
            zk.close()
        if nets is not None:
            nets.delete()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
