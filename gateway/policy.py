"""Which Java classes a client may name.

A JSON object with a ``"class"`` key becomes an instance of that class on the provider
(hessian ``readObject`` for direct calls, ``PojoUtils.realize`` for ``$invoke``), and so does
a type in the ``x-tribridge-types`` header. Letting a client pick any class is the classic
Java deserialization hole: a gadget class (``TemplatesImpl``, ``JdbcRowSetImpl``,
``InvokerTransformer`` ...) runs code while it is being built. So a client-named class is
accepted only when

1. no deny pattern names it — the built-in list of dangerous packages (``DEFAULT_DENY``, see
   docs/security.md) plus configured ``deny`` patterns; this rule wins over everything; and
2. the position allows it: the method's signature (configured or from provider metadata)
   declares exactly that class there, or the class is one the service declares
   (configured ``types`` or provider metadata types), or an ``allow`` pattern names it.

Every failure names the rule that fired so an operator can tell a typo from an attack.
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Iterable
from typing import Any

from tribridge.codecs.hessian2 import JavaType, TypeRegistry, parse_type

from .errors import GatewayError

#: Always refused, even when an allow pattern names the class. A pattern ending in ``.*``
#: covers the package and every subpackage; others are fnmatch globs on the full name.
DEFAULT_DENY: tuple[str, ...] = (
    # JDK: processes, reflection, scripting, naming/JNDI, RMI, JMX, internals, beans
    "java.lang.Runtime",
    "java.lang.ProcessBuilder",
    "java.lang.Process",
    "java.lang.ProcessImpl",
    "java.lang.System",
    "java.lang.Thread",
    "java.lang.ThreadGroup",
    "java.lang.Class",
    "java.lang.ClassLoader",
    "java.lang.Compiler",
    "java.lang.reflect.*",
    "java.lang.invoke.*",
    "java.lang.instrument.*",
    "java.lang.management.*",
    "javax.script.*",
    "javax.naming.*",
    "javax.management.*",
    "javax.sql.rowset.*",
    "javax.xml.transform.*",
    "javax.imageio.*",
    "java.rmi.*",
    "java.beans.*",
    "java.net.URLClassLoader",
    "java.net.URL",
    "java.net.InetAddress",
    "java.security.SignedObject",
    "java.util.ServiceLoader",
    "java.util.PriorityQueue",
    "java.util.concurrent.ConcurrentSkipListMap",
    "java.io.ObjectInputStream",
    "java.io.File*",
    "sun.*",
    "com.sun.*",
    "jdk.*",
    "javafx.*",
    "oracle.*",
    # scripting engines
    "groovy.*",
    "org.codehaus.groovy.*",
    "org.mozilla.javascript.*",
    "org.openjdk.nashorn.*",
    "bsh.*",
    "org.python.*",
    "org.jruby.*",
    "org.mvel2.*",
    "ognl.*",
    "org.apache.commons.ognl.*",
    "org.springframework.expression.*",
    # Spring internals used in gadget chains
    "org.springframework.beans.*",
    "org.springframework.aop.*",
    "org.springframework.jndi.*",
    "org.springframework.context.*",
    "org.springframework.core.*",
    "org.springframework.transaction.*",
    "org.springframework.jdbc.*",
    "org.springframework.orm.*",
    # gadget libraries
    "org.apache.commons.collections.*",
    "org.apache.commons.collections4.*",
    "org.apache.commons.beanutils.*",
    "org.apache.commons.configuration.*",
    "org.apache.commons.configuration2.*",
    "org.apache.commons.fileupload.*",
    "org.apache.commons.io.*",
    "org.apache.commons.dbcp.*",
    "org.apache.commons.dbcp2.*",
    "org.apache.tomcat.dbcp.*",
    "org.apache.xalan.*",
    "org.apache.xpath.*",
    "org.apache.bcel.*",
    "org.apache.xbean.*",
    "org.apache.ibatis.*",
    "org.apache.myfaces.*",
    "org.apache.wicket.*",
    "org.apache.log4j.*",
    "org.apache.logging.log4j.*",
    "org.apache.shiro.*",
    "org.apache.tomcat.*",
    "org.apache.catalina.*",
    "org.apache.naming.*",
    "org.apache.openjpa.*",
    "org.apache.aries.*",
    "org.apache.click.*",
    "org.apache.cxf.*",
    "org.apache.hadoop.*",
    "org.apache.activemq.*",
    "org.apache.dubbo.*",
    "com.alibaba.dubbo.*",
    "com.alibaba.fastjson.*",
    "com.alibaba.fastjson2.*",
    "com.alibaba.druid.*",
    "com.mchange.*",
    "com.rometools.*",
    "com.sun.syndication.*",
    "org.hibernate.*",
    "org.aspectj.*",
    "ch.qos.logback.*",
    "org.slf4j.ext.*",
    "com.zaxxer.hikari.*",
    "org.jboss.*",
    "org.jdom.*",
    "org.jdom2.*",
    "org.eclipse.jetty.*",
    "org.mortbay.*",
    "org.springframework.web.*",
    "org.yaml.snakeyaml.*",
    "com.fasterxml.jackson.databind.*",
    "com.thoughtworks.xstream.*",
    "org.codehaus.jackson.*",
    "net.sf.json.*",
    "net.sf.ehcache.*",
    "org.h2.*",
    "org.postgresql.*",
    "com.mysql.*",
    "org.mariadb.*",
    "com.ibatis.*",
    "clojure.*",
    "org.clojure.*",
    "org.jsecurity.*",
    "org.apache.batik.*",
    "com.caucho.*",
    "javassist.*",
    "org.javassist.*",
    "net.bytebuddy.*",
    "org.objectweb.asm.*",
    "org.mockito.*",
    "com.google.inject.*",
    "org.apache.velocity.*",
    "freemarker.*",
    "org.thymeleaf.*",
)


class ClassNotAllowed(GatewayError):
    def __init__(self, cls: str, rule: str, path: str, detail: str) -> None:
        super().__init__(
            400,
            "class_not_allowed",
            f"{path}: class {cls!r} is not allowed: {detail}",
            rule=rule,
            **{"class": cls},
            path=path,
        )


_UNSET = object()


def _glob(p: str) -> bool:
    return any(c in p for c in "*?[")


def _match(name: str, pattern: str) -> bool:
    if pattern.endswith(".*"):
        return name.startswith(pattern[:-1]) or name == pattern[:-2]
    return fnmatch.fnmatchcase(name, pattern)


def _type_classes(t: JavaType, out: set[str]) -> None:
    """Every class name a (possibly generic or array) type mentions."""
    stack = [t]
    while stack:
        cur = stack.pop()
        out.add(cur.name)
        stack.extend(cur.args)


class ClassPolicy:
    """Checks the classes of one call before anything is encoded or sent."""

    def __init__(
        self,
        allow: Iterable[str] = (),
        deny: Iterable[str] = (),
        max_depth: int = 128,
    ) -> None:
        self.allow = tuple(allow)
        self.deny = DEFAULT_DENY + tuple(deny)
        self.max_depth = max_depth
        # Compiled once: package patterns as a set of prefixes, exact names as a set, only
        # real globs scanned; verdicts cached per class name (bounded).
        self._deny_pkgs = {p[:-2]: p for p in self.deny if p.endswith(".*")}
        self._deny_exact = {p: p for p in self.deny if not p.endswith(".*") and not _glob(p)}
        self._deny_globs = [p for p in self.deny if not p.endswith(".*") and _glob(p)]
        self._verdicts: dict[str, str | None] = {}

    def denied_by(self, cls: str) -> str | None:
        v = self._verdicts.get(cls, _UNSET)
        if v is _UNSET:
            v = self._denied_by(cls)
            if len(self._verdicts) >= 4096:
                self._verdicts.clear()
            self._verdicts[cls] = v
        return v  # type: ignore[return-value]

    def _denied_by(self, cls: str) -> str | None:
        # Java resolves nested classes with '$' and arrays as '[Lx;': judge the outer name.
        name = cls.lstrip("[").removeprefix("L").rstrip(";").split("$", 1)[0]
        for n in {name, cls}:
            hit = self._deny_exact.get(n)
            if hit is not None:
                return hit
            parts = n.split(".")
            for i in range(1, len(parts) + 1):
                hit = self._deny_pkgs.get(".".join(parts[:i]))
                if hit is not None:
                    return hit
            for p in self._deny_globs:
                if fnmatch.fnmatchcase(n, p):
                    return p
        return None

    def allowed_by(self, cls: str) -> str | None:
        for p in self.allow:
            if _match(cls, p):
                return p
        return None

    def _judge(self, cls: str, declared: JavaType | None, reg: TypeRegistry, path: str) -> None:
        rule = self.denied_by(cls)
        if rule is not None:
            raise ClassNotAllowed(cls, f"deny:{rule}", path, f"denied by pattern {rule!r}")
        if declared is not None and declared.kind == "class" and declared.name == cls:
            return
        if _plain(cls):
            return
        if reg.get(cls) is not None or self.allowed_by(cls) is not None:
            return
        if declared is not None and declared.kind == "class":
            raise ClassNotAllowed(
                cls,
                "not_assignable",
                path,
                f"the signature declares {declared.name} here and no allow pattern names "
                f"{cls}",
            )
        where = "Object/Map/interface" if declared is not None else "an untyped"
        raise ClassNotAllowed(
            cls,
            "not_allowlisted",
            path,
            f"{where} position accepts only classes the service declares or an allow "
            "pattern names",
        )

    def check_args(
        self, args: list[Any], types: list[JavaType] | None, reg: TypeRegistry
    ) -> None:
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
                if _plain(cls) or cls in known or reg.get(cls) is not None:
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


def denied_in_body(policy: ClassPolicy, inv: Any) -> tuple[str, str] | None:
    """(class, deny pattern) for the first denied class a Dubbo2 request body carries, or
    None.  For the Dubbo2 ingress and the relay listener, which forward bodies from
    consumers they do not control: the body's own class definitions and list / map types
    (``Invocation.classes``), and for ``$invoke`` the parameter type names and every
    ``"class"`` key in the arguments (``PojoUtils.realize`` instantiates those).  Only the
    deny rule applies here: a Dubbo consumer's classes are its own business, gadgets never."""
    names: list[str] = list(inv.classes)
    if inv.is_generic and len(inv.args) == 3:
        types = inv.args[1]
        if isinstance(types, list):
            names += [t for t in types if isinstance(t, str)]
        _class_keys(inv.args[2], names, set(), policy.max_depth)
    for cls in names:
        rule = policy.denied_by(cls)
        if rule is not None:
            return cls, rule
    return None


def _class_keys(v: Any, out: list[str], seen: set[int], depth: int) -> None:
    if depth <= 0 or id(v) in seen:
        return
    if isinstance(v, dict):
        seen.add(id(v))
        c = v.get("class")
        if isinstance(c, str):
            out.append(c)
        for x in v.values():
            _class_keys(x, out, seen, depth - 1)
    elif isinstance(v, list):
        seen.add(id(v))
        for x in v:
            _class_keys(x, out, seen, depth - 1)
