"""Providers from a Eureka server (REST v2), polled with py-eureka-client's fetch functions.

``eureka://HOST:PORT[,HOST2:PORT2]/eureka?interval=5&map=com.x.A:APP1,com.x.B:APP2``

* A full fetch (``GET apps/``) first, then a delta (``GET apps/delta``) every ``interval``
  seconds, merged by ``actionType``; when the merged view's status hash differs from the
  delta's ``apps__hashcode`` (or after any error) the next fetch is a full one again.
* Only instances whose (effective) status is ``UP`` are routed: ``OUT_OF_SERVICE``, ``DOWN``,
  ``STARTING`` and ``UNKNOWN`` instances drop out on the next fetch.
* Eureka knows applications, not Dubbo interfaces.  An instance serves interface ``I`` when
  its metadata ``dubbo.interfaces`` (comma list) names ``I``, or when the URL's ``map``
  names its application for ``I``.  Dubbo details come from metadata too (docs/
  discovery-eureka-kubernetes.md): ``dubbo.port`` (default: the Eureka ``port`` when
  enabled), ``dubbo.protocol`` (``dubbo`` | ``tri``; default ``dubbo``), ``dubbo.version``,
  ``dubbo.group``, ``dubbo.weight``, ``dubbo.methods``.
* Other URL parameters: ``secure=true`` (https), ``timeout`` (s, per request); user info in
  the URL becomes basic auth.  Several servers are tried in turn when one fails.
"""

from __future__ import annotations

import asyncio
import logging
import time
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from py_eureka_client import eureka_basic

from .base import (
    DEFAULT_WEIGHT,
    Endpoint,
    Listener,
    Registry,
    RegistryError,
    ServiceKey,
    Snapshot,
    matches,
    parse_interface_map,
)
from .hub import SnapshotHub

log = logging.getLogger("tribridge.registry.eureka")

META_INTERFACES = "dubbo.interfaces"
META_PORT = "dubbo.port"
META_PROTOCOL = "dubbo.protocol"
META_VERSION = "dubbo.version"
META_GROUP = "dubbo.group"
META_WEIGHT = "dubbo.weight"
META_METHODS = "dubbo.methods"
PROTOCOLS = ("dubbo", "tri")


def _float_param(params: dict[str, str], key: str, default: float) -> float:
    raw = params.get(key)
    if raw is None:
        return default
    try:
        v = float(raw)
    except ValueError:
        raise RegistryError(f"eureka URL: {key}={raw!r} is not a number") from None
    if v <= 0:
        raise RegistryError(f"eureka URL: {key} must be positive")
    return v


def parse_map(text: str) -> dict[str, tuple[str, ...]]:
    """``com.x.A:APP1,com.x.B:APP2`` -> {interface: (APP, ...)}; Eureka app names are
    upper case."""
    return {
        k: tuple(a.upper() for a in v)
        for k, v in parse_interface_map(text, "eureka", "APP").items()
    }


def _redact(url: str) -> str:
    """A server URL without its credentials, for messages and status."""
    u = urlsplit(url)
    return url.replace(u.netloc, u.netloc.rpartition("@")[2], 1) if "@" in u.netloc else url


