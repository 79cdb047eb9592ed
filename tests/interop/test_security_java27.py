"""The class policy shown on the provider side against real Apache Dubbo 2.7.23 (Java).

Dubbo 2.7 has no serialization allowlist of its own: whatever class a hessian body names,
its provider loads and instantiates. So this is where a gadget would land. Every hostile
body of ``tests/class_policy_cases.py`` goes to the gateway's Dubbo2 ingress, which forwards
to the real 2.7 provider through a ``CaptureProxy``; the consumer must get status 40 naming
the rule, and the bytes the Java provider received, over the whole module, must never name
a class the policy refuses. A benign call through the same door is answered by Java, so the
path is live: a refusal is the policy's, not a broken route.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from tribridge.cli.commands import demo_config
from tribridge.codecs.dubbo import decode_response, encode_request
from tribridge.codecs.dubbo.frame import OK
from tribridge.interop.java_peers import TYPES
from tribridge.interop.testing import BackgroundLoop

from tests.helpers.class_policy_cases import CASES, DENIED
from tests.helpers.dubbo_raw import RawDubbo
from tests.helpers.provider_capture import CaptureProxy, assert_clean, refused_and_not_forwarded

pytestmark = [pytest.mark.interop, pytest.mark.timeout(300)]


@dataclass
class Env:
    capture: CaptureProxy
    ingress_port: int


def _config(capture_port: int) -> str:
    doc: dict[str, Any] = yaml.safe_load(demo_config(capture_port, 0))
    # the demo's interface (the cases' target, with its signatures for the allowlist cases)
    # and the 2.7 provider's own TypesService both resolve to the Java provider
    doc["registries"]["static"]["services"][TYPES] = [f"127.0.0.1:{capture_port}?version=1.0.0"]
    doc["dubbo_ingress"] = {
        "listen": {"host": "127.0.0.1", "port": 0},
        "routes": [{"interface": "com.tribridge.*", "to": "local"}],
    }
    return json.dumps(doc)


@pytest.fixture(scope="module")
def env(java_peers: Any) -> Iterator[Env]:
    provider = java_peers.providers["27"]
    assert provider.dubbo_version.startswith("2.7"), provider.dubbo_version
    with BackgroundLoop() as bg:
        capture = bg.run(CaptureProxy(java_peers.ns_ip, provider.ports["dubbo"]).start())
        gw = bg.start_gateway(_config(capture.port))
        try:
            yield Env(capture, gw.relay.ingress.port)
            # everything the Java provider received in this module, judged once more
            assert capture.received, "nothing reached the Java provider: the path is dead"
            assert_clean(bytes(capture.received), DENIED)
        finally:
            bg.run(capture.close())


def _benign(env: Env) -> None:
    raw = RawDubbo("127.0.0.1", env.ingress_port)
    try:
        raw.send(encode_request(9, TYPES, "echoString", "Ljava/lang/String;", ["benign"],
                                version="1.0.0"))  # fmt: skip
        fr = raw.recv(20)
        assert fr.status == OK and decode_response(fr).value == "benign", decode_response(fr)
    finally:
        raw.close()


def test_java_27_answers_a_benign_call_through_the_ingress(env: Env) -> None:
    mark = env.capture.mark()
    _benign(env)
    assert [i.method for i in env.capture.invocations(env.capture.since(mark))] == ["echoString"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_no_refused_class_reaches_java_27(env: Env, name: str) -> None:
    frame, rule, classes = CASES[name]
    refused_and_not_forwarded(env.ingress_port, frame, env.capture, rule, classes)
    _benign(env)  # the door and the provider are still live after the refusal
