"""Parameter mapping: an HTTP request -> the ``Call`` (method, arguments, types, attachments).

Explicit routes take each argument from where the route says (path variable, query
parameter, header, the body or one of its fields, a constant); auto routes take the JSON body
as the argument list and optional type hints from ``x-tribridge-types``.  Bodies are parsed
exactly (big integers and long decimals are not rounded) and their JSON value count bounded
(``limits.max_json_elements``) before anything else looks at them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from tribridge.codecs.hessian2 import HessianError, parse_types
from tribridge.config.limits import json_elements_exceed
from tribridge.config.routes import ParamSource
from tribridge.errors import GatewayError, bad_request
from tribridge.http.headers import timeout_header
from tribridge.http.messages import Request
from tribridge.invoke.invoker import Call, Service
from tribridge.invoke.jsonmap import JSONDecodeError, loads
from tribridge.routing.routes import CompiledRoute
from tribridge.routing.state import RoutingState

TYPES_HEADER = "x-tribridge-types"
VERSION_HEADER = "x-dubbo-version"
GROUP_HEADER = "x-dubbo-group"
_MISSING = object()


def json_body(req: Request, max_elements: int) -> Any:
    if not req.body.strip():
        return _MISSING
    try:
        doc = loads(req.body)  # exact: big integers and long decimals are not rounded
    except JSONDecodeError as e:
        raise GatewayError(400, "invalid_json", f"request body is not valid JSON: {e}") from None
    if json_elements_exceed(req.body, doc, max_elements):
        # each value costs microseconds to coerce, police and encode: a 1 MB body of
        # ``[[],[],...]`` would hold the event loop for a second (docs/security.md)
        raise GatewayError(
            400,
            "too_many_elements",
            f"request body holds more than {max_elements} JSON values (limits.max_json_elements)",
        )
    return doc


def _field(body: Any, dotted: str) -> Any:
    cur = body
    for part in dotted.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return _MISSING
    return cur


def attachments(st: RoutingState, req: Request) -> dict[str, str]:
    """The configured pass-through headers the request carries, as call attachments."""
    if not st.passthrough:
        return {}
    h = req.headers
    return {k: h[k] for k in st.passthrough if k in h}


def auto_call(st: RoutingState, method: str, req: Request, overrides: bool) -> Call:
    """``POST {prefix}/{interface}/{method}``: a JSON array body is the argument list, any
    other JSON value the one argument; with ``overrides``, version, group and timeout come
    from the ``x-dubbo-*`` headers."""
    body = json_body(req, st.cfg.max_json_elements)
    if body is _MISSING:
        args: list[Any] = []
    elif isinstance(body, list):
        args = body
    elif isinstance(body, dict):
        args = [body]
    else:
        args = [body]
    h = req.headers
    types = None
    hint = h.get(TYPES_HEADER)
    if hint is not None:
        try:
            types = parse_types(hint)
        except HessianError as e:
            raise bad_request(f"{TYPES_HEADER}: {e}") from None
    call = Call(method, args, types, attachments=attachments(st, req))
    if overrides:
        call.version = h.get(VERSION_HEADER)
        call.group = h.get(GROUP_HEADER)
        call.timeout = timeout_header(h)
    return call


def explicit_call(
    st: RoutingState,
    cr: CompiledRoute,
    svc: Service,
    req: Request,
    path_vars: dict[str, str],
) -> Call:
    """An explicit route's call: each ``params`` entry names where its argument comes from;
    the route's declared types are sent when every argument has one and the service
    configures no signature of its own for the method."""
    rc = cr.cfg
    args: list[Any] = []
    body: Any = _MISSING
    query: dict[str, list[str]] | None = None
    for p in rc.params:
        value: Any
        source = p.source
        if source == "body_field" or source == "body":
            if body is _MISSING:
                body = json_body(req, st.cfg.max_json_elements)
            if source == "body":
                value = body
            else:
                value = _field(body, p.name or "") if body is not _MISSING else _MISSING
        elif source == "path":
            value = path_vars.get(p.name or "", _MISSING)
        elif source == "query":
            if query is None:
                query = parse_qs(req.query, keep_blank_values=True)
            vals = query.get(p.name or "")
            value = (
                _MISSING
                if not vals
                else (
                    vals
                    if p.type is not None and p.type.kind in ("array", "list", "set")
                    else vals[-1]
                )
            )
        elif source == "header":
            value = req.headers.get((p.name or "").lower(), _MISSING)
        else:  # const
            value = p.default
        if value is _MISSING:
            if p.required:
                raise bad_request(_missing_msg(p), service=rc.service, method=rc.method)
            value = p.default
        args.append(value)
    types = cr.types if rc.method not in svc.cfg.methods else None
    return Call(rc.method, args, types, rc.version, rc.group, rc.timeout, attachments(st, req))


def _missing_msg(p: ParamSource) -> str:
    where = {
        "path": "path variable",
        "query": "query parameter",
        "header": "header",
        "body": "request body",
        "body_field": "body field",
    }[p.source]
    return f"missing {where}" + (f" {p.name!r}" if p.name and p.source != "body" else "")
