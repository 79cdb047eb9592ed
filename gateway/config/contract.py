"""The ``contract:`` section: OpenAPI document, docs page and MCP endpoint (docs/contract.md).

Shape (every key optional; absent section = the defaults below)::

    contract:
      openapi: {enabled: true, path: /openapi.json, title: tribridge, version: ""}
      docs: {enabled: true, path: /docs}
      mcp:
        enabled: false
        path: /mcp
        allow: ["com.x.Greeter#*"]      # tools: interface#method globs, deny by default
        allowed_origins: []             # Origin values accepted besides loopback ones
        max_sessions: 256
        max_body_bytes: 262144
        session_idle: 10m
        stream_hold: 15s                # a GET stream is answered (and reopened) this often
      methods:                          # overlay: descriptions and return types
        "com.x.Greeter#sayHello": {description: "Greets someone", returns: java.lang.String}

Contract paths are answered before any route and judged by ``security.access`` rules like
any request, with service ``tribridge.contract`` and method ``openapi``, ``docs`` or ``mcp``.
"""

from __future__ import annotations

import fnmatch
import importlib.util
from dataclasses import dataclass, field
from typing import Any

from tribridge.codecs.hessian2 import HessianError, parse_type
from tribridge.config.paths import config_path_error
from tribridge.config.reader import _V, _Loc

#: the ``service`` name access rules and rate limits see for the contract paths
CONTRACT_SERVICE = "tribridge.contract"
#: files of the docs page (Swagger UI) served under ``docs.path``
DOCS_ASSETS = (
    "swagger-ui-bundle.js",
    "swagger-ui.css",
    "init.js",
    "LICENSE",
    "swagger-ui-bundle.js.LICENSE.txt",
)


@dataclass(frozen=True)
class MethodNote:
    """What the config says about one method beyond its signature."""

    description: str = ""
    #: Java return type name ("void" included); "" when the config does not say
    returns: str = ""


@dataclass
class McpSettings:
    enabled: bool = False
    path: str = "/mcp"
    allow: list[str] = field(default_factory=list)
    allowed_origins: list[str] = field(default_factory=list)
    max_sessions: int = 256
    max_body_bytes: int = 256 * 1024
    session_idle: float = 600.0
    stream_hold: float = 15.0

    def allows(self, service: str, method: str) -> bool:
        """``interface#method`` globs; a pattern without ``#`` allows every method."""
        for p in self.allow:
            svc, sep, meth = p.partition("#")
            if fnmatch.fnmatchcase(service, svc) and fnmatch.fnmatchcase(
                method, meth if sep else "*"
            ):
                return True
        return False


@dataclass
class ContractConfig:
    openapi_enabled: bool = True
    openapi_path: str = "/openapi.json"
    title: str = "tribridge"
    version: str = ""
    docs_enabled: bool = True
    docs_path: str = "/docs"
    mcp: McpSettings = field(default_factory=McpSettings)
    methods: dict[str, MethodNote] = field(default_factory=dict)
    #: every path the contract answers (computed): the gateway checks this set first
    paths: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.refresh_paths()

    def refresh_paths(self) -> None:
        out: set[str] = set()
        if self.openapi_enabled:
            out.add(self.openapi_path)
        if self.docs_enabled:
            out.add(self.docs_path)
            out.update(f"{self.docs_path}/{a}" for a in DOCS_ASSETS)
        if self.mcp.enabled:
            out.add(self.mcp.path)
        self.paths = frozenset(out)

    def note(self, service: str, method: str) -> MethodNote:
        return self.methods.get(f"{service}#{method}") or MethodNote()


_TOP = {"openapi", "docs", "mcp", "methods"}
_MCP = {
    "enabled",
    "path",
    "allow",
    "allowed_origins",
    "max_sessions",
    "max_body_bytes",
    "session_idle",
    "stream_hold",
}


