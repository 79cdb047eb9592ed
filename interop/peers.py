"""Real interop peers for the tests: Caucho Hessian (Java), hessian.js and a sofa-rpc-node provider.

The hessian harnesses speak the line protocol of ``docs/typed-json.md``::

    with start_caucho() as caucho:
        data = encode(caucho, ["int", 48])          # b"\\xc8\\x30"
        assert decode(caucho, data) == ["int", 48]

``start_sofa_provider(port)`` starts ``interop/node/dubbo_provider.js`` (Dubbo2 provider of
``com.tribridge.demo.SofaService:1.0.0`` on 127.0.0.1) and returns once it printed ``READY``.

Nothing here installs anything: Java comes from Debian (``openjdk-17-jdk-headless``,
``libhessian-java``) and the Node modules from ``scripts/setup.sh`` (``npm ci`` in interop/node).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

__all__ = [
    "CAUCHO_JVM_FLAGS",
    "HESSIAN_JAR",
    "LinePeer",
    "PeerError",
    "PeerReplyError",
    "SofaProvider",
    "compile_caucho",
    "decode",
    "encode",
    "start_caucho",
    "start_hessianjs",
    "start_sofa_provider",
]

INTEROP_DIR = Path(__file__).resolve().parent
JAVA_DIR = INTEROP_DIR / "java"
JAVA_CLASSES = JAVA_DIR / "classes"
NODE_DIR = INTEROP_DIR / "node"
NODE_MODULES = NODE_DIR / "node_modules"

HESSIAN_JAR = Path(os.environ.get("TRIBRIDGE_HESSIAN_JAR", "/usr/share/java/hessian.jar"))

#: Caucho's SerializerFactory needs these on JDK 17 (else ExceptionInInitializerError).
CAUCHO_JVM_FLAGS: tuple[str, ...] = (
    "--add-opens",
    "java.base/java.lang=ALL-UNNAMED",
    "--add-opens",
    "java.base/java.util=ALL-UNNAMED",
    "--add-opens",
    "java.base/java.math=ALL-UNNAMED",
    "--add-opens",
    "java.base/java.io=ALL-UNNAMED",
)

_SETUP_HINT = "scripts/setup.sh installs the Debian packages and runs `npm ci`"
_STDERR_LINES = 200


class PeerError(RuntimeError):
    """A peer could not be started, died, timed out or answered garbage."""


class PeerReplyError(PeerError):
    """The peer answered ``{"error": ...}``: it rejected the value or the command."""

    def __init__(self, message: str, reply: dict[str, Any]) -> None:
        super().__init__(message)
        self.reply = reply


def _drain(stream: IO[bytes], sink: deque[str]) -> None:
    """Keeps the last lines of a child's stderr (also stops the pipe from filling up)."""
    try:
        for raw in iter(stream.readline, b""):
            sink.append(raw.decode("utf-8", "replace").rstrip("\n"))
    except (OSError, ValueError):
        pass


