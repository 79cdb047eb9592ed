"""The hostile (and benign) Dubbo2 request bodies of the class-policy tests, as a table any
door test can run: the Python matrix (``tests/integration/test_security_class_doors.py``) and the
provider-side proof against a real Java Dubbo 2.7 provider, which needs only a gateway in
front of that provider (behind a ``CaptureProxy``) and a loop over ``CASES``.

Each case is ``name -> (frame, rule, classes it carries)``: the consumer must get status 40
naming ``rule`` and the provider must never receive any of the classes. The frames call the
demo service (``interop/demo_provider.py``: ``greet``, ``echoObject``, ``echoUser``,
``echoMap``, ``echoBytes``); cases whose rule is ``not_allowlisted`` need the gateway to know
that signature (``services:`` with the demo's methods and types, or provider metadata).
"""

from __future__ import annotations

from typing import Any

from tribridge.codecs.dubbo import GENERIC_DESC, encode_request, generic_args
from tribridge.codecs.dubbo.messages import RequestTemplate
from tribridge.codecs.hessian2 import (
    JAVA_STREAM_MAGIC,
    MAX_DEPTH,
    HessianObject,
    PairMap,
    TypedList,
    TypedMap,
    encode,
)

S = "com.tribridge.demo.DemoService"
V = "1.0.0"
USER = "com.tribridge.demo.User"
COLOR = "com.tribridge.demo.Color"
ROWSET = "com.sun.rowset.JdbcRowSetImpl"
INVOKER = "org.apache.commons.collections.functors.InvokerTransformer"
LAZY_LIST = "org.apache.commons.collections4.list.LazyList"
LAZY_MAP = "org.apache.commons.collections.map.LazyMap"
SWING_ENUM = "javax.swing.SortOrder"
MIME = "javax.activation.MimeTypeParameterList"
UNLISTED = "com.acme.Unlisted"  # no deny pattern names it: only the allowlist refuses it
OBJ = "Ljava/lang/Object;"
#: every class name a hostile case carries: none may ever reach the provider's bytes
DENIED = (ROWSET, INVOKER, LAZY_LIST, LAZY_MAP, SWING_ENUM, MIME, UNLISTED)


# ---- frames ----------------------------------------------------------------------------------


def direct(method: str, desc: str, args: list[Any], att: dict[str, Any] | None = None) -> bytes:
    return encode_request(7, S, method, desc, args, att, version=V)


def invoke(
    args: list[Any],
    *,
    method: str = "$invoke",
    desc: str = GENERIC_DESC,
    mode: Any = "true",
    types: list[str] | None = None,
) -> bytes:
    att = None if mode is None else {"generic": mode}
    tmpl = RequestTemplate(S, method, desc, V)
    return tmpl.frame(7, generic_args("echoObject", types or ["java.lang.Object"], args), att)


def direct_att(method: str, desc: str, att: dict[str, Any]) -> bytes:
    """A generic call with exactly these attachments (no template default)."""
    return RequestTemplate(S, method, desc, V).frame(
        7, generic_args("echoObject", ["java.lang.Object"], [{"k": 1}]), att
    )


def unused_class_def(cls: str) -> bytes:
    """A class definition no value uses: Java's reader still resolves (loads, initializes)
    the class when it reads the definition."""
    body = RequestTemplate(S, "greet", "Ljava/lang/String;", V).body(["x"], None)
    prefix = RequestTemplate(S, "greet", "Ljava/lang/String;", V).prefix
    cdef = b"C" + encode(cls) + b"\x90"
    body = prefix + cdef + body[len(prefix) :]
    return b"\xda\xbb\xc2\x00" + (7).to_bytes(8, "big") + len(body).to_bytes(4, "big") + body


def nested_lists(depth: int) -> bytes:
    v: Any = 1
    for _ in range(depth):
        v = [v]
    return direct("echoObject", OBJ, [v])


def trailing(value: Any) -> bytes:
    """A value after the attachments map, where no Dubbo reader looks."""
    f = direct("greet", "Ljava/lang/String;", ["x"])
    body = f[16:] + encode(value)
    return f[:12] + len(body).to_bytes(4, "big") + body


ROW = HessianObject(ROWSET, {"dataSourceName": "ldap://127.0.0.1:1/x", "autoCommit": True})

