"""The Nacos emulator (interop/nacos_emulator.py) proven with the official Java client
``com.alibaba.nacos:nacos-client`` 2.x (gRPC; the one Dubbo's Nacos registry uses) and the
official Go client ``github.com/nacos-group/nacos-sdk-go/v2``, both unmodified.

No Nacos server can be assembled from Maven Central (its server modules are not published
there; docs/nacos.md), so the emulator stands in, and these tests show that what one real
client writes the other real client reads: register, list, subscribe and see changes,
deregister, a client that dies, a server restart (the clients' redo), and tribridge's
gateway routing to a provider the Java client registered the way Dubbo does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from tribridge.interop.demo_provider import DEMO_SIGNATURES, SERVICE
from tribridge.interop.nacos_emulator import EmulatorProcess, start_emulator_process
from tribridge.interop.peers import PeerError
from tribridge.interop.registry_peers import LineClient, start_nacos_go, start_nacos_java
from tribridge.interop.testing import BackgroundLoop, http_request

from tests.conftest import registry_ls_row
from tests.helpers.gateways import demo_via_registry

pytestmark = pytest.mark.interop

GROUP = "DEFAULT_GROUP"
VERSION_HDR = {"x-dubbo-version": "1.0.0"}


class Emulator:
    """The emulator process, restartable on the same port (clients keep their address)."""

    def __init__(self) -> None:
        self.proc: EmulatorProcess = start_emulator_process(0)
        self.port = self.proc.http_port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def restart(self) -> None:
        self.proc.close()
        self.proc = start_emulator_process(self.port)

    def close(self) -> None:
        self.proc.close()


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    emu = Emulator()
    try:
        yield emu
    finally:
        emu.close()


@pytest.fixture(scope="session")
def java(emulator: Emulator) -> Iterator[LineClient]:
    """One nacos-client JVM for the session."""
    client = start_nacos_java(emulator.address)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def go(emulator: Emulator) -> Iterator[LineClient]:
    client = start_nacos_go(emulator.address)
    try:
        yield client
    finally:
        client.close()


def hosts(ev_or_list: Any) -> set[str]:
    items = ev_or_list["instances"] if isinstance(ev_or_list, dict) else ev_or_list
    return {f"{i['ip']}:{i['port']}" for i in items}


def event_with(service: str, want: set[str]) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e.get("service") == service and "instances" in e and hosts(e) == want


def wait_for(pred: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def go_sees(go: LineClient, svc: str, want: set[str]) -> None:
    """Go's LIST answers from the cache its subscription keeps: wait for the push."""
    wait_for(lambda: hosts(go.json_command(f"LIST {svc} {GROUP}")) == want, 10, f"Go to see {want}")


def test_java_and_go_clients_see_each_other(java: LineClient, go: LineClient) -> None:
    svc = "providers:com.tribridge.test.Both:1.0.0:"
    assert (
        java.command(f"REGISTER {svc} {GROUP} 127.0.0.1 20001 side=provider&weight=7")
        == "registered"
    )
    # the Go client lists what the Java client registered, metadata included
    (inst,) = go.json_command(f"LIST {svc} {GROUP}")
    assert (inst["ip"], inst["port"], inst["healthy"], inst["enabled"]) == (
        "127.0.0.1",
        20001,
        True,
        True,
    )
    assert inst["metadata"] == {"side": "provider", "weight": "7"}
    assert inst["serviceName"] == f"{GROUP}@@{svc}" and inst["cluster"] == "DEFAULT"
    # both subscribe; the Go client adds an instance: the Java subscriber sees both
    assert java.command(f"SUBSCRIBE {svc} {GROUP}") == "subscribed"
    java.wait_event(event_with(svc, {"127.0.0.1:20001"}), 10, "Java's first push")
    assert go.command(f"SUBSCRIBE {svc} {GROUP}") == "subscribed"
    assert go.command(f"REGISTER {svc} {GROUP} 127.0.0.1 20002 side=provider") == "registered"
    both = {"127.0.0.1:20001", "127.0.0.1:20002"}
    java.wait_event(event_with(svc, both), 10, "Java to see Go's instance")
    go.wait_event(event_with(svc, both), 10, "Go to see both")
    assert hosts(java.json_command(f"LIST {svc} {GROUP}")) == both
    # the Java client deregisters: the Go subscriber sees only its own
    assert java.command(f"DEREGISTER {svc} {GROUP} 127.0.0.1 20001") == "deregistered"
    go.wait_event(event_with(svc, {"127.0.0.1:20002"}), 10, "Go to see the Java instance leave")
    java.wait_event(event_with(svc, {"127.0.0.1:20002"}), 10, "Java's own push")
    for client in (java, go):
        listed = client.json_command(f"SERVICES {GROUP}")
        assert svc in listed["names"] and listed["count"] >= 1, listed
    assert go.command(f"DEREGISTER {svc} {GROUP} 127.0.0.1 20002") == "deregistered"
    java.wait_event(event_with(svc, set()), 10, "the service to empty")
    java.command(f"UNSUBSCRIBE {svc} {GROUP}")
    go.command(f"UNSUBSCRIBE {svc} {GROUP}")


