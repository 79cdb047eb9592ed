"""One canonical request path for every rule (issue 21 item 2; docs/security.md "Canonical
paths"), and identity headers a client cannot set.

Every rule kind — a path-based auth rule (auto and explicit routes), a path-based rate limit,
exposure allow and deny, an IDL route's auth rule, the admin API — is tried against every
spelling of its path in
``HOSTILE`` (each must be a 400: no single reading) and ``SAME`` (each must get exactly the
answer the canonical path gets). Requests go over raw sockets, byte for byte as written, so
no client library tidies a target first. Without the normalization in gateway/http/canonical.py
the hostile spellings are routed (``//S/greet`` reaches the provider with no credentials,
``//S/add`` is routed past the ``/S/add`` rate limit), so these tests fail.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from tribridge.cli.commands import DEMO_SERVICE as S
from tribridge.cli.commands import demo_config
from tribridge.config.model import ConfigError, parse_config
from tribridge.config.paths import config_path_error
from tribridge.http.canonical import PathError, canonical_path, split_target
from tribridge.interop.testing import BackgroundLoop, http_request

IDL = "idl.demo.v1.Demo"
ADMIN_TOKEN = "paths-test-admin-token-0123"
API_KEY = "partner-key-0123456789"


def _enc(c: str) -> str:
    return f"%{ord(c):02X}"


# Each: name -> target built from a canonical path "/a/b[/...]" (at least two segments).
Variant = Callable[[str], str]


def _mid(p: str, sep: str) -> str:
    """Join the last two segments with ``sep`` instead of ``/``."""
    head, _, last = p.rpartition("/")
    return f"{head}{sep}{last}"


HOSTILE: dict[str, Variant] = {
    "leading //": lambda p: "/" + p,
    "middle //": lambda p: _mid(p, "//"),
    "trailing //": lambda p: p + "//",
    "leading /./": lambda p: "/." + p,
    "middle /./": lambda p: _mid(p, "/./"),
    "trailing /.": lambda p: p + "/.",
    "leading /x/../": lambda p: "/x/.." + p,
    "trailing /..": lambda p: p + "/..",
    "%2e segment": lambda p: "/%2e" + p,
    "%2E%2E segment": lambda p: "/x/%2E%2E" + p,
    "mixed %2e%2E": lambda p: "/x/%2e%2E" + p,
    "overlong . %C0%AE": lambda p: "/%C0%AE" + p,
    "%2F encoded slash": lambda p: _mid(p, "%2F"),
    "%2f lower-case": lambda p: _mid(p, "%2f"),
    "%252F double encoding": lambda p: _mid(p, "%252F"),
    "%25 literal percent": lambda p: p + "%25",
    "%5C encoded backslash": lambda p: _mid(p, "%5C"),
    "raw backslash": lambda p: _mid(p, "\\"),
    "overlong / %C0%AF": lambda p: _mid(p, "%C0%AF"),
    "%00 NUL": lambda p: p + "%00",
    "%00 before suffix": lambda p: p + "%00.json",
    "%0A newline": lambda p: p + "%0A",
    "%0D%0A CRLF": lambda p: p + "%0D%0Ax-user:%20mallory",
    "%09 tab": lambda p: p + "%09",
    "%7F DEL": lambda p: p + "%7F",
    "%C2%85 C1 control": lambda p: p + "%C2%85",
    "%FF invalid UTF-8": lambda p: p + "%FF",
    "%ED%A0%80 surrogate": lambda p: p + "%ED%A0%80",
    "%80 stray continuation": lambda p: p + "%80",
    "truncated %": lambda p: p + "%",
    "truncated %4": lambda p: p + "%4",
    "bad hex %zz": lambda p: p + "%zz",
    ";jsessionid param": lambda p: p + ";jsessionid=1",
    ";param on a segment": lambda p: _mid(p, ";x/"),
    "%3B encoded ;": lambda p: p + "%3Bx",
    "%3F encoded ?": lambda p: p + "%3Fx",
    "%23 encoded #": lambda p: p + "%23x",
    "#fragment": lambda p: p + "#frag",
    "absolute-form with //": lambda p: "http://127.0.0.1/" + p,
    "absolute-form with ..": lambda p: "http://127.0.0.1/x/.." + p,
    "absolute-form userinfo": lambda p: "http://user@127.0.0.1" + p,
    "absolute-form ftp": lambda p: "ftp://127.0.0.1" + p,
    "asterisk-form": lambda p: "*",
    "authority-form": lambda p: "127.0.0.1:80",
}

SAME: dict[str, Variant] = {
    "canonical": lambda p: p,
    "trailing /": lambda p: p + "/",
    "query": lambda p: p + "?x=1",
    "trailing / and query": lambda p: p + "/?x=1",
    "%6F for o, upper-case hex": lambda p: p.replace("o", "%6F", 1),
    "%6f for o, lower-case hex": lambda p: p.replace("o", "%6f", 1),
    "every char of the last segment escaped": lambda p: (
        p.rpartition("/")[0] + "/" + "".join(_enc(c) for c in p.rpartition("/")[2])
    ),
    "absolute-form": lambda p: "http://127.0.0.1" + p,
    "absolute-form, upper-case scheme": lambda p: "HTTP://127.0.0.1" + p + "?x=1",
}


def test_variant_tables_are_what_they_say() -> None:
    """The SAME spellings really are the canonical path; the HOSTILE ones really have none
    (checked on the canonicalizer itself, then end to end below)."""
    p = f"/{S}/greet"
    for name, make in SAME.items():
        assert split_target(make(p).encode())[0] == p, name
    for name, make in HOSTILE.items():
        try:
            split_target(make(p).encode())
        except PathError:
            continue
        pytest.fail(f"{name}: {make(p)!r} has a canonical form")


# ----------------------------------------------------------------------------- plumbing


def raw_request(
    port: int,
    method: str,
    target: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    host: str | None = None,
) -> tuple[int, Any]:
    """One request with ``target`` sent exactly as given; -> (status, JSON body or bytes)."""
    hdrs = {"host": host or f"127.0.0.1:{port}", "connection": "close", **(headers or {})}
    if body or method in ("POST", "PUT"):
        hdrs["content-length"] = str(len(body))
        hdrs.setdefault("content-type", "application/json")
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head.encode("latin-1") + b"\r\n" + body)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    status = int(status_line.split()[1])
    try:
        return status, orjson.loads(payload)
    except orjson.JSONDecodeError:
        return status, payload


def gateway_config(provider_port: int) -> str:
    """The demo config plus: a path-based auth rule (greet), a path-based rate limit (add),
    exposure of four methods, an IDL route behind an auth rule, and an admin token."""
    doc = yaml.safe_load(demo_config(provider_port, 0))
    doc["passthrough_headers"] = ["x-request-id", "x-user", "X_Tenant", "x-trace-tag"]
    doc["admin"] = {"token": ADMIN_TOKEN}
    doc["auto_routes"] = {"prefix": "/", "expose": [f"{S}#{m}" for m in EXPOSED]}
    doc["services"].append(
        {
            "interface": IDL,
            "protocol": "grpc",
            "endpoints": ["127.0.0.1:9"],  # never reached: the guard answers first
            "idl": {"reflection": True},
            "timeout": "1s",
        }
    )
    doc["routes"].append(
        {
            "method": "POST",
            "path": "/v1/people:describe",
            "service": IDL,
            "call": "Describe",
            "body": "*",
        }
    )
    key = {"id": "partner", "key": API_KEY, "claims": {"tenant": "t-1"}}
    doc["security"] = {
        "auth": {"keys": {"type": "api_key", "header": "x-api-key", "keys": [key]}},
        "access": [
            {
                "path": f"/{S}/greet",
                "auth": ["keys"],
                "forward": {"sub": "x-user", "tenant": "x-tenant"},
            },
            {"path": "/v1/people:describe", "auth": ["keys"]},
            {"path": "/users/*", "auth": ["keys"]},
            {"path": "*", "auth": "none"},
        ],
        "rate_limits": [
            {"name": "add-path", "path": f"/{S}/add", "per": "route", "rate": "1/h", "burst": 1}
        ],
    }
    return yaml.safe_dump(doc, sort_keys=False)


EXPOSED = ("greet", "add", "addLong", "echoMap")


@pytest.fixture(scope="module")
def gw(bg: BackgroundLoop, provider: Any) -> Any:
    return bg.start_gateway(gateway_config(provider.port), admin_port=0)


def _ids(table: dict[str, Variant]) -> list[str]:
    return list(table)


# ----------------------------------------------------------------------------- the matrix


#: rule kind -> the request its rule covers
RULE_PATHS = {
    "auth": ("POST", f"/{S}/greet"),  # path-based auth rule on an auto route
    "explicit_auth": ("GET", "/users/7"),  # path-glob auth rule on an explicit template route
    "rate_limit": ("POST", f"/{S}/add"),
    "expose_allow": ("POST", f"/{S}/addLong"),
    "expose_deny": ("POST", f"/{S}/colorOf"),
    "idl": ("POST", "/v1/people:describe"),
}


@pytest.mark.parametrize("variant", _ids(HOSTILE))
@pytest.mark.parametrize("rule", RULE_PATHS)
def test_hostile_spelling_is_400_for_every_rule(gw, provider, rule: str, variant: str) -> None:  # type: ignore[no-untyped-def]
    method, path = RULE_PATHS[rule]
    before = provider.requests
    st, doc = raw_request(gw.port, method, HOSTILE[variant](path), b"[1, 2]")
    assert st == 400, (rule, variant, st, doc)
    assert provider.requests == before, "a request with no single reading reached a provider"


@pytest.mark.parametrize("variant", _ids(SAME))
def test_explicit_route_rule_holds_for_every_spelling(gw, variant: str) -> None:  # type: ignore[no-untyped-def]
    st, doc = raw_request(gw.port, "GET", SAME[variant]("/users/7"))
    assert st == 401 and doc["error"]["code"] == "unauthenticated", (variant, doc)
    st, doc = raw_request(gw.port, "GET", SAME[variant]("/users/7"), headers={"x-api-key": API_KEY})
    assert st == 200 and doc["id"] == 7, (variant, doc)


@pytest.mark.parametrize("variant", _ids(SAME))
def test_auth_rule_holds_for_every_spelling(gw, provider, variant: str) -> None:  # type: ignore[no-untyped-def]
    before = provider.requests
    st, doc = raw_request(gw.port, "POST", SAME[variant](f"/{S}/greet"), b'["x"]')
    assert st == 401 and doc["error"]["code"] == "unauthenticated", (variant, doc)
    assert provider.requests == before
    st, doc = raw_request(
        gw.port, "POST", SAME[variant](f"/{S}/greet"), b'["x"]', {"x-api-key": API_KEY}
    )
    assert (st, doc) == (200, "Hello, x"), variant


@pytest.mark.parametrize("variant", _ids(SAME))
def test_rate_limit_holds_for_every_spelling(gw, variant: str) -> None:  # type: ignore[no-untyped-def]
    raw_request(gw.port, "POST", f"/{S}/add", b"[1, 2]")  # the one token (1/h) is gone
    st, doc = raw_request(gw.port, "POST", SAME[variant](f"/{S}/add"), b"[1, 2]")
    assert st == 429 and doc["error"]["rule"] == "add-path", (variant, doc)


@pytest.mark.parametrize("variant", _ids(SAME))
def test_exposure_holds_for_every_spelling(gw, variant: str) -> None:  # type: ignore[no-untyped-def]
    st, doc = raw_request(gw.port, "POST", SAME[variant](f"/{S}/addLong"), b"[1, 2]")
    assert (st, doc) == (200, 3), variant
    st, doc = raw_request(gw.port, "POST", SAME[variant](f"/{S}/colorOf"), b'"RED"')
    assert st == 404 and "not exposed" in doc["error"]["message"], (variant, doc)


@pytest.mark.parametrize("variant", _ids(SAME))
def test_idl_route_rule_holds_for_every_spelling(gw, variant: str) -> None:  # type: ignore[no-untyped-def]
    st, doc = raw_request(gw.port, "POST", SAME[variant]("/v1/people:describe"), b"{}")
    assert st == 401 and doc["error"]["code"] == "unauthenticated", (variant, doc)


@pytest.mark.parametrize("variant", _ids(HOSTILE))
def test_admin_hostile_spelling_is_400(gw, variant: str) -> None:  # type: ignore[no-untyped-def]
    for method in ("GET", "PUT"):
        st, doc = raw_request(gw.admin.port, method, HOSTILE[variant]("/config"))
        assert st == 400, (method, variant, doc)


@pytest.mark.parametrize("variant", _ids(SAME))
def test_admin_every_spelling_reads_and_is_guarded(gw, variant: str) -> None:  # type: ignore[no-untyped-def]
    st, doc = raw_request(gw.admin.port, "GET", SAME[variant]("/config"))
    assert st == 200 and doc["version"] == gw.state.version, (variant, doc)
    st, doc = raw_request(gw.admin.port, "PUT", SAME[variant]("/config"), b"listen: {}")
    assert st == 401, (variant, doc)


def test_every_layer_reads_the_same_path(gw, bg: BackgroundLoop) -> None:  # type: ignore[no-untyped-def]
    """The access log names the canonical path and the metrics count every spelling under
    the one route, service and method: no layer sees the spelling."""
    lines: list[str] = []

    class Grab(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.extend(record.getMessage().split("\n"))  # a record is a batch of lines

    def count() -> float:
        for fam in text_string_to_metric_families(gw.metrics_text().decode()):
            for smp in fam.samples:
                lab = smp.labels
                if (smp.name, lab.get("method"), lab.get("status")) == (
                    "tribridge_requests_total",
                    "addLong",
                    "200",
                ):
                    assert lab["route"] == "auto" and lab["service"] == S, lab
                    return smp.value
        return 0.0

    grab = Grab()
    alog = logging.getLogger("tribridge.access")
    level = alog.level
    alog.setLevel(logging.INFO)
    alog.addHandler(grab)
    try:
        before = count()
        for make in SAME.values():
            assert raw_request(gw.port, "POST", make(f"/{S}/addLong"), b"[2, 3]") == (200, 5)

        async def flush() -> None:  # the lines waiting for their batch's timer
            gw.access.flush()

        bg.run(flush())
    finally:
        alog.removeHandler(grab)
        alog.setLevel(level)
    paths = [orjson.loads(x)["path"] for x in lines if "addLong" in x]
    assert paths == [f"/{S}/addLong"] * len(SAME), paths
    assert count() - before == len(SAME)


# ----------------------------------------------------------------------------- identity headers


def test_identity_header_from_a_client_never_reaches_the_provider(gw, provider) -> None:  # type: ignore[no-untyped-def]
    """``x-user`` and ``x-tenant`` are written by the greet rule from verified claims; on a
    path no forwarding rule covers, a client's own ``x-user`` must still not pass through
    (it would be the caller's identity to the provider), in any spelling or repetition."""
    spoof = [
        ("x-user", "mallory"),
        ("X-User", "mallory2"),
        ("x_user", "mallory3"),
        ("x-tenant", "evil"),
        ("X_Tenant", "evil2"),
        ("x-trace-tag", "kept"),
        ("x-request-id", "r-1"),
    ]
    head = "".join(f"{k}: {v}\r\n" for k, v in spoof)
    body = b'{"k": "v"}'
    req = (
        f"POST /{S}/echoMap HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n{head}"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        s.sendall(req)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data
    att = provider.last_attachments["echoMap"]
    names = {k.lower().replace("_", "-") for k in att}
    assert "x-user" not in names and "x-tenant" not in names, att
    assert att.get("x-trace-tag") == "kept" and att.get("x-request-id") == "r-1", att


def test_identity_header_comes_from_claims_on_the_ruled_path(gw, provider) -> None:  # type: ignore[no-untyped-def]
    st, doc = http_request(
        gw.port,
        "POST",
        f"/{S}/greet",
        ["y"],
        {"x-api-key": API_KEY, "x-user": "mallory", "x_tenant": "evil", "X-Tenant": "evil"},
    )
    assert (st, doc) == (200, "Hello, y")
    att = provider.last_attachments["greet"]
    assert att["x-user"] == "partner" and att["x-tenant"] == "t-1", att
    assert "x_tenant" not in att, att


@pytest.mark.parametrize(
    "headers",
    [
        [("x_api_key", API_KEY)],
        [("X_API_KEY", API_KEY)],
        [("x-api-key", API_KEY), ("x-api-key", API_KEY)],
        [("x-api-key", API_KEY), ("X-Api-Key", "other")],
        [("x-api-key", "")],
    ],
    ids=["underscore", "upper-underscore", "duplicate", "duplicate-other", "empty"],
)
def test_credential_header_variants_are_not_credentials(gw, provider, headers) -> None:  # type: ignore[no-untyped-def]
    """A credential is read from one canonical header name, once: a ``_`` spelling is not
    it, and a repeated header (joined by the server) is no valid key."""
    before = provider.requests
    head = "".join(f"{k}: {v}\r\n" for k, v in headers)
    req = (
        f"POST /{S}/greet HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n{head}"
        'content-type: application/json\r\ncontent-length: 5\r\n\r\n["x"]'
    ).encode()
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        s.sendall(req)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 401"), data
    assert provider.requests == before


# ----------------------------------------------------------------------------- config side


@pytest.mark.parametrize(
    "where",
    [
        "routes: [{method: GET, path: '/hello//x', service: S, call: greet}]",
        "routes: [{method: GET, path: '/hello/x/', service: S, call: greet}]",
        "routes: [{method: GET, path: '/hello/../x', service: S, call: greet}]",
        "routes: [{method: GET, path: '/hello/%2Fx', service: S, call: greet}]",
        "routes: [{method: GET, path: '/hello;x', service: S, call: greet}]",
        "security: {access: [{path: '/admin/', auth: none}]}",
        "security: {access: [{path: '//x/*', auth: none}]}",
        "security: {rate_limits: [{path: '/a/./b', rate: 1/s}]}",
        "security: {rate_limits: [{path: 'a/*', rate: 1/s}]}",
        "auto_routes: {prefix: '/api/../x'}",
    ],
)
def test_config_paths_that_no_canonical_path_can_match_are_refused(where: str) -> None:
    text = "services: [{interface: S, methods: {greet: [String]}}]\n" + where
    with pytest.raises(ConfigError, match=r"canonical|trailing|starting with /"):
        parse_config(text)


def test_config_paths_and_globs_that_are_canonical_load() -> None:
    assert config_path_error("/v1/{name=shelves/*}/books/{id}") is None
    assert config_path_error("/v1/people:describe") is None
    assert config_path_error("*", glob=True) is None
    assert config_path_error("/admin/*", glob=True) is None
    assert config_path_error("/") is None


def test_auto_route_prefix_is_a_whole_segment(bg: BackgroundLoop, provider: Any) -> None:
    text = demo_config(provider.port, 0).replace("prefix: /", "prefix: /api")
    g = bg.start_gateway(text)
    assert http_request(g.port, "POST", f"/api/{S}/addLong", [1, 2]) == (200, 3)
    st, _ = http_request(g.port, "POST", f"/api{S}/addLong", [1, 2])
    assert st == 404


def test_canonical_path_unit_cases() -> None:
    assert canonical_path(b"/") == "/"
    assert canonical_path(b"/a/b/") == "/a/b"
    assert canonical_path(b"/%E4%BD%A0/x") == "/\u4f60/x"
    assert canonical_path(b"/.well-known/x") == "/.well-known/x"
    assert canonical_path(b"/a..b/c.") == "/a..b/c."
    with pytest.raises(PathError):
        canonical_path(b"a/b")
    with pytest.raises(PathError):
        canonical_path("/caf\u00e9".encode())  # raw non-ASCII must be percent-encoded


def test_hostile_case_count() -> None:
    """docs/security.md quotes these numbers; keep them in step."""
    hostile = len(HOSTILE) * len(RULE_PATHS) + len(HOSTILE) * 2  # + admin GET and PUT
    same = len(SAME) * (2 + 2 + 1 + 2 + 1 + 2)  # requests per rule kind in the SAME tests
    assert (len(HOSTILE), len(SAME), len(RULE_PATHS)) == (44, 9, 6)
    assert (hostile, same) == (352, 90)
