"""ZooKeeper subscriptions: per-interface state, the refresh loop and snapshot delivery.

kazoo runs its own threads.  Watches only *kick* the event loop
(``call_soon_threadsafe``); every read runs in the default executor and every snapshot is
built and delivered on the loop thread.  One refresh per interface runs at a time; kicks
that arrive meanwhile coalesce into one more pass, so a burst of changes costs two reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any

from kazoo.client import KazooClient

from .base import DubboURL, Endpoint, Listener, RegistryError, ServiceKey, Snapshot, matches
from .metadata import ServiceDefinition
from .records import RecordRejected, SkipReport
from .zookeeper_nodes import OverrideURL, apply_configurators, rejected

log = logging.getLogger("tribridge.registry.zookeeper")


@dataclass
class Entry:
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
class Read:
    """What one pass read for an interface (built in the executor thread)."""

    providers: list[DubboURL] = field(default_factory=list)
    rules: list[OverrideURL] = field(default_factory=list)
    apps: list[str] = field(default_factory=list)
    #: (which record, why) for the registry's SkipReport, source = the interface
    skipped: list[tuple[str, RecordRejected]] = field(default_factory=list)


def dedupe(endpoints: list[Endpoint]) -> list[Endpoint]:
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


class Subscriptions:
    """The subscription half of ``ZookeeperRegistry`` (mixed into it): listeners and
    snapshots per interface, the refresh loop a watch kicks, and what a lost session does
    (same endpoints, ``healthy=False``).  The reads themselves live in the registry class
    (``_read_interface``, ``_read_definitions``) and in ``AppDiscovery`` (``_app_urls``)."""

    hosts: str
    connected: bool
    last_sync: float | None
    app_discovery: bool
    skips: SkipReport
    _entries: dict[str, Entry]
    _app_watchers: dict[str, Callable[[Any], None]]
    _errors: dict[str, str]
    _client: KazooClient | None
    _loop: asyncio.AbstractEventLoop | None
    _closed: bool
    # provided by the registry class
    _down: Callable[[], str]
    _threadsafe: Callable[..., None]
    _read_interface: Callable[[Entry], Read]
    _app_urls: Callable[
        [Entry, list[str], list[tuple[str, RecordRejected]]],
        Coroutine[Any, Any, list[DubboURL]],
    ]
    _read_definitions: Callable[
        [str, set[tuple[str, str, str]], list[tuple[str, RecordRejected]]],
        dict[tuple[str, str], ServiceDefinition],
    ]

    def subscribe(self, service: ServiceKey, listener: Listener) -> Snapshot | None:
        entry = self._entries.get(service.interface)
        new = entry is None
        if entry is None:
            entry = Entry(service.interface)
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

    async def _run(self, entry: Entry) -> None:
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

    async def _refresh(self, entry: Entry) -> None:
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
                        rejected(e),
                    )
                )
        endpoints = dedupe(endpoints)
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

    def _build(self, entry: Entry, key: ServiceKey) -> Snapshot:
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

    def _publish(self, entry: Entry, key: ServiceKey, snap: Snapshot) -> None:
        if snap.repeats(entry.snapshots.get(key)):
            return
        entry.snapshots[key] = snap
        for listener in list(entry.listeners.get(key, ())):
            try:
                listener(snap)
            except Exception:
                log.exception("listener of %s failed", key)

    def _degrade(self, entry: Entry, msg: str) -> None:
        """Registry trouble: same endpoints, marked unhealthy (never an empty table)."""
        for key in list(entry.listeners):
            old = entry.snapshots.get(key)
            if old is None:
                continue
            self._publish(entry, key, replace(old, healthy=False, error=msg, at=time.time()))
