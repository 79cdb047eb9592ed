"""Which services a Dubbo3 application instance serves: ``MetadataService.getMetadataInfo``.

Application-level discovery (ZooKeeper ``/services/{app}``, Nacos by application name) lists
instances, not interfaces.  Each instance names a metadata *revision*; the interfaces behind
it come from calling, on that instance, ``org.apache.dubbo.metadata.MetadataService``
(group = application name, version ``1.0.0``) method ``getMetadataInfo(String revision)``
over Dubbo2/hessian2.  The answer is an ``org.apache.dubbo.metadata.MetadataInfo``
(protocols.md §5b)::

    MetadataInfo{app, revision, services: {matchKey: MetadataInfo$ServiceInfo{
        name, group, version, protocol, port, path, params}}}

A revision is a digest of its content, so results are cached by (app, revision) for the
life of the process (bounded).  The client is a one-shot connection on our own codecs:
registries must not depend on the gateway's connection pools.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import orjson
from tribridge.codecs.dubbo import (
    DubboProtocolError,
    FrameDecoder,
    decode_response,
    encode_heartbeat_response,
    encode_request,
)

from .base import DubboURL, RegistryError

METADATA_SERVICE = "org.apache.dubbo.metadata.MetadataService"
METADATA_SERVICE_VERSION = "1.0.0"
METADATA_INFO_CLASS = "org.apache.dubbo.metadata.MetadataInfo"
SERVICE_INFO_CLASS = "org.apache.dubbo.metadata.MetadataInfo$ServiceInfo"
#: a MetadataInfo bigger than this is not a MetadataInfo
MAX_METADATA_BYTES = 4 * 1024 * 1024
CACHE_SIZE = 1024

_ids = itertools.count(1)


class MetadataServiceError(RegistryError):
    """The instance's MetadataService could not be reached or answered nonsense."""


def match_key(name: str, group: str, version: str, protocol: str) -> str:
    """``[group/]interface[:version]:protocol`` (``ServiceInfo.buildMatchKey``)."""
    key = f"{group}/{name}" if group else name
    if version and version != "0.0.0":
        key = f"{key}:{version}"
    return f"{key}:{protocol}"


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    name: str
    group: str = ""
    version: str = ""
    protocol: str = "dubbo"
    port: int = 0
    path: str = ""
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def match_key(self) -> str:
        return match_key(self.name, self.group, self.version, self.protocol)

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(m for m in self.params.get("methods", "").split(",") if m)

    @classmethod
    def from_value(cls, v: Any, where: str) -> ServiceInfo:
        if not isinstance(v, Mapping):
            raise MetadataServiceError(f"{where}: expected a ServiceInfo object, got {v!r:.80}")
        name = _str(v.get("name"))
        if not name:
            raise MetadataServiceError(f"{where}: ServiceInfo without a name")
        params_v = v.get("params") or {}
        if not isinstance(params_v, Mapping):
            raise MetadataServiceError(f"{where}: params must be a map")
        params = {str(k): _str(x) for k, x in params_v.items() if k is not None and x is not None}
        protocol = _str(v.get("protocol")) or params.get("protocol") or "dubbo"
        port_v = v.get("port")
        try:
            port = int(port_v) if port_v not in (None, "") else int(params.get("port") or 0)
        except (TypeError, ValueError):
            raise MetadataServiceError(f"{where}: bad port {port_v!r}") from None
        return cls(
            name=name,
            group=_str(v.get("group")) or params.get("group", ""),
            version=_str(v.get("version")) or params.get("version", ""),
            protocol=protocol,
            port=port,
            path=_str(v.get("path")) or name,
            params=MappingProxyType(params),
        )


@dataclass(frozen=True, slots=True)
class MetadataInfo:
    app: str
    revision: str
    services: Mapping[str, ServiceInfo]

    def for_interface(self, interface: str) -> list[ServiceInfo]:
        return [s for s in self.services.values() if s.name == interface]

    @classmethod
    def from_value(cls, v: Any, where: str = "MetadataInfo") -> MetadataInfo:
        """From the decoded hessian object (or the JSON Dubbo stores as remote metadata)."""
        if not isinstance(v, Mapping):
            raise MetadataServiceError(f"{where}: expected a MetadataInfo object, got {v!r:.80}")
        services_v = v.get("services") or {}
        if not isinstance(services_v, Mapping):
            raise MetadataServiceError(f"{where}: services must be a map")
        services: dict[str, ServiceInfo] = {}
        for key, sv in services_v.items():
            info = ServiceInfo.from_value(sv, f"{where}.services[{key!r}]")
            services[str(key) if key else info.match_key] = info
        return cls(_str(v.get("app")), _str(v.get("revision")), MappingProxyType(services))

    @classmethod
    def from_json(cls, data: bytes | str, where: str = "MetadataInfo") -> MetadataInfo:
        try:
            return cls.from_value(orjson.loads(data), where)
        except orjson.JSONDecodeError as e:
            raise MetadataServiceError(f"{where}: not JSON: {e}") from None


def _str(v: Any) -> str:
    return "" if v is None else str(v)


_cache: OrderedDict[tuple[str, str], MetadataInfo] = OrderedDict()


def cached(app: str, revision: str) -> MetadataInfo | None:
    return _cache.get((app, revision))


def remember(info: MetadataInfo, app: str, revision: str) -> None:
    _cache[(app, revision)] = info
    _cache.move_to_end((app, revision))
    while len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)


