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

By role: ``zookeeper_nodes`` parses what the nodes hold, ``zookeeper_state`` keeps the
subscriptions and runs the refresh loop, ``zookeeper_apps`` does application-level
discovery; this module is the client (lifecycle, session state, reads) and the registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlsplit

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError
from kazoo.protocol.states import KazooState
from kazoo.retry import KazooRetry

from .base import Registry, RegistryError
from .metadata import ServiceDefinition
from .records import BAD_TYPE, BAD_VALUE, TOO_LARGE, WRONG_SERVICE, RecordRejected
from .zookeeper_apps import AppDiscovery
from .zookeeper_nodes import (
    APP_NAME,
    MAX_CHILDREN,
    OverrideURL,
    definition_path,
    parse_child,
    parse_definition,
    parse_mapping,
    url_encode,
)
from .zookeeper_state import Entry, Read, Subscriptions

log = logging.getLogger("tribridge.registry.zookeeper")

DEFAULT_PORT = 2181
SERVICES_ROOT = "/services"
MAX_REPORTED_ERRORS = 50


class ZookeeperRegistry(Subscriptions, AppDiscovery, Registry):
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
        self._entries: dict[str, Entry] = {}
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

    def _read_interface(self, entry: Entry) -> Read:
        iface = entry.interface
        base = f"{self.root}/{url_encode(iface)}"
        read = Read()
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
            if (version, group) in out or not app or not APP_NAME.match(app):
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
