"""Which services a Dubbo3 application instance serves: ``MetadataService.getMetadataInfo``.

Application-level discovery (ZooKeeper ``/services/{app}``, Nacos by application name) lists
instances, not interfaces.  Each instance names a metadata *revision*; the interfaces behind
it come from calling, on that instance, ``org.apache.dubbo.metadata.MetadataService``
(group = application name, version ``1.0.0``) method ``getMetadataInfo(String revision)``
over Dubbo2/hessian2 or over Triple (wrapper mode: ``TripleRequestWrapper`` holding one
hessian2 argument, ``TripleResponseWrapper`` holding the hessian2 answer).  Which one the
instance's ``dubbo.metadata-service.url-params`` says: Dubbo 3.3 exports the MetadataService
over ``tri`` whenever the tri protocol is enabled (observed on Apache Dubbo 3.3.6: the
dubbo port answers "Not found exported service" for it).  The answer is an
``org.apache.dubbo.metadata.MetadataInfo``::

    MetadataInfo{app, revision, services: {matchKey: MetadataInfo$ServiceInfo{
        name, group, version, protocol, port, path, params}}}

A revision is a digest of its content, so results are cached by (app, revision) for the
life of the process (bounded).  The clients are one-shot connections on our own codecs (and
``h2`` for Triple, ``triple_client``): registries must not depend on the gateway's pools.

A MetadataInfo comes from whoever runs the instance: it is untrusted.  Every malformed or
oversized document raises ``MetadataServiceError`` (a ``RegistryError``) with the reason,
never another exception, so the registry skips that instance and keeps the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import orjson
from tribridge.codecs.dubbo import DubboProtocolError, decode_response, encode_request
from tribridge.codecs.dubbo.connection import Connection, Heartbeat, ProtocolError, Response, Role
from tribridge.codecs.hessian2 import HessianError
from tribridge.codecs.hessian2 import decode as hessian_decode
from tribridge.codecs.hessian2 import encode as hessian_encode
from tribridge.codecs.triple import (
    RequestWrapperTemplate,
    TripleProtocolError,
    code_name,
    decode_grpc_message,
    decode_response_wrapper,
    encode_message,
    is_hessian,
)

from .base import DubboURL, RegistryError
from .triple_client import TripleCallError, unary_call

METADATA_SERVICE = "org.apache.dubbo.metadata.MetadataService"
METADATA_SERVICE_VERSION = "1.0.0"
METADATA_INFO_CLASS = "org.apache.dubbo.metadata.MetadataInfo"
SERVICE_INFO_CLASS = "org.apache.dubbo.metadata.MetadataInfo$ServiceInfo"
#: a MetadataInfo bigger than this is not a MetadataInfo
MAX_METADATA_BYTES = 4 * 1024 * 1024
CACHE_SIZE = 1024


class MetadataServiceError(RegistryError):
    """The instance's MetadataService could not be reached or answered nonsense."""


def match_key(name: str, group: str, version: str, protocol: str) -> str:
    """``[group/]interface[:version]:protocol`` (``ServiceInfo.buildMatchKey``)."""
    key = f"{group}/{name}" if group else name
    if version and version != "0.0.0":
        key = f"{key}:{version}"
    return f"{key}:{protocol}"


