"""ZooKeeper registry pieces that need no server: Dubbo's encodings and paths, URL options,
configurator semantics, Curator instance JSON, and the MetadataService client against our
demo provider (a real Dubbo2 server on our codecs)."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from tribridge.interop.demo_provider import DEMO_METHODS, SERVICE, DemoProvider
from tribridge.interop.registration import curator_instance, metadata_info, provider_url
from tribridge.registries import open_registry
from tribridge.registries.base import DubboURL, RegistryError
from tribridge.registries.metadata_service import (
    MetadataInfo,
    MetadataServiceError,
    fetch_metadata_info,
    match_key,
)
from tribridge.registries.zookeeper import ZookeeperRegistry
from tribridge.registries.zookeeper_nodes import (
    OverrideURL,
    apply_configurators,
    definition_path,
    parse_child,
    parse_instance,
    url_encode,
)


def test_url_encode_is_javas_urlencoder() -> None:
    # URLEncoder.encode(s, "UTF-8"): space -> '+', '*' '-' '.' '_' kept, '~' escaped
    assert url_encode("dubbo://1.2.3.4:20880/a.B?x=1&y=a b,c~*-_") == (
        "dubbo%3A%2F%2F1.2.3.4%3A20880%2Fa.B%3Fx%3D1%26y%3Da+b%2Cc%7E*-_"
    )
    assert url_encode("é") == "%C3%A9"


def test_definition_path_follows_metadata_identifier() -> None:
    assert definition_path("org.x.I", "1.0.0", "g", "app") == (
        "/dubbo/metadata/org.x.I/1.0.0/g/provider/app"
    )
    assert definition_path("org.x.I", "", "", "app") == "/dubbo/metadata/org.x.I/provider/app"
    assert definition_path("org.x.I", "", "g", "app", "meta") == (
        "/meta/metadata/org.x.I/g/provider/app"
    )
    # PathUtils.buildPath collects the parts in a LinkedHashSet: a group equal to the
    # version appears once
    assert definition_path("org.x.I", "v", "v", "app") == "/dubbo/metadata/org.x.I/v/provider/app"


def test_from_url_options() -> None:
    r = ZookeeperRegistry.from_url(
        "zookeeper://10.0.0.1:2181?backup=10.0.0.2:2182,10.0.0.3&root=/prod&session=4000"
        "&discovery=interface",
        "zk",
    )
    assert r.hosts == "10.0.0.1:2181,10.0.0.2:2182,10.0.0.3:2181"
    assert (r.root, r.session_timeout, r.app_discovery, r.interface_discovery) == (
        "/prod",
        4.0,
        False,
        True,
    )
    # Dubbo's registry URLs name RegistryService as the path; it is not the root
    r = open_registry("zk://h/org.apache.dubbo.registry.RegistryService?session_timeout=2s")
    assert isinstance(r, ZookeeperRegistry) and r.root == "/dubbo" and r.session_timeout == 2.0
    with pytest.raises(RegistryError, match="unknown ZooKeeper URL parameter"):
        ZookeeperRegistry.from_url("zookeeper://h:2181?roots=x", "zk")
    with pytest.raises(RegistryError, match="bad ZooKeeper address"):
        ZookeeperRegistry.from_url("zookeeper://h:99999", "zk")
    with pytest.raises(RegistryError, match="duration"):
        ZookeeperRegistry.from_url("zookeeper://h?session_timeout=soon", "zk")
    with pytest.raises(RegistryError, match="discovery"):
        ZookeeperRegistry.from_url("zookeeper://h?discovery=both", "zk")


def _u(host: str = "10.0.0.5", port: int = 20880, **params: str) -> DubboURL:
    base = {"interface": "org.x.I", "application": "demo", "side": "provider", **params}
    return provider_url(
        host, port, "org.x.I", ["a"], **{k: v for k, v in base.items() if k not in ("interface",)}
    )


def test_configurators_select_then_override() -> None:
    a, b = _u("10.0.0.5", 20880), _u("10.0.0.6", 20880, version="1.0.0")
    rules = [
        OverrideURL.parse("override://10.0.0.5/org.x.I?weight=9&category=configurators"),
        OverrideURL.parse("override://0.0.0.0/org.x.I?weight=5&timeout=100"),
    ]
    out = apply_configurators([a, b], rules)
    # 0.0.0.0 rules apply first, host rules after them: the specific one wins
    assert [u.get("weight") for u in out] == ["9", "5"]
    assert [u.get("timeout") for u in out] == ["100", "100"]
    assert "category" not in out[0].params or out[0].get("category") != "configurators"

    def one(rule: str, url: DubboURL) -> DubboURL:
        return apply_configurators([url], [OverrideURL.parse(rule)])[0]

    assert one("override://10.0.0.5:1234/org.x.I?disabled=true", a).get("disabled") == ""
    assert one("override://10.0.0.5:20880/org.x.I?disabled=true", a).get("disabled") == "true"
    assert one("override://0.0.0.0/org.x.I?disabled=true&enabled=false", a).get("disabled") == ""
    assert one("override://0.0.0.0/org.x.I?weight=1&application=other", a).get("weight") == ""
    assert one("override://0.0.0.0/org.x.I?weight=1&application=demo", a).get("weight") == "1"
    assert one("override://0.0.0.0/org.x.I?weight=1&version=2.0.0", b).get("weight") == ""
    assert one("override://0.0.0.0/org.x.I?weight=1&version=1.0.0", b).get("weight") == "1"
    assert one("override://0.0.0.0/org.x.I?weight=1&side=consumer", a).get("weight") == ""
    assert one("override://0.0.0.0/org.x.I?weight=1&~release=9", a).get("weight") == ""
    assert (
        one("override://0.0.0.0/org.x.I?weight=1&providerAddresses=10.0.0.5:20880", a).get("weight")
        == "1"
    )
    assert (
        one("override://0.0.0.0/org.x.I?weight=1&providerAddresses=10.0.0.9", a).get("weight") == ""
    )
    # absent:// only fills in what the provider did not set
    c = one("absent://0.0.0.0/org.x.I?dubbo=9.9.9&loadbalance=roundrobin", a)
    assert (c.get("dubbo"), c.get("loadbalance")) == ("2.0.2", "roundrobin")
    with pytest.raises(RegistryError):
        OverrideURL.parse("route://0.0.0.0/org.x.I?rule=x")


def test_parse_child_and_instance() -> None:
    url = _u()
    from tribridge.interop.registration import full_string

    parsed = parse_child(url_encode(full_string(url)))
    assert (parsed.protocol, parsed.host, parsed.port, parsed.interface) == (
        "dubbo",
        "10.0.0.5",
        20880,
        "org.x.I",
    )
    assert parsed.get("methods") == "a"
    for bad in ("not-a-url", "dubbo%3A%2F%2Fhost-without-port%2Fx"):
        with pytest.raises(RegistryError):
            parse_child(bad)

    data = curator_instance("demo", "10.0.0.5", 20880, {"dubbo.metadata.revision": "abc"})
    doc = orjson.loads(data)
    assert doc["payload"]["@class"] == "org.apache.dubbo.registry.zookeeper.ZookeeperInstance"
    assert doc["id"] == "10.0.0.5:20880" and doc["serviceType"] == "DYNAMIC"
    assert parse_instance(data) == (
        "demo",
        "10.0.0.5",
        20880,
        {"dubbo.metadata.revision": "abc"},
        True,
    )
    for bad in (b"{", b"[]", b'{"address": "h"}', b'{"address": "h", "port": 70000}'):
        with pytest.raises(RegistryError):
            parse_instance(bad)


def test_match_key_and_metadata_info_from_json() -> None:
    assert match_key("org.x.I", "", "", "dubbo") == "org.x.I:dubbo"
    assert match_key("org.x.I", "g", "1.0.0", "tri") == "g/org.x.I:1.0.0:tri"
    doc = {
        "app": "demo",
        "revision": "r1",
        "services": {
            "org.x.I:1.0.0:tri": {
                "name": "org.x.I",
                "version": "1.0.0",
                "protocol": "tri",
                "port": 50051,
                "path": "org.x.I",
                "params": {"methods": "a,b", "weight": "10"},
            }
        },
    }
    info = MetadataInfo.from_json(orjson.dumps(doc))
    (si,) = info.for_interface("org.x.I")
    assert (si.protocol, si.port, si.methods, si.match_key) == (
        "tri",
        50051,
        ("a", "b"),
        "org.x.I:1.0.0:tri",
    )
    with pytest.raises(MetadataServiceError):
        MetadataInfo.from_json(b'{"services": {"k": {"group": "g"}}}')


async def test_fetch_metadata_info_from_a_dubbo2_provider() -> None:
    async with DemoProvider(version="1.0.0") as p:
        url = provider_url(
            "127.0.0.1", p.port, SERVICE, DEMO_METHODS, version="1.0.0", application="unit-app"
        )
        revision, obj = metadata_info("unit-app", [url])
        p.application = "unit-app"
        p.metadata[revision] = obj
        info = await fetch_metadata_info("127.0.0.1", p.port, "unit-app", revision)
        (si,) = info.for_interface(SERVICE)
        assert (info.app, info.revision, si.port, si.version, si.protocol) == (
            "unit-app",
            revision,
            p.port,
            "1.0.0",
            "dubbo",
        )
        assert set(si.methods) == set(DEMO_METHODS)
        await fetch_metadata_info("127.0.0.1", p.port, "unit-app", revision)
        assert p.metadata_calls == 1  # cached by revision
        with pytest.raises(MetadataServiceError, match="Not found exported service"):
            await fetch_metadata_info("127.0.0.1", p.port, "other-app", revision)
        with pytest.raises(MetadataServiceError, match="no metadata for revision"):
            await fetch_metadata_info("127.0.0.1", p.port, "unit-app", "nope")


async def test_fetch_metadata_info_failures_are_bounded() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)  # never answers
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(MetadataServiceError, match="no answer within"):
            await fetch_metadata_info("127.0.0.1", port, "a", "r-silent", timeout=0.2)
    finally:
        server.close()
    with pytest.raises(MetadataServiceError, match="cannot connect"):
        await fetch_metadata_info("127.0.0.1", port, "a", "r-closed", timeout=1)
