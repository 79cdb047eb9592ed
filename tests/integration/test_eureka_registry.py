"""EurekaRegistry against the Eureka emulator, and the gateway routing to demo providers that
it finds there (scaled up and down, taken OUT_OF_SERVICE, Eureka restarted under load)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from py_eureka_client.eureka_client import EurekaClient
from tribridge.interop.demo_provider import SERVICE
from tribridge.interop.eureka_emulator import EurekaEmulator
from tribridge.interop.testing import BackgroundLoop, http_request
from tribridge.registries import open_registry
from tribridge.registries.base import RegistryError, ServiceKey, Snapshot
from tribridge.registries.eureka import EurekaRegistry, parse_map

from tests.conftest import registry_ls_row, tb
from tests.helpers.gateways import demo_via_registry

VERSION_HDR = {"x-dubbo-version": "1.0.0"}


def on_loop(bg: BackgroundLoop, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    async def go() -> Any:
        return fn(*args, **kw)

    return bg.run(go())


def wait_for(pred: Callable[[], Any], timeout: float = 8.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def meta(port: int, **extra: str) -> dict[str, str]:
    return {"dubbo.interfaces": SERVICE, "dubbo.port": str(port), "dubbo.version": "1.0.0", **extra}


def gateway_yaml(emu: EurekaEmulator, query: str = "interval=0.1") -> str:
    doc = demo_via_registry(f"eureka://127.0.0.1:{emu.port}/eureka?{query}", "eu")
    return yaml.safe_dump(doc)


# ---- URL and mapping ------------------------------------------------------------------------


def test_from_url() -> None:
    r = open_registry(
        "eureka://u:p@h1:8761,h2:8762/eureka?interval=2&map=com.x.A:app1,com.x.B:APP2,com.x.A:a3",
        "e",
    )
    assert isinstance(r, EurekaRegistry)
    assert r.servers == ["http://u:p@h1:8761/eureka/", "http://u:p@h2:8762/eureka/"]
    assert r.interval == 2.0
    assert r.app_map == {"com.x.A": ("APP1", "A3"), "com.x.B": ("APP2",)}
    assert r.status()["servers"] == ["http://h1:8761/eureka/", "http://h2:8762/eureka/"]
    r2 = EurekaRegistry.from_url("eureka://h:1?secure=true", "x")
    assert r2.servers == ["https://h:1/eureka/"]
    for bad in ("eureka://h:1?interval=0", "eureka://h:1?interval=x", "eureka://h:1?map=nocolon"):
        with pytest.raises(RegistryError):
            open_registry(bad)
    assert parse_map("") == {}


# ---- the registry alone ---------------------------------------------------------------------


def test_snapshots_follow_status_metadata_and_deltas(
    bg: BackgroundLoop, emu: EurekaEmulator
) -> None:
    reg = EurekaRegistry([emu.url], "eu", interval=0.05)
    got: list[Snapshot] = []
    key = ServiceKey(SERVICE)
    on_loop(bg, emu.register, "ALPHA", "a-1", 9000, metadata=meta(21001))
    on_loop(
        bg, emu.register, "ALPHA", "a-2", 9000, metadata=meta(21002, **{"dubbo.protocol": "tri"})
    )
    on_loop(bg, emu.register, "ALPHA", "a-bad", 9000, metadata=meta(0) | {"dubbo.port": "x"})
    on_loop(bg, emu.register, "OTHER", "o-1", 9000, metadata={"dubbo.interfaces": "com.x.Other"})
    first = on_loop(bg, reg.subscribe, key, got.append)
    assert first is not None and first.pending
    bg.run(reg.start())
    try:
        wait_for(lambda: got and not got[-1].pending, 5, "a first snapshot")
        eps = got[-1].endpoints
        assert [(e.port, e.protocol, e.version) for e in eps] == [
            (21001, "dubbo", "1.0.0"),
            (21002, "tri", "1.0.0"),
        ]
        assert eps[0].metadata["eureka.app"] == "ALPHA" and got[-1].healthy
        assert "ALPHA/a-bad" in reg.status()["skipped"]  # skipped, reported, others kept
        on_loop(bg, emu.set_override, "ALPHA", "a-2", "OUT_OF_SERVICE")
        wait_for(lambda: [e.port for e in got[-1].endpoints] == [21001], 5, "a-2 to drop")
        on_loop(bg, emu.register, "ALPHA", "a-3", 9000, metadata=meta(21003), status="DOWN")
        on_loop(bg, emu.register, "ALPHA", "a-4", 9000, metadata=meta(21004))
        wait_for(lambda: [e.port for e in got[-1].endpoints] == [21001, 21004], 5, "a-4")
        on_loop(bg, emu.cancel, "ALPHA", "a-1")
        wait_for(lambda: [e.port for e in got[-1].endpoints] == [21004], 5, "a-1 to go")
        st = reg.status()
        assert st["fetches"]["delta"] > 0 and st["connected"]
        # group/version matching is Dubbo's
        g = bg.run(reg.lookup(ServiceKey(SERVICE, "1.0.0", "nogroup"), 2))
        assert g.endpoints == ()
        assert set(bg.run(reg.list_services())) >= {SERVICE, "com.x.Other"}
        on_loop(bg, reg.unsubscribe, key, got.append)
        assert reg.status()["subscriptions"] == 0
    finally:
        bg.run(reg.close())
        for iid in ("a-2", "a-3", "a-4", "a-bad"):
            on_loop(bg, emu.cancel, "ALPHA", iid)
        on_loop(bg, emu.cancel, "OTHER", "o-1")


def test_hash_mismatch_falls_back_to_a_full_fetch(bg: BackgroundLoop, emu: EurekaEmulator) -> None:
    reg = EurekaRegistry([emu.url], "eu", interval=0.05)
    on_loop(bg, emu.register, "HASH", "h-1", 9000, metadata=meta(22001))
    bg.run(reg.fetch_once())
    assert reg.fetches["full"] == 1
    # a change older than the delta window: only a full fetch can reveal it
    on_loop(bg, emu.register, "HASH", "h-2", 9000, metadata=meta(22002))
    emu.recent.clear()
    bg.run(reg.fetch_once())
    assert reg.fetches["hash_mismatch"] == 1 and reg.fetches["full"] == 2
    assert {e.port for e in reg.endpoints_for(ServiceKey(SERVICE))} == {22001, 22002}
    for iid in ("h-1", "h-2"):
        on_loop(bg, emu.cancel, "HASH", iid)


def test_map_routes_apps_without_metadata(bg: BackgroundLoop, emu: EurekaEmulator) -> None:
    reg = EurekaRegistry.from_url(
        f"eureka://127.0.0.1:{emu.port}/eureka?map=com.x.Mapped:legacy-app", "eu"
    )
    on_loop(bg, emu.register, "LEGACY-APP", "l-1", 23001)
    snap = bg.run(reg.lookup(ServiceKey("com.x.Mapped"), 3))
    assert [(e.host, e.port) for e in snap.endpoints] == [("127.0.0.1", 23001)]
    assert "com.x.Mapped" in bg.run(reg.list_services())
    on_loop(bg, emu.cancel, "LEGACY-APP", "l-1")


def test_start_never_fails_when_eureka_is_down(bg: BackgroundLoop) -> None:
    from tests.conftest import free_port

    reg = EurekaRegistry([f"http://127.0.0.1:{free_port()}/eureka/"], "eu", interval=0.05)
    got: list[Snapshot] = []
    on_loop(bg, reg.subscribe, ServiceKey(SERVICE), got.append)
    bg.run(reg.start())
    try:
        wait_for(lambda: reg.status()["error"], 5, "an error status")
        st = reg.status()
        assert not st["connected"] and st["fetches"]["failed"] >= 1
        assert got and got[-1].pending and not got[-1].healthy and got[-1].error
        with pytest.raises(RegistryError):
            bg.run(reg.list_services())
    finally:
        bg.run(reg.close())


# ---- through the gateway --------------------------------------------------------------------


class Load:
    """A bounded request loop on a thread: counts outcomes, records failures."""

    def __init__(self, gw_port: int, max_requests: int = 3000, max_seconds: float = 30.0) -> None:
        self.port = gw_port
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.ok = 0
        self.failures: list[tuple[int, Any]] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        for i in range(self.max_requests):
            if self._stop.is_set() or time.monotonic() > deadline:
                return
            status, body = http_request(
                self.port, "POST", f"/{SERVICE}/add", [i, 1], VERSION_HDR, timeout=5
            )
            if status == 200 and body == i + 1:
                self.ok += 1
            else:
                self.failures.append((status, body))

    def __enter__(self) -> Load:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join(10)

    def progress(self, n: int) -> None:
        target = self.ok + n
        wait_for(lambda: self.ok >= target or self.failures, 10, f"{n} more requests")


def test_gateway_routes_through_eureka_while_instances_change(
    bg: BackgroundLoop, emu: EurekaEmulator
) -> None:
    providers = [bg.start_provider(version="1.0.0") for _ in range(3)]
    p1, p2, p3 = providers
    # p1 registers itself with the official Python client (real register + heartbeats)
    py = EurekaClient(
        eureka_server=emu.url,
        app_name="demo",
        instance_id="demo-1",
        instance_host="127.0.0.1",
        instance_ip="127.0.0.1",
        instance_port=p1.port,
        renewal_interval_in_secs=1,
        duration_in_secs=3,
        metadata=meta(p1.port),
    )
    bg.run(py.start())
    try:
        gw = bg.start_gateway(gateway_yaml(emu))
        svc = gw.services[SERVICE]

        def ports() -> set[int]:
            return {e.port for e in svc.snapshot.endpoints}

        status, body = http_request(gw.port, "POST", f"/{SERVICE}/greet", ["eureka"], VERSION_HDR)
        assert (status, body) == (200, "Hello, eureka")
        assert ports() == {p1.port}
        with Load(gw.port) as load:
            load.progress(30)
            # scale up: two more instances
            on_loop(bg, emu.register, "DEMO", "demo-2", p2.port, metadata=meta(p2.port))
            on_loop(bg, emu.register, "DEMO", "demo-3", p3.port, metadata=meta(p3.port))
            wait_for(lambda: ports() == {p1.port, p2.port, p3.port}, 5, "scale up")
            calls = [p.calls for p in providers]
            load.progress(60)
            assert p2.calls > calls[1] and p3.calls > calls[2], "new instances get traffic"
            # OUT_OF_SERVICE through the official client's status override
            bg.run(py.status_update("OUT_OF_SERVICE"))
            wait_for(lambda: ports() == {p2.port, p3.port}, 5, "p1 out of service")
            load.progress(20)
            before = p1.calls
            load.progress(40)
            assert p1.calls == before, "no new calls to an OUT_OF_SERVICE instance"
            # scale down: p2 deregisters, then stops (after the gateway has seen it go)
            on_loop(bg, emu.cancel, "DEMO", "demo-2")
            wait_for(lambda: ports() == {p3.port}, 5, "p2 removed")
            bg.run(p2.close(1.0))
            load.progress(40)
            # Eureka goes down: last-known-good keeps routing; back with its registry
            bg.run(emu.stop())
            wait_for(lambda: not svc.snapshot.healthy, 5, "the registry loss to show")
            assert ports() == {p3.port}
            load.progress(40)
            bg.run(emu.start())
            wait_for(lambda: svc.snapshot.healthy, 5, "the registry to come back")
            bg.run(py.status_update("UP"))
            wait_for(lambda: ports() == {p1.port, p3.port}, 5, "p1 back in service")
            load.progress(40)
        assert load.failures == [], load.failures[:5]
        assert load.ok >= 270
        assert gw.registries["eu"].status()["connected"]
    finally:
        bg.run(py.stop())
        py._EurekaClient__should_register = False  # its heartbeat thread outlives stop()
        py._EurekaClient__should_discover = False


def test_cli_registry_ls_and_call_through_eureka(bg: BackgroundLoop, emu: EurekaEmulator) -> None:
    provider = bg.start_provider(version="1.0.0")
    on_loop(bg, emu.register, "CLI-DEMO", "cli-1", provider.port, metadata=meta(provider.port))
    try:
        url = f"eureka://127.0.0.1:{emu.port}/eureka"
        row = registry_ls_row(url, SERVICE, f"127.0.0.1:{provider.port}")
        assert row[0] == "dubbo" and row[3] == "1.0.0", row
        # the registry's base path before the interface (eureka/v2-style servers need it)
        r = tb("call", f"{url}/{SERVICE}", "add", "[40, 2]", "--version", "1.0.0")
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "42"
        r = tb("call", f"{url}/com.nobody.Home", "x", "[]", "--timeout", "1")
        assert r.returncode == 1 and "no_provider" in r.stderr, r.stderr
    finally:
        on_loop(bg, emu.cancel, "CLI-DEMO", "cli-1")
