"""Class-name policy: client-named classes (in JSON "class" keys, nested anywhere, and in the
x-tribridge-types hint) are judged before anything is encoded; refused ones never reach the
provider (asserted on the provider's own request counter)."""

from __future__ import annotations

import pytest
from tribridge.cli.commands import DEMO_SERVICE as S
from tribridge.cli.commands import demo_config
from tribridge.codecs.hessian2 import parse_types
from tribridge.config.model import ConfigError, parse_config
from tribridge.interop.testing import http_request
from tribridge.security.policy import DEFAULT_DENY, ClassPolicy

USER = "com.tribridge.demo.User"
ROWSET = "com.sun.rowset.JdbcRowSetImpl"
INVOKER = "org.apache.commons.collections.functors.InvokerTransformer"


def untyped(port: int, classes: str = "") -> str:
    """No signatures configured: every call is inferred and goes generic ($invoke)."""
    return f"""
registries: {{static: {{type: static, services: {{{S}: ["127.0.0.1:{port}?version=1.0.0"]}}}}}}
services: [{{interface: {S}, version: 1.0.0}}]
auto_routes: {{prefix: /, expose: ["{S}"]}}
{"security: {classes: " + classes + "}" if classes else ""}
"""


@pytest.fixture(scope="module")
def generic_gw(bg, provider) -> int:  # type: ignore[no-untyped-def]
    return bg.start_gateway(untyped(provider.port)).port


@pytest.fixture(scope="module")
def typed_gw(bg, provider) -> int:  # type: ignore[no-untyped-def]
    return bg.start_gateway(demo_config(provider.port, 0)).port


def refused(provider, gw: int, method: str, args: object, rule: str, cls: str, headers=None):  # type: ignore[no-untyped-def]
    before = provider.requests
    status, doc = http_request(gw, "POST", f"/{S}/{method}", args, headers)
    assert status == 400, doc
    err = doc["error"]
    assert err["code"] == "class_not_allowed", err
    assert err["rule"] == rule and err["class"] == cls, err
    assert provider.requests == before, "a refused class reached the provider"
    return err


def reached(provider, gw: int, method: str, args: object, headers=None):  # type: ignore[no-untyped-def]
    before = provider.requests
    status, doc = http_request(gw, "POST", f"/{S}/{method}", args, headers)
    assert provider.requests == before + 1, (status, doc)
    return status, doc


def test_gadget_in_a_generic_call_never_reaches_the_provider(provider, generic_gw) -> None:  # type: ignore[no-untyped-def]
    args = [{"class": ROWSET, "dataSourceName": "ldap://127.0.0.1:1/x", "autoCommit": True}]
    refused(provider, generic_gw, "echoObject", args, "deny:com.sun.*", ROWSET)


@pytest.mark.parametrize(
    "args",
    [
        [{"a": {"b": [{"class": INVOKER, "iMethodName": "exec"}]}}],
        [[1, [2, {"class": INVOKER}]]],
        [{"class": "java.util.HashMap", "x": {"class": INVOKER}}],
        [{"k": {"class": "java.util.LinkedHashMap", "v": [{"class": INVOKER}]}}],
    ],
)
def test_gadget_nested_in_maps_and_lists(provider, generic_gw, args) -> None:  # type: ignore[no-untyped-def]
    refused(provider, generic_gw, "echoObject", args, "deny:org.apache.commons.collections.*", INVOKER)


def test_nested_class_names_are_judged_by_their_outer_class(provider, generic_gw) -> None:  # type: ignore[no-untyped-def]
    cls = "org.apache.commons.collections.map.LazyMap$Entry"
    refused(provider, generic_gw, "echoObject", [{"class": cls}], "deny:org.apache.commons.collections.*", cls)


def test_unknown_class_at_an_untyped_position(provider, generic_gw) -> None:  # type: ignore[no-untyped-def]
    refused(provider, generic_gw, "echoObject", [{"class": "com.acme.Thing"}], "not_allowlisted", "com.acme.Thing")


