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
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from py_eureka_client import http_client

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
from .checks import (
    ANY_SERVICE,
    check_host,
    check_metadata,
    check_port,
    check_protocol,
    check_text,
    check_weight,
    skipped_text,
)
from .hub import SnapshotHub
from .records import MISSING, TOO_LARGE, RecordRejected

log = logging.getLogger("tribridge.registry.eureka")

META_INTERFACES = "dubbo.interfaces"
META_PORT = "dubbo.port"
META_PROTOCOL = "dubbo.protocol"
META_VERSION = "dubbo.version"
META_GROUP = "dubbo.group"
META_WEIGHT = "dubbo.weight"
META_METHODS = "dubbo.methods"
PROTOCOLS = ("dubbo", "tri")


#: an ``apps/`` answer larger than this is refused (a whole fetch, last-known-good kept)
MAX_ANSWER = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class EurekaInstance:
    """One ``<instance>`` with the fields routing reads, checked (``parse_instance``)."""

    instance_id: str
    status: str
    host: str = ""
    port: int | None = None  # the Eureka ``port`` when enabled
    metadata: dict[str, str] = field(default_factory=dict)
    action: str = ""
    #: why the record cannot route (kept so the status hash still counts it)
    rejected: RecordRejected | None = None


@dataclass(slots=True)
class Applications:
    """One ``apps/`` or ``apps/delta`` answer: instances per APP, and what was unusable."""

    apps: dict[str, dict[str, EurekaInstance]] = field(default_factory=dict)
    hashcode: str = ""
    unkeyed: Counter[str] = field(default_factory=Counter)  # statuses of id-less instances


def _child_text(node: ET.Element, tag: str) -> str | None:
    el = node.find(tag)
    return None if el is None else (el.text or "")


def parse_instance(node: ET.Element) -> EurekaInstance:
    """An ``<instance>`` element → ``EurekaInstance``; ``RecordRejected`` says why not.
    A record whose id and status are readable but whose Dubbo fields are not comes back
    with ``rejected`` set, so the status hash still matches the server's."""
    iid = check_text(_child_text(node, "instanceId"), "instanceId", 256)
    if not iid:
        raise RecordRejected(MISSING, "instance without instanceId")
    status = check_text(_child_text(node, "status"), "status", 32).upper()
    try:
        ip = _child_text(node, "ipAddr")
        name = _child_text(node, "hostName")
        host = check_host(ip or name or None, "ipAddr/hostName")
        port: int | None = None
        pel = node.find("port")
        if pel is not None and (pel.get("enabled") or "").lower() == "true":
            port = check_port(pel.text, "port")
        mel = node.find("metadata")
        if mel is not None and len(mel) > 512:
            raise RecordRejected(TOO_LARGE, f"metadata has {len(mel)} entries (limit 512)")
        meta = check_metadata({c.tag: c.text or "" for c in mel} if mel is not None else {})
        action = check_text(_child_text(node, "actionType"), "actionType", 32).upper()
        return EurekaInstance(iid, status, host, port, meta, action)
    except RecordRejected as e:
        return EurekaInstance(
            iid,
            status,
            action=(_child_text(node, "actionType") or "")[:32].upper(),
            rejected=e,
        )


