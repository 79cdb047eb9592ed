"""scripts/setup.sh's Python install, with pip replaced by a recorder: the demo's ``--python``
mode installs the runtime only (no test tools), once; a test venv serves the demo as is."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

RECORDER = """#!/bin/sh
echo "$*" >> "$(dirname "$0")/../pip.log"
"""


def checkout(tmp_path: Path) -> Path:
    """The script and pyproject.toml in a checkout whose .venv has a recording pip."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    bin_ = tmp_path / ".venv" / "bin"
    bin_.mkdir(parents=True)
    for name in ("pip", "python"):
        (bin_ / name).write_text(RECORDER)
        (bin_ / name).chmod(0o755)
    return tmp_path


def setup_python(repo: Path) -> list[str]:
    log = repo / ".venv" / "pip.log"
    log.unlink(missing_ok=True)
    r = subprocess.run(
        ["bash", "scripts/setup.sh", "--python"], cwd=repo, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return log.read_text().splitlines() if log.exists() else []


def test_demo_mode_installs_the_runtime_once(tmp_path: Path) -> None:
    repo = checkout(tmp_path)
    installs = [c for c in setup_python(repo) if c.startswith("install") and "-e" in c.split()]
    assert installs == ["install -q -e ."], installs  # no [test], no [all]
    assert setup_python(repo) == []  # idempotent


def test_a_test_venv_serves_the_demo(tmp_path: Path) -> None:
    repo = checkout(tmp_path)
    digest = subprocess.run(
        ["sha256sum", "pyproject.toml"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout[:16]
    (repo / ".venv" / ".tribridge-stamp").write_text(f"{digest} all,test\n")
    assert setup_python(repo) == []
    (repo / "pyproject.toml").write_text((repo / "pyproject.toml").read_text() + "\n# changed\n")
    assert "install -q -e ." in setup_python(repo)  # an older install is refreshed