def test_class_must_be_a_name(provider, generic_gw) -> None:  # type: ignore[no-untyped-def]
    refused(provider, generic_gw, "echoObject", [{"class": 5}], "not_a_name", "5")


def test_plain_maps_still_pass(provider, generic_gw) -> None:  # type: ignore[no-untyped-def]
    status, doc = reached(provider, generic_gw, "echoMap", [{"a": {"b": [1, 2]}}])
    assert status == 200 and doc == {"a": {"b": [1, 2]}}


def test_deny_wins_over_allow(bg, provider) -> None:  # type: ignore[no-untyped-def]
    gw = bg.start_gateway(untyped(provider.port, "{allow: ['org.apache.*', 'com.sun.*']}")).port
    refused(provider, gw, "echoObject", [{"class": INVOKER}], "deny:org.apache.commons.collections.*", INVOKER)
    refused(provider, gw, "echoObject", [{"class": ROWSET}], "deny:com.sun.*", ROWSET)


def test_configured_deny_and_allow(bg, provider) -> None:  # type: ignore[no-untyped-def]
    gw = bg.start_gateway(
        untyped(provider.port, "{allow: ['com.acme.model.*'], deny: ['com.acme.model.Secret']}")
    ).port
    refused(provider, gw, "echoObject", [{"class": "com.acme.model.Secret"}], "deny:com.acme.model.Secret", "com.acme.model.Secret")
    reached(provider, gw, "echoObject", [{"class": "com.acme.model.Order", "id": 1}])


def test_declared_class_passes_and_a_different_one_is_not_assignable(provider, typed_gw) -> None:  # type: ignore[no-untyped-def]
    status, doc = reached(provider, typed_gw, "echoUser", [{"class": USER, "id": 3, "name": "a"}])
    assert status == 200 and doc["id"] == 3
    refused(provider, typed_gw, "echoUser", [{"class": "com.tribridge.demo.Admin", "id": 1}], "not_assignable", "com.tribridge.demo.Admin")


def test_subclass_needs_an_allow_pattern(bg, provider) -> None:  # type: ignore[no-untyped-def]
    gw = bg.start_gateway(
        demo_config(provider.port, 0) + "security: {classes: {allow: ['com.tribridge.demo.Admin']}}\n"
    ).port
    _, doc = reached(provider, gw, "echoUser", [{"class": "com.tribridge.demo.Admin", "id": 1}])
    assert doc.get("error", {}).get("code") != "class_not_allowed"


def test_object_position_takes_declared_types_only(provider, typed_gw) -> None:  # type: ignore[no-untyped-def]
    refused(provider, typed_gw, "echoObject", [{"class": "com.acme.Thing"}], "not_allowlisted", "com.acme.Thing")
    status, _ = reached(provider, typed_gw, "echoObject", [{"class": USER, "id": 9}])
    assert status == 200


def test_gadget_in_a_field_of_a_declared_pojo(provider, typed_gw) -> None:  # type: ignore[no-untyped-def]
    args = [{"class": USER, "id": 1, "tags": [{"class": INVOKER}]}]
    refused(provider, typed_gw, "echoUser", args, "deny:org.apache.commons.collections.*", INVOKER)


def test_map_position_with_gadget_value(provider, typed_gw) -> None:  # type: ignore[no-untyped-def]
    refused(provider, typed_gw, "echoMap", [{"x": {"class": ROWSET}}], "deny:com.sun.*", ROWSET)


def test_explicit_route_body(provider, typed_gw) -> None:  # type: ignore[no-untyped-def]
    before = provider.requests
    status, doc = http_request(typed_gw, "POST", "/users", {"class": "javax.naming.InitialContext", "id": 1})
    assert status == 400 and doc["error"]["rule"] == "deny:javax.naming.*"
    assert provider.requests == before


