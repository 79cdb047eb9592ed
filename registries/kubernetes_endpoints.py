"""Kubernetes API objects -> endpoints: Services, EndpointSlices and Endpoints as routing
reads them.

Objects are cleaned when they enter the registry's cache (``clean_object``); Services are
matched to interfaces (the ``tribridge.io/interfaces`` annotation or the URL's ``map=``), and
each routable address and port of a Service becomes an ``Endpoint`` (``EndpointMapping``).
The list + watch client that fills the cache is ``kubernetes.py``.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from .base import DEFAULT_WEIGHT, Endpoint, ServiceKey, matches
from .checks import MAX_ENTRIES, check_host, check_port, check_protocol, check_text, check_weight
from .records import BAD_TYPE, MISSING, TOO_LARGE, RecordRejected

ANN_INTERFACES = "tribridge.io/interfaces"
ANN_VERSION = "tribridge.io/version"
ANN_GROUP = "tribridge.io/group"
ANN_WEIGHT = "tribridge.io/weight"
ANN_PROTOCOL = "tribridge.io/protocol"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


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


def split_csv(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


class EndpointMapping:
    """Cached objects -> endpoints, the mapping half of ``KubernetesRegistry`` (mixed into
    it; the registry's list + watch loop keeps ``cache`` current)."""

    namespace: str
    svc_map: dict[str, tuple[str, ...]]
    endpoint_kind: str
    #: kind -> name -> object (cleaned by clean_object)
    cache: dict[str, dict[str, dict[str, Any]]]

    def services_for(self, interface: str) -> list[str]:
        names = list(self.svc_map.get(interface, ()))
        for name, svc in self.cache.get("services", {}).items():
            ann = (svc.get("metadata") or {}).get("annotations") or {}
            if interface in split_csv(ann.get(ANN_INTERFACES)) and name not in names:
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
