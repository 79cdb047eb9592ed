"""An MCP server on the gateway's own listener: Streamable HTTP at ``contract.mcp.path``.

Each exposed method the ``contract.mcp.allow`` list names is a tool: auto-routed Java methods
(one tool per overload, arguments ``arg0..argN`` typed by the signature) and IDL methods (the
request message is the arguments). A ``tools/call`` is answered by building the HTTP request
an HTTP client would send to the method's auto route — the caller's headers (credentials,
trace context, ``x-dubbo-*``) included — and handing it to ``Gateway.handle``: the same
routing, authentication, rate limits, class policy, coercion and error mapping, with nothing
MCP-specific in between. The reply's JSON becomes the tool result (``structuredContent``
``{"result": ...}``), an error reply a tool error (``isError``) carrying the error JSON.

Transport (MCP 2025-11-25, handshake era): one JSON-RPC message per POST; requests are answered
with ``application/json``, or with a finished ``text/event-stream`` when a
``notifications/tools/list_changed`` is owed first; notifications and responses with 202. A GET
opens an SSE stream that is held up to ``stream_hold`` seconds and ends after the first
notification (with a ``retry`` field: clients reconnect), so the listener needs no open-ended
responses. Sessions (``Mcp-Session-Id``) are bounded in number and idle time; the ``Origin``
header is checked on every request (DNS rebinding) and bodies are bounded.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson
from tribridge.config.contract import McpSettings
from tribridge.contract.catalog import Operation
from tribridge.http.messages import Request, Response
from tribridge.invoke.jsonmap import JSONDecodeError, dumps, loads

try:  # the wire types of the official SDK (pip install tribridge[contract])
    import mcp_types as mt
    from pydantic import ValidationError
except ImportError:  # pragma: no cover - the config check names the extra
    mt = None  # type: ignore[assignment]
    ValidationError = ValueError  # type: ignore[assignment,misc]

#: protocol revisions of the initialize handshake this server speaks, newest first
PROTOCOL_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26")
SESSION_HEADER = "mcp-session-id"
VERSION_HEADER = "mcp-protocol-version"
#: request headers never forwarded onto the synthesized HTTP call
NOT_FORWARDED = frozenset(
    {
        "content-length",
        "content-type",
        "transfer-encoding",
        "connection",
        "accept",
        "accept-encoding",
        "origin",
        SESSION_HEADER,
        VERSION_HEADER,
        "last-event-id",
        "x-tribridge-types",
    }
)
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
TOOLS_PAGE = 200
#: seconds between looks at the tool list while a GET stream is held
POLL_INTERVAL = 0.5
#: ended session ids remembered (so a DELETE is final)
MAX_ENDED = 4096
#: GET streams one session may hold open at once (more are answered at once, no hold)
MAX_STREAMS_PER_SESSION = 2
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602


@dataclass
class Tool:
    name: str
    op: Operation
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    description: str
    types_header: str | None = None  # overloads of one arity: the x-tribridge-types value

    def args_body(self, arguments: dict[str, Any]) -> Any:
        if self.op.kind == "idl":
            return arguments
        n = len(self.input_schema.get("properties", {}))
        return [arguments.get(f"arg{i}") for i in range(n)]


@dataclass
class Session:
    sid: str
    version: str
    seen: int = -1  # the tools generation this session was last told about
    last: float = field(default_factory=time.monotonic)
    waiters: list[asyncio.Future[None]] = field(default_factory=list)


class McpError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _rpc_error(id_: Any, code: int, message: str) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": id_, "error": {"code": code, "message": message}})


def _dump(model: Any) -> Any:
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")


def origin_allowed(origin: str | None, allowed: list[str]) -> bool:
    """No Origin (a non-browser client), a loopback origin or one listed: allowed."""
    if origin is None:
        return True
    if origin in allowed or "*" in allowed:
        return True
    try:
        host = urlsplit(origin).hostname
    except ValueError:
        return False
    return host in _LOOPBACK


class McpEndpoint:
    """Sessions and the JSON-RPC methods; ``tools`` and ``call`` come from the contract."""

    def __init__(
        self,
        tools: Callable[[], tuple[int, dict[str, Tool]]],
        call: Callable[[Request, Tool, dict[str, Any]], Awaitable[Response]],
        server_version: str,
    ) -> None:
        self.tools = tools
        self.call = call
        self.server_version = server_version
        self.sessions: dict[str, Session] = {}
        #: ids ended by DELETE (most recent ``MAX_ENDED``): never taken up again
        self.ended: dict[str, None] = {}

    # ---- HTTP ---------------------------------------------------------------------------

    async def handle(self, req: Request, cfg: McpSettings) -> Response:
        if mt is None:
            return Response(501, _rpc_error(None, INVALID_REQUEST, "pip install tribridge[contract]"))
        if not origin_allowed(req.headers.get("origin"), cfg.allowed_origins):
            return Response(403, _rpc_error(None, INVALID_REQUEST, "Origin not allowed"))
        self._expire(cfg)
        try:
            if req.method == "POST":
                return await self._post(req, cfg)
            if req.method == "GET":
                return await self._get(req, cfg)
            if req.method == "DELETE":
                self._close(self._session(req, cfg), ended=True)
                return Response(204)
        except McpError as e:
            return Response(e.status, _rpc_error(None, e.code, e.message))
        return Response(
            405, _rpc_error(None, INVALID_REQUEST, "MCP takes POST, GET and DELETE"),
            [("allow", "GET, POST, DELETE")],
        )

    def _session(self, req: Request, cfg: McpSettings) -> Session:
        sid = req.headers.get(SESSION_HEADER)
        if sid is None:
            raise McpError(400, INVALID_REQUEST, "missing Mcp-Session-Id (initialize first)")
        v = req.headers.get(VERSION_HEADER)
        if v is not None and v not in PROTOCOL_VERSIONS:
            raise McpError(400, INVALID_REQUEST, f"unsupported MCP-Protocol-Version {v!r}")
        s = self.sessions.get(sid)
        if s is None:
            # Another worker's session (--workers: they share the signing key), or one this
            # process forgot when idle: its state is only what the client was told, so it is
            # taken up afresh. Ended (DELETE) and forged ids are refused.
            if sid in self.ended or not valid_session_id(sid):
                raise McpError(404, INVALID_REQUEST, "unknown or ended session")
            s = self._admit(cfg, Session(sid, v or PROTOCOL_VERSIONS[0]))
            s.seen = self.tools()[0]
        s.last = time.monotonic()
        return s

    def _admit(self, cfg: McpSettings, s: Session) -> Session:
        """Room for one more session: the least recently used idle one goes (else 503)."""
        if len(self.sessions) >= cfg.max_sessions:
            idle = [x for x in self.sessions.values() if not x.waiters]
            if not idle:
                raise McpError(503, INVALID_REQUEST, "too many MCP sessions")
            self.sessions.pop(min(idle, key=lambda x: x.last).sid, None)
        self.sessions[s.sid] = s
        return s

    def _expire(self, cfg: McpSettings) -> None:
        now = time.monotonic()
        for s in [s for s in self.sessions.values() if now - s.last > cfg.session_idle]:
            if not s.waiters:
                self._close(s)

    def _close(self, s: Session, ended: bool = False) -> None:
        self.sessions.pop(s.sid, None)
        if ended:
            self.ended[s.sid] = None
            while len(self.ended) > MAX_ENDED:
                self.ended.pop(next(iter(self.ended)))
        for w in s.waiters:
            if not w.done():
                w.set_result(None)

    def close(self) -> None:
        """Gateway stopping: end held GET streams now, so shutdown does not wait for them."""
        for s in list(self.sessions.values()):
            self._close(s)

    async def _post(self, req: Request, cfg: McpSettings) -> Response:
        if len(req.body) > cfg.max_body_bytes:
            raise McpError(413, INVALID_REQUEST, f"body over {cfg.max_body_bytes} bytes")
        try:
            msg = loads(req.body)
        except JSONDecodeError as e:
            return Response(400, _rpc_error(None, PARSE_ERROR, f"not JSON: {e}"))
        if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0":
            return Response(400, _rpc_error(None, INVALID_REQUEST, "expected one JSON-RPC 2.0 message"))
        if "method" not in msg:  # a response to a server request: we send none
            return Response(202)
        if "id" not in msg:
            try:
                mt.JSONRPCNotification.model_validate(msg)
            except ValidationError:
                return Response(400, _rpc_error(None, INVALID_REQUEST, "bad notification"))
            if msg["method"] != "notifications/initialized":
                self._session(req, cfg)
            return Response(202)
        try:
            rpc = mt.JSONRPCRequest.model_validate(msg)
        except ValidationError:
            return Response(400, _rpc_error(msg.get("id"), INVALID_REQUEST, "bad request"))
        if rpc.method == "initialize":
            return self._initialize(rpc, cfg)
        if rpc.method == "server/discover":  # the 2026 stateless revision: not spoken here,
            # so clients that probe for it fall back to the initialize handshake
            return Response(200, _rpc_error(rpc.id, METHOD_NOT_FOUND, "use initialize"))
        s = self._session(req, cfg)
        try:
            result = await self._dispatch(req, rpc)
        except McpError as e:
            body = _rpc_error(rpc.id, e.code, e.message)
        else:
            body = dumps({"jsonrpc": "2.0", "id": rpc.id, "result": result})
        gen, _ = self.tools()
        accept = req.headers.get("accept", "")
        if s.seen != gen and s.seen >= 0 and "text/event-stream" in accept:
            s.seen = gen
            events = _sse(_LIST_CHANGED) + _sse(body)
            return Response(200, events, [("cache-control", "no-store")], "text/event-stream")
        return Response(200, body)

    def _initialize(self, rpc: Any, cfg: McpSettings) -> Response:
        try:
            params = mt.InitializeRequestParams.model_validate(rpc.params or {})
        except ValidationError as e:
            return Response(200, _rpc_error(rpc.id, INVALID_PARAMS, _first(e)))
        asked = params.protocol_version
        version = asked if asked in PROTOCOL_VERSIONS else PROTOCOL_VERSIONS[0]
        try:
            s = self._admit(cfg, Session(new_session_id(), version))
        except McpError as e:
            return Response(e.status, _rpc_error(rpc.id, e.code, e.message))
        s.seen = self.tools()[0]
        result = mt.InitializeResult(
            protocol_version=version,
            capabilities=mt.ServerCapabilities(tools=mt.ToolsCapability(list_changed=True)),
            server_info=mt.Implementation(name="tribridge", version=self.server_version),
            instructions="Each tool calls one method of a Dubbo/gRPC service through the "
            "tribridge gateway; arguments follow the Java signature (arg0, arg1, ...).",
        )
        body = dumps({"jsonrpc": "2.0", "id": rpc.id, "result": _dump(result)})
        return Response(200, body, [(SESSION_HEADER, s.sid)])

    async def _dispatch(self, req: Request, rpc: Any) -> Any:
        if rpc.method == "ping":
            return {}
        if rpc.method == "tools/list":
            return self._list(rpc.params or {})
        if rpc.method == "tools/call":
            return await self._call(req, rpc.params or {})
        raise McpError(200, METHOD_NOT_FOUND, f"method {rpc.method!r} not supported")

    def _list(self, params: dict[str, Any]) -> dict[str, Any]:
        _, tools = self.tools()
        cursor = params.get("cursor")
        start = int(cursor) if isinstance(cursor, str) and cursor.isdigit() else 0
        names = sorted(tools)[start : start + TOOLS_PAGE]
        out: dict[str, Any] = {
            "tools": [
                _dump(
                    mt.Tool(
                        name=n,
                        description=tools[n].description,
                        input_schema=tools[n].input_schema,
                        output_schema=tools[n].output_schema,
                        annotations=mt.ToolAnnotations(
                            title=f"{tools[n].op.service}#{tools[n].op.method}",
                            # a call reaches a remote service; retried only when idempotent
                            open_world_hint=True,
                            idempotent_hint=tools[n].op.idempotent or None,
                        ),
                    )
                )
                for n in names
            ]
        }
        if start + TOOLS_PAGE < len(tools):
            out["nextCursor"] = str(start + TOOLS_PAGE)
        return out

    async def _call(self, req: Request, params: dict[str, Any]) -> dict[str, Any]:
        try:
            p = mt.CallToolRequestParams.model_validate(params)
        except ValidationError as e:
            raise McpError(200, INVALID_PARAMS, _first(e)) from None
        tool = self.tools()[1].get(p.name)
        if tool is None:
            raise McpError(200, INVALID_PARAMS, f"unknown tool {p.name!r}")
        args = p.arguments or {}
        extra = sorted(set(args) - set(tool.input_schema.get("properties", {})))
        if extra and tool.input_schema.get("additionalProperties") is False:
            raise McpError(200, INVALID_PARAMS, f"unknown argument(s): {', '.join(extra)}")
        missing = [a for a in tool.input_schema.get("required", ()) if a not in args]
        if missing:
            raise McpError(200, INVALID_PARAMS, f"missing argument(s): {', '.join(missing)}")
        resp = await self.call(req, tool, args)
        text = resp.body.decode("utf-8", "replace")
        if resp.status != 200:
            return _dump(
                mt.CallToolResult(content=[mt.TextContent(type="text", text=text)], is_error=True)
            )
        value = loads(resp.body) if resp.body.strip() else None
        return {
            "content": [{"type": "text", "text": text}],
            "structuredContent": {"result": value},
            "isError": False,
        }

    async def _get(self, req: Request, cfg: McpSettings) -> Response:
        if "text/event-stream" not in req.headers.get("accept", ""):
            raise McpError(406, INVALID_REQUEST, "GET needs Accept: text/event-stream")
        s = self._session(req, cfg)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + cfg.stream_hold
        held = len(s.waiters) < MAX_STREAMS_PER_SESSION  # more: answered at once
        while held and s.sid in self.sessions and s.seen == self.tools()[0]:
            left = deadline - loop.time()
            if left <= 0:
                break
            w: asyncio.Future[None] = loop.create_future()
            s.waiters.append(w)
            try:
                await asyncio.wait_for(w, min(POLL_INTERVAL, left))
            except TimeoutError:
                pass
            finally:
                s.waiters.remove(w)
        gen = self.tools()[0]
        events = b"retry: 500\n\n"
        if gen != s.seen and s.sid in self.sessions:
            s.seen = gen
            events += _sse(_LIST_CHANGED)
        s.last = time.monotonic()
        return Response(200, events, [("cache-control", "no-store")], "text/event-stream")


#: signs session ids; made at import, before ``--workers`` forks, so every worker of one
#: gateway accepts the others' ids (a client's requests may reach any of them)
_SESSION_KEY = secrets.token_bytes(32)
_SID_RANDOM, _SID_MAC = 18, 12


def new_session_id() -> str:
    raw = secrets.token_bytes(_SID_RANDOM)
    mac = hmac.new(_SESSION_KEY, raw, hashlib.sha256).digest()[:_SID_MAC]
    return base64.urlsafe_b64encode(raw + mac).decode()


def valid_session_id(sid: str) -> bool:
    if len(sid) != 40:
        return False
    try:
        data = base64.urlsafe_b64decode(sid.encode())
    except (ValueError, UnicodeEncodeError):
        return False
    raw, mac = data[:_SID_RANDOM], data[_SID_RANDOM:]
    want = hmac.new(_SESSION_KEY, raw, hashlib.sha256).digest()[:_SID_MAC]
    return hmac.compare_digest(mac, want)


_LIST_CHANGED = orjson.dumps({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})


def _sse(data: bytes) -> bytes:
    return b"event: message\ndata: " + data + b"\n\n"


def _first(e: Any) -> str:
    errs = e.errors() if hasattr(e, "errors") else []
    if errs:
        loc = ".".join(str(x) for x in errs[0].get("loc", ()))
        return f"invalid params: {loc}: {errs[0].get('msg', '')}"
    return "invalid params"
