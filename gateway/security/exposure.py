"""Which services and methods a client may reach through auto routes.

Deny by default: an interface is callable through ``POST /{interface}/{method}`` only when an
``auto_routes.expose`` pattern names it (and, when the registry it is found in has an
``expose`` list, that list names it too); a method only when the pattern's method part and the
service's ``expose_methods`` both allow it. Names that are never business methods — Dubbo's
``$invoke``/``$echo``/``$invokeAsync`` family and the methods every Java object has — are
refused whatever the patterns say: a glob such as ``*`` must not turn the gateway into a
generic-invocation proxy.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

#: methods of java.lang.Object: never part of a service's contract
OBJECT_METHODS = frozenset(
    {
        "getClass",
        "hashCode",
        "equals",
        "toString",
        "notify",
        "notifyAll",
        "wait",
        "clone",
        "finalize",
    }
)


def reserved_method(name: str) -> str | None:
    """Why ``name`` may never be called from HTTP, or None."""
    if name.startswith("$"):
        return "Dubbo internal method ($invoke, $echo, ...)"
    if name in OBJECT_METHODS:
        return "java.lang.Object method"
    if not name or not (name[0].isalpha() or name[0] == "_") or not all(
        c.isalnum() or c in "_$" for c in name
    ):
        return "not a Java method name"
    return None


@dataclass(frozen=True)
class ExposePattern:
    """``com.x.*`` (every method) or ``com.x.Greeter#say*`` (some methods)."""

    service: str
    method: str = "*"

    @classmethod
    def parse(cls, text: str) -> ExposePattern:
        svc, sep, method = text.partition("#")
        return cls(svc.strip(), method.strip() if sep else "*")

    def matches_service(self, iface: str) -> bool:
        return fnmatch.fnmatchcase(iface, self.service)

    def matches(self, iface: str, method: str) -> bool:
        return self.matches_service(iface) and fnmatch.fnmatchcase(method, self.method)


class Exposure:
    """Auto-route exposure: auto_routes.expose patterns, narrowed per registry."""

    def __init__(
        self, patterns: list[str], per_registry: dict[str, list[str]] | None = None
    ) -> None:
        self.patterns = [ExposePattern.parse(p) for p in patterns]
        self.per_registry = {
            name: [ExposePattern.parse(p) for p in pats]
            for name, pats in (per_registry or {}).items()
        }

    def service(self, iface: str, registry: str | None) -> bool:
        if not any(p.matches_service(iface) for p in self.patterns):
            return False
        narrow = self.per_registry.get(registry or "")
        return narrow is None or any(p.matches_service(iface) for p in narrow)

    def method(self, iface: str, method: str, registry: str | None) -> bool:
        if reserved_method(method) is not None:
            return False
        if not any(p.matches(iface, method) for p in self.patterns):
            return False
        narrow = self.per_registry.get(registry or "")
        return narrow is None or any(p.matches(iface, method) for p in narrow)
