"""IDL config and google.api.http templates: located errors, template grammar, binding."""

from __future__ import annotations

from pathlib import Path

import pytest
from tribridge.config.model import ConfigError, parse_config
from tribridge.idl.schema import load_protos
from tribridge.idl.templates import BindError, TemplateError, parse_template, set_field

PROTOS = Path(__file__).resolve().parents[2] / "interop" / "protos"
SVC = "idl.demo.v1.Demo"
IDL = f'{{protos: ["{PROTOS}/demo.proto"], include: ["{PROTOS}"]}}'


def cfg(idl: str = IDL, service: str = "", routes: str = "") -> str:
    return f"""
services:
  - interface: {SVC}
    endpoints: ["127.0.0.1:1"]
    idl: {idl}
{service}
routes:
{routes or "  []"}
"""


def err(text: str) -> str:
    with pytest.raises(ConfigError) as e:
        parse_config(text, "gw.yaml")
    return str(e.value)


def test_valid_idl_config() -> None:
    c = parse_config(
        cfg(
            service="    protocol: tri\n    version: 1.0.0\n    json: {field_names: proto, enums: numbers}",
            routes=f'  - {{method: GET, path: "/v1/{{name=shelves/*}}/books/{{id}}", service: {SVC}, call: GetBook}}',
        )
    )
    (sc,) = c.idl_services
    assert sc.protocol == "tri" and sc.version == "1.0.0" and sc.schema is not None
    assert sc.json.proto_names and sc.json.enums_as_numbers and not sc.json.emit_defaults
    assert c.services == [] and len(c.idl_routes) == 1 and c.routes == []
    assert c.idl_routes[0].template.variables == ("name", "id")


@pytest.mark.parametrize(
    ("text", "where", "needle"),
    [
        (cfg(idl="{reflection: maybe}"), "services[0].idl.reflection", "v1alpha"),
        (cfg(idl="{}"), "services[0].idl", "exactly one"),
        (
            cfg(idl=f'{{reflection: true, descriptor_set: "{PROTOS}/x.pb"}}'),
            "services[0].idl",
            "exactly one",
        ),
        (
            cfg(idl='{descriptor_set: "/nonexistent/x.pb"}'),
            "services[0].idl.descriptor_set",
            "cannot read",
        ),
        (
            cfg(idl=f'{{descriptor_set: "{PROTOS}/demo.proto"}}'),
            "services[0].idl.descriptor_set",
            "FileDescriptorSet",
        ),
        (
            cfg(idl=f'{{protos: ["{PROTOS}/evolve_v1/nope.proto"]}}'),
            "services[0].idl.protos",
            "protoc failed",
        ),
        (
            cfg(idl=f'{{protos: ["{PROTOS}/evolve_v1/evolve.proto"]}}'),
            "services[0].interface",
            "idl.evolve.Evolving",
        ),
        (
            cfg().replace('    endpoints: ["127.0.0.1:1"]\n', ""),
            "services[0]",
            "endpoints or a registry",
        ),
        (cfg(service="    protocol: dubbo"), "services[0].protocol", "grpc or tri"),
        (cfg(service="    json: {enums: words}"), "services[0].json.enums", "names or numbers"),
        (
            cfg(service="    json: {field_names: kebab}"),
            "services[0].json.field_names",
            "camel or proto",
        ),
        (cfg(service="    colour: red"), "services[0].colour", "unknown key"),
        (cfg().replace('"127.0.0.1:1"', '"nohostport"'), "services[0].endpoints[0]", "host:port"),
        (
            cfg(routes=f'  - {{method: GET, path: "/v1/{{name", service: {SVC}, call: GetBook}}'),
            "routes[0].path",
            "unclosed",
        ),
        (
            cfg(routes=f'  - {{method: GET, path: "/v1/x", service: {SVC}, call: Nope}}'),
            "routes[0].call",
            "Nope",
        ),
        (
            cfg(
                routes=f'  - {{method: GET, path: "/v1/{{shelf}}", service: {SVC}, call: GetBook}}'
            ),
            "routes[0].path",
            "shelf",
        ),
        (
            cfg(
                routes=f'  - {{method: POST, path: "/v1/b", service: {SVC}, call: UpdateBook, body: bok}}'
            ),
            "routes[0].body",
            "bok",
        ),
        (
            cfg(
                routes=f'  - {{method: GET, path: "/v1/b", service: {SVC}, call: GetBook, body: "*"}}'
            ),
            "routes[0].body",
            "GET",
        ),
        (
            cfg(
                routes=f'  - {{method: GET, path: "/v1/b", service: {SVC}, call: GetBook, params: []}}'
            ),
            "routes[0].params",
            "unknown key",
        ),
    ],
)
def test_located_errors(text: str, where: str, needle: str) -> None:
    msg = err(text)
    assert msg.startswith("gw.yaml:"), msg
    assert where in msg and needle in msg, msg


