"""What the gateway serves right now, as a list of operations with JSON Schemas.

Read from one routing state (``Gateway.state``) and the services the gateway follows, so the
document is as current as the routes: a config reload swaps the state, a registry update
swaps a service's snapshot (and with it the provider's published signatures), and the next
``catalog()`` sees both. Three sources:

* explicit routes (``routes:``), their parameters typed by the route's ``type:`` entries;
* auto routes (``POST {prefix}{interface}/{method}``) of every exposed service the gateway
  follows (configured, or auto-routed and seen since start) whose signatures are known —
  configured ``methods`` first, then the provider's metadata; overloads become ``oneOf``;
* IDL services with static descriptors (or descriptors already fetched by reflection):
  their auto routes and their ``google.api.http`` routes with single-segment variables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tribridge.codecs.hessian2 import HessianError, JavaType, TypeRegistry, parse_type
from tribridge.config.contract import ContractConfig
from tribridge.contract.protos import ProtoSchemas
from tribridge.contract.schemas import JavaSchemas, Schema
from tribridge.security.exposure import reserved_method

#: a path variable's value: one canonical segment (http/canonical.py refuses the rest)
SEGMENT_PATTERN = r"^(?!\.\.?$)[^/\\;?#%\u0000-\u001f\u007f-\u009f]+$"
_SIMPLE_VAR = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ANY_VAR = re.compile(r"\{[^}]*\}")


@dataclass
class Param:
    name: str
    where: str  # path | query | header
    schema: Schema
    required: bool = True
    description: str = ""


@dataclass
class Overload:
    """One Java signature of an auto-routed method."""

    types: list[JavaType]
    returns: str = ""  # Java return type name; "" unknown

    @property
    def signature(self) -> str:
        return ", ".join(map(str, self.types))


@dataclass
class Operation:
    kind: str  # route | auto | idl
    http_method: str
    path: str
    service: str
    method: str
    params: list[Param] = field(default_factory=list)
    body: Schema | None = None
    body_required: bool = False
    response: Schema = field(default_factory=dict)
    description: str = ""
    #: auto routes: the signatures (one per overload); IDL: empty
    overloads: list[Overload] = field(default_factory=list)
    #: IDL auto routes: the request message's schema (an MCP tool's input)
    message: Schema | None = None
    #: the method is marked ``idempotent`` in the config (retried; an MCP tool hint)
    idempotent: bool = False

    @property
    def op_id(self) -> str:
        base = f"{self.service}.{self.method}"
        return base if self.kind != "route" else f"{base}.{self.http_method.lower()}"


@dataclass
class Catalog:
    operations: list[Operation]
    components: dict[str, Schema]
    guarded: bool
    #: security.auth schemes as OpenAPI securitySchemes, and each operation's alternatives
    schemes: dict[str, Schema] = field(default_factory=dict)
    security: dict[int, list[str]] = field(default_factory=dict)  # id(op) -> scheme names


def _parse(name: str) -> JavaType | None:
    if not name or name == "void":
        return None
    try:
        return parse_type(name)
    except HessianError:
        return None


def _response(js: JavaSchemas, returns: str, types: TypeRegistry) -> Schema:
    if returns == "void":
        return {"type": "null"}
    t = _parse(returns)
    return js.schema(t, False, types) if t is not None else {}


def _args_schema(js: JavaSchemas, types: list[JavaType], reg: TypeRegistry) -> Schema:
    items = [js.schema(t, True, reg) for t in types]
    s: Schema = {"type": "array", "minItems": len(items), "maxItems": len(items)}
    if items:
        s["prefixItems"] = items
    return s


def _auto_path(prefix: str, service: str, method: str) -> str:
    return f"{prefix.rstrip('/')}/{service}/{method}"


class Cataloguer:
    """Turns one gateway's current state into a ``Catalog``."""

    def __init__(self, gw: Any, prefix: str = "#/components/schemas/") -> None:
        self.gw = gw
        self.prefix = prefix

    def build(self) -> Catalog:
        st = self.gw.state
        cc: ContractConfig = st.cfg.contract
        js = JavaSchemas(self.prefix)
        ops: list[Operation] = []
        services = self.gw.all_services()
        for rc in st.cfg.routes:
            svc = services.get(rc.service)
            if svc is not None:
                ops.append(self._route(js, cc, rc, svc))
        if st.auto is not None:
            for svc in sorted(services.values(), key=lambda s: s.cfg.interface):
                if not svc.cfg.group or svc.cfg.interface in st.services:
                    ops.extend(self._auto(js, cc, st, svc))
        ps = ProtoSchemas(js.components, self.prefix)
        if st.idl is not None:
            ops.extend(self._idl(ps, cc, st))
        cat = Catalog(ops, js.components, st.guard is not None)
        if st.guard is not None:
            _security(cat, st.guard)
        return cat

    # ---- Java ---------------------------------------------------------------------------

    def _route(self, js: JavaSchemas, cc: ContractConfig, rc: Any, svc: Any) -> Operation:
        reg = svc.type_registry()
        op = Operation("route", rc.http_method, rc.path, rc.service, rc.method)
        body_fields: dict[str, Any] = {}
        for p in rc.params:
            sch = js.schema(p.type, True, reg) if p.type is not None else {"type": "string"}
            need = p.required and p.default is None
            if p.source == "path":
                if sch.get("type") == "string" and "pattern" not in sch:
                    sch = {**sch, "pattern": SEGMENT_PATTERN}
                op.params.append(Param(p.name or "", "path", sch, True))
            elif p.source in ("query", "header"):
                op.params.append(Param(p.name or "", p.source, sch, need))
            elif p.source == "body":
                op.body, op.body_required = sch, need
            elif p.source == "body_field":
                body_fields[p.name or ""] = (sch, need)
        if body_fields and op.body is None:
            op.body = _nested(body_fields)
            op.body_required = any(n for _, n in body_fields.values())
        argc = len(rc.params)
        note = cc.note(rc.service, rc.method)
        returns = note.returns or self._metadata_return(svc, rc.method, argc)
        op.response = _response(js, returns, reg)
        op.description = note.description or f"{rc.service}#{rc.method}"
        return op

    @staticmethod
    def _metadata_return(svc: Any, method: str, argc: int) -> str:
        d = svc.snapshot.definition
        if d is None:
            return ""
        cands = [m for m in d.overloads(method) if len(m.parameter_types) == argc]
        return cands[0].return_type if len(cands) == 1 else ""

    def _signatures(self, svc: Any) -> dict[str, list[Overload]]:
        out: dict[str, list[Overload]] = {}
        d = svc.snapshot.definition
        if d is not None:
            for name, overloads in d.methods.items():
                out[name] = [Overload(list(m.parameter_types), m.return_type) for m in overloads]
        for name, mc in svc.cfg.methods.items():
            if mc.types is not None:  # a configured signature wins over the metadata
                known = [o.returns for o in out.get(name, ()) if len(o.types) == len(mc.types)]
                out[name] = [Overload(list(mc.types), known[0] if len(known) == 1 else "")]
        return out

    def _auto(self, js: JavaSchemas, cc: ContractConfig, st: Any, svc: Any) -> list[Operation]:
        iface = svc.cfg.interface
        reg_name = st.registry_name(svc.cfg)
        if not st.exposure.service(iface, reg_name):
            return []
        types = svc.type_registry()
        ops = []
        for name, overloads in sorted(self._signatures(svc).items()):
            if reserved_method(name) is not None or not svc.exposes(name):
                continue
            if not st.exposure.method(iface, name, reg_name):
                continue
            note = cc.note(iface, name)
            for o in overloads:
                o.returns = note.returns or o.returns
            op = Operation("auto", "POST", _auto_path(st.auto.prefix, iface, name), iface, name)
            op.overloads = overloads
            mc = svc.cfg.methods.get(name)
            op.idempotent = bool(mc is not None and mc.idempotent)
            bodies = [_args_schema(js, o.types, types) for o in overloads]
            op.body = bodies[0] if len(bodies) == 1 else {"oneOf": bodies}
            op.body_required = any(o.types for o in overloads)
            outs = [_response(js, o.returns, types) for o in overloads]
            op.response = outs[0] if all(x == outs[0] for x in outs) else {"anyOf": outs}
            sigs = "; ".join(f"{name}({o.signature})" + (f" -> {o.returns}" if o.returns else "") for o in overloads)
            op.description = note.description or f"{iface}#{sigs}"
            arities = [len(o.types) for o in overloads]
            if len(set(arities)) != len(arities):
                op.params.append(
                    Param(
                        "x-tribridge-types",
                        "header",
                        {"type": "string", "enum": [",".join(map(str, o.types)) for o in overloads]},
                        False,
                        "overloads of one arity: name the parameter types",
                    )
                )
            ops.append(op)
        return ops

    # ---- IDL ----------------------------------------------------------------------------

    def _idl(self, ps: ProtoSchemas, cc: ContractConfig, st: Any) -> list[Operation]:
        idl = st.idl
        ops = []
        for rc in idl.routes:
            svc = idl.services.get(rc.service)
            mi = svc.source.cached(rc.service, rc.method) if svc is not None else None
            if mi is None or not mi.unary or _ANY_VAR.sub("", rc.template.text).find("*") >= 0:
                continue
            if len(_SIMPLE_VAR.findall(rc.template.text)) != len(_ANY_VAR.findall(rc.template.text)):
                continue  # {name=shelves/*}: a variable spanning segments has no OpenAPI form
            ops.append(self._idl_route(ps, cc, rc, svc, mi))
        for name, svc in sorted(idl.services.items()):
            if not svc.cfg.auto_route:
                continue
            for method in self._idl_methods(svc):
                mi = svc.source.cached(name, method)
                if mi is None or not mi.unary:
                    continue
                opts = svc.cfg.json
                op = Operation("idl", "POST", _auto_path(idl.prefix, name, method), name, method)
                op.message = ps.message(mi.input.DESCRIPTOR, True, opts)
                op.body = op.message
                op.response = ps.message(mi.output.DESCRIPTOR, False, opts)
                op.description = cc.note(name, method).description or f"{name}/{method} (protobuf)"
                ops.append(op)
        return ops

    @staticmethod
    def _idl_methods(svc: Any) -> list[str]:
        schema = getattr(svc.source, "schema", None)
        if schema is None or not schema.has_service(svc.cfg.interface):
            return []
        sd = schema.pool.FindServiceByName(svc.cfg.interface)
        return [m.name for m in sd.methods]

    def _idl_route(self, ps: ProtoSchemas, cc: ContractConfig, rc: Any, svc: Any, mi: Any) -> Operation:
        opts = svc.cfg.json
        op = Operation("route", rc.http_method, rc.template.text, rc.service, rc.method)
        fields = ps.fields(mi.input.DESCRIPTOR, opts)
        for var in _SIMPLE_VAR.findall(rc.template.text):
            sch = dict(fields.get(var, {"type": "string"}))
            if sch.get("type") == "string" and "pattern" not in sch:
                sch["pattern"] = SEGMENT_PATTERN
            op.params.append(Param(var, "path", sch, True))
        if rc.body == "*":
            op.body = ps.message(mi.input.DESCRIPTOR, True, opts)
        elif rc.body:
            op.body = fields.get(rc.body, {})
        op.response = ps.message(mi.output.DESCRIPTOR, False, opts)
        op.description = cc.note(rc.service, rc.method).description or f"{rc.service}/{rc.method}"
        return op


