"""W3C trace context: HTTP traceparent -> Dubbo2 attachments the provider sees -> back."""

from __future__ import annotations

import http.client

import pytest
import yaml
from tribridge.cli.commands import demo_config
from tribridge.interop.testing import BackgroundLoop, http_request
from tribridge.ops.tracing import from_attachments, parse_traceparent, triple_headers

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TP = f"00-{TRACE}-{PARENT}-01"


# the pytest plugin's session fixtures (tribridge.interop.pytest_plugin)
@pytest.fixture(scope="module")
def bg(tribridge_loop: BackgroundLoop) -> BackgroundLoop:
    return tribridge_loop


@pytest.fixture(scope="module")
def provider(dubbo_demo_provider):  # type: ignore[no-untyped-def]
    return dubbo_demo_provider


def gateway(bg: BackgroundLoop, provider, **tracing: object):  # type: ignore[no-untyped-def]
    doc = yaml.safe_load(demo_config(provider.port, 0))
    doc["tracing"] = tracing
    return bg.start_gateway(yaml.safe_dump(doc))


def get(port: int, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}
    finally:
        conn.close()


@pytest.fixture(scope="module")
def gw(bg: BackgroundLoop, provider):  # type: ignore[no-untyped-def]
    return gateway(bg, provider, response_header=True)


def test_provider_sees_same_trace_new_parent(gw, provider) -> None:  # type: ignore[no-untyped-def]
    status, headers = get(
        gw.port, "/hello/t", {"traceparent": TP, "tracestate": "congo=t61rcWkgMzE"}
    )
    assert status == 200
    att = provider.last_attachments["greet"]
    trace_id, span_id, flags = parse_traceparent(att["traceparent"])  # type: ignore[misc]
    assert trace_id == TRACE and flags == "01"
    assert span_id != PARENT and len(span_id) == 16
    assert att["tracestate"] == "congo=t61rcWkgMzE"
    # back: the response names the gateway's span, which the provider got as its parent
    assert headers["traceresponse"] == att["traceparent"]


def test_each_call_gets_its_own_span(gw, provider) -> None:  # type: ignore[no-untyped-def]
    spans = set()
    for _ in range(5):
        assert get(gw.port, "/hello/t", {"traceparent": TP})[0] == 200
        spans.add(provider.last_attachments["greet"]["traceparent"])
    assert len(spans) == 5 and all(TRACE in s for s in spans)


def test_trace_started_when_absent_or_invalid(gw, provider) -> None:  # type: ignore[no-untyped-def]
    for headers in (
        {},
        {"traceparent": "00-zzzz-garbage-01"},
        {"traceparent": f"00-{'0' * 32}-{PARENT}-01"},
    ):
        assert get(gw.port, "/hello/t", headers)[0] == 200
        parsed = parse_traceparent(provider.last_attachments["greet"]["traceparent"])
        assert parsed is not None and parsed[0] != TRACE and parsed[0] != "0" * 32


def test_no_generation_when_disabled(bg, provider) -> None:  # type: ignore[no-untyped-def]
    gw = gateway(bg, provider, generate=False)
    status, headers = get(gw.port, "/hello/n", {})
    assert status == 200 and "traceresponse" not in headers
    assert "traceparent" not in provider.last_attachments["greet"]
    # an incoming one is still continued
    assert get(gw.port, "/hello/n", {"traceparent": TP})[0] == 200
    assert parse_traceparent(provider.last_attachments["greet"]["traceparent"])[0] == TRACE  # type: ignore[index]


def test_tracing_off_passes_header_through(bg, provider) -> None:  # type: ignore[no-untyped-def]
    gw = gateway(bg, provider, enabled=False)
    assert http_request(gw.port, "GET", "/hello/x", headers={"traceparent": TP})[0] == 200
    assert provider.last_attachments["greet"]["traceparent"] == TP  # passthrough_headers


def test_parse_traceparent_rules() -> None:
    assert parse_traceparent(TP) == (TRACE, PARENT, "01")
    assert parse_traceparent(TP.upper()) == (TRACE, PARENT, "01")
    assert parse_traceparent(TP + "-extra") is None  # version 00 has exactly 4 fields
    assert parse_traceparent("01" + TP[2:] + "-extra") == (TRACE, PARENT, "01")  # future version
    assert parse_traceparent("ff" + TP[2:]) is None
    assert parse_traceparent(f"00-{TRACE}-{'0' * 16}-01") is None
    assert parse_traceparent(TP[:-1]) is None
    assert parse_traceparent(None) is None


def test_triple_and_reverse_mappings() -> None:
    att = {"traceparent": TP, "tracestate": "a=b", "other": "x"}
    assert triple_headers(att) == {
        "traceparent": TP,
        "tracestate": "a=b",
        "tri-trace-traceid": TRACE,
    }
    assert from_attachments(att) == {"traceparent": TP, "tracestate": "a=b"}
    assert from_attachments({"traceparent": "nonsense"}) == {}


def test_opentelemetry_spans(bg, provider) -> None:  # type: ignore[no-untyped-def]
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(tp)
    gw = gateway(bg, provider, otel=True, response_header=True)
    status, headers = get(gw.port, "/hello/o", {"traceparent": TP})
    assert status == 200
    (span,) = exporter.get_finished_spans()
    ctx = span.get_span_context()
    assert f"{ctx.trace_id:032x}" == TRACE
    assert f"{span.parent.span_id:016x}" == PARENT
    assert span.name == "com.tribridge.demo.DemoService/greet"
    assert span.attributes["rpc.method"] == "greet"
    att = provider.last_attachments["greet"]["traceparent"]
    assert att == f"00-{TRACE}-{ctx.span_id:016x}-01" == headers["traceresponse"]


def test_triple_provider_sees_trace_headers(bg) -> None:  # type: ignore[no-untyped-def]
    """Triple carries attachments as lower-case headers: the grpcio
    Triple server sees traceparent/tracestate as request headers."""
    from tribridge.interop.triple_peers import SERVICE, start_peer

    from tests.conftest import free_port

    peer = start_peer("grpc", free_port())
    try:
        gw = bg.start_gateway(
            f"""
listen: {{host: 127.0.0.1, port: 0}}
registries:
  static: {{type: static, services: {{{SERVICE}: ["tri://127.0.0.1:{peer.port}/{SERVICE}"]}}}}
services:
  - {{interface: {SERVICE}, version: "1.0.0", group: blue, retries: 0, methods: {{headers: []}}}}
auto_routes: {{prefix: /, expose: ["com.tribridge.*"]}}
tracing: {{response_header: true}}
"""
        )
        status, seen = http_request(
            gw.port, "POST", f"/{SERVICE}/headers", [], {"traceparent": TP, "tracestate": "k=v"}
        )
        assert status == 200, seen
        trace_id, span_id, _ = parse_traceparent(seen["traceparent"])  # type: ignore[misc]
        assert trace_id == TRACE and span_id != PARENT
        assert seen["tracestate"] == "k=v"
    finally:
        peer.close()