@pytest.mark.parametrize(
    ("hint", "rule", "cls"),
    [
        (ROWSET, "deny:com.sun.*", ROWSET),
        (f"java.util.List<{INVOKER}>", "deny:org.apache.commons.collections.*", INVOKER),
        ("[Lcom.sun.rowset.JdbcRowSetImpl;", "deny:com.sun.*", ROWSET),
        ("com.acme.Unknown", "type_hint", "com.acme.Unknown"),
    ],
)
def test_type_hint_header(provider, generic_gw, hint: str, rule: str, cls: str) -> None:  # type: ignore[no-untyped-def]
    refused(provider, generic_gw, "echoObject", [{"a": 1}], rule, cls, {"x-tribridge-types": hint})


def test_type_hint_of_plain_types_still_works(provider, generic_gw) -> None:  # type: ignore[no-untyped-def]
    status, doc = reached(provider, generic_gw, "addLong", [1, 2], {"x-tribridge-types": "long,long"})
    assert (status, doc) == (200, 3)


def test_deep_nesting_is_400_before_the_provider(provider, generic_gw) -> None:  # type: ignore[no-untyped-def]
    body = b"[" + b'{"a":' * 300 + b"1" + b"}" * 300 + b"]"
    before = provider.requests
    status, doc = http_request(generic_gw, "POST", f"/{S}/echoObject", body)
    assert status == 400 and doc["error"]["code"] == "too_deep"
    assert provider.requests == before


# ---- the policy object ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls",
    [
        "java.lang.Runtime",
        "java.lang.ProcessBuilder",
        "java.lang.reflect.Method",
        "java.lang.invoke.MethodHandle",
        "javax.script.ScriptEngineManager",
        "javax.naming.InitialContext",
        "java.rmi.server.UnicastRemoteObject",
        "javax.management.BadAttributeValueExpException",
        "sun.misc.Unsafe",
        "com.sun.org.apache.xalan.internal.xsltc.trax.TemplatesImpl",
        "jdk.internal.misc.Unsafe",
        "java.beans.Expression",
        "java.net.URLClassLoader",
        "groovy.lang.GroovyShell",
        "org.codehaus.groovy.runtime.MethodClosure",
        "org.openjdk.nashorn.api.scripting.ScriptObjectMirror",
        "org.mozilla.javascript.NativeJavaObject",
        "bsh.Interpreter",
        "org.springframework.beans.factory.ObjectFactory",
        "org.springframework.aop.framework.AdvisedSupport",
        "org.springframework.jndi.support.SimpleJndiBeanFactory",
        "org.apache.commons.collections.functors.InvokerTransformer",
        "org.apache.commons.collections4.functors.InstantiateTransformer",
        "org.apache.commons.beanutils.BeanComparator",
        "org.apache.xalan.xsltc.trax.TemplatesImpl",
        "com.mchange.v2.c3p0.WrapperConnectionPoolDataSource",
        "com.rometools.rome.feed.impl.ToStringBean",
        "org.hibernate.property.BasicPropertyAccessor",
        "org.aspectj.weaver.tools.cache.SimpleCache",
        "org.apache.bcel.util.ClassLoader",
        "com.alibaba.fastjson.JSONObject",
        "ch.qos.logback.core.db.DriverManagerConnectionSource",
        "org.apache.xbean.naming.context.ContextUtil",
        "org.apache.ibatis.datasource.unpooled.UnpooledDataSource",
        "[Ljava.lang.Runtime;",
        "java.lang.Runtime$Version",
    ],
)
def test_default_deny_list(cls: str) -> None:
    p = ClassPolicy(allow=["*"])
    assert p.denied_by(cls) is not None, cls


def test_default_deny_does_not_catch_ordinary_classes() -> None:
    p = ClassPolicy()
    for cls in ("com.acme.User", "java.util.HashMap", "java.lang.String", "org.apache.dubboish.X",
                "javax.money.Money", "com.sunrise.Order", "sunny.Day"):
        assert p.denied_by(cls) is None, cls
    assert len(DEFAULT_DENY) > 100


