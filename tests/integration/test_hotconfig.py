"""Hot config: routes and services change under load with no failed request and no dropped
connection (client keep-alive or provider); invalid config is rejected with its location."""

from __future__ import annotations

import http.client
import threading
import time
from pathlib import Path

import orjson
import pytest
import yaml
from tribridge.cli.commands import DEMO_SERVICE as S
from tribridge.config.model import ConfigError, parse_config
from tribridge.interop.testing import BackgroundLoop, http_request
from tribridge.ops import heap


@pytest.fixture(scope="module")
def providers(bg: BackgroundLoop):  # type: ignore[no-untyped-def]
    return bg.start_provider(version="1.0.0"), bg.start_provider(version="2.0.0")


def config(
    p1: int, p2: int, *, version: str = "1.0.0", add: bool = False, users: bool = True
) -> str:
    routes = [
        {
            "method": "GET",
            "path": "/hello/{name}",
            "service": S,
            "call": "greet",
            "params": [{"from": "path", "name": "name", "type": "java.lang.String"}],
        }
    ]
    if add:
        routes.append(
            {
                "method": "GET",
                "path": "/add",
                "service": S,
                "call": "add",
                "params": [
                    {"from": "query", "name": "a", "type": "int"},
                    {"from": "query", "name": "b", "type": "int"},
                ],
            }
        )
    if users:
        routes.append(
            {
                "method": "GET",
                "path": "/users/{id}",
                "service": S,
                "call": "getUser",
                "params": [{"from": "path", "name": "id", "type": "long"}],
            }
        )
    doc = {
        "listen": {"host": "127.0.0.1", "port": 0},
        "admin": {"token": ADMIN_TOKEN},
        "reload": {"interval": "100ms"},
        "registries": {
            "static": {
                "type": "static",
                "services": {S: [f"127.0.0.1:{p1}?version=1.0.0", f"127.0.0.1:{p2}?version=2.0.0"]},
            }
        },
        "services": [
            {"interface": S, "version": version, "methods": {"greet": ["String"], "add": "II", "getUser": "J"}}
        ],
        "routes": routes,
    }
    return yaml.safe_dump(doc, sort_keys=False)


ADMIN_TOKEN = "hotconfig-test-admin-token"


