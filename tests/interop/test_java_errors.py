"""Errors a user reads, from real Apache Dubbo 3.3 and 2.7 providers (Java): an unknown
method or service is a 404 ``not_found`` (Java answers with status 70 and its own texts), the
Java stack trace Dubbo appends stays in the gateway's log, and ``tribridge call`` without
``--version`` hints at it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from tribridge.interop.java_peers import TYPES
from tribridge.interop.testing import BackgroundLoop, http_request

from tests.conftest import tb

pytestmark = [pytest.mark.interop, pytest.mark.timeout(300)]

LINES = {"33d": "3.3", "27": "2.7"}


def config(address: str, version: str) -> str:
    return f"""
listen: {{host: 127.0.0.1, port: 0}}
registries:
  static: {{type: static, services: {{{TYPES}: ["{address}"]}}}}  # any version
services:
  - {{interface: {TYPES}, version: "{version}", call: generic}}
auto_routes: {{prefix: /, expose: ["{TYPES}"]}}
"""


def address(java_peers: Any, key: str) -> str:
    provider = java_peers.providers[key]
    assert provider.dubbo_version.startswith(LINES[key]), provider.dubbo_version
    return f"{java_peers.ns_ip}:{provider.ports['dubbo']}"


@pytest.mark.parametrize("key", sorted(LINES))
def test_unknown_method_is_404_without_java_stack(
    bg: BackgroundLoop, java_peers: Any, key: str
) -> None:
    gw = bg.start_gateway(config(address(java_peers, key), "1.0.0")).port
    assert http_request(gw, "POST", f"/{TYPES}/echoString", ["x"]) == (200, "x")  # live path
    status, body = http_request(gw, "POST", f"/{TYPES}/noSuchMethod", ["x"])
    err = body["error"]
    assert status == 404 and err["code"] == "not_found", body
    assert "noSuchMethod" in err["message"], err
    assert "\tat " not in err["message"] and "java_stack_trace" not in err, err


@pytest.mark.parametrize("key", sorted(LINES))
def test_unknown_version_is_404(bg: BackgroundLoop, java_peers: Any, key: str) -> None:
    gw = bg.start_gateway(config(address(java_peers, key), "9.9.9")).port
    status, body = http_request(gw, "POST", f"/{TYPES}/echoString", ["x"])
    err = body["error"]
    assert status == 404 and err["code"] == "not_found" and err["version"] == "9.9.9", body
    assert "\tat " not in err["message"], err


@pytest.mark.parametrize("key", sorted(LINES))
def test_cli_call_without_version_hints_at_it(java_peers: Any, key: str) -> None:
    target = f"dubbo://{address(java_peers, key)}"
    r = tb("call", target, f"{TYPES}.echoString", '["x"]', "--timeout", "10")
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    err = orjson.loads(r.stderr)["error"]
    assert err["code"] == "not_found" and "--version" in err["hint"], err
    assert "\tat " not in err["message"], err
    r = tb("call", target, f"{TYPES}.echoString", '["x"]', "--version", "1.0.0")
    assert r.returncode == 0 and orjson.loads(r.stdout) == "x", r.stderr