def parse_applications(body: str | bytes) -> tuple[Applications, list[tuple[str, RecordRejected]]]:
    """An ``<applications>`` document → instances per APP plus (key, reason) rejects.
    Raises ``RegistryError`` only when the document as a whole is unusable."""
    if len(body) > MAX_ANSWER:
        raise RegistryError(f"answer of {len(body)} bytes (limit {MAX_ANSWER})")
    head = body[:4096] if isinstance(body, str) else body[:4096].decode("latin-1")
    if "<!DOCTYPE" in head.upper() or "<!ENTITY" in head.upper():
        raise RegistryError("answer declares a DTD (Eureka never does)")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        raise RegistryError(f"answer is not XML: {e}") from None
    if root.tag != "applications":
        raise RegistryError("answer is not <applications>")
    out = Applications(hashcode=(_child_text(root, "apps__hashcode") or "")[:4096])
    rejects: list[tuple[str, RecordRejected]] = []
    for ai, app_el in enumerate(root.iterfind("application")):
        try:
            app = check_text(_child_text(app_el, "name"), "application name", 256).upper()
        except RecordRejected as e:
            rejects.append((f"application[{ai}]", e))
            continue
        for ii, node in enumerate(app_el.iterfind("instance")):
            try:
                inst = parse_instance(node)
            except RecordRejected as e:
                status = (_child_text(node, "status") or "")[:32].upper()
                out.unkeyed[status] += 1
                rejects.append((f"{app}/instance[{ii}]", e))
                continue
            if inst.rejected is not None:
                rejects.append((f"{app}/{inst.instance_id}", inst.rejected))
            out.apps.setdefault(app, {})[inst.instance_id] = inst
    return out, rejects


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
        #: APP -> instance id -> checked instance record
        self.apps: dict[str, dict[str, EurekaInstance]] = {}
        self.unkeyed: Counter[str] = Counter()
        self.hub = SnapshotHub(name)
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
            delta, rejects = await self._get(server + "apps/delta")
            self.fetches["delta"] += 1
            self._report(rejects)
            self._merge(delta)
            if self.hashcode() != delta.hashcode:
                self.fetches["hash_mismatch"] += 1
                await self._full(server)
        self.connected = True
        self.error = None
        self._last_ok = time.time()
        self.hub.publish(self.endpoints_for)

    async def _get(self, url: str) -> tuple[Applications, list[tuple[str, RecordRejected]]]:
        """GET an ``<applications>`` answer (py_eureka_client's HTTP client: auth, TLS) and
        parse it ourselves, one instance at a time: the library's parser fails the whole
        answer on one malformed instance, which would freeze discovery for everyone."""
        res = await asyncio.wait_for(http_client.http_client.urlopen(url), self.timeout)
        return parse_applications(res.body_text)

    def _report(self, rejects: list[tuple[str, RecordRejected]]) -> None:
        for key, reason in rejects:
            self.skips.add(ANY_SERVICE, key, reason)

    async def _full(self, server: str) -> None:
        apps, rejects = await self._get(server + "apps/")
        self.fetches["full"] += 1
        self.apps = apps.apps
        self.unkeyed = apps.unkeyed
        self._need_full = False
        # records gone since the last full view are no longer reported; the ones still
        # there keep their entry (so they are neither counted nor logged again)
        keep = {f"{a}/{i}" for a, insts in self.apps.items() for i in insts}
        keep.update(k for k, _ in rejects)
        for r in self.skips.records(ANY_SERVICE):
            if r.where not in keep:
                self.skips.clear(ANY_SERVICE, r.where)
        self._report(rejects)

    def _merge(self, delta: Applications) -> None:
        for name, insts_d in delta.apps.items():
            for inst in insts_d.values():
                if inst.action == "DELETED":
                    insts = self.apps.get(name)
                    if insts is not None:
                        insts.pop(inst.instance_id, None)
                        if not insts:
                            del self.apps[name]
                    self.skips.clear(ANY_SERVICE, f"{name}/{inst.instance_id}")
                elif inst.action in ("ADDED", "MODIFIED"):
                    self.apps.setdefault(name, {})[inst.instance_id] = inst

    def hashcode(self) -> str:
        counts: Counter[str] = Counter(self.unkeyed)
        for insts in self.apps.values():
            for inst in insts.values():
                counts[inst.status] += 1
        return "".join(f"{s}_{n}_" for s, n in sorted(counts.items()) if n)

    # ---- instances -> endpoints ----------------------------------------------------------

    def endpoint_of(self, app: str, inst: EurekaInstance) -> Endpoint:
        """An instance's Dubbo endpoint per the ``dubbo.*`` metadata (RecordRejected if bad)."""
        if inst.rejected is not None:
            raise inst.rejected
        meta = dict(inst.metadata)
        if META_PORT in meta:
            port = check_port(meta[META_PORT], META_PORT)
        elif inst.port is not None:
            port = inst.port
        else:
            raise RecordRejected(MISSING, f"no {META_PORT} metadata and no enabled port")
        protocol = check_protocol(meta.get(META_PROTOCOL), "dubbo", META_PROTOCOL)
        weight = check_weight(meta.get(META_WEIGHT), DEFAULT_WEIGHT, META_WEIGHT)
        version = check_text(meta.get(META_VERSION), META_VERSION, 128)
        group = check_text(meta.get(META_GROUP), META_GROUP, 128)
        meta["eureka.app"] = app
        meta["eureka.instanceId"] = inst.instance_id
        return Endpoint(
            host=inst.host,
            port=port,
            protocol=protocol,
            weight=weight,
            version=version,
            group=group,
            methods=tuple(m for m in meta.get(META_METHODS, "").split(",") if m),
            metadata=MappingProxyType(meta),
        )

    @staticmethod
    def interfaces_of(inst: EurekaInstance) -> list[str]:
        raw = inst.metadata.get(META_INTERFACES) or ""
        return [p.strip() for p in raw.split(",") if p.strip()]

    def endpoints_for(self, service: ServiceKey) -> tuple[Endpoint, ...]:
        mapped = self.app_map.get(service.interface, ())
        out: list[Endpoint] = []
        for app, insts in self.apps.items():
            for inst in insts.values():
                if inst.status != "UP":
                    continue
                if app not in mapped and service.interface not in self.interfaces_of(inst):
                    continue
                key = f"{app}/{inst.instance_id}"
                try:
                    ep = self.endpoint_of(app, inst)
                except RecordRejected as e:
                    self.skips.add(ANY_SERVICE, key, e)
                    continue
                self.skips.clear(ANY_SERVICE, key)
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
            "skipped": skipped_text(self.skips),
            "skipped_records": self.skips.summary(),
        }
