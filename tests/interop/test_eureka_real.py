"""tribridge's Eureka discovery against a real Eureka server: Spring Cloud Netflix Eureka
Server, with an instance registered by the real Java Eureka client (a Spring Cloud app).

What the emulator tests show against ``interop/eureka_emulator.py`` is shown here against the
real thing: the registry finds the instance and its ``dubbo.*`` metadata, follows status
changes through full and delta fetches (with the server's own ``apps__hashcode``), sees
an instance leave by cancel and by lease expiry, the gateway routes to the provider it
advertises, and ``tribridge registry ls`` lists it.  Both JVMs start once per session.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from tribridge.interop.demo_provider import SERVICE
from tribridge.interop.eureka_emulator import EurekaEmulator
from tribridge.interop.registry_peers import (
    EurekaServer,
    LineClient,
    start_eureka_client,
    start_eureka_server,
)
from tribridge.interop.testing import BackgroundLoop, http_request
from tribridge.registries.base import ServiceKey
from tribridge.registries.eureka import EurekaRegistry

from tests.conftest import registry_ls_row, tb
from tests.helpers.gateways import demo_via_registry

pytestmark = pytest.mark.interop

APP = "tribridge-real-demo"
VERSION_HDR = {"x-dubbo-version": "1.0.0"}
KEY = ServiceKey(SERVICE, "1.0.0")


@pytest.fixture(scope="session")
def eureka_server() -> Iterator[EurekaServer]:
    server = start_eureka_server()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def bg() -> Iterator[BackgroundLoop]:
    with BackgroundLoop() as loop:
        yield loop


@pytest.fixture(scope="session")
def provider(bg: BackgroundLoop) -> Any:
    return bg.start_provider(version="1.0.0")


def meta(port: int) -> dict[str, str]:
    return {
        "dubbo.interfaces": SERVICE,
        "dubbo.port": str(port),
        "dubbo.version": "1.0.0",
        "dubbo.methods": "greet,add",
    }


@pytest.fixture(scope="session")
def java_client(
    eureka_server: EurekaServer, request: pytest.FixtureRequest
) -> Iterator[LineClient]:
    """One Spring Cloud Eureka client JVM for the session, advertising the module's demo
    provider (its port is only known once the provider runs, so it is passed in lazily)."""
    port = request.getfixturevalue("provider").port
    client = start_eureka_client(eureka_server.url, APP, "real-1", port, meta(port))
    try:
        yield client
    finally:
        client.close()


def wait_for(pred: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def registry(server: EurekaServer, interval: float = 0.2) -> EurekaRegistry:
    return EurekaRegistry.from_url(
        f"eureka://127.0.0.1:{server.port}/eureka?interval={interval}", "eu"
    )


def ports_of(bg: BackgroundLoop, reg: EurekaRegistry) -> set[int]:
    async def go() -> set[int]:
        return {e.port for e in reg.endpoints_for(KEY)}

    return set(bg.run(go()))


def test_registry_reads_the_java_clients_instance(
    bg: BackgroundLoop, eureka_server: EurekaServer, java_client: LineClient, provider: Any
) -> None:
    reg = registry(eureka_server)
    wait_for(lambda: APP.upper() in eureka_server.apps_xml(), 20, "the Java client's registration")
    snap = bg.run(reg.lookup(KEY, timeout=10))
    (ep,) = snap.endpoints
    assert (ep.host, ep.port, ep.protocol, ep.version) == (
        "127.0.0.1",
        provider.port,
        "dubbo",
        "1.0.0",
    )
    assert ep.methods == ("greet", "add")
    assert ep.metadata["eureka.app"] == APP.upper()
    assert ep.metadata["eureka.instanceId"] == "real-1"
    assert bg.run(reg.list_services()) == [SERVICE]
    # the Java client's own fetch sees the same instance, UP
    assert wait_for(
        lambda: "real-1=UP" in java_client.command(f"APPS {APP}"), 10, "the client's fetch"
    )


def test_status_changes_through_full_and_delta_fetches(
    bg: BackgroundLoop, eureka_server: EurekaServer, java_client: LineClient, provider: Any
) -> None:
    """The Java client reports itself DOWN and UP, then Spring Cloud's service-registry API
    overrides it OUT_OF_SERVICE and cancels the override; the registry, polling deltas,
    follows each step, and its merged view hashes like the server's ``apps__hashcode``."""
    reg = registry(eureka_server, interval=0.2)
    bg.run(reg.start())
    try:
        wait_for(lambda: ports_of(bg, reg) == {provider.port}, 20, "the instance")
        assert java_client.command("STATUS DOWN") == "DOWN"
        wait_for(lambda: ports_of(bg, reg) == set(), 20, "DOWN to drop the instance")
        assert java_client.command("STATUS UP") == "UP"
        wait_for(lambda: ports_of(bg, reg) == {provider.port}, 20, "UP to bring it back")
        java_client.command("OVERRIDE OUT_OF_SERVICE")
        wait_for(lambda: ports_of(bg, reg) == set(), 20, "the OUT_OF_SERVICE override")
        # cancelling leaves the lease UNKNOWN; the next renew gets 404 and the client
        # re-registers UP
        java_client.command("OVERRIDE CANCEL_OVERRIDE")
        wait_for(lambda: ports_of(bg, reg) == {provider.port}, 20, "the override cancelled")
        st = reg.status()
        assert st["connected"] and st["fetches"]["delta"] > 0, st
        # the real server's delta hash matched our merged view every time
        assert st["fetches"]["hash_mismatch"] == 0, st
        assert st["fetches"]["full"] == 1, st
    finally:
        bg.run(reg.close())


