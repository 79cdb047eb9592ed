"""KubernetesRegistry against the kube-apiserver emulator (plain, TLS in-cluster, kubeconfig),
and the gateway routing to demo providers found through EndpointSlices under load."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from tribridge.interop.demo_provider import SERVICE
from tribridge.interop.k8s_emulator import (
    KubeEmulator,
    endpoint_slice,
    endpoints,
    service,
    slice_endpoint,
)
from tribridge.interop.testing import BackgroundLoop, http_request
from tribridge.registries import open_registry
from tribridge.registries.base import RegistryError, ServiceKey, Snapshot
from tribridge.registries.kubernetes import KubernetesRegistry
from tribridge.registries.kubernetes_endpoints import port_protocol

from tests.conftest import registry_ls_row, tb
from tests.helpers.gateways import demo_via_registry
from tests.integration.test_eureka_registry import Load, wait_for

IFACE = "com.x.Greeter"
ANN = {"tribridge.io/interfaces": f"{IFACE},com.x.Other", "tribridge.io/version": "1.0.0"}
PORTS = [
    {"name": "dubbo", "port": 20880, "protocol": "TCP"},
    {"name": "tri", "port": 50051, "protocol": "TCP"},
    {"name": "metrics", "port": 9090, "protocol": "TCP"},
]


def seed(emu: KubeEmulator) -> None:
    emu.apply(service("greeter", ANN))
    emu.apply(service("plain"))  # no annotation: not a Dubbo service
    emu.apply(
        endpoint_slice(
            "greeter-a",
            "greeter",
            [
                slice_endpoint("10.0.0.1", pod="greeter-1"),
                slice_endpoint("10.0.0.2", ready=None),  # nil ready means ready
                slice_endpoint("10.0.0.3", ready=False),
                slice_endpoint("10.0.0.4", ready=False, serving=True, terminating=True),
            ],
            PORTS,
        )
    )
    emu.apply(endpoints("greeter", ["10.0.0.1", "10.0.0.2"], PORTS[:1], not_ready=["10.0.0.3"]))


async def until(pred: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def emu() -> AsyncIterator[KubeEmulator]:
    e = await KubeEmulator().start()
    seed(e)
    try:
        yield e
    finally:
        await e.stop()


def addrs(snap: Snapshot) -> list[tuple[str, int, str]]:
    return [(e.host, e.port, e.protocol) for e in snap.endpoints]


# ---- unit ----------------------------------------------------------------------------------


def test_port_protocol_names() -> None:
    assert port_protocol({"name": "dubbo"}, False, "dubbo") == "dubbo"
    assert port_protocol({"name": "dubbo-admin"}, False, "dubbo") == "dubbo"
    assert port_protocol({"name": "grpc"}, False, "dubbo") == "tri"
    assert port_protocol({"name": "x", "appProtocol": "kubernetes.io/h2c"}, False, "dubbo") == "tri"
    assert port_protocol({"name": "http"}, False, "dubbo") is None
    assert port_protocol({"port": 1}, True, "tri") == "tri"
    assert port_protocol({"port": 1}, False, "tri") is None


def test_from_url_forms(tmp_path: Path) -> None:
    r = open_registry("k8s://127.0.0.1:6443?namespace=ns1&map=com.x.A:svc-a", "k")
    assert isinstance(r, KubernetesRegistry)
    assert r.namespace == "ns1" and r.svc_map == {"com.x.A": ("svc-a",)}
    assert r.config.cluster.server == "http://127.0.0.1:6443"
    kc = tmp_path / "kubeconfig"
    kc.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [{"name": "c", "cluster": {"server": "https://10.1.1.1:6443"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [
                    {"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "kns"}}
                ],
            }
        )
    )
    r = open_registry(f"kubernetes://?kubeconfig={kc}", "k")
    assert r.namespace == "kns" and r.config.cluster.server == "https://10.1.1.1:6443"
    r = open_registry(f"kubernetes://127.0.0.1:7000?kubeconfig={kc}&namespace=x", "k")
    assert r.namespace == "x" and r.config.cluster.server == "https://127.0.0.1:7000"
    for bad in (
        f"kubernetes://?serviceaccount={tmp_path}/none",
        "k8s://h:1?map=x",
        "k8s://h:1?source=pods",
        f"kubernetes://?kubeconfig={tmp_path}/missing",
    ):
        with pytest.raises(RegistryError):
            open_registry(bad)


# ---- the registry alone --------------------------------------------------------------------


async def test_slices_conditions_ports_and_annotations(emu: KubeEmulator) -> None:
    reg = KubernetesRegistry.from_url(f"kubernetes://127.0.0.1:{emu.port}?namespace=default", "k")
    got: list[Snapshot] = []
    first = reg.subscribe(ServiceKey(IFACE), got.append)
    assert first is not None and first.pending
    await reg.start()
    try:
        await until(lambda: got and not got[-1].pending, what="a first snapshot")
        assert addrs(got[-1]) == [
            ("10.0.0.1", 20880, "dubbo"),
            ("10.0.0.1", 50051, "tri"),
            ("10.0.0.2", 20880, "dubbo"),
            ("10.0.0.2", 50051, "tri"),
        ]
        ep = got[-1].endpoints[0]
        assert ep.version == "1.0.0" and ep.metadata["k8s.pod"] == "greeter-1"
        assert ep.metadata["k8s.service"] == "greeter"
        assert await reg.list_services() == [IFACE, "com.x.Other"]
        # a new ready endpoint in another slice, then the first one starts terminating
        emu.apply(endpoint_slice("greeter-b", "greeter", [slice_endpoint("10.0.0.5")], PORTS[:1]))
        await until(lambda: ("10.0.0.5", 20880, "dubbo") in addrs(got[-1]), what="10.0.0.5")
        emu.apply(
            endpoint_slice(
                "greeter-a",
                "greeter",
                [slice_endpoint("10.0.0.1", ready=False, serving=True, terminating=True)],
                PORTS,
            )
        )
        await until(lambda: addrs(got[-1]) == [("10.0.0.5", 20880, "dubbo")], what="termination")
        # the annotation goes: no Service serves the interface any more
        emu.apply(service("greeter", {}))
        await until(lambda: addrs(got[-1]) == [], what="unmapped")
        st = reg.status()
        assert (
            st["connected"] and st["counters"]["events"] >= 3 and st["source"] == "endpointslices"
        )
    finally:
        await reg.close()


async def test_bookmarks_restart_and_410_relist(emu: KubeEmulator) -> None:
    reg = KubernetesRegistry.from_url(f"k8s://127.0.0.1:{emu.port}", "k")
    got: list[Snapshot] = []
    reg.subscribe(ServiceKey(IFACE, "1.0.0"), got.append)
    await reg.start()
    try:
        await until(lambda: got and not got[-1].pending)
        base = len(addrs(got[-1]))
        # bookmarks advance the resume point without events
        emu.apply(service("unrelated"))
        await until(lambda: reg.rv.get("endpointslices") != str(emu.rv) and emu.bookmark() >= 2)
        await until(lambda: reg.rv.get("endpointslices") == str(emu.rv), what="bookmark rv")
        assert reg.counters["bookmarks"] >= 1
        # the API server goes away; changes made meanwhile arrive after the reconnect
        await emu.stop()
        await until(lambda: got[-1].healthy is False, what="loss to show")
        assert len(addrs(got[-1])) == base, "last-known-good kept"
        emu.apply(endpoint_slice("greeter-c", "greeter", [slice_endpoint("10.0.0.7")], PORTS[:1]))
        lists = reg.counters["lists"]
        await emu.start()
        await until(
            lambda: got[-1].healthy and ("10.0.0.7", 20880, "dubbo") in addrs(got[-1]),
            what="resume after restart",
        )
        assert reg.counters["lists"] == lists, "resumed from its resourceVersion, no relist"
        # history compacted while a deletion happens: 410 -> relist sees the deletion
        lists = reg.counters["lists"]
        await emu.stop()
        emu.delete("EndpointSlice", "greeter-c")
        emu.compact()
        await emu.start()
        await until(lambda: ("10.0.0.7", 20880, "dubbo") not in addrs(got[-1]), what="relist")
        assert reg.counters["gone"] >= 1 and reg.counters["lists"] > lists
        assert got[-1].healthy
    finally:
        await reg.close()


async def test_endpoints_fallback_when_slices_are_not_served() -> None:
    emu = await KubeEmulator(unserved=("endpointslices",)).start()
    seed(emu)
    reg = KubernetesRegistry.from_url(f"k8s://127.0.0.1:{emu.port}", "k")
    try:
        snap = await reg.lookup(ServiceKey(IFACE), 5)
        assert addrs(snap) == [("10.0.0.1", 20880, "dubbo"), ("10.0.0.2", 20880, "dubbo")]
        assert reg.status()["source"] == "endpoints"
        await reg.start()
        got: list[Snapshot] = []
        reg.subscribe(ServiceKey(IFACE), got.append)
        emu.apply(endpoints("greeter", ["10.0.0.2"], PORTS[:1], not_ready=["10.0.0.1"]))
        await until(lambda: got and addrs(got[-1]) == [("10.0.0.2", 20880, "dubbo")])
    finally:
        await reg.close()
        await emu.stop()


def _tls_files(tmp: Path) -> ssl.SSLContext:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-emulator")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (tmp / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp / "ca.crt", tmp / "key.pem")
    return ctx


async def test_in_cluster_config_over_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sa = tmp_path / "sa"
    sa.mkdir()
    ctx = _tls_files(sa)
    (sa / "token").write_text("sa-token\n")
    (sa / "namespace").write_text("default")
    emu = await KubeEmulator(ssl_context=ctx, token="sa-token").start()
    seed(emu)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(emu.port))
    reg = KubernetesRegistry.from_url(f"kubernetes://?serviceaccount={sa}", "k")
    try:
        assert reg.config.cluster.server == f"https://127.0.0.1:{emu.port}"
        snap = await reg.lookup(ServiceKey(IFACE), 5)
        assert ("10.0.0.1", 20880, "dubbo") in addrs(snap)
        # a rotated token is read again (lightkube's token-file auth)
        emu.token = "rotated"
        (sa / "token").write_text("rotated\n")
        reg2 = KubernetesRegistry.from_url(f"kubernetes://?serviceaccount={sa}", "k2")
        assert await reg2.list_services() == [IFACE, "com.x.Other"]
        await reg2.close()
        emu.token = "other"
        reg3 = KubernetesRegistry.from_url(f"kubernetes://?serviceaccount={sa}", "k3")
        with pytest.raises(RegistryError, match="401"):
            await reg3.list_services()
        await reg3.close()
    finally:
        await reg.close()
        await emu.stop()


async def test_kubeconfig_with_token(tmp_path: Path) -> None:
    emu = await KubeEmulator(token="kc-token").start()
    seed(emu)
    kc = tmp_path / "kubeconfig"
    kc.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "emu",
                "clusters": [{"name": "emu", "cluster": {"server": emu.url}}],
                "users": [{"name": "u", "user": {"token": "kc-token"}}],
                "contexts": [
                    {
                        "name": "emu",
                        "context": {"cluster": "emu", "user": "u", "namespace": "default"},
                    }
                ],
            }
        )
    )
    reg = KubernetesRegistry.from_url(f"kubernetes://?kubeconfig={kc}", "k")
    try:
        snap = await reg.lookup(ServiceKey(IFACE), 5)
        assert ("10.0.0.2", 50051, "tri") in addrs(snap)
    finally:
        await reg.close()
        await emu.stop()


async def test_start_never_fails_when_the_api_is_down() -> None:
    from tests.conftest import free_port

    reg = KubernetesRegistry.from_url(f"k8s://127.0.0.1:{free_port()}", "k")
    got: list[Snapshot] = []
    reg.subscribe(ServiceKey(IFACE), got.append)
    await reg.start()
    try:
        await until(lambda: reg.status()["errors"], what="an error")
        assert not reg.status()["connected"]
        assert got and got[-1].pending and not got[-1].healthy
    finally:
        await reg.close()


# ---- through the gateway -------------------------------------------------------------------


def on_loop(bg: BackgroundLoop, fn: Callable[..., Any], *args: Any) -> Any:
    async def go() -> Any:
        return fn(*args)

    return bg.run(go())


def test_gateway_through_endpoint_slices_under_load(bg: BackgroundLoop) -> None:
    emu = bg.run(KubeEmulator().start())
    providers = [bg.start_provider(version="1.0.0") for _ in range(3)]
    p1, p2, p3 = providers
    dubbo = [{"name": "dubbo", "port": p.port, "protocol": "TCP"} for p in providers]

    def slice_for(i: int, **cond: Any) -> dict[str, Any]:
        ep = slice_endpoint("127.0.0.1", pod=f"demo-{i}", **cond)
        return endpoint_slice(f"demo-{i}", "demo", [ep], [dubbo[i]])

    on_loop(
        bg,
        emu.apply,
        service("demo", {"tribridge.io/interfaces": SERVICE, "tribridge.io/version": "1.0.0"}),
    )
    on_loop(bg, emu.apply, slice_for(0))
    cfg = demo_via_registry(f"k8s://127.0.0.1:{emu.port}?namespace=default", "kube")
    try:
        gw = bg.start_gateway(yaml.safe_dump(cfg))
        svc = gw.services[SERVICE]

        def ports() -> set[int]:
            return {e.port for e in svc.snapshot.endpoints}

        hdr = {"x-dubbo-version": "1.0.0"}
        assert http_request(gw.port, "POST", f"/{SERVICE}/greet", ["k8s"], hdr) == (
            200,
            "Hello, k8s",
        )
        with Load(gw.port) as load:
            load.progress(30)
            on_loop(bg, emu.apply, slice_for(1))
            on_loop(bg, emu.apply, slice_for(2))
            wait_for(lambda: ports() == {p1.port, p2.port, p3.port}, 5, "scale up")
            calls = [p.calls for p in providers]
            load.progress(60)
            assert p2.calls > calls[1] and p3.calls > calls[2]
            # p1's pod terminates: no new calls once the gateway has seen it, then it stops
            on_loop(bg, emu.apply, slice_for(0, ready=False, serving=True, terminating=True))
            wait_for(lambda: ports() == {p2.port, p3.port}, 5, "p1 terminating")
            before = p1.calls
            load.progress(40)
            assert p1.calls == before
            bg.run(p1.close(1.0))
            on_loop(bg, emu.delete, "EndpointSlice", "demo-0")
            # the API server restarts; p2 is scaled away while it is down
            bg.run(emu.stop())
            wait_for(lambda: not svc.snapshot.healthy, 5, "loss")
            load.progress(30)
            on_loop(bg, emu.delete, "EndpointSlice", "demo-1")
            bg.run(emu.start())
            wait_for(lambda: svc.snapshot.healthy and ports() == {p3.port}, 5, "resync")
            bg.run(p2.close(1.0))
            load.progress(40)
        assert load.failures == [], load.failures[:5]
        assert load.ok >= 200
    finally:
        bg.run(emu.stop())


def test_cli_registry_ls_and_call_through_kubernetes(bg: BackgroundLoop) -> None:
    emu = bg.run(KubeEmulator().start())
    provider = bg.start_provider(version="1.0.0")
    try:
        ann = {"tribridge.io/interfaces": SERVICE, "tribridge.io/version": "1.0.0"}
        on_loop(bg, emu.apply, service("demo", ann))
        port = [{"name": "dubbo", "port": provider.port, "protocol": "TCP"}]
        ep = slice_endpoint("127.0.0.1", pod="demo-0")
        on_loop(bg, emu.apply, endpoint_slice("demo-0", "demo", [ep], port))
        url = f"k8s://127.0.0.1:{emu.port}?namespace=default"
        row = registry_ls_row(url, SERVICE, f"127.0.0.1:{provider.port}")
        assert row[0] == "dubbo" and row[3] == "1.0.0", row
        target = f"kubernetes://127.0.0.1:{emu.port}/{SERVICE}?namespace=default"
        r = tb("call", target, "add", "[40, 2]", "--version", "1.0.0")
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "42"
    finally:
        bg.run(emu.stop())
