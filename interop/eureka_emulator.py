"""A Eureka server (REST v2) in one process, for tests: no Eureka server runs on these machines.

It follows what Netflix's ``eureka-core`` resources do, closely enough that
the official clients work against it unmodified (``tests/interop/test_eureka_emulator.py`` drives
py-eureka-client and eureka-js-client against it):

* ``GET {base}/apps`` (full registry), ``/apps/delta`` (instances changed in the last
  ``delta_retention`` seconds, each once with its latest ``actionType`` — ``ADDED`` for any
  registration, ``MODIFIED`` for status/metadata changes, ``DELETED`` — and
  ``apps__hashcode`` of the *whole* registry so clients can reconcile), ``/apps/{APP}``, ``/apps/{APP}/{id}``,
  ``/instances/{id}``, ``/vips/{vip}``, ``/svips/{svip}``;
* ``POST /apps/{APP}`` register (204; 400 on a missing ``hostName``/``ipAddr``/``app``/
  ``dataCenterInfo``, or an ``app`` that is not the path's); JSON or XML bodies;
* ``PUT /apps/{APP}/{id}`` renew: 200, or 404 when the instance is unknown, its effective
  status is ``UNKNOWN`` or the client's ``lastDirtyTimestamp`` is newer than ours, which is
  what makes clients re-register;
* ``DELETE /apps/{APP}/{id}`` cancel; ``PUT|DELETE /apps/{APP}/{id}/status`` status
  overrides (``value=OUT_OF_SERVICE``; a delete without ``value`` leaves ``UNKNOWN`` until the
  client re-registers, as Eureka does); ``PUT /apps/{APP}/{id}/metadata?k=v``;
* the effective status follows Eureka's override rules: a self-reported ``DOWN`` or
  ``STARTING`` wins, else an override, else the status of a live ``UP``/``OUT_OF_SERVICE``
  lease (a re-registration cannot change it), else the reported status;
* leases expire after ``leaseInfo.durationInSecs`` without a renew (checked every
  ``eviction_interval`` seconds); there is no self-preservation mode and no response cache,
  so a change is visible on the next GET;
* responses are JSON when ``Accept`` mentions ``json``, else XML (py-eureka-client sends no
  Accept header and parses XML).

Tests use the Python API (``register``, ``set_override``, ``cancel``, ``restart`` …)
on the emulator's own event loop.  Standalone:
``python -m tribridge.interop.eureka_emulator --port 8761`` prints ``READY <port>``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import re
import sys
import time
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape, quoteattr

import orjson
from tribridge.http.messages import HttpLimits, Request, Response
from tribridge.http.server import HttpServer
from tribridge.interop.standalone import serve_until_signalled

UP, DOWN, STARTING, OUT_OF_SERVICE, UNKNOWN = "UP", "DOWN", "STARTING", "OUT_OF_SERVICE", "UNKNOWN"
STATUSES = frozenset((UP, DOWN, STARTING, OUT_OF_SERVICE, UNKNOWN))
ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"
DEFAULT_DC_CLASS = "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"
EMPTY_MAP = {"@class": "java.util.Collections$EmptyMap"}
_XML_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9._-]*$")


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Instance:
    """One registered instance as the server holds it (immutable; changes make copies)."""

    app: str
    instance_id: str
    host_name: str
    ip_addr: str
    port: int = 0
    port_enabled: bool = True
    secure_port: int = 443
    secure_port_enabled: bool = False
    status: str = UP  # self-reported
    overridden: str = UNKNOWN
    metadata: dict[str, str] = field(default_factory=dict)
    vip_address: str = ""
    secure_vip_address: str = ""
    home_page_url: str = ""
    status_page_url: str = ""
    health_check_url: str = ""
    dc_class: str = DEFAULT_DC_CLASS
    dc_name: str = "MyOwn"
    renewal_interval: int = 30
    duration: int = 90
    registered: int = 0
    last_renewal: int = 0
    service_up: int = 0
    last_updated: int = 0
    last_dirty: int = 0
    action: str = ADDED

    @property
    def effective_status(self) -> str:
        if self.status in (DOWN, STARTING):
            return self.status
        if self.overridden and self.overridden != UNKNOWN:
            return self.overridden
        return self.status


class BadInstance(ValueError):
    """A registration body Eureka would answer with 400."""


# ---------------------------------------------------------------------------- parsing


def _port_of(v: Any, default: int, enabled: bool) -> tuple[int, bool]:
    if v is None:
        return default, enabled
    if isinstance(v, dict):
        raw = v.get("$", default)
        en = v.get("@enabled", "true" if enabled else "false")
        return int(raw), str(en).lower() == "true"
    return int(v), enabled


def _int(v: Any, default: int) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return default


def _xml_to_dict(node: ET.Element) -> dict[str, Any]:
    """The XML form of an instance as the JSON form's dict (ports keep ``@enabled``)."""
    out: dict[str, Any] = {}
    for child in node:
        if child.tag in ("port", "securePort"):
            out[child.tag] = {"$": (child.text or "0").strip(), "@enabled": child.get("enabled")}
        elif child.tag == "dataCenterInfo":
            out[child.tag] = {"@class": child.get("class"), "name": child.findtext("name")}
        elif child.tag == "leaseInfo" or child.tag == "metadata":
            out[child.tag] = {c.tag: (c.text or "") for c in child}
        else:
            out[child.tag] = child.text or ""
    return out


