"""Publish a provider into ZooKeeper exactly as a Java Dubbo 3.3 provider does (kazoo).

Used by tests and demos to register our own providers (the demo provider) the way Dubbo's
``ZookeeperRegistry``, ``ZookeeperMetadataReport`` and ``ZookeeperServiceDiscovery`` lay
them out (Dubbo's interface- and application-level layouts)::

    pub = ZkPublisher("127.0.0.1:2181").start()
    url = provider_url("127.0.0.1", 20880, SERVICE, methods, version="1.0.0", application="demo")
    node = pub.register_provider(url)               # ephemeral, URL.encode(full string)
    pub.publish_definition(url, service_definition())  # metadata report
    pub.publish_mapping(SERVICE, "demo")            # /dubbo/mapping/{interface}
    pub.register_instance("demo", "127.0.0.1", 20880, metadata)  # /services/demo/host:port
    pub.unregister(node)                            # graceful shutdown deregisters first
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import orjson
from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError
from tribridge.interop.app_metadata import (
    DUBBO_VERSION,
    RELEASE,
    instance_metadata,
    metadata_info,
    serve_metadata,
)
from tribridge.registries.base import DubboURL
from tribridge.registries.zookeeper_nodes import definition_path, url_encode

__all__ = [
    "ZkPublisher",
    "curator_instance",
    "full_string",
    "instance_metadata",
    "metadata_info",
    "provider_url",
    "register_demo_provider",
]
CURATOR_PAYLOAD_CLASS = "org.apache.dubbo.registry.zookeeper.ZookeeperInstance"


def full_string(url: DubboURL) -> str:
    """``URL.toFullString()``: protocol://host:port/path?k=v&… (params sorted, unescaped)."""
    q = "&".join(f"{k}={v}" for k, v in sorted(url.params.items()))
    return f"{url.protocol}://{url.host}:{url.port}/{url.path}" + (f"?{q}" if q else "")


def provider_url(
    host: str,
    port: int,
    interface: str,
    methods: Iterable[str],
    *,
    version: str = "",
    group: str = "",
    application: str = "tribridge-demo",
    protocol: str = "dubbo",
    **extra: str,
) -> DubboURL:
    """The URL a Java provider registers (``ServiceConfig`` + ``RegistryProtocol`` params)."""
    params: dict[str, str] = {
        "anyhost": "false",
        "application": application,
        "background": "false",
        "deprecated": "false",
        "dubbo": DUBBO_VERSION,
        "dynamic": "true",
        "generic": "false",
        "interface": interface,
        "methods": ",".join(sorted(set(methods))),
        "pid": str(os.getpid()),
        "prefer.serialization": "hessian2,fastjson2",
        "release": RELEASE,
        "service-name-mapping": "true",
        "side": "provider",
        "timestamp": str(int(time.time() * 1000)),
    }
    if version:
        params["version"] = version
        # ServiceConfig: Version.getVersion(interfaceClass, version) — the API jar's version,
        # else the service version
        params["revision"] = version
    if group:
        params["group"] = group
    params.update(extra)
    return DubboURL(protocol, host, port, interface, MappingProxyType(params))


def curator_instance(app: str, host: str, port: int, metadata: Mapping[str, str]) -> bytes:
    """Curator's ``JsonInstanceSerializer`` output for ``ServiceInstance<ZookeeperInstance>``
    (payload typed with ``@class``: ``@JsonTypeInfo(use=Id.CLASS)`` on getPayload)."""
    iid = f"{host}:{port}"  # CuratorFrameworkUtils.generateId
    return orjson.dumps(
        {
            "name": app,
            "id": iid,
            "address": host,
            "port": port,
            "sslPort": None,
            "payload": {
                "@class": CURATOR_PAYLOAD_CLASS,
                "id": iid,
                "name": app,
                "metadata": dict(sorted(metadata.items())),
            },
            "registrationTimeUTC": int(time.time() * 1000),
            "serviceType": "DYNAMIC",
            "uriSpec": None,
            "enabled": True,
        }
    )


