"""Discovery through Nacos, end to end: providers registered by nacos-sdk-python (as Dubbo
writes them) into the emulator, the gateway's NacosRegistry following them, HTTP calls to the
demo provider (a real Dubbo2 server on our codecs)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from tribridge.interop.demo_provider import SERVICE
from tribridge.interop.nacos_emulator import free_port_pair, start_emulator_process
from tribridge.interop.nacos_registration import (
    DubboNacosProvider,
    demo_provider_url,
    demo_service_definition,
)
from tribridge.interop.testing import BackgroundLoop, http_request
from tribridge.registries import open_registry
from tribridge.registries.base import RegistryError, ServiceKey
from tribridge.registries.nacos import NacosRegistry


def gateway_yaml(address: str, query: str = "", **kw: str) -> str:
    q = "timeout=1000&refresh=1" + (f"&{query}" if query else "")
    return f"""
registries:
  nacos: "nacos://{address}?{q}"
registry_wait: {kw.get("wait", "3s")}
auto_routes: {{prefix: /rpc, expose: ["com.tribridge.*"]}}
"""


def rpc(
    port: int, method: str, args: Any, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    # The invoker sends the configured/requested version, not the endpoint's: name it.
    h = {"x-dubbo-version": "1.0.0", **(headers or {})}
    return http_request(port, "POST", f"/rpc/{SERVICE}/{method}", args, h)


def until(fn: Any, timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout}s (last: {last!r})")


class Env:
    """A namespace of its own per test, so tests share the session emulator safely."""

    def __init__(self, bg: BackgroundLoop, address: str) -> None:
        self.bg = bg
        self.address = address
        self.namespace = f"ns-{uuid.uuid4().hex[:8]}"
        self.registrations: list[DubboNacosProvider] = []

    def provider(self, **kw: Any) -> Any:
        return self.bg.start_provider(**kw)

    def register(
        self,
        port: int,
        *,
        mode: str = "interface",
        definition: bool = True,
        overrides: dict[str, str] | None = None,
        storage: str = "remote",
        provider: Any = None,
        **url_kw: Any,
    ) -> DubboNacosProvider:
        reg = DubboNacosProvider(
            self.address,
            demo_provider_url(port, **url_kw),
            namespace=self.namespace,
            mode=mode,
            definition=demo_service_definition() if definition else None,
            metadata_overrides=overrides,
            storage=storage,
            provider=provider,
        )
        self.bg.run(reg.start())
        self.registrations.append(reg)
        return reg

    def gateway(self, query: str = "", **kw: str) -> Any:
        q = f"namespace={self.namespace}" + (f"&{query}" if query else "")
        return self.bg.start_gateway(gateway_yaml(self.address, q, **kw))

    def close(self) -> None:
        for r in self.registrations:
            try:
                self.bg.run(r.close())
            except Exception:
                pass


@pytest.fixture
def env(bg: BackgroundLoop, nacos: Any) -> Iterator[Env]:
    e = Env(bg, nacos.address)
    try:
        yield e
    finally:
        e.close()


def registry_status(gw: Any) -> dict[str, Any]:
    return gw.registries["nacos"].status()


# ---- URL --------------------------------------------------------------------------------------


def test_url_parsing() -> None:
    r = open_registry(
        "nacos://u:p@10.0.0.1:8848,10.0.0.2:8848?namespace=dev&group=G&port_offset=1001&timeout=500"
        "&mode=interface&metadata_group=meta",
        "n",
    )
    assert isinstance(r, NacosRegistry)
    assert (
        r.address,
        r.namespace,
        r.group,
        r.port_offset,
        r.timeout,
        r.mode,
        r.metadata_group,
    ) == ("10.0.0.1:8848,10.0.0.2:8848", "dev", "G", 1001, 0.5, "interface", "meta")
    assert (r.username, r.password) == ("u", "p")
    for bad, msg in [
        ("nacos://h:8848?nmespace=x", "unknown parameter"),
        ("nacos://h?namespace=x", "bad server address"),
        ("nacos://h:8848?mode=both", "mode must be"),
        ("nacos://h:8848?timeout=abc", "must be a number"),
    ]:
        with pytest.raises(RegistryError, match=msg):
            open_registry(bad, "n")


# ---- calls --------------------------------------------------------------------------------------


def test_call_through_nacos_with_signatures_from_metadata(env: Env) -> None:
    p = env.provider(version="1.0.0")
    env.register(p.port)
    t0 = time.perf_counter()
    gw = env.gateway()
    status, body = rpc(gw.port, "greet", ["nacos"])
    assert (status, body) == (200, "Hello, nacos"), repr((body, registry_status(gw)))
    # long and POJO parameters with no route config: the types come from the definition
    # the provider published to Nacos config, so this is a direct (non-generic) call
    assert rpc(gw.port, "addLong", [2**40, 2]) == (200, 2**40 + 2)
    assert "addLong" in p.last_attachments and "$invoke" not in p.last_attachments
    status, body = rpc(gw.port, "echoUser", [{"id": 7, "name": "Ada", "color": "RED"}])
    assert status == 200 and body["name"] == "Ada" and body["id"] == 7
    # the enum went out as an enum object (the result side names it unless configured)
    assert body["color"] in ("RED", {"class": "com.tribridge.demo.Color", "name": "RED"})
    assert p.last_args["echoUser"][0].cls == "com.tribridge.demo.User"
    snap = gw.services[SERVICE].snapshot
    assert snap.definition is not None and "provider:demo-app" in snap.definition.source
    assert "group dubbo" in snap.definition.source
    print(f"\nnacos: registration -> first routed call {1000 * (time.perf_counter() - t0):.0f} ms")


def test_without_definition_calls_are_generic(env: Env) -> None:
    p = env.provider(version="1.0.0")
    env.register(p.port, definition=False)
    gw = env.gateway()
    assert rpc(gw.port, "greet", ["x"]) == (200, "Hello, x")
    assert gw.services[SERVICE].snapshot.definition is None
    assert "$invoke" in p.last_attachments


def test_deregistered_and_last_instance_removed(env: Env) -> None:
    a = env.provider(version="1.0.0")
    b = env.provider(version="1.0.0")
    ra = env.register(a.port)
    env.register(b.port)
    gw = env.gateway()
    until(
        lambda: (
            len(gw.services.get(SERVICE).snapshot.endpoints) == 2
            if SERVICE in gw.services
            else rpc(gw.port, "greet", ["w"]) and False
        ),
        what="two endpoints",
    )
    env.bg.run(ra.deregister_interface())
    until(
        lambda: [e.port for e in gw.services[SERVICE].snapshot.endpoints] == [b.port],
        what="a removed",
    )
    before = a.calls
    for _ in range(20):
        assert rpc(gw.port, "greet", ["y"]) == (200, "Hello, y")
    assert a.calls == before
    env.bg.run(env.registrations[1].deregister_interface())
    until(lambda: gw.services[SERVICE].snapshot.endpoints == (), what="no endpoints")
    status, body = rpc(gw.port, "greet", ["z"])
    assert status == 503 and body["error"]["code"] == "no_provider", body


def test_provider_connection_lost_removes_instances(env: Env) -> None:
    a = env.provider(version="1.0.0")
    reg = env.register(a.port)
    gw = env.gateway()
    assert rpc(gw.port, "greet", ["q"])[0] == 200
    env.bg.run(reg.close())  # the SDK client goes away: Nacos drops its ephemeral instance
    until(lambda: gw.services[SERVICE].snapshot.endpoints == (), what="instance gone")


def test_unknown_interface_is_404(env: Env) -> None:
    gw = env.gateway()
    status, body = http_request(gw.port, "POST", "/rpc/com.tribridge.Nope/x", [])
    assert status == 404, body


def test_version_group_and_disabled(env: Env) -> None:
    v1 = env.provider(version="1.0.0")
    v2 = env.provider(version="2.0.0")
    off = env.provider(version="1.0.0")
    env.register(v1.port, version="1.0.0")
    env.register(v2.port, version="2.0.0")
    env.register(off.port, version="1.0.0", overrides={"enabled": "false"})
    gw = env.gateway()
    for _ in range(10):
        assert rpc(gw.port, "greet", ["v"], {"x-dubbo-version": "2.0.0"}) == (200, "Hello, v")
    assert v2.calls == 10 and off.calls == 0
    eps = gw.services[SERVICE].snapshot.endpoints
    assert sorted(e.version for e in eps) == ["1.0.0", "2.0.0"]


def test_malformed_instance_is_skipped_and_reported(env: Env) -> None:
    good = env.provider(version="1.0.0")
    env.register(good.port)
    env.register(good.port + 1 if good.port < 65535 else 1, overrides={"weight": "heavy"})
    gw = env.gateway()
    for _ in range(5):
        assert rpc(gw.port, "greet", ["m"]) == (200, "Hello, m")
    skipped = registry_status(gw)["skipped"]
    assert any("bad weight" in why for why in skipped.values()), skipped


def test_list_services_and_lookup(bg: BackgroundLoop, env: Env) -> None:
    p = env.provider(version="1.0.0")
    env.register(p.port)
    reg = NacosRegistry(env.address, namespace=env.namespace, timeout=1.0)

    async def go() -> tuple[list[str], Any]:
        await reg.start()
        try:
            for _ in range(100):
                if reg.status()["connected"]:
                    break
                await asyncio.sleep(0.05)
            return await reg.list_services(), await reg.lookup(ServiceKey(SERVICE), 5.0)
        finally:
            await reg.close()

    names, snap = bg.run(go())
    assert names == [SERVICE]
    assert [e.port for e in snap.endpoints] == [p.port] and snap.endpoints[0].version == "1.0.0"
    assert "greet" in snap.endpoints[0].methods


# ---- application-level (Dubbo 3) -----------------------------------------------------------------


def test_application_level_discovery_remote_metadata(env: Env) -> None:
    p = env.provider(version="1.0.0")
    env.register(p.port, mode="instance", app="app-level-demo")
    gw = env.gateway("mode=instance")
    assert rpc(gw.port, "greet", ["app"]) == (200, "Hello, app")
    assert rpc(gw.port, "addLong", [2**35, 1]) == (200, 2**35 + 1)  # definition via the app name
    snap = gw.services[SERVICE].snapshot
    assert [e.port for e in snap.endpoints] == [p.port]
    assert "provider:app-level-demo" in snap.definition.source


def test_application_level_discovery_local_metadata(env: Env) -> None:
    """Dubbo's default ``storage-type=local``: mapping -> the app's instances -> each
    instance's own MetadataService (our demo provider serves getMetadataInfo) -> calls."""
    from v2.nacos import ConfigParam

    app = f"local-{env.namespace}"
    a = env.provider(version="1.0.0")
    b = env.provider(version="1.0.0")
    ra = env.register(a.port, mode="instance", app=app, storage="local", provider=a)
    env.register(b.port, mode="instance", app=app, storage="local", provider=b)
    assert ra.revision and ra.revision != env.registrations[1].revision  # ports differ
    # nothing in Nacos config: the MetadataInfo exists only on the providers
    assert env.bg.run(ra.config.get_config(ConfigParam(data_id=app, group=ra.revision))) in (
        None,
        "",
    )
    gw = env.gateway("mode=instance")
    until(
        lambda: (
            len(gw.services[SERVICE].snapshot.endpoints) == 2
            if SERVICE in gw.services
            else rpc(gw.port, "greet", ["w"]) and False
        ),
        what="both instances",
    )
    for i in range(10):
        assert rpc(gw.port, "greet", [f"local{i}"]) == (200, f"Hello, local{i}")
    assert rpc(gw.port, "addLong", [2**35, 1]) == (200, 2**35 + 1)
    assert a.calls > 0 and b.calls > 0
    assert (a.metadata_calls, b.metadata_calls) == (1, 1)  # once per revision
    assert "$invoke" not in a.last_attachments  # the definition was found via the app name
    eps = gw.services[SERVICE].snapshot.endpoints
    assert sorted(e.port for e in eps) == sorted([a.port, b.port])
    assert {(e.protocol, e.version, e.metadata["discovery"]) for e in eps} == {
        ("dubbo", "1.0.0", "application")
    }
    assert "provider:" + app in gw.services[SERVICE].snapshot.definition.source
    assert not registry_status(gw)["skipped"]