def parse_instance(body: bytes, content_type: str, path_app: str) -> Instance:
    """A register body (``{"instance": {...}}`` or ``<instance>…</instance>``) -> Instance."""
    try:
        if "xml" in content_type or body.lstrip()[:1] == b"<":
            root = ET.fromstring(body)
            if root.tag != "instance":
                raise BadInstance(f"expected <instance>, got <{root.tag}>")
            d = _xml_to_dict(root)
        else:
            doc = orjson.loads(body)
            d = doc.get("instance") if isinstance(doc, dict) else None
            if not isinstance(d, dict):
                raise BadInstance('expected {"instance": {...}}')
    except (ET.ParseError, orjson.JSONDecodeError) as e:
        raise BadInstance(f"unreadable instance: {e}") from None
    host, ip, app = d.get("hostName"), d.get("ipAddr"), d.get("app")
    if not host:
        raise BadInstance("Missing hostname")
    if not ip:
        raise BadInstance("Missing ip address")
    if not app:
        raise BadInstance("Missing appName")
    if str(app).upper() != path_app.upper():
        raise BadInstance(f"Mismatched appName, expecting {path_app} but was {app}")
    dc = d.get("dataCenterInfo")
    if not isinstance(dc, dict) or not dc.get("name"):
        raise BadInstance("Missing dataCenterInfo Name")
    try:
        port, port_en = _port_of(d.get("port"), 7001, True)
        sport, sport_en = _port_of(d.get("securePort"), 7002, False)
    except (TypeError, ValueError):
        raise BadInstance("bad port") from None
    lease = d.get("leaseInfo") if isinstance(d.get("leaseInfo"), dict) else {}
    meta = d.get("metadata") if isinstance(d.get("metadata"), dict) else {}
    meta = {str(k): str(v) for k, v in meta.items() if k != "@class" and v is not None}
    status = str(d.get("status") or UP).upper()
    overridden = str(d.get("overriddenStatus") or d.get("overriddenstatus") or UNKNOWN).upper()
    return Instance(
        app=path_app.upper(),
        # InstanceInfo.getId(): the instanceId, else the host name
        instance_id=str(d.get("instanceId") or host),
        host_name=str(host),
        ip_addr=str(ip),
        port=port,
        port_enabled=port_en,
        secure_port=sport,
        secure_port_enabled=sport_en,
        status=status if status in STATUSES else UNKNOWN,
        overridden=overridden if overridden in STATUSES else UNKNOWN,
        metadata=meta,
        vip_address=str(d.get("vipAddress") or ""),
        secure_vip_address=str(d.get("secureVipAddress") or ""),
        home_page_url=str(d.get("homePageUrl") or ""),
        status_page_url=str(d.get("statusPageUrl") or ""),
        health_check_url=str(d.get("healthCheckUrl") or ""),
        dc_class=str(dc.get("@class") or DEFAULT_DC_CLASS),
        dc_name=str(dc["name"]),
        renewal_interval=_int(lease.get("renewalIntervalInSecs"), 30),
        duration=_int(lease.get("durationInSecs"), 90) or 90,
        last_dirty=_int(d.get("lastDirtyTimestamp"), 0),
    )


