"""What ZooKeeper nodes hold, as Dubbo writes them: names, paths and documents -> values.

A providers child's *name* is a URL-encoded provider URL, a configurators child an
``override://`` / ``absent://`` rule, ``/dubbo/mapping/{I}`` a comma list of applications,
``/services/{app}/{id}`` a Curator instance document, and the metadata report keeps
FullServiceDefinitions.  Every record is attacker-chosen: each parser returns a value or
raises ``RecordRejected(reason)`` naming the bound it broke, so one bad record is skipped and
reported while the records beside it stay.  Sans-IO: no client here (``zookeeper.py`` reads).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from urllib.parse import parse_qsl, quote_plus, unquote_plus, urlsplit

import orjson

from .base import DubboURL, RegistryError
from .metadata import ServiceDefinition
from .records import (
    BAD_HOST,
    BAD_JSON,
    BAD_PORT,
    BAD_TYPE,
    BAD_URL,
    BAD_VALUE,
    MISSING,
    TOO_LARGE,
    RecordRejected,
    bounded_int,
    checked_text,
)

#: params of a configurator URL that select providers instead of changing them
CONDITION_KEYS = frozenset(
    {
        "category",
        "check",
        "dynamic",
        "enabled",
        "group",
        "version",
        "application",
        "side",
        "configVersion",
        "compatible_config",
        "interfaces",
        "providerAddresses",
        "priority",
    }
)
ANYHOST = "0.0.0.0"

# Bounds on what one record may be (anything bigger is skipped as too_large).
#: a providers/configurators child name (a URL-encoded URL; Java's are well under 2 KiB)
MAX_URL_CHARS = 16 * 1024
#: children of one providers/configurators node read per pass (the rest are reported)
MAX_CHILDREN = 10_000
#: a Curator instance document under /services/{app}
MAX_INSTANCE_BYTES = 256 * 1024
#: a /dubbo/mapping/{interface} node (comma list of application names)
MAX_MAPPING_BYTES = 64 * 1024
#: a FullServiceDefinition or MetadataInfo document (ZooKeeper's own node limit is ~1 MB)
MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
#: weights beyond this are hostile, not configuration (Dubbo's default is 100)
MAX_WEIGHT = 1_000_000
#: timeouts (ms) beyond a day are hostile, not configuration
MAX_TIMEOUT_MS = 86_400_000

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,31}\Z")
_HOSTNAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})\Z")
APP_NAME = re.compile(r"[A-Za-z0-9_$@:.-]{1,200}\Z")


def url_encode(s: str) -> str:
    """Java ``URLEncoder.encode(s, "UTF-8")``, which Dubbo's ``URL.encode`` is."""
    return quote_plus(s, safe="*").replace("~", "%7E")


def definition_path(
    interface: str, version: str, group: str, application: str, root: str = "dubbo"
) -> str:
    """Where Dubbo's metadata report keeps a provider's FullServiceDefinition.

    ``MetadataIdentifier.getUniqueKey(PATH)``: ``PathUtils.buildPath`` over a
    ``LinkedHashSet`` of ("metadata", encoded interface, version, group, "provider"),
    empty parts dropped (and, as a set, repeated parts too), then the application."""
    parts: list[str] = []
    for p in ("metadata", url_encode(interface), version, group, "provider"):
        if p and p not in parts:
            parts.append(p)
    prefix = "/".join(parts)
    return f"/{root.strip('/')}/{prefix}/{application}" if application else f"/{root}/{prefix}"


