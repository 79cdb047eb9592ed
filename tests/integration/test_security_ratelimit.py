"""Rate limits: token buckets per route, per consumer (API key / JWT sub) and per client IP;
over the limit is 429 with Retry-After and the provider sees nothing."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

import pytest
from tribridge.cli.commands import DEMO_SERVICE as S
from tribridge.cli.commands import demo_config
from tribridge.config.model import ConfigError, parse_config
from tribridge.security.ratelimit import TokenBuckets, parse_rate, retry_after


def test_bucket_refills_at_its_rate() -> None:
    b = TokenBuckets(rate=1.0, burst=3)
    assert [b.take("k", now=100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.take("k", now=100.0) == pytest.approx(1.0)
    assert b.take("k", now=100.5) == pytest.approx(0.5)
    assert b.take("k", now=101.0) == 0.0
    assert b.take("other", now=101.0) == 0.0  # buckets are per key
    assert b.take("k", now=1000.0) == 0.0  # saved tokens are capped at burst
    assert [b.take("k", now=1000.0) for _ in range(3)] == [0.0, 0.0, pytest.approx(1.0)]


def test_bucket_map_is_bounded() -> None:
    b = TokenBuckets(rate=1.0, burst=1, max_keys=100)
    for i in range(10_000):
        b.take(f"ip-{i}", now=0.0)
    assert len(b.buckets) == 100


def test_parse_rate_and_retry_after() -> None:
    assert parse_rate("100/s") == 100 and parse_rate("60/m") == 1 and parse_rate("7200/h") == 2
    assert parse_rate(5) == 5
    for bad in ("x/s", "1/fortnight", "0/s", "-1/s"):
        with pytest.raises(ValueError):
            parse_rate(bad)
    assert retry_after(0.01) == "1" and retry_after(2.2) == "3"


@pytest.fixture(scope="module")
def gw(bg, provider) -> int:  # type: ignore[no-untyped-def]
    sec = """
security:
  auth:
    keys: {type: api_key, keys: [{id: a, key: key-a}, {id: b, key: key-b}]}
  access:
    - {method: echoObject, auth: [keys]}
    - {method: echoMap, auth: [keys]}
  rate_limits:
    - {name: add-route, method: add, per: route, rate: 1/m, burst: 2}
    - {name: per-consumer, method: echoObject, per: consumer, rate: 1/m, burst: 1}
    - {name: per-ip, method: addLong, per: ip, rate: 1/m, burst: 1}
    - {name: ip-auth, method: echoMap, per: ip, rate: 1/m, burst: 1}
