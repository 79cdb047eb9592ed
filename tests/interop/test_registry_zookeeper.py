"""ZooKeeper discovery end to end: a real ZooKeeper 3.8, providers registered in Dubbo's own
formats (ours via kazoo, sofa-rpc-node and apache-dubbo by themselves), the gateway routing
``POST /{interface}/{method}`` with no route config."""

from __future__ import annotations

import itertools
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote_plus

import pytest
from tribridge.interop import peers
from tribridge.interop.demo_provider import SERVICE
from tribridge.interop.registration import (
    ZkPublisher,
    instance_metadata,
    provider_url,
    register_demo_provider,
)
from tribridge.interop.testing import BackgroundLoop, http_request
from tribridge.interop.zk_server import ZookeeperServer, free_port
from tribridge.registries import open_registry
from tribridge.registries.base import ServiceKey

from tests.conftest import tb

pytestmark = pytest.mark.interop

SOFA = "com.tribridge.demo.SofaService"


def wait_for(cond: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def root() -> str:
    """A fresh registry root per test, so tests never see each other's nodes."""
    return "t" + uuid.uuid4().hex[:8]


@pytest.fixture
def bg() -> Iterator[BackgroundLoop]:
    with BackgroundLoop() as loop:
        yield loop


@pytest.fixture
def pub(zookeeper: str, root: str) -> Iterator[ZkPublisher]:
    p = ZkPublisher(zookeeper, root=root, metadata_root=root + "-meta").start()
    try:
        yield p
    finally:
        p.stop()


def zk_url(zk: str, root: str, extra: str = "") -> str:
    return f"zookeeper://{zk}?root={root}&metadata_root={root}-meta&max_backoff=300ms{extra}"


def gateway_yaml(url: str, wait: str = "3s") -> str:
    return f"""
listen: {{host: 127.0.0.1, port: 0}}
registry_wait: {wait}
registries: {{zk: "{url}"}}
auto_routes: {{prefix: /, expose: ["com.tribridge.*"]}}
"""


def snapshot(gw: Any, iface: str = SERVICE) -> Any:
    svc = gw.services.get(iface)
    return svc.snapshot if svc is not None else None


def ports(gw: Any, iface: str = SERVICE) -> set[int]:
    snap = snapshot(gw, iface)
    return {e.port for e in snap.endpoints} if snap is not None else set()


# ---- through the gateway: our demo provider in Dubbo's formats -------------------------------


def test_demo_provider_signatures_from_provider_metadata(bg, pub, zookeeper, root) -> None:
    provider = bg.start_provider(version="1.0.0")
    nodes = register_demo_provider(pub, provider)
    assert nodes["definition"] == (f"/{root}-meta/metadata/{SERVICE}/1.0.0/provider/tribridge-demo")
    gw = bg.start_gateway(gateway_yaml(zk_url(zookeeper, root)))

    status, body = http_request(gw.port, "POST", f"/{SERVICE}/addLong", [1, 2])
    assert (status, body) == (200, 3)
    # a direct call with descriptor JJ (long, long), not a generic $invoke with guessed types
    assert "$invoke" not in provider.last_attachments
    assert provider.last_args["addLong"] == [1, 2]
    status, body = http_request(gw.port, "POST", f"/{SERVICE}/add", [2147483647, 1])
    assert (status, body) == (200, -2147483648)  # int arithmetic: the signature said int
    status, body = http_request(
        gw.port,
        "POST",
        f"/{SERVICE}/echoUser",
        [{"id": 7, "name": "Ada", "age": 36, "tags": ["x"], "color": "GREEN"}],
    )
    assert status == 200, body
    assert body["class"] == "com.tribridge.demo.User" and body["id"] == 7
    assert body["color"] == "GREEN"  # an enum from the metadata's TypeDefinition, by name

    status, body = http_request(gw.port, "POST", f"/{SERVICE}/getUser", ["seven"])
    assert status == 400
    msg = body["error"]["message"]
    assert "provider metadata (zookeeper " in msg and nodes["definition"] in msg, msg

    snap = snapshot(gw)
    (ep,) = snap.endpoints
    assert (ep.protocol, ep.host, ep.port, ep.version, ep.weight) == (
        "dubbo",
        "127.0.0.1",
        provider.port,
        "1.0.0",
        100,
    )
    assert "addLong" in ep.methods and snap.healthy and not snap.pending
    assert snap.definition.source == f"provider metadata (zookeeper {nodes['definition']})"


def test_our_registration_satisfies_an_independent_zookeeper_consumer(bg, zookeeper) -> None:
    """dubbo-ssl-python (PyPI) discovers providers in /dubbo itself: it must find and call
    our demo provider from the nodes interop/registration.py wrote."""
    from dubbo_ssl.client import DubboClient, ZkRegister

    provider = bg.start_provider(version="1.0.0")
    with ZkPublisher(zookeeper) as pub:
        node = register_demo_provider(pub, provider)["provider"]
        name = unquote_plus(node.rpartition("/")[2])
        assert name.startswith(
            f"dubbo://127.0.0.1:{provider.port}/{SERVICE}?anyhost=false&application="
        )
        for part in (
            "&dubbo=2.0.2&",
            "&side=provider&",
            "&release=3.3.1&",
            "&revision=1.0.0&",
            f"&interface={SERVICE}&",
            "&methods=add,addLong,colorOf,",
        ):
            assert part in name, (part, name)
        zk = ZkRegister(zookeeper, application_name="dubbo-ssl-consumer")
        try:
            client = DubboClient(SERVICE, None, version="1.0.0", zk_register=zk)
            assert client.call("greet", ["zk"], timeout=5) == "Hello, zk"
        finally:
            zk.close()
    assert provider.last_args["greet"] == ["zk"]


def test_without_metadata_the_call_is_generic(bg, pub, zookeeper, root) -> None:
    provider = bg.start_provider(version="1.0.0")
    register_demo_provider(pub, provider, definition=False)
    gw = bg.start_gateway(gateway_yaml(zk_url(zookeeper, root)))
    status, body = http_request(gw.port, "POST", f"/{SERVICE}/addLong", [1, 2])
    assert (status, body) == (200, 3)
    assert "$invoke" in provider.last_attachments
    assert snapshot(gw).definition is None


def test_configurators_disable_and_weight(bg, pub, zookeeper, root) -> None:
    p1 = bg.start_provider(version="1.0.0")
    p2 = bg.start_provider(version="1.0.0")
    register_demo_provider(pub, p1)
    register_demo_provider(pub, p2)
    gw = bg.start_gateway(gateway_yaml(zk_url(zookeeper, root)))
    assert http_request(gw.port, "POST", f"/{SERVICE}/greet", ["a"])[0] == 200
    wait_for(lambda: ports(gw) == {p1.port, p2.port}, "both providers")
    reg = gw.registries["zk"]

    disable = pub.add_configurator(
        SERVICE,
        f"override://127.0.0.1:{p1.port}/{SERVICE}?category=configurators&disabled=true"
        "&dynamic=false",
    )
    wait_for(lambda: ports(gw) == {p2.port}, "p1 disabled by a configurator")
    before = p1.calls
    for i in range(20):
        assert http_request(gw.port, "POST", f"/{SERVICE}/greet", [str(i)])[0] == 200
    assert p1.calls == before

    pub.add_configurator(SERVICE, f"override://0.0.0.0/{SERVICE}?category=configurators&weight=7")
    wait_for(lambda: [e.weight for e in snapshot(gw).endpoints] == [7], "weight 7 applied")

    # inactive (enabled=false) and non-matching (other version) configurators change nothing
    sync = reg.last_sync
    pub.add_configurator(
        SERVICE, f"override://127.0.0.1:{p2.port}/{SERVICE}?disabled=true&enabled=false"
    )
    pub.add_configurator(SERVICE, f"override://0.0.0.0/{SERVICE}?version=9.9.9&weight=1")
    wait_for(lambda: reg.last_sync != sync, "a refresh after the new configurators")
    time.sleep(0.2)
    assert [(e.port, e.weight) for e in snapshot(gw).endpoints] == [(p2.port, 7)]

    pub.unregister(disable)
    wait_for(lambda: ports(gw) == {p1.port, p2.port}, "p1 back once the rule is removed")
    assert {e.weight for e in snapshot(gw).endpoints} == {7}


def test_malformed_children_are_skipped_and_reported(bg, pub, zookeeper, root) -> None:
    provider = bg.start_provider(version="1.0.0")
    register_demo_provider(pub, provider)
    base = pub.service_path(SERVICE)
    zk = pub.client
    zk.create(f"{base}/not-a-url", ephemeral=True)
    zk.create(f"{base}/dubbo%3A%2F%2F127.0.0.1%3Axyz%2F{SERVICE}", ephemeral=True)
    zk.create(
        f"{base}/"
        + "dubbo%3A%2F%2F127.0.0.1%3A1%2Fcom.other.Service%3Finterface%3Dcom.other.Service",
        ephemeral=True,
    )
    zk.create(f"{pub.service_path(SERVICE, 'configurators')}/route%3A%2F%2Fgarbage", b"")
    gw = bg.start_gateway(gateway_yaml(zk_url(zookeeper, root)))
    status, body = http_request(gw.port, "POST", f"/{SERVICE}/addLong", [40, 2])
    assert (status, body) == (200, 42)
    assert ports(gw) == {provider.port}
    st = gw.registries["zk"].status()
    rec = st["skipped_records"]
    assert st["connected"] is True and rec["total"] >= 4, st
    reasons = " | ".join(f"{s['where']}: {s['reason']} {s['detail']}" for s in rec["current"])
    assert "not-a-url" in reasons and "bad_port" in reasons, reasons
    assert "com.other.Service" in reasons and "route" in reasons, reasons


def test_zookeeper_down_at_start_then_up_then_lost(bg, root) -> None:
    """503 registry_not_ready while ZooKeeper is down; routes once it is up; when it goes
    away again, last-known-good endpoints keep serving and status says disconnected."""
    zk = ZookeeperServer(free_port())
    try:
        gw = bg.start_gateway(gateway_yaml(zk_url(zk.address, root), wait="300ms"))
        reg = gw.registries["zk"]
        assert reg.status()["connected"] is False
        status, body = http_request(gw.port, "POST", f"/{SERVICE}/addLong", [1, 2])
        assert status == 503 and body["error"]["code"] == "registry_not_ready", body

        zk.start()
        provider = bg.start_provider(version="1.0.0")
        with ZkPublisher(zk.address, root=root, metadata_root=root + "-meta") as pub:
            register_demo_provider(pub, provider)
            wait_for(lambda: reg.status()["connected"], "reconnect after ZooKeeper started", 20)
            wait_for(
                lambda: http_request(gw.port, "POST", f"/{SERVICE}/addLong", [1, 2]) == (200, 3),
                "first routed call",
                20,
            )

            zk.stop()
            wait_for(lambda: not reg.status()["connected"], "the gateway to notice the loss", 20)
            snap = wait_for(lambda: (s := snapshot(gw)) and not s.healthy and s, "stale snapshot")
            assert [e.port for e in snap.endpoints] == [provider.port]
            assert "zookeeper" in (snap.error or "")
            for i in range(10):  # last-known-good keeps serving
                assert http_request(gw.port, "POST", f"/{SERVICE}/addLong", [i, 1]) == (
                    200,
                    i + 1,
                )

            zk.start()  # same port and data: the sessions (and ephemeral nodes) survive
            wait_for(lambda: reg.status()["connected"], "reconnect", 20)
            wait_for(lambda: snapshot(gw).healthy, "a healthy snapshot after resync", 20)
            assert ports(gw) == {provider.port}
    finally:
        zk.close()


def test_application_level_discovery(bg, pub, zookeeper, root) -> None:
    """Dubbo3 application-level only: mapping -> /services/{app} -> MetadataService."""
    app = f"app-{root}"
    provider = bg.start_provider(version="1.0.0")
    nodes = register_demo_provider(
        pub, provider, application=app, interface_level=False, app_level=True
    )
    assert nodes["instance"] == f"/services/{app}/127.0.0.1:{provider.port}"
    # next to it: an instance that is not JSON, and one whose MetadataService is gone
    pub.client.create(f"/services/{app}/garbage", b"{", ephemeral=True)
    gone = free_port()
    meta = instance_metadata("rev-of-a-dead-instance", gone, {"dubbo": gone})
    pub.register_instance(app, "127.0.0.1", gone, meta)
    gw = bg.start_gateway(gateway_yaml(zk_url(zookeeper, root)))
    status, body = http_request(gw.port, "POST", f"/{SERVICE}/addLong", [5, 6])
    assert (status, body) == (200, 11)
    assert provider.metadata_calls == 1
    assert "$invoke" not in provider.last_attachments  # signatures from the metadata report
    (ep,) = snapshot(gw).endpoints
    assert (ep.protocol, ep.port, ep.version) == ("dubbo", provider.port, "1.0.0")
    assert ep.metadata["discovery"] == "application" and "addLong" in ep.methods
    skipped = " | ".join(
        f"{e['where']}: {e['reason']}: {e['detail']}"
        for e in gw.registries["zk"].status()["skipped_records"]["current"]
    )
    assert f"/services/{app}/garbage: bad_json: instance is not JSON" in skipped, skipped
    assert f"127.0.0.1:{gone}: unavailable: revision rev-of-a-dead-instance" in skipped, skipped
    assert "cannot connect" in skipped, skipped

    # the same instance registered at interface level too: one endpoint, not two
    register_demo_provider(pub, provider, application=app, app_level=False)
    wait_for(
        lambda: snapshot(gw).endpoints[0].metadata.get("discovery") != "application",
        "interface-level URL to take over",
    )
    assert len(snapshot(gw).endpoints) == 1
    assert provider.metadata_calls == 1  # revision cached


def test_sofa_rpc_node_registers_itself(bg, zookeeper, root) -> None:
    sofa = peers.start_sofa_provider(0, zookeeper=f"{zookeeper}/{root}")
    try:
        gw = bg.start_gateway(gateway_yaml(zk_url(zookeeper, root)))
        # sofa-rpc-node publishes no metadata and has no generic $invoke: hint the types
        hint = {"x-tribridge-types": "java.lang.String"}
        status, body = http_request(gw.port, "POST", f"/{SOFA}/greet", ["Ada"], hint)
        assert (status, body) == (200, "Hello, Ada"), body
        (ep,) = snapshot(gw, SOFA).endpoints
        assert (ep.host, ep.port, ep.version) == ("127.0.0.1", sofa.port, "1.0.0")
        assert ep.metadata["language"] == "nodejs"
    finally:
        sofa.close()  # unPublish first: the provider leaves the registry
    wait_for(lambda: not snapshot(gw, SOFA).endpoints, "sofa provider deregistered")
    status, body = http_request(gw.port, "POST", f"/{SOFA}/greet", ["Ada"], hint)
    assert status == 503 and body["error"]["code"] == "no_provider", body


def test_apache_dubbo_triple_provider_registers_itself_and_is_called(bg, zookeeper) -> None:
    """Issue 5: a Triple provider (apache-dubbo, wrapper mode) registers itself in ZooKeeper
    with apache-dubbo's own registry code; an HTTP call through the gateway reaches it."""
    from tribridge.interop.triple_peers import SERVICE as TRI
    from tribridge.interop.triple_peers import start_peer

    provider = start_peer("dubbo", free_port(), zookeeper=zookeeper)
    try:

        async def look() -> Any:
            reg = open_registry(f"zookeeper://{zookeeper}", "zk")
            await reg.start()
            try:
                snap = await reg.lookup(ServiceKey(TRI), 10)
                return snap, await reg.list_services()
            finally:
                await reg.close()

        snap, names = bg.run(look())
        (ep,) = snap.endpoints
        assert (ep.protocol, ep.host, ep.port) == ("tri", "127.0.0.1", provider.port)
        assert ep.metadata["interface"] == TRI and TRI in names

        # apache-dubbo's tri:// URL has no methods: the signatures come from the config
        gw = bg.start_gateway(
            f"""
listen: {{host: 127.0.0.1, port: 0}}
registries: {{zk: "zookeeper://{zookeeper}?max_backoff=300ms"}}
services:
  - interface: {TRI}
    registry: zk
    retries: 0
    methods:
      greet: [java.lang.String]
      addLong: [long, long]
      fail: [java.lang.String]
auto_routes: {{prefix: /, expose: ["com.tribridge.*"]}}
"""
        )
        assert http_request(gw.port, "POST", f"/{TRI}/greet", ["Ada ✓"]) == (
            200,
            "Hello, Ada ✓ (via apache-dubbo)",
        )
        assert http_request(gw.port, "POST", f"/{TRI}/addLong", [2**53 + 1, 1]) == (
            200,
            2**53 + 2,
        )
        (ep,) = snapshot(gw, TRI).endpoints
        assert (ep.protocol, ep.port) == ("tri", provider.port)
        # the provider raised: apache-dubbo answers a gRPC error status, not a Dubbo2 one
        status, body = http_request(gw.port, "POST", f"/{TRI}/fail", ["x"])
        assert (status, body["error"]["grpc_status"]) == (500, "INTERNAL"), body
        assert "failing on purpose: x" in body["error"]["message"], body
    finally:
        provider.close()


def test_providers_added_and_removed_under_load(bg, pub, zookeeper, root) -> None:
    """Registration -> routed within tens of ms; deregister-then-stop loses no request."""
    p1 = bg.start_provider(version="1.0.0")
    n1 = register_demo_provider(pub, p1)["provider"]
    gw = bg.start_gateway(gateway_yaml(zk_url(zookeeper, root)))
    assert http_request(gw.port, "POST", f"/{SERVICE}/addLong", [1, 1]) == (200, 2)

    stop = threading.Event()
    results: list[int] = []
    failures: list[Any] = []

    def load() -> None:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
        deadline = time.monotonic() + 30
        for i in itertools.count():
            if stop.is_set() or time.monotonic() > deadline or i >= 20000:
                break
            conn.request("POST", f"/{SERVICE}/addLong", body=f"[{i}, 1]")
            resp = conn.getresponse()
            data = resp.read()
            results.append(resp.status)
            if resp.status != 200 or int(data) != i + 1:
                failures.append((resp.status, data[:200]))
        conn.close()

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        firsts = []
        live, node = p1, n1
        for _ in range(3):
            n = len(results)
            wait_for(lambda n=n: len(results) > n + 30, "traffic before the change")
            nxt = bg.start_provider(version="1.0.0")
            t0 = time.monotonic()
            nxt_node = register_demo_provider(pub, nxt)["provider"]
            wait_for(lambda nxt=nxt: nxt.calls > 0, "first call routed to the new provider")
            firsts.append(time.monotonic() - t0)
            # graceful shutdown of the old one: deregister, wait until routed away, stop
            pub.unregister(node)
            wait_for(lambda live=live: live.port not in ports(gw), "old provider dropped")
            n = len(results)
            bg.run(live.close(1.0))
            wait_for(lambda n=n: len(results) > n + 30, "traffic after the old one stopped")
            live, node = nxt, nxt_node
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    print(
        "\nregistration -> first routed call: "
        + ", ".join(f"{x * 1000:.1f} ms" for x in firsts)
        + f" (median {statistics.median(firsts) * 1000:.1f} ms); {len(results)} requests, "
        f"{len(failures)} failed"
    )
    assert len(results) > 100
    assert failures == [], failures[:5]
    assert ports(gw) == {live.port}


# ---- the registry object itself ----------------------------------------------------------


def test_unsubscribe_releases_and_list_services(bg, pub, zookeeper, root) -> None:
    provider = bg.start_provider(version="1.0.0")
    register_demo_provider(pub, provider)
    sofa_url = provider_url("127.0.0.1", 1, SOFA, ["greet"], version="1.0.0")
    pub.register_provider(sofa_url)
    calls: list[Any] = []

    async def go() -> Any:
        reg = open_registry(zk_url(zookeeper, root), "zk")
        await reg.start()
        try:
            names = None
            for _ in range(200):
                try:
                    names = await reg.list_services()
                    break
                except Exception:
                    import asyncio

                    await asyncio.sleep(0.02)
            key = ServiceKey(SERVICE, "1.0.0")
            snap = await reg.lookup(key, 5)
            import asyncio

            reg.subscribe(key, calls.append)
            await asyncio.sleep(0.2)
            reg.unsubscribe(key, calls.append)
            sync, n = reg.status()["last_sync"], len(calls)
            # a change after the last listener left: no read, no call
            await asyncio.get_running_loop().run_in_executor(
                None,
                pub.register_provider,
                provider_url("127.0.0.1", 2, SERVICE, ["greet"], version="1.0.0"),
            )
            await asyncio.sleep(0.3)
            assert (reg.status()["last_sync"], len(calls)) == (sync, n)
            return names, snap, reg.status()
        finally:
            await reg.close()

    names, snap, st = bg.run(go())
    assert names == sorted([SERVICE, SOFA])
    assert [e.port for e in snap.endpoints] == [provider.port]
    assert st["services"] == []  # nothing followed once the last listener left


# ---- the command line ------------------------------------------------------------------------



def test_cli_registry_ls_and_call_through_zookeeper(bg, pub, zookeeper, root) -> None:
    provider = bg.start_provider(version="1.0.0")
    register_demo_provider(pub, provider)
    url = zk_url(zookeeper, root)

    r = tb("registry", "ls", url)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [SERVICE]

    r = tb("registry", "ls", url, SERVICE)
    assert r.returncode == 0, r.stderr
    header, row, sig = r.stdout.splitlines()
    assert header.split() == [
        "PROTOCOL",
        "ADDRESS",
        "WEIGHT",
        "VERSION",
        "GROUP",
        "STATUS",
        "METHODS",
    ]
    cells = row.split()
    assert cells[:6] == ["dubbo", f"127.0.0.1:{provider.port}", "100", "1.0.0", "-", "enabled"]
    assert "addLong" in cells[6].split(",")
    assert sig.startswith("signatures: provider metadata (zookeeper ")

    r = tb("registry", "ls", "--json", "--version", "9.9.9", url, SERVICE)
    assert r.returncode == 1 and orjson_loads(r.stdout)["instances"] == []

    target = f"zookeeper://{zookeeper}/{SERVICE}?root={root}&metadata_root={root}-meta"
    r = tb("call", target, "addLong", "[9007199254740993, 1]")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "9007199254740994"
    assert "$invoke" not in provider.last_attachments  # typed from the provider metadata

    r = tb(
        "call", f"zookeeper://{zookeeper}/com.nobody.Home?root={root}", "x", "[]", "--timeout", "1"
    )
    assert r.returncode == 1 and "no_provider" in r.stderr, r.stderr


def orjson_loads(text: str) -> Any:
    import orjson

    return orjson.loads(text)


# ---- one interface exported in two groups / two versions on one port ------------------------


@pytest.mark.parametrize("order", [("g1", "g2"), ("g2", "g1")], ids=["g1-first", "g2-first"])
def test_two_groups_on_one_port_are_two_endpoints(bg, pub, zookeeper, root, order) -> None:
    """An ordinary Dubbo deployment: one process exports the interface in groups g1 and g2
    on one port.  Both exports are discovered whichever ZooKeeper lists first; a call for
    either group reaches that export, over one shared connection; ``registry ls`` shows
    each group."""
    provider = bg.start_provider(version="1.0.0", group="g1", also=(("1.0.0", "g2"),))
    register_demo_provider(pub, provider, exports=[("1.0.0", g) for g in order])
    url = zk_url(zookeeper, root)
    gw = bg.start_gateway(
        f"""
listen: {{host: 127.0.0.1, port: 0}}
registry_wait: 3s
registries: {{zk: "{url}"}}
services:
  - {{interface: {SERVICE}, registry: zk, version: "1.0.0", group: g1, retries: 0}}
auto_routes: {{prefix: /, expose: ["com.tribridge.*"]}}
"""
    )
    for group in ("g1", "g2", "g1", "g2"):
        status, body = http_request(
            gw.port, "POST", f"/{SERVICE}/greet", [group], headers={"x-dubbo-group": group}
        )
        assert (status, body) == (200, f"Hello, {group}"), body
    assert provider.export_calls == {("1.0.0", "g1"): 2, ("1.0.0", "g2"): 2}
    # the service's own snapshot holds its group; g2's is followed next to it
    assert [(e.port, e.group) for e in snapshot(gw).endpoints] == [(provider.port, "g1")]
    status, body = http_request(
        gw.port, "POST", f"/{SERVICE}/greet", ["x"], headers={"x-dubbo-group": "g3"}
    )
    assert status == 503 and body["error"]["code"] == "no_provider", body
    assert "g3/" in body["error"]["message"], body
    # one connection to the address, shared by both exports
    assert [p.port for p in gw.pools.pools.values()] == [provider.port]
    assert provider.connections == 1

    reg = open_registry(url)

    async def everything() -> Any:
        await reg.start()
        try:
            return await reg.lookup(ServiceKey(SERVICE, "*", "*"), 10)
        finally:
            await reg.close()

    snap = bg.run(everything())
    assert sorted((e.port, e.group, e.version) for e in snap.endpoints) == [
        (provider.port, "g1", "1.0.0"),
        (provider.port, "g2", "1.0.0"),
    ]

    for group in ("g1", "g2"):
        r = tb("registry", "ls", url, SERVICE, "--group", group)
        assert r.returncode == 0, r.stderr
        rows = [ln.split() for ln in r.stdout.splitlines()[1:] if ln.startswith("dubbo")]
        assert [(c[1], c[4]) for c in rows] == [(f"127.0.0.1:{provider.port}", group)], r.stdout
    r = tb("registry", "ls", url, SERVICE)
    groups = sorted(ln.split()[4] for ln in r.stdout.splitlines() if ln.startswith("dubbo"))
    assert groups == ["g1", "g2"], r.stdout


def test_two_versions_on_one_port_at_application_level(bg, pub, zookeeper, root) -> None:
    """The same at application level: one instance whose MetadataInfo lists two versions."""
    app = f"app-{root}"
    provider = bg.start_provider(version="1.0.0", also=(("2.0.0", ""),))
    register_demo_provider(
        pub,
        provider,
        application=app,
        interface_level=False,
        app_level=True,
        exports=[("2.0.0", ""), ("1.0.0", "")],
    )
    gw = bg.start_gateway(gateway_yaml(zk_url(zookeeper, root)))
    for version in ("1.0.0", "2.0.0"):
        status, body = http_request(
            gw.port, "POST", f"/{SERVICE}/greet", [version], headers={"x-dubbo-version": version}
        )
        assert (status, body) == (200, f"Hello, {version}"), body
    assert provider.export_calls == {("1.0.0", ""): 1, ("2.0.0", ""): 1}
    assert sorted(e.version for e in snapshot(gw).endpoints) == ["1.0.0", "2.0.0"]


# ---- registry records are untrusted input ---------------------------------------------------


def test_hostile_records_beside_good_ones(bg, pub, zookeeper, root) -> None:
    """Issue 21: one malformed provider URL (an unclosed IPv6 bracket) used to stop the whole
    service — 503 registry_not_ready, registry ls failing — while a good provider sat beside
    it.  Here every kind of bad record ZooKeeper can hold sits beside good ones from before
    the gateway starts: calls keep working, a provider added afterwards is still picked up,
    each bad record is skipped, counted once, shown in registry ls, the admin API and
    metrics."""
    import http.client

    import orjson
    from tribridge.registries.zookeeper_nodes import definition_path, url_encode

    good = bg.start_provider(version="1.0.0")
    register_demo_provider(pub, good)
    zk, base = pub.client, pub.service_path(SERVICE)
    hostile = {
        f"dubbo://[::1:20880/{SERVICE}?interface={SERVICE}": "bad_url",  # the record
        f"dubbo://127.0.0.1:99999/{SERVICE}": "bad_port",
        f"dubbo://127.0.0.1:20881/{SERVICE}?weight=100000000000": "bad_value",
        f"dubbo://bad host:20882/{SERVICE}": "bad_host",
        f"dubbo://127.0.0.1:20883/{SERVICE}?x=" + "y" * 20_000: "too_large",
    }
    for text in hostile:
        zk.create(f"{base}/{url_encode(text)}", ephemeral=True)
    for rule in ("override://[::1/x", f"override://0.0.0.0/{SERVICE}?weight=abc"):
        zk.create(
            f"{pub.service_path(SERVICE, 'configurators')}/{url_encode(rule)}", makepath=True
        )
    # application level: a hostile application name, a binary and a mistyped instance
    app = f"app-{root}"
    meta_root = f"/{root}-meta"
    zk.create(f"{meta_root}/mapping/{SERVICE}", f"../../x,{app}".encode(), makepath=True)
    zk.create(f"/services/{app}/bin", b"\xff\xfe\x00\x01", ephemeral=True, makepath=True)
    zk.create(
        f"/services/{app}/typed",
        orjson.dumps({"address": "127.0.0.1", "port": "20880"}),
        ephemeral=True,
    )
    # a provider of version 2.0.0 whose published definition is binary garbage: the
    # provider is served (generic calls), the document is skipped
    other = bg.start_provider(version="2.0.0")
    register_demo_provider(pub, other, application="bad-def", definition=False)
    bad_def = definition_path(SERVICE, "2.0.0", "", "bad-def", meta_root.strip("/"))
    zk.create(bad_def, b"\x00\x9c binary, not JSON", makepath=True)

    url = zk_url(zookeeper, root)
    gw = bg.start_gateway(gateway_yaml(url), admin_port=0)
    v1 = {"x-dubbo-version": "1.0.0"}
    status, body = http_request(gw.port, "POST", f"/{SERVICE}/addLong", [40, 2], v1)
    assert (status, body) == (200, 42), body
    status, body = http_request(
        gw.port, "POST", f"/{SERVICE}/greet", ["v2"], headers={"x-dubbo-version": "2.0.0"}
    )
    assert (status, body) == (200, "Hello, v2"), body
    assert ports(gw) == {good.port, other.port}

    reg = gw.registries["zk"]
    rec = reg.status()["skipped_records"]
    reasons = {(r["where"], r["reason"]) for r in rec["current"]}
    for text, reason in hostile.items():
        assert (f"providers/{url_encode(text)}"[:200], reason) in {
            (w[:200], r) for w, r in reasons
        }, (text, reasons)
    assert ("mapping ../../x", "bad_value") in reasons, reasons
    assert (f"/services/{app}/bin", "bad_json") in reasons, reasons
    assert (f"/services/{app}/typed", "bad_port") in reasons, reasons
    assert (bad_def, "bad_json") in reasons, reasons
    assert any(w.startswith("configurators/") and r == "bad_url" for w, r in reasons), reasons
    assert any(w.startswith("configurators/") and r == "bad_value" for w, r in reasons), reasons
    total = rec["total"]
    assert total == len(reasons), rec

    # a good provider and another bad record arrive later: the good one is picked up, the
    # bad one counted once (not once per refresh)
    late = bg.start_provider(version="1.0.0")
    register_demo_provider(pub, late)
    zk.create(f"{base}/{url_encode(f'dubbo://[::2:1/{SERVICE}')}", ephemeral=True)
    wait_for(lambda: ports(gw) == {good.port, other.port, late.port}, "the late provider")
    wait_for(lambda: reg.skips.total == total + 1, "the late bad record reported")
    sync = reg.last_sync
    pub.add_configurator(SERVICE, f"override://0.0.0.0/{SERVICE}?weight=50")
    wait_for(lambda: reg.last_sync != sync, "one more refresh")
    assert reg.skips.total == total + 1
    before = (good.calls, late.calls)
    for i in range(20):
        assert http_request(gw.port, "POST", f"/{SERVICE}/addLong", [i, 1], v1) == (200, i + 1)
    assert good.calls > before[0] and late.calls > before[1]

    # the admin API's registry view and the metric
    conn = http.client.HTTPConnection("127.0.0.1", gw.admin.port, timeout=10)
    try:
        conn.request("GET", "/registries")
        view = orjson.loads(conn.getresponse().read())["registries"]["zk"]
    finally:
        conn.close()
    assert view["skipped_records"]["total"] == total + 1
    assert view["skipped_records"]["by_reason"]["bad_url"] >= 3
    metrics = gw.metrics_text().decode()
    assert 'tribridge_registry_records_skipped_total{reason="bad_url",registry="zk"}' in metrics

    # registry ls: the service listed; its good instances, and the bad records with reasons
    r = tb("registry", "ls", url)
    assert r.returncode == 0 and r.stdout.split() == [SERVICE], (r.stdout, r.stderr)
    r = tb("registry", "ls", url, SERVICE)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    rows = {ln.split()[1] for ln in lines if ln.startswith("dubbo")}
    assert rows == {f"127.0.0.1:{p.port}" for p in (good, other, late)}, r.stdout
    notes = [ln for ln in lines if ln.startswith("skipped: ")]
    assert any("bad_url" in n and "%5B%3A%3A1%3A20880" in n for n in notes), r.stdout
    assert any("bad_json" in n and bad_def in n for n in notes), r.stdout
    r = tb("registry", "ls", "--json", url, SERVICE)
    out = orjson.loads(r.stdout)
    assert len(out["instances"]) == 3 and len(out["skipped"]) >= len(hostile) + 4, out