# ---- URL parsing -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OverrideURL:
    """A configurator (``override://host[:port]/interface?params``); port 0 = any."""

    protocol: str
    host: str
    port: int
    path: str
    params: MappingProxyType

    @classmethod
    def parse(cls, text: str) -> OverrideURL:
        if len(text) > MAX_URL_CHARS:
            raise RecordRejected(TOO_LARGE, f"configurator of {len(text)} characters")
        try:
            u = urlsplit(text)
            host = u.hostname or ""
            params = dict(parse_qsl(u.query, keep_blank_values=True, max_num_fields=1000))
        except ValueError as e:
            raise RecordRejected(BAD_URL, f"{str(e)[:80]}: {text[:120]!r}") from None
        try:
            port = u.port or 0
        except ValueError as e:
            raise RecordRejected(BAD_PORT, f"{str(e)[:80]}: {text[:120]!r}") from None
        if u.scheme not in ("override", "absent"):
            raise RecordRejected(BAD_URL, f"not a configurator URL: {text[:120]!r}")
        if host and host not in (ANYHOST, "*"):
            valid_host(host)
        _check_params(params)  # a rule setting weight=abc would make every provider unusable
        return cls(u.scheme, host, port, u.path.lstrip("/"), MappingProxyType(params))

    @property
    def active(self) -> bool:
        return self.params.get("enabled", "true") != "false" and bool(self.host)

    def applies_to(self, url: DubboURL) -> bool:
        """AbstractConfigurator's selection: host (``0.0.0.0`` = all) and port, then the
        condition keys (``application``, ``side``, ``group``, ``version``, ``~key``)."""
        if not self.active:
            return False
        if self.host not in (ANYHOST, "*") and self.host != url.host:
            return False
        if self.port and self.port != url.port:
            return False
        addresses = self.params.get("providerAddresses")
        if addresses:
            ok = {
                f"{url.host}:{url.port}",
                url.host,
                ANYHOST,
                f"{ANYHOST}:*",
                f"{ANYHOST}:{url.port}",
            }
            if not ok.intersection(a.strip() for a in addresses.split(",")):
                return False
        for key in ("application", "group", "version"):
            want = self.params.get(key)
            if want and want != "*" and want != url.get(key):
                return False
        side = self.params.get("side")
        if side and side not in ("*", "provider"):
            return False
        for key, want in self.params.items():
            if key.startswith("~") and want != "*" and want != url.get(key[1:]):
                return False
        return True

    @property
    def order(self) -> tuple[int, int]:
        """Configurators.sort: ``0.0.0.0`` rules first, then by ``priority``; later wins."""
        try:
            prio = int(self.params.get("priority") or 0)
        except ValueError:
            prio = 0
        return (0 if self.host in (ANYHOST, "*") else 1, prio)

    def apply(self, url: DubboURL) -> DubboURL:
        changes = {
            k: v
            for k, v in self.params.items()
            if k not in CONDITION_KEYS and not k.startswith("~")
        }
        if not changes:
            return url
        params = dict(url.params)
        if self.protocol == "absent":
            for k, v in changes.items():
                params.setdefault(k, v)
        else:
            params.update(changes)
        return replace(url, params=MappingProxyType(params))


def apply_configurators(urls: Iterable[DubboURL], rules: Iterable[OverrideURL]) -> list[DubboURL]:
    ordered = sorted((r for r in rules if r.active), key=lambda r: r.order)
    out = []
    for u in urls:
        for r in ordered:
            if r.applies_to(u):
                u = r.apply(u)
        out.append(u)
    return out


def valid_host(host: object) -> str:
    """A provider address: a hostname, an IPv4 or an IPv6 literal (raises RecordRejected)."""
    if not isinstance(host, str) or not host:
        raise RecordRejected(BAD_HOST, "no host")
    if ":" in host:
        try:
            ipaddress.IPv6Address(host.partition("%")[0])
        except ValueError:
            raise RecordRejected(BAD_HOST, f"bad IPv6 address {host[:80]!r}") from None
        return host
    if not _HOSTNAME.match(host):
        raise RecordRejected(BAD_HOST, f"bad host {host[:80]!r}")
    return host


def parse_provider_url(text: str) -> DubboURL:
    """A decoded provider URL → DubboURL, every field checked (raises RecordRejected).

    The text is attacker-chosen: ``urlsplit`` raises ``ValueError`` on an unclosed IPv6
    bracket or an out-of-range port, hosts can be anything, ``weight`` / ``timeout`` can be
    absurd.  Each of those is one skipped record with a reason, never an exception that stops
    the records beside it."""
    if len(text) > MAX_URL_CHARS:
        raise RecordRejected(TOO_LARGE, f"URL of {len(text)} characters")
    scheme, sep, _ = text.partition("://")
    if not sep:
        raise RecordRejected(BAD_URL, f"not a URL: {text[:120]!r}")
    if not _SCHEME.match(scheme):
        raise RecordRejected(BAD_URL, f"bad protocol {scheme[:40]!r}")
    try:
        u = urlsplit(text)
        host = u.hostname
    except ValueError as e:
        raise RecordRejected(BAD_URL, f"{e}: {text[:120]!r}") from None
    try:
        port = u.port
    except ValueError as e:
        raise RecordRejected(BAD_PORT, f"{str(e)[:80]}: {text[:120]!r}") from None
    host = valid_host(host)
    if port is None or not 0 < port < 65536:
        raise RecordRejected(BAD_PORT, f"no usable port in {text[:120]!r}")
    try:
        params = dict(parse_qsl(u.query, keep_blank_values=True, max_num_fields=1000))
    except ValueError as e:
        raise RecordRejected(BAD_URL, str(e)) from None
    _check_params(params)
    return DubboURL(u.scheme, host, port, u.path.lstrip("/"), MappingProxyType(params))


