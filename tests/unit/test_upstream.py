"""Load balancers, outlier ejection and provider events on the upstream side."""

from __future__ import annotations

import asyncio
import collections
import random

from tribridge.codecs.dubbo import encode_event, encode_heartbeat
from tribridge.config.upstream import UpstreamSettings
from tribridge.registries.base import Endpoint
from tribridge.upstream.balancers import ConsistentHash, LeastActive, RoundRobin, WeightedRandom
from tribridge.upstream.pool import DubboConnection, InstancePool

EPS = [Endpoint("10.0.0.1", 1, weight=100), Endpoint("10.0.0.2", 1, weight=300)]
S = UpstreamSettings()


def pools() -> list[InstancePool]:
    return [InstancePool(e.host, e.port, S) for e in EPS]


def test_weighted_random_follows_weights() -> None:
    random.seed(1)
    lb, ps = WeightedRandom(), pools()
    counts = collections.Counter(lb.select(EPS, ps, None) for _ in range(8000))
    assert 0.22 < counts[0] / 8000 < 0.28


def test_smooth_round_robin_is_exact_and_interleaved() -> None:
    lb, ps = RoundRobin(), pools()
    picks = [lb.select(EPS, ps, None) for _ in range(8)]
    assert picks.count(0) == 2 and picks.count(1) == 6
    assert picks[:4] == picks[4:] and 0 in picks[:4]  # smooth: one low-weight pick per cycle


def test_least_active_prefers_idle_instance() -> None:
    lb, ps = LeastActive(), pools()
    ps[1].active = 5
    assert all(lb.select(EPS, ps, None) == 0 for _ in range(20))


def test_consistent_hash_is_stable_and_spreads() -> None:
    lb, ps = ConsistentHash(), pools()
    first = {k: lb.select(EPS, ps, k) for k in map(str, range(200))}
    assert first == {k: lb.select(EPS, ps, k) for k in map(str, range(200))}
    assert 40 < sum(first.values()) < 160  # both instances get keys


def test_ejection_after_consecutive_failures() -> None:
    pool = InstancePool("127.0.0.1", 1, UpstreamSettings(eject_after=3, eject_seconds=30))
    import time

    now = time.monotonic()
    pool.record_failure()
    pool.record_failure()
    assert pool.available(now)
    pool.record_failure()
    assert not pool.available(time.monotonic())
    pool.record_success()
    assert pool.failures == 0


async def test_readonly_event_and_heartbeat_from_provider() -> None:
    loop = asyncio.get_running_loop()
    conn = DubboConnection(loop, S)

    class T:
        written: list[bytes] = []

        def write(self, b: bytes) -> None:
            self.written.append(b)

        def close(self) -> None: ...

        def set_write_buffer_limits(self, high: int) -> None: ...

    t = T()
    conn.connection_made(t)  # type: ignore[arg-type]
    conn.data_received(encode_heartbeat(9))
    assert t.written and t.written[0][2] == 0x22 and t.written[0][4:12] == (9).to_bytes(8, "big")
    assert conn.usable
    conn.data_received(encode_event(10, "R"))
    assert conn.readonly and not conn.usable
    conn.data_received(encode_event(11, "W"))
    assert not conn.readonly
    conn.connection_lost(None)


async def test_pool_readonly_follows_its_connections_without_scanning() -> None:
    """``InstancePool.readonly`` is asked per request, so it reads a count the connections
    keep; it must say what a scan would: conns exist and none is open and writable."""
    loop = asyncio.get_running_loop()
    pool = InstancePool("10.0.0.1", 1, S)

    class T:
        def write(self, b: bytes) -> None: ...

        def close(self) -> None: ...

        def set_write_buffer_limits(self, high: int) -> None: ...

    def scan() -> bool:
        return bool(pool.conns) and all(c.readonly for c in pool.conns if not c.closed)

    a, b = DubboConnection(loop, S), DubboConnection(loop, S)
    for c in (a, b):
        c.connection_made(T())  # type: ignore[arg-type]
        pool.adopt(c)
    assert not pool.readonly and not scan()
    a.data_received(encode_event(1, "R"))
    a.data_received(encode_event(2, "R"))  # repeated: counted once
    assert not pool.readonly and not scan()
    b.data_received(encode_event(3, "R"))
    assert pool.readonly and scan()
    a.data_received(encode_event(4, "W"))
    assert not pool.readonly and not scan()
    a.connection_lost(None)
    assert pool.readonly == scan() is True  # only b is open, and it is READONLY
    a.data_received(encode_event(5, "W"))  # a closed connection stays out of the count
    assert pool.readonly and scan()
    b.data_received(encode_event(6, "W"))
    assert not pool.readonly and not scan()
    pool.close()
    assert pool.writable == 0 and not pool.readonly
    b.connection_lost(None)  # after the pool let go: no count to change
    assert pool.writable == 0
