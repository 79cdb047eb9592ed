"""The YAML config, validated at load with errors that say file, line, path and expectation.

Shape (README "Configuration" documents every key)::

    listen: {host: 127.0.0.1, port: 8080}
    upstream: {connections_per_instance: 1, connect_timeout: 3, heartbeat_interval: 30}
    registries:
      static: {type: static, services: {com.x.Greeter: ["127.0.0.1:20880?version=1.0.0"]}}
      zk: zookeeper://127.0.0.1:2181          # or {url: nacos://host:8848?namespace=dev}
    services:
      - interface: com.x.Greeter
        version: 1.0.0
        methods: {sayHello: {types: [java.lang.String], idempotent: true}}
        types: {com.x.User: {fields: {id: long, name: String}}}
    routes:
      - {method: GET, path: /hello/{name}, service: com.x.Greeter, call: sayHello,
         params: [{from: path, name: name}]}
    auto_routes: {prefix: /, expose: ["com.x.*"]}
    admin: {host: 127.0.0.1, port: 9901, token_file: admin.token}   # admin API + /metrics
                                             # (docs/operations.md, docs/security.md)
    reload: {watch: true, interval: 2s}      # hot config: file poll + SIGHUP + PUT /config
    tracing: {generate: true, response_header: true, otel: false}
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from tribridge.codecs.hessian2 import HessianError, JavaType, PojoDef, TypeRegistry
from tribridge.codecs.hessian2.javatypes import parse_types
from tribridge.config.idl import (
    IdlRouteConfig,
    IdlServiceConfig,
    is_idl_service,
    parse_idl_route,
    parse_idl_service,
)
from tribridge.config.limits import DEFAULT_MAX_JSON_ELEMENTS
from tribridge.config.paths import config_path_error
from tribridge.config.reader import _V, ConfigError, _Loader, _Loc
from tribridge.config.security import SecurityConfig, parse_listen_tls, parse_security
from tribridge.config.services import MethodConfig, ServiceConfig
from tribridge.config.streaming import STREAM_KINDS, parse_streaming
from tribridge.config.upstream import BALANCER_NAMES, TRIPLE_CLIENTS, UpstreamSettings
from tribridge.registries import RegistryError, registry_class
from tribridge.security.exposure import reserved_method
from tribridge.security.tls import ServerTls

_ATTACHMENT_NAME = re.compile(r"^(\*|[A-Za-z0-9][A-Za-z0-9._-]*)$")


@dataclass
class ParamSource:
    source: str  # path | query | header | body | body_field | const
    name: str | None
    type: JavaType | None
    default: Any = None
    required: bool = True


@dataclass
class RouteConfig:
    http_method: str
    path: str
    service: str
    method: str
    params: list[ParamSource]
    version: str | None = None
    group: str | None = None
    timeout: float | None = None


@dataclass
class AutoRoutes:
    prefix: str = "/"
    expose: list[str] = field(default_factory=list)
    header_overrides: bool = True


@dataclass
class TracingConfig:
    """W3C trace context propagation (gateway/ops/tracing.py)."""

    enabled: bool = True
    #: start a new trace when a request carries no valid ``traceparent``
    generate: bool = True
    #: answer with ``traceresponse`` (W3C Trace Context level 2) naming the gateway's span
    response_header: bool = False
    #: OpenTelemetry spans (needs ``pip install tribridge[otel]`` and a configured SDK)
    otel: bool = False
    service_name: str = "tribridge"


#: environment variable holding the admin API's bearer token (when the config names none)
ADMIN_TOKEN_ENV = "TRIBRIDGE_ADMIN_TOKEN"
#: shortest admin token accepted: a guessable token is no protection
MIN_ADMIN_TOKEN = 16
ADMIN_KEYS = {
    "host",
    "port",
    "token",
    "token_file",
    "allowed_hosts",
    "max_body_bytes",
    "parse_timeout",
    "tls",
}


@dataclass
class AdminConfig:
    """Who may change the gateway through the admin API, and how much it accepts.

    Mutations (PUT/POST/DELETE) need a bearer ``token`` or a client certificate verified by
    ``tls.client_ca``; with neither, they are refused (fail closed). Every request's Host
    must be in ``allowed_hosts`` (plus the loopback names and the listener's own address),
    so a DNS-rebinding page cannot reach the API through a browser.
    """

    token: str | None = field(default=None, repr=False)
    #: where the token came from, for the startup line (never the token itself)
    token_source: str | None = None
    allowed_hosts: list[str] = field(default_factory=list)
    max_body_bytes: int = 1024 * 1024
    #: seconds a config body may take to parse and validate (off the event loop)
    parse_timeout: float = 10.0
    #: TLS on the admin listener; with client_ca, a client certificate is required
    tls: ServerTls | None = None

    @property
    def mtls(self) -> bool:
        return self.tls is not None and self.tls.client_ca is not None


@dataclass
class GatewayConfig:
    source: str = "<memory>"
    host: str = "127.0.0.1"
    port: int = 8080
    admin_host: str = "127.0.0.1"
    admin_port: int | None = None
    #: admin API protections: credentials, Host allowlist, limits (docs/security.md)
    admin: AdminConfig = field(default_factory=AdminConfig)
    #: seconds between config file polls (0: no polling; SIGHUP and PUT /config still work)
    watch_interval: float = 2.0
    #: also answer ``GET /metrics`` on the main listener
    metrics_on_main: bool = False
    tracing: TracingConfig = field(default_factory=TracingConfig)
    #: sha256 of the YAML text (first 16 hex digits): the config version the admin API shows
    digest: str = ""
    #: of the ``security:`` section alone: a reload keeps the guard (buckets, keys) when equal
    security_digest: str = ""
    upstream: UpstreamSettings = field(default_factory=UpstreamSettings)
    limits: dict[str, Any] = field(default_factory=dict)
    #: JSON values (arrays, objects, scalars) one request body may hold (CPU per request)
    max_json_elements: int = DEFAULT_MAX_JSON_ELEMENTS
    registries: dict[str, dict[str, Any]] = field(default_factory=dict)
    services: list[ServiceConfig] = field(default_factory=list)
    routes: list[RouteConfig] = field(default_factory=list)
    auto: AutoRoutes | None = None
    passthrough_headers: list[str] = field(default_factory=lambda: ["x-request-id", "traceparent"])
    access_log: bool = True
    #: how long a first request waits for a registry's first answer about its service
    registry_wait: float = 3.0
    #: classes policy, auth, access rules, rate limits, TLS (config/security.py)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    #: protobuf IDL services (gRPC / Triple) and their google.api.http-style routes
    idl_services: list[IdlServiceConfig] = field(default_factory=list)
    idl_routes: list[IdlRouteConfig] = field(default_factory=list)
    #: config/relay.py IngressConfig / RelayConfig (docs/relay.md)
    dubbo_ingress: Any = None
    relay: Any = None
    #: config/streaming.py StreamingSettings (docs/streaming.md)
    streaming: Any = None


#: ``limits:`` keys: (kind, minimum); each a field of tribridge.http.messages.HttpLimits except
#: ``max_json_elements`` (GatewayConfig). docs/security.md "Resource limits" lists them all.
_LIMIT_KEYS: dict[str, tuple[type, float]] = {
    "max_header_bytes": (int, 256),
    "max_body_bytes": (int, 0),
    "header_timeout": (float, 0.001),
    "body_timeout": (float, 0.001),
    "idle_timeout": (float, 0.001),
    "max_pipeline": (int, 1),
    "max_connections": (int, 1),
    "fd_reserve": (int, 0),
    "write_buffer_bytes": (int, 1024),
    "max_unread_response_bytes": (int, 1024),
    "max_buffered_body_bytes": (int, 1024),
    "max_json_elements": (int, 1),
}


def _limits(v: _V, root: _Loc, cfg: GatewayConfig) -> None:
    """The HTTP listener's limits and the JSON element budget, each validated at load:
    a resource limit that could be zero, negative or a string would silently mean none."""
    lim = v.mapping(root.get("limits"), "limits", set(_LIMIT_KEYS))
    for k in lim:
        kind, least = _LIMIT_KEYS[k]
        val = v.get(lim, k, "limits", kind)
        if val < least:
            raise v.fail(lim, f"limits.{k}", f"must be at least {least:g}, got {val!r}", k)
        if k == "max_json_elements":
            cfg.max_json_elements = val
        else:
            cfg.limits[k] = val


def load_config(path: str | Path) -> GatewayConfig:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(f"{p}: cannot read: {e.strerror}") from None
    return parse_config(text, str(p))


def parse_config(text: str, source: str = "<memory>") -> GatewayConfig:
    try:
        doc = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise ConfigError(f"{where}: invalid YAML: {e.problem}") from None
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    except RecursionError:
        raise ConfigError(f"{source}: invalid YAML: nested too deeply") from None
    v = _V(source)
    root = v.mapping(
        doc,
        "config",
        {
            "listen",
            "admin",
            "upstream",
            "limits",
            "registries",
            "services",
            "routes",
            "auto_routes",
            "passthrough_headers",
            "access_log",
            "registry_wait",
            "reload",
            "tracing",
            "metrics",
            "security",
            "dubbo_ingress",
            "relay",
            "streaming",
        },
    )
    cfg = GatewayConfig(source=source, digest=hashlib.sha256(text.encode()).hexdigest()[:16])
    listen = v.mapping(root.get("listen"), "listen", {"host", "port", "tls"})
    cfg.host = v.get(listen, "host", "listen", str, "127.0.0.1")
    cfg.port = v.get(listen, "port", "listen", int, 8080)
    if not 0 <= cfg.port <= 65535:
        raise v.fail(listen, "listen.port", "expected 0..65535", "port")
    cfg.security = parse_security(v, root.get("security"))
    cfg.security_digest = hashlib.sha256(repr(root.get("security")).encode()).hexdigest()[:16]
    cfg.security.listen_tls = parse_listen_tls(v, listen)
    admin = v.mapping(root.get("admin"), "admin", ADMIN_KEYS)
    cfg.admin_host = v.get(admin, "host", "admin", str, "127.0.0.1")
    cfg.admin_port = v.get(admin, "port", "admin", int, None)
    if cfg.admin_port is not None and not 0 <= cfg.admin_port <= 65535:
        raise v.fail(admin, "admin.port", "expected 0..65535", "port")
    cfg.admin = _admin(v, admin)
    rl = v.mapping(root.get("reload"), "reload", {"watch", "interval"})
    cfg.watch_interval = v.duration(rl, "interval", "reload", 2.0) or 2.0
    if not v.get(rl, "watch", "reload", bool, True):
        cfg.watch_interval = 0.0
    met = v.mapping(root.get("metrics"), "metrics", {"on_main_port"})
    cfg.metrics_on_main = v.get(met, "on_main_port", "metrics", bool, False)
    tr = v.mapping(
        root.get("tracing"),
        "tracing",
        {"enabled", "generate", "response_header", "otel", "service_name"},
    )
    cfg.tracing = TracingConfig(
        enabled=v.get(tr, "enabled", "tracing", bool, True),
        generate=v.get(tr, "generate", "tracing", bool, True),
        response_header=v.get(tr, "response_header", "tracing", bool, False),
        otel=v.get(tr, "otel", "tracing", bool, False),
        service_name=v.get(tr, "service_name", "tracing", str, "tribridge"),
    )
    cfg.access_log = v.get(root, "access_log", "config", bool, True)
    _upstream(v, root, cfg)
    _limits(v, root, cfg)
    pth = v.get(root, "passthrough_headers", "config", list, None)
    if pth is not None:
        cfg.passthrough_headers = [str(h).lower() for h in pth]
    cfg.registry_wait = v.duration(root, "registry_wait", "config", 3.0) or 3.0
    _registries(v, root, cfg)
    _services(v, root, cfg)
    _routes(v, root, cfg)
    from tribridge.config.relay import parse_sections

    parse_sections(v, root, cfg)
    parse_streaming(v, root, cfg)
    auto = root.get("auto_routes")
    if auto is not None:
        a = v.mapping(auto, "auto_routes", {"prefix", "expose", "header_overrides"})
        prefix = v.get(a, "prefix", "auto_routes", str, "/")
        prefix = "/" + prefix.strip("/") if prefix.strip("/") else "/"
        why = config_path_error(prefix)
        if why is not None:
            raise v.fail(a, "auto_routes.prefix", why, "prefix")
        cfg.auto = AutoRoutes(
            prefix=prefix,
            expose=[str(x) for x in v.get(a, "expose", "auto_routes", list, [])],
            header_overrides=v.get(a, "header_overrides", "auto_routes", bool, True),
        )
    return cfg


def _upstream(v: _V, root: _Loc, cfg: GatewayConfig) -> None:
    up = v.mapping(
        root.get("upstream"),
        "upstream",
        {
            "connections_per_instance",
            "connect_timeout",
            "heartbeat_interval",
            "max_payload",
            "eject_after",
            "eject_seconds",
            "triple_client",
            "write_buffer_bytes",
            "max_queued_bytes",
        },
    )
    s = cfg.upstream
    s.connections_per_instance = v.get(up, "connections_per_instance", "upstream", int, 1)
    if not 1 <= s.connections_per_instance <= 64:
        raise v.fail(
            up, "upstream.connections_per_instance", "expected 1..64", "connections_per_instance"
        )
    s.connect_timeout = v.duration(up, "connect_timeout", "upstream", 3.0) or 3.0
    s.heartbeat_interval = v.duration(up, "heartbeat_interval", "upstream", 30.0) or 30.0
    s.max_payload = v.get(up, "max_payload", "upstream", int, s.max_payload)
    s.eject_after = v.get(up, "eject_after", "upstream", int, s.eject_after)
    s.eject_seconds = v.duration(up, "eject_seconds", "upstream", s.eject_seconds) or 0.0
    s.triple_client = v.get(up, "triple_client", "upstream", str, s.triple_client)
    for key in ("write_buffer_bytes", "max_queued_bytes"):
        n = v.get(up, key, "upstream", int, getattr(s, key))
        if n < 1024:
            raise v.fail(up, f"upstream.{key}", f"must be at least 1024, got {n!r}", key)
        setattr(s, key, n)
    if s.triple_client not in TRIPLE_CLIENTS:
        raise v.fail(
            up,
            "upstream.triple_client",
            f"expected one of {', '.join(TRIPLE_CLIENTS)}",
            "triple_client",
        )


def _registries(v: _V, root: _Loc, cfg: GatewayConfig) -> None:
    regs = v.mapping(root.get("registries"), "registries", set(root.get("registries") or {}))
    for name, body in regs.items():
        path = f"registries.{name}"
        if isinstance(body, str):
            wrapped = _Loc(url=body)
            wrapped.marks = {"url": regs.marks.get(name)}
            wrapped.mark = regs.marks.get(name)
            body = wrapped
        r = v.mapping(body, path, {"type", "services", "url", "expose"})
        expose = v.get(r, "expose", path, list, None)
        url = v.get(r, "url", path, str, "")
        if url:
            try:
                registry_class(urlsplit(url).scheme)
            except RegistryError as e:
                raise v.fail(r, f"{path}.url", str(e), "url") from None
            cfg.registries[str(name)] = {"type": urlsplit(url).scheme, "url": url}
            if expose is not None:
                cfg.registries[str(name)]["expose"] = [str(x) for x in expose]
            continue
        rtype = v.get(r, "type", path, str, "static")
        if rtype != "static":
            raise v.fail(
                r,
                f"{path}.type",
                f"unsupported registry type {rtype!r}; give a url (zookeeper://, nacos://, "
                "eureka://, kubernetes://) or type: static with services",
                "type",
            )
        services = v.mapping(r.get("services"), f"{path}.services", set(r.get("services") or {}))
        out: dict[str, list[str]] = {}
        for iface, urls in services.items():
            if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
                raise v.fail(
                    services,
                    f"{path}.services.{iface}",
                    "expected a list of provider addresses (host:port or dubbo:// URLs)",
                    iface,
                )
            out[str(iface)] = list(urls)
        cfg.registries[str(name)] = {"type": rtype, "services": out}
        if expose is not None:
            cfg.registries[str(name)]["expose"] = [str(x) for x in expose]


def _services(v: _V, root: _Loc, cfg: GatewayConfig) -> None:
    items = v.get(root, "services", "config", list, [])
    for i, body in enumerate(items):
        path = f"services[{i}]"
        if is_idl_service(body):
            _idl_service(v, body, path, cfg)
            continue
        s = v.mapping(
            body,
            path,
            {
                "interface",
                "version",
                "group",
                "registry",
                "loadbalance",
                "hash_arg",
                "timeout",
                "retries",
                "call",
                "methods",
                "types",
                "expose_methods",
                "include_class",
                "token",
                "protocol",
                "response_attachments",
                "transport",
            },
        )
        sc = ServiceConfig(interface=v.get(s, "interface", path, str, required=True))
        sc.version = str(v.get(s, "version", path, (str, int, float), ""))
        sc.group = v.get(s, "group", path, str, "")
        sc.registry = v.get(s, "registry", path, str, "static")
        if cfg.registries and sc.registry not in cfg.registries:
            raise v.fail(
                s,
                f"{path}.registry",
                f"unknown registry {sc.registry!r}; defined: {', '.join(cfg.registries)}",
                "registry",
            )
        sc.loadbalance = v.get(s, "loadbalance", path, str, "random")
        if sc.loadbalance not in BALANCER_NAMES:
            raise v.fail(
                s, f"{path}.loadbalance", f"expected one of {', '.join(BALANCER_NAMES)}", "loadbalance"
            )
        sc.hash_arg = v.get(s, "hash_arg", path, int, 0)
        sc.timeout = v.duration(s, "timeout", path, 5.0) or 5.0
        sc.retries = v.get(s, "retries", path, int, 2)
        sc.call = v.get(s, "call", path, str, "auto")
        if sc.call not in ("auto", "direct", "generic"):
            raise v.fail(s, f"{path}.call", "expected auto, direct or generic", "call")
        sc.include_class = v.get(s, "include_class", path, bool, True)
        sc.token = v.get(s, "token", path, str, None)
        sc.protocol = v.get(s, "protocol", path, str, "")
        if sc.protocol not in ("", "dubbo", "tri"):
            raise v.fail(s, f"{path}.protocol", "expected dubbo or tri", "protocol")
        sc.expose_methods = [str(x) for x in v.get(s, "expose_methods", path, list, ["*"])]
        sc.transport = v.get(s, "transport", path, str, "")
        if sc.transport not in ("", "h2", "http1"):
            raise v.fail(s, f"{path}.transport", "expected h2 or http1", "transport")
        if sc.transport == "h2":
            sc.transport = ""
        names = v.get(s, "response_attachments", path, list, [])
        bad = [n for n in names if not isinstance(n, str) or not _ATTACHMENT_NAME.match(n)]
        if bad:
            raise v.fail(
                s,
                f"{path}.response_attachments",
                f"expected attachment names (letters, digits, '-', '_', '.') or '*', got {bad[0]!r}",
                "response_attachments",
            )
        sc.response_attachments = [n.lower() for n in names]
        methods = v.mapping(s.get("methods"), f"{path}.methods", set(s.get("methods") or {}))
        for mname, mbody in methods.items():
            mpath = f"{path}.methods.{mname}"
            mbody_types: Any
            if isinstance(mbody, (str, list)):
                mbody_types, m = mbody, None
            else:
                m = v.mapping(mbody, mpath, {"types", "idempotent", "timeout", "stream"})
                mbody_types = m.get("types")
            try:
                types = parse_types(mbody_types) if mbody_types is not None else None
            except HessianError as e:
                raise v.fail(
                    m if m is not None else methods,
                    f"{mpath}.types",
                    str(e),
                    "types" if m is not None else mname,
                ) from None
            mc = MethodConfig(str(mname), types)
            if m is not None:
                mc.idempotent = v.get(m, "idempotent", mpath, bool, False)
                mc.timeout = v.duration(m, "timeout", mpath, None)
                mc.stream = v.get(m, "stream", mpath, str, "")
                if mc.stream and mc.stream not in STREAM_KINDS:
                    raise v.fail(
                        m, f"{mpath}.stream", f"expected one of {', '.join(STREAM_KINDS)}", "stream"
                    )
            sc.methods[str(mname)] = mc
        types_node = v.mapping(s.get("types"), f"{path}.types", set(s.get("types") or {}))
        reg = TypeRegistry()
        for cname, tbody in types_node.items():
            tpath = f"{path}.types.{cname}"
            t = v.mapping(tbody, tpath, {"fields", "enum"})
            if "enum" in t:
                consts = v.get(t, "enum", tpath, list)
                reg.add(PojoDef(str(cname), [], [str(c) for c in consts]))
                continue
            fields = v.mapping(t.get("fields"), f"{tpath}.fields", set(t.get("fields") or {}))
            reg.add(
                PojoDef(
                    str(cname),
                    [
                        (str(f), v.jtype(fields, f, f"{tpath}.fields.{f}", ft))
                        for f, ft in fields.items()
                    ],
                )
            )
        sc.types = reg
        cfg.services.append(sc)


_TEMPLATE_VAR = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _idl_service(v: _V, body: Any, path: str, cfg: GatewayConfig) -> None:
    src = Path(v.source)
    sc = parse_idl_service(v, body, path, src.parent if src.is_file() else None)
    if not sc.endpoints and not cfg.registries:
        raise v.fail(body, path, "an IDL service needs endpoints or a registry")
    if not sc.endpoints and sc.registry not in cfg.registries:
        raise v.fail(
            body,
            f"{path}.registry",
            f"unknown registry {sc.registry!r}; defined: {', '.join(cfg.registries)}",
            "registry",
        )
    cfg.idl_services.append(sc)


def _routes(v: _V, root: _Loc, cfg: GatewayConfig) -> None:
    idl = {s.interface: s for s in cfg.idl_services}
    known = {s.interface for s in cfg.services} | set(idl)
    items = v.get(root, "routes", "config", list, [])
    for i, body in enumerate(items):
        path = f"routes[{i}]"
        if isinstance(body, dict) and body.get("service") in idl:
            cfg.idl_routes.append(parse_idl_route(v, body, path, idl))
            continue
        r = v.mapping(
            body,
            path,
            {"method", "path", "service", "call", "params", "version", "group", "timeout"},
        )
        http_method = v.get(r, "method", path, str, "POST").upper()
        if http_method not in ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"):
            raise v.fail(r, f"{path}.method", f"unsupported HTTP method {http_method}", "method")
        tpath = v.get(r, "path", path, str, required=True)
        why = config_path_error(tpath)
        if why is not None:
            raise v.fail(r, f"{path}.path", why, "path")
        service = v.get(r, "service", path, str, required=True)
        if service not in known:
            raise v.fail(
                r,
                f"{path}.service",
                f"service {service!r} is not in services: ({', '.join(sorted(known)) or 'none'})",
                "service",
            )
        method = v.get(r, "call", path, str, required=True)
        reason = reserved_method(method)
        if reason is not None:
            raise v.fail(r, f"{path}.call", f"{method!r} cannot be routed: {reason}", "call")
        vars_ = set(_TEMPLATE_VAR.findall(tpath))
        params: list[ParamSource] = []
        plist = v.get(r, "params", path, list, [])
        for j, pbody in enumerate(plist):
            ppath = f"{path}.params[{j}]"
            p = v.mapping(pbody, ppath, {"from", "name", "type", "default", "required", "value"})
            src = v.get(p, "from", ppath, str, required=True)
            if src not in ("path", "query", "header", "body", "const"):
                raise v.fail(
                    p, f"{ppath}.from", "expected path, query, header, body or const", "from"
                )
            name = v.get(p, "name", ppath, str, None)
            if src in ("path", "query", "header") and not name:
                raise v.fail(p, ppath, f"a {src} parameter needs a name")
            if src == "path" and name not in vars_:
                raise v.fail(
                    p, f"{ppath}.name", f"{{{name}}} does not appear in the path {tpath!r}", "name"
                )
            jt = v.jtype(p, "type", f"{ppath}.type", p["type"]) if "type" in p else None
            ps = ParamSource(
                "body_field" if src == "body" and name else src,
                name,
                jt,
                p.get("default", p.get("value")),
                v.get(p, "required", ppath, bool, "default" not in p and src != "const"),
            )
            params.append(ps)
        cfg.routes.append(
            RouteConfig(
                http_method,
                tpath,
                service,
                method,
                params,
                version=v.get(r, "version", path, str, None),
                group=v.get(r, "group", path, str, None),
                timeout=v.duration(r, "timeout", path, None),
            )
        )


def _admin(v: _V, a: _Loc) -> AdminConfig:
    """The ``admin:`` protections. The token comes from ``token_file``, ``token`` or the
    ``TRIBRIDGE_ADMIN_TOKEN`` environment variable, in that order."""
    out = AdminConfig(
        allowed_hosts=[h.lower() for h in _strlist(v, a, "allowed_hosts", "admin")],
        max_body_bytes=v.get(a, "max_body_bytes", "admin", int, 1024 * 1024),
        parse_timeout=v.duration(a, "parse_timeout", "admin", 10.0) or 10.0,
    )
    if out.max_body_bytes < 1:
        raise v.fail(a, "admin.max_body_bytes", "expected a positive number", "max_body_bytes")
    key: str | None = None  # the config key the token came from (None: the environment)
    if "token_file" in a:
        key = "token_file"
        path = v.get(a, key, "admin", str)
        try:
            out.token = Path(path).read_text().strip()
        except OSError as e:
            raise v.fail(a, "admin.token_file", f"cannot read: {e.strerror}", key) from None
        out.token_source = f"admin.token_file ({path})"
    elif "token" in a:
        key = "token"
        out.token = v.get(a, key, "admin", str)
        out.token_source = "admin.token"
    elif os.environ.get(ADMIN_TOKEN_ENV):
        out.token = os.environ[ADMIN_TOKEN_ENV].strip()
        out.token_source = f"${ADMIN_TOKEN_ENV}"
    if out.token is not None and len(out.token) < MIN_ADMIN_TOKEN:
        raise v.fail(
            a,
            f"admin.{key}" if key else f"${ADMIN_TOKEN_ENV}",
            f"an admin token needs at least {MIN_ADMIN_TOKEN} characters",
            key,
        )
    if "tls" in a:
        t = v.mapping(a["tls"], "admin.tls", {"cert", "key", "client_ca"})
        out.tls = ServerTls(
            cert=v.get(t, "cert", "admin.tls", str, required=True),
            key=v.get(t, "key", "admin.tls", str, required=True),
            client_ca=v.get(t, "client_ca", "admin.tls", str, None),
        )
        out.tls.require_client_cert = out.tls.client_ca is not None
        try:
            out.tls.context()
        except (OSError, ValueError) as e:
            raise v.fail(t, "admin.tls", f"cannot load certificate/key: {e}") from None
    return out


def _strlist(v: _V, node: _Loc, key: str, path: str) -> list[str]:
    items = v.get(node, key, path, list, [])
    if not all(isinstance(x, str) for x in items):
        raise v.fail(node, f"{path}.{key}", "expected a list of strings", key)
    return [str(x) for x in items]
