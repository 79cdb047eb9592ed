"""End to end: HTTP/JSON -> tribridge -> the real sofa-rpc-node Dubbo2 provider (Node)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tribridge.interop.testing import BackgroundLoop, http_request

pytestmark = pytest.mark.interop
S = "com.tribridge.demo.SofaService"

CONFIG = """
registries:
  static: {{type: static, services: {{{s}: ["127.0.0.1:{port}?version=1.0.0"]}}}}
services:
  - interface: {s}
    version: 1.0.0
    timeout: 3s
    retries: 0
    methods:
      echo: {{types: [java.lang.Object]}}
      greet: {{types: [java.lang.String]}}
      add: {{types: II}}
      addLong: {{types: [long, long]}}
      getUser: {{types: J}}
      echoUser: {{types: [com.tribridge.demo.User]}}
      fail: {{types: [java.lang.String]}}
      slow: {{types: [int]}}
    types:
      com.tribridge.demo.User: {{fields: {{id: long, name: String, age: int}}}}
routes:
  - {{method: GET, path: "/users/{{id}}", service: {s}, call: getUser,
     params: [{{from: path, name: id, type: long}}]}}
  - {{method: GET, path: /greet, service: {s}, call: greet,
     params: [{{from: query, name: name, type: String}}]}}
  - {{method: POST, path: /sum, service: {s}, call: add,
     params: [{{from: body, name: a, type: int}}, {{from: header, name: x-b, type: int}}]}}
  - {{method: PUT, path: /users, service: {s}, call: echoUser,
     params: [{{from: body, type: com.tribridge.demo.User}}]}}
auto_routes: {{prefix: /rpc, expose: [{s}]}}
"""


@pytest.fixture(scope="module")
def gw(sofa_provider: int) -> Iterator[int]:
    with BackgroundLoop() as bg:
        gateway = bg.start_gateway(CONFIG.format(s=S, port=sofa_provider))
        yield gateway.port


def test_path_param_pojo_result(gw: int) -> None:
    status, body = http_request(gw, "GET", "/users/42")
    assert status == 200
    assert body == {"class": "com.tribridge.demo.User", "id": 42, "name": "user-42", "age": 62}


def test_query_param(gw: int) -> None:
    assert http_request(gw, "GET", "/greet?name=Ada") == (200, "Hello, Ada")


def test_body_field_and_header(gw: int) -> None:
    assert http_request(gw, "POST", "/sum", {"a": 40}, {"x-b": "2"}) == (200, 42)


def test_whole_body_pojo(gw: int) -> None:
    status, body = http_request(gw, "PUT", "/users", {"id": 7, "name": "Bo", "age": 3})
    assert status == 200
    assert body["id"] == 7 and body["name"] == "Bo" and body["age"] == 3


def test_auto_route_long_precision(gw: int) -> None:
    assert http_request(gw, "POST", f"/rpc/{S}/addLong", [9007199254740993, 1]) == (
        200,
        9007199254740994,
    )


@pytest.mark.parametrize(
    "value",
    ["text", 12, 2**40, 1.25, True, None, [1, "a"], {"k": [1, 2]}],
)
def test_echo_object_families(gw: int, value: object) -> None:
    assert http_request(gw, "POST", f"/rpc/{S}/echo", [value]) == (200, value)


def test_wrong_argument_type(gw: int) -> None:
    status, body = http_request(gw, "POST", f"/rpc/{S}/add", ["x", 1])
    assert status == 400
    assert body["error"]["code"] == "bad_arguments"
    assert "args[0]" in body["error"]["message"] and "int" in body["error"]["message"]
    assert "configured signature" in body["error"]["message"]


def test_wrong_argument_count(gw: int) -> None:
    status, body = http_request(gw, "POST", f"/rpc/{S}/add", [1])
    assert status == 400 and "takes 2 argument" in body["error"]["message"]


def test_provider_error(gw: int) -> None:
    status, body = http_request(gw, "POST", f"/rpc/{S}/fail", ["boom"])
    assert status == 502
    assert body["error"]["message"] == "boom" and body["error"]["dubbo_status"] == 80


def test_unknown_method(gw: int) -> None:
    status, body = http_request(gw, "POST", f"/rpc/{S}/nope", [])
    assert status == 404
    assert "nope" in body["error"]["message"] or body["error"]["method"] == "nope"


def test_unknown_service(gw: int) -> None:
    status, body = http_request(gw, "POST", "/rpc/com.x.Missing/m", [])
    assert status == 404 and body["error"]["service"] == "com.x.Missing"


def test_timeout(gw: int) -> None:
    status, body = http_request(gw, "POST", f"/rpc/{S}/slow", [2000], {"x-dubbo-timeout": "200"})
    assert status == 504 and body["error"]["code"] == "upstream_timeout"
    # the connection survives the late answer: the next call works
    assert http_request(gw, "GET", "/greet?name=after")[0] == 200
