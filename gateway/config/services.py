"""What the config says about one Dubbo service and its methods, and the ``services:``
section that declares them.

The settings are plain values, read by the invoker (``tribridge.invoke.invoker.Service``) and
by every door that builds one; they live in the config package so that parsing a config never
imports the runtime that it configures.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tribridge.codecs.hessian2 import HessianError, JavaType, PojoDef, TypeRegistry
from tribridge.codecs.hessian2.javatypes import parse_types
from tribridge.config.idl import IdlServiceConfig, is_idl_service, parse_idl_service
from tribridge.config.reader import _V, _Loc
from tribridge.config.streaming import STREAM_KINDS
from tribridge.config.typecheck import unknown_type
from tribridge.config.upstream import BALANCER_NAMES
from tribridge.registries.base import ServiceKey


@dataclass
class MethodConfig:
    name: str
    types: list[JavaType] | None = None
    idempotent: bool = False
    timeout: float | None = None
    #: "" unary; "server", "client" or "bidi": a Java StreamObserver method (docs/streaming.md)
    stream: str = ""


@dataclass
class ServiceConfig:
    interface: str
    version: str = ""
    group: str = ""
    registry: str = "static"
    loadbalance: str = "random"
    hash_arg: int = 0
    timeout: float = 5.0
    retries: int = 2
    call: str = "auto"  # auto | direct | generic
    methods: dict[str, MethodConfig] = field(default_factory=dict)
    types: TypeRegistry = field(default_factory=TypeRegistry)
    expose_methods: list[str] = field(default_factory=lambda: ["*"])
    include_class: bool = True
    token: str | None = None
    #: "" = as each endpoint says (``dubbo://`` / ``tri://``); "dubbo" or "tri" forces one
    protocol: str = ""
    #: provider response attachments (Dubbo2) / trailers (Triple) returned to the HTTP client
    #: as ``x-dubbo-attachment-<name>`` headers; lower-case names, ``"*"`` for all
    response_attachments: list[str] = field(default_factory=list)
    #: Triple transport: "" = gRPC over HTTP/2; "http1" = Triple's HTTP/1.1 unary mode
    #: (JSON bodies)
    transport: str = ""
    #: provider stack traces in HTTP error bodies (``errors.java_stack_traces``; default off:
    #: they are logged, never sent)
    java_stack_traces: bool = False

    @property
    def key(self) -> ServiceKey:
        return ServiceKey(self.interface, self.version, self.group)


_ATTACHMENT_NAME = re.compile(r"^(\*|[A-Za-z0-9][A-Za-z0-9._-]*)$")


def parse_services(
    v: _V, root: _Loc, registries: Mapping[str, Any]
) -> tuple[list[ServiceConfig], list[IdlServiceConfig]]:
    """``services:``: Java services (signatures, types, balancing …) and protobuf IDL
    services, each checked against the configured ``registries``."""
    services: list[ServiceConfig] = []
    idl_services: list[IdlServiceConfig] = []
    items = v.get(root, "services", "config", list, [])
    for i, body in enumerate(items):
        path = f"services[{i}]"
        if is_idl_service(body):
            idl_services.append(_idl_service(v, body, path, registries))
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
        if registries and sc.registry not in registries:
            raise v.fail(
                s,
                f"{path}.registry",
                f"unknown registry {sc.registry!r}; defined: {', '.join(registries)}",
                "registry",
            )
        sc.loadbalance = v.get(s, "loadbalance", path, str, "random")
        if sc.loadbalance not in BALANCER_NAMES:
            raise v.fail(
                s,
                f"{path}.loadbalance",
                f"expected one of {', '.join(BALANCER_NAMES)}",
                "loadbalance",
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
        #: (node, path, key, types, as written): checked against ``types:`` once it is read
        written: list[tuple[Any, str, Any, list[JavaType], str]] = []
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
            if types is not None:
                key = "types" if m is not None else mname
                text = mbody_types if isinstance(mbody_types, str) else ""
                written.append(
                    (m if m is not None else methods, f"{mpath}.types", key, types, text)
                )
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
            pojo = [
                (str(f), v.jtype(fields, f, f"{tpath}.fields.{f}", ft)) for f, ft in fields.items()
            ]
            written += [(fields, f"{tpath}.fields.{f}", f, [ft], "") for f, ft in pojo]
            reg.add(PojoDef(str(cname), pojo))
        for node, tpath, key, types, text in written:
            check_types(v, node, tpath, key, types, reg.defs, text)
        sc.types = reg
        services.append(sc)
    return services, idl_services


def check_types(
    v: _V, node: Any, path: str, key: Any, types: list[JavaType], known: Collection[str], text: str
) -> None:
    """Refuse Java type names that name no type (``Strng``, ``IX``), at ``node``'s line."""
    why = unknown_type(types, known, text)
    if why is not None:
        raise v.fail(node, path, why, key)


def _idl_service(v: _V, body: Any, path: str, registries: Mapping[str, Any]) -> IdlServiceConfig:
    src = Path(v.source)
    sc = parse_idl_service(v, body, path, src.parent if src.is_file() else None)
    if not sc.endpoints and not registries:
        raise v.fail(body, path, "an IDL service needs endpoints or a registry")
    if not sc.endpoints and sc.registry not in registries:
        raise v.fail(
            body,
            f"{path}.registry",
            f"unknown registry {sc.registry!r}; defined: {', '.join(registries)}",
            "registry",
        )
    return sc