class ZkPublisher:
    """A provider-side ZooKeeper session (its ephemeral nodes vanish with it)."""

    def __init__(
        self,
        hosts: str,
        root: str = "dubbo",
        session_timeout: float = 10.0,
        metadata_root: str = "dubbo",
    ) -> None:
        self.root = "/" + root.strip("/")
        self.metadata_root = metadata_root.strip("/")
        self.client = KazooClient(hosts=hosts, timeout=session_timeout)

    def start(self, timeout: float = 10.0) -> ZkPublisher:
        self.client.start(timeout)
        return self

    def stop(self) -> None:
        self.client.stop()
        self.client.close()

    def __enter__(self) -> ZkPublisher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # interface level --------------------------------------------------------------------

    def service_path(self, interface: str, category: str = "providers") -> str:
        return f"{self.root}/{url_encode(interface)}/{category}"

    def register_provider(self, url: DubboURL | str, *, raw_name: str | None = None) -> str:
        """Ephemeral ``/dubbo/{interface}/providers/{URL.encode(url.toFullString())}``.
        Dubbo also creates the persistent ``configurators`` node when it subscribes to it."""
        u = DubboURL.parse(url) if isinstance(url, str) else url
        self.client.ensure_path(self.service_path(u.interface, "configurators"))
        name = raw_name if raw_name is not None else url_encode(full_string(u))
        path = f"{self.service_path(u.interface)}/{name}"
        try:
            self.client.create(path, u.host.encode(), ephemeral=True, makepath=True)
        except NodeExistsError:
            pass
        return path

    def unregister(self, path: str) -> None:
        try:
            self.client.delete(path)
        except NoNodeError:
            pass

    def add_configurator(self, interface: str, override: str) -> str:
        """A persistent configurator node, as dubbo-admin writes one (``dynamic=false``)."""
        path = f"{self.service_path(interface, 'configurators')}/{url_encode(override)}"
        try:
            self.client.create(path, b"", makepath=True)
        except NodeExistsError:
            pass
        return path

    # metadata report ----------------------------------------------------------------------

    def publish_definition(self, url: DubboURL, definition: Mapping[str, Any]) -> str:
        """``ZookeeperMetadataReport.storeProviderMetadata``: the FullServiceDefinition JSON
        under ``/dubbo/metadata/{interface}[/{version}][/{group}]/provider/{application}``."""
        path = definition_path(
            url.interface,
            url.get("version"),
            url.get("group"),
            url.get("application"),
            self.metadata_root,
        )
        data = orjson.dumps(definition)
        if self.client.exists(path):
            self.client.set(path, data)
        else:
            self.client.create(path, data, makepath=True)
        return path

    def publish_mapping(self, interface: str, app: str) -> str:
        """``/dubbo/mapping/{interface}`` = comma list of apps, updated by compare-and-set."""
        path = f"/{self.metadata_root}/mapping/{interface}"
        for _ in range(10):
            try:
                data, stat = self.client.get(path)
            except NoNodeError:
                try:
                    self.client.create(path, app.encode(), makepath=True)
                    return path
                except NodeExistsError:
                    continue
            apps = [a for a in data.decode().split(",") if a]
            if app in apps:
                return path
            try:
                self.client.set(path, ",".join([*apps, app]).encode(), version=stat.version)
                return path
            except BadVersionError:
                continue
        raise RuntimeError(f"could not update {path}")

    # application level --------------------------------------------------------------------

    def register_instance(
        self,
        app: str,
        host: str,
        port: int,
        metadata: Mapping[str, str],
        services_root: str = "/services",
    ) -> str:
        path = f"{services_root}/{app}/{host}:{port}"
        data = curator_instance(app, host, port, metadata)
        try:
            self.client.create(path, data, ephemeral=True, makepath=True)
        except NodeExistsError:
            self.client.set(path, data)
        return path


def register_demo_provider(
    pub: ZkPublisher,
    provider: Any,
    *,
    application: str = "tribridge-demo",
    interface_level: bool = True,
    app_level: bool = False,
    definition: bool = True,
    exports: Sequence[tuple[str, str]] | None = None,
) -> dict[str, str]:
    """Register a running ``DemoProvider`` the way a Dubbo 3.3 provider registers itself;
    returns the node paths it created (``provider``, ``definition``, ``instance``).

    ``exports``: which (version, group) exports of the provider to register, in this order
    (default: its first one) — one provider URL and one definition each, one instance whose
    MetadataInfo lists them all, as Java does for an interface exported in several groups."""
    from tribridge.interop.demo_provider import DEMO_METHODS, SERVICE, service_definition

    urls = [
        provider_url(
            provider.host,
            provider.port,
            SERVICE,
            DEMO_METHODS,
            version=version,
            group=group,
            application=application,
        )
        for version, group in (exports or [(provider.version, provider.group)])
    ]
    out: dict[str, str] = {}
    if definition:
        for url in urls:
            params = {k: v for k, v in url.params.items() if k not in ("pid", "timestamp")}
            out["definition"] = pub.publish_definition(url, service_definition(params))
    if app_level:
        revision, info = metadata_info(application, urls)
        serve_metadata(provider, application, revision, info)
        pub.publish_mapping(SERVICE, application)
        meta = instance_metadata(revision, provider.port, {"dubbo": provider.port})
        out["instance"] = pub.register_instance(application, provider.host, provider.port, meta)
    if interface_level:
        for url in urls:
            out["provider"] = pub.register_provider(url)
    return out
