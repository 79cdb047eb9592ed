"""Session-wide real peers (started once, stopped by PID at the end), and the fixtures many
modules share."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from tribridge.codecs import _accel, dubbo, hessian2
from tribridge.interop import peers
from tribridge.interop.testing import BackgroundLoop

#: test modules run once per codec implementation (compiled, then pure Python)
CODEC_TEST_MODULES = frozenset(
    {
        "test_codec_hostile",
        "test_dubbo_ingress",
        "test_dubbo_sofa_frames",
        "test_exact_types",
        "test_hessian2_interop",
        "test_hessian2_props",
        "test_hessian2_unit",
        "test_security_class_doors",
        "test_security_classes",
    }
)
CODEC_IMPLEMENTATIONS = ("compiled", "python")


_OWN_BASETEMP = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """``tmp_path`` directories live in one directory of this run, removed when it ends
    (pytest's default keeps the last three runs' under /tmp/pytest-of-USER forever)."""
    if config.option.basetemp is None:
        config.option.basetemp = tempfile.mkdtemp(prefix="tribridge-pytest-")
        config.stash[_OWN_BASETEMP] = config.option.basetemp


def pytest_unconfigure(config: pytest.Config) -> None:
    own = config.stash.get(_OWN_BASETEMP, None)
    if own is not None:
        shutil.rmtree(own, ignore_errors=True)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.module.__name__.rsplit(".", 1)[-1] in CODEC_TEST_MODULES:
        metafunc.parametrize("codec_impl", CODEC_IMPLEMENTATIONS, indirect=True, scope="module")


@pytest.fixture(scope="module", autouse=True)
def codec_impl(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """In a codec test module: every name the tests, the gateway and the codecs themselves
    imported from an accelerated module points at one implementation for the whole module,
    and child processes get the same one through ``TRIBRIDGE_PURE_PYTHON``.  The compiled
    run FAILS when the extensions are not built: CI must test both, and ``scripts/test.sh``
    builds them (a user install without a compiler just runs the pure-Python codecs)."""
    impl = getattr(request, "param", None)
    if impl is None:
        yield None
        return
    saved = os.environ.get(_accel.ENV)
    if impl == "compiled":
        built = (hessian2.IMPLEMENTATION, dubbo.IMPLEMENTATION)
        assert built == ("compiled", "compiled"), (
            f"compiled codecs not active (hessian2, dubbo: {built}); build them with "
            "scripts/setup.sh, and do not set TRIBRIDGE_PURE_PYTHON for the test run"
        )
        stale = _accel.stale_extensions()
        assert not stale, f"compiled codecs older than their sources: {stale}; run scripts/setup.sh"
        os.environ.pop(_accel.ENV, None)
    else:
        os.environ[_accel.ENV] = "1"
    undo = _accel.swap(impl)
    try:
        yield impl
    finally:
        undo()
        if saved is None:
            os.environ.pop(_accel.ENV, None)
        else:
            os.environ[_accel.ENV] = saved


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tb(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The ``tribridge`` CLI in a child process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "tribridge.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
    )


def registry_ls_row(url: str, service: str, address: str) -> list[str]:
    """``tribridge registry ls``: the service is listed, and the instance row at
    ``address`` (PROTOCOL ADDRESS WEIGHT VERSION GROUP STATUS METHODS) is returned."""
    r = tb("registry", "ls", url)
    assert r.returncode == 0, r.stderr
    assert service in r.stdout.split()
    r = tb("registry", "ls", url, service)
    assert r.returncode == 0, r.stderr
    rows = [ln.split() for ln in r.stdout.splitlines()[1:]]
    hit = [c for c in rows if len(c) > 1 and c[1] == address]
    assert hit, r.stdout
    return hit[0]


# ---- shared by many modules -------------------------------------------------------------------


@pytest.fixture(scope="module")
def bg() -> Iterator[BackgroundLoop]:
    """An event loop in a thread for the module's providers, gateways and emulators (one per
    module, so nothing one module starts outlives it). A module that wants another loop (the
    plugin's session ``tribridge_loop``, a parametrized one) defines its own ``bg``."""
    with BackgroundLoop() as loop:
        yield loop


@pytest.fixture(scope="module")
def emu(bg: BackgroundLoop) -> Iterator[Any]:
    """The Eureka emulator (interop/eureka_emulator.py) on the module's loop, evicting
    lapsed leases every 0.2 s."""
    from tribridge.interop.eureka_emulator import EurekaEmulator

    e = bg.run(EurekaEmulator(eviction_interval=0.2).start())
    try:
        yield e
    finally:
        bg.run(e.stop())


@pytest.fixture(scope="session")
def grpc_peer() -> Iterator[Any]:
    """A plain gRPC Triple server (interop/triple_peers.py), once per session."""
    from tribridge.interop.triple_peers import start_peer

    peer = start_peer("grpc", free_port())
    try:
        yield peer
    finally:
        peer.close()


@pytest.fixture(scope="session")
def caucho() -> Iterator[peers.LinePeer]:
    peer = peers.start_caucho()
    try:
        yield peer
    finally:
        peer.close()


@pytest.fixture(scope="session")
def hessianjs() -> Iterator[peers.LinePeer]:
    peer = peers.start_hessianjs()
    try:
        yield peer
    finally:
        peer.close()


@pytest.fixture(scope="session")
def sofa_provider() -> Iterator[int]:
    port = free_port()
    proc = peers.start_sofa_provider(port)
    try:
        yield port
    finally:
        proc.close() if hasattr(proc, "close") else proc.terminate()


@pytest.fixture(scope="session")
def zookeeper_server() -> Iterator[Any]:
    """A real ZooKeeper 3.8 for the whole session (fails loudly if it cannot start)."""
    from tribridge.interop.zk_server import start_zookeeper

    zk = start_zookeeper()
    try:
        yield zk
    finally:
        zk.close()


@pytest.fixture(scope="session")
def zookeeper(zookeeper_server: Any) -> str:
    """``127.0.0.1:PORT`` of the session's ZooKeeper."""
    return zookeeper_server.address


@pytest.fixture(scope="session")
def nacos() -> Iterator[object]:
    """The Nacos emulator (interop/nacos_emulator.py) in its own process, for the session."""
    from tribridge.interop.nacos_emulator import start_emulator_process

    proc = start_emulator_process(0)
    try:
        yield proc
    finally:
        proc.close()


@pytest.fixture(scope="session")
def java_peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Real Apache Dubbo 3.3 and 2.7 providers and consumers (Java), in a network namespace,
    once per session; a peer that cannot start fails the run (see interop/java_peers.py)."""
    from tribridge.interop.java_peers import JavaPeerError, start_java_peers

    try:
        peers = start_java_peers(tmp=tmp_path_factory.mktemp("java-peers"))
    except JavaPeerError as e:
        pytest.fail(f"the Java Dubbo peers did not start: {e}")
    COMPAT_META["providers"] = {
        k: {"line": p.line, "dubbo": p.dubbo_version, "ports": p.ports}
        for k, p in peers.providers.items()
    }
    COMPAT_META["startup_seconds"] = round(peers.startup_seconds, 1)
    try:
        yield peers
    finally:
        peers.close()


# ---- docs/compatibility.md: with TRIBRIDGE_COMPAT_JSON=path, the Java tests' outcomes are
# written there at the end of the session (scripts/compat_matrix.py renders them)

COMPAT_META: dict[str, Any] = {}
_COMPAT_RESULTS: list[dict[str, Any]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not os.environ.get("TRIBRIDGE_COMPAT_JSON") or "test_java_" not in report.nodeid:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _COMPAT_RESULTS.append(
            {
                "test": report.nodeid,
                "outcome": report.outcome,
                "seconds": round(report.duration, 3),
                "properties": dict(report.user_properties),
            }
        )


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get("TRIBRIDGE_COMPAT_JSON")
    if path and _COMPAT_RESULTS:
        with open(path, "w") as f:
            json.dump({"meta": COMPAT_META, "results": _COMPAT_RESULTS}, f, indent=1)
