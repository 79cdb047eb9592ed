"""Where the Dubbo2 ingress sends a request: routes, services and their signatures.

Per listener, bounded: the route of each (path, version, group, method) seen (first match
of ``IngressConfig.routes``, as Envoy's dubbo_proxy), the ``Service`` of each service key
called (LRU, ``max_services``: each holds a registry subscription), and the classes each
called method may carry (the class policy's allowlist).  The Dubbo2 statuses a consumer
gets for what goes wrong here are Java's (``IngressReply``).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from tribridge.codecs.dubbo.frame import SERVICE_ERROR, SERVICE_NOT_FOUND
from tribridge.codecs.hessian2 import TypeRegistry
from tribridge.config.relay import IngressConfig, IngressRoute
from tribridge.config.services import ServiceConfig
from tribridge.invoke.invoker import Service
from tribridge.registries.base import ServiceKey
from tribridge.routing.directory import ServiceDirectory
from tribridge.routing.state import RoutingState
from tribridge.security.policy import known_classes

_ROUTE_CACHE = 8192


class IngressReply(Exception):
    """A failure answered with a non-20 status and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def service_label(path: str, version: str, group: str) -> str:
    """``group/path:version`` as Java prints a service key."""
    key = f"{group}/{path}" if group else path
    return f"{key}:{version}" if version else key


@dataclass(slots=True)
class Target:
    """Where one request goes: a service of this gateway or a relay link, and by when."""

    path: str
    version: str
    group: str
    #: seconds: the consumer's ``timeout`` attachment, else the route's or service's
    timeout: float
    svc: Service | None = None
    #: the relay link (``upstream.protocols.UpstreamPool``) when the route says ``relay:NAME``
    link: Any = None
    #: ``time.monotonic()`` when the consumer stops waiting (the attempt loop's deadline)
    deadline: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.timeout

    @property
    def label(self) -> str:
        return service_label(self.path, self.version, self.group)


class ServiceHost(Protocol):
    """What the ingress routes read of the gateway (``routing.app.Gateway``): the current
    state (its services and registries), the services it serves itself, and the directory
    that creates a service for a key the ingress is called with."""

    state: RoutingState
    directory: ServiceDirectory

    @property
    def services(self) -> Mapping[str, Service]: ...