def test_instances_of_a_dead_client_go_away(emulator: Emulator, java: LineClient) -> None:
    """A Go client is killed without deregistering: its connection closes, its ephemeral
    instance goes, and the Java subscriber is told."""
    svc = "providers:com.tribridge.test.Dead:1.0.0:"
    doomed = start_nacos_go(emulator.address)
    try:
        doomed.command(f"REGISTER {svc} {GROUP} 127.0.0.1 20003")
        java.command(f"SUBSCRIBE {svc} {GROUP}")
        java.wait_event(event_with(svc, {"127.0.0.1:20003"}), 10, "the Go instance")
        doomed.kill()
        java.wait_event(event_with(svc, set()), 15, "the dead client's instance to go")
    finally:
        doomed.close(grace=1)
        java.command(f"UNSUBSCRIBE {svc} {GROUP}")


def test_clients_redo_registrations_after_a_server_restart(
    emulator: Emulator, java: LineClient, go: LineClient
) -> None:
    """The emulator restarts empty (as a lone Nacos server does); both real clients reconnect
    and redo their registrations and subscriptions."""
    svc = "providers:com.tribridge.test.Redo:1.0.0:"
    java.command(f"REGISTER {svc} {GROUP} 127.0.0.1 20004")
    go.command(f"REGISTER {svc} {GROUP} 127.0.0.1 20005")
    both = {"127.0.0.1:20004", "127.0.0.1:20005"}
    java.command(f"SUBSCRIBE {svc} {GROUP}")
    java.wait_event(event_with(svc, both), 10, "both before the restart")
    emulator.restart()

    def listed(client: LineClient) -> set[str]:
        try:
            return hosts(client.json_command(f"LIST {svc} {GROUP}"))
        except PeerError:  # not reconnected yet
            return set()

    # the Java LIST queries the server (no cache): both registrations were redone
    wait_for(lambda: listed(java) == both, 40, "both clients to redo their registrations")
    fresh = start_nacos_go(emulator.address)
    try:
        assert listed(fresh) == both
        # the Java client's subscription was redone too: a new instance is pushed to it
        fresh.command(f"REGISTER {svc} {GROUP} 127.0.0.1 20006")
        java.wait_event(
            event_with(svc, both | {"127.0.0.1:20006"}), 20, "a push on the redone subscription"
        )
    finally:
        fresh.close(grace=2)
    java.command(f"DEREGISTER {svc} {GROUP} 127.0.0.1 20004")
    go.command(f"DEREGISTER {svc} {GROUP} 127.0.0.1 20005")
    java.command(f"UNSUBSCRIBE {svc} {GROUP}")


def dubbo_metadata(port: int) -> str:
    """What Dubbo's NacosRegistry puts in an interface-level instance's metadata: every
    provider URL parameter plus category, protocol and path."""
    params = {
        "anyhost": "true",
        "application": "java-registered-demo",
        "category": "providers",
        "deprecated": "false",
        "dubbo": "2.0.2",
        "dynamic": "true",
        "generic": "false",
        "interface": SERVICE,
        "methods": ",".join(sorted(DEMO_SIGNATURES)),
        "path": SERVICE,
        "protocol": "dubbo",
        "release": "3.3.1",
        "side": "provider",
        "timestamp": str(int(time.time() * 1000)),
        "version": "1.0.0",
    }
    return "&".join(f"{k}={v}" for k, v in params.items())


