"""ZooKeeper discovery, as Dubbo lays it out (interface level and application level).

What is read, per subscribed interface ``I`` (root ``dubbo`` unless ``root=`` says otherwise):

* interface level — children of ``/dubbo/{I}/providers`` (each child *name* is a
  URL-encoded provider URL) and ``/dubbo/{I}/configurators`` (``override://`` /
  ``absent://`` URLs that change weight, disable a provider …);
* application level (Dubbo3) — ``/dubbo/mapping/{I}`` names the applications, their
  instances live under ``/services/{app}`` (Curator service-discovery JSON) and each
  instance's ``MetadataService.getMetadataInfo(revision)`` says which interfaces it serves on
  which protocol and port;
* signatures — the ``FullServiceDefinition`` providers publish to the metadata report,
  ``/dubbo/metadata/{I}[/{version}][/{group}]/provider/{application}``.

kazoo runs its own threads.  Watches only *kick* the event loop
(``call_soon_threadsafe``); every read runs in the default executor and every snapshot is
built and delivered on the loop thread.  One refresh per interface runs at a time; kicks
that arrive meanwhile coalesce into one more pass, so a burst of changes costs two reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl, quote_plus, unquote_plus, urlsplit

import orjson
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError
from kazoo.protocol.states import KazooState
from kazoo.retry import KazooRetry

from .base import (
    DubboURL,
    Endpoint,
    Listener,
    Registry,
    RegistryError,
    ServiceKey,
    Snapshot,
    matches,
)
from .metadata import ServiceDefinition
from .metadata_service import MetadataInfo, instance_metadata_info, instance_urls
from .records import (
    BAD_HOST,
    BAD_JSON,
    BAD_PORT,
    BAD_TYPE,
    BAD_URL,
    BAD_VALUE,
    MISSING,
    TOO_LARGE,
    UNAVAILABLE,
    WRONG_SERVICE,
    RecordRejected,
    bounded_int,
    checked_text,
)

log = logging.getLogger("tribridge.registry.zookeeper")

DEFAULT_PORT = 2181
SERVICES_ROOT = "/services"
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
MAX_REPORTED_ERRORS = 50

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
_APP_NAME = re.compile(r"[A-Za-z0-9_$@:.-]{1,200}\Z")


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
        if _APP_NAME.match(a) and a not in (".", ".."):
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


# ---- state per interface ---------------------------------------------------------------------


@dataclass
class _Entry:
    interface: str
    listeners: dict[ServiceKey, list[Listener]] = field(default_factory=dict)
    snapshots: dict[ServiceKey, Snapshot] = field(default_factory=dict)
    #: one per export: (protocol, host, port, group, version) — never one per address
    endpoints: list[Endpoint] = field(default_factory=list)
    definitions: dict[tuple[str, str], ServiceDefinition] = field(default_factory=dict)
    synced: bool = False
    dirty: bool = False
    task: asyncio.Task[None] | None = None
    watcher: Callable[[Any], None] | None = None
    apps: tuple[str, ...] = ()


@dataclass
class _Read:
    """What one pass read for an interface (built in the executor thread)."""

    providers: list[DubboURL] = field(default_factory=list)
    rules: list[OverrideURL] = field(default_factory=list)
    apps: list[str] = field(default_factory=list)
    #: (which record, why) for the registry's SkipReport, source = the interface
    skipped: list[tuple[str, RecordRejected]] = field(default_factory=list)


class ZookeeperRegistry(Registry):
    """Dubbo providers registered in ZooKeeper (interface- and application-level)."""

    schemes = ("zookeeper", "zk")

    def __init__(
        self,
        hosts: str,
        name: str = "zookeeper",
        *,
        root: str = "dubbo",
        metadata_root: str = "dubbo",
        services_root: str = SERVICES_ROOT,
        session_timeout: float = 10.0,
        op_timeout: float = 5.0,
        max_backoff: float = 5.0,
        app_discovery: bool = True,
        interface_discovery: bool = True,
        metadata_timeout: float = 3.0,
    ) -> None:
        self.name = name
        self.hosts = hosts
        self.root = "/" + root.strip("/")
        self.metadata_root = metadata_root.strip("/") or "dubbo"
        self.services_root = "/" + services_root.strip("/")
        self.session_timeout = session_timeout
        self.op_timeout = op_timeout
        self.max_backoff = max_backoff
        self.app_discovery = app_discovery
        self.interface_discovery = interface_discovery
        self.metadata_timeout = metadata_timeout
        self.connected = False
        self.last_sync: float | None = None
        self.state = "not started"
        self._entries: dict[str, _Entry] = {}
        self._app_watchers: dict[str, Callable[[Any], None]] = {}
        self._errors: dict[str, str] = {}
        self._client: KazooClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._def_cache: dict[
            str, tuple[bytes, ServiceDefinition | None, RecordRejected | None]
        ] = {}

    # ---- construction ---------------------------------------------------------------------

    @classmethod
    def from_url(cls, url: str, name: str) -> ZookeeperRegistry:
        """``zookeeper://h1:2181?backup=h2:2181,h3:2181&root=dubbo&session_timeout=10s``.

        Also: ``discovery=all|interface|application`` (default all), ``metadata_root``,
        ``session`` (Dubbo's name, milliseconds)."""
        u = urlsplit(url)
        if u.scheme not in cls.schemes:
            raise RegistryError(f"not a ZooKeeper URL: {url!r}")
        hosts = [h for h in u.netloc.rpartition("@")[2].split(",") if h]
        params = dict(parse_qsl(u.query, keep_blank_values=True))
        hosts += [h.strip() for h in params.pop("backup", "").split(",") if h.strip()]
        if not hosts:
            raise RegistryError(f"ZooKeeper URL needs host[:port]: {url!r}")
        hosts = [h if ":" in h else f"{h}:{DEFAULT_PORT}" for h in hosts]
        for h in hosts:
            port = h.rpartition(":")[2]
            if not port.isdigit() or not 0 < int(port) < 65536:
                raise RegistryError(f"bad ZooKeeper address {h!r} in {url!r}")
        known = {
            "root",
            "group",
            "metadata_root",
            "session_timeout",
            "session",
            "timeout",
            "discovery",
            "max_backoff",
        }
        unknown = sorted(set(params) - known)
        if unknown:
            raise RegistryError(
                f"unknown ZooKeeper URL parameter(s) {', '.join(unknown)}; known: "
                + ", ".join(sorted(known | {"backup"}))
            )
        root = params.get("root") or params.get("group") or "dubbo"
        if "session" in params:
            session = _duration(params["session"] + "ms", "session")
        else:
            session = _duration(params.get("session_timeout", "10s"), "session_timeout")
        discovery = params.get("discovery", "all")
        if discovery not in ("all", "interface", "application"):
            raise RegistryError(
                f"discovery must be all, interface or application, not {discovery!r}"
            )
        return cls(
            ",".join(hosts),
            name,
            root=root,
            metadata_root=params.get("metadata_root", "dubbo"),
            session_timeout=session,
            op_timeout=_duration(params.get("timeout", "5s"), "timeout"),
            max_backoff=_duration(params.get("max_backoff", "5s"), "max_backoff"),
            app_discovery=discovery != "interface",
            interface_discovery=discovery != "application",
        )

    # ---- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Returns at once; kazoo connects (and reconnects) in the background."""
        self._loop = asyncio.get_running_loop()
        retry = KazooRetry(
            max_tries=-1, delay=0.1, backoff=2, max_delay=self.max_backoff, ignore_expire=False
        )
        self._client = KazooClient(
            hosts=self.hosts,
            timeout=self.session_timeout,
            connection_retry=retry,
            logger=logging.getLogger("tribridge.registry.zookeeper.kazoo"),
        )
        self._client.add_listener(self._on_kazoo_state)
        self.state = "connecting"
        self._client.start_async()

    async def close(self) -> None:
        self._closed = True
        for e in self._entries.values():
            if e.task is not None:
                e.task.cancel()
        client, self._client = self._client, None
        if client is not None:

            def stop() -> None:
                with contextlib.suppress(Exception):
                    client.stop()
                    client.close()

            await asyncio.get_running_loop().run_in_executor(None, stop)
        self.connected = False
        self.state = "closed"

    def _down(self) -> str:
        return f"zookeeper {self.hosts}: not connected ({self.state})"

    def _on_kazoo_state(self, state: str) -> None:
        """kazoo's thread: hand over to the loop, never block here."""
        self._threadsafe(self._on_state, state)

    def _threadsafe(self, fn: Callable[..., Any], *args: Any) -> None:
        loop = self._loop
        if loop is None or self._closed:
            return
        with contextlib.suppress(RuntimeError):  # loop closed while kazoo shuts down
            loop.call_soon_threadsafe(fn, *args)

    def _on_state(self, state: str) -> None:
        if self._closed:
            return
        if state == KazooState.CONNECTED:
            self.connected = True
            self.state = "connected"
            for iface in list(self._entries):
                self._kick(iface)  # resync: watches may have been lost with the session
            return
        self.connected = False
        self.state = "session lost" if state == KazooState.LOST else "disconnected"
        msg = self._down()
        for entry in self._entries.values():
            self._degrade(entry, msg)

    # ---- subscriptions --------------------------------------------------------------------

    def subscribe(self, service: ServiceKey, listener: Listener) -> Snapshot | None:
        entry = self._entries.get(service.interface)
        new = entry is None
        if entry is None:
            entry = _Entry(service.interface)
            iface = service.interface
            entry.watcher = lambda _event, iface=iface: self._threadsafe(self._kick, iface)
            self._entries[iface] = entry
        entry.listeners.setdefault(service, []).append(listener)
        snap = entry.snapshots.get(service)
        if snap is None:
            if entry.synced:
                snap = self._build(entry, service)
            else:
                snap = Snapshot(
                    service,
                    (),
                    healthy=self.connected,
                    pending=True,
                    error=None if self.connected else self._down(),
                )
            entry.snapshots[service] = snap
        if new and self.connected:
            self._kick(service.interface)
        return snap

    def unsubscribe(self, service: ServiceKey, listener: Listener) -> None:
        entry = self._entries.get(service.interface)
        if entry is None:
            return
        ls = entry.listeners.get(service)
        if ls is not None:
            with contextlib.suppress(ValueError):
                ls.remove(listener)
            if not ls:
                del entry.listeners[service]
                entry.snapshots.pop(service, None)
        if not entry.listeners:
            del self._entries[service.interface]
            if entry.task is not None:
                entry.task.cancel()
            self._release(entry.watcher)
            used = {a for e in self._entries.values() for a in e.apps}
            for app in [a for a in self._app_watchers if a not in used]:
                self._release(self._app_watchers.pop(app))

    def _release(self, watcher: Callable[[Any], None] | None) -> None:
        """Forget a watcher client-side.  kazoo has no removeWatches: a watch already set on
        the server fires once more, finds no callback, and nothing re-arms it."""
        client = self._client
        if client is None or watcher is None:
            return
        for attr in ("_child_watchers", "_data_watchers"):
            table = getattr(client, attr, None)
            if isinstance(table, dict):
                for watchers in list(table.values()):
                    watchers.discard(watcher)

    # ---- refresh --------------------------------------------------------------------------

    def _kick(self, iface: str) -> None:
        entry = self._entries.get(iface)
        if entry is None or self._closed:
            return
        entry.dirty = True
        if entry.task is None or entry.task.done():
            assert self._loop is not None
            entry.task = self._loop.create_task(self._run(entry))

    async def _run(self, entry: _Entry) -> None:
        while entry.dirty and not self._closed and self._entries.get(entry.interface) is entry:
            entry.dirty = False
            if not self.connected:
                return  # the CONNECTED state change kicks again
            try:
                await self._refresh(entry)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a lost connection mid-read, a timeout …
                msg = f"zookeeper {self.hosts}: reading {entry.interface} failed: {e!r}"
                log.warning("%s", msg)
                self._errors[entry.interface] = msg
                self._degrade(entry, msg)

    async def _refresh(self, entry: _Entry) -> None:
        loop = asyncio.get_running_loop()
        iface = entry.interface
        read = await loop.run_in_executor(None, self._read_interface, entry)
        urls = list(read.providers)
        if self.app_discovery and read.apps:
            urls += await self._app_urls(entry, read.apps, read.skipped)
        entry.apps = tuple(read.apps)
        endpoints = []
        for u in apply_configurators(urls, read.rules):
            try:
                endpoints.append(Endpoint.from_url(u))
            except RegistryError as e:  # a configurator made it unusable (weight=x …)
                read.skipped.append(
                    (
                        f"{u.protocol}://{u.host}:{u.port} {u.get('group')}:{u.get('version')}",
                        _rejected(e),
                    )
                )
        endpoints = _dedupe(endpoints)
        combos = {(e.version, e.group, e.metadata.get("application", "")) for e in endpoints}
        defs = await loop.run_in_executor(None, self._read_definitions, iface, combos, read.skipped)
        self._errors.pop(iface, None)
        if self._entries.get(iface) is not entry:
            return
        self.skips.update(iface, read.skipped)
        entry.endpoints = endpoints
        entry.definitions = defs
        entry.synced = True
        self.last_sync = time.time()
        for key in list(entry.listeners):
            self._publish(entry, key, self._build(entry, key))

    def _build(self, entry: _Entry, key: ServiceKey) -> Snapshot:
        eps = []
        definition = None
        for ep in entry.endpoints:
            if matches(ep, key):
                eps.append(ep)
                if definition is None:
                    definition = entry.definitions.get((ep.version, ep.group))
        return Snapshot(
            key,
            tuple(eps),
            healthy=self.connected,
            definition=definition,
            error=None if self.connected else self._down(),
        )

    def _publish(self, entry: _Entry, key: ServiceKey, snap: Snapshot) -> None:
        old = entry.snapshots.get(key)
        if (
            old is not None
            and not old.pending
            and old.endpoints == snap.endpoints
            and old.healthy == snap.healthy
            and old.definition is snap.definition
            and old.error == snap.error
        ):
            return
        entry.snapshots[key] = snap
        for listener in list(entry.listeners.get(key, ())):
            try:
                listener(snap)
            except Exception:
                log.exception("listener of %s failed", key)

    def _degrade(self, entry: _Entry, msg: str) -> None:
        """Registry trouble: same endpoints, marked unhealthy (never an empty table)."""
        for key in list(entry.listeners):
            old = entry.snapshots.get(key)
            if old is None:
                continue
            self._publish(entry, key, replace(old, healthy=False, error=msg, at=time.time()))

    # ---- reads (executor threads) ---------------------------------------------------------

    def _zk(self) -> KazooClient:
        if self._client is None:
            raise RegistryError("registry not started")
        return self._client

    def _children(self, path: str, watch: Callable[[Any], None] | None) -> list[str]:
        zk = self._zk()
        try:
            children = zk.get_children_async(path, watch=watch).get(timeout=self.op_timeout)
            return sorted(children)  # ZooKeeper's order is arbitrary: never let it decide
        except NoNodeError:
            if watch is not None:  # be told when it appears
                zk.exists_async(path, watch=watch).get(timeout=self.op_timeout)
            return []

    def _data(self, path: str, watch: Callable[[Any], None] | None) -> bytes | None:
        zk = self._zk()
        try:
            data, _stat = zk.get_async(path, watch=watch).get(timeout=self.op_timeout)
            return data
        except NoNodeError:
            if watch is not None:
                zk.exists_async(path, watch=watch).get(timeout=self.op_timeout)
            return None

    def _read_interface(self, entry: _Entry) -> _Read:
        iface = entry.interface
        base = f"{self.root}/{url_encode(iface)}"
        read = _Read()
        if self.interface_discovery:
            children = self._children(f"{base}/providers", entry.watcher)
            if len(children) > MAX_CHILDREN:
                extra = RecordRejected(TOO_LARGE, f"{len(children)} children, read {MAX_CHILDREN}")
                read.skipped.append(("providers", extra))
            for child in children[:MAX_CHILDREN]:
                try:
                    url = parse_child(child)
                except RecordRejected as e:
                    read.skipped.append((f"providers/{child}", e))
                    continue
                if (
                    url.protocol in ("empty", "override", "route")
                    or url.get("category", "providers") != "providers"
                ):
                    continue
                if url.get("side", "provider") != "provider":
                    continue
                if not url.interface:
                    # apache-dubbo (Python) registers tri://host:port?service=I: no path, no
                    # interface=.  The node's place names the interface.
                    params = dict(url.params)
                    params["interface"] = url.get("service") or iface
                    url = replace(url, path=params["interface"], params=MappingProxyType(params))
                if url.interface != iface:
                    why = f"URL names {url.interface[:120]}, not {iface}"
                    read.skipped.append((f"providers/{child}", RecordRejected(WRONG_SERVICE, why)))
                    continue
                read.providers.append(url)
            children = self._children(f"{base}/configurators", entry.watcher)
            for child in children[:MAX_CHILDREN]:
                text = unquote_plus(child)
                if text.startswith("empty://"):
                    continue
                try:
                    read.rules.append(OverrideURL.parse(text))
                except RecordRejected as e:
                    read.skipped.append((f"configurators/{child}", e))
        if self.app_discovery:
            path = f"/{self.metadata_root}/mapping/{iface}"
            data = self._data(path, entry.watcher)
            if data:
                try:
                    read.apps, bad = parse_mapping(data)
                    read.skipped.extend(bad)
                except RecordRejected as e:
                    read.skipped.append((path, e))
        return read

    def _read_definitions(
        self,
        iface: str,
        combos: set[tuple[str, str, str]],
        skipped: list[tuple[str, RecordRejected]],
    ) -> dict[tuple[str, str], ServiceDefinition]:
        """Signatures per (version, group); a bad document is skipped and reported (its
        providers stay, their calls fall back to generic invocation)."""
        out: dict[tuple[str, str], ServiceDefinition] = {}
        for version, group, app in sorted(combos):
            if (version, group) in out or not app or not _APP_NAME.match(app):
                continue
            path = definition_path(iface, version, group, app, self.metadata_root)
            try:
                data = self._data(path, None)
            except ValueError:  # kazoo refuses the path (a hostile version/group)
                skipped.append((path, RecordRejected(BAD_VALUE, "unusable metadata path")))
                continue
            if not data:
                continue
            cached = self._def_cache.get(path)
            if cached is not None and cached[0] == data:
                d, err = cached[1], cached[2]
            else:
                d, err = None, None
                try:
                    d = parse_definition(data, f"provider metadata (zookeeper {path})")
                except RecordRejected as e:
                    err = e
                except Exception as e:  # a parser bug must not stop the records beside it
                    log.exception("zookeeper: parsing %s failed", path)
                    err = RecordRejected(BAD_TYPE, f"unparsable: {e!r}")
                self._def_cache[path] = (data, d, err)
                if len(self._def_cache) > 4096:
                    with contextlib.suppress(StopIteration, KeyError, RuntimeError):
                        self._def_cache.pop(next(iter(self._def_cache)))
            if err is not None:
                skipped.append((path, err))
            elif d is not None:
                out[(version, group)] = d
        return out

    def _app_watcher(self, app: str) -> Callable[[Any], None]:
        w = self._app_watchers.get(app)
        if w is None:

            def w(_event: Any, app: str = app) -> None:
                self._threadsafe(self._kick_app, app)

            self._app_watchers[app] = w
        return w

    def _kick_app(self, app: str) -> None:
        for iface, entry in list(self._entries.items()):
            if app in entry.apps:
                self._kick(iface)

    def _read_app(self, app: str) -> list[tuple[str, bytes | None]]:
        watch = self._app_watcher(app)
        base = f"{self.services_root}/{app}"
        children = self._children(base, watch)[:MAX_CHILDREN]
        return [(c, self._data(f"{base}/{c}", watch)) for c in children]

    async def _app_urls(
        self, entry: _Entry, apps: list[str], skipped: list[tuple[str, RecordRejected]]
    ) -> list[DubboURL]:
        """Instances of ``apps`` → URLs of ``entry.interface``.  Instances sharing a revision
        share one MetadataInfo (asked of up to 3 of them, revisions resolved concurrently);
        a bad instance (or revision, or MetadataInfo) is skipped and reported, the others
        stay."""
        loop = asyncio.get_running_loop()
        entry.apps = tuple(apps)  # so instance watches kick this interface
        by_rev: dict[tuple[str, str], list[tuple[str, str, int, dict[str, str]]]] = {}
        for app in apps:
            nodes = await loop.run_in_executor(None, self._read_app, app)
            for child, data in nodes:
                where = f"{self.services_root}/{app}/{child}"
                if data is None:
                    continue
                try:
                    _name, host, port, meta, enabled = parse_instance(data)
                except RecordRejected as e:
                    skipped.append((where, e))
                    continue
                revision = meta.get("dubbo.metadata.revision")
                if not revision:
                    skipped.append((where, RecordRejected(MISSING, "no dubbo.metadata.revision")))
                elif not _APP_NAME.match(revision):
                    skipped.append((where, RecordRejected(BAD_VALUE, "bad metadata revision")))
                elif enabled:
                    by_rev.setdefault((app, revision), []).append((where, host, port, meta))

        async def resolve(app: str, instances: list[Any]) -> MetadataInfo:
            err: Exception | None = None
            for _where, host, port, meta in instances[:3]:
                try:
                    return await self._metadata_info(app, host, port, meta)
                except Exception as e:  # RegistryError, or a parser bug: this revision only
                    err = e
            assert err is not None
            raise err

        keys = list(by_rev)
        infos = await asyncio.gather(
            *(resolve(app, by_rev[(app, rev)]) for app, rev in keys), return_exceptions=True
        )
        out: list[DubboURL] = []
        for (app, rev), info in zip(keys, infos, strict=True):
            if isinstance(info, BaseException):
                if not isinstance(info, Exception):
                    raise info  # cancellation
                if not isinstance(info, RegistryError):
                    log.error("zookeeper: metadata of %s revision %s: %r", app, rev, info)
                for where, *_ in by_rev[(app, rev)]:
                    skipped.append((where, RecordRejected(UNAVAILABLE, f"revision {rev}: {info}")))
                continue
            for where, host, port, meta in by_rev[(app, rev)]:
                try:
                    urls = instance_urls(entry.interface, app, host, port, meta, info)
                    out.extend(check_url(u) for u in urls)
                except RegistryError as e:
                    skipped.append((where, _rejected(e)))
        return out

    async def _metadata_info(
        self, app: str, host: str, port: int, meta: dict[str, str]
    ) -> MetadataInfo:
        async def read_remote(app: str, revision: str) -> tuple[bytes | None, str]:
            path = f"/{self.metadata_root}/metadata/{app}/{revision}"
            loop = asyncio.get_running_loop()
            data = await loop.run_in_executor(None, self._data, path, None)
            if data is not None and len(data) > MAX_DOCUMENT_BYTES:
                raise RecordRejected(TOO_LARGE, f"{path}: {len(data)} bytes")
            return data, path

        return await instance_metadata_info(
            app, host, port, meta, read_remote, self.metadata_timeout
        )

    # ---- queries --------------------------------------------------------------------------

    async def list_services(self) -> list[str]:
        if not self.connected:
            raise RegistryError(self._down())
        return await asyncio.get_running_loop().run_in_executor(None, self._list)

    def _list(self) -> list[str]:
        """Interfaces with at least one provider node or one application instance.  Names
        are not parsed here: a bad record shows up, with its reason, in ``registry ls``
        of its interface."""
        out = set()
        if self.interface_discovery:
            for child in self._children(self.root, None):
                if self._children(f"{self.root}/{child}/providers", None):
                    out.add(unquote_plus(child))
        if self.app_discovery:
            for iface in self._children(f"/{self.metadata_root}/mapping", None):
                data = self._data(f"/{self.metadata_root}/mapping/{iface}", None)
                try:
                    apps, _bad = parse_mapping(data or b"")
                except RecordRejected:
                    continue
                if any(self._children(f"{self.services_root}/{a}", None) for a in apps):
                    out.add(iface)
        return sorted(out)

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": type(self).__name__,
            "hosts": self.hosts,
            "root": self.root,
            "connected": self.connected,
            "state": self.state,
            "last_sync": self.last_sync,
            "services": sorted(self._entries),
            "skipped_records": self.skips.summary(),
            "errors": list(self._errors.values())[:MAX_REPORTED_ERRORS],
        }


