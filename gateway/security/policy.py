"""Which Java classes a client may name — one policy object for every door.

A JSON object with a ``"class"`` key becomes an instance of that class on the provider
(hessian ``readObject`` for direct calls, ``PojoUtils.realize`` for ``$invoke``), and so does
a type in the ``x-tribridge-types`` header; a Dubbo2 body arriving at the ingress or the relay
listener names classes in class definitions, list / map types, the parameter descriptor,
``$invoke``'s type names and ``"class"`` map keys. Letting a client pick any class is the
classic Java deserialization hole: a gadget class (``TemplatesImpl``, ``JdbcRowSetImpl``,
``InvokerTransformer`` ...) runs code while it is being built. So a client-named class is
accepted only when

1. no deny pattern names it — the built-in list of dangerous packages and classes
   (``DEFAULT_DENY`` in ``classlists.py``, see docs/security.md) plus configured ``deny``
   patterns; this rule wins over everything and applies whether or not a signature is
   known; and
2. the position allows it: the JDK value types the codec maps itself (``SAFE_JDK``), a class
   the method's signature declares (configured or from provider metadata, transitively
   through the declared POJOs' field types), or an ``allow`` pattern.

How the Dubbo2 doors see every class (``judge_invocation``): the names are not found by
walking the decoded value — a walk has to know every shape (maps with non-string keys,
typed lists and maps, references, enums, arrays, class definitions never instantiated) and
misses the one it forgot, which is how ``JdbcRowSetImpl`` got through inside a ``PairMap``.
The hessian decoder reports every class name where it reads one (``Decoder.named_classes``,
``class_keys``), which are the only places a Java hessian reader resolves a class; the
policy judges that set. A new value shape cannot bypass it, and a body nested deeper than
the decoder's limit (the same ``max_depth`` as the JSON walks) is refused, not half-judged.

Pattern semantics (deny and allow alike): ``pkg.*`` is the package and every subpackage
(``com.x.*`` covers ``com.x.Y`` and ``com.x.y.Z``, never ``com.xy.Z``); a name without a
glob is that class exactly plus its nested classes (``Outer$Inner``); any other pattern is an
fnmatch glob on the full name. Every spelling is reduced first: arrays (``[Lx;``,
``[x`` hessian, ``x[]``), descriptors (``Lx/y/Z;``), generic parameters. Deny matching
ignores case (as Dubbo's own block list does), allow matching does not.

Every failure names the rule that fired so an operator can tell a typo from an attack.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tribridge.codecs.hessian2 import MAX_DEPTH, JavaType, TypeRegistry, parse_type
from tribridge.errors import GatewayError
from tribridge.security.classlists import DEFAULT_DENY, SAFE_JDK

#: Hessian's short spellings of array element types (``[int``, ``[string``, ``[object``).
_HESSIAN_SHORT = frozenset(
    {"boolean", "byte", "char", "short", "int", "long", "float", "double", "string", "object"}
)
_PRIM_DESC = frozenset("ZBCDFIJSV")
_SPLIT = re.compile(r"[\s<>,?&]+")
_DESC_CLASS = re.compile(r"L([^;]*);")

#: ``$invoke`` and its async twin: Dubbo's GenericFilter realizes their arguments whatever
#: descriptor they are sent with (it keys on the method name and three arguments).
GENERIC_METHODS = frozenset({"$invoke", "$invokeAsync"})
#: ``generic`` attachment values whose arguments go through ``PojoUtils.realize`` (judged
#: here): absent, ``true`` (any case) and ``raw.return``. Every other mode — ``nativejava``
#: (``ObjectInputStream`` on ``byte[]`` arguments), ``bean`` (``JavaBeanDescriptor``
#: class names), ``protobuf-json``, ``gson`` — decodes payloads this policy cannot see into.
REALIZED_GENERIC_MODES = frozenset({"", "true", "raw.return"})
#: The modes ``security.classes.generic_modes`` may allow per service.
OTHER_GENERIC_MODES = frozenset({"nativejava", "bean", "protobuf-json", "gson"})


@functools.lru_cache(maxsize=8192)
def class_names(spelling: str) -> tuple[str, ...]:
    """The class names one type spelling makes Java resolve, in dotted binary form:
    ``[Lcom/x/Y;`` / ``[com.x.Y`` / ``com.x.Y[]`` -> ``com.x.Y``; ``java.util.List<com.x.Y>``
    -> both; primitive arrays -> nothing. Over-approximates on junk (a name Java cannot load
    is judged anyway) — the safe direction for a deny check."""
    out: list[str] = []
    for tok in _SPLIT.split(spelling.replace("/", ".")):
        dims = len(tok) - len(tok.lstrip("["))
        tok = tok[dims:]
        while tok.endswith("[]"):
            tok = tok[:-2]
        if dims and tok in _PRIM_DESC:
            continue
        if tok.startswith("L") and tok.endswith(";"):
            tok = tok[1:-1]
        if tok and tok not in out and tok not in ("extends", "super"):
            out.append(tok)
    return tuple(out)


@functools.lru_cache(maxsize=1024)
def descriptor_names(desc: str) -> tuple[str, ...]:
    """The classes of a JVM parameter descriptor (``ILcom/x/Y;[Lcom/x/Z;``): older Dubbo
    providers load them (``ReflectUtils.desc2classArray``) before any filter runs."""
    return tuple(m.replace("/", ".") for m in _DESC_CLASS.findall(desc))


class _Patterns:
    """Compiled patterns: packages as a prefix table, exact names as a set, real globs
    scanned; ``fold`` lower-cases names and patterns (deny)."""

    def __init__(self, patterns: Iterable[str], fold: bool) -> None:
        self.fold = fold
        self.pkgs: dict[str, str] = {}
        self.exact: dict[str, str] = {}
        self.globs: list[tuple[str, str]] = []
        for p in patterns:
            k = p.lower() if fold else p
            if k.endswith(".*") and not _glob(k[:-2]):
                self.pkgs.setdefault(k[:-2], p)
            elif _glob(k):
                self.globs.append((k, p))
            else:
                self.exact.setdefault(k, p)
        self.any = bool(self.pkgs or self.exact or self.globs)

    def match(self, name: str) -> str | None:
        if not self.any:
            return None
        n = name.lower() if self.fold else name
        outer = n.split("$", 1)[0]
        for c in (n, outer) if outer != n else (n,):
            hit = self.exact.get(c)
            if hit is not None:
                return hit
        parts = outer.split(".")
        for i in range(1, len(parts) + 1):
            hit = self.pkgs.get(".".join(parts[:i]))
            if hit is not None:
                return hit
        for g, p in self.globs:
            if fnmatch.fnmatchcase(n, g):
                return p
        return None


class PolicyRefused(GatewayError):
    """A call the class policy refuses; ``rule`` names the rule, ``path`` where it fired."""

    def __init__(self, rule: str, path: str, message: str, **extra: Any) -> None:
        super().__init__(400, "class_not_allowed", message, rule=rule, path=path, **extra)
        self.rule = rule
        self.path = path


class ClassNotAllowed(PolicyRefused):
    def __init__(self, cls: str, rule: str, path: str, detail: str) -> None:
        super().__init__(
            rule, path, f"{path}: class {cls!r} is not allowed: {detail}", **{"class": cls}
        )
        self.cls = cls


def _glob(p: str) -> bool:
    return any(c in p for c in "*?[")


def _type_classes(t: JavaType, out: set[str]) -> None:
    """Every class name a (possibly generic or array) type mentions."""
    stack = [t]
    while stack:
        cur = stack.pop()
        out.add(cur.name)
        stack.extend(cur.args)


def known_classes(overloads: Iterable[Sequence[JavaType]], reg: TypeRegistry) -> frozenset[str]:
    """The allowlist a known signature implies: every class the overloads' parameter types
    name (generic arguments and array elements included), every type the service declares
    (configured ``types`` / metadata type definitions — the HTTP door accepts those at
    Object positions too, so both doors answer alike) and, transitively, their field types.
    A subclass or implementation the signature does not name needs an allow pattern."""
    seen: set[str] = set()
    todo: list[JavaType] = [t for o in overloads for t in o]
    for name, pdef in reg.defs.items():
        seen.add(name)
        todo.extend(ft for _, ft in pdef.fields)
    while todo:
        names: set[str] = set()
        _type_classes(todo.pop(), names)
        for n in names:
            for c in class_names(n):
                if c in seen:
                    continue
                seen.add(c)
                pdef = reg.get(c)
                if pdef is not None:
                    todo.extend(ft for _, ft in pdef.fields)
    return frozenset(seen)


class ClassPolicy:
    """Judges the classes of one call before anything is encoded or forwarded; one object
    per config, shared by the HTTP routes (``check_args`` / ``check_hint``), the Dubbo2
    ingress and the relay listener (``judge_invocation``)."""

    def __init__(
        self,
        allow: Iterable[str] = (),
        deny: Iterable[str] = (),
        max_depth: int = MAX_DEPTH,
        generic_modes: Mapping[str, Iterable[str]] | None = None,
        require_signature: bool = False,
    ) -> None:
        self.allow = tuple(allow)
        self.deny = DEFAULT_DENY + tuple(deny)
        #: one nesting limit for the hessian decoder of the Dubbo2 doors and the JSON walk
        self.max_depth = max_depth
        #: service glob -> generic modes beyond ``true`` that service accepts
        self.generic_modes = {
            k: frozenset(m.lower() for m in v) for k, v in (generic_modes or {}).items()
        }
        #: Dubbo2 doors: refuse classes outside SAFE_JDK / allow when no signature is known
        self.require_signature = require_signature
        self._deny = _Patterns(self.deny, fold=True)
        self._allow = _Patterns(self.allow, fold=False)
        self._verdicts: dict[str, str | None] = {}

    # ---- single names ----------------------------------------------------------------------

    def denied_by(self, cls: str) -> str | None:
        """The deny pattern naming any class of this spelling, or None (cached, bounded)."""
        v = self._verdicts.get(cls, _UNSET)
        if v is _UNSET:
            v = next((h for n in class_names(cls) if (h := self._deny.match(n))), None)
            if len(self._verdicts) >= 4096:
                self._verdicts.clear()
            self._verdicts[cls] = v
        return v  # type: ignore[return-value]

    def allowed_by(self, cls: str) -> str | None:
        return self._allow.match(cls)

    def generic_mode_allowed(self, service: str, mode: str) -> bool:
        m = mode.lower()
        if m in REALIZED_GENERIC_MODES:
            return True
        return any(
            m in ms for g, ms in self.generic_modes.items() if fnmatch.fnmatchcase(service, g)
        )

    # ---- the Dubbo2 doors ------------------------------------------------------------------

    def judge_invocation(self, inv: Any, known: frozenset[str] | None) -> None:
        """Refuse a decoded Dubbo2 request (``codecs.dubbo.Invocation``) that names a class
        outside the policy; ``known``: the allowlist of the method's signature
        (``known_classes``), None when no signature is known (deny list only, unless
        ``require_signature``). Raises ``PolicyRefused``."""
        generic = inv.method in GENERIC_METHODS
        att = inv.attachments
        v = att.get("path")
        if v is not None and v != inv.path:
            # Java's DecodeableRpcInvocation lets the attachment override the body's path
            # (the exporter key): the provider would run another service than the one
            # routed and judged here. (``interface`` may differ: services with a path.)
            raise PolicyRefused(
                "path_mismatch",
                "attachments.path",
                f"attachments.path: {v!r} differs from the request path {inv.path!r}",
            )
        if generic:
            # every spelling of the key: Dubbo 3 lower-cases attachment keys on some paths
            for k, mode in att.items():
                if not (isinstance(k, str) and k.lower() == "generic"):
                    continue
                if not isinstance(mode, str) or not self.generic_mode_allowed(inv.path, mode):
                    raise PolicyRefused(
                        "generic_mode",
                        f"attachments.{k}",
                        f"attachments.{k}: generic mode {mode!r} is not allowed for "
                        f"{inv.path} (only 'true'; others need security.classes.generic_modes)",
                        mode=str(mode),
                    )
            if inv.java_serialized and not self.generic_mode_allowed(inv.path, "nativejava"):
                raise PolicyRefused(
                    "java_serialized",
                    "args",
                    "args: a byte[] argument of a generic call is a Java-serialized object "
                    "(nativejava payload), which no class policy can see into",
                )
        # (spelling, where, position-judged by the allowlist)
        names: list[tuple[str, str, bool]] = [
            (n, "descriptor", True) for n in descriptor_names(inv.desc)
        ]
        names += [(n, "hessian class", True) for n in inv.classes]
        if generic and len(inv.args) >= 2 and isinstance(inv.args[1], list):
            names += [
                (t, "$invoke parameter types", True) for t in inv.args[1] if isinstance(t, str)
            ]
        # "class" keys: realized only by a generic call; elsewhere they are data, judged
        # by the deny list alone.
        names += [(n, '"class" key', generic) for n in inv.class_keys]
        for spelling, where, positional in names:
            self.judge_name(spelling, where, known if positional else None, positional)

    def judge_name(
        self, spelling: str, where: str, known: frozenset[str] | None, positional: bool = True
    ) -> None:
        rule = self.denied_by(spelling)
        if rule is not None:
            raise ClassNotAllowed(spelling, f"deny:{rule}", where, f"denied by pattern {rule!r}")
        if not positional or (known is None and not self.require_signature):
            return
        for n in class_names(spelling):
            if (known is not None and n in known) or _safe(n) or self._allow.match(n):
                continue
            if known is None:
                raise ClassNotAllowed(
                    spelling,
                    "no_signature",
                    where,
                    f"{n} is not a JDK value type or allowlisted, and the method's "
                    "signature is unknown (security.classes.require_signature)",
                )
            raise ClassNotAllowed(
                spelling,
                "not_allowlisted",
                where,
                f"{n} is neither a type of the method's signature (nor of its declared "
                "POJOs' fields), a JDK value type, nor named by an allow pattern",
            )

    # ---- the HTTP doors --------------------------------------------------------------------

    def check_attachments(self, service: str, attachments: Mapping[str, Any]) -> None:
        """A passthrough header must not switch the gateway's generic call to another
        generic mode (per-call attachments win over the template's ``generic: true``)."""
        for k, v in attachments.items():
            if k.lower() == "generic" and not (
                isinstance(v, str) and self.generic_mode_allowed(service, v)
            ):
                raise PolicyRefused(
                    "generic_mode",
                    f"attachments.{k}",
                    f"attachments.{k}: generic mode {v!r} is not allowed for {service}",
                    mode=str(v),
                )

    def _judge(self, cls: str, declared: JavaType | None, reg: TypeRegistry, path: str) -> None:
        rule = self.denied_by(cls)
        if rule is not None:
            raise ClassNotAllowed(cls, f"deny:{rule}", path, f"denied by pattern {rule!r}")
        if declared is not None and declared.kind == "class" and declared.name == cls:
            return
        if _safe(cls):
            return
        if reg.get(cls) is not None or self.allowed_by(cls) is not None:
            return
        if declared is not None and declared.kind == "class":
            raise ClassNotAllowed(
                cls,
                "not_assignable",
                path,
                f"the signature declares {declared.name} here and no allow pattern names {cls}",
            )
        where = "Object/Map/interface" if declared is not None else "an untyped"
        raise ClassNotAllowed(
            cls,
            "not_allowlisted",
            path,
            f"{where} position accepts only classes the service declares or an allow pattern names",
        )

    def check_args(self, args: list[Any], types: list[JavaType] | None, reg: TypeRegistry) -> None:
        """Walk every argument (iteratively: depth is the client's choice) in step with its
        declared type, judging each ``"class"`` key met."""
        stack: list[tuple[Any, JavaType | None, str, int]] = [
            (a, types[i] if types is not None and i < len(types) else None, f"args[{i}]", 1)
            for i, a in enumerate(args)
        ]
        limit = self.max_depth
        while stack:
            v, t, path, depth = stack.pop()
            if depth > limit:
                raise GatewayError(
                    400, "too_deep", f"{path}: nesting deeper than {limit} levels", path=path
                )
            if t is not None and t.kind == "object":
                t = None
            if isinstance(v, dict):
                cls = v.get("class")
                pdef = None
                if isinstance(cls, str):
                    self._judge(cls, t, reg, f"{path}.class")
                    pdef = reg.get(cls)
                elif cls is not None:
                    raise ClassNotAllowed(repr(cls), "not_a_name", f"{path}.class", "not a name")
                if pdef is None and t is not None and t.kind == "class":
                    pdef = reg.get(t.name)
                fields = dict(pdef.fields) if pdef is not None else None
                vt = t.args[1] if t is not None and t.kind == "map" and len(t.args) == 2 else None
                for k, x in v.items():
                    if k == "class":
                        continue
                    ft = fields.get(k) if fields is not None else vt
                    if isinstance(x, (dict, list)):
                        stack.append((x, ft, f"{path}.{k}", depth + 1))
            elif isinstance(v, list):
                et = t.element if t is not None and t.kind in ("array", "list", "set") else None
                for i, x in enumerate(v):
                    if isinstance(x, (dict, list)):
                        stack.append((x, et, f"{path}[{i}]", depth + 1))

    def check_hint(
        self, hint: list[JavaType], declared: Iterable[JavaType], reg: TypeRegistry
    ) -> None:
        """Classes in ``x-tribridge-types``: denied never; otherwise only those a known
        signature of the method declares, the service declares, or an allow pattern names."""
        known: set[str] = set()
        for t in declared:
            _type_classes(t, known)
        for i, t in enumerate(hint):
            names: set[str] = set()
            _type_classes(t, names)
            for cls in sorted(names):
                path = f"x-tribridge-types[{i}]"
                rule = self.denied_by(cls)
                if rule is not None:
                    raise ClassNotAllowed(cls, f"deny:{rule}", path, f"denied by pattern {rule!r}")
                if _safe(cls) or cls in known or reg.get(cls) is not None:
                    continue
                if self.allowed_by(cls) is None:
                    raise ClassNotAllowed(
                        cls,
                        "type_hint",
                        path,
                        "a type hint may name only classes of the method's signature, the "
                        "service's declared types or an allow pattern",
                    )


@functools.lru_cache(maxsize=1024)
def _plain(name: str) -> bool:
    """Primitives, boxes, strings, numbers, dates, collections: types the codec maps itself."""
    try:
        return parse_type(name).kind != "class"
    except Exception:
        return False


@functools.lru_cache(maxsize=4096)
def _safe(name: str) -> bool:
    """A JDK value type any position may carry (``_plain`` or ``SAFE_JDK``)."""
    return name in _HESSIAN_SHORT or _plain(name) or _SAFE.match(name) is not None


_UNSET = object()
_SAFE = _Patterns(SAFE_JDK, fold=False)
