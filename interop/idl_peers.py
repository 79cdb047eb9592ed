"""Launchers for the IDL-mode peers: a grpcio server and a dubbo-node server.

Both print ``READY <port>`` once listening on 127.0.0.1; ``close()`` stops them by PID::

    with start_grpc_server("demo") as srv:          # grpcio + reflection (v1 and v1alpha)
        ...  srv.port
    with start_dubbo_node_server(descriptor_set) as srv:   # Triple + gRPC, no reflection
        ...
"""

from __future__ import annotations

import contextlib
import queue
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO

from tribridge.idl import compile_protos

from .grpc_server import schema_files
from .peers import NODE_DIR, PeerError, _drain, _require_node_modules, _terminate

__all__ = ["ReadyProcess", "demo_descriptor_set", "start_dubbo_node_server", "start_grpc_server"]


class ReadyProcess(subprocess.Popen[bytes]):
    """A peer process that reported its port; ``close()`` stops it by PID."""

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


def _start(args: list[str], cwd: Path | None, name: str, timeout: float) -> ReadyProcess:
    try:
        proc = ReadyProcess(
            args,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError as exc:
        raise PeerError(f"{name}: cannot start: {exc}") from exc
    proc.name = name
    proc._stderr_lines = deque(maxlen=200)
    assert proc.stdout is not None and proc.stderr is not None
    threading.Thread(
        target=_drain, args=(proc.stderr, proc._stderr_lines), name=f"{name}-err", daemon=True
    ).start()
    first: queue.Queue[str | None] = queue.Queue()

    def read_stdout(stream: IO[bytes]) -> None:
        lines = iter(stream.readline, b"")
        try:
            first.put(next(lines, b"").decode("utf-8", "replace").strip() or None)
            for _ in lines:
                pass
        except (OSError, ValueError):
            first.put(None)

    threading.Thread(target=read_stdout, args=(proc.stdout,), daemon=True).start()

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
    proc.port = int(parts[1])
    return proc


def start_grpc_server(
    schema: str = "demo",
    reflection: str = "v1,v1alpha",
    port: int = 0,
    tag: str = "grpcio",
    timeout: float = 30.0,
) -> ReadyProcess:
    """interop/grpc_server.py in a child Python: ``schema`` demo, evolve_v1 or evolve_v2."""
    args = [sys.executable, "-m", "tribridge.interop.grpc_server", "--schema", schema]
    args += ["--port", str(port), "--reflection", reflection or "none", "--tag", tag]
    return _start(args, None, f"grpc server ({schema})", timeout)


def demo_descriptor_set(out: Path, schema: str = "demo") -> Path:
    """Compile the demo protos to a descriptor set file (what ``protoc -o`` would write)."""
    files, inc = schema_files(schema)
    out.write_bytes(compile_protos(files, inc))
    return out


def start_dubbo_node_server(descriptor_set: Path, port: int = 0, timeout: float = 30.0):
    """interop/node/dubbo_node_server.js (@apachedubbo/dubbo-node, Triple + gRPC over h2c)."""
    node = _require_node_modules(
        "@apachedubbo/dubbo", "@apachedubbo/dubbo-node", "@bufbuild/protobuf"
    )
    args = [node, "dubbo_node_server.js", str(descriptor_set), str(port)]
    return _start(args, NODE_DIR, "dubbo-node server", timeout)
