"""A real ZooKeeper 3.8 server (Debian package ``zookeeper``) on a free 127.0.0.1 port.

Used by the tests and by ``python -m tribridge.interop.zk_server``::

    with start_zookeeper() as zk:        # ready: answered ``ruok`` with ``imok``
        print(zk.address)                # "127.0.0.1:34567"
        zk.stop(); zk.start()            # same port and data dir: clients reconnect

No systemd and no admin server (it would bind :8080).  The process is stopped by its PID.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

ZK_JARS = (
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/zookeeper-jute.jar",
    "/usr/share/java/slf4j-api.jar",
    "/usr/share/java/slf4j-simple.jar",
)
MAIN_CLASS = "org.apache.zookeeper.server.ZooKeeperServerMain"
_HINT = "install the Debian packages with scripts/setup.sh (zookeeper, openjdk-17-jdk-headless)"


class ZookeeperError(RuntimeError):
    """ZooKeeper could not be started (the message carries the server's log tail)."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def four_letter(port: int, cmd: str = "ruok", timeout: float = 1.0, host: str = "127.0.0.1") -> str:
    """Send a four-letter command; '' when nothing answers."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(cmd.encode())
            s.shutdown(socket.SHUT_WR)
            chunks = []
            while True:
                data = s.recv(4096)
                if not data:
                    break
                chunks.append(data)
            return b"".join(chunks).decode("utf-8", "replace")
    except OSError:
        return ""


class ZookeeperServer:
    """One standalone server; ``stop()``/``start()`` keep the port and the data dir, so
    tests can take ZooKeeper away and bring it back under the same address."""

    def __init__(self, port: int = 0, java: str | None = None, host: str = "127.0.0.1") -> None:
        # host: another local address (e.g. a veth end that peers in a test namespace reach)
        self.host = host
        self.port = port or free_port(host)
        self.java = java or shutil.which("java") or ""
        self.dir = Path(tempfile.mkdtemp(prefix="tribridge-zk-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: deque[str] = deque(maxlen=80)
        (self.dir / "data").mkdir()
        (self.dir / "zoo.cfg").write_text(
            "\n".join(
                [
                    "tickTime=500",
                    "initLimit=10",
                    "syncLimit=5",
                    f"dataDir={self.dir / 'data'}",
                    f"clientPort={self.port}",
                    f"clientPortAddress={host}",
                    "admin.enableServer=false",
                    "4lw.commands.whitelist=ruok,stat,srvr,mntr,cons",
                    "maxClientCnxns=200",
                    # a test server: do not fsync every write (ZooKeeper's default does)
                    "forceSync=no",
                    # sessions as short as 1 s (2 ticks), so lost providers vanish quickly
                    "minSessionTimeout=1000",
                    "",
                ]
            )
        )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(list(self._log)[-lines:])

    def start(self, timeout: float = 30.0) -> ZookeeperServer:
        missing = [j for j in ZK_JARS if not os.path.exists(j)]
        if not self.java or missing:
            raise ZookeeperError(
                f"cannot start ZooKeeper: {'java not found' if not self.java else ''}"
                f"{' missing ' + ', '.join(missing) if missing else ''}; {_HINT}"
            )
        if self.running:
            return self
        cmd = [
            self.java,
            "-Xmx256m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "-cp",
            ":".join(ZK_JARS),
            MAIN_CLASS,
            str(self.dir / "zoo.cfg"),
        ]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        threading.Thread(target=self._drain, args=(self.proc,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ZookeeperError(
                    f"ZooKeeper exited with code {self.proc.returncode} on port {self.port}\n"
                    f"--- log ---\n{self.log_tail()}"
                )
            # imok comes before the server serves; srvr tells when it really does
            if four_letter(self.port, "ruok", 0.5, self.host) == "imok" and four_letter(
                self.port, "srvr", 0.5, self.host
            ).startswith("Zookeeper version"):
                return self
            time.sleep(0.05)
        self.stop()
        raise ZookeeperError(
            f"ZooKeeper did not answer ruok with imok within {timeout:g}s on port {self.port}\n"
            f"--- log ---\n{self.log_tail()}"
        )

    def _drain(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        with contextlib.suppress(OSError, ValueError):
            for line in iter(proc.stdout.readline, b""):
                self._log.append(line.decode("utf-8", "replace").rstrip())

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM by PID, SIGKILL after ``grace`` seconds; waits until the port is free."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc.stdout is not None:
            with contextlib.suppress(OSError):
                proc.stdout.close()

    def kill(self) -> None:
        """SIGKILL at once (a crashed server), by PID."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(5)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> ZookeeperServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_zookeeper(
    port: int = 0, timeout: float = 30.0, host: str = "127.0.0.1"
) -> ZookeeperServer:
    server = ZookeeperServer(port, host=host)
    try:
        return server.start(timeout)
    except BaseException:
        server.close()
        raise


def main() -> int:
    import signal

    with start_zookeeper() as zk:
        print(f"READY {zk.address}", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
