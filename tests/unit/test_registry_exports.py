"""One interface exported in several groups / versions on one host:port is several endpoints
in every registry's model (issue 15 item 2), and the consumers keep them apart: the pool
still shares one connection per address, load-balancer state is per export."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from tribridge.interop.k8s_emulator import endpoint_slice, service, slice_endpoint
from tribridge.registries.base import DubboURL, Endpoint, ServiceKey, Snapshot
from tribridge.registries.hub import SnapshotHub
from tribridge.registries.kubernetes import KubernetesRegistry
from tribridge.registries.static import StaticRegistry
from tribridge.registries.zookeeper_nodes import parse_provider_url
from tribridge.registries.zookeeper_state import dedupe
from tribridge.upstream.balancers import RoundRobin
from tribridge.upstream.pool import PoolSet

S = "com.x.Svc"


def ep(group: str = "", version: str = "", port: int = 20880, **kw: Any) -> Endpoint:
    return Endpoint("10.0.0.1", port, group=group, version=version, **kw)


def test_an_export_is_address_group_version_and_protocol() -> None:
    a, b, c = ep("g1", "1.0.0"), ep("g2", "1.0.0"), ep("g1", "2.0.0")
    assert len({a.export_key, b.export_key, c.export_key}) == 3
    assert len({a.key, b.key, c.key}) == 3
    assert a.address == b.address == c.address
    assert ep().key == "dubbo://10.0.0.1:20880"  # no group/version: the plain address form


def test_zookeeper_keeps_every_export_whatever_the_order() -> None:
    urls = [
        parse_provider_url(f"dubbo://10.0.0.1:20880/{S}?group={g}&version=1.0.0")
        for g in ("g1", "g2")
    ]
    for order in (urls, urls[::-1]):
        eps = dedupe([Endpoint.from_url(u) for u in order])
        assert sorted(e.group for e in eps) == ["g1", "g2"]
    # the same export seen twice (interface and application level) is one endpoint
    same = [Endpoint.from_url(urls[0]), Endpoint.from_url(urls[0])]
    assert len(dedupe(same)) == 1


def test_static_entries_in_two_groups_on_one_address() -> None:
    reg = StaticRegistry({S: ["10.0.0.1:20880?group=g1", "10.0.0.1:20880?group=g2"]})
    for g in ("g1", "g2"):
        snap = reg.subscribe(ServiceKey(S, "", g), lambda s: None)
        assert snap is not None and [e.group for e in snap.endpoints] == [g]
    snap = reg.subscribe(ServiceKey(S, "", "*"), lambda s: None)
    assert snap is not None and sorted(e.group for e in snap.endpoints) == ["g1", "g2"]


def test_kubernetes_two_services_selecting_the_same_pods() -> None:
    """Two Services (one per group annotation) over the same pods and port: two exports,
    not one per address."""
    reg = KubernetesRegistry(None)
    ports = [{"name": "dubbo", "port": 20880, "protocol": "TCP"}]
    reg.cache = {
        "services": {
            f"svc-{g}": service(f"svc-{g}", {"tribridge.io/interfaces": S, "tribridge.io/group": g})
            for g in ("g1", "g2")
        },
        "endpointslices": {
            f"svc-{g}-x": endpoint_slice(
                f"svc-{g}-x", f"svc-{g}", [slice_endpoint("10.0.0.1")], ports
            )
            for g in ("g1", "g2")
        },
    }
    eps = reg.endpoints_for(ServiceKey(S, "", "*"))
    assert sorted((e.host, e.port, e.group) for e in eps) == [
        ("10.0.0.1", 20880, "g1"),
        ("10.0.0.1", 20880, "g2"),
    ]
    assert [e.group for e in reg.endpoints_for(ServiceKey(S, "", "g2"))] == ["g2"]


def test_hub_publishes_every_export() -> None:
    hub = SnapshotHub("t")
    got: list[Snapshot] = []
    both = (ep("g1"), ep("g2"))
    hub.subscribe(ServiceKey(S, "", "*"), got.append, lambda k: ())
    hub.publish(lambda k: both)
    assert got[-1].endpoints == both


def test_pool_shared_per_address_balancer_state_per_export() -> None:
    pools = PoolSet()
    a, b = ep("g1"), ep("g2")
    assert pools.get(a) is pools.get(b) and len(pools.pools) == 1
    rr = RoundRobin()
    picks = [rr.select([a, b], [pools.get(a), pools.get(b)], None) for _ in range(4)]
    assert sorted(picks) == [0, 0, 1, 1]  # two exports, two weights: alternate
    assert set(rr.current) == {a.key, b.key}


def test_url_params_survive_into_the_export() -> None:
    u = DubboURL("dubbo", "10.0.0.1", 1, S, MappingProxyType({"group": "g", "version": "v"}))
    assert Endpoint.from_url(u).export_key == ("dubbo", "10.0.0.1", 1, "g", "v")