def _nested(fields: dict[str, tuple[Schema, bool]]) -> Schema:
    """Body fields given by dotted names -> one object schema."""
    root: Schema = {"type": "object", "properties": {}}
    for dotted, (sch, need) in fields.items():
        node = root
        parts = dotted.split(".")
        for part in parts[:-1]:
            if need and part not in node.setdefault("required", []):
                node["required"].append(part)
            node = node["properties"].setdefault(part, {"type": "object", "properties": {}})
        node["properties"][parts[-1]] = sch
        if need:
            node.setdefault("required", []).append(parts[-1])
    return root


def _scheme(scheme: Any) -> Schema:
    """A security.auth scheme as an OpenAPI security scheme (what Swagger UI asks for)."""
    header = getattr(scheme, "header", None)
    query = getattr(scheme, "query", None)
    if header or query:  # ApiKeyScheme
        return {"type": "apiKey", "in": "header" if header else "query", "name": header or query}
    return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


def _security(cat: Catalog, guard: Any) -> None:
    """Each operation's credentials: the first access rule matching it (as the guard
    decides), its schemes as alternatives; no rule or ``auth: none``: public."""
    for name, scheme in guard.schemes.items():
        cat.schemes[name] = _scheme(scheme)
    for op in cat.operations:
        rule = next((a for a in guard.access if a.match.hit(op.path, op.service, op.method)), None)
        if rule is not None and rule.schemes:
            cat.security[id(op)] = list(rule.schemes)
