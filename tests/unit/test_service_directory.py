"""The service directory (tribridge.routing.directory): building, finding, keeping and retiring
services, against a registry the test answers for (no sockets, no event loop)."""

from __future__ import annotations

from typing import Any

import pytest
from tribridge.config.model import GatewayConfig, parse_config
from tribridge.config.services import ServiceConfig
from tribridge.errors import GatewayError
from tribridge.registries.base import Endpoint, Listener, Registry, ServiceKey, Snapshot
from tribridge.routing.directory import ServiceDirectory
from tribridge.routing.state import RoutingState, build_state
from tribridge.upstream.pool import PoolSet

from tests.helpers.registries import ScriptedRegistry

CONFIG = """
registries: {static: {type: static, services: {}}}
services:
  - {interface: com.x.Kept}
  - {interface: com.x.Changed, timeout: 2s}
auto_routes: {expose: ["com.x.*"]}
"""

PROVIDER = Endpoint(host="10.0.0.1", port=20880)


class Book(ScriptedRegistry):
    """Answers what the test wrote down for each interface (absent: no providers; None: not
    answered yet)."""

    def __init__(self) -> None:
        super().__init__("static")
        self.answers: dict[str, tuple[Endpoint, ...] | None] = {}

    def first_answer(self, service: ServiceKey) -> Snapshot | None:
        eps = self.answers.get(service.interface, ())
        if eps is None:
            return Snapshot(service, (), pending=True)
        return Snapshot(service, eps)

    def unsubscribe(self, service: ServiceKey, listener: Listener) -> None:
        followers = self.listeners.get(service, [])
        if listener in followers:
            followers.remove(listener)
        if not followers:
            self.listeners.pop(service, None)

    def push(self, service: ServiceKey, eps: tuple[Endpoint, ...]) -> None:
        for listener in list(self.listeners.get(service, [])):
            listener(Snapshot(service, eps))

    def followed(self) -> set[str]:
        return {str(k) for k in self.listeners}


def _state(cfg: GatewayConfig, reg: Registry, services: Any = None) -> RoutingState:
    return build_state(cfg, services or {}, {"static": reg})


def _first(text: str = CONFIG) -> tuple[ServiceDirectory, Book, RoutingState]:
    """A directory and the state of its first config, configured services followed."""
    book = Book()
    book.answers = {"com.x.Kept": (PROVIDER,), "com.x.Changed": (PROVIDER,)}
    d = ServiceDirectory(PoolSet())
    cfg = parse_config(text)
    probe = _state(cfg, book)
    services, fresh = d.configure(probe, None, follow=False)
    assert book.followed() == set()  # follow=False: the registries start later
    assert list(services) == ["com.x.Kept", "com.x.Changed"] and len(fresh) == 2
    st = _state(cfg, book, services)
    for svc in services.values():
        d.follow(st, svc)
    return d, book, st


def test_create_secures_and_follows() -> None:
    book = Book()
    book.answers["com.x.A"] = (PROVIDER,)
    d = ServiceDirectory(PoolSet())
    st = _state(parse_config(CONFIG), book)
    svc = d.create(st, ServiceConfig("com.x.A"))
    assert svc.class_policy is st.cfg.security.classes
    assert svc.registry is book and book.followed() == {"com.x.A"}
    assert svc.snapshot.endpoints == (PROVIDER,) and svc.ever_provided
    quiet = d.create(st, ServiceConfig("com.x.B"), follow=False)
    assert quiet.registry is None and book.followed() == {"com.x.A"}
    assert d.auto == {}  # created for a caller (the ingress): not an auto service


def test_lookup_finds_configured_then_creates_auto_once_per_group() -> None:
    d, book, st = _first()
    assert d.lookup(st, "com.x.Kept") is st.services["com.x.Kept"]
    book.answers["com.x.Auto"] = (PROVIDER,)
    a = d.lookup(st, "com.x.Auto")
    assert a is not None and d.lookup(st, "com.x.Auto") is a  # created once
    g = d.lookup(st, "com.x.Auto", "blue")
    assert g is not None and g is not a and g.cfg.group == "blue"
    assert set(d.auto) == {"com.x.Auto", "blue/com.x.Auto"}
    assert {"com.x.Auto", "blue/com.x.Auto"} <= book.followed()
    assert set(d.all(st)) == {"com.x.Kept", "com.x.Changed", "com.x.Auto", "blue/com.x.Auto"}


def test_lookup_refuses_unexposed_and_unprovided_without_holding_a_watch() -> None:
    d, book, st = _first()
    before = book.followed()
    assert d.lookup(st, "org.other.Svc") is None  # not exposed: never subscribed
    assert d.lookup(st, "com.x.Nobody") is None  # answered, no provider: watch dropped
    assert book.followed() == before and d.auto == {}


