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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from tribridge.config.admin import ADMIN_KEYS, ADMIN_TOKEN_ENV, AdminConfig, parse_admin
from tribridge.config.contract import ContractConfig, parse_contract
from tribridge.config.idl import IdlRouteConfig, IdlServiceConfig
from tribridge.config.limits import DEFAULT_MAX_JSON_ELEMENTS
from tribridge.config.reader import _V, ConfigError, _Loader, _Loc
from tribridge.config.relay import IngressConfig, RelayConfig, parse_sections
from tribridge.config.routes import AutoRoutes, RouteConfig, parse_auto_routes, parse_routes
from tribridge.config.security import SecurityConfig, parse_listen_tls, parse_security
from tribridge.config.services import ServiceConfig, parse_services
from tribridge.config.streaming import StreamingSettings, parse_streaming
from tribridge.config.upstream import TRIPLE_CLIENTS, UpstreamSettings
from tribridge.registries import RegistryError, registry_class

#: names other modules import from here: the model's entry points and its section types
__all__ = [
    "ADMIN_TOKEN_ENV",
    "AdminConfig",
    "AutoRoutes",
    "ConfigError",
    "GatewayConfig",
    "RouteConfig",
    "TracingConfig",
    "load_config",
    "parse_config",
]


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
    #: the Dubbo2 listener and gateway-to-gateway links (config/relay.py, docs/relay.md)
    dubbo_ingress: IngressConfig | None = None
    relay: RelayConfig | None = None
    #: config/contract.py ContractConfig: /openapi.json, /docs, /mcp (docs/contract.md)
    contract: ContractConfig = field(default_factory=ContractConfig)
    #: server, client and bidi streams over HTTP (config/streaming.py, docs/streaming.md)
    streaming: StreamingSettings = field(default_factory=StreamingSettings)


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
            "contract",
            "errors",
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
    cfg.admin = parse_admin(v, admin)
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
        otel=_otel(v, tr),
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
    cfg.services, cfg.idl_services = parse_services(v, root, cfg.registries)
    errs = v.mapping(root.get("errors"), "errors", {"java_stack_traces"})
    if v.get(errs, "java_stack_traces", "errors", bool, False):
        for sc in cfg.services:
            sc.java_stack_traces = True  # the invoker reads it per service
    cfg.routes, cfg.idl_routes = parse_routes(v, root, cfg.services, cfg.idl_services)
    cfg.relay, cfg.dubbo_ingress = parse_sections(v, root, cfg.source, cfg.registries)
    cfg.streaming = parse_streaming(v, root)
    cfg.auto = parse_auto_routes(v, root)
    cfg.contract = parse_contract(v, root.get("contract"), {r.path for r in cfg.routes})
    return cfg


def _otel(v: _V, tr: _Loc) -> bool:
    on = bool(v.get(tr, "otel", "tracing", bool, False))
    if on:
        v.extra(tr, "otel", "tracing.otel", "otel", "OpenTelemetry spans")
    return on


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
            "batch_frames",
            "batch_bytes",
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
    for key in ("write_buffer_bytes", "max_queued_bytes", "batch_bytes"):
        n = v.get(up, key, "upstream", int, getattr(s, key))
        if n < 1024:
            raise v.fail(up, f"upstream.{key}", f"must be at least 1024, got {n!r}", key)
        setattr(s, key, n)
    s.batch_frames = v.get(up, "batch_frames", "upstream", int, s.batch_frames)
    if not 1 <= s.batch_frames <= 1024:
        raise v.fail(up, "upstream.batch_frames", "expected 1..1024", "batch_frames")
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
