"""The Nacos emulator, proven with the official client (nacos-sdk-python v2 async API, unmodified).

Each test builds fresh SDK clients against the session emulator (a separate process) and uses
its own service names / data ids, so tests do not see each other's data.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import grpc
import orjson
import pytest
from tribridge.interop.nacos_emulator import NacosEmulator, Payload, start_emulator_process
from v2.nacos import (
    BatchRegisterInstanceParam,
    ClientConfigBuilder,
    ConfigParam,
    DeregisterInstanceParam,
    GRPCConfig,
    ListInstanceParam,
    ListServiceParam,
    NacosConfigService,
    NacosException,
    NacosNamingService,
    RegisterInstanceParam,
    SubscribeServiceParam,
)

_TMP = tempfile.mkdtemp(prefix="tribridge-nacos-sdk-")


@pytest.fixture(scope="module", autouse=True)
def _remove_scratch() -> Iterator[None]:
    yield
    shutil.rmtree(_TMP, ignore_errors=True)


def _cfg(address: str, *, namespace: str = "", empty: bool = True, **auth: str) -> Any:
    b = (
        ClientConfigBuilder()
        .server_address(address)
        .namespace_id(namespace)
        .log_dir(_TMP)
        .cache_dir(f"{_TMP}/{uuid.uuid4().hex}")
        .grpc_config(GRPCConfig(grpc_timeout=2000))
        .load_cache_at_start(False)
    )
    if auth:
        b = b.username(auth["username"]).password(auth["password"])
    cfg = b.build()
    cfg.update_cache_when_empty = empty
    return cfg


def _name(prefix: str = "svc") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _wait(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def _close_config(svc: NacosConfigService) -> None:
    # the SDK's listen loop wakes every 5 s; nudge it so shutdown returns at once
    svc.grpc_client_proxy.stop_event.set()
    svc.grpc_client_proxy.execute_config_listen_channel.put_nowait(None)
    await svc.shutdown()


@pytest.fixture
async def naming(nacos: Any) -> AsyncIterator[NacosNamingService]:
    n = await NacosNamingService.create_naming_service(_cfg(nacos.address))
    try:
        yield n
    finally:
        await n.shutdown()


@pytest.fixture
async def config(nacos: Any) -> AsyncIterator[NacosConfigService]:
    c = await NacosConfigService.create_config_service(_cfg(nacos.address))
    try:
        yield c
    finally:
        await _close_config(c)


def _reg(service: str, port: int, **kw: Any) -> RegisterInstanceParam:
    return RegisterInstanceParam(service_name=service, ip="127.0.0.1", port=port, **kw)


# ---- naming ------------------------------------------------------------------------------------


async def test_register_subscribe_push_and_deregister(
    nacos: Any, naming: NacosNamingService
) -> None:
    svc = _name()
    seen: list[list[tuple[str, int, dict[str, str]]]] = []

    async def cb(instances: list[Any]) -> None:
        seen.append([(i.ip, i.port, i.metadata) for i in instances])

    await naming.subscribe(SubscribeServiceParam(service_name=svc, subscribe_callback=cb))
    provider = await NacosNamingService.create_naming_service(_cfg(nacos.address))
    try:
        assert await provider.register_instance(_reg(svc, 20880, metadata={"protocol": "dubbo"}))
        await _wait(lambda: any(s for s in seen))
        assert seen[-1] == [("127.0.0.1", 20880, {"protocol": "dubbo"})]
        listed = await naming.list_instances(ListInstanceParam(service_name=svc, healthy_only=None))
        assert [(i.ip, i.port, i.serviceName, i.clusterName) for i in listed] == [
            ("127.0.0.1", 20880, f"DEFAULT_GROUP@@{svc}", "DEFAULT")
        ]
        assert listed[0].instanceId == f"127.0.0.1#20880#DEFAULT#DEFAULT_GROUP@@{svc}"
        assert await provider.deregister_instance(
            DeregisterInstanceParam(service_name=svc, ip="127.0.0.1", port=20880)
        )
        await _wait(lambda: seen[-1] == [])
    finally:
        await provider.shutdown()


async def test_default_client_ignores_empty_lists(nacos: Any) -> None:
    """The SDK quirk a consumer must work around: with default settings the last
    instance's removal never reaches the callback or the cache."""
    svc = _name()
    seen: list[int] = []

    async def cb(instances: list[Any]) -> None:
        seen.append(len(instances))

    consumer = await NacosNamingService.create_naming_service(_cfg(nacos.address, empty=False))
    provider = await NacosNamingService.create_naming_service(_cfg(nacos.address))
    try:
        await consumer.subscribe(SubscribeServiceParam(service_name=svc, subscribe_callback=cb))
        await provider.register_instance(_reg(svc, 1))
        await _wait(lambda: seen == [1])
        await provider.deregister_instance(
            DeregisterInstanceParam(service_name=svc, ip="127.0.0.1", port=1)
        )
        await asyncio.sleep(0.3)
        assert seen == [1]
        cached = await consumer.list_instances(
            ListInstanceParam(service_name=svc, healthy_only=None)
        )
        assert len(cached) == 1  # stale: the server has none
    finally:
        await consumer.shutdown()
        await provider.shutdown()


