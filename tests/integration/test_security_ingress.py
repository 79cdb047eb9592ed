"""The class deny list on the Dubbo2 ingress and the relay: a consumer's body carrying a
gadget class (as a POJO, a typed list or map, or in a generic call) is refused with status
40 and the rule, and never reaches the provider (counted on the provider side), directly or
across a relay link.  Benign POJOs pass."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tribridge.codecs.dubbo import (
    decode_response,
    encode_request,
    generic_args,
    generic_template,
)
from tribridge.codecs.dubbo.frame import BAD_REQUEST, OK
from tribridge.codecs.hessian2 import HessianObject, TypedList, TypedMap
from tribridge.interop.testing import BackgroundLoop
from tribridge.security.certs import make_certs

from tests.conftest import free_port
from tests.helpers.dubbo_raw import RawDubbo

S = "com.tribridge.demo.DemoService"
ROWSET = "com.sun.rowset.JdbcRowSetImpl"
INVOKER = "org.apache.commons.collections.functors.InvokerTransformer"
OBJ = "Ljava/lang/Object;"


class Env:
    provider: Any
    local_port: int  # ingress, to: local
    relay_port: int  # gateway A's ingress, to: relay:b
    listen_port: int  # gateway B's relay listener
    certs: Path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    certs = tmp_path_factory.mktemp("certs")
    make_certs(certs)
    e = Env()
    with BackgroundLoop() as bg:
        e.provider = bg.start_provider(version="1.0.0")
        static = f'static: {{type: static, services: {{{S}: ["127.0.0.1:{e.provider.port}?version=1.0.0"]}}}}'
        listen = free_port()
        b = bg.start_gateway(
            f"""
registries: {{{static}}}
relay:
  tls: {{cert: {certs}/server.pem, key: {certs}/server.key, ca: {certs}/ca.pem}}
  listen: {{host: 127.0.0.1, port: {listen}}}
  exports: ["com.tribridge.demo.*"]
dubbo_ingress:
  listen: {{host: 127.0.0.1, port: 0}}
  routes: [{{interface: "com.tribridge.*", to: local}}]
"""
        )
        a = bg.start_gateway(
            f"""
registries: {{static: {{type: static, services: {{{S}: ["relay:b"]}}}}}}
relay:
  tls: {{cert: {certs}/client.pem, key: {certs}/client.key, ca: {certs}/ca.pem}}
  links: {{b: {{address: "127.0.0.1:{listen}", server_name: tribridge-relay}}}}
dubbo_ingress:
  listen: {{host: 127.0.0.1, port: 0}}
  routes: [{{interface: "com.tribridge.*", to: "relay:b"}}]