"""
    return bg.start_gateway(demo_config(provider.port, 0) + sec).port


def post(gw: int, method: str, args: object, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    c = http.client.HTTPConnection("127.0.0.1", gw, timeout=5)
    try:
        c.request("POST", f"/{S}/{method}", body=json.dumps(args), headers=headers or {})
        r = c.getresponse()
        return r.status, json.loads(r.read()), r.headers
    finally:
        c.close()


def limited(provider, gw: int, method: str, args: object, rule: str, headers=None) -> None:  # type: ignore[no-untyped-def]
    before = provider.requests
    st, doc, h = post(gw, method, args, headers)
    assert st == 429, doc
    assert doc["error"]["code"] == "rate_limited" and doc["error"]["rule"] == rule
    assert int(h["retry-after"]) >= 1
    assert provider.requests == before


def test_per_route(gw, provider) -> None:  # type: ignore[no-untyped-def]
    assert post(gw, "add", [1, 1])[0] == 200
    assert post(gw, "add", [1, 2])[0] == 200
    limited(provider, gw, "add", [1, 3], "add-route")
    assert post(gw, "greet", ["still fine"])[0] == 200  # other routes unaffected


def test_per_consumer(gw, provider) -> None:  # type: ignore[no-untyped-def]
    assert post(gw, "echoObject", [1], {"x-api-key": "key-a"})[0] == 200
    limited(provider, gw, "echoObject", [2], "per-consumer", {"x-api-key": "key-a"})
    assert post(gw, "echoObject", [3], {"x-api-key": "key-b"})[0] == 200  # b has its own bucket
    # authentication still comes first for consumer limits: a bad key is 401, not 429
    assert post(gw, "echoObject", [4], {"x-api-key": "bad"})[0] == 401


def test_per_ip(gw, provider) -> None:  # type: ignore[no-untyped-def]
    assert post(gw, "addLong", [1, 2])[0] == 200
    limited(provider, gw, "addLong", [1, 2], "per-ip")


def test_per_ip_applies_before_authentication(gw, provider) -> None:  # type: ignore[no-untyped-def]
    assert post(gw, "echoMap", [{}], {"x-api-key": "bad"})[0] == 401
    # the failed attempt used the IP's token: even a good key is now throttled
    limited(provider, gw, "echoMap", [{}], "ip-auth", {"x-api-key": "key-a"})


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("security: {rate_limits: [{per: route}]}", r"security.rate_limits\[0\]: missing required key 'rate'"),
        ("security: {rate_limits: [{rate: 1/fortnight}]}", r"security.rate_limits\[0\].rate: bad rate"),
        ("security: {rate_limits: [{rate: 1/s, per: planet}]}", r"per: expected route, consumer or ip"),
        ("security: {rate_limits: [{rate: 1/s, burst: 0}]}", r"burst: expected at least 1"),
    ],
)
def test_config_errors(text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_config(text)


# ---- global limits in a real Redis ----------------------------------------------------------


@pytest.fixture(scope="module")
def redis_port() -> Iterator[int]:
    import shutil
    import socket
    import subprocess
    import time

    from tests.conftest import free_port

    exe = shutil.which("redis-server")
    assert exe, "redis-server is not installed (scripts/setup.sh installs Debian's redis-server)"
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert proc.poll() is None, "redis-server exited at start"
                assert time.monotonic() < deadline, "redis-server did not listen within 10 s"
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def redis_limit(port: int, name: str = "global-add") -> str:
    return f"""
security:
  rate_limits:
    - {{name: {name}, method: add, per: route, rate: 1/m, burst: 2,
       redis: "redis://127.0.0.1:{port}/0"}}
"""


def test_redis_limit_is_shared_by_gateways(bg, provider, redis_port) -> None:  # type: ignore[no-untyped-def]
    import redis

    a = bg.start_gateway(demo_config(provider.port, 0) + redis_limit(redis_port)).port
    b = bg.start_gateway(demo_config(provider.port, 0) + redis_limit(redis_port)).port
    assert post(a, "add", [1, 1])[0] == 200
    assert post(b, "add", [1, 1])[0] == 200
    limited(provider, a, "add", [1, 1], "global-add")
    limited(provider, b, "add", [1, 1], "global-add")
    r = redis.Redis(port=redis_port)
    key = f"tribridge:rl:global-add:{S}#add"
    assert r.exists(key) and 0 < r.pttl(key) <= 121_000
    r.close()


def test_redis_down_falls_back_to_the_local_bucket(bg, provider) -> None:  # type: ignore[no-untyped-def]
    import time

    from tests.conftest import free_port

    g = bg.start_gateway(demo_config(provider.port, 0) + redis_limit(free_port(), "fallback")).port
    t0 = time.monotonic()
    assert post(g, "add", [1, 1])[0] == 200
    assert post(g, "add", [1, 1])[0] == 200
    limited(provider, g, "add", [1, 1], "fallback")
    assert time.monotonic() - t0 < 5


def test_redis_url_is_checked() -> None:
    with pytest.raises(ConfigError, match=r"security.rate_limits\[0\].redis: expected a redis:// URL"):
        parse_config("security: {rate_limits: [{rate: 1/s, redis: 'http://x'}]}")
