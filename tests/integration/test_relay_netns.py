"""Cross-domain relay across real network isolation (Linux network namespaces).

Four namespaces, created and removed by this module (needs root)::

    A (consumer) 10.231.1.1 ── 10.231.1.2 GA (gateway A) 10.231.0.1 ══ bridge ══
        10.231.0.2 GB (gateway B) 10.231.2.2 ── 10.231.2.1 B (Dubbo2 and Triple providers)

A and B share no segment and no route; only the two gateways sit on the bridge, and
forwarding is off in their namespaces.  The consumers (dubbo-ssl-python over Dubbo2, and
HTTP/JSON) run inside A and must fail to reach the provider directly, then succeed
through gateway A -> mutual-TLS relay link -> gateway B.  Everything this module starts is
stopped by PID and the namespaces are deleted even when a test fails.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tribridge.interop.netns import Namespaces, run_ip

S = "com.tribridge.demo.DemoService"
NET = "10.231"
A_IP, GA_IP_A, GA_IP_BR, GB_IP_BR, GB_IP_B, B_IP = (
    f"{NET}.1.1",
    f"{NET}.1.2",
    f"{NET}.0.1",
    f"{NET}.0.2",
    f"{NET}.2.2",
    f"{NET}.2.1",
)
PROVIDER_PORT, RELAY_PORT, INGRESS_PORT, HTTP_PORT, TRI_PORT = 20880, 7443, 20881, 8080, 50051
TRI = "com.tribridge.triple.GreeterService"


class Topology:
    def __init__(self, tmp: Path) -> None:
        self.nets = Namespaces("tb")
        self.ns = {k: self.nets.name(k) for k in ("A", "GA", "GB", "B")}
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    # ---- namespaces (tribridge.interop.netns) ----------------------------------------------

    def build(self) -> None:
        self.nets.add(*self.ns)
        for ns in (self.ns["GA"], self.ns["GB"]):
            run_ip("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=0")
        self.nets.veth("a", "A", f"{A_IP}/24", "GA", f"{GA_IP_A}/24")
        self.nets.veth("g", "GA", f"{GA_IP_BR}/24", "GB", f"{GB_IP_BR}/24")
        self.nets.veth("b", "B", f"{B_IP}/24", "GB", f"{GB_IP_B}/24")

    # ---- processes -----------------------------------------------------------------------

    def start(self, ns: str, name: str, args: list[str], ready: str, timeout: float = 30) -> None:
        log = self.tmp / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns[ns], sys.executable, *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.procs.append(proc)
        deadline = time.monotonic() + timeout
        while ready not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{name} did not become ready (exit {proc.poll()}):\n"
                    + log.read_text(errors="replace")[-3000:]
                )
            time.sleep(0.05)

    def run_in(self, ns: str, code: str, *args: str, timeout: float = 30) -> dict:
        """Run a Python snippet inside a namespace; it prints one JSON line."""
        r = subprocess.run(
            ["ip", "netns", "exec", self.ns[ns], sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
        assert r.returncode == 0 and lines, f"consumer failed: {r.stdout}\n{r.stderr[-2000:]}"
        return json.loads(lines[-1])

    def teardown(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        self.nets.delete()


@pytest.fixture(scope="module")
def topo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    if os.geteuid() != 0:
        pytest.fail("test_relay_netns needs root to create network namespaces (id -u != 0)")
    tmp = tmp_path_factory.mktemp("netns")
    t = Topology(tmp)
    try:
        try:
            t.build()
        except (RuntimeError, OSError) as e:
            pytest.fail(f"cannot create network namespaces for the relay test: {e}")
        certs = tmp / "certs"
        r = subprocess.run(
            [sys.executable, "-m", "tribridge.cli", "certs", "make", str(certs),
             "--san", "tribridge-relay", "--san", GB_IP_BR,
             "--client", "gateway-a"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        (tmp / "b.yaml").write_text(
            f"""
listen: {{host: 127.0.0.1, port: {HTTP_PORT}}}
registries:
  static:
    type: static
    services:
      {S}: ["{B_IP}:{PROVIDER_PORT}?version=1.0.0"]
      {TRI}: ["tri://{B_IP}:{TRI_PORT}/{TRI}?version=1.0.0"]
relay:
  tls: {{cert: certs/server.pem, key: certs/server.key, ca: certs/ca.pem}}
  listen: {{host: {GB_IP_BR}, port: {RELAY_PORT}}}
  exports: ["com.tribridge.demo.*", "com.tribridge.triple.*"]
  allow: [gateway-a]
"""
        )
        (tmp / "a.yaml").write_text(
            f"""
listen: {{host: {GA_IP_A}, port: {HTTP_PORT}}}
registries:
  static: {{type: static, services: {{{S}: ["relay:b"], {TRI}: ["relay:b"]}}}}
relay:
  tls: {{cert: certs/gateway-a.pem, key: certs/gateway-a.key, ca: certs/ca.pem}}
  links:
    b: {{address: "{GB_IP_BR}:{RELAY_PORT}", server_name: tribridge-relay}}
