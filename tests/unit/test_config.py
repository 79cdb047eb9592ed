"""Config validation: every error names file, line, path and what was expected."""

from __future__ import annotations

import pytest
from tribridge.config.model import ConfigError, parse_config

BASE = """
registries:
  static: {type: static, services: {com.x.S: ["127.0.0.1:1"]}}
services:
  - interface: com.x.S
    methods: {m: {types: [int, long]}}
"""


def err(text: str) -> str:
    with pytest.raises(ConfigError) as e:
        parse_config(text, "gw.yaml")
    return str(e.value)


def test_valid_config_parses() -> None:
    cfg = parse_config(
        BASE + "routes:\n  - {method: GET, path: '/a/{x}', service: com.x.S, call: m,"
        " params: [{from: path, name: x, type: int}, {from: query, name: y, type: long}]}\n"
    )
    assert cfg.services[0].methods["m"].types is not None
    assert [t.name for t in cfg.services[0].methods["m"].types] == ["int", "long"]
    assert cfg.routes[0].params[0].source == "path"


def test_unknown_key_with_location() -> None:
    msg = err(BASE + "  - interface: com.x.T\n    loadbalancer: random\n")
    assert (
        msg.startswith("gw.yaml:8:") and "services[1].loadbalancer" in msg and "unknown key" in msg
    )


def test_bad_balancer() -> None:
    msg = err(BASE.replace("    methods:", "    loadbalance: fastest\n    methods:"))
    assert "services[0].loadbalance" in msg and "roundrobin" in msg and "gw.yaml:6" in msg


def test_bad_java_type() -> None:
    msg = err(BASE.replace("[int, long]", "[int, 'java.util.Map<String>']"))
    assert "services[0].methods.m.types" in msg and "two type parameters" in msg


def test_route_to_unknown_service() -> None:
    msg = err(BASE + "routes:\n  - {path: /x, service: com.nope.S, call: m}\n")
    assert "routes[0].service" in msg and "com.nope.S" in msg


def test_path_param_not_in_template() -> None:
    msg = err(
        BASE
        + "routes:\n  - {path: /x, service: com.x.S, call: m, params: [{from: path, name: id}]}\n"
    )
    assert "{id} does not appear" in msg


def test_invalid_yaml_location() -> None:
    msg = err("services: [\n  {interface: a\n")
    assert msg.startswith("gw.yaml:") and "invalid YAML" in msg


def test_wrong_value_type() -> None:
    msg = err("listen: {port: eighty}\n")
    assert "listen.port" in msg and "expected int" in msg


def test_bad_duration() -> None:
    msg = err(BASE.replace("    methods:", "    timeout: soon\n    methods:"))
    assert "services[0].timeout" in msg and "duration" in msg


@pytest.mark.parametrize(
    ("types", "line", "hint"),
    [
        ("[int, Strng]", 6, "did you mean 'String'?"),
        ("IX", 6, "'X' is no type code"),
        ("['java.util.List<Lng>']", 6, "did you mean 'Long'?"),
        ("[com.x.Usr]", None, None),  # a packaged class: the provider may define it
    ],
)
def test_unknown_java_type_names_at_load(types: str, line: int | None, hint: str | None) -> None:
    text = BASE.replace("[int, long]", types)
    if line is None:
        parse_config(text, "gw.yaml")
        return
    msg = err(text)
    assert msg.startswith(f"gw.yaml:{line}:") and "services[0].methods.m.types" in msg, msg
    assert "unknown Java type" in msg and hint in msg, msg


def test_short_class_names_defined_in_types_are_known() -> None:
    cfg = parse_config(
        BASE.replace("[int, long]", "[User, 'List<User>']")
        + "    types: {User: {fields: {id: long, friend: User}}}\n",
        "gw.yaml",
    )
    assert [t.name for t in cfg.services[0].methods["m"].types or []] == ["User", "java.util.List"]


def test_unknown_pojo_field_type_at_load() -> None:
    msg = err(BASE + "    types: {com.x.User: {fields: {id: lnog}}}\n")
    assert msg.startswith("gw.yaml:7:") and "types.com.x.User.fields.id" in msg
    assert "did you mean 'long'?" in msg


def test_unknown_route_param_type_at_load() -> None:
    msg = err(
        BASE + "routes:\n  - {path: '/a/{x}', service: com.x.S, call: m,"
        " params: [{from: path, name: x, type: Integr}]}\n"
    )
    assert msg.startswith("gw.yaml:8:") and "routes[0].params[0].type" in msg
    assert "did you mean 'Integer'?" in msg


def test_route_call_names_a_listed_method() -> None:
    msg = err(BASE + "routes:\n  - {path: /x, service: com.x.S, call: mm}\n")
    assert msg.startswith("gw.yaml:8:") and "routes[0].call" in msg
    assert "lists no method 'mm'" in msg and "its methods: m" in msg
    # without methods: listed, any name goes (the provider's metadata or $invoke decides)
    parse_config(
        BASE.replace("    methods: {m: {types: [int, long]}}\n", "")
        + "routes:\n  - {path: /x, service: com.x.S, call: mm}\n"
    )


def test_upstream_batches_are_settings_with_bounds() -> None:
    cfg = parse_config(BASE + "upstream: {batch_frames: 8, batch_bytes: 32768}\n")
    assert (cfg.upstream.batch_frames, cfg.upstream.batch_bytes) == (8, 32768)
    assert parse_config(BASE).upstream.batch_frames == 16  # the default
    assert "upstream.batch_frames" in err(BASE + "upstream: {batch_frames: 0}\n")
    assert "upstream.batch_bytes" in err(BASE + "upstream: {batch_bytes: 10}\n")