def test_register_mode_all_is_deduplicated(env: Env) -> None:
    p = env.provider(version="1.0.0")
    env.register(p.port, mode="all", app="both-demo")
    gw = env.gateway()
    assert rpc(gw.port, "greet", ["b"]) == (200, "Hello, b")
    assert len(gw.services[SERVICE].snapshot.endpoints) == 1


# ---- Nacos down ----------------------------------------------------------------------------------


def test_nacos_down_at_start_then_up(bg: BackgroundLoop) -> None:
    port = free_port_pair()
    address = f"127.0.0.1:{port}"
    gw = bg.start_gateway(gateway_yaml(address, wait="0.5s"))
    assert registry_status(gw)["connected"] is False
    status, body = rpc(gw.port, "greet", ["early"])
    assert status == 503 and body["error"]["code"] == "registry_not_ready", body
    proc = start_emulator_process(port)
    reg = None
    try:
        p = bg.start_provider(version="1.0.0")
        reg = DubboNacosProvider(
            address, demo_provider_url(p.port), definition=demo_service_definition()
        )
        bg.run(reg.start())
        until(
            lambda: rpc(gw.port, "greet", ["late"]) == (200, "Hello, late"),
            timeout=20,
            what="calls after Nacos came up",
        )
        assert registry_status(gw)["connected"] is True
    finally:
        if reg is not None:
            bg.run(reg.close())
        proc.close()


