"""Token buckets: per route and per consumer (API key id, JWT ``sub``, or client IP).

Local to one gateway process. Buckets are created on first use and kept in a bounded LRU
map, so a flood of distinct identities (spoofed keys, many IPs) costs bounded memory: an
evicted bucket just starts full again, which errs on the side of letting traffic through
rather than on growing without bound.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(slots=True)
class Bucket:
    tokens: float
    stamp: float


class TokenBuckets:
    """Many buckets of one rate: ``rate`` tokens a second, at most ``burst`` saved."""

    def __init__(self, rate: float, burst: float, max_keys: int = 100_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self.buckets: OrderedDict[str, Bucket] = OrderedDict()

    def take(self, key: str, now: float | None = None) -> float:
        """Take one token: 0.0 when allowed, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        b = self.buckets.get(key)
        if b is None:
            b = Bucket(self.burst, now)
            self.buckets[key] = b
            if len(self.buckets) > self.max_keys:
                self.buckets.popitem(last=False)
        else:
            self.buckets.move_to_end(key)
            b.tokens = min(self.burst, b.tokens + (now - b.stamp) * self.rate)
            b.stamp = now
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return 0.0
        return (1.0 - b.tokens) / self.rate


def retry_after(wait: float) -> str:
    """Retry-After wants whole seconds; never say 0 when a client must wait."""
    return str(max(1, math.ceil(wait)))


def parse_rate(text: str) -> float:
    """``100/s``, ``6000/m``, ``10/h`` or a bare number per second -> tokens per second."""
    s = str(text).strip().replace(" ", "")
    num, _, unit = s.partition("/")
    per = {"": 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}.get(unit)
    if per is None:
        raise ValueError(f"bad rate {text!r}: expected N/s, N/m or N/h")
    n = float(num)
    if not n > 0:
        raise ValueError(f"bad rate {text!r}: must be positive")
    return n / per


# Atomic token bucket in Redis: the clock is the server's (TIME), so gateways on different
# hosts share one notion of "now"; idle keys expire once they would be full again.
_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local v = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(v[1]) or burst
local stamp = tonumber(v[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisBuckets:
    """Token buckets shared by every gateway using the same Redis (a global limit).

    When Redis cannot be reached in ``timeout`` the local bucket of the same rate decides
    (fail open to the per-process limit, never to no limit, never to an outage).
    """

    def __init__(
        self, url: str, rate: float, burst: float, prefix: str, timeout: float = 0.25,
        max_keys: int = 100_000,
    ) -> None:
        import redis.asyncio as aioredis

        self.url = url
        self.rate = rate
        self.burst = burst
        self.prefix = prefix
        self.timeout = timeout
        self.local = TokenBuckets(rate, burst, max_keys)
        self.client = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self.script = self.client.register_script(_LUA)
        self.fallbacks = 0

    async def close(self) -> None:
        await self.client.aclose()

    async def take(self, key: str) -> float:
        import asyncio

        try:
            res = await asyncio.wait_for(
                self.script(keys=[f"{self.prefix}{key}"], args=[self.rate, self.burst]),
                self.timeout,
            )
            return float(res)
        except Exception as e:  # connection refused, timeout, script error
            self.fallbacks += 1
            if self.fallbacks in (1, 100) or self.fallbacks % 10_000 == 0:
                import logging

                logging.getLogger("tribridge.ratelimit").warning(
                    "redis rate limit %s unavailable (%s); using the local bucket", self.url, e
                )
            return self.local.take(key)