async def test_ephemeral_instances_go_with_their_connection(
    nacos: Any, naming: NacosNamingService
) -> None:
    svc = _name()
    seen: list[int] = []

    async def cb(instances: list[Any]) -> None:
        seen.append(len(instances))

    await naming.subscribe(SubscribeServiceParam(service_name=svc, subscribe_callback=cb))
    provider = await NacosNamingService.create_naming_service(_cfg(nacos.address))
    await provider.register_instance(_reg(svc, 2))
    await _wait(lambda: seen[-1:] == [1])
    await provider.shutdown()  # closes the channel: the server drops the connection's instances
    await _wait(lambda: seen[-1:] == [0])


async def test_one_instance_per_service_per_connection_and_batches(
    nacos: Any, naming: NacosNamingService
) -> None:
    """Nacos 2.x keeps one published instance (or one batch) per service per client."""
    svc = _name()
    await naming.register_instance(_reg(svc, 10))
    await naming.register_instance(_reg(svc, 11))
    got = await naming.list_instances(
        ListInstanceParam(service_name=svc, subscribe=False, healthy_only=None)
    )
    assert [i.port for i in got] == [11]
    other = _name()
    await naming.batch_register_instances(
        BatchRegisterInstanceParam(service_name=other, instances=[_reg(other, 12), _reg(other, 13)])
    )
    got = await naming.list_instances(
        ListInstanceParam(service_name=other, subscribe=False, healthy_only=None)
    )
    assert sorted(i.port for i in got) == [12, 13]


async def test_disabled_instances_are_not_pushed(nacos: Any, naming: NacosNamingService) -> None:
    svc = _name()
    provider = await NacosNamingService.create_naming_service(_cfg(nacos.address))
    other = await NacosNamingService.create_naming_service(_cfg(nacos.address))
    try:
        await provider.register_instance(_reg(svc, 30, enabled=False))
        await other.register_instance(_reg(svc, 31))
        got = await naming.list_instances(ListInstanceParam(service_name=svc, healthy_only=None))
        assert [i.port for i in got] == [31]
    finally:
        await provider.shutdown()
        await other.shutdown()


async def test_persistent_instance(nacos: Any, naming: NacosNamingService) -> None:
    svc = _name()
    assert await naming.register_instance(_reg(svc, 40, ephemeral=False))
    got = await naming.list_instances(ListInstanceParam(service_name=svc, healthy_only=None))
    assert [(i.port, i.ephemeral) for i in got] == [(40, False)]
    with pytest.raises(NacosException, match="persistent service"):
        await naming.register_instance(_reg(svc, 41))
    await naming.deregister_instance(
        DeregisterInstanceParam(service_name=svc, ip="127.0.0.1", port=40, ephemeral=False)
    )
    left: list[Any] = [None]

    async def refresh() -> None:
        left[0] = await naming.list_instances(
            ListInstanceParam(service_name=svc, healthy_only=None)
        )

    for _ in range(100):
        await refresh()
        if left[0] == []:
            break
        await asyncio.sleep(0.05)
    assert left[0] == []


async def test_list_services_groups_namespaces_and_pages(nacos: Any) -> None:
    ns = _name("ns")
    a = await NacosNamingService.create_naming_service(_cfg(nacos.address, namespace=ns))
    b = await NacosNamingService.create_naming_service(_cfg(nacos.address, namespace=ns))
    c = await NacosNamingService.create_naming_service(_cfg(nacos.address))
    try:
        for i in range(3):
            await a.register_instance(_reg(f"s{i}", 100 + i))
        await b.register_instance(_reg("s0", 200, group_name="G2"))
        page1 = await a.list_services(ListServiceParam(page_no=1, page_size=2))
        page2 = await a.list_services(ListServiceParam(page_no=2, page_size=2))
        assert page1.count == 3 and page2.count == 3
        assert sorted(page1.services + page2.services) == ["s0", "s1", "s2"]
        g2 = await a.list_services(ListServiceParam(group_name="G2"))
        assert g2.services == ["s0"]
        public = await c.list_services(ListServiceParam(page_size=1000))
        assert "s1" not in public.services
        got = await c.list_instances(
            ListInstanceParam(service_name="s1", subscribe=False, healthy_only=None)
        )
        assert got == []  # other namespace
    finally:
        for n in (a, b, c):
            await n.shutdown()


