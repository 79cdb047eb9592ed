"""Admin API pages and Prometheus metrics, scraped and parsed with prometheus_client."""

from __future__ import annotations

import http.client

import orjson
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from tribridge.cli.commands import DEMO_SERVICE as S
from tribridge.cli.commands import demo_config
from tribridge.interop.testing import BackgroundLoop, http_request


# the pytest plugin's session fixtures (tribridge.interop.pytest_plugin)
@pytest.fixture(scope="module")
def bg(tribridge_loop: BackgroundLoop) -> BackgroundLoop:
    return tribridge_loop


@pytest.fixture(scope="module")
def provider(dubbo_demo_provider):  # type: ignore[no-untyped-def]
    return dubbo_demo_provider


@pytest.fixture(scope="module")
def gw(bg: BackgroundLoop, provider):  # type: ignore[no-untyped-def]
    doc = yaml.safe_load(demo_config(provider.port, 0))
    doc["metrics"] = {"on_main_port": True}
    gw = bg.start_gateway(yaml.safe_dump(doc), admin_port=0)
    # a known mix of traffic
    for name in ("a", "b", "c"):
        assert http_request(gw.port, "GET", f"/hello/{name}")[0] == 200
    assert http_request(gw.port, "GET", "/add?a=1")[0] == 400
    assert http_request(gw.port, "GET", "/nowhere")[0] == 404
    assert http_request(gw.port, "POST", f"/{S}/addLong", [1, 2]) == (200, 3)
    return gw


def admin(gw, path: str, method: str = "GET", body: bytes | None = None):  # type: ignore[no-untyped-def]
    conn = http.client.HTTPConnection("127.0.0.1", gw.admin.port, timeout=10)
    try:
        conn.request(method, path, body=body)
        r = conn.getresponse()
        raw = r.read()
        ctype = r.getheader("content-type") or ""
        return r.status, orjson.loads(raw) if ctype.startswith("application/json") else raw
    finally:
        conn.close()


def samples(text: str) -> dict[str, list]:  # type: ignore[type-arg]
    out: dict[str, list] = {}  # type: ignore[type-arg]
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append(s)
    return out


def one(ss: list, **labels: str) -> float:  # type: ignore[type-arg]
    hits = [s for s in ss if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(hits) == 1, (labels, [s.labels for s in ss])
    return hits[0].value


def test_admin_binds_loopback_by_default(gw) -> None:  # type: ignore[no-untyped-def]
    assert gw.cfg.admin_host == "127.0.0.1"
    assert gw.admin.http._server.sockets[0].getsockname()[0] == "127.0.0.1"


def test_routes_page(gw) -> None:  # type: ignore[no-untyped-def]
    status, body = admin(gw, "/routes")
    assert status == 200
    paths = {(r["method"], r["path"]) for r in body["routes"]}
    assert ("GET", "/hello/{name}") in paths and ("POST", "/users") in paths
    assert body["auto_routes"]["expose"] == [S]
    assert body["version"] == gw.state.version


def test_services_page_shows_pool_state(gw, provider) -> None:  # type: ignore[no-untyped-def]
    status, body = admin(gw, "/services")
    assert status == 200
    svc = body["services"][S]
    assert svc["key"] == f"{S}:1.0.0" and svc["pending"] is False
    (ep,) = svc["endpoints"]
    assert ep["address"] == f"127.0.0.1:{provider.port}"
    (pool,) = ep["pools"]
    assert pool["connections"] == 1 and pool["ejected"] is False


def test_registries_and_config_pages(gw) -> None:  # type: ignore[no-untyped-def]
    status, body = admin(gw, "/registries")
    assert status == 200
    static = body["registries"]["static"]
    assert static["connected"] is True and static["last_sync"] > 0 and static["services"] == 1
    status, body = admin(gw, "/config")
    assert status == 200
    assert body["version"] == gw.state.version and len(body["version"]) == 16
    assert body["loaded_at"] == gw.state.loaded_at
    assert "listen" in body["restart_needed_for"]


def test_counters(gw) -> None:  # type: ignore[no-untyped-def]
    status, body = admin(gw, "/counters")
    assert status == 200
    assert body["by_status"]["200"] >= 4 and body["by_status"]["400"] >= 1
    assert body["by_status"]["404"] >= 1
    assert body["by_service"][S] >= 5
    assert list(body["upstream_connections"].values()) == [1]


def test_unknown_page_and_method(gw) -> None:  # type: ignore[no-untyped-def]
    status, body = admin(gw, "/nope")
    assert status == 404 and "/metrics" in body["error"]["message"]
    # no admin credentials configured: every method but GET/HEAD is refused, whatever the page
    status, body = admin(gw, "/routes", "POST")
    assert status == 403 and body["error"]["code"] == "admin_mutations_disabled"


def test_metrics_scrape(gw, provider) -> None:  # type: ignore[no-untyped-def]
    status, raw = admin(gw, "/metrics")
    assert status == 200
    ss = samples(raw.decode())
    req = ss["tribridge_requests_total"]
    hello = {"route": "GET /hello/{name}", "service": S, "method": "greet"}
    assert one(req, **hello, status="200") >= 3
    assert one(req, route="GET /add", service=S, method="add", status="400") >= 1
    assert one(req, route="", status="404") >= 1
    assert one(req, route="auto", service=S, method="addLong", status="200") >= 1
    # the histogram agrees with the counter, and its buckets are cumulative
    count = one(ss["tribridge_request_duration_seconds_count"], **hello)
    assert count == one(req, **hello, status="200")
    buckets = [
        s
        for s in ss["tribridge_request_duration_seconds_bucket"]
        if s.labels["route"] == hello["route"]
    ]
    values = [s.value for s in buckets]
    assert values == sorted(values) and values[-1] == count and buckets[-1].labels["le"] == "+Inf"
    assert one(ss["tribridge_request_duration_seconds_sum"], **hello) > 0
    inst = f"127.0.0.1:{provider.port}"
    assert one(ss["tribridge_upstream_connections"], instance=inst) == 1
    assert one(ss["tribridge_service_endpoints"], service=S) == 1
    assert one(ss["tribridge_registry_connected"], registry="static") == 1
    assert 0 <= one(ss["tribridge_registry_sync_age_seconds"], registry="static") < 600
    assert one(ss["tribridge_config_info"], version=gw.state.version) == 1


def test_metrics_on_main_port_when_enabled(gw) -> None:  # type: ignore[no-untyped-def]
    status, raw = http_request(gw.port, "GET", "/metrics")
    assert status == 200 and b"tribridge_requests_total" in raw


def test_label_sets_are_bounded() -> None:
    from tribridge.ops.metrics import OTHER, RequestStats

    st = RequestStats(max_series=10)
    for i in range(1000):
        st.observe("auto", "svc", f"m{i}", 404, 0.001)
    assert len(st.series) <= 11
    assert st.series[("auto", "svc", OTHER, 404)][0] == 990
