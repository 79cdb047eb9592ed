"""Provider failures as a user reads them: an unknown service or method is a 404, and a Java
stack trace is logged, never sent to the HTTP client unless ``errors.java_stack_traces``."""

from __future__ import annotations

import logging

import orjson
import pytest
from tribridge.cli.commands import DEMO_SERVICE as S
from tribridge.interop.testing import BackgroundLoop, http_request

from tests.conftest import tb


def config(port: int, group: str = "", traces: bool = False) -> str:
    """The demo provider as a service without listed methods: calls go out as ``$invoke``,
    so the provider itself decides what exists."""
    return f"""
listen: {{host: 127.0.0.1, port: 0}}
registries:
  static: {{type: static, services: {{{S}: ["127.0.0.1:{port}?version=1.0.0"]}}}}
services:
  - {{interface: {S}, version: 1.0.0, group: "{group}", call: generic}}
auto_routes: {{prefix: /, expose: ["{S}"]}}
errors: {{java_stack_traces: {str(traces).lower()}}}
"""


def test_unknown_method_is_404_without_stack_trace(
    tribridge_loop: BackgroundLoop, dubbo_demo_provider, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    gw = tribridge_loop.start_gateway(config(dubbo_demo_provider.port)).port
    with caplog.at_level(logging.WARNING, logger="tribridge.errors"):
        status, body = http_request(gw, "POST", f"/{S}/nope", [])
    err = body["error"]
    assert status == 404 and err["code"] == "not_found", body
    assert "No such method nope" in err["message"] and err["dubbo_status"] == 70
    assert "\tat " not in err["message"] and "java_stack_trace" not in err
    assert any("\tat " in r.getMessage() for r in caplog.records)  # the trace is logged


def test_unknown_service_group_is_404(tribridge_loop: BackgroundLoop, dubbo_demo_provider) -> None:  # type: ignore[no-untyped-def]
    gw = tribridge_loop.start_gateway(config(dubbo_demo_provider.port, group="other")).port
    status, body = http_request(gw, "POST", f"/{S}/greet", ["x"])
    err = body["error"]
    assert status == 404 and err["code"] == "not_found", body
    assert err["message"].startswith("org.apache.dubbo.remoting.RemotingException: Not found")
    assert "\n" not in err["message"] and err["group"] == "other"


def test_stack_traces_on_request(tribridge_loop: BackgroundLoop, dubbo_demo_provider) -> None:  # type: ignore[no-untyped-def]
    gw = tribridge_loop.start_gateway(config(dubbo_demo_provider.port, traces=True)).port
    status, body = http_request(gw, "POST", f"/{S}/nope", [])
    err = body["error"]
    assert status == 404 and "\tat " not in err["message"]
    assert "\tat " in err["java_stack_trace"] and err["message"] in err["java_stack_trace"]


def test_cli_call_unknown_method_is_not_found(dubbo_demo_provider) -> None:  # type: ignore[no-untyped-def]
    r = tb(
        "call",
        f"dubbo://127.0.0.1:{dubbo_demo_provider.port}",
        f"{S}.nope",
        "[]",
        "--version",
        "1.0.0",
    )
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert '"code":"not_found"' in r.stderr and "\\tat " not in r.stderr


def test_cli_call_without_version_hints_at_it(dubbo_demo_provider) -> None:  # type: ignore[no-untyped-def]
    target = f"dubbo://127.0.0.1:{dubbo_demo_provider.port}"
    r = tb("call", target, f"{S}.greet", '["x"]', "--types", "java.lang.String")
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    err = orjson.loads(r.stderr)["error"]
    assert err["code"] == "not_found" and "add --version" in err["hint"]
    r = tb(
        "call", target, f"{S}.greet", '["x"]', "--types", "java.lang.String", "--version", "1.0.0"
    )
    assert r.returncode == 0 and orjson.loads(r.stdout) == "Hello, x"


@pytest.mark.parametrize(
    ("method", "args", "route"),
    [
        ("nextColor", ["RED"], None),  # an enum result
        ("getUser", [7], "/users/7"),  # a POJO with an enum field
        ("listUsers", [2], None),  # a list of them
    ],
)
def test_enums_render_alike_in_call_and_gateway(
    tribridge_loop: BackgroundLoop,
    dubbo_demo_provider,
    method: str,
    args: list[object],
    route: str | None,
) -> None:  # type: ignore[no-untyped-def]
    """The demo gateway knows the enum from its config; ``tribridge call`` (a $invoke) gets
    Java's generic form: both answer an enum constant by name."""
    from tribridge.cli.commands import demo_config

    gw = tribridge_loop.start_gateway(demo_config(dubbo_demo_provider.port, 0)).port
    status, via_gateway = (
        http_request(gw, "GET", route)
        if route
        else http_request(gw, "POST", f"/{S}/{method}", args)
    )
    assert status == 200, via_gateway
    target = f"dubbo://127.0.0.1:{dubbo_demo_provider.port}"
    r = tb("call", target, f"{S}.{method}", orjson.dumps(args).decode(), "--version", "1.0.0")
    assert r.returncode == 0, r.stderr
    assert orjson.loads(r.stdout) == via_gateway
    assert "GREEN" in r.stdout or "RED" in r.stdout or "BLUE" in r.stdout
    assert '"name":"GREEN"}' not in r.stdout and "com.tribridge.demo.Color" not in r.stdout
