"""Registry kinds for the pytest plugin's ``tribridge_registry`` fixture beyond ``static``:
a real ZooKeeper (interop/zk_server.py) and the Nacos emulator (interop/nacos_emulator.py),
with providers registered the way Dubbo registers them (interop/registration.py,
interop/nacos_registration.py).  Selected with ``--tribridge-registry zookeeper|nacos``.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from tribridge.registries.base import DubboURL

from .pytest_plugin import RegistryHandle


def _provider_url(interface: str, address: str) -> DubboURL:
    """``host:port?version=…`` (or a full ``dubbo://`` URL) -> the URL a provider exports."""
    if "://" in address:
        return DubboURL.parse(address)
    hostport, _, query = address.partition("?")
    u = DubboURL.parse(f"dubbo://{hostport}/{interface}" + (f"?{query}" if query else ""))
    params = {"interface": interface, "side": "provider", "dubbo": "2.0.2", **u.params}
    return DubboURL(u.protocol, u.host, u.port, interface, MappingProxyType(params))


class ZookeeperRegistryHandle(RegistryHandle):
    """Interface-level registration under ``/dubbo/{interface}/providers`` in a real ZooKeeper
    (started here unless ``server`` is given; then it is not stopped either)."""

    name = "zk"

    def __init__(self, loop: Any = None, server: Any = None) -> None:
        from .registration import ZkPublisher
        from .zk_server import start_zookeeper

        self._own = server is None
        self.server = server if server is not None else start_zookeeper()
        self.publisher = ZkPublisher(self.server.address).start()

    def register(self, interface: str, address: str) -> None:
        self.publisher.register_provider(_provider_url(interface, address))

    @property
    def entry(self) -> Any:
        return f"zookeeper://{self.server.address}"

    def close(self) -> None:
        self.publisher.stop()
        if self._own:
            self.server.close()


class NacosRegistryHandle(RegistryHandle):
    """Interface-level instances in the Nacos emulator, written by nacos-sdk-python (one
    naming client per provider, as Nacos 2.x requires); ``emulator`` as for ZooKeeper."""

    name = "nacos"

    def __init__(self, loop: Any, emulator: Any = None) -> None:
        from .nacos_emulator import start_emulator_process

        self.loop = loop
        self._own = emulator is None
        self.emulator = emulator if emulator is not None else start_emulator_process(0)
        self.providers: list[Any] = []

    def register(self, interface: str, address: str) -> None:
        from .nacos_registration import DubboNacosProvider

        p = DubboNacosProvider(self.emulator.address, _provider_url(interface, address))
        self.loop.run(p.start())
        self.providers.append(p)

    @property
    def entry(self) -> Any:
        return f"nacos://{self.emulator.address}?timeout=1000&refresh=1"

    def close(self) -> None:
        for p in self.providers:
            try:
                self.loop.run(p.close(), timeout=10)
            except Exception:
                pass
        self.providers.clear()
        if self._own:
            self.emulator.close()
