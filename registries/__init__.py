"""Service discovery: one ``Registry`` interface, one module per source.

``open_registry(url)`` picks the implementation by URL scheme; modules are imported only
when used, so a deployment without Nacos never imports the Nacos client.
"""

from __future__ import annotations

import importlib
from urllib.parse import urlsplit

from tribridge.extras import missing

from .base import Registry, RegistryError

#: scheme -> "module:Class" (relative to this package)
SCHEMES: dict[str, str] = {
    "zookeeper": "zookeeper:ZookeeperRegistry",
    "zk": "zookeeper:ZookeeperRegistry",
    "nacos": "nacos:NacosRegistry",
    "eureka": "eureka:EurekaRegistry",
    "kubernetes": "kubernetes:KubernetesRegistry",
    "k8s": "kubernetes:KubernetesRegistry",
}

#: module -> the pyproject extra that installs its client library (tribridge.extras)
EXTRAS: dict[str, str] = {
    "zookeeper": "zookeeper",
    "nacos": "nacos",
    "eureka": "eureka",
    "kubernetes": "kubernetes",
}


def registry_class(scheme: str) -> type[Registry]:
    target = SCHEMES.get(scheme.lower())
    if target is None:
        raise RegistryError(
            f"unsupported registry scheme {scheme!r}; expected one of {', '.join(sorted(SCHEMES))}"
        )
    mod, _, cls = target.partition(":")
    need = missing(EXTRAS[mod], f"{scheme}:// registries")
    if need is not None:
        raise RegistryError(need)
    try:
        module = importlib.import_module(f"{__name__}.{mod}")
    except ModuleNotFoundError as e:
        raise RegistryError(f"{scheme}:// registries are not available: {e}") from None
    return getattr(module, cls)


def open_registry(url: str, name: str | None = None) -> Registry:
    """``zookeeper://127.0.0.1:2181``, ``nacos://host:8848?namespace=ns``, … → Registry."""
    scheme = urlsplit(url).scheme
    if not scheme:
        raise RegistryError(f"registry URL needs a scheme (zookeeper://, nacos:// …): {url!r}")
    return registry_class(scheme).from_url(url, name or scheme)


__all__ = ["SCHEMES", "Registry", "RegistryError", "open_registry", "registry_class"]
