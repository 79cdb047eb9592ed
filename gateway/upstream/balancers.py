"""Load balancing over a service's provider instances, as Dubbo's balancers choose.

A balancer picks an index into the usable endpoints; it may read the instances' pools
(``LeastActive`` reads calls in flight), never change them.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from collections.abc import Sequence
from typing import Any

from tribridge.registries.base import Endpoint


class LoadBalancer:
    name = "random"

    def select(self, eps: Sequence[Endpoint], pools: Sequence[Any], hash_key: str | None) -> int:
        raise NotImplementedError


class WeightedRandom(LoadBalancer):
    """Dubbo's default: uniform when weights are equal, else proportional to weight."""

    name = "random"

    def select(
        self, eps: Sequence[Endpoint], pools: Sequence[Any], hash_key: str | None
    ) -> int:
        n = len(eps)
        if n == 1:
            return 0
        w0 = eps[0].weight
        if all(e.weight == w0 for e in eps):
            return random.randrange(n)
        total = sum(e.weight for e in eps)
        if total <= 0:
            return random.randrange(n)
        r = random.random() * total
        acc = 0
        for i, e in enumerate(eps):
            acc += e.weight
            if r < acc:
                return i
        return n - 1


class RoundRobin(LoadBalancer):
    """Smooth weighted round robin (as Dubbo's RoundRobinLoadBalance / nginx)."""

    name = "roundrobin"

    def __init__(self) -> None:
        self.current: dict[str, int] = {}

    def select(
        self, eps: Sequence[Endpoint], pools: Sequence[Any], hash_key: str | None
    ) -> int:
        total = 0
        best, best_cur = 0, None
        for i, e in enumerate(eps):
            w = max(e.weight, 1)
            cur = self.current.get(e.key, 0) + w
            self.current[e.key] = cur
            total += w
            if best_cur is None or cur > best_cur:
                best, best_cur = i, cur
        self.current[eps[best].key] -= total
        return best


class LeastActive(LoadBalancer):
    """Fewest calls in flight; ties broken by weighted random."""

    name = "leastactive"

    def select(
        self, eps: Sequence[Endpoint], pools: Sequence[Any], hash_key: str | None
    ) -> int:
        least = min(p.active for p in pools)
        idx = [i for i, p in enumerate(pools) if p.active == least]
        if len(idx) == 1:
            return idx[0]
        sub = [eps[i] for i in idx]
        return idx[WeightedRandom().select(sub, [pools[i] for i in idx], hash_key)]


class ConsistentHash(LoadBalancer):
    """Ketama ring (160 virtual nodes per instance) over one argument, as Dubbo does."""

    name = "consistenthash"
    replicas = 160

    def __init__(self) -> None:
        self._ring_for: tuple[str, ...] = ()
        self._ring: list[tuple[int, str]] = []
        self._hashes: list[int] = []

    def _build(self, keys: tuple[str, ...]) -> None:
        ring = []
        for k in keys:
            for i in range(self.replicas // 4):
                digest = hashlib.md5(f"{k}{i}".encode()).digest()
                for h in range(4):
                    v = int.from_bytes(digest[h * 4 : h * 4 + 4], "little")
                    ring.append((v, k))
        ring.sort()
        self._ring = ring
        self._hashes = [h for h, _ in ring]
        self._ring_for = keys

    def select(
        self, eps: Sequence[Endpoint], pools: Sequence[Any], hash_key: str | None
    ) -> int:
        keys = tuple(e.key for e in eps)
        if keys != self._ring_for:
            self._build(keys)
        digest = hashlib.md5((hash_key or "").encode()).digest()
        h = int.from_bytes(digest[:4], "little")
        i = bisect.bisect_left(self._hashes, h)
        key = self._ring[i % len(self._ring)][1]
        return keys.index(key)


BALANCERS = {
    "random": WeightedRandom,
    "roundrobin": RoundRobin,
    "leastactive": LeastActive,
    "consistenthash": ConsistentHash,
}


def make_balancer(name: str) -> LoadBalancer:
    try:
        return BALANCERS[name]()
    except KeyError:
        raise ValueError(
            f"unknown load balancer {name!r}; expected one of {', '.join(BALANCERS)}"
        ) from None