class IngressRoutes:
    """Routes, services (LRU) and signature allowlists of one Dubbo2 listener."""

    def __init__(
        self, gw: ServiceHost, cfg: IngressConfig, label: str, not_found_hint: str
    ) -> None:
        self.gw = gw
        self.cfg = cfg
        self.label = label
        self.not_found_hint = not_found_hint
        #: LRU: least recently called first (max_services)
        self.services: OrderedDict[ServiceKey, Service] = OrderedDict()
        self._routes: dict[tuple[str, str, str, str], IngressRoute | None] = {}
        #: (path, version, group, method) -> (what it was computed from, allowlist)
        self._known: dict[
            tuple[str, str, str, str], tuple[tuple[Any, ...], frozenset[str] | None]
        ] = {}

    def close(self) -> None:
        """Stop following every service this listener subscribed to."""
        for svc in self.services.values():
            self.forget(svc)
        self.services.clear()

    def known_classes(self, path: str, version: str, group: str, inv: Any) -> frozenset[str] | None:
        """The allowlist of the called method's signature — configured ``methods`` types and
        provider metadata overloads of the service, transitively through their POJOs — or
        None when this gateway knows no signature for it (then the deny list judges alone).
        For ``$invoke`` the method is the one named in the first argument."""
        method = inv.method
        if method in ("$invoke", "$invokeAsync") and inv.args and isinstance(inv.args[0], str):
            method = inv.args[0]
        # the configured service (methods, types) and the ingress's own subscription to
        # the same key (provider metadata), whichever exist
        svcs = [
            x
            for x in (
                self.gw.state.services.get(path),
                self.services.get(ServiceKey(path, version, group)),
            )
            if x is not None
        ]
        if not svcs:
            return None
        key = (path, version, group, method)
        stamp = tuple(
            y
            for x in svcs
            for y in (x, x.cfg.methods.get(method), x.snapshot.definition, x.cfg.types)
        )
        hit = self._known.get(key)
        if (
            hit is not None
            and len(hit[0]) == len(stamp)
            and all(a is b for a, b in zip(hit[0], stamp, strict=True))
        ):
            return hit[1]
        overloads: list[Any] = []
        reg = TypeRegistry()
        for x in svcs:
            mcfg = x.cfg.methods.get(method)
            if mcfg is not None and mcfg.types is not None:
                overloads.append(mcfg.types)
            d = x.snapshot.definition
            if d is not None:
                overloads += [o.parameter_types for o in d.overloads(method)]
            for pd in x.type_registry().defs.values():
                reg.add(pd)
        known = known_classes(overloads, reg) if overloads else None
        if len(self._known) >= _ROUTE_CACHE:
            self._known.clear()
        self._known[key] = (stamp, known)
        return known

    def route(self, path: str, version: str, group: str, method: str) -> IngressRoute | None:
        key = (path, version, group, method)
        try:
            return self._routes[key]
        except KeyError:
            pass
        hit = next((r for r in self.cfg.routes if r.matches(path, version, group, method)), None)
        if len(self._routes) >= _ROUTE_CACHE:
            self._routes.clear()
        self._routes[key] = hit
        return hit

    def timeout(self, att: Any, default: float | None) -> float:
        """The consumer's ``timeout`` attachment (ms), else the route's or service's."""
        ms: float | None = None
        if isinstance(att, (int, str)) and not isinstance(att, bool):
            try:
                ms = float(att)
            except ValueError:
                ms = None
        if ms is not None and ms > 0:
            return min(ms / 1000, self.cfg.max_timeout)
        return default or 5.0

    def service(self, path: str, version: str, group: str) -> Service:
        key = ServiceKey(path, version, group)
        services = self.services
        svc = services.get(key)
        if svc is not None:
            services.move_to_end(key)
            return svc
        while len(services) >= self.cfg.max_services:
            # the least recently called goes (calls in flight keep their Service object);
            # refusing every new service until a restart would let a scan take the door
            _, old = services.popitem(last=False)
            self.forget(old)
        base = self.gw.services.get(path)
        cfg = ServiceConfig(path, version, group)
        if base is not None:
            cfg.registry = base.cfg.registry
            cfg.loadbalance = base.cfg.loadbalance
            cfg.retries = base.cfg.retries
            cfg.timeout = base.cfg.timeout
        st = self.gw.state
        svc = self.gw.directory.create(st, cfg)
        self.services[key] = svc
        return svc

    def forget(self, svc: Service) -> None:
        """Stop following ``svc`` in its registry (unless the gateway itself follows it)."""
        reg = self.gw.state.registry_for(svc.cfg)
        if reg is not None and svc.cfg.interface not in self.gw.services:
            reg.unsubscribe(svc.cfg.key, svc.update)
            svc.release()

    def no_provider(self, to: Target) -> IngressReply:
        err = to.svc.snapshot.error if to.svc is not None else None
        return IngressReply(
            SERVICE_ERROR,
            f"No provider available for the service {to.label} "
            f"from tribridge ({self.label})" + (f": registry: {err}" if err else ""),
        )

    def target(
        self, inv: Any, path: str, version: str, group: str, links: Mapping[str, Any]
    ) -> Target:
        """Where a decoded request goes: its route's relay link, or the service of its key
        (raises ``IngressReply`` SERVICE_NOT_FOUND without a route)."""
        route = self.route(path, version, group, inv.method)
        if route is None:
            raise IngressReply(
                SERVICE_NOT_FOUND,
                f"Service {service_label(path, version, group)} not found, invocation "
                f"rejected. ({self.not_found_hint}; method {inv.method})",
            )
        att = inv.attachments.get("timeout")
        link_name = route.relay_link
        if link_name is not None:
            timeout = self.timeout(att, route.timeout)
            return Target(path, version, group, timeout, link=links[link_name])
        svc = self.service(path, version, group)
        timeout = self.timeout(att, route.timeout or svc.cfg.timeout)
        return Target(path, version, group, timeout, svc=svc)
