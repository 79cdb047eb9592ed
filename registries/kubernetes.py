"""Providers from the Kubernetes API: EndpointSlices (Endpoints as fallback) and Services.

``kubernetes://?namespace=default`` (in-cluster: service-account token and CA, and
``KUBERNETES_SERVICE_HOST``/``PORT``), ``kubernetes://?kubeconfig=PATH&context=NAME``,
``kubernetes://HOST:PORT?namespace=ns[&kubeconfig=PATH]`` (``k8s://`` works too; a
HOST:PORT without kubeconfig is plain http, with one it overrides the cluster's server).

* Connection settings come from **lightkube**'s config layer (kubeconfig contexts, exec
  and token-file auth with rotation, in-cluster config, TLS); the list + watch loop is ours,
  because lightkube's ``watch`` can neither ask for bookmarks nor relist after ``410 Gone``
  (it restarts the watch without a version, which misses deletions made meanwhile).
* Per kind (Services, then EndpointSlices labelled ``kubernetes.io/service-name``, or
  Endpoints when the slice API answers 404, or with ``source=endpoints``): LIST, take the
  list's ``resourceVersion``, WATCH from it with ``allowWatchBookmarks``; bookmarks and events
  advance the version; a dropped stream resumes from it; ``410`` (an ``ERROR`` event or an
  HTTP status) clears the cache and relists.  While the API is unreachable, services keep
  their last-known-good endpoints with ``healthy=False``.
* An endpoint is routed when ``conditions.ready`` is not false and it is not
  ``terminating`` (serving-but-terminating pods finish their calls, get no new ones).
* Ports: a port named ``dubbo``/``dubbo-*`` (or appProtocol ``dubbo``) is Dubbo2; ``tri``,
  ``triple``, ``grpc`` (``-*`` suffixes, appProtocol ``grpc``/``kubernetes.io/h2c``) is
  Triple; other named ports are ignored; a single unnamed port uses the Service's
  ``tribridge.io/protocol`` annotation (default ``dubbo``).
* Interface -> Service: the Service annotation ``tribridge.io/interfaces: com.x.A,com.x.B``,
  or ``map=com.x.A:svc-a,com.x.B:svc-b`` in the URL.  ``tribridge.io/version``,
  ``tribridge.io/group`` and ``tribridge.io/weight`` annotations apply to all its endpoints.

This module is the API client (list + watch, the object cache); ``kubernetes_endpoints``
cleans the objects and maps them to endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from .base import Listener, Registry, RegistryError, ServiceKey, Snapshot, parse_interface_map
from .checks import ANY_SERVICE, skipped_text
from .hub import SnapshotHub
from .kubernetes_endpoints import (
    ANN_INTERFACES,
    SERVICE_NAME_LABEL,
    EndpointMapping,
    clean_object,
    split_csv,
)
from .records import BAD_JSON, BAD_TYPE, RecordRejected

log = logging.getLogger("tribridge.registry.kubernetes")

SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
WATCH_SECONDS = 300

PATHS = {
    "services": "/api/v1/namespaces/{ns}/services",
    "endpointslices": "/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices",
    "endpoints": "/api/v1/namespaces/{ns}/endpoints",
}


class Gone(Exception):
    """410: the resourceVersion is too old; relist."""


class NotServed(Exception):
    """404 on a collection: the API (e.g. discovery.k8s.io/v1) is not served."""


def parse_map(text: str) -> dict[str, tuple[str, ...]]:
    return parse_interface_map(text, "kubernetes", "service")


def _httpx() -> Any:
    """The httpx module lightkube's client adapter is built on (``httpx2`` in lightkube 1.x)."""
    from lightkube.config import client_adapter

    return client_adapter.httpx