services:
  - interface: {S}
    version: 1.0.0
    methods: {{greet: {{types: [java.lang.String]}}, add: {{types: [int, int]}}}}
  - interface: {TRI}
    version: 1.0.0
    methods: {{greet: [java.lang.String], add: [int, int], headers: []}}
passthrough_headers: [x-trace-id]
auto_routes: {{prefix: /, expose: ["com.tribridge.*"]}}
dubbo_ingress:
  listen: {{host: {GA_IP_A}, port: {INGRESS_PORT}}}
  routes: [{{interface: "com.tribridge.*", to: "relay:b"}}]
"""
        )
        t.start(
            "B",
            "provider",
            ["-m", "tribridge.interop.demo_provider", "--host", B_IP, "--port", str(PROVIDER_PORT)],
            "READY",
        )
        t.start(
            "B",
            "triple-provider",
            ["-m", "tribridge.interop.triple_peers", "grpc", str(TRI_PORT), "--host", B_IP],
            "ready",
        )
        t.start("GB", "gateway-b", ["-m", "tribridge.cli", "run", "-c", str(tmp / "b.yaml")],
                "tribridge listening on")  # fmt: skip
        t.start("GA", "gateway-a", ["-m", "tribridge.cli", "run", "-c", str(tmp / "a.yaml")],
                "relay link 'b'")  # fmt: skip
        log = (tmp / "gateway-a.log").read_text()
        assert "is up" in log, f"relay link did not come up:\n{log[-3000:]}"
        yield t
    finally:
        t.teardown()


CONNECT = """
import json, socket, sys, time
t = time.monotonic()
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()
    err = None
except OSError as e:
    err = f"{type(e).__name__}: {e}"
print(json.dumps({"error": err, "seconds": time.monotonic() - t}))
"""

DUBBO = """
import json, sys
from dubbo_ssl.client import DubboClient
c = DubboClient(sys.argv[3], group=None, version="1.0.0", host=f"{sys.argv[1]}:{sys.argv[2]}")
out = {"greet": c.call("greet", ["Ada"], context={"x-trace-id": "netns"}, timeout=10),
       "add": c.call("add", [40, 2], timeout=10)}
if sys.argv[3].endswith("GreeterService"):  # the Triple provider shows what it received
    out["headers"] = c.call("headers", [], context={"x-trace-id": "netns"}, timeout=10)
print(json.dumps(out))
"""

HTTP = """
import http.client, json, sys
conn = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=10)
conn.request("POST", sys.argv[3], body=sys.argv[4], headers={"x-trace-id": "netns-http"})
r = conn.getresponse()
print(json.dumps({"status": r.status, "body": json.loads(r.read())}))
"""


def test_consumer_in_a_cannot_reach_provider_or_gateway_b_directly(topo: Topology) -> None:
    for host, port in (
        (B_IP, PROVIDER_PORT),
        (B_IP, TRI_PORT),
        (GB_IP_BR, RELAY_PORT),
        (GB_IP_B, HTTP_PORT),
    ):
        out = topo.run_in("A", CONNECT, host, str(port))
        assert out["error"] is not None, f"A reached {host}:{port} directly"
        assert out["seconds"] < 3.5
    # the provider is up and reachable from inside its own domain
    assert topo.run_in("B", CONNECT, B_IP, str(PROVIDER_PORT))["error"] is None
    assert topo.run_in("B", CONNECT, B_IP, str(TRI_PORT))["error"] is None


def test_dubbo_consumer_in_a_reaches_provider_in_b_through_gateways(topo: Topology) -> None:
    out = topo.run_in("A", DUBBO, GA_IP_A, str(INGRESS_PORT), S)
    assert out == {"greet": "Hello, Ada", "add": 42}


def test_http_json_in_a_reaches_provider_in_b_through_gateways(topo: Topology) -> None:
    out = topo.run_in("A", HTTP, GA_IP_A, str(HTTP_PORT), f"/{S}/greet", '["Ada"]')
    assert out == {"status": 200, "body": "Hello, Ada"}
    out = topo.run_in("A", HTTP, GA_IP_A, str(HTTP_PORT), f"/{S}/add", "[40, 2]")
    assert out == {"status": 200, "body": 42}


def test_dubbo_consumer_in_a_reaches_triple_provider_in_b(topo: Topology) -> None:
    out = topo.run_in("A", DUBBO, GA_IP_A, str(INGRESS_PORT), TRI)
    seen = out.pop("headers")
    assert out == {"greet": "Hello, Ada (via grpcio)", "add": 42}
    assert seen["x-trace-id"] == "netns" and seen["tri-service-version"] == "1.0.0"


def test_http_json_in_a_reaches_triple_provider_in_b(topo: Topology) -> None:
    out = topo.run_in("A", HTTP, GA_IP_A, str(HTTP_PORT), f"/{TRI}/greet", '["Ada"]')
    assert out == {"status": 200, "body": "Hello, Ada (via grpcio)"}
    out = topo.run_in("A", HTTP, GA_IP_A, str(HTTP_PORT), f"/{TRI}/headers", "[]")
    assert out["status"] == 200 and out["body"]["x-trace-id"] == "netns-http", out