# ---------------------------------------------------------------------------- rendering


def _lease(i: Instance) -> dict[str, int]:
    return {
        "renewalIntervalInSecs": i.renewal_interval,
        "durationInSecs": i.duration,
        "registrationTimestamp": i.registered,
        "lastRenewalTimestamp": i.last_renewal,
        "evictionTimestamp": 0,
        "serviceUpTimestamp": i.service_up,
    }


def instance_json(i: Instance) -> dict[str, Any]:
    return {
        "instanceId": i.instance_id,
        "hostName": i.host_name,
        "app": i.app,
        "ipAddr": i.ip_addr,
        "status": i.effective_status,
        "overriddenStatus": i.overridden,
        "overriddenstatus": i.overridden,
        "port": {"$": i.port, "@enabled": "true" if i.port_enabled else "false"},
        "securePort": {
            "$": i.secure_port,
            "@enabled": "true" if i.secure_port_enabled else "false",
        },
        "countryId": 1,
        "dataCenterInfo": {"@class": i.dc_class, "name": i.dc_name},
        "leaseInfo": _lease(i),
        "metadata": dict(i.metadata) if i.metadata else EMPTY_MAP,
        "homePageUrl": i.home_page_url,
        "statusPageUrl": i.status_page_url,
        "healthCheckUrl": i.health_check_url,
        "vipAddress": i.vip_address,
        "secureVipAddress": i.secure_vip_address,
        "isCoordinatingDiscoveryServer": "false",
        "lastUpdatedTimestamp": str(i.last_updated),
        "lastDirtyTimestamp": str(i.last_dirty),
        "actionType": i.action,
    }


def _el(tag: str, text: Any) -> str:
    return f"<{tag}>{escape(str(text))}</{tag}>"


def instance_xml(i: Instance) -> str:
    meta = "".join(_el(k, v) for k, v in i.metadata.items() if _XML_NAME.match(k))
    lease = "".join(_el(k, v) for k, v in _lease(i).items())
    return (
        "<instance>"
        + _el("instanceId", i.instance_id)
        + _el("hostName", i.host_name)
        + _el("app", i.app)
        + _el("ipAddr", i.ip_addr)
        + _el("status", i.effective_status)
        + _el("overriddenstatus", i.overridden)
        + f'<port enabled="{"true" if i.port_enabled else "false"}">{i.port}</port>'
        + f'<securePort enabled="{"true" if i.secure_port_enabled else "false"}">'
        f"{i.secure_port}</securePort>"
        + _el("countryId", 1)
        + f"<dataCenterInfo class={quoteattr(i.dc_class)}>{_el('name', i.dc_name)}</dataCenterInfo>"
        + f"<leaseInfo>{lease}</leaseInfo>"
        + f"<metadata>{meta}</metadata>"
        + _el("homePageUrl", i.home_page_url)
        + _el("statusPageUrl", i.status_page_url)
        + _el("healthCheckUrl", i.health_check_url)
        + _el("vipAddress", i.vip_address)
        + _el("secureVipAddress", i.secure_vip_address)
        + _el("isCoordinatingDiscoveryServer", "false")
        + _el("lastUpdatedTimestamp", i.last_updated)
        + _el("lastDirtyTimestamp", i.last_dirty)
        + _el("actionType", i.action)
        + "</instance>"
    )


def _group(instances: list[Instance]) -> dict[str, list[Instance]]:
    apps: dict[str, list[Instance]] = {}
    for i in instances:
        apps.setdefault(i.app, []).append(i)
    return apps


def hashcode(instances: list[Instance], extra_statuses: Iterable[str] = ()) -> str:
    """``Applications.getReconcileHashCode``: ``STATUS_count_`` for each status, sorted."""
    counts: dict[str, int] = {}
    for s in [i.effective_status for i in instances] + list(extra_statuses):
        counts[s] = counts.get(s, 0) + 1
    return "".join(f"{s}_{n}_" for s, n in sorted(counts.items()))