def mcp_available() -> bool:
    """The MCP endpoint uses the official SDK's wire types (the ``contract`` extra)."""
    return importlib.util.find_spec("mcp_types") is not None


def _path(v: _V, node: _Loc, where: str, default: str) -> str:
    p = str(v.get(node, "path", where, str, default))
    why = config_path_error(p) if p.startswith("/") and p != "/" else "expected an absolute path"
    if why is not None:
        raise v.fail(node, f"{where}.path", why, "path")
    return p


def _positive(v: _V, node: _Loc, key: str, where: str, default: int) -> int:
    n = v.get(node, key, where, int, default)
    if n < 1:
        raise v.fail(node, f"{where}.{key}", f"must be at least 1, got {n}", key)
    return int(n)


def parse_contract(v: _V, node: Any, route_paths: set[str]) -> ContractConfig:
    """The section (None: defaults); ``route_paths`` are explicit routes' paths, which a
    contract path must not shadow."""
    c = v.mapping(node, "contract", _TOP)
    cfg = ContractConfig()
    o = v.mapping(c.get("openapi"), "contract.openapi", {"enabled", "path", "title", "version"})
    cfg.openapi_enabled = v.get(o, "enabled", "contract.openapi", bool, True)
    cfg.openapi_path = _path(v, o, "contract.openapi", "/openapi.json")
    cfg.title = v.get(o, "title", "contract.openapi", str, "tribridge")
    cfg.version = str(v.get(o, "version", "contract.openapi", (str, int, float), ""))
    d = v.mapping(c.get("docs"), "contract.docs", {"enabled", "path"})
    cfg.docs_enabled = v.get(d, "enabled", "contract.docs", bool, True)
    cfg.docs_path = _path(v, d, "contract.docs", "/docs")
    m = v.mapping(c.get("mcp"), "contract.mcp", _MCP)
    w = "contract.mcp"
    cfg.mcp = McpSettings(
        enabled=v.get(m, "enabled", w, bool, "allow" in m),
        path=_path(v, m, w, "/mcp"),
        allow=[str(x) for x in v.get(m, "allow", w, list, [])],
        allowed_origins=[str(x) for x in v.get(m, "allowed_origins", w, list, [])],
        max_sessions=_positive(v, m, "max_sessions", w, 256),
        max_body_bytes=_positive(v, m, "max_body_bytes", w, 256 * 1024),
        session_idle=v.duration(m, "session_idle", w, 600.0) or 600.0,
        stream_hold=v.duration(m, "stream_hold", w, 15.0) or 15.0,
    )
    notes = v.mapping(c.get("methods"), "contract.methods", set(c.get("methods") or {}))
    for key, body in notes.items():
        where = f"contract.methods.{key}"
        if not isinstance(key, str) or "#" not in key:
            raise v.fail(notes, where, "expected a key interface#method", key)
        n = v.mapping(body, where, {"description", "returns"})
        returns = v.get(n, "returns", where, str, "")
        try:
            if returns and returns != "void":
                parse_type(returns)
        except HessianError as e:
            raise v.fail(n, f"{where}.returns", str(e), "returns") from None
        cfg.methods[key] = MethodNote(v.get(n, "description", where, str, ""), returns)
    if cfg.mcp.enabled and not mcp_available():
        raise v.fail(c, "contract.mcp", "the MCP endpoint needs `pip install tribridge[contract]`")
    if cfg.docs_enabled and not cfg.openapi_enabled:
        raise v.fail(c, "contract.docs", "the docs page shows the OpenAPI document: enable it too")
    cfg.refresh_paths()
    paths = [cfg.openapi_path, cfg.docs_path, cfg.mcp.path]
    if len(set(paths)) != len(paths):
        raise v.fail(c, "contract", f"openapi, docs and mcp need distinct paths, got {paths}")
    clash = sorted(cfg.paths & route_paths)
    if clash:
        raise v.fail(c, "contract", f"path {clash[0]} is also an explicit route's path")
    return cfg
