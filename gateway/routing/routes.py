"""The route table: explicit routes compiled once, exact paths in a dict, templates as regexes.

Built for each config (``RoutingState.routes``) and never changed after; a reload builds a new
one.  Matching answers the route and the path variables, or which methods the path allows
(for a 405 that names them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tribridge.codecs.hessian2 import JavaType
from tribridge.config.routes import RouteConfig

_VAR = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class CompiledRoute:
    cfg: RouteConfig
    regex: re.Pattern[str] | None
    label: str = ""
    #: the argument types when every parameter declares one (sent as the call's types
    #: unless the service configures the method's signature), else None; shared by every
    #: call of the route, never changed
    types: list[JavaType] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.label = f"{self.cfg.http_method} {self.cfg.path}"
        types = [p.type for p in self.cfg.params]
        self.types = types if all(t is not None for t in types) else None  # type: ignore[assignment]


class RouteTable:
    """Immutable once built."""

    def __init__(self, routes: list[RouteConfig]) -> None:
        self.exact: dict[tuple[str, str], CompiledRoute] = {}
        self.templated: list[CompiledRoute] = []
        for r in routes:
            if "{" in r.path:
                pattern = (
                    "^"
                    + _VAR.sub(
                        lambda m: f"(?P<{m.group(1)}>[^/]+)",
                        re.escape(r.path).replace(r"\{", "{").replace(r"\}", "}"),
                    )
                    + "$"
                )
                self.templated.append(CompiledRoute(r, re.compile(pattern)))
            else:
                self.exact[(r.http_method, r.path)] = CompiledRoute(r, None)

    def match(self, method: str, path: str) -> tuple[CompiledRoute, dict[str, str]] | None:
        hit = self.exact.get((method, path))
        if hit is not None:
            return hit, {}
        for cr in self.templated:
            if cr.cfg.http_method != method:
                continue
            m = cr.regex.match(path) if cr.regex else None
            if m:
                return cr, m.groupdict()
        return None

    def allowed_methods(self, path: str) -> list[str]:
        out = {m for (m, p) in self.exact if p == path}
        out.update(cr.cfg.http_method for cr in self.templated if cr.regex and cr.regex.match(path))
        return sorted(out)
