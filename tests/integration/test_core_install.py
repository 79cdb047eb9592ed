"""The lean install, for real: a fresh virtualenv with only the core dependencies.

The core is HTTP -> Dubbo2 / Triple with the static registry; every discovery client, protoc,
Redis and OpenTelemetry are extras (pyproject.toml). The venv is built from a wheelhouse of
exactly ``[project].dependencies`` (downloaded once with pip, kept under ``build/``, keyed by
the dependency list) plus a pure-Python wheel of this checkout, so the test proves both that
the core runs without any extra and that a config needing one fails at load with one line.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "build" / "core-install"
#: packages only an extra may bring (their absence is what makes the core lean)
EXTRA_ONLY = {
    "kazoo",
    "nacos-sdk-python",
    "py-eureka-client",
    "lightkube",
    "redis",
    "grpcio-tools",
    "grpcio-reflection",
    "aiohttp",
    "anyio",
    "opentelemetry-api",
}


def _pip(python: Path | str, *args: str, env: dict[str, str]) -> None:
    r = subprocess.run(
        [str(python), "-m", "pip", "-q", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, f"pip {' '.join(args)}:\n{r.stderr[-3000:]}"


@pytest.fixture(scope="module")
def core_venv() -> Iterator[Path]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    key = hashlib.sha256(f"{sys.version}\n{deps}".encode()).hexdigest()[:16]
    wheels, venv, tmp = CACHE / f"wheels-{key}", CACHE / f"venv-{key}", CACHE / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TMPDIR": str(tmp), "TRIBRIDGE_PURE_PYTHON": "1"}
    env.pop("PYTHONPATH", None)
    if not (wheels / ".complete").exists():
        shutil.rmtree(wheels, ignore_errors=True)
        _pip(sys.executable, "download", "-d", str(wheels), *deps, env=env)
        (wheels / ".complete").touch()
    if not (venv / ".complete").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        (venv / ".complete").touch()
    project = tmp / "project"
    shutil.rmtree(project, ignore_errors=True)
    _pip(
        sys.executable,
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        str(project),
        str(ROOT),
        env=env,
    )
    wheel = next(project.glob("tribridge-*.whl"))
    # the project's own wheel with its declared dependencies, from the wheelhouse only: a core
    # dependency missing from pyproject.toml would fail here or in the checks below
    offline = ("install", "--no-index", "--find-links", str(wheels))
    _pip(venv / "bin" / "python", *offline, "--force-reinstall", "--no-deps", str(wheel), env=env)
    _pip(venv / "bin" / "python", *offline, str(wheel), env=env)
    try:
        yield venv
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(venv / "bin" / "tribridge"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=env,
    )


def test_core_install_is_lean(core_venv: Path) -> None:
    r = subprocess.run(
        [str(core_venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    )
    names = {ln.split("==")[0].lower().replace("_", "-") for ln in r.stdout.split()}
    assert "tribridge" in names
    assert not names & EXTRA_ONLY, names & EXTRA_ONLY
    site = next((core_venv / "lib").glob("python3*/site-packages"))
    loc = subprocess.run(
        [str(core_venv / "bin" / "python"), "-c", "import tribridge; print(tribridge.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=CACHE,
    ).stdout
    assert loc.startswith(str(site)), loc  # the installed copy, not this checkout


def test_core_help_and_demo_call(core_venv: Path, tmp_path: Path) -> None:
    r = _run(core_venv, "--help", cwd=tmp_path)
    assert r.returncode == 0 and "tribridge demo" in r.stdout, r.stdout + r.stderr
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    demo = subprocess.Popen(
        [str(core_venv / "bin" / "tribridge"), "demo", "--port", "0", "--provider-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    try:
        assert demo.stdout is not None
        base, provider = "", ""
        deadline = time.monotonic() + 30
        while not base and time.monotonic() < deadline:
            line = demo.stdout.readline()
            assert line, demo.stderr.read() if demo.stderr else "demo exited"
            if m := re.search(r"provider \(Dubbo2\) on (127\.0\.0\.1:\d+)", line):
                provider = m.group(1)
            if m := re.search(r"gateway on (http://127\.0\.0\.1:\d+)", line):
                base = m.group(1)
        assert base and provider
        with urllib.request.urlopen(f"{base}/hello/world", timeout=10) as resp:
            assert resp.read() == b'"Hello, world"'
        # the CLI client, from the core install, straight at the provider
        out = _run(
            core_venv,
            "call",
            f"dubbo://{provider}",
            "com.tribridge.demo.DemoService.add",
            "[2, 40]",
            "--types",
            "int,int",
            "--version",
            "1.0.0",
            cwd=tmp_path,
        )
        assert out.returncode == 0 and out.stdout.strip() == "42", out.stderr
    finally:
        demo.terminate()
        demo.wait(10)


@pytest.mark.parametrize(
    ("registry", "extra"),
    [
        ("nacos://127.0.0.1:8848", "nacos"),
        ("zookeeper://127.0.0.1:2181", "zookeeper"),
        ("eureka://127.0.0.1:8761/eureka", "eureka"),
        ("kubernetes://", "kubernetes"),
    ],
)
def test_config_needing_an_extra_fails_at_load_with_one_line(
    core_venv: Path, tmp_path: Path, registry: str, extra: str
) -> None:
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(
        "listen: {host: 127.0.0.1, port: 0}\n"
        f"registries:\n  reg: {registry}\n"
        "services:\n  - {interface: com.x.Greeter, registry: reg}\n"
    )
    r = _run(core_venv, "run", "-c", str(cfg), cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"{cfg}:3:" in r.stderr and f"pip install 'tribridge[{extra}]'" in r.stderr, r.stderr


@pytest.mark.parametrize(
    ("section", "extra"),
    [
        (
            "services:\n  - {interface: idl.demo.v1.Demo, endpoints: ['127.0.0.1:50051'],\n"
            "     idl: {reflection: true}}\n",
            "idl",
        ),
        (
            "security:\n  rate_limits:\n    - {name: g, per: route, rate: 10/s, burst: 10,\n"
            "       redis: 'redis://127.0.0.1:6379/0'}\n",
            "redis",
        ),
        ("tracing:\n  otel: true\n", "otel"),
    ],
)
def test_feature_needing_an_extra_fails_at_load_with_one_line(
    core_venv: Path, tmp_path: Path, section: str, extra: str
) -> None:
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text("listen: {host: 127.0.0.1, port: 0}\n" + section)
    r = _run(core_venv, "run", "-c", str(cfg), cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"{cfg}:" in r.stderr and f"pip install 'tribridge[{extra}]'" in r.stderr, r.stderr