#: name -> (frame, rule, classes it carries)
CASES: dict[str, tuple[bytes, str, tuple[str, ...]]] = {
    # maps whose keys are not all strings (PairMap on our side, HashMap on Java's)
    "pairmap_key": (
        direct("echoObject", OBJ, [PairMap(None, [(ROW, "v")])]),
        "deny:com.sun.*",
        (ROWSET,),
    ),
    "pairmap_value": (
        direct("echoObject", OBJ, [PairMap(None, [(1, "a"), (2, ROW)])]),
        "deny:com.sun.*",
        (ROWSET,),
    ),
    "pairmap_class_key_in_invoke": (  # today's incident: realize() reads map.get("class")
        invoke([PairMap(None, [(1, "x"), ("class", ROWSET), ("dataSourceName", "ldap://x")])]),
        "deny:com.sun.*",
        (ROWSET,),
    ),
    "class_field_of_a_map_class_def_in_invoke": (  # Java's MapDeserializer: a "class" key
        invoke([HessianObject("java.util.HashMap", {"class": ROWSET, "dataSourceName": "x"})]),
        "deny:com.sun.*",
        (ROWSET,),
    ),
    "class_field_of_a_map_class_def_unlisted": (
        invoke([{"k": HessianObject("java.util.HashMap", {"class": UNLISTED})}]),
        "not_allowlisted",
        (UNLISTED,),
    ),
    "pairmap_nested_in_list_in_invoke": (
        invoke([[{"a": PairMap(None, [(True, 1), ("class", INVOKER)])}]]),
        "deny:org.apache.commons.collections.*",
        (INVOKER,),
    ),
    "typed_list_type": (
        direct("echoObject", OBJ, [TypedList(LAZY_LIST, [1])]),
        "deny:org.apache.commons.collections4.*",
        (LAZY_LIST,),
    ),
    "array_of_denied_type": (
        direct("echoObject", OBJ, [TypedList("[" + ROWSET, [])]),
        "deny:com.sun.*",
        (ROWSET,),
    ),
    "typed_map_type": (
        direct("echoObject", OBJ, [TypedMap(ROWSET, {"dataSourceName": "ldap://x"})]),
        "deny:com.sun.*",
        (ROWSET,),
    ),
    "typed_map_in_pairmap_value": (
        direct("echoObject", OBJ, [PairMap(None, [(1.5, TypedMap(LAZY_MAP, {}))])]),
        "deny:org.apache.commons.collections.*",
        (LAZY_MAP,),
    ),
    "class_def": (direct("echoObject", OBJ, [ROW]), "deny:com.sun.*", (ROWSET,)),
    "class_def_in_a_field": (
        direct(
            "echoUser",
            f"L{USER.replace('.', '/')};",
            [HessianObject(USER, {"id": 1, "name": HessianObject(MIME, {})})],
        ),
        "deny:javax.activation.*",
        (MIME,),
    ),
    "class_def_never_used": (unused_class_def(ROWSET), "deny:com.sun.*", (ROWSET,)),
    "enum": (
        direct("echoObject", OBJ, [HessianObject(SWING_ENUM, {"name": "ASCENDING"})]),
        "deny:javax.swing.*",
        (SWING_ENUM,),
    ),
    "reference_to_denied_object": (
        direct("echoObject", OBJ, [[ROW, ROW, {"again": ROW}]]),
        "deny:com.sun.*",
        (ROWSET,),
    ),
    "attachment_value": (
        direct("greet", "Ljava/lang/String;", ["x"], {"x": ROW}),
        "deny:com.sun.*",
        (ROWSET,),
    ),
    "depth_beyond_the_limit": (nested_lists(MAX_DEPTH + 2), "too_deep", ()),
    "bytes_after_the_attachments": (
        trailing(HessianObject(ROWSET, {})),
        "trailing_bytes",
        (ROWSET,),
    ),
    # the parameter descriptor (desc2classArray runs before any filter)
    "descriptor": (
        direct("echoObject", f"L{ROWSET.replace('.', '/')};", ["x"]),
        "deny:com.sun.*",
        (ROWSET,),
    ),
    "descriptor_array": (
        direct("echoObject", f"[L{INVOKER.replace('.', '/')};", [[]]),
        "deny:org.apache.commons.collections.*",
        (INVOKER,),
    ),
    "descriptor_unlisted": (
        direct("echoObject", f"L{UNLISTED.replace('.', '/')};", ["x"]),
        "not_allowlisted",
        (UNLISTED,),
    ),
    # $invoke parameter type names (name2class) and the signature allowlist
    "invoke_parameter_type": (invoke([{}], types=[ROWSET]), "deny:com.sun.*", (ROWSET,)),
    "class_def_unlisted": (
        direct("echoObject", OBJ, [HessianObject(UNLISTED, {})]),
        "not_allowlisted",
        (UNLISTED,),
    ),
    "typed_map_unlisted": (
        direct("echoMap", "Ljava/util/Map;", [TypedMap(UNLISTED, {})]),
        "not_allowlisted",
        (UNLISTED,),
    ),
    # a path attachment overrides the body's path in Java's DecodeableRpcInvocation
    "path_attachment": (
        direct("greet", "Ljava/lang/String;", ["x"], {"path": "com.acme.Other"}),
        "path_mismatch",
        (),
    ),
    # generic modes other than "true", and Java-serialized bytes under the default mode
    **{
        f"generic_mode_{m}": (invoke([b"\x00"], mode=m), "generic_mode", ())
        for m in ("nativejava", "bean", "protobuf-json", "gson", "NativeJava", "raw")
    },
    "generic_mode_not_a_string": (
        invoke([1], mode=HessianObject(ROWSET, {})),
        "generic_mode",
        (ROWSET,),
    ),
    "generic_mode_int": (invoke([1], mode=5), "generic_mode", ()),
    "generic_mode_second_spelling": (
        direct_att("$invoke", GENERIC_DESC, {"generic": "true", "Generic": "nativejava"}),
        "generic_mode",
        (),
    ),
    "java_serialized_bytes": (invoke([JAVA_STREAM_MAGIC + b"sr\x00\x1cx"]), "java_serialized", ()),
}

