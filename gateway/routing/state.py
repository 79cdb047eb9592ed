"""What one config means for routing: one immutable ``RoutingState``, replaced whole.

Everything a request is routed by — routes, configured services, registries, auto-route,
exposure and tracing settings, the guard and the IDL router — sits in one frozen object; the
handler reads ``Gateway.state`` once per request, and a config reload (``ops.hotconfig``)
builds a new state and swaps that one reference, so a request never sees two configs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tribridge.config.model import AutoRoutes, GatewayConfig
from tribridge.http.headers import passthrough_names
from tribridge.invoke.invoker import Service
from tribridge.ops.tracing import Tracer
from tribridge.registries import open_registry
from tribridge.registries.base import Registry
from tribridge.registries.static import StaticRegistry
from tribridge.routing.idl_routes import IdlRouter
from tribridge.routing.routes import RouteTable
from tribridge.security.exposure import Exposure
from tribridge.upstream.pool import PoolSet


@dataclass(frozen=True, slots=True)
class RoutingState:
    """What one config means for routing; never mutated, replaced whole on reload."""

    cfg: GatewayConfig
    routes: RouteTable
    services: Mapping[str, Service]  # configured services by interface
    registries: Mapping[str, Registry]
    auto: AutoRoutes | None
    passthrough: tuple[str, ...]
    tracer: Tracer
    version: str
    exposure: Exposure
    guard: Any = None  # guard.Guard (auth, rate limits) or None
    idl: IdlRouter | None = None
    loaded_at: float = field(default_factory=time.time)

    def registry_for(self, sc: Any) -> Registry | None:
        name = self.registry_name(sc)
        return self.registries[name] if name is not None else None

    def registry_name(self, sc: Any) -> str | None:
        if sc.registry in self.registries:
            return str(sc.registry)
        return next(iter(self.registries), None)


def build_state(
    cfg: GatewayConfig,
    services: Mapping[str, Service],
    registries: Mapping[str, Registry],
    guard: Any = None,
    idl: IdlRouter | None = None,
) -> RoutingState:
    return RoutingState(
        cfg=cfg,
        routes=RouteTable(cfg.routes),
        services=dict(services),
        registries=dict(registries),
        auto=cfg.auto,
        passthrough=passthrough_names(cfg),
        tracer=Tracer(cfg.tracing),
        version=cfg.digest or "unversioned",
        exposure=Exposure(
            cfg.auto.expose if cfg.auto is not None else [],
            {n: r["expose"] for n, r in cfg.registries.items() if r.get("expose") is not None},
        ),
        guard=guard,
        idl=idl,
    )


def build_idl(
    cfg: GatewayConfig, guard: Any, pools: PoolSet, streams: Any = None
) -> IdlRouter | None:
    """The IDL router of ``cfg``; ``streams`` (``streaming.calls.Streams``) serves its
    streaming methods."""
    if not cfg.idl_services:
        return None
    idl = IdlRouter(
        cfg.idl_services,
        cfg.idl_routes,
        cfg.auto.prefix if cfg.auto is not None else "/",
        passthrough_names(cfg),
        pools.triple_client(),
        pools,
    )
    idl.tls_profiles = cfg.security.upstream_tls
    idl.guard = guard
    idl.max_json_elements = cfg.max_json_elements
    idl.streams = streams
    return idl


def open_registries(cfg: GatewayConfig) -> dict[str, Registry]:
    out: dict[str, Registry] = {}
    for name, r in cfg.registries.items():
        out[name] = open_one_registry(name, r)
    return out


def open_one_registry(name: str, spec: dict[str, Any]) -> Registry:
    if "url" in spec:
        return open_registry(spec["url"], name)
    return StaticRegistry(spec["services"], name)
