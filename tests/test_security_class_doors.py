"""Class policy per door x per shape (issue 21 item 1).

Doors: the Dubbo2 ingress (``to: local``), the ingress across a relay link (gateway A ->
gateway B's relay listener), the relay listener itself (a client holding a link certificate
sends straight onto it), and the HTTP routes (explicit and auto). Shapes: every way a
hessian body names a class (PairMap key / value, ``"class"`` key inside a PairMap, typed
list, array, typed map, class definition used or not, enum, reference, attachment value),
the depth limit, the parameter descriptor, every ``$invoke`` spelling, every generic mode,
raw Java-serialized bytes, the signature allowlist, and a path attachment that would make
the provider run another service than the one judged.

Every hostile case asserts: status 40 with the rule named, the provider received nothing
(the ``CaptureProxy`` in front of it sees only the benign sentinel that follows), and no
denied name in the provider's bytes — per case and, at the end, over the whole module.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from dubbo_ssl.client import DubboClient
from dubbo_ssl.codec.encoder import Object
from tribridge.certs import make_certs
from tribridge.codecs.dubbo import GENERIC_DESC, decode_response, encode_request, generic_args
from tribridge.codecs.dubbo.frame import OK
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
from tribridge.commands import demo_config
from tribridge.interop.testing import BackgroundLoop, http_request

from .conftest import free_port
from .dubbo_raw import RawDubbo
from .provider_capture import CaptureProxy, assert_clean, refused_and_not_forwarded

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


# ---- the environment -------------------------------------------------------------------------


class Env:
    bg: BackgroundLoop
    capture: CaptureProxy
    ingress: int  # gateway B's ingress, to: local
    relay: int  # gateway A's ingress, to: relay:b
    listener: int  # gateway B's relay listener (TLS, client certificate)
    http: int  # gateway B's HTTP listener
    modes_ingress: int  # a gateway whose config allows generic mode "bean" for S
    certs: Path
    b: Any
    tried: int = 0

    def port(self, door: str) -> int:
        return {"ingress": self.ingress, "relay": self.relay, "relay_listener": self.listener}[door]

    def tls(self, door: str) -> ssl.SSLContext | None:
        if door != "relay_listener":
            return None
        ctx = ssl.create_default_context(cafile=str(self.certs / "ca.pem"))
        ctx.load_cert_chain(self.certs / "client.pem", self.certs / "client.key")
        return ctx


def _b_config(capture_port: int, certs: Path, listen: int, extra_classes: str = "") -> str:
    doc = yaml.safe_load(demo_config(capture_port, 0))
    doc["passthrough_headers"] = ["x-request-id", "generic"]
    doc["routes"].append(
        {
            "method": "POST",
            "path": "/echo",
            "service": S,
            "call": "echoObject",
            "params": [{"from": "body", "type": "java.lang.Object"}],
        }
    )
    doc["relay"] = {
        "tls": {
            "cert": f"{certs}/server.pem",
            "key": f"{certs}/server.key",
            "ca": f"{certs}/ca.pem",
        },
        "listen": {"host": "127.0.0.1", "port": listen},
        "exports": ["com.tribridge.demo.*"],
    }
    doc["dubbo_ingress"] = {
        "listen": {"host": "127.0.0.1", "port": 0},
        "routes": [{"interface": "com.tribridge.*", "to": "local"}],
    }
    if extra_classes:
        doc["security"] = {"classes": yaml.safe_load(extra_classes)}
    return json.dumps(doc)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    certs = tmp_path_factory.mktemp("certs")
    make_certs(certs)
    e = Env()
    e.certs = certs
    with BackgroundLoop() as bg:
        e.bg = bg
        provider = bg.start_provider(version=V)
        e.capture = bg.run(CaptureProxy("127.0.0.1", provider.port).start())
        listen = free_port()
        e.b = bg.start_gateway(_b_config(e.capture.port, certs, listen))
        a_doc = yaml.safe_load(demo_config(0, 0))
        a_doc["registries"] = {"static": {"type": "static", "services": {S: ["relay:b"]}}}
        a_doc["relay"] = {
            "tls": {
                "cert": f"{certs}/client.pem",
                "key": f"{certs}/client.key",
                "ca": f"{certs}/ca.pem",
            },
            "links": {"b": {"address": f"127.0.0.1:{listen}", "server_name": "tribridge-relay"}},
        }
        a_doc["dubbo_ingress"] = {
            "listen": {"host": "127.0.0.1", "port": 0},
            "routes": [{"interface": "com.tribridge.*", "to": "relay:b"}],
        }
        a = bg.start_gateway(json.dumps(a_doc))
        m = bg.start_gateway(
            _b_config(
                e.capture.port,
                certs,
                free_port(),
                "{generic_modes: {'com.tribridge.demo.*': [bean]}}",
            )
        )
        link = a.relay.links["b"]
        deadline = time.monotonic() + 10
        while not link.up:
            assert time.monotonic() < deadline, "relay link did not come up"
            time.sleep(0.02)
        e.ingress = e.b.relay.ingress.port
        e.relay = a.relay.ingress.port
        e.listener = listen
        e.http = e.b.port
        e.modes_ingress = m.relay.ingress.port
        yield e
        # the provider's whole byte stream, over every case of the module
        # (the policy that allows generic mode "bean": one forwarded call used it)
        assert_clean(bytes(e.capture.received), DENIED, m.class_policy)
        bg.run(e.capture.close())


SENTINEL = direct("greet", "Ljava/lang/String;", ["sentinel"])
DOORS = ["ingress", "relay", "relay_listener"]


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("case", list(CASES))
def test_dubbo2_door_refuses_shape(env: Env, door: str, case: str) -> None:
    frame, rule, denied = CASES[case]
    text = refused_and_not_forwarded(
        env.port(door), frame, env.capture, rule, denied, SENTINEL, env.tls(door)
    )
    if door == "relay_listener":
        assert "relay listener" in text
    env.tried += 1


# ---- what must still pass (each hostile rule is narrow) ---------------------------------------


def _ok(port: int, frame: bytes, tls: Any = None) -> Any:
    raw = RawDubbo("127.0.0.1", port, tls=tls)
    try:
        raw.send(frame)
        fr = raw.recv(5)
        res = decode_response(fr)
        assert fr.status == OK, res
        return res
    finally:
        raw.close()


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


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("case", list(BENIGN))
def test_benign_bodies_pass(env: Env, door: str, case: str) -> None:
    mark = env.capture.mark()
    _ok(env.port(door), BENIGN[case], env.tls(door))
    assert len(env.capture.invocations(env.capture.since(mark))) == 1


def test_generic_mode_allowed_by_config_is_forwarded(env: Env) -> None:
    mark = env.capture.mark()
    raw = RawDubbo("127.0.0.1", env.modes_ingress)
    try:
        raw.send(invoke([{"k": 1}], mode="bean"))
        raw.recv(5)  # whatever the demo provider makes of it: it was forwarded
    finally:
        raw.close()
    assert [
        i.attachments.get("generic") for i in env.capture.invocations(env.capture.since(mark))
    ] == ["bean"]
    refused_and_not_forwarded(
        env.modes_ingress,
        invoke([b"\x00"], mode="nativejava"),
        env.capture,
        "generic_mode",
        (),
        SENTINEL,
    )


# ---- a real consumer (dubbo-ssl-python) -------------------------------------------------------


REAL_CONSUMER: dict[str, Callable[[DubboClient], Any]] = {
    "pojo": lambda c: c.call("echoObject", [Object(ROWSET, {"autoCommit": True})], timeout=5),
    "pojo_in_a_field": lambda c: c.call(
        "echoUser", [Object(USER, {"id": 1, "name": Object(INVOKER, {})})], timeout=5
    ),
    "array_of_pojos": lambda c: c.call("echoObject", [[Object(ROWSET, {})]], timeout=5),
}


@pytest.mark.parametrize("door", ["ingress", "relay"])
@pytest.mark.parametrize("case", list(REAL_CONSUMER))
def test_real_consumer_gadget_refused(env: Env, door: str, case: str) -> None:
    from dubbo_ssl.common.exceptions import DubboResponseException

    client = DubboClient(S, group=None, version=V, host=f"127.0.0.1:{env.port(door)}")
    mark = env.capture.mark()
    with pytest.raises(DubboResponseException, match=r"not allowed.*\(rule deny:"):
        REAL_CONSUMER[case](client)
    assert client.call("greet", ["after"], timeout=5) == "Hello, after"
    assert [i.method for i in env.capture.invocations(env.capture.since(mark))] == ["greet"]
    env.tried += 1


# ---- the HTTP doors: same policy object, same semantics ---------------------------------------


def test_http_doors_share_the_policy_object(env: Env) -> None:
    pol = env.b.class_policy
    assert pol is env.b.services[S].class_policy
    assert pol is env.b.relay.ingress.gw.class_policy
    assert pol is env.b.relay.relay_server.gw.class_policy


def _http_refused(
    env: Env, path: str, body: Any, rule: str, headers: dict[str, str] | None = None
) -> None:
    mark = env.capture.mark()
    status, doc = http_request(env.http, "POST", path, body, headers)
    assert status == 400, doc
    assert doc["error"]["rule"] == rule, doc
    status, _ = http_request(env.http, "GET", "/hello/sentinel")
    assert status == 200
    assert [i.method for i in env.capture.invocations(env.capture.since(mark))] == ["greet"]
    assert_clean(env.capture.since(mark), DENIED)
    env.tried += 1


HTTP_CASES: dict[str, tuple[str, Any, str, dict[str, str] | None]] = {
    "explicit_class_key": ("/echo", {"class": ROWSET}, "deny:com.sun.*", None),
    "explicit_nested_class_key": (
        "/echo",
        {"a": [{"b": {"class": INVOKER}}]},
        "deny:org.apache.commons.collections.*",
        None,
    ),
    "explicit_unlisted": ("/echo", {"class": UNLISTED}, "not_allowlisted", None),
    "explicit_pojo_field": (
        "/users",
        {"id": 1, "tags": [{"class": MIME}]},
        "deny:javax.activation.*",
        None,
    ),
    "auto_class_key": (f"/{S}/echoObject", [{"x": {"class": ROWSET}}], "deny:com.sun.*", None),
    "auto_array_hint": (
        f"/{S}/echoObject",
        [[]],
        "deny:com.sun.*",
        {"x-tribridge-types": "[Lcom.sun.rowset.JdbcRowSetImpl;"},
    ),
    "auto_swing_hint": (
        f"/{S}/echoObject",
        [{}],
        "deny:javax.swing.*",
        {"x-tribridge-types": "javax.swing.UIDefaults"},
    ),
    "auto_generic_mode_header": (
        f"/{S}/echoObject",
        [{"k": 1}],
        "generic_mode",
        {"generic": "nativejava"},
    ),
}


@pytest.mark.parametrize("case", list(HTTP_CASES))
def test_http_door_refuses_shape(env: Env, case: str) -> None:
    path, body, rule, headers = HTTP_CASES[case]
    _http_refused(env, path, body, rule, headers)


def test_http_depth_limit_is_the_shared_one(env: Env) -> None:
    deep: Any = 1
    for _ in range(MAX_DEPTH + 2):
        deep = [deep]
    mark = env.capture.mark()
    status, doc = http_request(env.http, "POST", "/echo", deep)
    assert status == 400 and doc["error"]["code"] == "too_deep", doc
    assert env.capture.since(mark) == b""
    assert env.b.class_policy.max_depth == MAX_DEPTH
    env.tried += 1
