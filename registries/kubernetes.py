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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

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
    MAX_ENTRIES,
    check_host,
    check_port,
    check_protocol,
    check_text,
    check_weight,
    skipped_text,
)
from .hub import SnapshotHub
from .records import BAD_JSON, BAD_TYPE, MISSING, TOO_LARGE, RecordRejected

log = logging.getLogger("tribridge.registry.kubernetes")

ANN_INTERFACES = "tribridge.io/interfaces"
ANN_VERSION = "tribridge.io/version"
ANN_GROUP = "tribridge.io/group"
ANN_WEIGHT = "tribridge.io/weight"
ANN_PROTOCOL = "tribridge.io/protocol"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
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


def port_protocol(port: dict[str, Any], single: bool, default: str) -> str | None:
    name = str(port.get("name") or "").lower()
    app = str(port.get("appProtocol") or "").lower()
    if name == "dubbo" or name.startswith("dubbo-") or app == "dubbo":
        return "dubbo"
    if (
        name in ("tri", "triple", "grpc")
        or name.startswith(("tri-", "triple-", "grpc-"))
        or app in ("grpc", "tri", "triple", "kubernetes.io/h2c")
    ):
        return "tri"
    if not name and single:
        return default
    return None


# ---- untrusted objects -> the shapes routing reads ------------------------------------------
#
# Anyone allowed to create a Service or an EndpointSlice in the namespace can write anything
# into it.  Each object is cleaned when it enters the cache: what routing reads is rebuilt
# with checked types (a bad element, e.g. one address or one port, is dropped and reported;
# a bad object is refused whole), so reading the cache can never raise and one hostile
# object never stops the watch or the other Services.

_MAX_ITEMS = 1000  # endpoints per slice (the API's own limit), ports, subsets


