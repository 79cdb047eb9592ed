"""The kube-apiserver emulator, proven with kubernetes_asyncio and lightkube (unmodified):
list with resourceVersion, label selectors, watch streams, bookmarks, 410 Gone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from kubernetes_asyncio import client as kclient
from kubernetes_asyncio import watch as kwatch
from kubernetes_asyncio.client.exceptions import ApiException
from lightkube import AsyncClient, KubeConfig
from lightkube.config.models import Cluster, User
from lightkube.core.exceptions import ApiError
from lightkube.operators import in_
from lightkube.resources.core_v1 import Endpoints, Service
from lightkube.resources.discovery_v1 import EndpointSlice
from tribridge.interop.k8s_emulator import (
    KubeEmulator,
    endpoint_slice,
    endpoints,
    service,
    slice_endpoint,
)

SVC_LABEL = "kubernetes.io/service-name"
PORTS = [{"name": "dubbo", "port": 20880, "protocol": "TCP"}]


@pytest.fixture
async def emu() -> AsyncIterator[KubeEmulator]:
    e = await KubeEmulator(bookmark_interval=None).start()
    e.apply(service("demo", {"tribridge.io/interfaces": "com.x.A"}))
    e.apply(endpoint_slice("demo-a", "demo", [slice_endpoint("10.0.0.1")], PORTS))
    e.apply(endpoint_slice("demo-b", "demo", [slice_endpoint("10.0.0.2", ready=False)], PORTS))
    e.apply(endpoint_slice("other-a", "other", [slice_endpoint("10.0.0.9")], PORTS))
    e.apply(endpoints("demo", ["10.0.0.1"], PORTS, not_ready=["10.0.0.2"]))
    try:
        yield e
    finally:
        await e.stop()


async def test_kubernetes_asyncio_list_watch_bookmark_and_410(emu: KubeEmulator) -> None:
    conf = kclient.Configuration(host=emu.url)
    async with kclient.ApiClient(conf) as api:
        disc = kclient.DiscoveryV1Api(api)
        lst = await disc.list_namespaced_endpoint_slice(
            "default", label_selector=f"{SVC_LABEL}=demo"
        )
        assert sorted(s.metadata.name for s in lst.items) == ["demo-a", "demo-b"]
        assert lst.items[1].endpoints[0].conditions.ready is False
        rv = lst.metadata.resource_version
        assert rv == str(emu.rv)
        core = kclient.CoreV1Api(api)
        ep = await core.read_namespaced_endpoints("demo", "default")
        assert ep.subsets[0].not_ready_addresses[0].ip == "10.0.0.2"
        svc = await core.read_namespaced_service("demo", "default")
        assert svc.metadata.annotations["tribridge.io/interfaces"] == "com.x.A"

        w = kwatch.Watch()
        events: list[tuple[str, str]] = []

        async def consume() -> None:
            async for ev in w.stream(
                disc.list_namespaced_endpoint_slice,
                "default",
                label_selector=f"{SVC_LABEL}=demo",
                resource_version=rv,
                allow_watch_bookmarks=True,
                timeout_seconds=5,
            ):
                events.append((ev["type"], ev["raw_object"]["metadata"].get("name", "")))
                if ev["type"] == "BOOKMARK":
                    w.stop()
                    return

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.1)
        emu.apply(endpoint_slice("demo-c", "demo", [slice_endpoint("10.0.0.3")], PORTS))
        emu.apply(endpoint_slice("other-b", "other", [slice_endpoint("10.0.0.8")], PORTS))
        emu.delete("EndpointSlice", "demo-a")
        await asyncio.sleep(0.1)
        assert emu.bookmark() == 1
        await asyncio.wait_for(task, 5)
        assert events == [("ADDED", "demo-c"), ("DELETED", "demo-a"), ("BOOKMARK", "")]
        assert w.resource_version == str(emu.rv)

        emu.compact()
        with pytest.raises(ApiException) as exc:
            async for _ in kwatch.Watch().stream(
                disc.list_namespaced_endpoint_slice,
                "default",
                resource_version=rv,
                timeout_seconds=5,
            ):
                pass
        assert exc.value.status == 410


async def test_lightkube_list_watch_and_410(emu: KubeEmulator) -> None:
    cfg = KubeConfig.from_one(cluster=Cluster(server=emu.url), user=User(), namespace="default")
    client = AsyncClient(config=cfg)
    try:
        it = client.list(EndpointSlice, namespace="default", labels={SVC_LABEL: "demo"})
        names = [s.metadata.name async for s in it]
        assert names == ["demo-a", "demo-b"]
        rv = it.resourceVersion
        svc = await client.get(Service, "demo", namespace="default")
        assert svc.metadata.annotations == {"tribridge.io/interfaces": "com.x.A"}
        ep = await client.get(Endpoints, "demo", namespace="default")
        assert ep.subsets[0].addresses[0].ip == "10.0.0.1"

        seen: list[tuple[str, str, bool | None]] = []

        async def consume() -> None:
            async for kind, obj in client.watch(
                EndpointSlice,
                namespace="default",
                labels={SVC_LABEL: "demo"},
                resource_version=rv,
            ):
                seen.append((kind, obj.metadata.name, obj.endpoints[0].conditions.terminating))
                if len(seen) == 2:
                    return

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.1)
        emu.apply(
            endpoint_slice(
                "demo-a",
                "demo",
                [slice_endpoint("10.0.0.1", ready=False, serving=True, terminating=True)],
                PORTS,
            )
        )
        emu.end_watches()  # the client reconnects from its last resourceVersion
        await asyncio.sleep(0.2)
        emu.apply(endpoint_slice("demo-d", "demo", [slice_endpoint("10.0.0.4")], PORTS))
        await asyncio.wait_for(task, 5)
        assert seen == [("MODIFIED", "demo-a", True), ("ADDED", "demo-d", None)]

        emu.compact()
        with pytest.raises(ApiError) as exc:
            async for _ in client.watch(EndpointSlice, namespace="default", resource_version=rv):
                pass
        assert exc.value.status.code == 410
    finally:
        await client.close()


async def test_auth_selectors_and_http_410(emu: KubeEmulator) -> None:
    emu.token = "s3cret"
    emu.gone_as_http = True
    cfg = KubeConfig.from_one(cluster=Cluster(server=emu.url), user=User(token="wrong"))
    client = AsyncClient(config=cfg)
    with pytest.raises(ApiError) as exc:
        await client.get(Service, "demo", namespace="default")
    assert exc.value.status.code == 401
    await client.close()
    cfg = KubeConfig.from_one(cluster=Cluster(server=emu.url), user=User(token="s3cret"))
    client = AsyncClient(config=cfg)
    try:
        names = [
            s.metadata.name
            async for s in client.list(
                EndpointSlice, namespace="default", labels={SVC_LABEL: in_(["demo", "other"])}
            )
        ]
        assert names == ["demo-a", "demo-b", "other-a"]
        names = [
            s.metadata.name
            async for s in client.list(
                EndpointSlice, namespace="default", fields={"metadata.name": "other-a"}
            )
        ]
        assert names == ["other-a"]
        emu.compact()
        # an HTTP 410 (not an ERROR event) reaches lightkube's watch as httpx's status error
        with pytest.raises(Exception) as exc:
            async for _ in client.watch(EndpointSlice, namespace="default", resource_version="2"):
                pass
        assert exc.value.response.status_code == 410  # type: ignore[attr-defined]
    finally:
        await client.close()
