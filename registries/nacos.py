"""Nacos discovery: Dubbo providers registered in Nacos 2.x/3.x, read with nacos-sdk-python.

``nacos://[user:pass@]host:8848[,host2:8848]?namespace=dev&group=DEFAULT_GROUP&...``

What is read (docs/nacos.md has the details):

* interface-level registrations: Nacos services ``providers:{iface}:{version}:{group}`` (and
  the compatible/legacy forms) in the registry group; each instance's metadata holds the
  provider URL's parameters;
* application-level registrations (Dubbo 3): the ``mapping`` config (interface -> apps), the
  app's instances and their ``MetadataInfo`` (remote: config ``{app}``/``{revision}``; local:
  the provider's MetadataService);
* Java signatures: the provider's FullServiceDefinition from config
  ``{iface}:{version}:{group}:provider:{app}`` in the metadata group (default ``dubbo``).

The SDK is asynchronous and runs on the gateway's event loop, so its callbacks already arrive
on the loop thread.  It is created in a background task: with no server up, creating a client
blocks for three times the gRPC timeout, and ``start()`` must never wait for that.

This module is the naming/config client glue; ``nacos_records`` maps Nacos records (service
names, instances) to endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .base import (
    Endpoint,
    Listener,
    Registry,
    RegistryError,
    ServiceKey,
    Snapshot,
    matches,
)
from .checks import skipped_text
from .metadata import ServiceDefinition
from .nacos_records import NacosRecords

log = logging.getLogger("tribridge.registry.nacos")

_PARAMS = {
    "namespace",
    "group",
    "username",
    "password",
    "port_offset",
    "mode",
    "metadata_group",
    "timeout",
    "refresh",
    "protocols",
}
_MODES = ("all", "interface", "instance")
_PAGE = 500
_MAX_PAGES = 200


@dataclass
class _Watch:
    key: ServiceKey
    listeners: list[Listener] = field(default_factory=list)
    names: set[str] = field(default_factory=set)  # interface-level Nacos services followed
    apps: set[str] = field(default_factory=set)  # application-level Nacos services followed
    snapshot: Snapshot | None = None
    settled: bool = False
    task: asyncio.Task[None] | None = None
    dirty: bool = False
    discovered: bool = False
    last_keys: frozenset[tuple[str, str, str]] = frozenset()


class NacosRegistry(NacosRecords, Registry):
    schemes = ("nacos",)

    def __init__(
        self,
        address: str,
        name: str = "nacos",
        *,
        namespace: str = "",
        group: str = "DEFAULT_GROUP",
        username: str | None = None,
        password: str | None = None,
        port_offset: int = 1000,
        mode: str = "all",
        metadata_group: str = "dubbo",
        timeout: float = 3.0,
        refresh: float = 10.0,
        protocols: Iterable[str] = (),
    ) -> None:
        if mode not in _MODES:
            raise RegistryError(f"nacos: mode must be one of {', '.join(_MODES)}, got {mode!r}")
        self.name = name
        self.address = address
        self.namespace = namespace
        self.group = group or "DEFAULT_GROUP"
        self.username = username
        self.password = password
        self.port_offset = port_offset
        self.mode = mode
        self.metadata_group = metadata_group
        self.timeout = timeout
        self.refresh = refresh
        self.protocols = frozenset(protocols)
        self._naming: Any = None
        self._config: Any = None
        self._connected = False
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._main: asyncio.Task[None] | None = None
        self._watches: dict[ServiceKey, _Watch] = {}
        self._instances: dict[str, list[Any]] = {}  # Nacos service -> latest SDK instances
        self._followers: dict[str, set[ServiceKey]] = {}
        self._callbacks: dict[str, Any] = {}
        self._definitions: dict[str, ServiceDefinition | None] = {}
        self._last_error: str | None = None
        self._names_cache: tuple[float, list[str]] | None = None
        #: the SDK's log and cache directory: made when the clients are, removed on close
        self._work_dir: str | None = None

    # ---- construction ---------------------------------------------------------------------------

    @classmethod
    def from_url(cls, url: str, name: str) -> NacosRegistry:
        u = urlsplit(url)
        if u.scheme != "nacos":
            raise RegistryError(f"not a nacos:// URL: {url!r}")
        hosts = u.netloc.rpartition("@")[2]
        if not hosts:
            raise RegistryError(f"nacos URL needs host:port: {url!r}")
        for h in hosts.split(","):
            host, _, port = h.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise RegistryError(f"nacos URL: bad server address {h!r} (want host:port)")
        q = dict(parse_qsl(u.query, keep_blank_values=True))
        unknown = sorted(set(q) - _PARAMS)
        if unknown:
            raise RegistryError(
                f"nacos URL: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(_PARAMS))}"
            )

        def num(key: str, default: float, lo: float, hi: float) -> float:
            raw = q.get(key)
            if raw is None or raw == "":
                return default
            try:
                v = float(raw)
            except ValueError:
                raise RegistryError(f"nacos URL: {key} must be a number, got {raw!r}") from None
            if not lo <= v <= hi:
                raise RegistryError(f"nacos URL: {key} must be within {lo:g}..{hi:g}, got {raw!r}")
            return v

        return cls(
            hosts,
            name,
            namespace=q.get("namespace", ""),
            group=q.get("group") or "DEFAULT_GROUP",
            username=q.get("username") or (unquote(u.username) if u.username else None),
            password=q.get("password") or (unquote(u.password) if u.password else None),
            port_offset=int(num("port_offset", 1000, 1, 64000)),
            mode=q.get("mode") or "all",
            metadata_group=q.get("metadata_group") or "dubbo",
            timeout=num("timeout", 3000, 100, 60000) / 1000,
            refresh=num("refresh", 10, 0.2, 3600),
            protocols=[p for p in q.get("protocols", "").split(",") if p],
        )

    # ---- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._main = asyncio.create_task(self._run(), name=f"nacos-registry-{self.name}")

    async def close(self) -> None:
        self._closed = True
        tasks = [t for t in (self._main, *self._tasks) if t is not None]
        for t in tasks:
            t.cancel()
        for w in self._watches.values():
            if w.task is not None:
                w.task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        naming, config, self._naming, self._config = self._naming, self._config, None, None
        with contextlib.suppress(Exception):
            if naming is not None:
                await asyncio.wait_for(naming.shutdown(), 5)
        with contextlib.suppress(Exception):
            if config is not None:
                proxy = config.grpc_client_proxy
                proxy.stop_event.set()
                proxy.execute_config_listen_channel.put_nowait(None)  # else it waits up to 5 s
                await asyncio.wait_for(config.shutdown(), 5)
        work, self._work_dir = self._work_dir, None
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)

    def _client_config(self) -> Any:
        from v2.nacos import ClientConfigBuilder, GRPCConfig

        if self._work_dir is None:
            self._work_dir = tempfile.mkdtemp(prefix="tribridge-nacos-")
        b = (
            ClientConfigBuilder()
            .server_address(self.address)
            .namespace_id(self.namespace)
            .log_dir(os.path.join(self._work_dir, "logs"))
            .cache_dir(os.path.join(self._work_dir, "cache"))
            .grpc_config(
                GRPCConfig(grpc_timeout=int(self.timeout * 1000), port_offset=self.port_offset)
            )
            .load_cache_at_start(False)
        )
        if self.username:
            b = b.username(self.username).password(self.password or "")
        cfg = b.build()
        # Without this the SDK ignores a service dropping to zero instances.
        cfg.update_cache_when_empty = True
        return cfg

    async def _run(self) -> None:
        from v2.nacos import NacosConfigService, NacosNamingService

        delay = 0.5
        while not self._closed and self._naming is None:
            try:
                naming, config = await asyncio.gather(
                    NacosNamingService.create_naming_service(self._client_config()),
                    NacosConfigService.create_config_service(self._client_config()),
                )
                self._naming, self._config = naming, config
            except asyncio.CancelledError:
                raise
            except Exception as e:  # bad address, auth plugin failures ...
                self._last_error = f"cannot create Nacos clients: {e}"
                log.warning("%s: %s", self.name, self._last_error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)
        last_refresh = 0.0
        while not self._closed:
            healthy = bool(
                self._naming is not None and self._naming.grpc_client_proxy.server_health()
            )
            if healthy != self._connected:
                self._connected = healthy
                if healthy:
                    self._last_error = None
                    await self._on_reconnect()
                else:
                    self._last_error = f"Nacos server {self.address} unreachable"
                    self._mark_unhealthy()
            now = self._loop.time() if self._loop else 0.0
            if healthy and now - last_refresh >= self.refresh:
                last_refresh = now
                for w in list(self._watches.values()):
                    w.discovered = False
                    self._schedule(w)
            elif healthy:
                for w in list(self._watches.values()):
                    if not w.settled:
                        self._schedule(w)
            await asyncio.sleep(0.25 if not healthy else 0.5)

    async def _on_reconnect(self) -> None:
        """After (re)connecting: re-subscribe every followed service at once (the SDK's own redo
        runs only every 30 s), then recompute every watch."""
        proxy = self._naming.grpc_client_proxy
        for name in list(self._callbacks):
            try:
                info = await proxy.do_subscribe(name, self.group, "")
                if info is not None:
                    await proxy.service_info_cache.process_service(info)
                    self._instances[name] = list(info.hosts)
            except Exception as e:
                self._last_error = f"re-subscribe {name}: {e}"
        for w in list(self._watches.values()):
            w.discovered = False
            self._schedule(w)

    def _mark_unhealthy(self) -> None:
        for w in self._watches.values():
            s = w.snapshot
            if s is not None and not s.pending:
                self._emit(
                    w,
                    Snapshot(
                        w.key,
                        s.endpoints,
                        healthy=False,
                        error=self._last_error,
                        definition=s.definition,
                    ),
                )

    # ---- subscriptions ----------------------------------------------------------------------------

    def subscribe(self, service: ServiceKey, listener: Listener) -> Snapshot | None:
        w = self._watches.get(service)
        if w is None:
            w = self._watches[service] = _Watch(service)
            w.snapshot = Snapshot(
                service, (), healthy=self._connected, pending=True, error=self._last_error
            )
            if self._connected:
                self._schedule(w)
        w.listeners.append(listener)
        return w.snapshot

    def unsubscribe(self, service: ServiceKey, listener: Listener) -> None:
        w = self._watches.get(service)
        if w is None:
            return
        with contextlib.suppress(ValueError):
            w.listeners.remove(listener)
        if w.listeners:
            return
        del self._watches[service]
        if w.task is not None:
            w.task.cancel()
        for name in w.names | w.apps:
            followers = self._followers.get(name)
            if followers is not None:
                followers.discard(service)
                if not followers:
                    self._spawn(self._unfollow(name))

    def _spawn(self, coro: Any) -> None:
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _unfollow(self, name: str) -> None:
        from v2.nacos import SubscribeServiceParam

        if self._followers.get(name):
            return
        self._followers.pop(name, None)
        cb = self._callbacks.pop(name, None)
        self._instances.pop(name, None)
        if cb is not None and self._naming is not None:
            with contextlib.suppress(Exception):
                await self._naming.unsubscribe(
                    SubscribeServiceParam(
                        service_name=name, group_name=self.group, subscribe_callback=cb
                    )
                )

    async def _follow(self, name: str, key: ServiceKey) -> None:
        from v2.nacos import ListInstanceParam, SubscribeServiceParam

        self._followers.setdefault(name, set()).add(key)
        if name in self._callbacks:
            return

        async def on_instances(instances: list[Any], _name: str = name) -> None:
            self._instances[_name] = list(instances)
            for k in self._followers.get(_name, ()):
                w = self._watches.get(k)
                if w is not None:
                    self._schedule(w)

        self._callbacks[name] = on_instances
        try:
            await self._naming.subscribe(
                SubscribeServiceParam(
                    service_name=name, group_name=self.group, subscribe_callback=on_instances
                )
            )
            hosts = await self._naming.list_instances(
                ListInstanceParam(
                    service_name=name, group_name=self.group, subscribe=True, healthy_only=None
                )
            )
        except Exception:
            self._callbacks.pop(name, None)
            raise
        self._instances[name] = list(hosts)

    def _schedule(self, w: _Watch) -> None:
        if self._closed or self._naming is None:
            return
        if w.task is not None and not w.task.done():
            w.dirty = True
            return
        w.dirty = False
        w.task = asyncio.ensure_future(self._update(w))

    async def _update(self, w: _Watch) -> None:
        for _ in range(10):  # bounded: coalesce bursts of pushes into few recomputes
            try:
                if not w.discovered:
                    await self._discover(w)
                    w.discovered = True
                await self._recompute(w)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                err = f"{w.key}: {e}"
                if err != self._last_error:  # retried every tick: log each new error once
                    log.warning("%s: %s", self.name, err)
                self._last_error = err
                return  # the monitor retries unsettled watches; settled ones keep their snapshot
            if not w.dirty or self._watches.get(w.key) is not w:
                return
            w.dirty = False

    # ---- discovery ----------------------------------------------------------------------------------

    async def _service_names(self) -> list[str]:
        """All service names in the group (paged), cached for a second: many watches
        rediscover at once after a reconnect or a refresh."""
        from v2.nacos import ListServiceParam

        now = asyncio.get_running_loop().time()
        if self._names_cache is not None and now - self._names_cache[0] < 1.0:
            return self._names_cache[1]
        names: list[str] = []
        for page in range(1, _MAX_PAGES + 1):
            res = await self._naming.list_services(
                ListServiceParam(
                    namespace_id=self.namespace or "public",
                    group_name=self.group,
                    page_no=page,
                    page_size=_PAGE,
                )
            )
            names.extend(res.services)
            if len(res.services) < _PAGE or len(names) >= res.count:
                break
        self._names_cache = (now, names)
        return names

    async def _discover(self, w: _Watch) -> None:
        iface = w.key.interface
        names: set[str] = set()
        if self.mode in ("all", "interface"):
            names.update(self._concrete_names(w.key))
            names.update(n for n in await self._service_names() if self._name_interface(n) == iface)
        apps: set[str] = set()
        if self.mode in ("all", "instance"):
            mapping = await self._get_config(iface, "mapping")
            apps = {a.strip() for a in (mapping or "").split(",") if a.strip()}
        for name in sorted(names - w.names) + sorted(apps - w.apps):
            await self._follow(name, w.key)
        w.names |= names
        w.apps |= apps

    async def _get_config(self, data_id: str, group: str) -> str | None:
        from v2.nacos import ConfigParam

        content = await self._config.get_config(ConfigParam(data_id=data_id, group=group))
        return content or None

    # ---- snapshots ----------------------------------------------------------------------------------

    async def _read_metadata_info(self, app: str, revision: str) -> tuple[str | None, str]:
        """``storage-type=remote``: NacosMetadataReport keeps MetadataInfo JSON in config
        ``dataId={app}``, ``group={revision}``."""
        return await self._get_config(app, revision), f"nacos config {app} (group {revision})"

    async def _definition(self, w: _Watch, eps: list[Endpoint]) -> ServiceDefinition | None:
        iface = w.key.interface
        seen = []
        for ep in eps:
            app = ep.metadata.get("application", "")
            if not app:
                continue
            data_id = f"{iface}:{ep.version}:{ep.group}:provider:{app}"
            if data_id not in seen:
                seen.append(data_id)
        for data_id in seen:
            if data_id not in self._definitions:
                content = await self._get_config(data_id, self.metadata_group)
                d = None
                if content is not None:
                    try:
                        d = ServiceDefinition.from_json(
                            content, source=f"nacos config {data_id} (group {self.metadata_group})"
                        )
                    except RegistryError as e:
                        self._skip(iface, f"definition {data_id}", e)
                self._definitions[data_id] = d
            d = self._definitions[data_id]
            if d is not None:
                return d
        return None

    async def _recompute(self, w: _Watch) -> None:
        iface = w.key.interface
        eps: dict[tuple[str, str, str], Endpoint] = {}
        for name in sorted(w.names):
            for inst in self._instances.get(name, ()):
                if not self._usable(inst):
                    continue
                ep = self._interface_endpoint(name, inst, iface)
                if ep is not None:
                    eps.setdefault((ep.key, ep.version, ep.group), ep)
        for app in sorted(w.apps):
            for inst in self._instances.get(app, ()):
                if not self._usable(inst):
                    continue
                for ep in await self._app_endpoints(app, inst, iface):
                    eps.setdefault((ep.key, ep.version, ep.group), ep)
        chosen = [
            e
            for e in eps.values()
            if matches(e, w.key) and (not self.protocols or e.protocol in self.protocols)
        ]
        keys = frozenset(eps)
        if keys - w.last_keys:
            # new providers may have published a new definition: read it again
            for ep in chosen:
                app = ep.metadata.get("application", "")
                self._definitions.pop(f"{iface}:{ep.version}:{ep.group}:provider:{app}", None)
        w.last_keys = keys
        definition = await self._definition(w, chosen)
        w.settled = True
        self._emit(
            w,
            Snapshot(
                w.key,
                tuple(chosen),
                healthy=self._connected,
                error=None if self._connected else self._last_error,
                definition=definition,
            ),
        )

    def _emit(self, w: _Watch, snap: Snapshot) -> None:
        if snap.repeats(w.snapshot):
            return
        w.snapshot = snap
        for listener in list(w.listeners):
            try:
                listener(snap)
            except Exception:
                log.exception("%s: listener for %s failed", self.name, w.key)

    # ---- queries ------------------------------------------------------------------------------------

    async def list_services(self) -> list[str]:
        if self._naming is None or not self._connected:
            raise RegistryError(f"{self.name}: not connected to Nacos at {self.address}")
        out = {i for n in await self._service_names() if (i := self._name_interface(n))}
        return sorted(out)

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": type(self).__name__,
            "address": self.address,
            "namespace": self.namespace or "public",
            "group": self.group,
            "mode": self.mode,
            "connected": self._connected,
            "error": self._last_error,
            "services": len(self._watches),
            "followed": sorted(self._callbacks),
            "skipped": skipped_text(self.skips),
            "skipped_records": self.skips.summary(),
        }
