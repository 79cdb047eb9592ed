"""tribridge.Client (sync, async, direct) and the pytest plugin's fixtures, used as a user would."""

from __future__ import annotations

import pytest
from tribridge import AsyncClient, CallError, Client
from tribridge.interop import pytest_plugin

S = pytest_plugin.DEMO_SERVICE
pytest_plugins = ["pytester"]


def test_plugin_is_registered_by_entry_point(request: pytest.FixtureRequest) -> None:
    assert request.config.pluginmanager.hasplugin("tribridge")


def test_sync_client_through_gateway(tribridge_client: Client) -> None:
    c = tribridge_client
    assert c.call(S, "add", 2, 40, types="int,int") == 42
    assert c.call(S, "greet", "x") == "Hello, x"
    assert c.call(S, "addLong", 9007199254740993, 1) == 9007199254740994
    user = c.call(S, "getUser", 7)
    assert user["class"] == "com.tribridge.demo.User" and user["id"] == 7
    with pytest.raises(CallError) as ei:
        c.call(S, "fail", "boom")
    assert ei.value.status == 500 and ei.value.code == "provider_exception"
    assert "boom" in ei.value.error["message"] and ei.value.error["exception"]
    with pytest.raises(CallError) as ei:
        c.call(S, "add", "x", 1, types="int,int")
    assert ei.value.status == 400 and ei.value.code == "bad_arguments"


def test_client_reuses_its_connection(tribridge_gateway) -> None:  # type: ignore[no-untyped-def]
    with Client(tribridge_gateway.url) as c:
        c.call(S, "greet", "a")
        sock = c._http.sock  # type: ignore[union-attr]
        for i in range(20):
            assert c.call(S, "greet", str(i)) == f"Hello, {i}"
        assert c._http.sock is sock  # type: ignore[union-attr]


async def test_async_client(tribridge_gateway) -> None:  # type: ignore[no-untyped-def]
    async with AsyncClient(tribridge_gateway.url) as c:
        assert await c.call(S, "add", 1, 2, types=["int", "int"]) == 3
        assert await c.call(S, "greet", "async") == "Hello, async"
        with pytest.raises(CallError) as ei:
            await c.call(S, "fail", "boom")
        assert ei.value.status == 500


def test_direct_client(dubbo_demo_provider) -> None:  # type: ignore[no-untyped-def]
    with Client.direct(f"dubbo://127.0.0.1:{dubbo_demo_provider.port}") as c:
        assert c.call(S, "add", 2, 40, types="int,int", version="1.0.0") == 42
        assert c.call(S, "greet", "d", version="1.0.0") == "Hello, d"
        with pytest.raises(CallError) as ei:
            c.call(S, "fail", "boom", version="1.0.0")
        assert ei.value.code == "provider_exception"
        with pytest.raises(CallError) as ei:
            c.call(S, "greet", "d", version="9.9.9")
        assert ei.value.status == 404


async def test_async_direct_client(dubbo_demo_provider) -> None:  # type: ignore[no-untyped-def]
    c = AsyncClient.direct(f"dubbo://127.0.0.1:{dubbo_demo_provider.port}")
    try:
        assert await c.call(S, "addLong", 2**40, 1, version="1.0.0") == 2**40 + 1
    finally:
        await c.aclose()


def test_gateway_factory_with_admin(
    tribridge_gateway_factory,
    tribridge_registry,
    dubbo_demo_provider,  # type: ignore[no-untyped-def]
) -> None:
    gw = tribridge_gateway_factory(
        {
            "registries": {"r": tribridge_registry.entry},
            "services": [{"interface": S, "version": "1.0.0", "registry": "r"}],
            "auto_routes": {"prefix": "/rpc", "expose": [S]},
        },
        admin=True,
    )
    with Client(gw.url + "/rpc") as c:
        assert c.call(S, "add", 5, 6, types="int,int") == 11
    assert gw.admin_url is not None


def test_registry_launcher_hook(pytester: pytest.Pytester) -> None:
    """A user's conftest adds a registry kind; the fixtures run end to end with it."""
    pytester.makeconftest(
        """
from tribridge.interop.pytest_plugin import StaticRegistryHandle, register_registry_launcher

class Mine(StaticRegistryHandle):
    name = "mine"

register_registry_launcher("mine", lambda loop: Mine())
"""
    )
    pytester.makepyfile(
        """
def test_it(tribridge_client, tribridge_registry):
    assert tribridge_registry.name == "mine"
    assert tribridge_client.call("com.tribridge.demo.DemoService", "add", 1, 1,
                                 types="int,int") == 2
"""
    )
    result = pytester.runpytest_subprocess("--tribridge-registry", "mine", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_register_registry_launcher_adds_a_kind() -> None:
    assert {"static"} <= set(pytest_plugin._launchers())
    pytest_plugin.register_registry_launcher(
        "extra", lambda loop: pytest_plugin.StaticRegistryHandle()
    )
    try:
        assert "extra" in pytest_plugin._launchers()
    finally:
        del pytest_plugin._LAUNCHERS["extra"]


@pytest.mark.parametrize("kind", ["zookeeper", "nacos"])
def test_zookeeper_and_nacos_registry_handles(
    kind: str,
    request: pytest.FixtureRequest,
    tribridge_loop,
    tribridge_gateway_factory,  # type: ignore[no-untyped-def]
) -> None:
    """The handles behind ``--tribridge-registry zookeeper|nacos``, on the session's
    ZooKeeper / Nacos emulator: a provider registered through them is called by a gateway."""
    from tribridge.interop.registry_launchers import NacosRegistryHandle, ZookeeperRegistryHandle

    if kind == "zookeeper":
        handle = ZookeeperRegistryHandle(server=request.getfixturevalue("zookeeper_server"))
    else:
        handle = NacosRegistryHandle(tribridge_loop, emulator=request.getfixturevalue("nacos"))
    provider = tribridge_loop.start_provider(version="1.0.0")
    try:
        handle.register(S, f"127.0.0.1:{provider.port}?version=1.0.0")
        gw = tribridge_gateway_factory(
            {
                "registries": {handle.name: handle.entry},
                "services": [{"interface": S, "version": "1.0.0", "registry": handle.name}],
                "auto_routes": {"prefix": "/", "expose": [S]},
            }
        )
        calls = provider.calls
        with Client(gw.url) as c:
            assert c.call(S, "add", 20, 22, types="int,int") == 42
        assert provider.calls == calls + 1  # this provider, found through the registry
    finally:
        handle.close()