class KubernetesRegistry(EndpointMapping, Registry):
    schemes = ("kubernetes", "k8s")

    def __init__(
        self,
        config: Any,  # lightkube SingleConfig
        name: str = "kubernetes",
        *,
        namespace: str | None = None,
        source: str = "auto",
        svc_map: dict[str, tuple[str, ...]] | None = None,
        watch_seconds: int = WATCH_SECONDS,
    ) -> None:
        if source not in ("auto", "endpointslices", "endpoints"):
            raise RegistryError(f"kubernetes: source={source!r}: auto, endpointslices, endpoints")
        self.name = name
        self.config = config
        self.namespace = namespace or getattr(config, "namespace", None) or "default"
        self.source = source
        self.svc_map = dict(svc_map or {})
        self.watch_seconds = watch_seconds
        self.hub = SnapshotHub(name)
        #: kind -> name -> object (dicts as the API sent them)
        self.cache: dict[str, dict[str, dict[str, Any]]] = {}
        self.rv: dict[str, str | None] = {}
        self.errors: dict[str, str] = {}
        self.counters = {"lists": 0, "watches": 0, "events": 0, "bookmarks": 0, "gone": 0}
        self.endpoint_kind = "endpoints" if source == "endpoints" else "endpointslices"
        self._loaded: set[str] = set()
        self._client: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._last_ok: float | None = None

    @classmethod
    def from_url(cls, url: str, name: str) -> KubernetesRegistry:
        from lightkube.config.kubeconfig import KubeConfig
        from lightkube.config.models import Cluster, User
        from lightkube.core.exceptions import ConfigError

        u = urlsplit(url)
        p = dict(parse_qsl(u.query, keep_blank_values=True))
        try:
            if p.get("kubeconfig"):
                kc = KubeConfig.from_file(p["kubeconfig"])
                cfg = kc.get(p.get("context") or None)
                if cfg is None:
                    raise RegistryError(f"kubeconfig {p['kubeconfig']}: no context")
                if u.netloc:
                    scheme = urlsplit(cfg.cluster.server).scheme or "https"
                    cfg.cluster.server = f"{scheme}://{u.netloc}"
            elif u.netloc:
                scheme = "https" if p.get("tls", "").lower() in ("1", "true") else "http"
                cfg = KubeConfig.from_one(
                    cluster=Cluster(server=f"{scheme}://{u.netloc}"),
                    user=User(),
                    namespace=p.get("namespace") or None,
                ).get()
            else:
                sa = p.get("serviceaccount", SERVICE_ACCOUNT)
                try:
                    cfg = KubeConfig.from_service_account(service_account=sa).get()
                except KeyError as e:
                    raise RegistryError(
                        f"kubernetes:// without host needs in-cluster config: {e} is not set"
                    ) from None
        except ConfigError as e:
            raise RegistryError(f"kubernetes config: {e}") from None
        try:
            watch_seconds = int(p.get("watch_seconds", WATCH_SECONDS))
        except ValueError:
            raise RegistryError("kubernetes URL: watch_seconds must be an integer") from None
        return cls(
            cfg,
            name,
            namespace=p.get("namespace") or None,
            source=p.get("source", "auto"),
            svc_map=parse_map(p.get("map", "")),
            watch_seconds=max(watch_seconds, 1),
        )

    # ---- lifecycle -----------------------------------------------------------------------

    def _http(self) -> Any:
        if self._client is None:
            from lightkube.config.client_adapter import AsyncClient, ConnectionParams

            self._client = AsyncClient(
                self.config, ConnectionParams(timeout=_httpx().Timeout(10.0), trust_env=False)
            )
        return self._client

    async def start(self) -> None:
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._follow("services")),
            loop.create_task(self._follow("endpoints-source")),
        ]

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        if tasks:
            # bounded: a request stuck in the HTTP client must not hold the shutdown
            await asyncio.wait(set(tasks), timeout=2.0)
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
            self._client = None

    # ---- list + watch --------------------------------------------------------------------

    def _selector(self, kind: str) -> dict[str, str]:
        return {"labelSelector": SERVICE_NAME_LABEL} if kind == "endpointslices" else {}

    async def _list(self, kind: str) -> None:
        path = PATHS[kind].format(ns=self.namespace)
        resp = await self._http().get(path, params=self._selector(kind))
        if resp.status_code == 404:
            raise NotServed(f"{path}: 404")
        if resp.status_code == 410:
            raise Gone(path)
        if resp.status_code != 200:
            raise RegistryError(f"LIST {path}: HTTP {resp.status_code} {resp.text[:200]}")
        try:
            doc = orjson.loads(resp.content)
        except orjson.JSONDecodeError as e:
            raise RegistryError(f"LIST {path}: not JSON: {e}") from None
        if not isinstance(doc, dict):
            raise RegistryError(f"LIST {path}: not a list object")
        items = doc.get("items")
        self.cache[kind] = {}
        for i, item in enumerate(items if isinstance(items, list) else []):
            self._admit(kind, item, f"{kind}[{i}]")
        lmd = doc.get("metadata")
        rv = lmd.get("resourceVersion") if isinstance(lmd, dict) else None
        self.rv[kind] = str(rv)[:64] if isinstance(rv, str | int) and rv != "" else None
        self.counters["lists"] += 1
        self._loaded.add(kind)

    async def _watch_lines(self, kind: str) -> AsyncIterator[bytes]:
        path = PATHS[kind].format(ns=self.namespace)
        params = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(self.watch_seconds),
            **self._selector(kind),
        }
        if self.rv.get(kind):
            params["resourceVersion"] = str(self.rv[kind])
        timeout = _httpx().Timeout(10.0, read=self.watch_seconds + 30.0)
        async with self._http().stream("GET", path, params=params, timeout=timeout) as resp:
            if resp.status_code == 410:
                raise Gone(path)
            if resp.status_code != 200:
                await resp.aread()
                raise RegistryError(f"WATCH {path}: HTTP {resp.status_code} {resp.text[:200]}")
            self.counters["watches"] += 1
            self._ok(kind)
            async for line in resp.aiter_lines():
                if line.strip():
                    yield line.encode() if isinstance(line, str) else line

    def _admit(self, kind: str, obj: Any, where: str) -> str | None:
        """Clean ``obj`` into the cache (True) or skip and report it; returns its name."""
        try:
            name, cleaned, rejects = clean_object(kind, obj)
        except RecordRejected as e:
            md = obj.get("metadata") if isinstance(obj, dict) else None
            raw = md.get("name") if isinstance(md, dict) else None
            key = f"{kind}/{raw}" if isinstance(raw, str) and raw else where
            self.skips.add(ANY_SERVICE, key, e)
            if isinstance(raw, str) and raw:
                # a bad version of a known object: the object no longer routes
                self.cache.setdefault(kind, {}).pop(raw, None)
                return raw
            return None
        # entries of this object that no longer apply go; the others stay (not recounted)
        still = {k for k, _ in rejects}
        for r in self.skips.records(ANY_SERVICE):
            k = r.where
            if (k == f"{kind}/{name}" or k.startswith(f"{kind}/{name}.")) and k not in still:
                self.skips.clear(ANY_SERVICE, k)
        for key, err in rejects:
            self.skips.add(ANY_SERVICE, key, err)
        self.cache.setdefault(kind, {})[name] = cleaned
        return name

    def _apply_event(self, kind: str, ev: Any) -> bool:
        """One watch event into the cache; True when routing may have changed."""
        if not isinstance(ev, dict):
            self.skips.add(ANY_SERVICE, f"{kind} watch", BAD_TYPE, "event is not an object")
            return False
        etype = ev.get("type")
        obj = ev.get("object")
        if not isinstance(obj, dict):
            self.skips.add(ANY_SERVICE, f"{kind} watch", BAD_TYPE, "event without object")
            return False
        if etype == "ERROR":
            if obj.get("code") == 410:
                raise Gone(str(obj.get("message")))
            raise RegistryError(f"watch ERROR: {obj.get('message')} ({obj.get('code')})")
        md = obj.get("metadata")
        md = md if isinstance(md, dict) else {}
        rv = md.get("resourceVersion")
        if isinstance(rv, str | int) and rv != "" and not isinstance(rv, bool):
            self.rv[kind] = str(rv)[:64]
        if etype == "BOOKMARK":
            self.counters["bookmarks"] += 1
            return False
        self.counters["events"] += 1
        if etype == "DELETED":
            name = md.get("name")
            if isinstance(name, str):
                self.cache.setdefault(kind, {}).pop(name, None)
                for r in self.skips.records(ANY_SERVICE):
                    if r.where == f"{kind}/{name}" or r.where.startswith(f"{kind}/{name}."):
                        self.skips.clear(ANY_SERVICE, r.where)
            return True
        if etype in ("ADDED", "MODIFIED"):
            return self._admit(kind, obj, f"{kind} event") is not None
        return False

    async def _follow(self, which: str) -> None:
        backoff = 0.1
        while True:
            kind = "services" if which == "services" else self.endpoint_kind
            try:
                if not self.rv.get(kind):
                    try:
                        await self._list(kind)
                    except NotServed:
                        if kind == "endpointslices" and self.source == "auto":
                            log.warning("%s: EndpointSlices not served, using Endpoints", self.name)
                            self.endpoint_kind = "endpoints"
                            continue
                        raise
                    self._ok(kind)
                async for line in self._watch_lines(kind):
                    try:
                        ev = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        self.skips.add(ANY_SERVICE, f"{kind} watch", BAD_JSON, "event is not JSON")
                        continue
                    if self._apply_event(kind, ev):
                        self._publish()
                    backoff = 0.1
                self._ok(kind)  # the server ended the watch: resume from self.rv
            except asyncio.CancelledError:
                raise
            except Gone:
                self.counters["gone"] += 1
                self.rv[kind] = None  # relist, then watch from the list's version
            except Exception as e:
                self._lost(kind, e)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    def _ok(self, kind: str) -> None:
        self.errors.pop(kind, None)
        self._last_ok = time.time()
        self._publish()

    def _lost(self, kind: str, e: Exception) -> None:
        msg = f"kubernetes {kind}: {type(e).__name__}: {e}"
        if self.errors.get(kind) != msg:
            log.warning("%s: %s", self.name, msg)
        self.errors[kind] = msg
        self.hub.lost(msg)

    def _publish(self) -> None:
        if self.errors or not {"services", self.endpoint_kind} <= self._loaded:
            return
        self.hub.publish(self.endpoints_for)

    # ---- Registry API --------------------------------------------------------------------

    def subscribe(self, service: ServiceKey, listener: Listener) -> Snapshot | None:
        return self.hub.subscribe(service, listener, self.endpoints_for)

    def unsubscribe(self, service: ServiceKey, listener: Listener) -> None:
        self.hub.unsubscribe(service, listener)

    async def _ensure_loaded(self) -> None:
        if {"services", self.endpoint_kind} <= self._loaded:
            return
        try:
            await self._list("services")
            try:
                await self._list(self.endpoint_kind)
            except NotServed:
                if self.source != "auto":
                    raise
                self.endpoint_kind = "endpoints"
                await self._list("endpoints")
        except Exception as e:
            raise RegistryError(f"{self.name}: {type(e).__name__}: {e}") from None

    async def list_services(self) -> list[str]:
        await self._ensure_loaded()
        names = set(self.svc_map)
        for svc in self.cache.get("services", {}).values():
            names.update(
                split_csv(
                    ((svc.get("metadata") or {}).get("annotations") or {}).get(ANN_INTERFACES)
                )
            )
        return sorted(names)

    async def lookup(self, service: ServiceKey, timeout: float = 5.0) -> Snapshot:
        if not self._tasks:
            await self._ensure_loaded()
            return Snapshot(service, self.endpoints_for(service))
        return await super().lookup(service, timeout)

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": type(self).__name__,
            "server": getattr(getattr(self.config, "cluster", None), "server", None),
            "namespace": self.namespace,
            "source": self.endpoint_kind,
            "connected": bool(self._loaded) and not self.errors,
            "errors": dict(self.errors),
            "last_ok": self._last_ok,
            "resource_versions": dict(self.rv),
            "counters": dict(self.counters),
            "objects": {k: len(v) for k, v in self.cache.items()},
            "subscriptions": len(self.hub.listeners),
            "skipped": skipped_text(self.skips),
            "skipped_records": self.skips.summary(),
        }
