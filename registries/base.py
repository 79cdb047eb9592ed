"""One interface for every registry: subscribe to a service, receive endpoint snapshots.

Snapshots are immutable tuples of ``Endpoint``; the data plane swaps a reference, it never
mutates one.  ``DubboURL`` parses and formats the provider URLs Dubbo registers
(``dubbo://host:port/com.x.Service?version=1.0.0&group=g&weight=100&methods=a,b``).
"""

from __future__ import annotations

import abc
import asyncio
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from .errors import RegistryError as RegistryError  # re-exported: registries raise it from here
from .records import SkipReport

DEFAULT_WEIGHT = 100


@dataclass(frozen=True, slots=True)
class DubboURL:
    protocol: str
    host: str
    port: int
    path: str
    params: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def parse(cls, text: str) -> DubboURL:
        text = unquote(text) if "%3A%2F%2F" in text[:40].upper() else text
        try:
            u = urlsplit(text)
        except ValueError as e:  # an unclosed IPv6 bracket, a bad netloc …
            raise RegistryError(f"not a URL ({e}): {text[:120]!r}") from None
        if not u.scheme:
            raise RegistryError(f"provider URL without a protocol: {text!r}")
        try:
            port = u.port
        except ValueError:
            raise RegistryError(f"bad port in provider URL {text!r}") from None
        if not u.hostname or port is None:
            raise RegistryError(f"provider URL needs host:port: {text!r}")
        params = dict(parse_qsl(u.query, keep_blank_values=True))
        return cls(u.scheme, u.hostname, port, u.path.lstrip("/"), MappingProxyType(params))

    def get(self, key: str, default: str = "") -> str:
        return self.params.get(key, default)

    @property
    def interface(self) -> str:
        return self.get("interface") or self.path

    def __str__(self) -> str:
        q = urlencode(sorted(self.params.items()), safe=",:*")
        return f"{self.protocol}://{self.host}:{self.port}/{quote(self.path)}" + (
            f"?{q}" if q else ""
        )


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One export of one service by one provider, as the gateway routes to it.

    One process commonly exports an interface several times on one ``host:port`` — in two
    groups, in two versions — and each export is a distinct endpoint: registries key them by
    ``export_key`` (never by address alone), consumers pick among them by group and version,
    and the upstream pool still shares one connection per ``address``."""

    host: str
    port: int
    protocol: str = "dubbo"
    weight: int = DEFAULT_WEIGHT
    version: str = ""
    group: str = ""
    methods: tuple[str, ...] = ()
    metadata: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    enabled: bool = True

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def export_key(self) -> tuple[str, str, int, str, str]:
        """What makes an export distinct: (protocol, host, port, group, version)."""
        return (self.protocol, self.host, self.port, self.group, self.version)

    @property
    def key(self) -> str:
        """``export_key`` as text (load-balancer state, logs)."""
        s = f"{self.protocol}://{self.host}:{self.port}"
        if self.group or self.version:
            s += f"/{self.group}:{self.version}"
        return s

    @classmethod
    def from_url(cls, url: DubboURL) -> Endpoint:
        try:
            weight = int(url.get("weight") or DEFAULT_WEIGHT)
        except ValueError:
            raise RegistryError(f"bad weight in {url}") from None
        methods = tuple(m for m in url.get("methods").split(",") if m)
        return cls(
            host=url.host,
            port=url.port,
            protocol=url.protocol,
            weight=max(weight, 0),
            version=url.get("version"),
            group=url.get("group"),
            methods=methods,
            metadata=url.params,
            enabled=url.get("enabled", "true") != "false" and url.get("disabled") != "true",
        )


@dataclass(frozen=True, slots=True)
class ServiceKey:
    interface: str
    version: str = ""
    group: str = ""

    def __str__(self) -> str:
        s = self.interface
        if self.group:
            s = f"{self.group}/{s}"
        if self.version:
            s = f"{s}:{self.version}"
        return s


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Endpoints of one service at one moment; ``healthy`` is False while the registry
    is unreachable (the endpoints are then last-known-good)."""

    service: ServiceKey
    endpoints: tuple[Endpoint, ...]
    healthy: bool = True
    at: float = field(default_factory=time.time)
    error: str | None = None
    #: Java signatures published by the providers (None when the registry has none).
    definition: Any = None  # tribridge.registries.metadata.ServiceDefinition
    #: True until the registry has answered once (routes report not-ready, not 404).
    pending: bool = False

    def repeats(self, old: Snapshot | None) -> bool:
        """Whether listeners that saw ``old`` would learn nothing from this one (same
        endpoints, health, signatures and error; only ``at`` differs): registries do not
        re-send such a snapshot.  Nothing repeats an answer still pending."""
        return (
            old is not None
            and not old.pending
            and old.endpoints == self.endpoints
            and old.healthy == self.healthy
            and old.definition is self.definition
            and old.error == self.error
        )