#: bounds on a MetadataInfo document (a real one lists tens of services, tens of params)
MAX_SERVICES = 4096
MAX_PARAMS = 1024
MAX_TEXT = 64 * 1024


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
            raise MetadataServiceError(f"{where}: expected a ServiceInfo object, got {_kind(v)}")
        name = _text(v.get("name"), f"{where}.name")
        if not name:
            raise MetadataServiceError(f"{where}: ServiceInfo without a name")
        params_v = v.get("params") or {}
        if not isinstance(params_v, Mapping):
            raise MetadataServiceError(f"{where}: params must be a map, got {_kind(params_v)}")
        if len(params_v) > MAX_PARAMS:
            raise MetadataServiceError(f"{where}: {len(params_v)} params (limit {MAX_PARAMS})")
        params = {
            _text(k, f"{where}.params key"): _text(x, f"{where}.params[{k!r:.40}]")
            for k, x in params_v.items()
            if k is not None and x is not None
        }
        protocol = (
            _text(v.get("protocol"), f"{where}.protocol") or params.get("protocol") or "dubbo"
        )
        if not _PROTOCOL_RE.match(protocol):
            raise MetadataServiceError(f"{where}: bad protocol {protocol[:40]!r}")
        port_v = v.get("port")
        port = _port(port_v if port_v not in (None, "") else params.get("port") or 0, where)
        return cls(
            name=name,
            group=_text(v.get("group"), f"{where}.group") or params.get("group", ""),
            version=_text(v.get("version"), f"{where}.version") or params.get("version", ""),
            protocol=protocol,
            port=port,
            path=_text(v.get("path"), f"{where}.path") or name,
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
        """From the decoded hessian object (or the JSON Dubbo stores as remote metadata).
        Any malformed document raises ``MetadataServiceError``, nothing else."""
        if not isinstance(v, Mapping):
            raise MetadataServiceError(f"{where}: expected a MetadataInfo object, got {_kind(v)}")
        services_v = v.get("services") or {}
        if not isinstance(services_v, Mapping):
            raise MetadataServiceError(f"{where}: services must be a map, got {_kind(services_v)}")
        if len(services_v) > MAX_SERVICES:
            raise MetadataServiceError(
                f"{where}: {len(services_v)} services (limit {MAX_SERVICES})"
            )
        services: dict[str, ServiceInfo] = {}
        for key, sv in services_v.items():
            info = ServiceInfo.from_value(sv, f"{where}.services[{str(key)[:80]!r}]")
            k = _text(key, f"{where}.services key") if key else ""
            services[k or info.match_key] = info
        return cls(
            _text(v.get("app"), f"{where}.app"),
            _text(v.get("revision"), f"{where}.revision"),
            MappingProxyType(services),
        )

    @classmethod
    def from_json(cls, data: bytes | str, where: str = "MetadataInfo") -> MetadataInfo:
        if len(data) > MAX_METADATA_BYTES:
            raise MetadataServiceError(f"{where}: {len(data)} bytes (limit {MAX_METADATA_BYTES})")
        try:
            return cls.from_value(orjson.loads(data), where)
        except orjson.JSONDecodeError as e:
            raise MetadataServiceError(f"{where}: not JSON: {e}") from None
        except RecursionError:
            raise MetadataServiceError(f"{where}: nested too deeply") from None


_PROTOCOL_RE = re.compile(r"^[a-z][a-z0-9+.-]{0,31}$")


def _kind(v: Any) -> str:
    return type(v).__name__


def _text(v: Any, where: str) -> str:
    """A scalar field as text: strings, numbers and booleans are accepted (JSON and hessian
    writers differ), containers are not, and nothing longer than ``MAX_TEXT``."""
    if v is None:
        return ""
    if isinstance(v, bool):
        s = "true" if v else "false"
    elif isinstance(v, str):
        s = v
    elif isinstance(v, int):
        if abs(v) > 10**18:
            raise MetadataServiceError(f"{where}: number out of range")
        s = str(v)
    elif isinstance(v, float):
        s = repr(v)
    else:
        raise MetadataServiceError(f"{where}: expected text, got {_kind(v)}")
    if len(s) > MAX_TEXT:
        raise MetadataServiceError(f"{where}: {len(s)} characters (limit {MAX_TEXT})")
    return s


def _port(v: Any, where: str) -> int:
    if isinstance(v, bool):
        raise MetadataServiceError(f"{where}: bad port {v!r}")
    if isinstance(v, str) and (len(v) > 6 or not v.strip().isdigit()):
        raise MetadataServiceError(f"{where}: bad port {v[:20]!r}")
    if not isinstance(v, (int, str)):
        raise MetadataServiceError(f"{where}: bad port of type {_kind(v)}")
    port = int(v)
    if not 0 <= port < 65536:
        raise MetadataServiceError(f"{where}: port {port} out of range")
    return port


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
    host: str,
    port: int,
    app: str,
    revision: str,
    timeout: float = 3.0,
    protocol: str = "dubbo",
) -> MetadataInfo:
    """Ask the instance at ``host:port`` which services revision ``revision`` of ``app``
    holds, over ``protocol`` (``dubbo`` or ``tri``).  Cached by (app, revision); raises
    ``MetadataServiceError`` with the reason."""
    hit = cached(app, revision)
    if hit is not None:
        return hit
    if protocol not in METADATA_PROTOCOLS:
        raise MetadataServiceError(
            f"MetadataService of {app} at {host}:{port} speaks {protocol[:40]!r}; "
            f"tribridge calls it over {' or '.join(METADATA_PROTOCOLS)}"
        )
    where = f"MetadataService of {app} at {protocol}://{host}:{port}"
    call = _call if protocol == "dubbo" else _call_triple
    try:
        async with asyncio.timeout(timeout):
            value = await call(host, port, app, revision, where)
    except TimeoutError:
        raise MetadataServiceError(f"{where}: no answer within {timeout:g}s") from None
    except OSError as e:
        raise MetadataServiceError(f"{where}: cannot connect: {e}") from None
    except RecursionError:
        raise MetadataServiceError(f"{where}: answer nested too deeply") from None
    info = MetadataInfo.from_value(value, where)
    remember(info, app, revision)
    return info


