"""The service directory: every ``Service`` the gateway calls, whoever asked for it.

Three kinds of service, one owner:

* **configured** (``services:``): built for each config, kept across a reload when their
  config and registry are unchanged (balancer state, request templates and the registry
  subscription live on), held by the immutable ``RoutingState``;
* **auto-discovered** (``auto_routes``): created on a first call of an exposed interface,
  one per (interface, group), at most ``max_auto``; forgotten when nobody provides them, or
  when a reload no longer exposes them (re-created on demand);
* **ingress-created** (the Dubbo2 ingress's own LRU of (interface, version, group)): built
  here so they get the same class policy, upstream TLS and registry subscription.

Why one owner: building a service is more than ``Service(cfg)`` — the config's class policy
and upstream TLS are applied, the registry chosen and subscribed — and a reload must
re-apply, keep, drop and unsubscribe them consistently.  Callers (the router, the ingress,
``ops.hotconfig``) use the public methods below; the state they act on is passed in, so a
request keeps the state it started with.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from tribridge.config.services import ServiceConfig
from tribridge.errors import GatewayError
from tribridge.invoke.invoker import Service
from tribridge.registries.base import Registry, ServiceKey
from tribridge.routing.state import RoutingState
from tribridge.security.tls import client_tls_for
from tribridge.upstream.pool import PoolSet

log = logging.getLogger("tribridge")

#: auto-routed services followed at once (each holds a registry subscription)
MAX_AUTO_SERVICES = 4096


def service_fingerprint(sc: ServiceConfig) -> str:
    """Equal for configs that would behave identically (TypeRegistry has no ``__eq__``)."""
    types = sorted((n, repr(d)) for n, d in sc.types.defs.items())
    return repr(dataclasses.replace(sc, types=None)) + repr(types)  # type: ignore[arg-type]


def unfollow(reg: Registry | None, svc: Any) -> None:
    """Stop ``svc`` (a Java or IDL service) following ``reg``; a failure is logged, never
    raised, so one broken registry cannot stop a reload's clean-up."""
    if reg is not None:
        try:
            reg.unsubscribe(svc.cfg.key, svc.update)
            svc.release()
        except Exception:
            log.exception("unsubscribing %s failed", svc.cfg.key)