def test_protoc_error_names_the_proto_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.proto"
    bad.write_text('syntax = "proto3";\npackage p;\nmessage M { strin x = 1; }\n')
    msg = err(cfg(idl=f'{{protos: ["{bad}"]}}'))
    assert "services[0].idl.protos" in msg and "bad.proto:3" in msg, msg


def test_relative_paths_resolve_from_the_config_file(tmp_path: Path) -> None:
    from tribridge.config.model import load_config

    (tmp_path / "gw.yaml").write_text(
        cfg(idl=f'{{protos: ["demo.proto"], include: ["{PROTOS}"]}}').replace(
            "demo.proto", "p/demo.proto"
        )
    )
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "demo.proto").write_text((PROTOS / "demo.proto").read_text())
    c = load_config(tmp_path / "gw.yaml")
    assert c.idl_services[0].schema is not None


# ---- templates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        (
            "/v1/{name=shelves/*}/books/{id}",
            "/v1/shelves/7/books/42",
            {"name": "shelves/7", "id": "42"},
        ),
        ("/v1/{name=shelves/*}/books/{id}", "/v1/shelves/7/books", None),
        ("/v1/{name=shelves/*}/books/{id}", "/v1/racks/7/books/1", None),
        ("/v1/{name=shelves/**}", "/v1/shelves/a/b/c", {"name": "shelves/a/b/c"}),
        ("/v1/{book.name}:publish", "/v1/x:publish", {"book.name": "x"}),
        ("/v1/{book.name}:publish", "/v1/x:unpublish", None),
        ("/v1/*/items", "/v1/anything/items", {}),
        ("/v1/a.b", "/v1/aXb", None),
    ],
)
def test_template_matching(template: str, path: str, expected: object) -> None:
    assert parse_template(template).match(path) == expected


@pytest.mark.parametrize(
    "bad", ["v1", "/v1/{x", "/v1/{1x}", "/a/{x}/{x}", "/a/{x={y}}", "/a/{x=}", "/a:b/c", "/a/{x.}"]
)
def test_bad_templates(bad: str) -> None:
    with pytest.raises(TemplateError):
        parse_template(bad)


@pytest.fixture(scope="module")
def get_book():  # type: ignore[no-untyped-def]
    schema = load_protos([str(PROTOS / "demo.proto")], [str(PROTOS)])
    return schema.method(SVC, "GetBook").input.DESCRIPTOR


def test_binding_converts_by_field_type(get_book) -> None:  # type: ignore[no-untyped-def]
    out: dict = {}
    set_field(out, get_book, "verbose", ["true"], "q")
    set_field(out, get_book, "fields", ["a", "b"], "q")
    set_field(out, get_book, "color", ["2"], "q")
    set_field(out, get_book, "where.city", ["Rome"], "q")
    set_field(out, get_book, "view", ["x", "y"], "q")  # singular: the last one wins
    assert out == {
        "verbose": True,
        "fields": ["a", "b"],
        "color": 2,
        "where": {"city": "Rome"},
        "view": "y",
    }


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("nope", "1", "no field 'nope'"),
        ("verbose", "yes", "bool"),
        ("where", "x", "message"),
        ("where.zip.x", "1", "not a singular message"),
    ],
)
def test_binding_errors(get_book, field: str, value: str, needle: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BindError) as e:
        set_field({}, get_book, field, [value], "q")
    assert needle in str(e.value)
