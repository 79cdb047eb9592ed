"""Register a provider into Nacos the way Dubbo does, with the official nacos-sdk-python client.

This is the test (and demo) side of discovery: what a Java Dubbo provider writes into Nacos,
written by ``nacos-sdk-python`` so the gateway's registry reads real client output:

* interface-level: instance of ``providers:{interface}:{version}:{group}`` (Nacos group =
  registry group) whose metadata is every provider URL parameter plus ``category``,
  ``protocol`` and ``path`` (Dubbo ``NacosRegistry.createInstance``);
* the ``FullServiceDefinition`` JSON in config ``dataId={iface}:{version}:{group}:provider:{app}``,
  group ``dubbo`` (``NacosMetadataReport.storeProviderMetadata``);
* application-level: the interface -> application mapping (config ``dataId={iface}``, group
  ``mapping``, comma-separated apps, updated by CAS), the app's ``MetadataInfo`` — JSON in
  config ``dataId={app}``, group ``{revision}`` (``storage-type=remote``) or served by the
  provider's own ``MetadataService`` (``local``, Dubbo's default) — and an instance of service
  ``{app}`` with ``dubbo.metadata.revision``, ``dubbo.metadata.storage-type``,
  ``dubbo.endpoints`` and ``dubbo.metadata-service.url-params``.

Nacos 2.x keeps one instance per service per client connection, so each provider process gets
its own naming client, as it would in real life.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from typing import Any

import orjson
from tribridge.interop.app_metadata import (
    instance_metadata,
    metadata_info,
    metadata_info_json,
    serve_metadata,
)
from tribridge.registries.base import DubboURL

__all__ = [
    "DubboNacosProvider",
    "client_config",
    "demo_provider_url",
    "demo_service_definition",
]

#: this process's scratch directory for the SDK's logs and caches, removed when it exits
_WORK: list[str] = []


def _work_dir() -> str:
    if not _WORK:
        _WORK.append(tempfile.mkdtemp(prefix="tribridge-nacos-clients-"))
        atexit.register(shutil.rmtree, _WORK[0], True)
    return _WORK[0]


def client_config(
    address: str,
    *,
    namespace: str = "",
    username: str | None = None,
    password: str | None = None,
    port_offset: int = 1000,
    grpc_timeout_ms: int = 3000,
    update_cache_when_empty: bool = True,
    work_dir: str | None = None,
) -> Any:
    """A ClientConfig that writes its logs and cache under a temp dir, never ~/nacos."""
    from v2.nacos import ClientConfigBuilder, GRPCConfig

    work = work_dir or _work_dir()
    b = (
        ClientConfigBuilder()
        .server_address(address)
        .namespace_id(namespace)
        .log_dir(os.path.join(work, "logs"))
        .cache_dir(os.path.join(work, "cache", namespace or "public"))
        .grpc_config(GRPCConfig(grpc_timeout=grpc_timeout_ms, port_offset=port_offset))
        .load_cache_at_start(False)
    )
    if username:
        b = b.username(username).password(password or "")
    cfg = b.build()
    cfg.update_cache_when_empty = update_cache_when_empty
    return cfg


def demo_provider_url(
    port: int,
    *,
    version: str = "1.0.0",
    group: str = "",
    app: str = "demo-app",
    host: str = "127.0.0.1",
    **extra: str,
) -> DubboURL:
    """The URL a Java provider of the demo service would export (params as Dubbo sets them)."""
    from types import MappingProxyType

    from tribridge.interop.demo_provider import DEMO_METHODS, SERVICE

    params = {
        "anyhost": "true",
        "application": app,
        "deprecated": "false",
        "dubbo": "2.0.2",
        "dynamic": "true",
        "generic": "false",
        "interface": SERVICE,
        "methods": ",".join(sorted(DEMO_METHODS)),
        "pid": str(os.getpid()),
        "release": "3.3.1",
        "serialization": "hessian2",
        "side": "provider",
        "timeout": "3000",
        "timestamp": "1700000000000",
        "version": version,
        **({"group": group} if group else {}),
        **extra,
    }
    return DubboURL("dubbo", host, port, SERVICE, MappingProxyType(params))


def demo_service_definition() -> dict[str, Any]:
    """The demo service's FullServiceDefinition, as Dubbo's ServiceDefinitionBuilder writes it."""
    from tribridge.interop.demo_provider import (
        COLOR,
        COLORS,
        DEMO_METHODS,
        SERVICE,
        USER,
        USER_FIELDS,
    )

    return {
        "canonicalName": SERVICE,
        "codeSource": "file:/app/demo.jar",
        "methods": [
            {
                "name": m.name,
                "parameterTypes": list(m.params),
                "returnType": m.returns,
                "annotations": [],
            }
            for m in DEMO_METHODS.values()
        ],
        "types": [
            {"type": USER, "properties": dict(USER_FIELDS)},
            {"type": COLOR, "enums": list(COLORS)},
            {"type": "int"},
            {"type": "java.lang.String"},
        ],
        "annotations": [],
        "parameters": {},
    }


def interface_service_name(url: DubboURL, category: str = "providers") -> str:
    return f"{category}:{url.interface}:{url.get('version')}:{url.get('group')}"


class DubboNacosProvider:
    """One provider process's registrations in Nacos (``mode``: interface, instance or all)."""

    def __init__(
        self,
        address: str,
        url: DubboURL,
        *,
        namespace: str = "",
        group: str = "DEFAULT_GROUP",
        mode: str = "interface",
        definition: Mapping[str, Any] | None = None,
        metadata_group: str = "dubbo",
        metadata_overrides: Mapping[str, str] | None = None,
        username: str | None = None,
        password: str | None = None,
        storage: str = "remote",
        provider: Any = None,
    ) -> None:
        """``storage``: where application-level MetadataInfo lives — ``remote`` (Nacos config)
        or ``local`` (``provider``, the running DemoProvider behind ``url``, serves it from
        its MetadataService)."""
        if storage not in ("remote", "local"):
            raise ValueError(f"storage must be remote or local, got {storage!r}")
        if storage == "local" and mode in ("instance", "all") and provider is None:
            raise ValueError("storage local needs the provider that serves MetadataService")
        self.storage = storage
        self.provider = provider
        self.address = address
        self.url = url
        self.namespace = namespace
        self.group = group
        self.mode = mode
        self.definition = definition
        self.metadata_group = metadata_group
        self.overrides = dict(metadata_overrides or {})
        self._auth = {"username": username, "password": password}
        self.naming: Any = None
        self.config: Any = None
        self.revision = ""

    @property
    def app(self) -> str:
        return self.url.get("application")

    def _cfg(self) -> Any:
        return client_config(self.address, namespace=self.namespace, **self._auth)  # type: ignore[arg-type]

    async def start(self) -> DubboNacosProvider:
        from v2.nacos import NacosConfigService, NacosNamingService

        self.naming = await NacosNamingService.create_naming_service(self._cfg())
        if self.definition is not None or self.mode in ("instance", "all"):
            self.config = await NacosConfigService.create_config_service(self._cfg())
        if self.definition is not None:
            await self.publish_definition(self.definition)
        if self.mode in ("interface", "all"):
            await self.register_interface()
        if self.mode in ("instance", "all"):
            await self.register_application()
        return self

    def interface_metadata(self) -> dict[str, str]:
        meta = dict(self.url.params)
        meta.setdefault("category", "providers")
        meta["protocol"] = self.url.protocol
        meta["path"] = self.url.path
        meta.update(self.overrides)
        return meta

    async def register_interface(self, **kw: Any) -> None:
        from v2.nacos import RegisterInstanceParam

        await self.naming.register_instance(
            RegisterInstanceParam(
                service_name=interface_service_name(self.url),
                group_name=self.group,
                ip=self.url.host,
                port=self.url.port,
                metadata=self.interface_metadata(),
                **kw,
            )
        )

    async def deregister_interface(self) -> None:
        from v2.nacos import DeregisterInstanceParam

        await self.naming.deregister_instance(
            DeregisterInstanceParam(
                service_name=interface_service_name(self.url),
                group_name=self.group,
                ip=self.url.host,
                port=self.url.port,
            )
        )

    async def publish_definition(self, definition: Mapping[str, Any]) -> str:
        from v2.nacos import ConfigParam

        u = self.url
        data_id = f"{u.interface}:{u.get('version')}:{u.get('group')}:provider:{self.app}"
        await self.config.publish_config(
            ConfigParam(
                data_id=data_id,
                group=self.metadata_group,
                content=orjson.dumps(definition).decode(),
            )
        )
        return data_id

    async def register_application(self) -> None:
        from v2.nacos import ConfigParam, RegisterInstanceParam

        # interface -> app mapping, merged by CAS as MetadataServiceNameMapping.map does
        for _ in range(5):
            old = await self.config.get_config(
                ConfigParam(data_id=self.url.interface, group="mapping")
            )
            apps = [a for a in old.split(",") if a] if old else []
            if self.app in apps:
                break
            content = ",".join([*apps, self.app])
            cas = hashlib.md5(old.encode()).hexdigest() if old else ""
            try:
                await self.config.publish_config(
                    ConfigParam(
                        data_id=self.url.interface, group="mapping", content=content, cas_md5=cas
                    )
                )
                break
            except Exception:  # CAS lost to another provider: read again
                continue
        self.revision, info = metadata_info(self.app, [self.url])
        if self.storage == "remote":
            await self.config.publish_config(
                ConfigParam(
                    data_id=self.app,
                    group=self.revision,
                    content=orjson.dumps(metadata_info_json(info)).decode(),
                )
            )
        else:
            serve_metadata(self.provider, self.app, self.revision, info)
        port = self.url.port
        meta = instance_metadata(
            self.revision, port, {self.url.protocol: port}, storage=self.storage
        )
        meta.update(self.overrides)
        await self.naming.register_instance(
            RegisterInstanceParam(
                service_name=self.app,
                group_name=self.group,
                ip=self.url.host,
                port=self.url.port,
                metadata=meta,
            )
        )

    async def close(self) -> None:
        """Like a killed provider: the connection goes, and with it the ephemeral instances."""
        if self.naming is not None:
            await self.naming.shutdown()
            self.naming = None
        if self.config is not None:
            proxy = self.config.grpc_client_proxy
            proxy.stop_event.set()
            proxy.execute_config_listen_channel.put_nowait(None)  # its loop waits 5 s otherwise
            await self.config.shutdown()
            self.config = None
