"""The admin API is safe by default (issue 21 item 3; docs/security.md "Admin API").

Each protection has a test that fails when it is removed: mutations without configured
credentials (403), without or with a wrong token (401), a DNS-rebinding Host (403), a
cross-site Origin / Sec-Fetch-Site (403), an oversize body (413), a YAML alias bomb
(refused at once, in bounded memory, from the admin API and from the config file), and a
big config parsed off the event loop while the data plane keeps answering.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from tribridge.cli.commands import demo_config
from tribridge.config.model import ConfigError, load_config, parse_config
from tribridge.interop.certs import make_pki
from tribridge.interop.testing import BackgroundLoop

TOKEN = "admin-test-token-0123456789"
TRIBRIDGE = str(Path(sys.executable).with_name("tribridge"))

#: the classic "billion laughs": 9 levels of 9 aliases, about 390 million strings if expanded
ALIAS_BOMB = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [
        f"{c}: &{c} [{','.join(['*' + p] * 9)}]"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    ]
)


def admin_call(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    host: str | None = None,
) -> tuple[int, dict[str, str], Any]:
    """(status, response headers, JSON body); ``host`` replaces the Host header."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host if host is not None else f"127.0.0.1:{port}")
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        raw = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        try:
            return r.status, hdrs, orjson.loads(raw)
        except orjson.JSONDecodeError:
            return r.status, hdrs, raw
    finally:
        conn.close()


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def config_text(provider_port: int, **admin: Any) -> str:
    doc = yaml.safe_load(demo_config(provider_port, 0))
    doc["access_log"] = False
    if admin:
        doc["admin"] = admin
    return yaml.safe_dump(doc, sort_keys=False)


@pytest.fixture(scope="module")
def gw(bg: BackgroundLoop, provider: Any) -> Any:
    """Admin API with a token, a small body limit and one extra allowed host name."""
    text = config_text(
        provider.port, token=TOKEN, max_body_bytes=64 * 1024, allowed_hosts=["admin.internal"]
    )
    return start(bg, text)


@pytest.fixture(scope="module")
def gw_open(bg: BackgroundLoop, provider: Any) -> Any:
    """Admin API with no credentials configured at all (the default)."""
    env = os.environ.pop("TRIBRIDGE_ADMIN_TOKEN", None)
    try:
        return start(bg, config_text(provider.port))
    finally:
        if env is not None:
            os.environ["TRIBRIDGE_ADMIN_TOKEN"] = env


def gw_text(gw: Any) -> bytes:
    """The config ``gw`` was started with: PUT back, it changes nothing."""
    return gw.test_text.encode()


def start(bg: BackgroundLoop, text: str) -> Any:
    g = bg.start_gateway(text, admin_port=0)
    g.test_text = text
    return g


# ----------------------------------------------------------------------------- credentials


@pytest.mark.parametrize("method", ["PUT", "POST", "PATCH", "DELETE", "OPTIONS"])
def test_without_configured_credentials_every_mutation_is_refused(gw_open, method: str) -> None:  # type: ignore[no-untyped-def]
    version = gw_open.state.version
    st, _, doc = admin_call(gw_open.admin.port, method, "/config", gw_text(gw_open), bearer())
    assert st == 403 and doc["error"]["code"] == "admin_mutations_disabled", doc
    assert "TRIBRIDGE_ADMIN_TOKEN" in doc["error"]["message"]
    assert gw_open.state.version == version and gw_open.reload_counts["ok"] == 0