async def test_unregistered_connection_and_unknown_type() -> None:
    """Raw protocol: requests before ConnectionSetupRequest get ErrorResponse 301."""
    async with _inproc() as emu, grpc.aio.insecure_channel(f"127.0.0.1:{emu.grpc_port}") as ch:
        call = ch.unary_unary(
            "/Request/request",
            request_serializer=Payload.SerializeToString,
            response_deserializer=Payload.FromString,
        )

        def req(t: str, body: dict[str, Any]) -> Any:
            p = Payload()
            p.metadata.type = t
            p.body.value = orjson.dumps(body)
            return p

        r = await call(req("ServerCheckRequest", {}))
        assert r.metadata.type == "ServerCheckResponse"
        assert orjson.loads(r.body.value)["connectionId"]
        r = await call(req("InstanceRequest", {"serviceName": "x"}))
        assert r.metadata.type == "ErrorResponse"
        assert orjson.loads(r.body.value)["errorCode"] == 301
        r = await call(req("NoSuchRequest", {}))
        assert orjson.loads(r.body.value)["errorCode"] == 302


class _inproc:
    async def __aenter__(self) -> NacosEmulator:
        self.emu = await NacosEmulator().start()
        return self.emu

    async def __aexit__(self, *exc: object) -> None:
        await self.emu.stop()


async def test_push_ref_times_increase_and_client_acks() -> None:
    async with _inproc() as emu:
        n = await NacosNamingService.create_naming_service(_cfg(emu.address))
        p = await NacosNamingService.create_naming_service(_cfg(emu.address))
        try:
            svc = _name()
            seen: list[int] = []

            async def cb(instances: list[Any]) -> None:
                seen.append(len(instances))

            await n.subscribe(SubscribeServiceParam(service_name=svc, subscribe_callback=cb))
            for port in (1, 2, 3):  # same connection: each replaces the last, all pushed
                await p.register_instance(_reg(svc, port))
            await _wait(
                lambda: len([a for a in emu.acks if a[1] == "NotifySubscriberResponse"]) >= 3
            )
            got = await n.list_instances(ListInstanceParam(service_name=svc, healthy_only=None))
            assert [i.port for i in got] == [3]  # no push was discarded as out of date
            assert emu.subscriber_count(svc) == 1
        finally:
            await n.shutdown()
            await p.shutdown()


# ---- config ------------------------------------------------------------------------------------


async def test_config_get_publish_listen_remove(config: NacosConfigService) -> None:
    data_id, group = _name("data"), "mapping"
    assert await config.get_config(ConfigParam(data_id=data_id, group=group)) == ""
    assert await config.publish_config(ConfigParam(data_id=data_id, group=group, content="app-a"))
    assert await config.get_config(ConfigParam(data_id=data_id, group=group)) == "app-a"
    seen: list[str] = []

    async def listener(_ns: str, _g: str, _d: str, content: str) -> None:
        seen.append(content)

    await config.add_listener(data_id, group, listener)
    config.grpc_client_proxy.execute_config_listen_channel.put_nowait(
        None
    )  # listen now, not in 5 s
    await asyncio.sleep(0.3)
    await config.publish_config(ConfigParam(data_id=data_id, group=group, content="app-a,app-b"))
    await _wait(lambda: seen[-1:] == ["app-a,app-b"])
    assert await config.remove_config(ConfigParam(data_id=data_id, group=group))
    assert await config.get_config(ConfigParam(data_id=data_id, group=group)) == ""


async def test_config_cas(config: NacosConfigService) -> None:
    data_id = _name("cas")
    await config.publish_config(ConfigParam(data_id=data_id, group="mapping", content="a"))
    with pytest.raises(NacosException, match="Cas publish fail"):
        await config.publish_config(
            ConfigParam(data_id=data_id, group="mapping", content="a,b", cas_md5="0" * 32)
        )
    import hashlib

    assert await config.publish_config(
        ConfigParam(
            data_id=data_id, group="mapping", content="a,b", cas_md5=hashlib.md5(b"a").hexdigest()
        )
    )
    assert await config.get_config(ConfigParam(data_id=data_id, group="mapping")) == "a,b"


# ---- auth and the standalone process -------------------------------------------------------------


async def test_auth_with_access_token() -> None:
    proc = start_emulator_process(0, "--username", "nacos", "--password", "s3cret")
    try:
        good = await NacosNamingService.create_naming_service(
            _cfg(proc.address, username="nacos", password="s3cret")
        )
        try:
            assert await good.register_instance(_reg(_name(), 5))
        finally:
            await good.shutdown()
        bad = await NacosNamingService.create_naming_service(
            _cfg(proc.address, username="nacos", password="wrong")
        )
        try:
            with pytest.raises(NacosException):
                await bad.register_instance(_reg(_name(), 6))
        finally:
            await bad.shutdown()
    finally:
        proc.close()
