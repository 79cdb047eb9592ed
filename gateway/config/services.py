"""What the config says about one Dubbo service and its methods.

These are plain settings, read by the invoker (``tribridge.invoke.invoker.Service``) and by
every door that builds one; they live in the config package so that parsing a config never
imports the runtime that it configures.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tribridge.codecs.hessian2 import JavaType, TypeRegistry
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

    @property
    def key(self) -> ServiceKey:
        return ServiceKey(self.interface, self.version, self.group)
