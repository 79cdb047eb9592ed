"""pytest fixtures for testing against tribridge: a registry, a demo provider, a gateway and
a client, all on 127.0.0.1 with free ports, started once per session.

Installed with tribridge (entry point ``pytest11``), so a user's tests can simply ask::

    def test_my_route(tribridge_gateway, tribridge_client):
        assert tribridge_client.call("com.tribridge.demo.DemoService", "add", 2, 40,
                                     types="int,int") == 42

    def test_with_my_config(tribridge_gateway_factory, tribridge_registry, dubbo_demo_provider):
        gw = tribridge_gateway_factory(my_yaml)          # a dict or YAML text
        ...

Fixtures (session scope unless noted):

``tribridge_loop``            the ``BackgroundLoop`` everything runs on
``tribridge_registry``        a ``RegistryHandle``: ``register(interface, address)`` and
                              ``entry`` (what goes under ``registries:`` in a config);
                              the kind comes from ``--tribridge-registry`` (``static``
                              (default), ``zookeeper`` (a real ZooKeeper), ``nacos`` (the
                              emulator))
``dubbo_demo_provider``       ``com.tribridge.demo.DemoService`` 1.0.0 (Dubbo2/hessian2),
                              registered in ``tribridge_registry``
``tribridge_gateway_factory`` ``(config, admin=False) -> GatewayHandle`` (function scope;
                              gateways started by it stop at the end of the test)
``tribridge_gateway``         the demo routes in front of the demo provider
``tribridge_client``          a ``tribridge.Client`` for ``tribridge_gateway``

Other registries plug in with ``register_registry_launcher(name, launcher)`` (in a
conftest) or an entry point in the group ``tribridge.registry_launchers``; a launcher takes
the ``BackgroundLoop`` and returns a ``RegistryHandle`` (see ``StaticRegistryHandle``).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

DEMO_SERVICE = "com.tribridge.demo.DemoService"


class RegistryHandle(abc.ABC):
    """A registry started for tests."""

    name = "registry"

    @abc.abstractmethod
    def register(self, interface: str, address: str) -> None:
        """Make a provider (``host:port?version=…`` or a ``dubbo://`` URL) discoverable."""

    @property
    @abc.abstractmethod
    def entry(self) -> Any:
        """The value for ``registries: {<name>: …}`` in a gateway config."""

    def close(self) -> None:  # noqa: B027 — nothing to stop for static
        """Stop the registry (by PID when it is a process)."""


class StaticRegistryHandle(RegistryHandle):
    """The config-embedded registry: ``register`` must come before the gateway starts."""

    name = "static"

    def __init__(self) -> None:
        self.services: dict[str, list[str]] = {}

    def register(self, interface: str, address: str) -> None:
        self.services.setdefault(interface, []).append(address)

    @property
    def entry(self) -> Any:
        return {"type": "static", "services": {k: list(v) for k, v in self.services.items()}}


Launcher = Callable[[Any], RegistryHandle]


def _zookeeper(loop: Any) -> RegistryHandle:
    from .registry_launchers import ZookeeperRegistryHandle

    return ZookeeperRegistryHandle(loop)


def _nacos(loop: Any) -> RegistryHandle:
    from .registry_launchers import NacosRegistryHandle

    return NacosRegistryHandle(loop)


_LAUNCHERS: dict[str, Launcher] = {
    "static": lambda loop: StaticRegistryHandle(),
    "zookeeper": _zookeeper,
    "nacos": _nacos,
}


def register_registry_launcher(name: str, launcher: Launcher) -> None:
    """Add a registry kind selectable with ``--tribridge-registry NAME``."""
    _LAUNCHERS[name] = launcher


def _launchers() -> dict[str, Launcher]:
    from importlib.metadata import entry_points

    out = dict(_LAUNCHERS)
    for ep in entry_points(group="tribridge.registry_launchers"):
        out.setdefault(ep.name, ep.load())
    return out


@dataclass
class GatewayHandle:
    gateway: Any  # tribridge.routing.app.Gateway

    @property
    def port(self) -> int:
        return int(self.gateway.port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str | None:
        a = self.gateway.admin
        return None if a is None else f"http://127.0.0.1:{a.port}"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tribridge")
    group.addoption(
        "--tribridge-registry",
        default=None,
        help="registry kind for the tribridge_registry fixture (default: static)",
    )
    parser.addini("tribridge_registry", "registry kind for tribridge_registry", default="static")


@pytest.fixture(scope="session")
def tribridge_loop() -> Iterator[Any]:
    from tribridge.interop.testing import BackgroundLoop

    with BackgroundLoop() as loop:
        yield loop


@pytest.fixture(scope="session")
def tribridge_registry(request: pytest.FixtureRequest, tribridge_loop: Any) -> Iterator[Any]:
    kind = request.config.getoption("--tribridge-registry") or request.config.getini(
        "tribridge_registry"
    )
    launchers = _launchers()
    if kind not in launchers:
        raise pytest.UsageError(
            f"--tribridge-registry {kind!r}: no launcher; known: {', '.join(sorted(launchers))}"
        )
    handle = launchers[kind](tribridge_loop)
    try:
        yield handle
    finally:
        handle.close()


@pytest.fixture(scope="session")
def dubbo_demo_provider(tribridge_loop: Any, tribridge_registry: RegistryHandle) -> Any:
    provider = tribridge_loop.start_provider(version="1.0.0")
    tribridge_registry.register(DEMO_SERVICE, f"127.0.0.1:{provider.port}?version=1.0.0")
    return provider


def _config_text(config: Any) -> str:
    if isinstance(config, str):
        return config
    import yaml

    return yaml.safe_dump(config, sort_keys=False)


@pytest.fixture
def tribridge_gateway_factory(tribridge_loop: Any) -> Iterator[Callable[..., GatewayHandle]]:
    started: list[Any] = []

    def start(config: Any, admin: bool = False) -> GatewayHandle:
        gw = tribridge_loop.start_gateway(_config_text(config), admin_port=0 if admin else None)
        started.append(gw)
        return GatewayHandle(gw)

    yield start
    for gw in started:
        tribridge_loop.run(gw.stop(1.0))


@pytest.fixture(scope="session")
def tribridge_gateway(
    tribridge_loop: Any, tribridge_registry: RegistryHandle, dubbo_demo_provider: Any
) -> GatewayHandle:
    import yaml
    from tribridge.cli.commands import demo_config

    doc = yaml.safe_load(demo_config(dubbo_demo_provider.port, 0))
    doc["registries"] = {tribridge_registry.name: tribridge_registry.entry}
    for svc in doc["services"]:
        svc["registry"] = tribridge_registry.name
    gw = tribridge_loop.start_gateway(yaml.safe_dump(doc, sort_keys=False), admin_port=0)
    return GatewayHandle(gw)


@pytest.fixture(scope="session")
def tribridge_client(tribridge_gateway: GatewayHandle) -> Iterator[Any]:
    from tribridge import Client

    with Client(tribridge_gateway.url) as c:
        yield c
