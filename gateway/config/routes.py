"""The ``routes:`` and ``auto_routes:`` sections: which HTTP request calls which method, and
where each argument comes from (README "Routes"); compiled by ``tribridge.routing.routes``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tribridge.codecs.hessian2 import JavaType
from tribridge.config.idl import IdlRouteConfig, IdlServiceConfig, parse_idl_route
from tribridge.config.paths import config_path_error
from tribridge.config.reader import _V, _Loc
from tribridge.config.services import ServiceConfig
from tribridge.security.exposure import reserved_method


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


_TEMPLATE_VAR = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def parse_routes(
    v: _V, root: _Loc, services: list[ServiceConfig], idl_services: list[IdlServiceConfig]
) -> tuple[list[RouteConfig], list[IdlRouteConfig]]:
    """``routes:``: explicit routes of Java services, google.api.http-style ones of IDL
    services; each route names a configured service."""
    routes: list[RouteConfig] = []
    idl_routes: list[IdlRouteConfig] = []
    idl = {s.interface: s for s in idl_services}
    known = {s.interface for s in services} | set(idl)
    items = v.get(root, "routes", "config", list, [])
    for i, body in enumerate(items):
        path = f"routes[{i}]"
        if isinstance(body, dict) and body.get("service") in idl:
            idl_routes.append(parse_idl_route(v, body, path, idl))
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
        routes.append(
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
    return routes, idl_routes


def parse_auto_routes(v: _V, root: _Loc) -> AutoRoutes | None:
    """``auto_routes:`` (absent: None, no auto routes): ``POST {prefix}/{interface}/{method}``."""
    auto = root.get("auto_routes")
    if auto is None:
        return None
    a = v.mapping(auto, "auto_routes", {"prefix", "expose", "header_overrides"})
    prefix = v.get(a, "prefix", "auto_routes", str, "/")
    prefix = "/" + prefix.strip("/") if prefix.strip("/") else "/"
    why = config_path_error(prefix)
    if why is not None:
        raise v.fail(a, "auto_routes.prefix", why, "prefix")
    return AutoRoutes(
        prefix=prefix,
        expose=[str(x) for x in v.get(a, "expose", "auto_routes", list, [])],
        header_overrides=v.get(a, "header_overrides", "auto_routes", bool, True),
    )
