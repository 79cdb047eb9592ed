"""ZooKeeper application-level discovery (Dubbo 3): applications -> instances -> URLs.

``/dubbo/mapping/{I}`` names the applications, their instances live under
``/services/{app}`` (Curator service-discovery JSON) and each instance's
``MetadataService.getMetadataInfo(revision)`` (or the metadata report's
``/dubbo/metadata/{app}/{revision}``) says which interfaces it serves on which protocol and
port.  Instances sharing a revision share one MetadataInfo.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from .base import DubboURL, RegistryError
from .metadata_service import MetadataInfo, instance_metadata_info, instance_urls
from .records import BAD_VALUE, MISSING, TOO_LARGE, UNAVAILABLE, RecordRejected
from .zookeeper_nodes import (
    APP_NAME,
    MAX_CHILDREN,
    MAX_DOCUMENT_BYTES,
    check_url,
    parse_instance,
    rejected,
)
from .zookeeper_state import Entry

log = logging.getLogger("tribridge.registry.zookeeper")


class AppDiscovery:
    """The application-level half of ``ZookeeperRegistry`` (mixed into it): instance
    watches, instance documents and their MetadataInfo.  Reads go through the registry's
    ``_children`` / ``_data`` (executor threads); watches kick through ``_threadsafe``."""

    services_root: str
    metadata_root: str
    metadata_timeout: float
    _entries: dict[str, Entry]
    _app_watchers: dict[str, Callable[[Any], None]]
    # provided by the registry class
    _threadsafe: Callable[..., None]
    _kick: Callable[[str], None]
    _children: Callable[[str, Callable[[Any], None] | None], list[str]]
    _data: Callable[[str, Callable[[Any], None] | None], bytes | None]

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
        self, entry: Entry, apps: list[str], skipped: list[tuple[str, RecordRejected]]
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
                elif not APP_NAME.match(revision):
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
                    skipped.append((where, rejected(e)))
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