def _http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw.strip().startswith(b"{") else None
    except urllib.error.HTTPError as e:
        return e.code, None


def _status_script(base: str) -> list[tuple[str, int, str | None, str | None]]:
    """One sequence of raw REST calls (register, status overrides, renew, cancel); after each,
    the HTTP status, the instance's status as the server then reports it, and the
    instance's ``actionType/status`` in ``apps/delta``."""
    app, iid = "DIFF", "diff-1"
    url = f"{base}apps/{app}"
    out: list[tuple[str, int, str | None, str | None]] = []

    def register(status: str) -> tuple[int, Any]:
        inst = {
            "instanceId": iid,
            "hostName": "127.0.0.1",
            "app": app,
            "ipAddr": "127.0.0.1",
            "status": status,
            "port": {"$": 20880, "@enabled": "true"},
            "securePort": {"$": 443, "@enabled": "false"},
            "vipAddress": "diff",
            "dataCenterInfo": {
                "@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo",
                "name": "MyOwn",
            },
            "leaseInfo": {"renewalIntervalInSecs": 30, "durationInSecs": 90},
            "lastDirtyTimestamp": str(int(time.time() * 1000)),
            "metadata": {"dubbo.port": "20880"},
        }
        time.sleep(0.005)  # strictly newer lastDirtyTimestamp each time
        return _http("POST", url, {"instance": inst})

    def delta_action() -> str | None:
        _, got = _http("GET", f"{base}apps/delta")
        apps = (got or {}).get("applications", {}).get("application", [])
        for a in apps if isinstance(apps, list) else [apps]:
            insts = a.get("instance", [])
            for i in insts if isinstance(insts, list) else [insts]:
                if i.get("instanceId") == iid:
                    return f"{i.get('actionType')}/{i.get('status')}"
        return None

    def step(name: str, result: tuple[int, Any]) -> None:
        code, got = _http("GET", f"{url}/{iid}")
        status = got["instance"]["status"] if code == 200 else None
        out.append((name, result[0], status, delta_action()))

    step("register UP", register("UP"))
    step("re-register OUT_OF_SERVICE", register("OUT_OF_SERVICE"))
    step("re-register DOWN", register("DOWN"))
    step("re-register UP", register("UP"))
    step("override OUT_OF_SERVICE", _http("PUT", f"{url}/{iid}/status?value=OUT_OF_SERVICE"))
    step("re-register UP under override", register("UP"))
    step("renew", _http("PUT", f"{url}/{iid}?status=UP"))
    step("delete override", _http("DELETE", f"{url}/{iid}/status"))
    step("renew after delete", _http("PUT", f"{url}/{iid}?status=UP"))
    step("register again", register("UP"))
    step("cancel", _http("DELETE", f"{url}/{iid}"))
    return out


def test_emulator_status_rules_match_the_real_server(
    bg: BackgroundLoop, eureka_server: EurekaServer
) -> None:
    """The same raw REST script against the real server and against
    interop/eureka_emulator.py gives the same answers and statuses at every step."""
    emu = bg.run(EurekaEmulator().start())
    try:
        emulated = _status_script(emu.url)
    finally:
        bg.run(emu.stop())
    real = _status_script(eureka_server.url)
    assert real[1][:3] == ("re-register OUT_OF_SERVICE", 204, "UP"), real  # LeaseExistsRule
    assert real[-1] == ("cancel", 200, None, "DELETED/UP"), real
    for r, e in zip(real, emulated, strict=True):
        assert e == r, f"emulator {e} != real {r}"


def gateway_yaml(server: EurekaServer) -> str:
    doc = demo_via_registry(f"eureka://127.0.0.1:{server.port}/eureka?interval=0.2", "eu")
    return yaml.safe_dump(doc)


