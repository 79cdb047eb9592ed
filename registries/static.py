"""Endpoints listed in the config: the embedded default registry."""

from __future__ import annotations

from urllib.parse import parse_qsl

from .base import (
    DubboURL,
    Endpoint,
    Listener,
    Registry,
    RegistryError,
    ServiceKey,
    Snapshot,
    matches,
)


class StaticRegistry(Registry):
    """``{interface: [provider URL or host:port, ...]}``; never changes by itself."""

    def __init__(self, services: dict[str, list[str]], name: str = "static") -> None:
        self.name = name
        self._endpoints: dict[str, tuple[Endpoint, ...]] = {}
        for iface, urls in services.items():
            eps = []
            for u in urls:
                if u.startswith("relay:"):  # another gateway's domain (gateway/relay/links.py)
                    eps.append(_relay_endpoint(u))
                    continue
                if "://" in u:
                    text = u
                else:
                    addr, _, query = u.partition("?")
                    text = f"dubbo://{addr}/{iface}" + (f"?{query}" if query else "")
                url = DubboURL.parse(text)
                if url.path and url.path != iface and "interface" not in url.params:
                    raise RegistryError(f"{u}: URL names {url.path}, listed under {iface}")
                eps.append(Endpoint.from_url(url))
            self._endpoints[iface] = tuple(eps)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def subscribe(self, service: ServiceKey, listener: Listener) -> Snapshot | None:
        eps = tuple(
            e
            for e in self._endpoints.get(service.interface, ())
            if matches(e, _lenient(service, e))
        )
        return Snapshot(service, eps)

    def services(self) -> list[str]:
        return sorted(self._endpoints)


def _relay_endpoint(text: str) -> Endpoint:
    """``relay:NAME[?version=..&group=..]``: served through the relay link NAME."""
    name, _, query = text[len("relay:") :].partition("?")
    if not name:
        raise RegistryError(f"{text!r}: expected relay:LINK_NAME")
    params = dict(parse_qsl(query))
    return Endpoint(
        host=name,
        port=0,
        protocol="relay",
        version=params.get("version", ""),
        group=params.get("group", ""),
    )


def _lenient(service: ServiceKey, ep: Endpoint) -> ServiceKey:
    # A static entry without version/group serves whatever the route asks for.
    return ServiceKey(
        service.interface,
        service.version if ep.version else "",
        service.group if ep.group else "",
    )
