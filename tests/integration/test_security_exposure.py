"""Exposure: only what the config names is callable; everything else is 404 and the provider
never sees a request (asserted on the provider's own request counter)."""

from __future__ import annotations

import pytest
from tribridge.cli.commands import DEMO_SERVICE as S
from tribridge.cli.commands import demo_config
from tribridge.config.model import ConfigError, parse_config
from tribridge.interop.testing import http_request
from tribridge.security.exposure import Exposure, reserved_method


def config(port: int, *, auto: str = "", service_extra: str = "", registry_extra: str = "") -> str:
    return f"""
registries:
  static:
    type: static
    services: {{{S}: ["127.0.0.1:{port}?version=1.0.0"]}}
    {registry_extra}
services:
  - interface: {S}
    version: 1.0.0
    methods: {{greet: [java.lang.String], add: [int, int]}}
    {service_extra}
routes:
  - {{method: GET, path: '/hello/{{name}}', service: {S}, call: greet,
     params: [{{from: path, name: name}}]}}
{auto}
"""


def untouched(provider, gw: int, path: str, body: object = None) -> dict:  # type: ignore[no-untyped-def]
    before = provider.requests
    status, doc = http_request(gw, "POST", path, body if body is not None else ["x"])
    assert status == 404, (path, status, doc)
    assert doc["error"]["code"] == "not_found"
    assert provider.requests == before, f"{path} reached the provider"
    return doc


def test_run_exposes_nothing_without_auto_routes(bg, provider) -> None:  # type: ignore[no-untyped-def]
    gw = bg.start_gateway(config(provider.port)).port
    assert http_request(gw, "GET", "/hello/ada") == (200, "Hello, ada")
    untouched(provider, gw, f"/{S}/greet")
    untouched(provider, gw, f"/{S}/add", [1, 2])


def test_auto_routes_without_expose_expose_nothing(bg, provider) -> None:  # type: ignore[no-untyped-def]
    gw = bg.start_gateway(config(provider.port, auto="auto_routes: {prefix: /}")).port
    untouched(provider, gw, f"/{S}/greet")


def test_configured_service_needs_an_expose_pattern_too(bg, provider) -> None:  # type: ignore[no-untyped-def]
    gw = bg.start_gateway(
        config(provider.port, auto="auto_routes: {prefix: /, expose: ['com.other.*']}")
    ).port
    untouched(provider, gw, f"/{S}/greet")


def test_method_patterns(bg, provider) -> None:  # type: ignore[no-untyped-def]
    gw = bg.start_gateway(
        config(provider.port, auto=f"auto_routes: {{prefix: /, expose: ['{S}#gr*']}}")
    ).port
    assert http_request(gw, "POST", f"/{S}/greet", ["x"]) == (200, "Hello, x")
    untouched(provider, gw, f"/{S}/add", [1, 2])


def test_expose_methods_of_a_service(bg, provider) -> None:  # type: ignore[no-untyped-def]
    gw = bg.start_gateway(
        config(
            provider.port,
            auto="auto_routes: {prefix: /, expose: ['*']}",
            service_extra="expose_methods: [add]",
        )
    ).port
    assert http_request(gw, "POST", f"/{S}/add", [1, 2]) == (200, 3)
    untouched(provider, gw, f"/{S}/greet")


@pytest.mark.parametrize(
    "method",
    ["$invoke", "$invokeAsync", "$echo", "%24echo", "getClass", "hashCode", "toString", "a-b"],
)
def test_reserved_methods_never_reach_the_provider(bg, provider, method: str) -> None:  # type: ignore[no-untyped-def]
    gw = bg.start_gateway(
        config(provider.port, auto="auto_routes: {prefix: /, expose: ['*']}")
    ).port
    body = ["greet", ["java.lang.String"], ["x"]] if "invoke" in method else ["x"]
    untouched(provider, gw, f"/{S}/{method}", body)


def test_registry_expose_narrows_auto_routes(bg, provider) -> None:  # type: ignore[no-untyped-def]
    gw = bg.start_gateway(
        config(
            provider.port,
            auto="auto_routes: {prefix: /, expose: ['*']}",
            registry_extra="expose: ['com.other.*']",
        )
    ).port
    untouched(provider, gw, f"/{S}/greet")
    gw2 = bg.start_gateway(
        config(
            provider.port,
            auto="auto_routes: {prefix: /, expose: ['*']}",
            registry_extra=f"expose: ['{S}#greet']",
        )
    ).port
    assert http_request(gw2, "POST", f"/{S}/greet", ["y"]) == (200, "Hello, y")
    untouched(provider, gw2, f"/{S}/add", [1, 2])


def test_unknown_service_is_404_and_not_followed(bg, provider) -> None:  # type: ignore[no-untyped-def]
    g = bg.start_gateway(config(provider.port, auto="auto_routes: {prefix: /, expose: ['*']}"))
    untouched(provider, g.port, "/com.evil.Gadget/run")
    assert "com.evil.Gadget" not in g.services


def test_demo_exposes_the_demo_service(bg, provider) -> None:  # type: ignore[no-untyped-def]
    gw = bg.start_gateway(demo_config(provider.port, 0)).port
    assert http_request(gw, "POST", f"/{S}/greet", ["d"]) == (200, "Hello, d")
    untouched(provider, gw, "/com.other.Service/greet")
    untouched(provider, gw, f"/{S}/$echo")


def test_explicit_routes_cannot_call_reserved_methods() -> None:
    with pytest.raises(ConfigError, match=r"routes\[0\]\.call.*\$invoke"):
        parse_config(
            f"""
services: [{{interface: {S}}}]
routes: [{{path: /x, service: {S}, call: $invoke}}]
"""
        )


def test_registry_expose_must_be_a_list() -> None:
    with pytest.raises(ConfigError, match=r"registries\.r\.expose: expected list"):
        parse_config("registries: {r: {type: static, services: {}, expose: 'com.*'}}")


def test_exposure_unit() -> None:
    e = Exposure(["com.x.*", "com.y.Svc#get*"], {"zk": ["com.x.A"]})
    assert e.service("com.x.A", None) and e.service("com.x.B", None)
    assert e.service("com.x.A", "zk") and not e.service("com.x.B", "zk")
    assert e.method("com.y.Svc", "getUser", None) and not e.method("com.y.Svc", "delete", None)
    assert not e.method("com.x.A", "$invoke", None)
    assert reserved_method("wait") and reserved_method("$echo") and not reserved_method("sayHi")