def test_gateway_routes_to_the_instance_and_cli_lists_it(
    bg: BackgroundLoop, eureka_server: EurekaServer, java_client: LineClient, provider: Any
) -> None:
    gw = bg.start_gateway(gateway_yaml(eureka_server))
    svc = gw.services[SERVICE]
    wait_for(lambda: svc.snapshot.endpoints, 20, "the gateway to discover the instance")
    before = provider.calls
    status, body = http_request(gw.port, "POST", f"/{SERVICE}/greet", ["real eureka"], VERSION_HDR)
    assert (status, body) == (200, "Hello, real eureka")
    assert provider.calls == before + 1
    row = registry_ls_row(
        f"eureka://127.0.0.1:{eureka_server.port}/eureka", SERVICE, f"127.0.0.1:{provider.port}"
    )
    assert row[0] == "dubbo" and row[3] == "1.0.0", row
    url = f"eureka://127.0.0.1:{eureka_server.port}/eureka/{SERVICE}"
    r = tb("call", url, "add", "[40, 2]", "--version", "1.0.0")
    assert (r.returncode, r.stdout.strip()) == (0, "42"), r.stderr
    # taken OUT_OF_SERVICE through Spring Cloud's service registry: the gateway stops routing to it
    java_client.command("OVERRIDE OUT_OF_SERVICE")
    wait_for(lambda: not svc.snapshot.endpoints, 20, "the gateway to drop the instance")
    status, body = http_request(gw.port, "POST", f"/{SERVICE}/greet", ["x"], VERSION_HDR)
    assert status == 503 and body["error"]["code"] == "no_provider", body
    java_client.command("OVERRIDE CANCEL_OVERRIDE")
    wait_for(lambda: svc.snapshot.endpoints, 20, "the instance back UP")
    status, body = http_request(gw.port, "POST", f"/{SERVICE}/add", [40, 2], VERSION_HDR)
    assert (status, body) == (200, 42)


def test_last_known_good_while_the_server_restarts(
    bg: BackgroundLoop, eureka_server: EurekaServer, java_client: LineClient, provider: Any
) -> None:
    """The real server goes away and comes back empty: the gateway keeps routing to the
    last-known-good endpoint (marked unhealthy) and is healthy again once the Java client,
    whose renewals now get 404, has registered again."""
    gw = bg.start_gateway(gateway_yaml(eureka_server))
    svc = gw.services[SERVICE]
    wait_for(lambda: svc.snapshot.endpoints and svc.snapshot.healthy, 20, "the instance")
    eureka_server.close()
    wait_for(lambda: not svc.snapshot.healthy, 20, "the registry loss to show")
    assert [e.port for e in svc.snapshot.endpoints] == [provider.port]
    status, body = http_request(gw.port, "POST", f"/{SERVICE}/add", [1, 2], VERSION_HDR)
    assert (status, body) == (200, 3)
    eureka_server.restart()
    wait_for(lambda: APP.upper() in eureka_server.apps_xml(), 30, "the client to register again")
    wait_for(lambda: svc.snapshot.healthy and svc.snapshot.endpoints, 20, "the registry back")
    status, body = http_request(gw.port, "POST", f"/{SERVICE}/add", [2, 2], VERSION_HDR)
    assert (status, body) == (200, 4)


def test_instances_leave_by_cancel_and_by_lease_expiry(
    bg: BackgroundLoop, eureka_server: EurekaServer, java_client: LineClient, provider: Any
) -> None:
    """A second instance (another Java client JVM) joins, then is killed: the server evicts it
    when its 3 s lease runs out.  The session's client then cancels (unregisters)."""
    second = bg.start_provider(version="1.0.0")
    reg = registry(eureka_server, interval=0.2)
    bg.run(reg.start())
    other = start_eureka_client(eureka_server.url, APP, "real-2", second.port, meta(second.port))
    try:
        wait_for(
            lambda: ports_of(bg, reg) == {provider.port, second.port}, 20, "the second instance"
        )
        other.kill()  # no cancel: only the lease expiry removes it
        t0 = time.monotonic()
        wait_for(lambda: ports_of(bg, reg) == {provider.port}, 30, "eviction of the killed one")
        assert time.monotonic() - t0 > 1.0, "gone before its lease could expire"
        java_client.command("CANCEL")
        wait_for(lambda: ports_of(bg, reg) == set(), 20, "the cancelled instance to leave")
        assert APP.upper() not in eureka_server.apps_xml()
        assert reg.status()["connected"]
    finally:
        other.close(grace=2)
        bg.run(reg.close())
