"""Request counters kept in plain dicts on the hot path, rendered by prometheus-client at scrape.

``prometheus_client`` metric objects take a lock and build label tuples on every ``inc`` /
``observe`` (a few microseconds each, several per request); the gateway instead adds to one
list per (route, service, method, status) and a custom collector turns those lists into
counter and histogram families when ``/metrics`` is scraped.  Gauges (connections, registry
state, relay links) are read from the live objects at scrape time, so they cost nothing per
request.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from tribridge.invoke.events import AttemptFailed, CallEnded, Events

#: latency bucket upper bounds in seconds (a gateway hop is sub-millisecond to seconds)
BOUNDS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
#: distinct label sets kept; beyond this new ones fold into method="_other" (auto routes let
#: clients choose method names, which must not grow memory without bound)
MAX_SERIES = 5000
OTHER = "_other"


class RequestStats:
    """Per (route, service, method, status): ``[count, sum, bucket_0 … bucket_n, +Inf]``."""

    def __init__(self, max_series: int = MAX_SERIES) -> None:
        self.series: dict[tuple[str, str, str, int], list[float]] = {}
        self.max_series = max_series
        self.started = time.time()
        #: (service, failure code) -> attempts that got no provider answer
        self.attempt_failures: dict[tuple[str, str], int] = {}

    def attempt_failed(self, service: str, code: str) -> None:
        key = (service, code)
        n = self.attempt_failures.get(key)
        if n is None and len(self.attempt_failures) >= self.max_series:
            key = (OTHER, code)  # services come from clients (auto routes): bounded
            n = self.attempt_failures.get(key)
        self.attempt_failures[key] = (n or 0) + 1

    def observe(self, route: str, service: str, method: str, status: int, seconds: float) -> None:
        key = (route, service, method, status)
        s = self.series.get(key)
        if s is None:
            s = self._new(key)
        s[0] += 1
        s[1] += seconds
        s[2 + bisect_left(BOUNDS, seconds)] += 1

    def _new(self, key: tuple[str, str, str, int]) -> list[float]:
        if len(self.series) >= self.max_series:
            key = (key[0], key[1], OTHER, key[3])
            s = self.series.get(key)
            if s is not None:
                return s
        s = self.series[key] = [0, 0.0] + [0] * (len(BOUNDS) + 1)
        return s

    def totals(self) -> dict[str, Any]:
        """A JSON summary for the admin API's ``/counters``."""
        by_status: dict[str, int] = {}
        by_service: dict[str, int] = {}
        total = 0
        for (_, service, _, status), s in self.series.items():
            n = int(s[0])
            total += n
            by_status[str(status)] = by_status.get(str(status), 0) + n
            if service:
                by_service[service] = by_service.get(service, 0) + n
        return {"requests": total, "by_status": by_status, "by_service": by_service}