def render_applications(
    instances: list[Instance],
    version: int,
    apps_hash: str,
    as_json: bool,
    raw: Iterable[tuple[str, str, str]] = (),
) -> Response:
    """``raw``: (app, status, ``<instance>`` XML) served verbatim (hostile-record tests)."""
    apps = _group(instances)
    if as_json:
        doc = {
            "applications": {
                "versions__delta": str(version),
                "apps__hashcode": apps_hash,
                "application": [
                    {"name": name, "instance": [instance_json(i) for i in insts]}
                    for name, insts in apps.items()
                ],
            }
        }
        return Response(200, orjson.dumps(doc))
    body = (
        "<applications>"
        + _el("versions__delta", version)
        + _el("apps__hashcode", apps_hash)
        + "".join(
            "<application>"
            + _el("name", name)
            + "".join(map(instance_xml, insts))
            + "</application>"
            for name, insts in apps.items()
        )
        + "".join(f"<application>{_el('name', app)}{xml}</application>" for app, _s, xml in raw)
        + "</applications>"
    )
    return Response(200, body.encode(), content_type="application/xml")


def render_application(name: str, insts: list[Instance], as_json: bool) -> Response:
    if as_json:
        doc = {"application": {"name": name, "instance": [instance_json(i) for i in insts]}}
        return Response(200, orjson.dumps(doc))
    body = "<application>" + _el("name", name) + "".join(map(instance_xml, insts))
    return Response(200, (body + "</application>").encode(), content_type="application/xml")


def render_instance(i: Instance, as_json: bool) -> Response:
    if as_json:
        return Response(200, orjson.dumps({"instance": instance_json(i)}))
    return Response(200, instance_xml(i).encode(), content_type="application/xml")


def _plain(status: int, text: str = "") -> Response:
    return Response(status, text.encode(), content_type="text/plain")


# ---------------------------------------------------------------------------- the server