def admin_put(port: int, text: str) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(
            "PUT", "/config", body=text.encode(), headers={"authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        r = conn.getresponse()
        return r.status, orjson.loads(r.read())
    finally:
        conn.close()


class Load:
    """Clients on keep-alive connections, each in a bounded loop of GET /hello/..."""

    def __init__(self, port: int, clients: int = 4, max_requests: int = 20_000) -> None:
        self.port = port
        self.stop = threading.Event()
        self.ok = 0
        self.failures: list[str] = []
        self.reconnects = 0
        self.max_requests = max_requests
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(clients)]
        self.lock = threading.Lock()

    def _run(self, i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        sock = None
        n = 0
        try:
            while not self.stop.is_set() and n < self.max_requests:
                n += 1
                try:
                    conn.request("GET", f"/hello/c{i}")
                    r = conn.getresponse()
                    body = r.read()
                except (OSError, http.client.HTTPException) as e:
                    with self.lock:
                        self.failures.append(f"client {i}: {type(e).__name__}: {e}")
                    conn.close()
                    continue
                if sock is None:
                    sock = conn.sock
                elif conn.sock is not sock:
                    with self.lock:
                        self.reconnects += 1
                    sock = conn.sock
                with self.lock:
                    if r.status == 200 and orjson.loads(body) == f"Hello, c{i}":
                        self.ok += 1
                    else:
                        self.failures.append(f"client {i}: {r.status} {body[:200]!r}")
        finally:
            conn.close()

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)


def test_reload_under_load(bg: BackgroundLoop, providers) -> None:  # type: ignore[no-untyped-def]
    p1, p2 = providers
    gw = bg.start_gateway(config(p1.port, p2.port), admin_port=0)
    port, admin = gw.port, gw.admin.port
    assert http_request(port, "GET", "/hello/a") == (200, "Hello, a")
    pool1 = gw.pools.pools[("127.0.0.1", p1.port, "")]
    conn1 = pool1.conns[0]
    svc_before = gw.state.services[S]
    assert http_request(port, "GET", "/add?a=1&b=2")[0] == 404

    with Load(port) as load:
        time.sleep(0.3)
        # 1. a route added: the service is unchanged, so its Service object is kept
        st, body = admin_put(admin, config(p1.port, p2.port, add=True))
        assert st == 200 and body["warnings"] == [], body
        assert gw.state.services[S] is svc_before
        assert http_request(port, "GET", "/add?a=2&b=40") == (200, 42)
        time.sleep(0.3)
        # 2. a route removed
        st, _ = admin_put(admin, config(p1.port, p2.port, add=True, users=False))
        assert st == 200
        assert http_request(port, "GET", "/users/7")[0] == 404
        time.sleep(0.3)
        # 3. an invalid config: rejected with file/line/path, the old one stays
        bad = config(p1.port, p2.port, add=True).replace("loadbalance", "x")
        bad = bad.replace(
            "version: 1.0.0\n  methods", "version: 1.0.0\n  loadbalance: bogus\n  methods"
        )
        st, body = admin_put(admin, bad)
        assert st == 400 and body["error"]["code"] == "invalid_config"
        assert "<PUT /config>:" in body["error"]["message"]
        assert "services[0].loadbalance" in body["error"]["message"]
        assert http_request(port, "GET", "/add?a=2&b=40") == (200, 42)
        time.sleep(0.3)
        # 4. the service version changes: calls move to the 2.0.0 provider
        calls2 = p2.calls
        st, _ = admin_put(admin, config(p1.port, p2.port, version="2.0.0", add=True))
        assert st == 200
        assert gw.state.services[S] is not svc_before
        time.sleep(0.5)
        assert p2.calls > calls2 + 10
        # 5. back to 1.0.0 with the users route again
        st, _ = admin_put(admin, config(p1.port, p2.port, users=True))
        assert st == 200
        assert http_request(port, "GET", "/users/7")[0] == 200
        time.sleep(0.3)

    assert load.failures == [], load.failures[:5]
    assert load.reconnects == 0
    assert load.ok > 100, load.ok
    print("requests during reloads:", load.ok)
    # the provider connection of before is the one in use now
    assert pool1.conns[0] is conn1 and not conn1.closed
    assert gw.reload_counts["ok"] == 4 and gw.reload_counts["rejected"] == 1
    # listen address changes are refused with a clear warning
    moved = config(p1.port, p2.port).replace("port: 0", "port: 1")
    st, body = admin_put(admin, moved)
    assert st == 200 and "needs a restart" in body["warnings"][0]
    assert gw.cfg.port == 0


def test_file_watch_and_located_errors(bg: BackgroundLoop, providers, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    p1, p2 = providers
    path = tmp_path / "gw.yaml"
    path.write_text(config(p1.port, p2.port))
    gw = bg.start_gateway(path.read_text(), watch=str(path))
    v0 = gw.state.version
    assert http_request(gw.port, "GET", "/add?a=1&b=2")[0] == 404
    path.write_text(config(p1.port, p2.port, add=True))
    deadline = time.monotonic() + 5
    while gw.state.version == v0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gw.state.version != v0
    assert http_request(gw.port, "GET", "/add?a=1&b=2") == (200, 3)
    v1 = gw.state.version
    # a broken file: logged, counted, old config kept, error located
    path.write_text(config(p1.port, p2.port) + "routes: [\n")
    deadline = time.monotonic() + 5
    while gw.watcher.last_error is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gw.watcher.last_error is not None and str(path) in gw.watcher.last_error
    assert gw.state.version == v1
    assert http_request(gw.port, "GET", "/add?a=1&b=2") == (200, 3)


def test_file_watch_reloads_under_load(bg: BackgroundLoop, providers, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The watched file rewritten (and once broken) while clients keep their connections
    busy: every request answered correctly, none of their connections dropped."""
    p1, p2 = providers
    path = tmp_path / "gw.yaml"
    path.write_text(config(p1.port, p2.port))
    gw = bg.start_gateway(path.read_text(), watch=str(path))

    def rewrite(text: str) -> None:
        v, err = gw.state.version, gw.watcher.last_error
        path.write_text(text)
        deadline = time.monotonic() + 5
        while gw.state.version == v and gw.watcher.last_error == err:
            assert time.monotonic() < deadline, "the watcher did not react"
            time.sleep(0.02)

    with Load(gw.port) as load:
        time.sleep(0.3)
        for i in range(6):
            rewrite(config(p1.port, p2.port, add=i % 2 == 0))
            time.sleep(0.2)
        rewrite(config(p1.port, p2.port) + "routes: [\n")  # broken: old config kept
        assert gw.watcher.last_error is not None
        time.sleep(0.3)
    assert load.failures == [], load.failures[:5]
    assert load.reconnects == 0
    assert load.ok > 100, load.ok
    assert gw.reload_counts["ok"] >= 6


def test_changed_registry_is_replaced_and_old_released(bg: BackgroundLoop, providers) -> None:  # type: ignore[no-untyped-def]
    p1, p2 = providers
    text = config(p1.port, p2.port)
    gw = bg.start_gateway(text)
    reg0, svc0 = gw.state.registries["static"], gw.state.services[S]
    unsubscribed: list[object] = []
    reg0.unsubscribe = lambda key, listener: unsubscribed.append(listener)  # type: ignore[method-assign]
    # the same text again: nothing rebuilt
    bg.run(gw.reload(parse_config(text, "<same>")))
    assert gw.state.registries["static"] is reg0 and gw.state.services[S] is svc0
    # the registry's provider list changes: a new registry, the service re-subscribed to it
    moved = text.replace(f"127.0.0.1:{p1.port}?version=1.0.0", f"localhost:{p1.port}?version=1.0.0")
    bg.run(gw.reload(parse_config(moved, "<moved>")))
    reg1, svc1 = gw.state.registries["static"], gw.state.services[S]
    assert reg1 is not reg0 and svc1 is not svc0
    assert unsubscribed == [svc0.update]  # the old subscription released after the swap
    assert [e.host for e in svc1.snapshot.endpoints] == ["localhost"]
    assert http_request(gw.port, "GET", "/hello/r") == (200, "Hello, r")
    # a config naming an unknown registry is rejected with its location; nothing changes
    broken = moved.replace("  methods:", "  registry: nope\n  methods:", 1)
    with pytest.raises(ConfigError, match=r"<bad>:\d+:\d+: services\[0\]\.registry"):
        bg.run(gw.reload(parse_config(broken, "<bad>")))
    assert gw.state.registries["static"] is reg1


def test_security_changes_apply_on_reload(bg: BackgroundLoop, providers) -> None:  # type: ignore[no-untyped-def]
    """A rate limit added by a reload is enforced; the same limits again keep the guard
    (and its buckets); removing them removes the guard."""
    p1, p2 = providers
    text = config(p1.port, p2.port)
    gw = bg.start_gateway(text)
    assert gw.state.guard is None
    limited = text + (
        "security:\n  rate_limits:\n"
        f"    - {{name: hello, service: {S}, per: route, rate: 1/m, burst: 2}}\n"
    )
    bg.run(gw.reload(parse_config(limited, "<limited>")))
    guard = gw.state.guard
    assert guard is not None
    statuses = [http_request(gw.port, "GET", f"/hello/{i}")[0] for i in range(4)]
    assert statuses == [200, 200, 429, 429]
    bg.run(gw.reload(parse_config(limited + "\n", "<same limits>")))
    assert gw.state.guard is guard
    assert http_request(gw.port, "GET", "/hello/x")[0] == 429  # buckets kept
    bg.run(gw.reload(parse_config(text, "<open>")))
    assert gw.state.guard is None
    assert http_request(gw.port, "GET", "/hello/x") == (200, "Hello, x")


def test_watcher_never_applies_a_file_caught_mid_write(
    bg: BackgroundLoop, providers, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """An editor truncates, then writes: the empty file in between (valid YAML: no routes)
    is never applied, and a file that changes while it is read is read again."""
    from tribridge.ops import hotconfig

    p1, p2 = providers
    path = tmp_path / "gw.yaml"
    text = config(p1.port, p2.port).replace("interval: 100ms", "watch: false")
    path.write_text(text)
    gw = bg.start_gateway(text, watch=str(path))
    v0 = gw.state.version
    path.write_text("")
    assert bg.run(gw.watcher.check(forced=True)) == "unchanged"
    assert gw.state.version == v0 and http_request(gw.port, "GET", "/hello/a")[0] == 200

    new = config(p1.port, p2.port, add=True).replace("interval: 100ms", "watch: false")
    real_read = hotconfig._read
    reads: list[str] = []

    def read_while_written(p: str) -> str:
        got = real_read(p)
        reads.append(got)
        if len(reads) == 1:  # the writer finishes just after this read
            path.write_text(new + "# grown\n")
        return got

    path.write_text(new[: len(new) // 2].rsplit("\n", 2)[0] + "\n")
    monkeypatch.setattr(hotconfig, "_read", read_while_written)
    assert bg.run(gw.watcher.check(forced=True)) == "ok"
    assert len(reads) == 2 and reads[-1].endswith("# grown\n")
    assert http_request(gw.port, "GET", "/add?a=2&b=40") == (200, 42)


def test_a_reload_settles_the_heap_again_only_in_a_settled_process(  # type: ignore[no-untyped-def]
    bg: BackgroundLoop, providers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``tribridge run`` freezes its heap once started (ops/heap.py); a reload must settle
    it again (frozen state it replaced is otherwise never collected), and a gateway embedded
    in a process that never froze (this one) must leave its collector alone."""
    p1, p2 = providers
    text = config(p1.port, p2.port)
    gw = bg.start_gateway(text)
    settled: list[bool] = []
    monkeypatch.setattr(heap, "settle", lambda: settled.append(True))
    moved = text.replace(f"127.0.0.1:{p1.port}?version=1.0.0", f"localhost:{p1.port}?version=1.0.0")
    bg.run(gw.reload(parse_config(moved, "<moved>")))
    assert settled == []  # not frozen: untouched
    monkeypatch.setattr(heap, "frozen", lambda: True)
    bg.run(gw.reload(parse_config(text, "<back>")))
    assert settled == [True]
    broken = text.replace("  methods:", "  registry: nope\n  methods:", 1)
    with pytest.raises(ConfigError):
        bg.run(gw.reload(parse_config(broken, "<bad>")))
    assert settled == [True]  # a rejected config replaced nothing