def test_auto_services_are_bounded() -> None:
    d, book, st = _first()
    d.max_auto = 2
    for name in ("com.x.A", "com.x.B", "com.x.C"):
        book.answers[name] = (PROVIDER,)
    assert d.lookup(st, "com.x.A") is not None and d.lookup(st, "com.x.B") is not None
    with pytest.raises(GatewayError) as e:
        d.lookup(st, "com.x.C")
    assert e.value.status == 503 and e.value.code == "too_many_services"
    assert "com.x.C" not in book.followed()


def test_never_provided_then_drop() -> None:
    d, book, st = _first()
    book.answers["com.x.Late"] = None  # the registry has not answered yet
    svc = d.lookup(st, "com.x.Late")
    assert svc is not None and svc.snapshot.pending and not d.never_provided(svc)
    book.push(svc.cfg.key, ())  # answered: nobody provides it
    assert d.never_provided(svc)
    d.drop(st, svc)
    assert "com.x.Late" not in d.auto and "com.x.Late" not in book.followed()
    # a name that once had providers is not "never provided" (it answers 503, not 404)
    book.answers["com.x.Gone"] = (PROVIDER,)
    gone = d.lookup(st, "com.x.Gone")
    assert gone is not None
    book.push(gone.cfg.key, ())
    assert not d.never_provided(gone)
    # configured services are never dropped as unprovided
    assert not d.never_provided(st.services["com.x.Kept"])


def test_reload_keeps_rebuilds_carries_over_and_retires() -> None:
    d, book, old = _first()
    book.answers["com.x.Auto"] = (PROVIDER,)
    book.answers["com.y.Auto"] = (PROVIDER,)
    kept_auto = d.lookup(old, "com.x.Auto")
    assert kept_auto is not None
    old_kept, old_changed = old.services["com.x.Kept"], old.services["com.x.Changed"]
    cfg = parse_config(
        """
registries: {static: {type: static, services: {}}}
services:
  - {interface: com.x.Kept}
  - {interface: com.x.Changed, timeout: 3s}
auto_routes: {expose: ["com.x.*", "com.y.*"]}
"""
    )
    probe = _state(cfg, book)
    services, fresh = d.configure(probe, old)
    assert services["com.x.Kept"] is old_kept  # unchanged config and registry: kept
    assert services["com.x.Changed"] is not old_changed and fresh == [services["com.x.Changed"]]
    assert services["com.x.Changed"].cfg.timeout == 3.0
    new = _state(cfg, book, services)
    dropped = d.carry_over(old, new, fresh)
    assert dropped == []
    # kept services (configured and auto) take the new config's class policy
    assert old_kept.class_policy is cfg.security.classes
    assert kept_auto.class_policy is cfg.security.classes
    d.retire(old, new, dropped)
    # the replaced service stops following; the new one follows the same key
    assert book.listeners[old_changed.cfg.key] == [services["com.x.Changed"].update]
    assert d.lookup(new, "com.x.Auto") is kept_auto


def test_reload_drops_auto_services_no_longer_exposed_or_now_configured() -> None:
    d, book, old = _first()
    for name in ("com.x.Auto", "com.x.Promoted"):
        book.answers[name] = (PROVIDER,)
    auto, promoted = d.lookup(old, "com.x.Auto"), d.lookup(old, "com.x.Promoted")
    assert auto is not None and promoted is not None
    cfg = parse_config(
        """
registries: {static: {type: static, services: {}}}
services:
  - {interface: com.x.Kept}
  - {interface: com.x.Changed, timeout: 2s}
  - {interface: com.x.Promoted}
auto_routes: {expose: ["com.x.Promoted"]}
"""
    )
    services, fresh = d.configure(_state(cfg, book), old)
    new = _state(cfg, book, services)
    dropped = d.carry_over(old, new, fresh)
    assert {s.cfg.interface for s in dropped} == {"com.x.Auto", "com.x.Promoted"}
    assert d.auto == {}
    assert auto.update in book.listeners.get(auto.cfg.key, [])  # until the swap is done
    d.retire(old, new, dropped)
    assert auto.cfg.key not in book.listeners
    # the configured com.x.Promoted follows on its own, the auto one no longer does
    assert book.listeners[promoted.cfg.key] == [services["com.x.Promoted"].update]
    assert d.lookup(new, "com.x.Promoted") is services["com.x.Promoted"]
    assert d.lookup(new, "com.x.Auto") is None  # no longer exposed


def test_reload_without_auto_routes_forgets_every_auto_service() -> None:
    d, book, old = _first()
    book.answers["com.x.Auto"] = (PROVIDER,)
    assert d.lookup(old, "com.x.Auto") is not None
    cfg = parse_config(CONFIG.replace('auto_routes: {expose: ["com.x.*"]}', ""))
    services, fresh = d.configure(_state(cfg, book), old)
    new = _state(cfg, book, services)
    (gone,) = d.carry_over(old, new, fresh)
    assert gone.cfg.interface == "com.x.Auto" and d.auto == {}
