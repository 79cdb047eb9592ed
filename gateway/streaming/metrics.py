"""Per-stream counters for Prometheus: streams open now, streams ended by kind, format and
outcome, messages each way, stream durations. Read at scrape time by ``collector()``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from tribridge.streaming.pumps import StreamState

BOUNDS = (0.1, 1.0, 10.0, 60.0, 300.0, 1800.0)
#: distinct (kind, format, outcome) series kept; bounded: the labels come from small sets
_MAX_SERIES = 256


def outcome(st: StreamState) -> str:
    if st.cancelled and st.grpc_code is None:
        return "cancelled"
    if st.grpc_code == 0:
        return "ok"
    return "error"


class StreamStats:
    def __init__(self) -> None:
        self.active = 0
        self.ended: dict[tuple[str, str, str], list[float]] = {}
        self.messages = {"out": 0, "in": 0}

    def opened(self, st: StreamState) -> None:
        self.active += 1

    def closed(self, st: StreamState, seconds: float) -> None:
        self.active -= 1
        self.messages["out"] += st.messages_out
        self.messages["in"] += st.messages_in
        key = (st.kind, st.fmt, outcome(st))
        s = self.ended.get(key)
        if s is None:
            if len(self.ended) >= _MAX_SERIES:
                return
            s = self.ended[key] = [0.0, 0.0] + [0.0] * (len(BOUNDS) + 1)
        s[0] += 1
        s[1] += seconds
        for i, b in enumerate(BOUNDS):
            if seconds <= b:
                s[2 + i] += 1
                break
        else:
            s[-1] += 1

    def collector(self) -> Any:
        return _Collector(self)


class _Collector:
    def __init__(self, stats: StreamStats) -> None:
        self.stats = stats

    def describe(self) -> Iterable[Any]:
        return []

    def collect(self) -> Iterable[Any]:
        s = self.stats
        yield GaugeMetricFamily("tribridge_streams_active", "Streams open now", value=s.active)
        total = CounterMetricFamily(
            "tribridge_streams", "Streams ended", labels=["kind", "format", "outcome"]
        )
        dur = HistogramMetricFamily(
            "tribridge_stream_duration_seconds",
            "Stream lifetimes",
            labels=["kind", "format", "outcome"],
        )
        for key, v in list(s.ended.items()):
            total.add_metric(list(key), v[0])
            acc = 0.0
            buckets = []
            for bound, n in zip([*BOUNDS, float("inf")], v[2:], strict=True):
                acc += n
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), acc))
            dur.add_metric(list(key), buckets, v[1])
        yield total
        yield dur
        msgs = CounterMetricFamily(
            "tribridge_stream_messages", "Stream messages relayed", labels=["direction"]
        )
        for d, n in s.messages.items():
            msgs.add_metric([d], n)
        yield msgs