def test_reads_stay_open_and_never_show_the_token(gw) -> None:  # type: ignore[no-untyped-def]
    for page in ("/config", "/routes", "/services", "/registries", "/counters", "/metrics"):
        st, _, doc = admin_call(gw.admin.port, "GET", page)
        assert st == 200, page
        assert TOKEN not in (doc if isinstance(doc, bytes) else orjson.dumps(doc)).decode()
    assert admin_call(gw.admin.port, "GET", "/config")[2]["admin_mutations"] == "token"
    assert TOKEN not in repr(gw.cfg)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"X-Admin-Token": TOKEN},
    ],
    ids=["none", "empty", "wrong", "prefix", "longer", "basic", "no-scheme", "other-header"],
)
def test_missing_or_wrong_token_is_401(gw, headers: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    ok = gw.reload_counts["ok"]
    st, hdrs, doc = admin_call(gw.admin.port, "PUT", "/config", gw_text(gw), headers)
    assert st == 401 and doc["error"]["code"] == "unauthenticated", doc
    assert hdrs["www-authenticate"].startswith("Bearer")
    assert gw.reload_counts["ok"] == ok


def test_right_token_applies_the_config(gw) -> None:  # type: ignore[no-untyped-def]
    st, _, doc = admin_call(gw.admin.port, "PUT", "/config", gw_text(gw), bearer())
    assert st == 200 and doc["warnings"] == [], doc
    st, _, doc = admin_call(gw.admin.port, "PUT", "/config", gw_text(gw), bearer(f"  {TOKEN} "))
    assert st == 200, doc


def test_a_reload_cannot_change_the_token(gw) -> None:  # type: ignore[no-untyped-def]
    doc = yaml.safe_load(gw_text(gw))
    doc["admin"]["token"] = "a-new-token-from-a-put-0123"
    body = yaml.safe_dump(doc).encode()
    st, _, out = admin_call(gw.admin.port, "PUT", "/config", body, bearer())
    assert st == 200 and "restart" in out["warnings"][0]
    st, _, _ = admin_call(
        gw.admin.port, "PUT", "/config", gw_text(gw), bearer(doc["admin"]["token"])
    )
    assert st == 401
    assert admin_call(gw.admin.port, "PUT", "/config", gw_text(gw), bearer())[0] == 200


def test_token_from_file_and_env_and_too_short(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "admin.token"
    f.write_text("file-token-0123456789\n")
    cfg = parse_config(f"admin: {{token_file: {f}}}")
    assert cfg.admin.token == "file-token-0123456789" and "token_file" in cfg.admin.token_source
    monkeypatch.setenv("TRIBRIDGE_ADMIN_TOKEN", "env-token-0123456789")
    cfg = parse_config("admin: {port: 0}")
    assert cfg.admin.token == "env-token-0123456789"
    assert cfg.admin.token_source == "$TRIBRIDGE_ADMIN_TOKEN"
    with pytest.raises(ConfigError, match="16 characters"):
        parse_config("admin: {token: short}")
    with pytest.raises(ConfigError, match="cannot read"):
        parse_config(f"admin: {{token_file: {tmp_path / 'missing'}}}")
    monkeypatch.setenv("TRIBRIDGE_ADMIN_TOKEN", "short")
    with pytest.raises(ConfigError, match="TRIBRIDGE_ADMIN_TOKEN"):
        parse_config("admin: {port: 0}")


# ----------------------------------------------------------------------------- DNS rebinding, CSRF


@pytest.mark.parametrize(
    "host",
    [
        "attacker.example",
        "attacker.example:{port}",
        "127.0.0.1.attacker.example:{port}",
        "localhost.attacker.example",
        "[::1].attacker.example",
        "127.0.0.1 attacker.example",
        "",
        "127.0.0.1:{port}@attacker.example",
    ],
)
def test_rebinding_host_is_refused_for_reads_and_writes(gw, host: str) -> None:  # type: ignore[no-untyped-def]
    h = host.format(port=gw.admin.port)
    for method, body in (("GET", None), ("PUT", gw_text(gw))):
        st, _, doc = admin_call(gw.admin.port, method, "/config", body, bearer(), host=h)
        assert st == 403 and doc["error"]["code"] == "host_not_allowed", (method, h, doc)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.0.0.1:{port}",
        "localhost:{port}",
        "LOCALHOST",
        "[::1]:{port}",
        "admin.internal",
        "admin.internal:{port}",
        "localhost:19901",  # kubectl port-forward 19901:<admin port>
    ],
)
def test_own_names_are_allowed(gw, host: str) -> None:  # type: ignore[no-untyped-def]
    h = host.format(port=gw.admin.port)
    assert admin_call(gw.admin.port, "GET", "/config", host=h)[0] == 200