def test_gateway_routes_to_a_provider_the_java_client_registered(
    emulator: Emulator, java: LineClient
) -> None:
    svc = f"providers:{SERVICE}:1.0.0:"
    with BackgroundLoop() as bg:
        provider = bg.start_provider(version="1.0.0")
        java.command(
            f"REGISTER {svc} {GROUP} 127.0.0.1 {provider.port} {dubbo_metadata(provider.port)}"
        )
        try:
            url = f"nacos://{emulator.address}?timeout=1000&refresh=1"
            doc = demo_via_registry(url, "nc")
            gw = bg.start_gateway(yaml.safe_dump(doc))
            gsvc = gw.services[SERVICE]
            wait_for(lambda: gsvc.snapshot.endpoints, 20, "the gateway to discover the provider")
            status, body = http_request(
                gw.port, "POST", f"/{SERVICE}/greet", ["nacos-client"], VERSION_HDR
            )
            assert (status, body) == (200, "Hello, nacos-client")
            row = registry_ls_row(
                f"nacos://{emulator.address}", SERVICE, f"127.0.0.1:{provider.port}"
            )
            assert row[0] == "dubbo" and row[3] == "1.0.0", row
            java.command(f"DEREGISTER {svc} {GROUP} 127.0.0.1 {provider.port}")
            wait_for(lambda: not gsvc.snapshot.endpoints, 20, "the gateway to see it leave")
            status, body = http_request(gw.port, "POST", f"/{SERVICE}/greet", ["x"], VERSION_HDR)
            assert status == 503 and body["error"]["code"] == "no_provider", body
        finally:
            java.command(f"DEREGISTER {svc} {GROUP} 127.0.0.1 {provider.port}")


def test_batch_registration_as_dubbo_does_for_two_protocols(
    java: LineClient, go: LineClient
) -> None:
    """Dubbo registers one instance per protocol of a service on one connection with
    ``batchRegisterInstance``; ``batchDeregisterInstance`` of some keeps the rest."""
    svc = "providers:com.tribridge.test.Batch:1.0.0:"
    java.command(f"BATCH {svc} {GROUP} 127.0.0.1:20011,127.0.0.1:20012")
    assert hosts(go.json_command(f"LIST {svc} {GROUP}")) == {"127.0.0.1:20011", "127.0.0.1:20012"}
    java.command(f"BATCHDEREG {svc} {GROUP} 127.0.0.1:20011")
    # Go's SelectAllInstances subscribed on first use and now reads its pushed cache
    go_sees(go, svc, {"127.0.0.1:20012"})
    java.command(f"BATCHDEREG {svc} {GROUP} 127.0.0.1:20012")
    go_sees(go, svc, set())


def test_namespaces_and_dubbos_cached_lookup(emulator: Emulator, go: LineClient) -> None:
    """A Java client in namespace ``dev`` registers; a Go client in ``dev`` sees it, the
    public one does not.  ``getAllInstances`` with subscribe=true (what Dubbo's NacosRegistry
    calls) subscribes and then answers from the pushed cache, following changes."""
    svc = "providers:com.tribridge.test.Ns:1.0.0:"
    java_dev = start_nacos_java(emulator.address, namespace="dev")
    go_dev = start_nacos_go(emulator.address, namespace="dev")
    try:
        java_dev.command(f"REGISTER {svc} {GROUP} 127.0.0.1 20021")
        assert hosts(go_dev.json_command(f"LIST {svc} {GROUP}")) == {"127.0.0.1:20021"}
        assert hosts(go.json_command(f"LIST {svc} {GROUP}")) == set()
        assert hosts(java_dev.json_command(f"CACHED {svc} {GROUP}")) == {"127.0.0.1:20021"}
        go_dev.command(f"REGISTER {svc} {GROUP} 127.0.0.1 20022")
        both = {"127.0.0.1:20021", "127.0.0.1:20022"}
        wait_for(
            lambda: hosts(java_dev.json_command(f"CACHED {svc} {GROUP}")) == both,
            10,
            "the pushed cache to follow",
        )
        assert svc in go_dev.json_command(f"SERVICES {GROUP}")["names"]
        assert svc not in go.json_command(f"SERVICES {GROUP}")["names"]
    finally:
        java_dev.close()
        go_dev.close()


def test_persistent_instances_outlive_their_client(
    emulator: Emulator, java: LineClient, go: LineClient
) -> None:
    """``ephemeral=false``: the Java client uses gRPC ``PersistentInstanceRequest`` because the
    server announced ``supportPersistentInstanceByGrpc`` (else it would fall back to HTTP,
    which the emulator does not serve).  The instance stays when its client dies, and any
    client may remove it."""
    svc = "providers:com.tribridge.test.Persistent:1.0.0:"
    tmp = start_nacos_java(emulator.address)
    try:
        assert tmp.command(f"PERSIST {svc} {GROUP} 127.0.0.1 20031") == "registered"
        (inst,) = go.json_command(f"LIST {svc} {GROUP}")
        assert (inst["port"], inst["ephemeral"]) == (20031, False)
        tmp.kill()
        time.sleep(1.0)
        assert java.command(f"LIST {svc} {GROUP}") != "[]"  # Java's LIST asks the server
        assert java.command(f"UNPERSIST {svc} {GROUP} 127.0.0.1 20031") == "deregistered"
        go_sees(go, svc, set())
    finally:
        tmp.close(grace=1)
