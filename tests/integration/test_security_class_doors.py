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
from tribridge.cli.commands import demo_config
from tribridge.codecs.dubbo import decode_response
from tribridge.codecs.dubbo.frame import OK
from tribridge.codecs.hessian2 import MAX_DEPTH
from tribridge.interop.testing import BackgroundLoop, http_request
from tribridge.security.certs import make_certs

from tests.conftest import free_port
from tests.helpers.class_policy_cases import (
    BENIGN,
    CASES,
    DENIED,
    INVOKER,
    MIME,
    ROWSET,
    SENTINEL,
    UNLISTED,
    USER,
    S,
    V,
    invoke,
)
from tests.helpers.dubbo_raw import RawDubbo
from tests.helpers.provider_capture import CaptureProxy, assert_clean, refused_and_not_forwarded

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