def test_missing_host_header_is_refused(gw) -> None:  # type: ignore[no-untyped-def]
    with socket.create_connection(("127.0.0.1", gw.admin.port), timeout=10) as s:
        s.sendall(b"GET /config HTTP/1.0\r\n\r\n")
        data = s.recv(65536)
    assert data.startswith(b"HTTP/1.1 403") and b"host_not_allowed" in data


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://attacker.example"},
        {"Origin": "https://attacker.example:{port}"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:1"},
        {"Origin": "http://localhost"},
        {"Origin": "file://"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "http://127.0.0.1:{port}", "Sec-Fetch-Site": "cross-site"},
    ],
)
def test_cross_site_mutation_is_refused_even_with_the_token(gw, headers: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    h = {k: v.format(port=gw.admin.port) for k, v in headers.items()}
    st, _, doc = admin_call(gw.admin.port, "PUT", "/config", gw_text(gw), {**bearer(), **h})
    assert st == 403 and doc["error"]["code"] == "cross_site", (h, doc)


def test_same_origin_mutation_and_no_cors(gw) -> None:  # type: ignore[no-untyped-def]
    same = {"Origin": f"http://127.0.0.1:{gw.admin.port}", "Sec-Fetch-Site": "same-origin"}
    st, hdrs, _ = admin_call(gw.admin.port, "PUT", "/config", gw_text(gw), {**bearer(), **same})
    assert st == 200
    assert not [k for k in hdrs if k.startswith("access-control-")]
    preflight = {
        "Origin": "http://attacker.example",
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "authorization",
    }
    st, hdrs, _ = admin_call(gw.admin.port, "OPTIONS", "/config", None, preflight)
    assert st == 403 and not [k for k in hdrs if k.startswith("access-control-")]
    # a method the API does not serve is still judged as a mutation first
    st, _, doc = admin_call(gw.admin.port, "PROPFIND", "/config", None, bearer())
    assert st == 405, doc
    st, _, doc = admin_call(gw.admin.port, "TRACE", "/config", None, {})
    assert st == 401, doc


# ----------------------------------------------------------------------------- size, YAML, parsing


def test_oversize_body_is_413(gw) -> None:  # type: ignore[no-untyped-def]
    body = b"# " + b"x" * (64 * 1024) + b"\n"
    st, _, doc = admin_call(gw.admin.port, "PUT", "/config", body, bearer())
    assert st == 413 and doc["error"]["code"] == "body_too_large"


def test_alias_bomb_is_refused_at_once_in_bounded_memory(gw, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert len(ALIAS_BOMB) < 720
    t0 = time.monotonic()
    st, _, doc = admin_call(gw.admin.port, "PUT", "/config", ALIAS_BOMB.encode(), bearer())
    assert time.monotonic() - t0 < 2.0
    assert st == 400 and "aliases" in doc["error"]["message"], doc
    # the same parser for the config file, measured: no expansion happens at all
    f = tmp_path / "bomb.yaml"
    f.write_text(ALIAS_BOMB)
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match="anchors and aliases"):
            load_config(f)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024, peak
    # merge keys need aliases too; a lone anchor is refused as well
    with pytest.raises(ConfigError, match="anchors and aliases"):
        parse_config("base: &b {port: 1}\nlisten:\n  <<: *b\n")
    with pytest.raises(ConfigError, match="anchors and aliases"):
        parse_config("listen: &l {port: 1}\n")


def test_deep_nesting_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="nested too deeply"):
        parse_config("x: " + "[" * 20_000 + "]" * 20_000)


def big_config(entries: int) -> bytes:
    """Valid YAML that parses slowly (pure Python) and is then refused (an unknown key)."""
    return (
        "bulk:\n" + "".join(f"  - {{k{i}: v{i}, n: [{i}, {i}]}}\n" for i in range(entries))
    ).encode()


@pytest.fixture(scope="module")
def gw_big(bg: BackgroundLoop, provider: Any) -> Any:
    text = config_text(provider.port, token=TOKEN, max_body_bytes=8 * 1024 * 1024)
    return start(bg, text)


def test_data_plane_keeps_serving_while_a_big_config_parses(gw_big) -> None:  # type: ignore[no-untyped-def]
    body = big_config(10_000)
    latencies: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", gw_big.port, timeout=60)
        try:
            for _ in range(100_000):  # bounded; stopped by the event long before
                if stop.is_set():
                    return
                t = time.perf_counter()
                conn.request("GET", "/healthz")
                assert conn.getresponse().read() == b'{"status":"ok"}'
                latencies.append(time.perf_counter() - t)
        finally:
            conn.close()

    th = threading.Thread(target=probe)
    th.start()
    try:
        time.sleep(0.2)
        n0 = len(latencies)
        t0 = time.perf_counter()
        st, _, doc = admin_call(gw_big.admin.port, "PUT", "/config", body, bearer())
        parse = time.perf_counter() - t0
        during = latencies[n0:]
    finally:
        stop.set()
        th.join(60)
    assert st == 400 and "bulk" in doc["error"]["message"], doc
    assert parse > 0.4, f"the body parsed in {parse:.2f}s: too fast to show anything"
    assert len(during) > 10, (len(during), parse)
    # on the event loop, one request would have waited for the whole parse
    assert max(during) < parse / 4, (max(during), parse)