def check_url(url: DubboURL) -> DubboURL:
    """A URL built from other records (application-level discovery): same checks as a
    provider node's URL (raises RecordRejected)."""
    valid_host(url.host)
    if not isinstance(url.port, int) or not 0 < url.port < 65536:
        raise RecordRejected(BAD_PORT, f"port {str(url.port)[:40]}")
    _check_params(url.params)
    return url


def _rejected(e: RegistryError) -> RecordRejected:
    return e if isinstance(e, RecordRejected) else RecordRejected(BAD_VALUE, str(e))


def _dedupe(endpoints: list[Endpoint]) -> list[Endpoint]:
    """One endpoint per export (protocol, host, port, group, version): a provider exporting
    an interface in two groups on one port is two endpoints; the same export seen at
    interface and application level is one (interface-level ones come first and win)."""
    seen: set[tuple[str, str, int, str, str]] = set()
    out = []
    for e in endpoints:
        if e.export_key not in seen:
            seen.add(e.export_key)
            out.append(e)
    return out


def _duration(text: str, what: str) -> float:
    t = text.strip().lower()
    try:
        if t.endswith("ms"):
            v = float(t[:-2]) / 1000
        elif t.endswith("s"):
            v = float(t[:-1])
        else:
            v = float(t)
    except ValueError:
        raise RegistryError(
            f"{what}: expected a duration like 10s or 500ms, got {text!r}"
        ) from None
    if not 0 < v <= 3600:
        raise RegistryError(f"{what}: {text!r} is out of range")
    return v