#: protocols tribridge can call a MetadataService over
METADATA_PROTOCOLS = ("dubbo", "tri")
_TRI_PATH = f"/{METADATA_SERVICE}/getMetadataInfo"
_TRI_TEMPLATE = RequestWrapperTemplate(["java.lang.String"])


async def _call_triple(host: str, port: int, app: str, revision: str, where: str) -> Any:
    """``getMetadataInfo(revision)`` over Triple wrapper mode, as a Java 3.3 consumer does:
    ``:path /org.apache.dubbo.metadata.MetadataService/getMetadataInfo``, group and version
    in ``tri-service-group`` / ``tri-service-version``, one hessian2 argument in a
    ``TripleRequestWrapper`` (``serializeType`` ``hessian4``, ``argTypes``
    ``[java.lang.String]``); the answer's ``TripleResponseWrapper.data`` is the hessian2
    MetadataInfo (null for an unknown revision, with ``grpc-status: 0``)."""
    message = encode_message(_TRI_TEMPLATE.encode([hessian_encode(revision)]))
    headers = [
        ("tri-service-group", app),
        ("tri-service-version", METADATA_SERVICE_VERSION),
        ("tri-consumer-appname", "tribridge"),
        ("grpc-accept-encoding", "identity"),
    ]
    try:
        ans = await unary_call(host, port, _TRI_PATH, message, headers, max_size=MAX_METADATA_BYTES)
    except TripleCallError as e:
        raise MetadataServiceError(f"{where}: {e}") from None
    status = ans.headers.get(":status", "")
    if status != "200":
        raise MetadataServiceError(f"{where}: HTTP status {status[:10] or 'missing'} (not Triple?)")
    ctype = ans.headers.get("content-type", "")
    if not ctype.startswith("application/grpc"):
        raise MetadataServiceError(f"{where}: content-type {ctype[:60]!r} is not gRPC")
    grpc_status = ans.get("grpc-status")
    if grpc_status is None:
        raise MetadataServiceError(f"{where}: answer without grpc-status")
    if grpc_status != "0":
        msg = decode_grpc_message(ans.get("grpc-message") or "")
        code = code_name(int(grpc_status)) if grpc_status.isdigit() else grpc_status[:20]
        raise MetadataServiceError(f"{where}: {code}: {msg[:300]}")
    if len(ans.messages) != 1:
        raise MetadataServiceError(f"{where}: {len(ans.messages)} messages in a unary answer")
    try:
        wrapper = decode_response_wrapper(ans.messages[0])
    except TripleProtocolError as e:
        raise MetadataServiceError(f"{where}: {e}") from None
    if not is_hessian(wrapper.serialize_type):
        raise MetadataServiceError(
            f"{where}: answer serialized as {wrapper.serialize_type[:40]!r}, not hessian2"
        )
    try:
        value = hessian_decode(wrapper.data)
    except HessianError as e:
        raise MetadataServiceError(f"{where}: undecodable answer: {e}") from None
    exc = ans.headers.get("tri-exception-code")
    if exc not in (None, "0"):
        cls = value.get("class", "") if isinstance(value, Mapping) else ""
        detail = value.get("detailMessage", "") if isinstance(value, Mapping) else ""
        raise MetadataServiceError(f"{where}: {str(cls)[:120]}: {str(detail)[:300]}")
    if value is None:
        raise MetadataServiceError(f"{where}: no metadata for revision {revision}")
    return value