def test_parse_time_budget_and_one_parse_at_a_time(bg: BackgroundLoop, provider: Any) -> None:
    text = config_text(
        provider.port, token=TOKEN, max_body_bytes=8 * 1024 * 1024, parse_timeout="200ms"
    )
    g = start(bg, text)
    t0 = time.monotonic()
    # ~6 s of parsing on a quiet machine: the answer comes at the 200 ms budget, long before
    st, _, doc = admin_call(g.admin.port, "PUT", "/config", big_config(30_000), bearer())
    assert st == 400 and "parse_timeout" in doc["error"]["message"], doc
    assert time.monotonic() - t0 < 3.0
    # the thread still runs: a second parse is refused instead of piling up
    st, _, doc = admin_call(g.admin.port, "PUT", "/config", gw_text(g), bearer())
    assert st == 503 and doc["error"]["code"] == "config_busy", doc
    deadline = time.monotonic() + 60
    while True:
        st, _, doc = admin_call(g.admin.port, "PUT", "/config", gw_text(g), bearer())
        if st != 503:
            break
        assert time.monotonic() < deadline, "the slow parse never finished"
        time.sleep(0.1)
    assert st == 200, doc


# ----------------------------------------------------------------------------- mTLS


def test_mtls_client_certificate_authorizes_mutations(
    bg: BackgroundLoop, provider: Any, tmp_path: Path
) -> None:
    pki = make_pki(tmp_path)
    text = config_text(
        provider.port, tls={"cert": pki.server.cert, "key": pki.server.key, "client_ca": pki.ca}
    )
    g = start(bg, text)
    body = gw_text(g)
    port = g.admin.port

    def put(cert: Any) -> int:
        ctx = ssl.create_default_context(cafile=pki.ca)
        if cert is not None:
            ctx.load_cert_chain(cert.cert, cert.key)
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx)
        try:
            conn.request("PUT", "/config", body=body)
            r = conn.getresponse()
            r.read()
            return r.status
        finally:
            conn.close()

    assert put(pki.client) == 200
    assert admin_call_status_tls_fails(put, None)
    assert admin_call_status_tls_fails(put, pki.rogue_client)


def admin_call_status_tls_fails(put: Any, cert: Any) -> bool:
    try:
        put(cert)
    except (ssl.SSLError, ConnectionError, http.client.RemoteDisconnected):
        return True
    return False


# ----------------------------------------------------------------------------- tribridge run


@pytest.mark.parametrize("token", [None, "run-env-token-0123456789"])
def test_run_says_how_admin_mutations_are_authorized(tmp_path: Path, token: str | None) -> None:
    doc = yaml.safe_load(demo_config(9, 0))
    doc["admin"] = {"port": 0}
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    env = {k: v for k, v in os.environ.items() if k != "TRIBRIDGE_ADMIN_TOKEN"}
    if token is not None:
        env["TRIBRIDGE_ADMIN_TOKEN"] = token
    proc = subprocess.Popen(
        [TRIBRIDGE, "run", "-c", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        lines: list[str] = []
        assert proc.stderr is not None
        for _ in range(50):  # bounded: the three startup lines come first
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "admin mutations" in line:
                break
        said = [x for x in lines if "admin mutations" in x]
        assert len(said) == 1, lines
        if token is None:
            assert "disabled" in said[0] and "TRIBRIDGE_ADMIN_TOKEN" in said[0]
            assert "admin.token_file" in said[0]
        else:
            assert "$TRIBRIDGE_ADMIN_TOKEN" in said[0] and token not in said[0]
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)


def test_run_refuses_an_alias_bomb_config_file_at_once(tmp_path: Path) -> None:
    cfg = tmp_path / "bomb.yaml"
    cfg.write_text(ALIAS_BOMB)
    t0 = time.monotonic()
    out = subprocess.run(
        [TRIBRIDGE, "run", "-c", str(cfg)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2 and "anchors and aliases" in out.stderr, out.stderr
    assert time.monotonic() - t0 < 30  # interpreter start-up included; no expansion
