"""The docs as a newcomer uses them: the README's quick start and CLI examples run as written
against a demo started the README's way, every YAML snippet in the docs is a config that
loads, ``tribridge --help``'s examples run, and the README's apt list is the one setup.sh
installs.

Blocks to run are fenced as ``bash tested``; each line runs on its own (bounded in time) and,
when its trailing comment is JSON, must print exactly that. The demo's ports (8080, 20880 in
the text) are replaced by free ports picked at run time, nothing else is.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from tribridge.config.model import ConfigError, parse_config
from tribridge.security.certs import make_certs

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.S | re.M)
#: one command and, after two spaces and ``#``, what it answers
COMMENTED = re.compile(r"^(?P<cmd>.*?)\s{2,}#\s*(?P<expect>.*)$")
BIN = ROOT / ".venv" / "bin"


@dataclass
class Block:
    where: str  # file:line
    info: str  # the fence's info string: "bash tested", "yaml", ...
    body: str


def blocks() -> list[Block]:
    out = []
    for doc in DOCS:
        text = doc.read_text()
        for m in FENCE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            out.append(Block(f"{doc.relative_to(ROOT)}:{line}", m.group(1).strip(), m.group(2)))
    return out


def marked_blocks() -> list[Block]:
    return [b for b in blocks() if b.info.split()[1:2] == ["tested"]]


# ---- YAML snippets -------------------------------------------------------------------------


@pytest.fixture
def named_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The files the snippets name (certificates, keys, a JWKS, a token), in the working
    directory, as a user would have them beside the config."""
    paths = make_certs(tmp_path, ["127.0.0.1"], ["gw-client"], 2)
    for name in ("gw", "admin"):
        shutil.copy(paths["server"], tmp_path / f"{name}.pem")
        shutil.copy(tmp_path / "server.key", tmp_path / f"{name}.key")
    for name in ("clients-ca", "ops-ca"):
        shutil.copy(paths["ca"], tmp_path / f"{name}.pem")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    (tmp_path / "keys.json").write_text(json.dumps({"keys": [{**jwk, "kid": "k1"}]}))
    (tmp_path / "admin.token").write_text("a-long-random-admin-token-for-the-docs-test\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_yaml_snippet_loads(named_files: Path) -> None:
    snippets = [b for b in blocks() if b.info.split()[:1] in (["yaml"], ["yml"])]
    assert len(snippets) > 20  # the docs' configs are found at all
    failures = []
    for b in snippets:
        try:
            parse_config(b.body, b.where)
        except ConfigError as e:
            failures.append(str(e))
    assert not failures, "\n".join(failures)


def test_readme_apt_list_is_setup_sh_list() -> None:
    readme = " ".join((ROOT / "README.md").read_text().split())
    listed = re.search(r"Debian `([^`]+)`", readme)
    setup = re.search(r'APT_PKGS="([^"]+)"', (ROOT / "scripts" / "setup.sh").read_text())
    assert listed and setup
    assert listed.group(1).split() == setup.group(1).split()


# ---- the quick start and the CLI examples, against a started demo ---------------------------


@dataclass
class Demo:
    http: int
    dubbo: int

    def text(self, line: str) -> str:
        """The line with the demo's documented ports replaced by this run's."""
        line = line.replace("127.0.0.1:8080", f"127.0.0.1:{self.http}")
        return line.replace("127.0.0.1:20880", f"127.0.0.1:{self.dubbo}")


@pytest.fixture(scope="module")
def demo() -> Iterator[Demo]:
    """``bash scripts/demo.sh``, as the README's quick start says, on free ports."""
    readme = (ROOT / "README.md").read_text()
    assert "bash scripts/demo.sh " in readme
    # demo.sh would reinstall into the venv the tests run from if its install were stale
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    stamp = ROOT / ".venv" / ".tribridge-stamp"
    assert stamp.exists() and stamp.read_text().split()[:1] == [digest], (
        "the .venv predates pyproject.toml: run scripts/setup.sh"
    )
    d = Demo(free_port(), free_port())
    proc = subprocess.Popen(
        ["bash", "scripts/demo.sh", "--port", str(d.http), "--provider-port", str(d.dubbo)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the script execs tribridge: one group to stop
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        seen = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            seen.append(line)
            assert line, "demo.sh exited:\n" + "".join(seen)
            if f"gateway on http://127.0.0.1:{d.http}" in line:
                break
        else:
            pytest.fail("the demo did not start within 120 s:\n" + "".join(seen))
        yield d
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


def shell(command: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """A line as typed in a shell with the venv activated."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=timeout, env=env
    )


def test_quick_start_blocks_are_marked() -> None:
    where = [b.where for b in marked_blocks()]
    assert len([w for w in where if w.startswith("README.md")]) >= 2, where


@pytest.mark.parametrize("block", marked_blocks(), ids=lambda b: b.where)
def test_tested_block_runs_as_written(demo: Demo, block: Block) -> None:
    lines = [ln for ln in block.body.splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines
    for line in lines:
        m = COMMENTED.match(line)
        cmd, expect = (m.group("cmd"), m.group("expect")) if m else (line, "")
        r = shell(demo.text(cmd))
        assert r.returncode == 0, f"{block.where}: {cmd}\n{r.stderr}"
        if not expect:
            continue
        try:
            wanted = json.loads(expect)
        except ValueError:
            if " " not in expect:  # one word: the exact output (a hex string)
                assert r.stdout.strip() == expect, f"{block.where}: {cmd}: {r.stdout!r}"
            continue  # a prose comment ("a User POJO as JSON")
        assert json.loads(r.stdout) == wanted, f"{block.where}: {cmd}: {r.stdout!r} != {expect!r}"


def test_help_examples_run(demo: Demo, zookeeper: str) -> None:
    """Every example ``tribridge --help`` shows, except the two that start servers (the demo
    itself, and ``run`` with a config)."""
    r = shell("tribridge --help")
    assert r.returncode == 0
    examples = [ln.strip() for ln in r.stdout.splitlines() if ln.startswith("  tribridge ")]
    runnable = [e for e in examples if e.split()[1] not in ("demo", "run")]
    assert len(runnable) >= 4, examples
    for example in runnable:
        cmd = demo.text(example).replace("127.0.0.1:2181", zookeeper)
        out = shell(cmd)
        assert out.returncode == 0, f"{example}\n{out.stderr}"
        assert "Traceback" not in out.stderr


# ---- Python snippets -------------------------------------------------------------------------


def python_blocks() -> list[Block]:
    return [b for b in blocks() if b.info.split()[:1] == ["python"]]


def test_every_python_snippet_compiles() -> None:
    assert python_blocks()
    for b in python_blocks():
        compile(b.body, b.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def test_fixture_snippets_pass_as_tests(tmp_path: Path) -> None:
    """Snippets that are pytest tests (docs/operations.md's plugin fixtures) run as a user's
    own test file, with nothing but the installed plugin."""
    snippets = [b for b in python_blocks() if re.search(r"^def test_", b.body, re.M)]
    assert snippets
    for i, b in enumerate(snippets):
        (tmp_path / f"test_snippet_{i}.py").write_text(b.body)
    argv = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "bt")]
    r = subprocess.run(
        [str(BIN / "python"), *argv, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    tests = sum(len(re.findall(r"^def test_", b.body, re.M)) for b in snippets)
    assert f"{tests} passed" in r.stdout, r.stdout[-3000:]


# ---- references --------------------------------------------------------------------------------

#: a file name or path in prose that names one of the project's own sources or documents
SOURCE_REF = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w-]+\.(?:md|py|sh|toml|java|go|proto))\b")
#: upstream files the docs cite by their own paths (google.api / google.rpc protos)
UPSTREAM = ("google/",)


def test_docs_reference_only_files_in_the_repo() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    missing = []
    for doc in DOCS:
        for ref in sorted(set(SOURCE_REF.findall(doc.read_text()))):
            if ref.startswith(UPSTREAM):
                continue
            if not any(f == ref or f.endswith("/" + ref) for f in tracked):
                missing.append(f"{doc.relative_to(ROOT)}: {ref}")
    assert not missing, missing
