"""A registry the test answers for, without sockets: it records who follows which key."""

from __future__ import annotations

from tribridge.registries.base import Listener, Registry, ServiceKey, Snapshot


class ScriptedRegistry(Registry):
    """Records every subscription in ``listeners``; ``first_answer`` (override it) is what a
    new subscriber gets back, ``push`` what the registry says later."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.listeners: dict[ServiceKey, list[Listener]] = {}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def first_answer(self, service: ServiceKey) -> Snapshot | None:
        return None

    def subscribe(self, service: ServiceKey, listener: Listener) -> Snapshot | None:
        self.listeners.setdefault(service, []).append(listener)
        return self.first_answer(service)
