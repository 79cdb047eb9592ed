"""``tribridge run --workers 2``: both processes serve one port, SIGHUP reloads both, a
SIGTERM to the parent stops everything (all by PID)."""

from __future__ import annotations

import hashlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import yaml
from tribridge.cli.commands import demo_config
from tribridge.interop.testing import BackgroundLoop, http_request

from tests.conftest import free_port

TRIBRIDGE = str(Path(sys.executable).with_name("tribridge"))


def free_port_pair() -> int:
    """A port p with p+1 also free right now (admin ports of worker 0 and 1)."""
    for _ in range(50):
        p = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p + 1))
            except OSError:
                continue
        return p
    raise RuntimeError("no two consecutive free ports found")


def admin_get(port: int, path: str) -> dict:  # type: ignore[type-arg]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        return orjson.loads(conn.getresponse().read())
    finally:
        conn.close()


def wait_for(pred, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = pred()
            if last:
                return last
        except OSError as e:
            last = e
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def write_config(path: Path, provider_port: int, port: int, admin: int, *, add: bool) -> str:
    doc = yaml.safe_load(demo_config(provider_port, port))
    doc["admin"] = {"port": admin}
    doc["reload"] = {"watch": False}  # only SIGHUP: proves the parent forwards it
    doc["access_log"] = False
    if not add:
        doc["routes"] = [r for r in doc["routes"] if r["path"] != "/add"]
    text = yaml.safe_dump(doc, sort_keys=False)
    path.write_text(text)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def test_two_workers_share_port_reload_and_stop(bg: BackgroundLoop, tmp_path: Path) -> None:
    provider = bg.start_provider(version="1.0.0")
    port, admin = free_port(), free_port_pair()
    cfg = tmp_path / "gw.yaml"
    v1 = write_config(cfg, provider.port, port, admin, add=False)
    token = "workers-test-admin-token"  # from the environment, as docs/operations.md says
    proc = subprocess.Popen(
        [TRIBRIDGE, "run", "-c", str(cfg), "--workers", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "TRIBRIDGE_ADMIN_TOKEN": token},
    )
    try:
        infos = [
            wait_for(lambda a=a: admin_get(a, "/config"), 20, f"admin {a}")
            for a in (admin, admin + 1)
        ]
        pids = {i["pid"] for i in infos}
        assert len(pids) == 2 and proc.pid not in pids
        assert {i["worker"] for i in infos} == {"0", "1"}
        for pid in pids:  # both are children of the supervisor
            ppid = next(
                int(line.split()[1])
                for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                if line.startswith("PPid:")
            )
            assert ppid == proc.pid
        assert all(i["version"] == v1 for i in infos)

        # both serve: fresh connections spread over the two listening sockets
        for i in range(60):
            assert http_request(port, "GET", f"/hello/w{i}") == (200, f"Hello, w{i}")
        counts = [admin_get(a, "/counters")["by_status"].get("200", 0) for a in (admin, admin + 1)]
        assert sum(counts) == 60 and all(c > 0 for c in counts), counts
        assert http_request(port, "GET", "/add?a=1&b=2")[0] == 404

        # PUT /config is refused in a worker: it would change one of two
        conn = http.client.HTTPConnection("127.0.0.1", admin, timeout=5)
        conn.request(
            "PUT", "/config", body=cfg.read_bytes(), headers={"authorization": f"Bearer {token}"}
        )
        r = conn.getresponse()
        assert r.status == 409 and b"SIGHUP" in r.read()
        conn.close()

        # SIGHUP to the parent reaches both workers
        v2 = write_config(cfg, provider.port, port, admin, add=True)
        os.kill(proc.pid, signal.SIGHUP)
        for a in (admin, admin + 1):
            wait_for(lambda a=a: admin_get(a, "/config")["version"] == v2, 10, f"reload on {a}")
        for _ in range(20):
            assert http_request(port, "GET", "/add?a=2&b=40") == (200, 42)
        assert {admin_get(a, "/config")["pid"] for a in (admin, admin + 1)} == pids  # no restart

        # clean stop by PID
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        for pid in pids:
            assert not Path(f"/proc/{pid}").exists(), f"worker {pid} still there"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), 0.5).close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        err = proc.stderr.read().decode() if proc.stderr else ""
        assert "Traceback" not in err, err