def _terminate(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the child by its own PID, wait ``grace`` seconds, then SIGKILL it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()


class LinePeer:
    """A long-running child process that answers one JSON line per command line."""

    def __init__(
        self,
        argv: Sequence[str],
        cwd: str | os.PathLike[str] | None = None,
        *,
        name: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.argv = list(argv)
        self.name = name or Path(self.argv[0]).name
        self._stderr: deque[str] = deque(maxlen=_STDERR_LINES)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self._closed = False
        try:
            self.proc: subprocess.Popen[bytes] = subprocess.Popen(
                self.argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as exc:
            raise PeerError(f"{self.name}: cannot start {self.argv!r}: {exc}") from exc
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._read_stdout, name=f"{self.name}-stdout", daemon=True),
            threading.Thread(
                target=_drain,
                args=(self.proc.stderr, self._stderr),
                name=f"{self.name}-stderr",
                daemon=True,
            ),
        ]
        for t in self._threads:
            t.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        try:
            for raw in iter(self.proc.stdout.readline, b""):
                self._lines.put(raw.decode("utf-8"))
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            self._stderr.append(f"[peers.py] stdout reader stopped: {exc!r}")
        finally:
            self._lines.put(None)

    def stderr_tail(self, lines: int = 20) -> str:
        return "\n".join(list(self._stderr)[-lines:])

    def _fail(self, what: str) -> PeerError:
        time.sleep(0.05)  # let the stderr thread catch the last words
        rc = self.proc.poll()
        state = f"exit code {rc}" if rc is not None else f"pid {self.pid} still running"
        tail = self.stderr_tail()
        return PeerError(
            f"{self.name}: {what} ({state})" + (f"\n--- stderr tail ---\n{tail}" if tail else "")
        )

    def request(self, line: str, timeout: float = 10.0) -> dict[str, Any]:
        """Sends one command line and returns the JSON object the peer answered."""
        if "\n" in line or "\r" in line:
            raise ValueError("a command must be a single line")
        with self._lock:
            if self._closed:
                raise PeerError(f"{self.name}: peer is closed")
            stdin = self.proc.stdin
            assert stdin is not None
            try:
                stdin.write(line.encode("utf-8") + b"\n")
                stdin.flush()
            except (BrokenPipeError, OSError, ValueError) as exc:
                raise self._fail(f"cannot send command: {exc}") from exc
            try:
                answer = self._lines.get(timeout=timeout)
            except queue.Empty:
                err = self._fail(f"no answer within {timeout:g}s to {line[:120]!r}")
                # the reply stream is now out of step with the requests: this peer is unusable
                self._close_locked()
                raise err from None
            if answer is None:
                self._lines.put(None)  # keep the EOF marker for later calls
                raise self._fail(f"exited while answering {line[:120]!r}")
        try:
            reply = json.loads(answer)
        except json.JSONDecodeError as exc:
            raise self._fail(f"answered a line that is not JSON: {answer[:200]!r}") from exc
        if not isinstance(reply, dict) or not ({"ok", "error"} & reply.keys()):
            raise self._fail(f"answered an unexpected JSON value: {answer[:200]!r}")
        return reply

    def ping(self, timeout: float = 30.0) -> None:
        reply = self.request("ping", timeout=timeout)
        if reply.get("ok") != "pong":
            raise self._fail(f"bad answer to ping: {reply!r}")

    def _close_locked(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                self.proc.stdin.close()
        _terminate(self.proc)
        for t in self._threads:
            t.join(timeout=2.0)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError, ValueError):
                    stream.close()

    def close(self) -> None:
        """Stops the child by its PID: SIGTERM, up to 5 s grace, then SIGKILL."""
        with self._lock:
            self._close_locked()

    def __enter__(self) -> LinePeer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        # last resort for peers the caller forgot to close
        proc = getattr(self, "proc", None)
        if proc is not None and proc.poll() is None and not getattr(self, "_closed", True):
            with contextlib.suppress(Exception):
                proc.kill()


# ------------------------------------------------------------------------------------------
# Caucho Hessian (Java)


def _require_tool(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise PeerError(f"`{tool}` not found on PATH: install {package}; {_SETUP_HINT}")
    return path


def _java_sources() -> list[Path]:
    sources = [JAVA_DIR / "CauchoHarness.java"]
    sources += sorted((JAVA_DIR / "com" / "tribridge" / "interop").glob("*.java"))
    missing = [str(s) for s in sources if not s.is_file()]
    if missing:
        raise PeerError(f"Java harness sources missing: {', '.join(missing)}")
    return sources


def _class_file(source: Path) -> Path:
    return JAVA_CLASSES / source.relative_to(JAVA_DIR).with_suffix(".class")


def _classes_stale(sources: list[Path]) -> bool:
    newest = max([s.stat().st_mtime for s in sources] + [HESSIAN_JAR.stat().st_mtime])
    for source in sources:
        target = _class_file(source)
        if not target.is_file() or target.stat().st_mtime < newest:
            return True
    return False


def compile_caucho(force: bool = False) -> Path:
    """Compiles interop/java into interop/java/classes when missing or older than the sources."""
    javac = _require_tool("javac", "openjdk-17-jdk-headless")
    if not HESSIAN_JAR.is_file():
        raise PeerError(
            f"Caucho Hessian jar {HESSIAN_JAR} missing: install libhessian-java; {_SETUP_HINT}"
        )
    sources = _java_sources()
    JAVA_CLASSES.mkdir(parents=True, exist_ok=True)
    # several test processes may start at once: compile under a lock
    with open(JAVA_CLASSES / ".compile.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if force or _classes_stale(sources):
            result = subprocess.run(
                [
                    javac,
                    "-nowarn",
                    "-encoding",
                    "UTF-8",
                    "-cp",
                    str(HESSIAN_JAR),
                    "-d",
                    str(JAVA_CLASSES),
                    *map(str, sources),
                ],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            if result.returncode != 0:
                raise PeerError(
                    f"javac failed (exit {result.returncode}):\n{result.stdout}{result.stderr}"
                )
            now = time.time()
            for source in sources:  # javac may skip rewriting up-to-date classes
                if _class_file(source).is_file():
                    os.utime(_class_file(source), (now, now))
    return JAVA_CLASSES


def start_caucho(timeout: float = 60.0) -> LinePeer:
    """Starts interop/java/CauchoHarness (compiling it first if needed) and waits for it."""
    java = _require_tool("java", "openjdk-17-jdk-headless")
    classes = compile_caucho()
    argv = [
        java,
        *CAUCHO_JVM_FLAGS,
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-cp",
        f"{classes}{os.pathsep}{HESSIAN_JAR}",
        "CauchoHarness",
    ]
    peer = LinePeer(argv, cwd=JAVA_DIR, name="caucho")
    try:
        peer.ping(timeout=timeout)
    except BaseException:
        peer.close()
        raise
    return peer


# ------------------------------------------------------------------------------------------
# Node peers


def _require_node_modules(*modules: str) -> str:
    node = _require_tool("node", "nodejs (Node 20)")
    missing = [m for m in modules if not (NODE_MODULES / m / "package.json").is_file()]
    if missing:
        raise PeerError(
            f"Node modules missing in {NODE_MODULES}: {', '.join(missing)}; {_SETUP_HINT}"
        )
    return node


def start_hessianjs(timeout: float = 30.0) -> LinePeer:
    """Starts interop/node/hessianjs_harness.js (hessian.js 2.11 + js-to-java 2.8)."""
    node = _require_node_modules("hessian.js", "js-to-java")
    peer = LinePeer([node, "hessianjs_harness.js"], cwd=NODE_DIR, name="hessian.js")
    try:
        peer.ping(timeout=timeout)
    except BaseException:
        peer.close()
        raise
    return peer


class ReadyProcess(subprocess.Popen[bytes]):
    """A peer process that printed ``READY <port>``; ``close()`` stops it by PID (SIGTERM,
    up to 5 s grace, then SIGKILL)."""

    port: int
    name: str
    _stderr_lines: deque[str]

    def stderr_tail(self, lines: int = 20) -> str:
        return "\n".join(list(self._stderr_lines)[-lines:])

    def close(self) -> None:
        _terminate(self)
        for stream in (self.stdout, self.stderr):
            if stream is not None:
                with contextlib.suppress(OSError, ValueError):
                    stream.close()

    def __enter__(self) -> ReadyProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


#: the sofa-rpc-node provider is one of them
SofaProvider = ReadyProcess


def start_ready_process(
    args: list[str], cwd: Path | None, name: str, timeout: float, port: int = 0
) -> ReadyProcess:
    """Start ``args`` and wait for its first stdout line, ``READY <port>`` (stderr is kept
    for the error message; a non-zero ``port`` must be the one reported)."""
    try:
        proc = ReadyProcess(
            args, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError as exc:
        raise PeerError(f"{name}: cannot start: {exc}") from exc
    proc.name = name
    proc._stderr_lines = deque(maxlen=_STDERR_LINES)
    assert proc.stdout is not None and proc.stderr is not None
    threading.Thread(
        target=_drain, args=(proc.stderr, proc._stderr_lines), name=f"{name}-err", daemon=True
    ).start()
    first: queue.Queue[str | None] = queue.Queue()

    def read_stdout(stream: IO[bytes]) -> None:
        lines = iter(stream.readline, b"")
        try:
            first.put(next(lines, b"").decode("utf-8", "replace").strip() or None)
            for _ in lines:  # nothing more is expected; keep the pipe drained
                pass
        except (OSError, ValueError):
            first.put(None)

    threading.Thread(
        target=read_stdout, args=(proc.stdout,), name=f"{name}-out", daemon=True
    ).start()

    def fail(what: str) -> PeerError:
        time.sleep(0.05)
        rc = proc.poll()
        proc.close()
        tail = proc.stderr_tail()
        return PeerError(
            f"{name}: {what} (exit code {rc if rc is not None else '-'})"
            + (f"\n--- stderr tail ---\n{tail}" if tail else "")
        )

    try:
        line = first.get(timeout=timeout)
    except queue.Empty:
        raise fail(f"no READY line within {timeout:g}s") from None
    parts = (line or "").split()
    if len(parts) != 2 or parts[0] != "READY" or not parts[1].isdigit():
        raise fail(f"expected 'READY <port>', got {line!r}")
    actual = int(parts[1])
    if port and actual != port:
        raise fail(f"asked for port {port}, it reports {actual}")
    proc.port = actual
    return proc


def start_sofa_provider(
    port: int, timeout: float = 30.0, zookeeper: str | None = None
) -> ReadyProcess:
    """Starts interop/node/dubbo_provider.js on 127.0.0.1:``port`` (0 = any free port).

    With ``zookeeper`` (``127.0.0.1:2181/dubbo``: address, then root path) the provider
    registers itself there with sofa-rpc-node's ZookeeperRegistry before it reports READY.

    Returns once the provider printed ``READY <port>``; the actual port is ``.port``.
    Stop it with ``.close()`` (or use it as a context manager).
    """
    node = _require_node_modules("sofa-rpc-node", "dubbo-remoting", "js-to-java", "hessian.js")
    args = [node, "dubbo_provider.js", str(port), *([zookeeper] if zookeeper else [])]
    return start_ready_process(args, NODE_DIR, "sofa provider", timeout, port)


# ------------------------------------------------------------------------------------------
# TJSON helpers


def _ok(peer: LinePeer, command: str, timeout: float) -> Any:
    reply = peer.request(command, timeout=timeout)
    if "error" in reply:
        raise PeerReplyError(f"{peer.name}: {reply['error']}", reply)
    return reply["ok"]


def encode(peer: LinePeer, tjson: Any, timeout: float = 10.0) -> bytes:
    """The bytes the peer writes for a TJSON value (raises PeerReplyError if it refuses)."""
    hex_bytes = _ok(peer, "encode " + json.dumps(tjson, separators=(",", ":")), timeout)
    if not isinstance(hex_bytes, str):
        raise PeerError(f"{peer.name}: encode answered {hex_bytes!r}, not a hex string")
    return bytes.fromhex(hex_bytes)


def _normalize(tjson: Any) -> Any:
    """Makes ``["double", 3]`` (how Node prints 3.0) ``["double", 3.0]``, recursively."""
    if not isinstance(tjson, list) or not tjson:
        return tjson
    tag = tjson[0]
    if tag == "double" and len(tjson) == 2 and type(tjson[1]) is int:
        return ["double", float(tjson[1])]
    if tag == "list" and len(tjson) >= 3 and isinstance(tjson[2], list):
        return [tag, tjson[1], [_normalize(v) for v in tjson[2]], *tjson[3:]]
    if tag == "map" and len(tjson) >= 3 and isinstance(tjson[2], list):
        entries = [[_normalize(k), _normalize(v)] for k, v in tjson[2]]
        return [tag, tjson[1], entries, *tjson[3:]]
    if tag == "object" and len(tjson) >= 3 and isinstance(tjson[2], list):
        fields = [[name, _normalize(v)] for name, v in tjson[2]]
        return [tag, tjson[1], fields, *tjson[3:]]
    return tjson


def decode(peer: LinePeer, data: bytes, timeout: float = 10.0) -> Any:
    """The TJSON of the one hessian value in ``data`` as the peer reads it.

    JSON numbers of doubles are returned as Python floats whichever peer printed them.
    """
    return _normalize(_ok(peer, "decode " + data.hex(), timeout))