class EurekaRegistry(Registry):
    schemes = ("eureka",)

    def __init__(
        self,
        servers: list[str],
        name: str = "eureka",
        *,
        interval: float = 5.0,
        app_map: dict[str, tuple[str, ...]] | None = None,
        timeout: float = 5.0,
    ) -> None:
        if not servers:
            raise RegistryError("eureka registry needs at least one server URL")
        self.name = name
        self.servers = [s if s.endswith("/") else s + "/" for s in servers]
        self.interval = interval
        self.timeout = timeout
        self.app_map = dict(app_map or {})
        #: APP -> instance id -> py_eureka_client Instance
        self.apps: dict[str, dict[str, Any]] = {}
        self.hub = SnapshotHub(name)
        self.skipped: dict[str, str] = {}
        self.connected = False
        self.error: str | None = None
        self.fetches = {"full": 0, "delta": 0, "failed": 0, "hash_mismatch": 0}
        self._need_full = True
        self._server_idx = 0
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[None] | None = None
        self._last_ok: float | None = None

    @classmethod
    def from_url(cls, url: str, name: str) -> EurekaRegistry:
        u = urlsplit(url)
        params = dict(parse_qsl(u.query, keep_blank_values=True))
        scheme = "https" if params.get("secure", "").lower() in ("1", "true", "yes") else "http"
        netloc = u.netloc
        auth, _, hosts = netloc.rpartition("@")
        if not hosts:
            raise RegistryError(f"eureka URL needs host:port: {url!r}")
        path = u.path.rstrip("/") or "/eureka"
        servers = [
            f"{scheme}://{auth + '@' if auth else ''}{h.strip()}{path}/"
            for h in hosts.split(",")
            if h.strip()
        ]
        return cls(
            servers,
            name,
            interval=_float_param(params, "interval", 5.0),
            app_map=parse_map(params.get("map", "")),
            timeout=_float_param(params, "timeout", 5.0),
        )

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            # bounded: a fetch stuck in a client library must not hold the shutdown
            await asyncio.wait({task}, timeout=2.0)

    def refresh(self) -> None:
        """Fetch now instead of at the next interval (tests, admin endpoints)."""
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def _nap(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        self._wake = fut = loop.create_future()
        timer = loop.call_later(delay, lambda: fut.done() or fut.set_result(None))
        try:
            await fut
        finally:
            timer.cancel()

    async def _run(self) -> None:
        backoff = 0.2
        while True:
            try:
                await self.fetch_once()
                backoff = 0.2
                delay = self.interval
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self._failed(e)
                delay = min(backoff, max(self.interval, 5.0))
                backoff = min(backoff * 2, 30.0)
            await self._nap(delay)

    def _failed(self, e: Exception) -> None:
        self.fetches["failed"] += 1
        msg = f"eureka {_redact(self.servers[self._server_idx])}: {type(e).__name__}: {e}"
        if self.connected or self.error != msg:
            log.warning("%s: %s", self.name, msg)
        self.connected = False
        self.error = msg
        self._need_full = True
        self._server_idx = (self._server_idx + 1) % len(self.servers)
        self.hub.lost(msg)

    async def fetch_once(self) -> None:
        """One poll: full or delta (then full again on a hash mismatch); publishes."""
        server = self.servers[self._server_idx]
        if self._need_full:
            await self._full(server)
        else:
            delta = await asyncio.wait_for(eureka_basic.get_delta(server), self.timeout)
            if delta is None:
                raise RegistryError("delta answer is not <applications>")
            self.fetches["delta"] += 1
            self._merge(delta)
            if self.hashcode() != (delta.appsHashcode or ""):
                self.fetches["hash_mismatch"] += 1
                await self._full(server)
        self.connected = True
        self.error = None
        self._last_ok = time.time()
        self.hub.publish(self.endpoints_for)

    async def _full(self, server: str) -> None:
        apps = await asyncio.wait_for(eureka_basic.get_applications(server), self.timeout)
        if apps is None:
            raise RegistryError("registry answer is not <applications>")
        self.fetches["full"] += 1
        fresh: dict[str, dict[str, Any]] = {}
        for app in apps.applications:
            for inst in app.instances:
                fresh.setdefault((app.name or inst.app or "").upper(), {})[inst.instanceId] = inst
        self.apps = fresh
        self._need_full = False

    def _merge(self, delta: Any) -> None:
        for app in delta.applications:
            name = (app.name or "").upper()
            for inst in app.instances:
                action = (inst.actionType or "").upper()
                if action == "DELETED":
                    insts = self.apps.get(name)
                    if insts is not None:
                        insts.pop(inst.instanceId, None)
                        if not insts:
                            del self.apps[name]
                elif action in ("ADDED", "MODIFIED"):
                    self.apps.setdefault(name, {})[inst.instanceId] = inst

    def hashcode(self) -> str:
        counts: dict[str, int] = {}
        for insts in self.apps.values():
            for inst in insts.values():
                s = (inst.status or "").upper()
                counts[s] = counts.get(s, 0) + 1
        return "".join(f"{s}_{n}_" for s, n in sorted(counts.items()))

    # ---- instances -> endpoints ----------------------------------------------------------

    def endpoint_of(self, app: str, inst: Any) -> Endpoint:
        """An instance's Dubbo endpoint per the ``dubbo.*`` metadata (RegistryError if bad)."""
        meta: dict[str, str] = {
            str(k): str(v) for k, v in (inst.metadata or {}).items() if v is not None
        }
        host = inst.ipAddr or inst.hostName
        if not host:
            raise RegistryError("no ipAddr or hostName")
        raw_port = meta.get(META_PORT)
        if raw_port is not None:
            try:
                port = int(raw_port)
            except ValueError:
                raise RegistryError(f"{META_PORT}={raw_port!r} is not a port") from None
        elif inst.port is not None and inst.port.enabled:
            port = int(inst.port.port)
        else:
            raise RegistryError(f"no {META_PORT} metadata and no enabled port")
        if not 0 < port < 65536:
            raise RegistryError(f"port {port} out of range")
        protocol = meta.get(META_PROTOCOL, "dubbo").lower()
        if protocol not in PROTOCOLS:
            raise RegistryError(f"{META_PROTOCOL}={protocol!r}: expected dubbo or tri")
        try:
            weight = int(meta.get(META_WEIGHT) or DEFAULT_WEIGHT)
        except ValueError:
            raise RegistryError(f"{META_WEIGHT}={meta.get(META_WEIGHT)!r}") from None
        meta["eureka.app"] = app
        meta["eureka.instanceId"] = str(inst.instanceId)
        return Endpoint(
            host=host,
            port=port,
            protocol=protocol,
            weight=max(weight, 0),
            version=meta.get(META_VERSION, ""),
            group=meta.get(META_GROUP, ""),
            methods=tuple(m for m in meta.get(META_METHODS, "").split(",") if m),
            metadata=MappingProxyType(meta),
        )

    @staticmethod
    def interfaces_of(inst: Any) -> list[str]:
        raw = (inst.metadata or {}).get(META_INTERFACES) or ""
        return [p.strip() for p in str(raw).split(",") if p.strip()]

    def endpoints_for(self, service: ServiceKey) -> tuple[Endpoint, ...]:
        mapped = self.app_map.get(service.interface, ())
        out: list[Endpoint] = []
        for app, insts in self.apps.items():
            for inst in insts.values():
                if (inst.status or "").upper() != "UP":
                    continue
                if app not in mapped and service.interface not in self.interfaces_of(inst):
                    continue
                key = f"{app}/{inst.instanceId}"
                try:
                    ep = self.endpoint_of(app, inst)
                except (RegistryError, TypeError, ValueError) as e:
                    if self.skipped.get(key) != str(e):
                        log.warning("%s: skipping %s: %s", self.name, key, e)
                    self.skipped[key] = str(e)
                    continue
                self.skipped.pop(key, None)
                if matches(ep, service):
                    out.append(ep)
        out.sort(key=lambda e: (e.host, e.port, e.protocol))
        return tuple(out)

    # ---- Registry API --------------------------------------------------------------------

    def subscribe(self, service: ServiceKey, listener: Listener) -> Snapshot | None:
        return self.hub.subscribe(service, listener, self.endpoints_for)

    def unsubscribe(self, service: ServiceKey, listener: Listener) -> None:
        self.hub.unsubscribe(service, listener)

    async def list_services(self) -> list[str]:
        if not self.hub.loaded:
            try:
                await self.fetch_once()
            except Exception as e:
                raise RegistryError(f"{self.name}: {type(e).__name__}: {e}") from None
        names = {
            i for insts in self.apps.values() for x in insts.values() for i in self.interfaces_of(x)
        }
        names.update(i for i, apps in self.app_map.items() if any(a in self.apps for a in apps))
        return sorted(names)

    async def lookup(self, service: ServiceKey, timeout: float = 5.0) -> Snapshot:
        if not self.hub.loaded and self._task is None:
            try:
                await self.fetch_once()
            except Exception as e:
                raise RegistryError(f"{self.name}: {type(e).__name__}: {e}") from None
            return Snapshot(service, self.endpoints_for(service))
        return await super().lookup(service, timeout)

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": type(self).__name__,
            "servers": [_redact(s) for s in self.servers],
            "connected": self.connected,
            "error": self.error,
            "last_ok": self._last_ok,
            "apps": {a: len(i) for a, i in sorted(self.apps.items())},
            "fetches": dict(self.fetches),
            "subscriptions": len(self.hub.listeners),
            "skipped": dict(self.skipped),
        }