def test_hint_checked_against_metadata_signature() -> None:
    from tribridge.codecs.hessian2 import TypeRegistry

    p = ClassPolicy()
    p.check_hint(parse_types("com.acme.Order"), parse_types("com.acme.Order"), TypeRegistry())
    with pytest.raises(Exception, match="type hint"):
        p.check_hint(parse_types("com.acme.Other"), parse_types("com.acme.Order"), TypeRegistry())


def test_config_errors_are_located() -> None:
    with pytest.raises(ConfigError, match=r"<memory>:1:\d+: security.classes.allow: expected a list"):
        parse_config("security: {classes: {allow: 'com.*'}}")
    with pytest.raises(ConfigError, match=r"security.classes.bogus: unknown key"):
        parse_config("security: {classes: {bogus: 1}}")


# ---- pattern semantics, the decoder's side channel, settings ---------------------------------


@pytest.mark.parametrize(
    ("pattern", "name", "hit"),
    [
        ("com.x.*", "com.x.Y", True),
        ("com.x.*", "com.x.y.Z", True),  # subpackages
        ("com.x.*", "com.xy.Z", False),  # package boundary
        ("com.x.Y", "com.x.Y", True),
        ("com.x.Y", "com.x.Y$Inner", True),  # nested classes of a named class
        ("com.x.Y", "com.x.YZ", False),
        ("com.x.Y", "[Lcom.x.Y;", True),  # arrays, JVM spelling
        ("com.x.Y", "[Lcom/x/Y;", True),  # descriptor spelling
        ("com.x.Y", "[com.x.Y", True),  # hessian array type
        ("com.x.Y", "com.x.Y[][]", True),
        ("com.x.Y", "java.util.List<com.x.Y>", True),  # generic parameters
        ("com.x.Y", "COM.X.Y", True),  # deny ignores case
        ("com.x.Ab*", "com.x.Abc", True),  # glob on the full name
    ],
)
def test_deny_pattern_semantics(pattern: str, name: str, hit: bool) -> None:
    assert (ClassPolicy(deny=[pattern]).denied_by(name) == pattern) is hit


def test_allow_patterns_are_exact_about_case_and_boundaries() -> None:
    p = ClassPolicy(allow=["com.acme.model.*", "com.acme.Thing"])
    assert p.allowed_by("com.acme.model.sub.Order")
    assert p.allowed_by("com.acme.Thing$Part")
    assert not p.allowed_by("com.acme.modelx.Order")
    assert not p.allowed_by("COM.ACME.Thing")


def test_dubbo_block_list_samples_and_jdk_only_chains() -> None:
    p = ClassPolicy()
    for cls in (
        "javax.swing.UIDefaults",
        "sun.swing.SwingLazyValue",
        "javax.activation.MimeTypeParameterList",
        "com.sun.jndi.rmi.registry.ReferenceWrapper",
        "sun.rmi.server.UnicastRef",
        "java.rmi.server.RemoteObjectInvocationHandler",
        "com.sun.org.apache.xalan.internal.xsltc.trax.TemplatesImpl",
        "org.springframework.aop.support.DefaultBeanFactoryPointcutAdvisor",
        "org.apache.commons.collections4.functors.InvokerTransformer",
        "com.mchange.v2.c3p0.impl.PoolBackedDataSourceBase",
        "org.apache.xbean.naming.context.ContextUtil$ReadOnlyBinding",
        "com.rometools.rome.feed.impl.EqualsBean",
        "com.sun.syndication.feed.impl.ToStringBean",
        "ch.qos.logback.core.db.JNDIConnectionSource",
        "com.zaxxer.hikari.HikariDataSource",
        "org.apache.tomcat.dbcp.dbcp2.BasicDataSource",
        "java.util.ServiceLoader$LazyIterator",
        "javax.xml.transform.Templates",
        "org.slf4j.Logger",
        "net.sf.cglib.proxy.Enhancer",
        "org.apache.commons.logging.impl.Log4JLogger",
    ):
        assert p.denied_by(cls) is not None, cls
    for cls in ("java.util.HashMap", "java.time.LocalDate", "java.sql.Timestamp", "java.awt.Color"):
        assert p.denied_by(cls) is None, cls


