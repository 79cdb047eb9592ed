"""Subscriptions and last-known-good snapshots, shared by registries that hold a whole view.

Eureka and Kubernetes registries keep one in-memory picture of every instance and re-derive
each subscribed service from it; ``SnapshotHub`` does the bookkeeping the ``Registry`` rules
ask for: pending until the first answer, only changed snapshots sent, last-known-good with
``healthy=False`` while the source is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .base import Endpoint, Listener, ServiceKey, Snapshot

log = logging.getLogger("tribridge.registry")

Resolver = Callable[[ServiceKey], tuple[Endpoint, ...]]


class SnapshotHub:
    def __init__(self, name: str) -> None:
        self.name = name
        self.listeners: dict[ServiceKey, list[Listener]] = {}
        self.snapshots: dict[ServiceKey, Snapshot] = {}
        self.loaded = False  # the source answered at least once

    def subscribe(self, service: ServiceKey, listener: Listener, resolve: Resolver) -> Snapshot:
        self.listeners.setdefault(service, []).append(listener)
        snap = self.snapshots.get(service)
        if snap is None:
            snap = (
                Snapshot(service, resolve(service))
                if self.loaded
                else Snapshot(service, (), healthy=False, pending=True)
            )
            self.snapshots[service] = snap
        return snap

    def unsubscribe(self, service: ServiceKey, listener: Listener) -> None:
        ls = self.listeners.get(service)
        if not ls:
            return
        try:
            ls.remove(listener)
        except ValueError:
            return
        if not ls:
            del self.listeners[service]
            self.snapshots.pop(service, None)

    def publish(self, resolve: Resolver) -> None:
        """The source answered: recompute every subscribed service, send what changed."""
        self.loaded = True
        for service in list(self.listeners):
            eps = resolve(service)
            old = self.snapshots.get(service)
            if old is not None and old.healthy and not old.pending and old.endpoints == eps:
                continue
            self._send(service, Snapshot(service, eps))

    def lost(self, error: str) -> None:
        """The source is unreachable: re-send last-known-good endpoints, unhealthy."""
        for service in list(self.listeners):
            old = self.snapshots.get(service)
            if old is not None and not old.healthy and old.error == error:
                continue
            eps = old.endpoints if old is not None else ()
            pending = old.pending if old is not None else True
            self._send(service, Snapshot(service, eps, healthy=False, error=error, pending=pending))

    def _send(self, service: ServiceKey, snap: Snapshot) -> None:
        self.snapshots[service] = snap
        for listener in list(self.listeners.get(service, ())):
            try:
                listener(snap)
            except Exception:
                log.exception("%s: listener for %s failed", self.name, service)