def _check_params(params: Mapping[str, str]) -> None:
    """Parameters the gateway acts on must be sane numbers (raises RecordRejected)."""
    if params.get("weight"):
        bounded_int(params["weight"], 0, MAX_WEIGHT, "weight")
    for key in ("timeout", "connect.timeout"):
        if params.get(key):
            bounded_int(params[key], 0, MAX_TIMEOUT_MS, key)


def parse_child(name: str) -> DubboURL:
    """A providers child node name (a URL-encoded provider URL) → DubboURL."""
    if len(name) > MAX_URL_CHARS * 3:
        raise RecordRejected(TOO_LARGE, f"node name of {len(name)} characters")
    return parse_provider_url(unquote_plus(name))


def parse_instance(data: bytes) -> tuple[str, str, int, dict[str, str], bool]:
    """Curator ``ServiceInstance<ZookeeperInstance>`` JSON → (name, host, port, metadata,
    enabled).  The envelope is Curator's: name, id, address, port, sslPort, payload
    (``{"@class": "…ZookeeperInstance", "id", "name", "metadata": {…}}``),
    registrationTimeUTC, serviceType, uriSpec and, since CURATOR-275, enabled.
    Raises RecordRejected for anything else."""
    if len(data) > MAX_INSTANCE_BYTES:
        raise RecordRejected(TOO_LARGE, f"instance of {len(data)} bytes")
    try:
        d = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise RecordRejected(BAD_JSON, f"instance is not JSON: {e}") from None
    if not isinstance(d, dict):
        raise RecordRejected(BAD_TYPE, "instance must be a JSON object")
    if d.get("address") is None:
        raise RecordRejected(MISSING, "instance without address")
    host = valid_host(d.get("address"))
    port = d.get("port") or d.get("sslPort")
    if port is None:
        raise RecordRejected(MISSING, "instance without port")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise RecordRejected(BAD_PORT, f"instance port {str(port)[:40]!r}")
    payload = d.get("payload")
    if payload is not None and not isinstance(payload, dict):
        raise RecordRejected(BAD_TYPE, "instance payload must be a JSON object")
    meta = (payload or {}).get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise RecordRejected(BAD_TYPE, "instance metadata must be a JSON object")
    metadata = {
        str(k): v if isinstance(v, str) else orjson.dumps(v).decode()
        for k, v in (meta or {}).items()
        if v is not None
    }
    name = d.get("name")
    if name is not None and not isinstance(name, str):
        raise RecordRejected(BAD_TYPE, "instance name must be a string")
    return name or "", host, port, metadata, d.get("enabled", True) is not False


def parse_mapping(data: bytes) -> tuple[list[str], list[tuple[str, RecordRejected]]]:
    """``/dubbo/mapping/{interface}`` (``app1,app2``) → (applications, rejected names).

    Application names become ZooKeeper paths (``/services/{app}``): one with a ``/`` or
    ``..`` would read elsewhere, so names are checked, and a bad one is skipped alone."""
    text = checked_text(data, MAX_MAPPING_BYTES, "mapping")
    apps: set[str] = set()
    bad: list[tuple[str, RecordRejected]] = []
    for a in (p.strip() for p in text.split(",")):
        if not a:
            continue
        if APP_NAME.match(a) and a not in (".", ".."):
            apps.add(a)
        else:
            bad.append((f"mapping {a[:80]}", RecordRejected(BAD_VALUE, "bad application name")))
    return sorted(apps), bad


def parse_definition(data: bytes, source: str) -> ServiceDefinition:
    """A FullServiceDefinition document → ServiceDefinition (raises RecordRejected)."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise RecordRejected(TOO_LARGE, f"service definition of {len(data)} bytes")
    try:
        return ServiceDefinition.from_json(data, source=source)
    except RecordRejected:
        raise
    except RegistryError as e:
        reason = BAD_JSON if "not JSON" in str(e) else BAD_TYPE
        raise RecordRejected(reason, str(e)) from None


def check_url(url: DubboURL) -> DubboURL:
    """A URL built from other records (application-level discovery): same checks as a
    provider node's URL (raises RecordRejected)."""
    valid_host(url.host)
    if not isinstance(url.port, int) or not 0 < url.port < 65536:
        raise RecordRejected(BAD_PORT, f"port {str(url.port)[:40]}")
    _check_params(url.params)
    return url


def rejected(e: RegistryError) -> RecordRejected:
    """A RegistryError as one skipped record (a RecordRejected keeps its own reason)."""
    return e if isinstance(e, RecordRejected) else RecordRejected(BAD_VALUE, str(e))
