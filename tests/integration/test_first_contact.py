"""A newcomer's common mistakes each get one clear line on stderr, never a traceback."""

from __future__ import annotations

import queue
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port, tb


def one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    assert stderr.count("\n") == 1 and stderr.endswith("\n"), stderr
    return stderr


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_demo_port_in_use(busy_port: int) -> None:
    r = tb("demo", "--port", str(busy_port), "--provider-port", "0")
    assert r.returncode == 1
    line = one_line(r.stderr)
    assert "cannot listen" in line and str(busy_port) in line and "already in use" in line


def test_run_port_in_use(busy_port: int, tmp_path: Path) -> None:
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(f"listen: {{host: 127.0.0.1, port: {busy_port}}}\n")
    r = tb("run", "-c", str(cfg))
    assert r.returncode == 1
    line = one_line(r.stderr)
    assert "cannot listen" in line and str(busy_port) in line and "--port" in line


def test_unknown_registry_scheme_in_config(tmp_path: Path) -> None:
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text("listen: {port: 0}\nregistries:\n  r: zookeper://127.0.0.1:2181\n")
    r = tb("run", "-c", str(cfg))
    assert r.returncode == 2
    line = one_line(r.stderr)
    assert f"{cfg}:3:" in line and "unsupported registry scheme 'zookeper'" in line


@pytest.mark.parametrize(
    "args",
    [
        ("registry", "ls", "zookeper://127.0.0.1:2181"),
        ("call", "zookeper://127.0.0.1:2181", "com.x.Greeter.sayHello"),
    ],
)
def test_unknown_registry_scheme_in_cli(args: tuple[str, ...]) -> None:
    r = tb(*args)
    assert r.returncode in (1, 2)
    assert "zookeper" in one_line(r.stderr)


@pytest.mark.parametrize(
    "args",
    [("registry", "ls"), ("call",)],
)
def test_unreachable_zookeeper_is_one_json_line(args: tuple[str, ...]) -> None:
    url = f"zookeeper://127.0.0.1:{free_port()}"  # nothing listens there
    extra = ("com.x.Greeter.sayHello",) if args == ("call",) else ()
    r = tb(*args, url, *extra, "--timeout", "1.5")
    assert r.returncode == 1
    line = one_line(r.stderr)  # no kazoo "Connection dropped" lines around it
    assert line.startswith('{"error":{"code":"registry_error"') and "not connected" in line


def test_empty_registry_says_so(zookeeper: str) -> None:
    root = f"tribridge-empty-{uuid.uuid4().hex[:8]}"
    url = f"zookeeper://{zookeeper}?root={root}&metadata_root={root}"
    r = tb("registry", "ls", url)
    assert r.returncode == 0 and r.stdout == ""
    assert "the registry is empty" in one_line(r.stderr)
    r = tb("registry", "ls", url, "--json")
    assert r.returncode == 0 and r.stdout.strip() == "[]"


def test_successful_reload_logs_at_info(tmp_path: Path) -> None:
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text("listen: {host: 127.0.0.1, port: 0}\nreload: {interval: 0.1s}\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tribridge.cli", "run", "-c", str(cfg)],
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()  # read by a thread: every wait is bounded
    threading.Thread(
        target=lambda: [lines.put(ln) for ln in proc.stderr or ()], daemon=True
    ).start()
    try:
        assert "listening on" in lines.get(timeout=30)
        cfg.write_text("listen: {host: 127.0.0.1, port: 0}\nreload: {interval: 0.2s}\n")
        line = ""
        while "applied" not in line:
            line = lines.get(timeout=20)
        assert " INFO tribridge.config: config " in line, line
    finally:
        proc.terminate()
        proc.wait(10)