async def _call(host: str, port: int, app: str, revision: str, where: str) -> Any:
    # the whole answer is buffered: an over-limit one fails the call instead of being skipped
    wire = Connection(Role.CLIENT, max_payload=MAX_METADATA_BYTES, skip_oversized=False)
    rid = wire.next_request_id()
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
        while True:
            data = await reader.read(65536)
            if not data:
                raise MetadataServiceError(f"{where}: connection closed before the answer")
            for ev in wire.receive_data(data):
                if type(ev) is Heartbeat:
                    if ev.reply is not None:
                        writer.write(ev.reply)
                    continue
                if type(ev) is ProtocolError:
                    raise MetadataServiceError(f"{where}: {ev.message}")
                if type(ev) is not Response or ev.frame.request_id != rid:
                    continue
                fr = ev.frame
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
        if not isinstance(params, dict):
            raise TypeError("not an object")
        protocol = params.get("protocol") or "dubbo"
        if not isinstance(protocol, str) or not _PROTOCOL_RE.match(protocol):
            raise ValueError(f"bad protocol {str(protocol)[:40]!r}")
        mport = params.get("port")
        return (_port(mport, "port") if mport not in (None, "") else port), protocol
    except (orjson.JSONDecodeError, TypeError, ValueError, MetadataServiceError) as e:
        raise RegistryError(
            f"bad dubbo.metadata-service.url-params {str(raw)[:120]!r}: {e}"
        ) from None


def _endpoints(meta: Mapping[str, str]) -> dict[str, int]:
    """``dubbo.endpoints`` → {protocol: port}; malformed entries are left out."""
    out: dict[str, int] = {}
    raw = meta.get("dubbo.endpoints")
    if not raw or len(raw) > MAX_TEXT:
        return out
    try:
        items = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return out
    if not isinstance(items, list):
        return out
    for e in items[:32]:
        if not isinstance(e, dict):
            continue
        proto, p = e.get("protocol"), e.get("port")
        if not isinstance(proto, str) or not _PROTOCOL_RE.match(proto):
            continue
        with contextlib.suppress(MetadataServiceError, TypeError, ValueError):
            out.setdefault(proto, _port(p, "port"))
    return out


def metadata_service_candidates(
    host: str, port: int, meta: Mapping[str, str]
) -> list[tuple[str, int]]:
    """Where to ask, in order, as (protocol, port): what ``url-params`` names first; then
    the instance's other endpoints we can speak (``dubbo.endpoints``), so an instance whose
    url-params are missing or stale is still reached (Dubbo 3.3 with tri enabled exports
    the MetadataService on the tri port only).  At most three attempts."""
    mport, mprotocol = metadata_service_address(host, port, meta)
    out = [(mprotocol, mport)]
    declared = bool(meta.get("dubbo.metadata-service.url-params"))
    for proto, p in _endpoints(meta).items():
        if proto in METADATA_PROTOCOLS and (proto, p) not in out:
            out.append((proto, p))
    if not declared and ("tri", port) not in out:
        out.append(("tri", port))  # a tri-only instance registers its tri port
    return out[:3]


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
    (``local``, Dubbo's default) from the instance's own MetadataService, over the protocol
    its metadata names (dubbo or tri), falling back to its other endpoints.  Cached by
    (app, revision) either way: a revision is a digest of its content.  Raises
    ``RegistryError`` naming every attempt when none answered."""
    revision = str(meta.get("dubbo.metadata.revision") or "")
    if not revision:
        raise RegistryError("instance without dubbo.metadata.revision")
    if len(revision) > 256:
        raise RegistryError(f"dubbo.metadata.revision of {len(revision)} characters")
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
    candidates = metadata_service_candidates(host, port, meta)
    errors: list[str] = []
    for protocol, mport in candidates:
        if protocol not in METADATA_PROTOCOLS:
            errors.append(f"{protocol}://{host}:{mport}: cannot speak {protocol[:40]!r}")
            continue
        try:
            return await fetch_metadata_info(host, mport, app, revision, timeout, protocol)
        except MetadataServiceError as e:
            errors.append(str(e))
            if "no metadata for revision" in str(e):
                break  # the MetadataService answered: asking elsewhere will not help
    raise MetadataServiceError(
        f"metadata of {app} revision {revision} could not be fetched: " + "; ".join(errors)
    )


def instance_urls(
    iface: str, app: str, host: str, port: int, meta: Mapping[str, str], info: MetadataInfo
) -> list[DubboURL]:
    """The URLs of ``iface`` that an instance serves: MetadataInfo's services, on the
    instance's host and the port of their protocol (``dubbo.endpoints``)."""
    ports = _endpoints(meta)
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