def _dict(v: Any, what: str) -> dict[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise RecordRejected(BAD_TYPE, f"{what} is not an object ({type(v).__name__})")
    return v


def _list_of(v: Any, what: str) -> list[Any]:
    if v is None:
        return []
    if not isinstance(v, list):
        raise RecordRejected(BAD_TYPE, f"{what} is not a list ({type(v).__name__})")
    if len(v) > _MAX_ITEMS:
        raise RecordRejected(TOO_LARGE, f"{what} has {len(v)} items (limit {_MAX_ITEMS})")
    return v


def _name(obj: Any) -> str:
    md = _dict(_dict(obj, "object").get("metadata"), "metadata")
    name = md.get("name")
    if not isinstance(name, str) or not name or len(name) > 253 or not name.isprintable():
        raise RecordRejected(MISSING, "metadata.name missing or malformed")
    return name


def _clean_port(p: Any) -> dict[str, Any]:
    p = _dict(p, "port")
    out: dict[str, Any] = {"port": check_port(p.get("port"))}
    for k in ("name", "appProtocol"):
        if p.get(k) is not None:
            out[k] = check_text(p.get(k), k, 253)
    return out


def _clean_ports(
    v: Any, where: str, rejects: list[tuple[str, RecordRejected]]
) -> list[dict[str, Any]]:
    out = []
    for i, p in enumerate(_list_of(v, "ports")):
        try:
            out.append(_clean_port(p))
        except RecordRejected as e:
            rejects.append((f"{where}.ports[{i}]", e))
    return out


def _ref_name(ep: dict[str, Any]) -> str:
    ref = _dict(ep.get("targetRef"), "targetRef")
    return check_text(ref.get("name"), "targetRef.name", 253)


def clean_object(
    kind: str, obj: Any
) -> tuple[str, dict[str, Any], list[tuple[str, RecordRejected]]]:
    """(name, cleaned object, [(element, reason)] dropped) of one API object of ``kind``
    (services, endpointslices, endpoints); ``RecordRejected`` when the object is unusable."""
    name = _name(obj)
    md = obj["metadata"]
    rejects: list[tuple[str, RecordRejected]] = []
    where = f"{kind}/{name}"
    if kind == "services":
        ann = _dict(md.get("annotations"), "annotations")
        if len(ann) > MAX_ENTRIES:
            raise RecordRejected(TOO_LARGE, f"{len(ann)} annotations (limit {MAX_ENTRIES})")
        keep = {}
        for key in (ANN_INTERFACES, ANN_VERSION, ANN_GROUP, ANN_WEIGHT, ANN_PROTOCOL):
            if key in ann:
                # the interface list may be folded over lines in a manifest
                keep[key] = check_text(ann[key], key, strict=key != ANN_INTERFACES)
        if ANN_WEIGHT in keep:
            keep[ANN_WEIGHT] = str(check_weight(keep[ANN_WEIGHT], DEFAULT_WEIGHT, ANN_WEIGHT))
        if ANN_PROTOCOL in keep:
            keep[ANN_PROTOCOL] = check_protocol(keep[ANN_PROTOCOL], "dubbo", ANN_PROTOCOL)
        return name, {"metadata": {"name": name, "annotations": keep}}, rejects
    if kind == "endpointslices":
        labels = _dict(md.get("labels"), "labels")
        svc = check_text(labels.get(SERVICE_NAME_LABEL), SERVICE_NAME_LABEL, 253)
        ports = _clean_ports(obj.get("ports"), where, rejects)
        eps = []
        for i, ep in enumerate(_list_of(obj.get("endpoints"), "endpoints")):
            try:
                ep = _dict(ep, "endpoint")
                cond = _dict(ep.get("conditions"), "conditions")
                clean_cond = {}
                for c in ("ready", "serving", "terminating"):
                    if cond.get(c) is not None:
                        if not isinstance(cond[c], bool):
                            raise RecordRejected(BAD_TYPE, f"conditions.{c} is not a boolean")
                        clean_cond[c] = cond[c]
                addrs = [check_host(a) for a in _list_of(ep.get("addresses"), "addresses")]
                out = {"addresses": addrs, "conditions": clean_cond}
                if (ref := _ref_name(ep)) != "":
                    out["targetRef"] = {"name": ref}
                if ep.get("zone") is not None:
                    out["zone"] = check_text(ep.get("zone"), "zone", 253)
                eps.append(out)
            except RecordRejected as e:
                rejects.append((f"{where}.endpoints[{i}]", e))
        cleaned = {
            "metadata": {"name": name, "labels": {SERVICE_NAME_LABEL: svc}},
            "ports": ports,
            "endpoints": eps,
        }
        return name, cleaned, rejects
    if kind == "endpoints":
        subsets = []
        for j, sub in enumerate(_list_of(obj.get("subsets"), "subsets")):
            try:
                sub = _dict(sub, "subset")
                ports = _clean_ports(sub.get("ports"), f"{where}.subsets[{j}]", rejects)
                addrs = []
                for i, a in enumerate(_list_of(sub.get("addresses"), "addresses")):
                    try:
                        a = _dict(a, "address")
                        out = {"ip": check_host(a.get("ip"), "ip")}
                        if (ref := _ref_name(a)) != "":
                            out["targetRef"] = {"name": ref}
                        addrs.append(out)
                    except RecordRejected as e:
                        rejects.append((f"{where}.subsets[{j}].addresses[{i}]", e))
                subsets.append({"ports": ports, "addresses": addrs})
            except RecordRejected as e:
                rejects.append((f"{where}.subsets[{j}]", e))
        return name, {"metadata": {"name": name}, "subsets": subsets}, rejects
    raise RecordRejected(BAD_TYPE, f"unknown kind {kind!r}")


def parse_map(text: str) -> dict[str, tuple[str, ...]]:
    return parse_interface_map(text, "kubernetes", "service")


def _httpx() -> Any:
    """The httpx module lightkube's client adapter is built on (``httpx2`` in lightkube 1.x)."""
    from lightkube.config import client_adapter

    return client_adapter.httpx


def _csv(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


class KubernetesRegistry(Registry):
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

    # ---- objects -> endpoints ------------------------------------------------------------

    def services_for(self, interface: str) -> list[str]:
        names = list(self.svc_map.get(interface, ()))
        for name, svc in self.cache.get("services", {}).items():
            ann = (svc.get("metadata") or {}).get("annotations") or {}
            if interface in _csv(ann.get(ANN_INTERFACES)) and name not in names:
                names.append(name)
        return names

    def _addresses(self, svc_name: str) -> list[tuple[str, list[dict[str, Any]], dict[str, str]]]:
        """(address, ports, extra metadata) of every routable endpoint of a Service."""
        out = []
        if self.endpoint_kind == "endpointslices":
            # objects are cleaned on entry (clean_object): the shapes below are checked
            for sname, sl in self.cache.get("endpointslices", {}).items():
                if sl["metadata"]["labels"].get(SERVICE_NAME_LABEL) != svc_name:
                    continue
                ports = sl["ports"]
                for ep in sl["endpoints"]:
                    cond = ep["conditions"]
                    if cond.get("ready") is False or cond.get("terminating") is True:
                        continue
                    addrs = ep["addresses"]
                    if not addrs:
                        continue
                    extra = {"k8s.slice": sname}
                    ref = ep.get("targetRef") or {}
                    if ref.get("name"):
                        extra["k8s.pod"] = str(ref["name"])
                    if ep.get("zone"):
                        extra["k8s.zone"] = str(ep["zone"])
                    out.extend((str(a), ports, extra) for a in addrs)
        else:
            obj = self.cache.get("endpoints", {}).get(svc_name)
            for subset in (obj or {}).get("subsets") or []:
                ports = subset.get("ports") or []
                for addr in subset.get("addresses") or []:  # notReadyAddresses: never
                    extra = {}
                    ref = addr.get("targetRef") or {}
                    if ref.get("name"):
                        extra["k8s.pod"] = str(ref["name"])
                    if addr.get("ip"):
                        out.append((str(addr["ip"]), ports, extra))
        return out

    def endpoints_for(self, service: ServiceKey) -> tuple[Endpoint, ...]:
        result: dict[tuple[str, str, int, str, str], Endpoint] = {}  # one per export
        for svc_name in self.services_for(service.interface):
            svc = self.cache.get("services", {}).get(svc_name) or {}
            ann = (svc.get("metadata") or {}).get("annotations") or {}
            default_proto = (ann.get(ANN_PROTOCOL) or "dubbo").lower()
            try:
                weight = int(ann.get(ANN_WEIGHT) or DEFAULT_WEIGHT)
            except ValueError:  # checked on entry; kept for objects put in the cache by hand
                weight = DEFAULT_WEIGHT
            for addr, ports, extra in self._addresses(svc_name):
                for p in ports:
                    proto = port_protocol(p, len(ports) == 1, default_proto)
                    if proto is None:
                        continue
                    port = p.get("port")
                    if not isinstance(port, int) or not 0 < port < 65536:
                        continue
                    meta = {
                        "k8s.service": svc_name,
                        "k8s.namespace": self.namespace,
                        "k8s.port": str(p.get("name") or ""),
                        **extra,
                    }
                    ep = Endpoint(
                        host=addr,
                        port=port,
                        protocol=proto,
                        weight=weight,
                        version=ann.get(ANN_VERSION, ""),
                        group=ann.get(ANN_GROUP, ""),
                        metadata=MappingProxyType(meta),
                    )
                    if matches(ep, service):
                        result[ep.export_key] = ep
        return tuple(
            sorted(result.values(), key=lambda e: (e.host, e.port, e.protocol, e.group, e.version))
        )

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
                _csv(((svc.get("metadata") or {}).get("annotations") or {}).get(ANN_INTERFACES))
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