class ServiceDirectory:
    """Creates, finds, keeps and retires the gateway's services (module docstring)."""

    def __init__(self, pools: PoolSet, max_auto: int = MAX_AUTO_SERVICES) -> None:
        self.pools = pools
        self.max_auto = max_auto
        #: auto-routed services by "interface" or "group/interface" (outside the state:
        #: discovered at run time, carried over reloads that still expose them)
        self._auto: dict[str, Service] = {}

    # ---- building ------------------------------------------------------------------------

    def create(self, st: RoutingState, sc: ServiceConfig, *, follow: bool = True) -> Service:
        """A new service for ``sc`` with ``st``'s class policy and upstream TLS, following
        its registry unless ``follow`` is false (the gateway's first state: its registries
        start later, and ``follow`` is called then)."""
        svc = Service(sc, self.pools)
        self.secure(st, svc)
        if follow:
            self.follow(st, svc)
        return svc

    @staticmethod
    def secure(st: RoutingState, svc: Service) -> None:
        """Class policy and upstream TLS of ``st``'s config (re-applied to kept services on
        reload: plain attribute stores, atomic for requests in flight)."""
        sec = st.cfg.security
        svc.class_policy = sec.classes
        profiles = sec.upstream_tls
        reg = st.registry_name(svc.cfg)
        svc.tls_for = lambda iface, ep: client_tls_for(profiles, iface, reg, ep)

    @staticmethod
    def follow(st: RoutingState, svc: Service) -> None:
        """Subscribe ``svc`` to its registry in ``st`` (none: it keeps no endpoints)."""
        reg = st.registry_for(svc.cfg)
        if reg is None:
            return
        svc.registry = reg
        snap = reg.subscribe(svc.cfg.key, svc.update)
        if snap is not None:
            svc.update(snap)

    def configure(
        self, st: RoutingState, old: RoutingState | None, *, follow: bool = True
    ) -> tuple[dict[str, Service], list[Service]]:
        """The configured services of ``st.cfg`` -> (by interface, the ones built anew).

        A service of ``old`` whose config and registry are unchanged is kept as it is; the
        others are built (and follow their registry, unless ``follow`` is false)."""
        services: dict[str, Service] = {}
        fresh: list[Service] = []
        for sc in st.cfg.services:
            prev = old.services.get(sc.interface) if old is not None else None
            if (
                prev is not None
                and old is not None
                and service_fingerprint(prev.cfg) == service_fingerprint(sc)
                and old.registry_for(prev.cfg) is st.registry_for(sc)
            ):
                services[sc.interface] = prev
                continue
            svc = self.create(st, sc, follow=follow)
            fresh.append(svc)
            services[sc.interface] = svc
        return services, fresh

    # ---- auto-routed services ------------------------------------------------------------

    def lookup(self, st: RoutingState, interface: str, group: str = "") -> Service | None:
        """The configured service, else the auto service of (interface, group), created on
        first use; None when the interface is not exposed or nobody provides it.

        A group is a separate Dubbo service (an empty group matches only ungrouped
        providers), so the x-dubbo-group header picks its own subscription, as the Dubbo2
        ingress does; every version stays in one snapshot and the call's version filters it.
        Raises 503 ``too_many_services`` past ``max_auto``."""
        svc = st.services.get(interface)
        if svc is not None:
            return svc
        key = str(ServiceKey(interface, "", group))  # "interface" or "group/interface"
        svc = self._auto.get(key)
        if svc is not None:
            return svc
        if not st.exposure.service(interface, st.registry_name(ServiceConfig(interface))):
            return None
        if len(self._auto) >= self.max_auto:
            raise GatewayError(
                503, "too_many_services", f"more than {self.max_auto} auto-routed services"
            )
        svc = self.create(st, ServiceConfig(interface, group=group))
        if not svc.snapshot.endpoints and not svc.snapshot.pending:
            self.drop(st, svc)
            return None
        self._auto[key] = svc
        return svc

    def never_provided(self, svc: Service) -> bool:
        """An auto service the registry has answered about but never had a provider for:
        answer 404 and hold no watch (a name that once had providers answers 503)."""
        snap = svc.snapshot
        return (
            self._auto.get(str(svc.cfg.key)) is svc
            and not snap.pending
            and not snap.endpoints
            and not svc.ever_provided
        )

    def drop(self, st: RoutingState, svc: Service) -> None:
        """Forget an auto service nobody provides, so unknown names hold no watches."""
        reg = st.registry_for(svc.cfg)
        if reg is not None:
            reg.unsubscribe(svc.cfg.key, svc.update)
        svc.release()
        key = str(svc.cfg.key)
        if self._auto.get(key) is svc:
            del self._auto[key]

    @property
    def auto(self) -> Mapping[str, Service]:
        """The auto services now followed, by "interface" or "group/interface" (a copy)."""
        return dict(self._auto)

    def all(self, st: RoutingState) -> dict[str, Service]:
        """Configured and auto services; a configured one wins over an auto one's name."""
        out = dict(self._auto)
        out.update(st.services)
        return out

    # ---- reload --------------------------------------------------------------------------

    def carry_over(
        self, old: RoutingState, new: RoutingState, fresh: Iterable[Service]
    ) -> list[Service]:
        """Ready every kept service for ``new`` and forget the auto services it no longer
        exposes (or whose registry changed, or that became configured); returns those, to
        ``retire`` after the swap.  Run right before the swap, with no await in between, so
        no request sees a mix."""
        built = {id(s) for s in fresh}
        for svc in new.services.values():
            if id(svc) not in built:
                self.secure(new, svc)  # class policy / upstream TLS of the new config
        dropped = []
        for key, svc in list(self._auto.items()):
            iface = svc.cfg.interface
            keep = (
                new.auto is not None
                and iface not in new.services
                and new.exposure.service(iface, new.registry_name(svc.cfg))
                and old.registry_for(svc.cfg) is new.registry_for(svc.cfg)
            )
            if keep:
                self.secure(new, svc)
            else:
                dropped.append(svc)
                del self._auto[key]
        return dropped

    @staticmethod
    def retire(old: RoutingState, new: RoutingState, dropped: Iterable[Service]) -> None:
        """After the swap: unsubscribe the configured services only ``old`` held and the
        auto services ``carry_over`` dropped (requests in flight on them finish: a released
        service keeps its endpoints)."""
        kept = {id(s) for s in new.services.values()}
        for svc in old.services.values():
            if id(svc) not in kept:
                unfollow(old.registry_for(svc.cfg), svc)
        for svc in dropped:
            unfollow(old.registry_for(svc.cfg), svc)
