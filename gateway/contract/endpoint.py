"""The contract paths on the gateway's listener: ``/openapi.json``, ``/docs`` (+ its files)
and ``/mcp``. ``Gateway.handle`` sends a request here when its path is in
``cfg.contract.paths``; everything else about the request is the gateway's as usual.

Each path is judged by the gateway's guard first (access rules and rate limits, with service
``tribridge.contract`` and method ``openapi``, ``docs`` or ``mcp``); an MCP tool call is then
judged again, as the HTTP call it becomes.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import time
from collections.abc import Awaitable
from typing import Any

import orjson
from tribridge.config.contract import CONTRACT_SERVICE, ContractConfig
from tribridge.contract.catalog import Catalog, Cataloguer, Operation
from tribridge.contract.mcp import NOT_FORWARDED, McpEndpoint, Tool
from tribridge.contract.openapi import document
from tribridge.errors import GatewayError
from tribridge.http.messages import Request, Response
from tribridge.invoke.jsonmap import dumps

#: seconds the tool list is trusted before its sources are looked at again
TOOLS_RECHECK = 0.25
#: MCP tool names: letters, digits, ``_ - .``, at most 128 (MCP 2025-11-25)
MAX_TOOL_NAME = 128
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self' data:; frame-ancestors 'none'"
)
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    "LICENSE": "text/plain; charset=utf-8",
}
_PAGE = """<!doctype html>
<html lang="en" data-spec="{spec}">
<head><meta charset="utf-8"><title>{title} API</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="{base}/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="{base}/swagger-ui-bundle.js"></script>
<script src="{base}/init.js"></script></body></html>
"""


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("tribridge")
    except Exception:
        return "0"


def _error(e: GatewayError) -> Response:
    headers = getattr(e, "headers", None)
    return Response(e.status, e.body(), list(headers) if headers else [])


def _reachable(schema: Any, defs: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    """Components ``schema`` refers to, transitively (a tool's ``$defs``)."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(prefix):
                name = ref[len(prefix) :]
                if name not in out and name in defs:
                    out[name] = defs[name]
                    stack.append(defs[name])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _self_contained(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    used: dict[str, Any] = {}
    _reachable(schema, defs, "#/$defs/", used)
    return {**schema, "$defs": dict(sorted(used.items()))} if used else schema


class Contract:
    """Per gateway: caches the document and the tools by a fingerprint of their sources."""

    def __init__(self, gw: Any) -> None:
        self.gw = gw
        self._doc: tuple[Any, bytes] | None = None
        self._tools: tuple[Any, dict[str, Tool]] | None = None
        self._tools_digest = ""
        self._tools_at = 0.0
        self._generation = 0
        self._assets: dict[str, bytes] = {}
        self.mcp = McpEndpoint(self.tools, self.call, _version())

    # ---- what changes the contract ------------------------------------------------------

    def fingerprint(self) -> Any:
        """Identity of every input: the routing state, each service's published definition,
        the IDL schemas fetched so far. Equal fingerprints give equal documents."""
        st = self.gw.state
        svcs = tuple(
            (k, id(s), id(s.snapshot.definition), bool(s.snapshot.endpoints))
            for k, s in sorted(self.gw.all_services().items())
        )
        idl: tuple[Any, ...] = ()
        if st.idl is not None:
            idl = tuple(
                (n, id(s.source), len(getattr(s.source, "_cache", ()) or ()))
                for n, s in st.idl.services.items()
            )
        return (id(st), svcs, idl)

    def catalog(self, prefix: str = "#/components/schemas/") -> Catalog:
        return Cataloguer(self.gw, prefix).build()

    def openapi(self) -> dict[str, Any]:
        cc: ContractConfig = self.gw.state.cfg.contract
        return document(self.catalog(), cc.title, cc.version or self.gw.state.version)

    def openapi_bytes(self) -> bytes:
        fp = self.fingerprint()
        if self._doc is None or self._doc[0] != fp:
            self._doc = (fp, orjson.dumps(self.openapi(), option=orjson.OPT_INDENT_2))
        return self._doc[1]

    # ---- MCP tools ------------------------------------------------------------------------

    def tools(self) -> tuple[int, dict[str, Tool]]:
        """(generation, tools by name); the generation grows whenever the list changes.
        Looked at no more often than every ``TOOLS_RECHECK`` seconds: held MCP streams ask
        often, and the fingerprint walks every followed service."""
        now = time.monotonic()
        if self._tools is not None and now - self._tools_at < TOOLS_RECHECK:
            return self._generation, self._tools[1]
        self._tools_at = now
        fp = self.fingerprint()
        if self._tools is not None and self._tools[0] == fp:
            return self._generation, self._tools[1]
        tools = self._build_tools()
        digest = hashlib.sha256(
            orjson.dumps(
                [(n, t.input_schema, t.output_schema, t.description) for n, t in sorted(tools.items())]
            )
        ).hexdigest()
        if digest != self._tools_digest:
            self._tools_digest = digest
            self._generation += 1
        self._tools = (fp, tools)
        return self._generation, tools

    def _build_tools(self) -> dict[str, Tool]:
        st = self.gw.state
        m = st.cfg.contract.mcp
        cat = self.catalog("#/$defs/")
        out: dict[str, Tool] = {}
        for op in cat.operations:
            if op.kind == "route" or not m.allows(op.service, op.method):
                continue
            if not self._provided(op):
                continue
            for t in self._op_tools(op, cat.components):
                if len(t.name) <= MAX_TOOL_NAME:
                    out[t.name] = t
        return out

    def _provided(self, op: Operation) -> bool:
        """A service without providers is not offered: tools come and go with them."""
        st = self.gw.state
        if op.kind == "idl":
            svc = st.idl.services.get(op.service) if st.idl is not None else None
            return svc is not None and bool(svc.targets)
        svc = self.gw.all_services().get(op.service)
        return svc is not None and bool(svc.snapshot.endpoints)

    def _op_tools(self, op: Operation, defs: dict[str, Any]) -> list[Tool]:
        out_schema = _self_contained(
            {"type": "object", "properties": {"result": op.response}, "required": ["result"]}, defs
        )
        base = f"{op.service}.{op.method}"
        if op.kind == "idl":
            assert op.message is not None
            msg = op.message
            ref = msg.get("$ref", "")
            inline = defs.get(ref.rsplit("/", 1)[-1], msg) if ref else msg
            schema = _self_contained(dict(inline), defs)
            return [Tool(base, op, schema, out_schema, op.description)]
        tools = []
        arities = [len(o.types) for o in op.overloads]
        for i, o in enumerate(op.overloads):
            props = {f"arg{j}": s for j, s in enumerate(_args(op, i))}
            schema = _self_contained(
                {
                    "type": "object",
                    "properties": props,
                    "required": list(props),
                    "additionalProperties": False,
                },
                defs,
            )
            name = base if len(op.overloads) == 1 else f"{base}-{i + 1}"
            header = ",".join(map(str, o.types)) if arities.count(len(o.types)) > 1 else None
            desc = f"{op.description}\nJava: {op.method}({o.signature})"
            tools.append(Tool(name, op, schema, out_schema, desc, header))
        return tools

    async def call(self, req: Request, tool: Tool, arguments: dict[str, Any]) -> Response:
        """The HTTP request an HTTP client would send for this call, through the gateway."""
        headers = {
            k: v for k, v in req.headers.items() if k not in NOT_FORWARDED and not k.startswith(":")
        }
        headers["content-type"] = "application/json"
        if tool.types_header is not None:
            headers["x-tribridge-types"] = tool.types_header
        inner = Request(
            "POST", tool.op.path, "", headers, dumps(tool.args_body(arguments)), req.client, True
        )
        res: Any = self.gw.handle(inner)
        while not isinstance(res, Response):
            res = await res
        return res

    # ---- HTTP -----------------------------------------------------------------------------

    def handle(self, req: Request) -> Response | Awaitable[Response]:
        st = self.gw.state
        cc: ContractConfig = st.cfg.contract
        path = req.path
        what = "openapi" if path == cc.openapi_path else "mcp" if path == cc.mcp.path else "docs"
        guard = st.guard
        if guard is not None:
            try:
                pending = guard.check(req, CONTRACT_SERVICE, what, {})
            except GatewayError as e:
                return _error(e)
            if pending is not None:
                return self._after(pending, req, what, cc)
        return self._serve(req, what, cc)

    async def _after(self, pending: Any, req: Request, what: str, cc: ContractConfig) -> Response:
        try:
            await pending
        except GatewayError as e:
            return _error(e)
        res = self._serve(req, what, cc)
        return res if isinstance(res, Response) else await res

    def _serve(self, req: Request, what: str, cc: ContractConfig) -> Response | Awaitable[Response]:
        if what == "mcp":
            return self.mcp.handle(req, cc.mcp)
        if req.method not in ("GET", "HEAD"):
            return _error(GatewayError(405, "method_not_allowed", f"{req.path}: GET only"))
        if what == "openapi":
            return Response(200, self.openapi_bytes(), [("cache-control", "no-cache")])
        return self._docs(req.path, cc)

    def _docs(self, path: str, cc: ContractConfig) -> Response:
        sec = [("content-security-policy", _CSP), ("x-content-type-options", "nosniff")]
        if path == cc.docs_path:
            page = _PAGE.format(
                spec=cc.openapi_path, base=cc.docs_path, title=_html(cc.title)
            ).encode()
            return Response(200, page, sec, "text/html; charset=utf-8")
        name = path.rsplit("/", 1)[-1]
        body = self._asset(name)
        ct = next((v for k, v in _TYPES.items() if name.endswith(k)), "application/octet-stream")
        return Response(200, body, [*sec, ("cache-control", "public, max-age=3600")], ct)

    def _asset(self, name: str) -> bytes:
        hit = self._assets.get(name)
        if hit is None:
            hit = importlib.resources.files("tribridge.contract").joinpath("static", name).read_bytes()
            self._assets[name] = hit
        return hit

    def close(self) -> None:
        self.mcp.close()


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _args(op: Operation, i: int) -> list[Any]:
    body = op.body or {}
    one = body["oneOf"][i] if "oneOf" in body else body
    return list(one.get("prefixItems", []))
