"""Config for protobuf IDL services and their HTTP rules (hooked into ``config.py``).

A service entry with an ``idl:`` key is an IDL service::

    services:
      - interface: idl.demo.v1.Demo          # the proto package.Service
        protocol: grpc                       # or tri (adds tri-service-version/group headers)
        idl: {reflection: true}              # | {descriptor_set: x.pb} | {protos: [a.proto], include: [dir]}
        json: {field_names: camel, emit_defaults: false, enums: names, ignore_unknown: false}
        endpoints: ["127.0.0.1:50051"]       # optional: else the service's registry
        timeout: 3s

A route whose ``service`` is an IDL service uses google.api.http templates and ``body``::

    routes:
      - {method: GET, path: "/v1/{name=shelves/*}/books/{id}", service: idl.demo.v1.Demo,
         call: GetBook}
      - {method: PATCH, path: "/v1/{name=shelves/*}/books/{id}", service: idl.demo.v1.Demo,
         call: UpdateBook, body: book}

Static descriptors (``descriptor_set``/``protos``) load while the config is read, so a
missing file, a protoc error, an unknown service, method or field is a located config error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tribridge.config.paths import config_path_error
from tribridge.idl.schema import (
    IdlError,
    JsonOptions,
    Schema,
    load_descriptor_set,
    load_protos,
)
from tribridge.idl.templates import (
    BindError,
    PathTemplate,
    TemplateError,
    check_body_field,
    parse_template,
)
from tribridge.idl.templates import resolve_field as _resolve_field
from tribridge.registries.base import ServiceKey

if TYPE_CHECKING:
    from tribridge.config.reader import _V

SERVICE_KEYS = {
    "interface",
    "protocol",
    "idl",
    "json",
    "endpoints",
    "version",
    "group",
    "registry",
    "timeout",
    "auto_route",
    "retries",
    "idempotent",
}
ROUTE_KEYS = {"method", "path", "service", "call", "body", "timeout", "version", "group"}


@dataclass
class IdlServiceConfig:
    interface: str  # package.Service
    protocol: str = "grpc"  # grpc | tri
    reflection: str | None = None  # auto | v1 | v1alpha, when descriptors come from the server
    schema: Schema | None = None  # static descriptors, loaded at config time
    json: JsonOptions = field(default_factory=JsonOptions)
    endpoints: list[str] = field(default_factory=list)
    version: str = ""
    group: str = ""
    registry: str = "static"
    timeout: float = 5.0
    auto_route: bool = True
    #: other instances tried after one the request never reached (as ``ServiceConfig``)
    retries: int = 2
    #: methods that may also be sent again after a failure that may have reached a provider
    idempotent: list[str] = field(default_factory=list)

    @property
    def key(self) -> ServiceKey:
        return ServiceKey(self.interface, self.version, self.group)


@dataclass
class IdlRouteConfig:
    http_method: str
    template: PathTemplate
    service: str
    method: str
    body: str | None = None  # None, "*" or a top-level field name
    timeout: float | None = None


def is_idl_service(body: Any) -> bool:
    return isinstance(body, dict) and "idl" in body


def parse_idl_service(v: _V, body: Any, path: str, base_dir: Path | None) -> IdlServiceConfig:
    s = v.mapping(body, path, SERVICE_KEYS)
    sc = IdlServiceConfig(interface=v.get(s, "interface", path, str, required=True))
    sc.protocol = v.get(s, "protocol", path, str, "grpc")
    if sc.protocol not in ("grpc", "tri"):
        raise v.fail(s, f"{path}.protocol", "IDL services use grpc or tri", "protocol")
    sc.version = str(v.get(s, "version", path, (str, int, float), ""))
    sc.group = v.get(s, "group", path, str, "")
    sc.registry = v.get(s, "registry", path, str, "static")
    sc.timeout = v.duration(s, "timeout", path, 5.0) or 5.0
    sc.auto_route = v.get(s, "auto_route", path, bool, True)
    sc.retries = v.get(s, "retries", path, int, 2)
    if sc.retries < 0:
        raise v.fail(s, f"{path}.retries", "must be 0 or more", "retries")
    sc.idempotent = [str(m) for m in v.get(s, "idempotent", path, list, [])]
    eps = v.get(s, "endpoints", path, list, [])
    for i, e in enumerate(eps):
        if not isinstance(e, str) or ":" not in e or not e.rpartition(":")[2].isdigit():
            raise v.fail(eps, f"{path}.endpoints[{i}]", f"expected host:port, got {e!r}", i)
    sc.endpoints = [str(e) for e in eps]
    _idl_source(v, s, path, sc, base_dir)
    sc.json = _json_options(v, s, path)
    return sc


def _idl_source(v: _V, s: Any, path: str, sc: IdlServiceConfig, base_dir: Path | None) -> None:
    ipath = f"{path}.idl"
    idl = v.mapping(s.get("idl"), ipath, {"reflection", "descriptor_set", "protos", "include"})
    given = [k for k in ("reflection", "descriptor_set", "protos") if k in idl]
    if len(given) != 1:
        raise v.fail(s, ipath, "give exactly one of reflection, descriptor_set or protos", "idl")

    def rel(p: str) -> str:
        q = Path(p)
        return str(q if q.is_absolute() or base_dir is None else base_dir / q)

    if "descriptor_set" not in idl:  # protoc and the reflection messages come with grpcio-tools
        v.extra(idl, given[0], f"{ipath}.{given[0]}", "idl", f"idl.{given[0]}")
    try:
        if "reflection" in idl:
            r = idl["reflection"]
            if r is True:
                sc.reflection = "auto"
            elif r in ("v1", "v1alpha", "auto"):
                sc.reflection = r
            else:
                raise v.fail(
                    idl, f"{ipath}.reflection", "expected true, v1 or v1alpha", "reflection"
                )
            return
        if "descriptor_set" in idl:
            ds = v.get(idl, "descriptor_set", ipath, str)
            where = ("descriptor_set", ds)
            sc.schema = load_descriptor_set(rel(ds))
        else:
            protos = v.get(idl, "protos", ipath, list)
            if not protos or not all(isinstance(p, str) for p in protos):
                raise v.fail(idl, f"{ipath}.protos", "expected a list of .proto files", "protos")
            inc = v.get(idl, "include", ipath, list, [])
            where = ("protos", protos)
            sc.schema = load_protos([rel(p) for p in protos], [rel(str(d)) for d in inc])
    except IdlError as e:
        raise v.fail(idl, f"{ipath}.{where[0]}", str(e), where[0]) from None
    if not sc.schema.has_service(sc.interface):
        known = ", ".join(sc.schema.services()) or "none"
        raise v.fail(
            s,
            f"{path}.interface",
            f"{sc.interface!r} is not in the descriptors ({known})",
            "interface",
        )


def _json_options(v: _V, s: Any, path: str) -> JsonOptions:
    jpath = f"{path}.json"
    j = v.mapping(s.get("json"), jpath, {"field_names", "emit_defaults", "enums", "ignore_unknown"})
    names = v.get(j, "field_names", jpath, str, "camel")
    if names not in ("camel", "proto"):
        raise v.fail(j, f"{jpath}.field_names", "expected camel or proto", "field_names")
    enums = v.get(j, "enums", jpath, str, "names")
    if enums not in ("names", "numbers"):
        raise v.fail(j, f"{jpath}.enums", "expected names or numbers", "enums")
    return JsonOptions(
        proto_names=names == "proto",
        emit_defaults=v.get(j, "emit_defaults", jpath, bool, False),
        enums_as_numbers=enums == "numbers",
        ignore_unknown=v.get(j, "ignore_unknown", jpath, bool, False),
    )


def parse_idl_route(
    v: _V, body: Any, path: str, services: dict[str, IdlServiceConfig]
) -> IdlRouteConfig:
    r = v.mapping(body, path, ROUTE_KEYS)
    http_method = v.get(r, "method", path, str, "POST").upper()
    if http_method not in ("GET", "POST", "PUT", "DELETE", "PATCH"):
        raise v.fail(r, f"{path}.method", f"unsupported HTTP method {http_method}", "method")
    text = v.get(r, "path", path, str, required=True)
    why = config_path_error(text)
    if why is not None:
        raise v.fail(r, f"{path}.path", why, "path")
    try:
        tmpl = parse_template(text)
    except TemplateError as e:
        raise v.fail(r, f"{path}.path", f"bad template {text!r}: {e}", "path") from None
    sc = services[v.get(r, "service", path, str, required=True)]
    method = v.get(r, "call", path, str, required=True)
    bodyf = v.get(r, "body", path, str, None)
    if bodyf is not None and http_method == "GET":
        raise v.fail(r, f"{path}.body", "a GET route has no body", "body")
    rc = IdlRouteConfig(
        http_method, tmpl, sc.interface, method, bodyf, v.duration(r, "timeout", path, None)
    )
    if sc.schema is not None:  # check names now; reflection services are checked per call
        try:
            mi = sc.schema.method(sc.interface, method)
        except IdlError as e:
            raise v.fail(r, f"{path}.call", str(e), "call") from None
        try:
            for var in tmpl.variables:
                _resolve_field(mi.input.DESCRIPTOR, var)
            if bodyf not in (None, "*"):
                check_body_field(mi.input.DESCRIPTOR, bodyf)
        except BindError as e:
            raise v.fail(
                r, f"{path}.path" if bodyf in (None, "*") else f"{path}.body", str(e), "path"
            ) from None
    return rc