def _inv(**kw):  # type: ignore[no-untyped-def]
    from tribridge.codecs.dubbo.messages import Invocation

    base = dict(
        dubbo_version="2.0.2", path="com.acme.S", version="", method="m", desc="", args=[],
        attachments={},
    )
    base.update(kw)
    return Invocation(**base)  # type: ignore[arg-type]


def test_require_signature_and_known_classes() -> None:
    from tribridge.codecs.hessian2 import PojoDef, TypeRegistry
    from tribridge.security.policy import PolicyRefused, known_classes

    inv = _inv(desc="Lcom/acme/Order;", args=[None], classes=("com.acme.Order",))
    ClassPolicy().judge_invocation(inv, None)  # no signature: deny list only
    with pytest.raises(PolicyRefused) as e:
        ClassPolicy(require_signature=True).judge_invocation(inv, None)
    assert e.value.rule == "no_signature"
    reg = TypeRegistry([PojoDef("com.acme.Order", [("line", parse_types("com.acme.Line")[0])])])
    known = known_classes([parse_types("com.acme.Order")], reg)
    assert {"com.acme.Order", "com.acme.Line"} <= known  # transitively through fields
    ClassPolicy(require_signature=True).judge_invocation(
        _inv(desc="Lcom/acme/Order;", args=[None], classes=("com.acme.Line",)), known
    )
    with pytest.raises(PolicyRefused, match=r"neither"):
        ClassPolicy().judge_invocation(_inv(classes=("com.acme.Other",)), known)


def test_decoder_reports_class_keys_in_any_map_shape_and_java_bytes() -> None:
    from tribridge.codecs.hessian2 import JAVA_STREAM_MAGIC, Decoder, PairMap, encode

    v = [PairMap(None, [(1, "a"), ("class", "x.A")]), {"k": {"class": "x.B"}}, JAVA_STREAM_MAGIC]
    dec = Decoder(encode(v))
    dec.read()
    assert dec.class_keys() == ("x.A", "x.B") and dec.java_serialized == 1


def test_one_depth_limit_for_decoder_and_policy() -> None:
    from tribridge.codecs.hessian2 import MAX_DEPTH, Decoder, HessianError

    assert ClassPolicy().max_depth == MAX_DEPTH == Decoder(b"N").max_depth
    assert parse_config("security: {classes: {max_depth: 64}}").security.classes.max_depth == 64
    deep: object = 1
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    from tribridge.codecs.hessian2 import encode

    with pytest.raises(HessianError, match="nesting deeper"):
        Decoder(encode(deep)).read()


def test_generic_modes_setting() -> None:
    cfg = parse_config("security: {classes: {generic_modes: {'com.acme.*': [nativejava, Bean]}}}")
    p = cfg.security.classes
    assert p.generic_mode_allowed("com.acme.S", "NATIVEJAVA") and p.generic_mode_allowed("com.acme.S", "bean")
    assert not p.generic_mode_allowed("com.other.S", "nativejava")
    assert p.generic_mode_allowed("com.other.S", "true")
    with pytest.raises(ConfigError, match="unknown generic mode 'fastjson'"):
        parse_config("security: {classes: {generic_modes: {'*': [fastjson]}}}")


def test_jdk_value_types_pass_alike_on_http_and_dubbo2_doors() -> None:
    from tribridge.codecs.hessian2 import TypeRegistry

    p = ClassPolicy()
    for cls in ("java.util.UUID", "java.util.Arrays$ArrayList", "java.time.ZonedDateTime"):
        p.check_args([{"class": cls}], None, TypeRegistry())  # HTTP, untyped position
        p.judge_name(cls, "hessian class", frozenset())  # Dubbo2, signature known
    for cls in ("com.acme.Other", "java.util.concurrent.TimeUnit"):
        with pytest.raises(Exception, match="not allowed"):
            p.check_args([{"class": cls}], None, TypeRegistry())
        with pytest.raises(Exception, match="not allowed"):
            p.judge_name(cls, "hessian class", frozenset())