#: $invoke / $invokeAsync under every descriptor spelling: GenericFilter keys on the method
#: name and three arguments, never on the descriptor, so each spelling realizes "class" keys.
INVOKE_SPELLINGS = {
    "canonical": GENERIC_DESC,
    "dotted": "Ljava.lang.String;[Ljava.lang.String;[Ljava.lang.Object;",
    "object_params": "Ljava/lang/Object;Ljava/lang/Object;Ljava/lang/Object;",
    "serializable_array": "Ljava/lang/String;[Ljava/lang/String;[Ljava/io/Serializable;",
    "method_form": "(Ljava/lang/String;[Ljava/lang/String;[Ljava/lang/Object;)Ljava/lang/Object;",
}
for _m in ("$invoke", "$invokeAsync"):
    for _name, _desc in INVOKE_SPELLINGS.items():
        CASES[f"{_m}_{_name}_class_key_unlisted"] = (
            invoke([{"class": UNLISTED}], method=_m, desc=_desc),
            "not_allowlisted",
            (UNLISTED,),
        )
        CASES[f"{_m}_{_name}_no_mode_attachment_gadget"] = (
            invoke([{"a": [{"class": INVOKER}]}], method=_m, desc=_desc, mode=None),
            "deny:org.apache.commons.collections.*",
            (INVOKER,),
        )


#: the benign call that follows each hostile one on the same connection
SENTINEL = direct("greet", "Ljava/lang/String;", ["sentinel"])

#: bodies that must still pass (each hostile rule is narrow)
BENIGN = {
    "declared_pojo_and_its_enum_field": direct(
        "echoUser",
        f"L{USER.replace('.', '/')};",
        [
            HessianObject(
                USER, {"id": 1, "name": "a", "color": HessianObject(COLOR, {"name": "RED"})}
            )
        ],
    ),
    "service_type_at_object_position": direct("echoObject", OBJ, [HessianObject(USER, {"id": 2})]),
    "pairmap_of_plain_values": direct("echoObject", OBJ, [PairMap(None, [(1, "a"), (2, [3])])]),
    "jdk_collection_types": direct(
        "echoObject", OBJ, [TypedList("java.util.Arrays$ArrayList", [1])]
    ),
    "depth_at_the_limit": nested_lists(MAX_DEPTH - 4),
    "invoke_with_plain_maps": invoke([{"k": [1, "v"]}]),
    "invoke_declared_class_key": invoke([{"class": USER, "id": 3}]),
    "invoke_raw_return_mode": invoke([{"k": 1}], mode="raw.return"),
    "bytes_not_java_serialized": direct("echoBytes", "[B", [b"\xac\xed"]),
    "interface_attachment_differs": direct(
        "greet", "Ljava/lang/String;", ["x"], {"interface": "com.tribridge.demo.Api"}
    ),
}
