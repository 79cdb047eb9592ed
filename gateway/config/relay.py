"""Config sections ``dubbo_ingress`` and ``relay`` (kept out of config.py on purpose).

::

    dubbo_ingress:
      listen: {host: 127.0.0.1, port: 20880}
      routes:
        - {interface: "com.x.*", version: 1.0.0, group: g, method: "get*", to: local}
        - {interface: "com.y.*", to: "relay:b", timeout: 3s}
    relay:
      tls: {cert: gw.pem, key: gw.key, ca: ca.pem}     # paths relative to the config file
      listen: {host: 10.0.0.2, port: 7443}           # accept links from other gateways
      exports: ["com.x.*"]                            # what a linked gateway may call here
      allow: [gateway-a]                              # optional: client certificate CNs
      links:
        b: {address: "10.0.0.3:7443", server_name: tribridge-relay, heartbeat: 5s}
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tribridge.config.reader import _V, _Loc

DEFAULT_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class IngressRoute:
    """Envoy dubbo_proxy style: every given field must match; the first route wins."""

    interface: str  # glob
    to: str  # "local" or "relay:NAME"
    version: str | None = None  # exact ("" or 0.0.0 = none); None = any
    group: str | None = None  # exact; None = any
    method: str | None = None  # glob; None = any
    timeout: float | None = None  # when the consumer sends no timeout attachment

    def matches(self, interface: str, version: str, group: str, method: str) -> bool:
        if not fnmatch.fnmatchcase(interface, self.interface):
            return False
        if self.version is not None and norm_version(self.version) != version:
            return False
        if self.group is not None and self.group != group:
            return False
        return self.method is None or fnmatch.fnmatchcase(method, self.method)

    @property
    def relay_link(self) -> str | None:
        return self.to[6:] if self.to.startswith("relay:") else None


def norm_version(v: Any) -> str:
    return "" if v in (None, "", "0.0.0") else str(v)


@dataclass
class IngressConfig:
    host: str = "127.0.0.1"
    port: int = 20880
    routes: list[IngressRoute] = field(default_factory=list)
    max_payload: int = 8 * 1024 * 1024
    #: calls in flight on one consumer connection before status 100 (thread pool exhausted)
    max_in_flight: int = 10_000
    #: a consumer connection silent this long is closed (Java: 3 x heartbeat = 180 s)
    idle_timeout: float = 180.0
    #: ceiling on a consumer's timeout attachment
    max_timeout: float = 600.0
    #: TLS for consumers (Dubbo's SSL mode); ``ca`` set = client certificates required
    tls: TlsConfig | None = None
    # ---- resource limits (docs/security.md "Resource limits") ----
    #: open consumer connections; beyond -> closed at once (cap also <= nofile - fd_reserve)
    max_connections: int = 10_000
    #: transport high-water mark per connection: past it, stop reading that consumer
    write_buffer_bytes: int = 64 * 1024
    #: replies queued for a consumer that stopped reading; beyond -> the connection is aborted
    max_unread_reply_bytes: int = 8 * 1024 * 1024
    #: partial frames held across reads, all connections of this listener; beyond -> close
    max_buffered_frame_bytes: int = 64 * 1024 * 1024
    #: a frame begun must be complete within this many seconds (half-sent frames)
    frame_timeout: float = 30.0
    #: (interface, version, group) services followed for ingress calls (LRU beyond)
    max_services: int = 4096
    #: values (list items, map entries, object fields) in one request body; beyond -> status
    #: 40 before any work: decoding costs ~0.5 us per value on the listener's event loop
    max_elements: int = 200_000


@dataclass
class TlsConfig:
    cert: str
    key: str
    ca: str | None


@dataclass
class LinkConfig:
    name: str
    host: str
    port: int
    tls: TlsConfig
    server_name: str | None = None
    heartbeat: float = 5.0
    connect_timeout: float = 3.0
    backoff_initial: float = 0.1
    backoff_max: float = 10.0


@dataclass
class RelayConfig:
    tls: TlsConfig | None = None
    host: str | None = None  # listen address for incoming links (None: accept none)
    port: int = 7443
    exports: list[str] = field(default_factory=list)
    allow: list[str] | None = None
    links: dict[str, LinkConfig] = field(default_factory=dict)
    idle_timeout: float = 30.0
    max_in_flight: int = 10_000  # calls in flight on one incoming link
    max_connections: int = 1024  # incoming links (peer gateways), TLS handshakes included


def _tls(v: _V, node: Any, path: str, base: Path, ca_required: bool = True) -> TlsConfig:
    t = v.mapping(node, path, {"cert", "key", "ca"})
    out: list[str | None] = []
    for k in ("cert", "key", "ca"):
        text = v.get(t, k, path, str, required=k != "ca" or ca_required)
        p = Path(text) if text is not None else None
        out.append(None if p is None else str(p if p.is_absolute() else base / p))
    return TlsConfig(*out)  # type: ignore[arg-type]


def _address(v: _V, node: _Loc, key: str, path: str) -> tuple[str, int]:
    text = v.get(node, key, path, str, required=True)
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise v.fail(node, f"{path}.{key}", f"expected host:port, got {text!r}", key)
    return host.strip("[]"), int(port)


def parse_sections(
    v: _V, root: _Loc, source: str, registries: Mapping[str, dict[str, Any]]
) -> tuple[RelayConfig | None, IngressConfig | None]:
    """The document's ``relay`` and ``dubbo_ingress`` sections (absent: None); paths in them
    are relative to the config file ``source``."""
    src = Path(source)
    base = src.parent if src.name and not source.startswith("<") else Path.cwd()
    relay_node = root.get("relay")
    relay = _relay(v, relay_node, base) if relay_node is not None else None
    ing = root.get("dubbo_ingress")
    ingress = _ingress(v, ing, relay, base) if ing is not None else None
    _check_relay_endpoints(v, root, relay, registries)
    return relay, ingress


def _relay(v: _V, node: Any, base: Path) -> RelayConfig:
    r = v.mapping(
        node,
        "relay",
        {
            "tls",
            "listen",
            "exports",
            "allow",
            "links",
            "idle_timeout",
            "max_in_flight",
            "max_connections",
        },
    )
    rc = RelayConfig()
    if "tls" in r:
        rc.tls = _tls(v, r["tls"], "relay.tls", base)
    if "listen" in r:
        lst = v.mapping(r["listen"], "relay.listen", {"host", "port"})
        rc.host = v.get(lst, "host", "relay.listen", str, "127.0.0.1")
        rc.port = v.get(lst, "port", "relay.listen", int, 7443)
        if rc.tls is None:
            raise v.fail(r, "relay.listen", "a relay listener needs relay.tls (mutual TLS)")
    rc.exports = [str(x) for x in v.get(r, "exports", "relay", list, [])]
    allow = v.get(r, "allow", "relay", list, None)
    rc.allow = [str(x) for x in allow] if allow is not None else None
    rc.idle_timeout = v.duration(r, "idle_timeout", "relay", 30.0) or 30.0
    rc.max_in_flight = v.get(r, "max_in_flight", "relay", int, rc.max_in_flight)
    if rc.max_in_flight < 1:
        raise v.fail(r, "relay.max_in_flight", "must be at least 1", "max_in_flight")
    rc.max_connections = v.get(r, "max_connections", "relay", int, rc.max_connections)
    if rc.max_connections < 1:
        raise v.fail(r, "relay.max_connections", "must be at least 1", "max_connections")
    links = v.mapping(r.get("links"), "relay.links", set(r.get("links") or {}))
    for name, body in links.items():
        path = f"relay.links.{name}"
        lk = v.mapping(
            body,
            path,
            {"address", "tls", "server_name", "heartbeat", "connect_timeout", "backoff_max"},
        )
        host, port = _address(v, lk, "address", path)
        tls = _tls(v, lk["tls"], f"{path}.tls", base) if "tls" in lk else rc.tls
        if tls is None:
            raise v.fail(lk, path, "a relay link needs tls (here or in relay.tls)")
        rc.links[str(name)] = LinkConfig(
            str(name),
            host,
            port,
            tls,
            server_name=v.get(lk, "server_name", path, str, None),
            heartbeat=v.duration(lk, "heartbeat", path, 5.0) or 5.0,
            connect_timeout=v.duration(lk, "connect_timeout", path, 3.0) or 3.0,
            backoff_max=v.duration(lk, "backoff_max", path, 10.0) or 10.0,
        )
    return rc


#: the ingress's resource-limit keys (IngressConfig fields of the same names)
_INGRESS_LIMITS = (
    "max_connections",
    "write_buffer_bytes",
    "max_unread_reply_bytes",
    "max_buffered_frame_bytes",
    "frame_timeout",
    "max_services",
    "max_elements",
)


def _ingress(v: _V, node: Any, relay: RelayConfig | None, base: Path) -> IngressConfig:
    i = v.mapping(
        node,
        "dubbo_ingress",
        {
            "listen",
            "routes",
            "max_payload",
            "max_in_flight",
            "idle_timeout",
            "tls",
            *_INGRESS_LIMITS,
        },
    )
    ic = IngressConfig()
    if "tls" in i:
        ic.tls = _tls(v, i["tls"], "dubbo_ingress.tls", base, ca_required=False)
    lst = v.mapping(i.get("listen"), "dubbo_ingress.listen", {"host", "port"})
    ic.host = v.get(lst, "host", "dubbo_ingress.listen", str, "127.0.0.1")
    ic.port = v.get(lst, "port", "dubbo_ingress.listen", int, 20880)
    if not 0 <= ic.port <= 65535:
        raise v.fail(lst, "dubbo_ingress.listen.port", "expected 0..65535", "port")
    ic.max_payload = v.get(i, "max_payload", "dubbo_ingress", int, ic.max_payload)
    ic.max_in_flight = v.get(i, "max_in_flight", "dubbo_ingress", int, ic.max_in_flight)
    ic.idle_timeout = v.duration(i, "idle_timeout", "dubbo_ingress", 180.0) or 180.0
    for key in _INGRESS_LIMITS:
        if key == "frame_timeout":
            ic.frame_timeout = v.duration(i, key, "dubbo_ingress", ic.frame_timeout) or 30.0
            continue
        n = v.get(i, key, "dubbo_ingress", int, getattr(ic, key))
        if n < 1:
            raise v.fail(i, f"dubbo_ingress.{key}", f"must be at least 1, got {n!r}", key)
        setattr(ic, key, n)
    items = v.get(i, "routes", "dubbo_ingress", list, [])
    for n, body in enumerate(items):
        path = f"dubbo_ingress.routes[{n}]"
        r = v.mapping(body, path, {"interface", "version", "group", "method", "to", "timeout"})
        to = v.get(r, "to", path, str, "local")
        if to != "local":
            name = to[6:] if to.startswith("relay:") else None
            if name is None:
                raise v.fail(r, f"{path}.to", f"expected local or relay:NAME, got {to!r}", "to")
            known = relay.links if relay is not None else {}
            if name not in known:
                raise v.fail(
                    r,
                    f"{path}.to",
                    f"no relay link {name!r}; defined: {', '.join(known) or 'none'}",
                    "to",
                )
        version = v.get(r, "version", path, (str, int, float), None)
        ic.routes.append(
            IngressRoute(
                interface=v.get(r, "interface", path, str, required=True),
                to=to,
                version=None if version is None else str(version),
                group=v.get(r, "group", path, str, None),
                method=v.get(r, "method", path, str, None),
                timeout=v.duration(r, "timeout", path, None),
            )
        )
    return ic


def _check_relay_endpoints(
    v: _V, root: _Loc, relay: RelayConfig | None, registries: Mapping[str, dict[str, Any]]
) -> None:
    """Static registry entries ``relay:NAME`` must name a configured link."""
    links = relay.links if relay is not None else {}
    for rname, r in registries.items():
        for iface, urls in r.get("services", {}).items():
            for u in urls:
                if u.startswith("relay:"):
                    name = u[6:].partition("?")[0]
                    if name not in links:
                        raise v.fail(
                            root,
                            f"registries.{rname}.services.{iface}",
                            f"{u!r} names no relay link; defined: {', '.join(links) or 'none'}",
                            "registries",
                        )