async def fetch_metadata_info(
    host: str, port: int, app: str, revision: str, timeout: float = 3.0
) -> MetadataInfo:
    """Ask the instance at ``host:port`` which services revision ``revision`` of ``app``
    holds.  Cached by (app, revision); raises ``MetadataServiceError`` with the reason."""
    hit = cached(app, revision)
    if hit is not None:
        return hit
    where = f"MetadataService of {app} at {host}:{port}"
    try:
        async with asyncio.timeout(timeout):
            value = await _call(host, port, app, revision, where)
    except TimeoutError:
        raise MetadataServiceError(f"{where}: no answer within {timeout:g}s") from None
    except OSError as e:
        raise MetadataServiceError(f"{where}: cannot connect: {e}") from None
    info = MetadataInfo.from_value(value, where)
    remember(info, app, revision)
    return info


async def _call(host: str, port: int, app: str, revision: str, where: str) -> Any:
    rid = next(_ids)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(
            encode_request(
                rid,
                METADATA_SERVICE,
                "getMetadataInfo",
                "Ljava/lang/String;",
                [revision],
                {"group": app, "remote.application": "tribridge", "timeout": "3000"},
                version=METADATA_SERVICE_VERSION,
            )
        )
        decoder = FrameDecoder(MAX_METADATA_BYTES)
        while True:
            data = await reader.read(65536)
            if not data:
                raise MetadataServiceError(f"{where}: connection closed before the answer")
            try:
                frames = decoder.feed(data)
            except DubboProtocolError as e:
                raise MetadataServiceError(f"{where}: {e}") from None
            for fr in frames:
                if fr.is_request:
                    if fr.is_heartbeat and fr.is_twoway:
                        writer.write(encode_heartbeat_response(fr.request_id, fr.serialization))
                    continue
                if fr.request_id != rid or fr.is_event:
                    continue
                try:
                    res = decode_response(fr)
                except DubboProtocolError as e:
                    raise MetadataServiceError(f"{where}: {e}") from None
                if res.exception is not None:
                    raise MetadataServiceError(
                        f"{where}: {res.exception.cls}: {res.exception.message}"
                    )
                if not res.ok:
                    raise MetadataServiceError(f"{where}: status {res.status_name}: {res.error}")
                if res.value is None:
                    raise MetadataServiceError(f"{where}: no metadata for revision {revision}")
                return res.value
    finally:
        writer.close()


# ---- one application instance (ZooKeeper /services/{app}/…, a Nacos instance of {app}) ---------

#: ``read_remote(app, revision)`` -> (MetadataInfo JSON or None, where it was looked for)
RemoteReader = Callable[[str, str], Awaitable[tuple[bytes | str | None, str]]]


def metadata_service_address(host: str, port: int, meta: Mapping[str, str]) -> tuple[int, str]:
    """(port, protocol) of the instance's MetadataService, from
    ``dubbo.metadata-service.url-params`` (defaults: the instance port, dubbo)."""
    raw = meta.get("dubbo.metadata-service.url-params")
    if not raw:
        return port, "dubbo"
    try:
        params = orjson.loads(raw)
        return int(params.get("port") or port), str(params.get("protocol") or "dubbo")
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        raise RegistryError(f"bad dubbo.metadata-service.url-params {str(raw)[:120]!r}") from None


async def instance_metadata_info(
    app: str,
    host: str,
    port: int,
    meta: Mapping[str, str],
    read_remote: RemoteReader,
    timeout: float = 3.0,
) -> MetadataInfo:
    """The MetadataInfo an application instance's ``dubbo.metadata.revision`` names:
    ``storage-type=remote`` from the registry's metadata report (``read_remote``), else
    (``local``, Dubbo's default) from the instance's own MetadataService.  Cached by
    (app, revision) either way: a revision is a digest of its content."""
    revision = str(meta.get("dubbo.metadata.revision") or "")
    if not revision:
        raise RegistryError("instance without dubbo.metadata.revision")
    if revision == "0":  # Dubbo: the instance exports no services yet
        return MetadataInfo(app, revision, MappingProxyType({}))
    hit = cached(app, revision)
    if hit is not None:
        return hit
    if meta.get("dubbo.metadata.storage-type") == "remote":
        data, where = await read_remote(app, revision)
        if not data:
            raise RegistryError(f"remote metadata {where} is missing")
        info = MetadataInfo.from_json(data, where)
        remember(info, app, revision)
        return info
    mport, mprotocol = metadata_service_address(host, port, meta)
    if mprotocol != "dubbo":
        raise MetadataServiceError(
            f"MetadataService of {app} at {host}:{mport} speaks {mprotocol}; only dubbo is "
            "supported for metadata calls"
        )
    return await fetch_metadata_info(host, mport, app, revision, timeout)


def instance_urls(
    iface: str, app: str, host: str, port: int, meta: Mapping[str, str], info: MetadataInfo
) -> list[DubboURL]:
    """The URLs of ``iface`` that an instance serves: MetadataInfo's services, on the
    instance's host and the port of their protocol (``dubbo.endpoints``)."""
    ports: dict[str, int] = {}
    raw = meta.get("dubbo.endpoints")
    if raw:
        with contextlib.suppress(orjson.JSONDecodeError, TypeError, ValueError, KeyError):
            for e in orjson.loads(raw):
                ports[str(e["protocol"])] = int(e["port"])
    out = []
    for si in info.for_interface(iface):
        params = dict(si.params)
        params.setdefault("interface", iface)
        params.setdefault("application", app)
        for k, v in (("version", si.version), ("group", si.group)):
            if v:
                params[k] = v
        params["discovery"] = "application"
        p = si.port or ports.get(si.protocol) or port
        out.append(DubboURL(si.protocol, host, p, si.path or iface, MappingProxyType(params)))
    return out