def test_nacos_lost_keeps_last_known_good(bg: BackgroundLoop) -> None:
    proc = start_emulator_process(0)
    reg = None
    try:
        p = bg.start_provider(version="1.0.0")
        reg = DubboNacosProvider(
            proc.address, demo_provider_url(p.port), definition=demo_service_definition()
        )
        bg.run(reg.start())
        gw = bg.start_gateway(gateway_yaml(proc.address))
        assert rpc(gw.port, "addLong", [1, 2]) == (200, 3)
        proc.close()
        until(lambda: registry_status(gw)["connected"] is False, what="disconnected status")
        snap = until(
            lambda: (lambda s: s if not s.healthy else None)(gw.services[SERVICE].snapshot),
            what="unhealthy snapshot",
        )
        assert [e.port for e in snap.endpoints] == [p.port] and snap.error
        for _ in range(5):  # last-known-good keeps serving, with signatures
            assert rpc(gw.port, "addLong", [2**40, 1]) == (200, 2**40 + 1)
    finally:
        if reg is not None:
            try:
                bg.run(reg.close(), timeout=15)
            except Exception:
                pass
        proc.close()


# ---- churn under load ------------------------------------------------------------------------------


def test_providers_added_and_removed_under_load(env: Env) -> None:
    base = env.provider(version="1.0.0")
    env.register(base.port)
    gw = env.gateway()
    assert rpc(gw.port, "greet", ["warm"])[0] == 200
    results: list[tuple[int, Any]] = []
    stop = threading.Event()

    def load() -> None:
        deadline = time.monotonic() + 20
        n = 0
        while not stop.is_set() and time.monotonic() < deadline and n < 5000:
            results.append(rpc(gw.port, "greet", ["l"]))
            n += 1

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    extra = []
    try:
        for _ in range(3):
            p = env.provider(version="1.0.0")
            r = env.register(p.port)
            extra.append((p, r))
            until(
                lambda p=p: any(e.port == p.port for e in gw.services[SERVICE].snapshot.endpoints),
                what="new provider routed",
            )
            time.sleep(0.3)
        for p, r in extra:
            env.bg.run(r.deregister_interface())
            until(
                lambda p=p: all(e.port != p.port for e in gw.services[SERVICE].snapshot.endpoints),
                what="provider removed",
            )
            time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    failures = [r for r in results if r[0] != 200]
    assert len(results) > 50
    assert not failures, failures[:5]
    assert all(p.calls > 0 for p, _ in extra)


def test_local_metadata_that_cannot_be_fetched_is_skipped(env: Env) -> None:
    """storage-type=local needs the provider's MetadataService; this provider exports none
    (no MetadataInfo was given to it), so that instance is skipped and reported while
    interface-level providers keep serving."""
    p = env.provider(version="1.0.0")
    env.register(
        p.port,
        mode="instance",
        app="local-demo",
        overrides={"dubbo.metadata.storage-type": "local"},
    )
    q = env.provider(version="1.0.0")
    env.register(q.port)
    gw = env.gateway()
    for _ in range(5):
        assert rpc(gw.port, "greet", ["l"]) == (200, "Hello, l")
    assert [e.port for e in gw.services[SERVICE].snapshot.endpoints] == [q.port]
    skipped = registry_status(gw)["skipped"]
    assert any(k.startswith("local-demo ") for k in skipped), skipped