"""
        )
        link = a.relay.links["b"]
        deadline = time.monotonic() + 10
        while not link.up:
            assert time.monotonic() < deadline, "relay link did not come up"
            time.sleep(0.02)
        e.local_port = b.relay.ingress.port
        e.relay_port = a.relay.ingress.port
        e.listen_port = listen
        e.certs = certs
        yield e


def _call(port: int, frame: bytes) -> Any:
    raw = RawDubbo("127.0.0.1", port)
    try:
        raw.send(frame)
        fr = raw.recv(5)
        return fr.status, decode_response(fr)
    finally:
        raw.close()


def _direct(method: str, desc: str, args: list[Any]) -> bytes:
    return encode_request(7, S, method, desc, args, version="1.0.0")


def _generic(method: str, types: list[str], args: list[Any]) -> bytes:
    return generic_template(S, "1.0.0").frame(7, generic_args(method, types, args), None)


GADGETS = {
    "pojo": (_direct("echoObject", OBJ, [HessianObject(ROWSET, {"autoCommit": True})]), ROWSET),
    "pojo_in_a_field": (
        _direct(
            "echoObject",
            OBJ,
            [HessianObject("com.tribridge.demo.User", {"id": 1, "x": HessianObject(INVOKER, {})})],
        ),
        INVOKER,
    ),
    "typed_list": (_direct("echoObject", OBJ, [TypedList("[" + ROWSET, [])]), "[" + ROWSET),
    "typed_map": (
        _direct("echoObject", OBJ, [TypedMap("org.apache.commons.collections.map.LazyMap", {})]),
        "org.apache.commons.collections.map.LazyMap",
    ),
    "generic_class_key": (
        _generic("echoObject", ["java.lang.Object"], [{"a": [{"class": INVOKER}]}]),
        INVOKER,
    ),
    "generic_parameter_type": (_generic("echoObject", [ROWSET], [{}]), ROWSET),
}


@pytest.mark.parametrize("where", ["local", "relay"])
@pytest.mark.parametrize("case", list(GADGETS))
def test_gadget_classes_never_reach_the_provider(env: Env, where: str, case: str) -> None:
    frame, cls = GADGETS[case]
    before = env.provider.requests
    status, res = _call(env.local_port if where == "local" else env.relay_port, frame)
    assert status == BAD_REQUEST, res
    assert f"class {cls!r} is not allowed" in res.error and "(rule deny:" in res.error
    assert env.provider.requests == before, "a denied class reached the provider"


@pytest.mark.parametrize("where", ["local", "relay"])
def test_benign_pojos_pass(env: Env, where: str) -> None:
    user = HessianObject("com.tribridge.demo.User", {"id": 5, "name": "Ada"})
    before = env.provider.requests
    port = env.local_port if where == "local" else env.relay_port
    status, res = _call(port, _direct("echoObject", OBJ, [user]))
    assert status == OK and res.ok, res
    assert env.provider.requests == before + 1
    status, res = _call(port, _generic("echoObject", ["java.lang.Object"], [{"k": [1, "v"]}]))
    assert status == OK and res.value == {"k": [1, "v"]}, res


def test_relay_listener_judges_bodies_itself(env: Env) -> None:
    """B's relay listener does not trust whoever holds a client certificate: a gadget
    sent straight onto the link (not through gateway A's checks) is refused too."""
    ctx = ssl.create_default_context(cafile=str(env.certs / "ca.pem"))
    ctx.load_cert_chain(env.certs / "client.pem", env.certs / "client.key")
    raw = RawDubbo("127.0.0.1", env.listen_port, tls=ctx)
    before = env.provider.requests
    try:
        raw.send(GADGETS["pojo"][0])
        fr = raw.recv(5)
        assert fr.status == BAD_REQUEST
        assert "relay listener" in (decode_response(fr).error or "")
    finally:
        raw.close()
    assert env.provider.requests == before


# ---- hostile Dubbo2 input on the ingress ---------------------------------------------------


def _closed_quickly(port: int, data: bytes) -> bool:
    raw = RawDubbo("127.0.0.1", port)
    try:
        raw.send(data)
        return raw.closed_by_peer(3)
    finally:
        raw.close()


@pytest.mark.parametrize(
    "case",
    ["declared_2gb_body", "not_dubbo", "bad_magic_after_a_good_frame"],
)
def test_hostile_frames_close_the_connection_and_spare_others(env: Env, case: str) -> None:
    good = _direct("echoObject", OBJ, ["ok"])
    data = {
        "declared_2gb_body": b"\xda\xbb\xc2\x00" + (1).to_bytes(8) + (2**31 - 1).to_bytes(4),
        "not_dubbo": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "bad_magic_after_a_good_frame": good + b"\x00" * 32,
    }[case]
    bystander = RawDubbo("127.0.0.1", env.local_port)
    try:
        assert _closed_quickly(env.local_port, data)
        bystander.send(good)  # another consumer's connection is untouched
        fr = bystander.recv(5)
        assert fr.status == OK and decode_response(fr).value == "ok"
    finally:
        bystander.close()


def test_hessian_bomb_in_a_request_is_a_bounded_error(env: Env) -> None:
    """100,000 nested lists: refused by the decoder's depth limit (status 40) in bounded
    time, nothing forwarded, the connection still serves."""
    bomb = b"\x57" * 100_000 + b"Z" * 100_000  # variable-length untyped lists, nested
    before = env.provider.requests
    frame = encode_request(9, S, "echoObject", OBJ, ["x"], version="1.0.0")
    head, body = frame[:16], frame[16:]
    # replace the argument ("x", 2 bytes: 0x01 'x') with the bomb
    i = body.index(b"\x01x")
    body = body[:i] + bomb + body[i + 2 :]
    raw = RawDubbo("127.0.0.1", env.local_port)
    try:
        t0 = time.monotonic()
        raw.send(head[:12] + len(body).to_bytes(4) + body)
        fr = raw.recv(10)
        assert fr.status == BAD_REQUEST, fr
        assert time.monotonic() - t0 < 5
        raw.send(_direct("echoObject", OBJ, ["still"]))
        assert decode_response(raw.recv(5)).value == "still"
    finally:
        raw.close()
    assert env.provider.requests == before + 1