class EurekaEmulator:
    """The registry, its HTTP front (``HttpServer``) and the test API, on one event loop."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        base: str = "/eureka",
        eviction_interval: float = 1.0,
        delta_retention: float = 180.0,
    ) -> None:
        self.host = host
        self._port = port
        self.base = "/" + base.strip("/") if base.strip("/") else ""
        self.eviction_interval = eviction_interval
        self.delta_retention = delta_retention
        self.apps: dict[str, dict[str, Instance]] = {}
        #: (monotonic time, instance copy with actionType) for /apps/delta
        self.recent: deque[tuple[float, Instance]] = deque()
        self._versions = itertools.count(1)
        self.version = 0
        #: status overrides by instance id survive re-registration, as in Eureka
        self.overrides: dict[str, str] = {}
        self.requests: dict[str, int] = {}
        #: (app, status, raw ``<instance>`` XML) served as-is beside the registry's own
        #: instances (XML answers only), and counted in the status hash as Eureka would:
        #: what a hostile or broken registrant can make a real server return
        self.raw_instances: list[tuple[str, str, str]] = []
        self._http: HttpServer | None = None
        self._evictor: asyncio.Task[None] | None = None

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self) -> EurekaEmulator:
        self._http = HttpServer(self.handle, HttpLimits(max_body_bytes=256 * 1024))
        await self._http.start(self.host, self._port)
        self._port = self._http.port
        self._evictor = asyncio.get_running_loop().create_task(self._evict_loop())
        return self

    async def stop(self) -> None:
        if self._evictor is not None:
            self._evictor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._evictor
            self._evictor = None
        if self._http is not None:
            await self._http.shutdown(0.5)
            self._http = None

    async def restart(self, *, down_for: float = 0.0, keep_registry: bool = False) -> None:
        """Stop, stay down ``down_for`` seconds, start on the same port.  A real Eureka
        keeps its registry only in memory, so by default it comes back empty and clients
        re-register when their next renew gets 404."""
        await self.stop()
        if not keep_registry:
            self.apps.clear()
            self.recent.clear()
        if down_for:
            await asyncio.sleep(down_for)
        await self.start()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}{self.base}/"

    @property
    def running(self) -> bool:
        return self._http is not None

    # ---- registry operations (HTTP and tests) --------------------------------------------

    def all_instances(self) -> list[Instance]:
        return [i for insts in self.apps.values() for i in insts.values()]

    def get(self, app: str, instance_id: str) -> Instance | None:
        return self.apps.get(app.upper(), {}).get(instance_id)

    def _changed(self, inst: Instance, action: str) -> Instance:
        now = _now_ms()
        inst = replace(inst, action=action, last_updated=now)
        if action == DELETED:
            self.apps.get(inst.app, {}).pop(inst.instance_id, None)
            if inst.app in self.apps and not self.apps[inst.app]:
                del self.apps[inst.app]
        else:
            self.apps.setdefault(inst.app, {})[inst.instance_id] = inst
        self.version = next(self._versions)
        self.recent.append((time.monotonic(), inst))
        self._prune()
        return inst

    def _prune(self) -> None:
        limit = time.monotonic() - self.delta_retention
        while self.recent and self.recent[0][0] < limit:
            self.recent.popleft()

    def add(self, inst: Instance) -> Instance:
        now = _now_ms()
        old = self.get(inst.app, inst.instance_id)
        override = self.overrides.get(inst.instance_id)
        if override is None and inst.overridden != UNKNOWN:
            self.overrides[inst.instance_id] = override = inst.overridden
        status = inst.status
        if (
            old is not None
            and override is None
            and status not in (DOWN, STARTING)
            and old.effective_status in (UP, OUT_OF_SERVICE)
        ):
            # Eureka's LeaseExistsRule: over a live UP / OUT_OF_SERVICE lease a re-registration
            # keeps that status, so a client reporting OUT_OF_SERVICE itself stays UP (the
            # real server showed this; OUT_OF_SERVICE is for overrides)
            status = old.effective_status
        inst = replace(
            inst,
            status=status,
            overridden=override or UNKNOWN,
            registered=old.registered if old else now,
            last_renewal=now,
            service_up=(old.service_up if old else 0) or (now if inst.status == UP else 0),
            last_dirty=inst.last_dirty or now,
        )
        # Eureka marks every registration ADDED, a re-registration too (the real server showed
        # it); MODIFIED is for status overrides
        return self._changed(inst, ADDED)

    def register(
        self,
        app: str,
        instance_id: str,
        port: int,
        *,
        ip: str = "127.0.0.1",
        metadata: dict[str, str] | None = None,
        status: str = UP,
        duration: int = 90,
    ) -> Instance:
        """Register as a client would (no HTTP), e.g. for a provider with no Eureka client."""
        return self.add(
            Instance(
                app=app.upper(),
                instance_id=instance_id,
                host_name=ip,
                ip_addr=ip,
                port=port,
                status=status,
                metadata=dict(metadata or {}),
                vip_address=app.lower(),
                duration=duration,
            )
        )

    def renew(self, app: str, instance_id: str, last_dirty: int | None = None) -> bool:
        inst = self.get(app, instance_id)
        if inst is None or inst.effective_status == UNKNOWN:
            return False
        if last_dirty is not None and last_dirty > inst.last_dirty:
            return False  # the client knows something newer: it must re-register
        self.apps[inst.app][instance_id] = replace(inst, last_renewal=_now_ms())
        return True

    def cancel(self, app: str, instance_id: str) -> bool:
        inst = self.get(app, instance_id)
        if inst is None:
            return False
        self._changed(inst, DELETED)
        return True

    def set_override(self, app: str, instance_id: str, status: str) -> bool:
        inst = self.get(app, instance_id)
        if inst is None or status not in STATUSES:
            return False
        self.overrides[instance_id] = status
        self._changed(replace(inst, overridden=status), MODIFIED)
        return True

    def delete_override(self, app: str, instance_id: str, value: str | None = None) -> bool:
        inst = self.get(app, instance_id)
        if inst is None:
            return False
        self.overrides.pop(instance_id, None)
        new = replace(inst, overridden=UNKNOWN, status=value if value in STATUSES else UNKNOWN)
        self._changed(new, MODIFIED)
        return True

    def update_metadata(self, app: str, instance_id: str, updates: dict[str, str]) -> bool:
        inst = self.get(app, instance_id)
        if inst is None:
            return False
        self._changed(replace(inst, metadata={**inst.metadata, **updates}), MODIFIED)
        return True

    def evict(self) -> list[Instance]:
        now = _now_ms()
        gone = [i for i in self.all_instances() if now > i.last_renewal + i.duration * 1000]
        for i in gone:
            self._changed(i, DELETED)
        return gone

    async def _evict_loop(self) -> None:
        while True:
            await asyncio.sleep(self.eviction_interval)
            self.evict()
            self._prune()

    # ---- HTTP ----------------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        path = req.path
        if self.base:
            if not path.startswith(self.base + "/"):
                return _plain(404, f"not under {self.base}/")
            path = path[len(self.base) :]
        parts = [p for p in path.split("/") if p]
        query = dict(parse_qsl(req.query, keep_blank_values=True))
        as_json = "json" in req.headers.get("accept", "")
        key = f"{req.method} {'/'.join(parts[:1] + (['delta'] if parts[1:2] == ['delta'] else []))}"
        self.requests[key] = self.requests.get(key, 0) + 1
        try:
            return self._route(req, parts, query, as_json)
        except BadInstance as e:
            return _plain(400, str(e))

    def _route(
        self, req: Request, parts: list[str], query: dict[str, str], as_json: bool
    ) -> Response:
        m = req.method
        if not parts:
            return _plain(404)
        head, rest = parts[0], parts[1:]
        if head == "apps":
            if not rest and m == "GET":
                insts = self.all_instances()
                raw = self.raw_instances
                h = hashcode(insts, [st for _a, st, _x in raw])
                return render_applications(insts, self.version, h, as_json, raw)
            if rest == ["delta"] and m == "GET":
                self._prune()
                # one entry per instance, the latest change winning, as Eureka's delta
                # (Application.addInstance keyed by id) gives it
                latest = {(i.app, i.instance_id): i for _, i in self.recent}
                changed = list(latest.values())
                full_hash = hashcode(
                    self.all_instances(), [st for _a, st, _x in self.raw_instances]
                )
                return render_applications(changed, self.version, full_hash, as_json)
            app = rest[0].upper()
            if len(rest) == 1:
                if m == "GET":
                    insts = list(self.apps.get(app, {}).values())
                    if not insts:
                        return _plain(404)
                    return render_application(app, insts, as_json)
                if m == "POST":
                    self.add(parse_instance(req.body, req.headers.get("content-type", ""), app))
                    return Response(204)
            iid = rest[1] if len(rest) > 1 else ""
            if len(rest) == 2:
                if m == "GET":
                    inst = self.get(app, iid)
                    return render_instance(inst, as_json) if inst else _plain(404)
                if m == "PUT":
                    dirty = query.get("lastDirtyTimestamp")
                    ok = self.renew(app, iid, _int(dirty, 0) if dirty else None)
                    return _plain(200) if ok else _plain(404)
                if m == "DELETE":
                    return _plain(200) if self.cancel(app, iid) else _plain(404)
            if len(rest) == 3 and rest[2] == "status":
                if m == "PUT":
                    value = query.get("value", "").upper()
                    if value not in STATUSES:
                        return _plain(400, f"bad status {value!r}")
                    return _plain(200) if self.set_override(app, iid, value) else _plain(404)
                if m == "DELETE":
                    value = query.get("value", "").upper() or None
                    return _plain(200) if self.delete_override(app, iid, value) else _plain(404)
            if len(rest) == 3 and rest[2] == "metadata" and m == "PUT":
                return _plain(200) if self.update_metadata(app, iid, query) else _plain(404)
            return _plain(405 if len(rest) <= 3 else 404)
        if head == "instances" and len(rest) == 1 and m == "GET":
            for i in self.all_instances():
                if i.instance_id == rest[0]:
                    return render_instance(i, as_json)
            return _plain(404)
        if head in ("vips", "svips") and len(rest) == 1 and m == "GET":
            attr = "vip_address" if head == "vips" else "secure_vip_address"
            insts = [i for i in self.all_instances() if rest[0] in getattr(i, attr).split(",")]
            return render_applications(insts, self.version, hashcode(insts), as_json)
        return _plain(404)


async def _run(args: argparse.Namespace) -> None:
    emu = EurekaEmulator(args.host, args.port, base=args.base)
    await emu.start()
    await serve_until_signalled(str(emu.port), emu.stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tribridge.interop.eureka_emulator",
        description="a Eureka REST v2 server emulator (prints READY <port> once listening)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port")
    parser.add_argument("--base", default="/eureka", help="base path (Spring: /eureka)")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        from tribridge.http.server import run

        run(_run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