Listener = Callable[[Snapshot], Any]


class Registry(abc.ABC):
    """A source of endpoints.  Implementations call listeners with fresh snapshots.

    Rules every implementation follows (the gateway relies on them):

    * ``start()`` never fails because the registry is unreachable: it returns, reports
      ``status()["connected"] = False`` and keeps retrying with backoff.
    * Listeners are called **on the event loop thread** that ran ``start()`` (client
      libraries with their own threads, like kazoo, hand over with
      ``loop.call_soon_threadsafe``), with a new immutable ``Snapshot`` each time.
    * A lost registry never empties a service: the last-known-good endpoints are
      re-sent with ``healthy=False`` and ``error`` set.
    * One malformed record is skipped and reported through ``self.skips``
      (``registries/records.py``: counted, logged rate-limited, listed in
      ``status()["skipped_records"]``), never blocks the rest.
    """

    name: str = "registry"
    #: URL schemes this class serves (``zookeeper``, ``nacos`` …), see ``open_registry``.
    schemes: tuple[str, ...] = ()

    @classmethod
    def from_url(cls, url: str, name: str) -> Registry:
        raise RegistryError(f"{cls.__name__} cannot be created from a URL")

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    def subscribe(self, service: ServiceKey, listener: Listener) -> Snapshot | None:
        """Start following ``service``; returns the current snapshot if one is known."""

    def unsubscribe(self, service: ServiceKey, listener: Listener) -> None:  # noqa: B027
        """Stop calling ``listener`` for ``service`` (default: nothing to release)."""

    async def list_services(self) -> list[str]:
        """Interface names the registry knows (for ``tribridge registry ls``)."""
        raise RegistryError(f"{type(self).__name__} cannot list services")

    async def lookup(self, service: ServiceKey, timeout: float = 5.0) -> Snapshot:
        """The first settled snapshot of ``service`` (subscribe, wait, unsubscribe)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Snapshot] = loop.create_future()

        why: list[str] = []  # the source's last complaint: why it has not answered

        def on(snap: Snapshot) -> None:
            if snap.error:
                why[:] = [snap.error]
            if not snap.pending and not fut.done():
                fut.set_result(snap)

        snap = self.subscribe(service, on)
        if snap is not None:
            on(snap)
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise RegistryError(
                f"{self.name}: no answer about {service} within {timeout:g}s"
                + "".join(f" ({w})" for w in why)
            ) from None
        finally:
            self.unsubscribe(service, on)

    @functools.cached_property
    def skips(self) -> SkipReport:
        """Records this registry rejected (created on first use, so every implementation
        has one without an ``__init__`` contract)."""
        return SkipReport(self.name)

    def status(self) -> dict[str, Any]:
        return {"name": self.name, "type": type(self).__name__}


def parse_interface_map(text: str, scheme: str, target: str) -> dict[str, tuple[str, ...]]:
    """A registry URL's ``map=com.x.A:T1,com.x.B:T2,com.x.A:T3`` -> {interface: (T, ...)}:
    which Eureka apps / Kubernetes Services serve an interface that says nothing itself."""
    out: dict[str, list[str]] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        iface, sep, name = item.rpartition(":")
        if not sep or not iface or not name:
            raise RegistryError(f"{scheme} URL: map entry {item!r} is not interface:{target}")
        out.setdefault(iface, []).append(name)
    return {k: tuple(v) for k, v in out.items()}


def matches(ep: Endpoint, service: ServiceKey) -> bool:
    """Dubbo's match: a version / group of ``*`` or empty on the consumer side takes all."""
    if not ep.enabled:
        return False
    if service.version not in ("", "*") and ep.version != service.version:
        return False
    return service.group in ("*",) or ep.group == service.group