class GatewayCollector:
    """Turns a gateway's live state into metric families at scrape time."""

    def __init__(self, gw: Any) -> None:
        self.gw = gw

    def describe(self) -> Iterable[Any]:
        return []

    def collect(self) -> Iterable[Any]:
        gw = self.gw
        stats: RequestStats = gw.stats
        labels = ["route", "service", "method", "status"]
        req = CounterMetricFamily(
            "tribridge_requests", "HTTP requests answered, by route", labels=labels
        )
        hist: dict[tuple[str, str, str], list[float]] = {}
        for (route, service, method, status), s in list(stats.series.items()):
            req.add_metric([route, service, method, str(status)], s[0])
            h = hist.get((route, service, method))
            if h is None:
                hist[(route, service, method)] = list(s)
            else:
                for i, x in enumerate(s):
                    h[i] += x
        yield req
        lat = HistogramMetricFamily(
            "tribridge_request_duration_seconds",
            "Time from request parsed to response ready, by route",
            labels=["route", "service", "method"],
        )
        for key, h in hist.items():
            acc = 0.0
            buckets = []
            for bound, n in zip([*BOUNDS, float("inf")], h[2:], strict=True):
                acc += n
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), acc))
            lat.add_metric(list(key), buckets, h[1])
        yield lat
        failed = CounterMetricFamily(
            "tribridge_upstream_attempt_failures",
            "Call attempts that got no provider answer (each retry counts), by failure",
            labels=["service", "reason"],
        )
        for (service, code), n in list(stats.attempt_failures.items()):
            failed.add_metric([service, code], n)
        yield failed

        conns = GaugeMetricFamily(
            "tribridge_upstream_connections",
            "Open connections per provider instance",
            labels=["instance"],
        )
        active = GaugeMetricFamily(
            "tribridge_upstream_active_calls",
            "Calls in flight per provider instance",
            labels=["instance"],
        )
        ejected = GaugeMetricFamily(
            "tribridge_upstream_ejected",
            "1 while an instance is ejected after failures",
            labels=["instance"],
        )
        now = time.monotonic()
        for pool in list(gw.pools.pools.values()):
            addr = pool.address
            conns.add_metric([addr], sum(1 for c in pool.conns if not c.closed))
            active.add_metric([addr], pool.active)
            ejected.add_metric([addr], 1 if now < pool.ejected_until else 0)
        yield conns
        yield active
        yield ejected

        eps = GaugeMetricFamily(
            "tribridge_service_endpoints",
            "Provider instances known per service",
            labels=["service", "registry"],
        )
        for name, svc in gw.all_services().items():
            eps.add_metric([name, svc.cfg.registry], len(svc.snapshot.endpoints))
        yield eps

        connected = GaugeMetricFamily(
            "tribridge_registry_connected",
            "1 when the registry is reachable",
            labels=["registry"],
        )
        synced = GaugeMetricFamily(
            "tribridge_registry_last_sync_timestamp_seconds",
            "Unix time of the newest snapshot received from the registry",
            labels=["registry"],
        )
        age = GaugeMetricFamily(
            "tribridge_registry_sync_age_seconds",
            "Seconds since the newest snapshot received from the registry",
            labels=["registry"],
        )
        skipped = CounterMetricFamily(
            "tribridge_registry_records_skipped",
            "Registry records rejected as malformed or hostile (each counted when it appears)",
            labels=["registry", "reason"],
        )
        wall = time.time()
        for name, info in gw.registry_status().items():
            connected.add_metric([name], 1 if info.get("connected", True) else 0)
            rejected = info.get("skipped_records") or {}
            for reason, n in sorted((rejected.get("by_reason") or {}).items()):
                skipped.add_metric([name, reason], n)
            last = info.get("last_sync")
            if last:
                synced.add_metric([name], last)
                age.add_metric([name], max(0.0, wall - last))
        yield connected
        yield synced
        yield age
        yield skipped

        links = GaugeMetricFamily(
            "tribridge_relay_link_up",
            "1 while a relay link is up",
            labels=["link"],
        )
        for name, link in gw.pools.relay_links.items():
            links.add_metric([name], 1 if link.up else 0)
        yield links

        http = GaugeMetricFamily("tribridge_http_connections", "Open client connections")
        http.add_metric([], gw.http.active_connections if gw.http is not None else 0)
        yield http
        refused = CounterMetricFamily(
            "tribridge_connections_refused",
            "Connections closed at accept: the listener's connection cap was reached",
            labels=["listener"],
        )
        refused.add_metric(["http"], gw.http.refused if gw.http is not None else 0)
        rt = gw.relay
        for name, srv in (
            ("dubbo_ingress", rt.ingress if rt is not None else None),
            ("relay", rt.relay_server if rt is not None else None),
        ):
            if srv is not None:
                refused.add_metric([name], srv.refused)
        yield refused

        st = gw.state
        info = GaugeMetricFamily(
            "tribridge_config_info", "The config in force (value 1)", labels=["version"]
        )
        info.add_metric([st.version], 1)
        yield info
        loaded = GaugeMetricFamily(
            "tribridge_config_loaded_timestamp_seconds", "Unix time the config in force was loaded"
        )
        loaded.add_metric([], st.loaded_at)
        yield loaded
        reloads = CounterMetricFamily(
            "tribridge_config_reloads", "Config reload attempts", labels=["result"]
        )
        for result, n in gw.reload_counts.items():
            reloads.add_metric([result], n)
        yield reloads


def make_registry(gw: Any) -> tuple[CollectorRegistry, Callable[[], bytes]]:
    """One registry per gateway (tests run several gateways in one process)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(GatewayCollector(gw))  # type: ignore[arg-type]
    streams = getattr(gw, "streams", None)
    if streams is not None:
        reg.register(streams.collector())
    return reg, lambda: generate_latest(reg)


def subscribe(events: Events, stats: RequestStats) -> None:
    """Count every routed request as it ends (``invoke.events.CallEnded``) and every
    failed attempt (``AttemptFailed``: retries, ejection causes) in ``stats``."""

    def ended(ev: CallEnded) -> None:
        c = ev.ctx
        stats.observe(c.route, c.service, c.method, ev.status, time.perf_counter() - c.started)

    def attempt_failed(ev: AttemptFailed) -> None:
        stats.attempt_failed(ev.service, ev.code)

    events.subscribe(CallEnded, ended)
    events.subscribe(AttemptFailed, attempt_failed)
