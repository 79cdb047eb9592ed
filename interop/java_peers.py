"""Real Apache Dubbo (Java) providers and consumers for the compatibility matrix.

The services are ours (``interop/java/peer``), built by ``scripts/setup.sh`` against each pinned
Dubbo line (``interop/java/dubbo33``: 3.3.x, ``interop/java/dubbo27``: 2.7.23); nothing is
downloaded here, the JVMs run with ``java -cp``.

Dubbo refuses to register a loopback address, so every JVM runs inside one network namespace
created here (``tbjm<pid>``), joined to the root namespace by a veth pair on a private /30::

    root namespace  HOST_IP (gateway, ZooKeeper servers)  ══ veth ══  NS_IP (Java providers
                                                                      and consumers)

Providers (one JVM each, one registry each, so each discovery cell sees one provider):

``33d``  Dubbo 3.3, dubbo on 20880; interface- and application-level registration, the
         MetadataService over dubbo
``33t``  Dubbo 3.3, tri on 50051; the MetadataService over tri
``27``   Dubbo 2.7.23, dubbo on 20890; interface-level registration
``33u``  Dubbo 3.3, dubbo and tri on one port 20881 (``ext-protocol``); no registry
``33n``  Dubbo 3.3, dubbo on 20882, registered through Dubbo's nacos registry (the Java
         nacos-client) into the Nacos emulator, interface- and application-level

Each exports ``com.tribridge.compat.TypesService`` 1.0.0 and ``GreetService`` as g1/1.0.0,
g2/1.0.0 and g1/2.0.0.  Consumers (``Consumer`` main, one per line) read ``run URL [checks]``
on stdin and answer one JSON line of check results.  Everything is stopped by PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .netns import Namespaces
from .zk_server import ZookeeperServer

JAVA_DIR = Path(__file__).resolve().parent / "java"
LINES = {"3.3": "dubbo33", "2.7": "dubbo27"}
TYPES = "com.tribridge.compat.TypesService"
GREET = "com.tribridge.compat.GreetService"
JVM_FLAGS = [
    "-Xshare:auto",
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
    "-Xmx256m",
    "-Djava.net.preferIPv4Stack=true",
    "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
    "-Ddubbo.application.logger=slf4j",
    # a namespace holds several JVMs: no QoS server on :22222 (both spellings of the key)
    "-Ddubbo.application.qos-enable=false",
    "-Ddubbo.application.qos.enable=false",
    "-Ddubbo.qos.enable=false",
    *(
        f"--add-opens=java.base/{p}=ALL-UNNAMED"
        for p in (
            "java.lang",
            "java.util",
            "java.math",
            "java.io",
            "java.time",
            "java.net",
            "java.lang.reflect",
            "java.util.concurrent",
            "java.text",
            "sun.nio.ch",
        )
    ),
]


class JavaPeerError(RuntimeError):
    """A Java peer could not be built into a classpath or did not become ready."""


def classpath(line: str) -> str:
    """``target/classes`` plus the copied dependencies of one line's module."""
    mod = JAVA_DIR / LINES[line]
    classes, lib = mod / "target" / "classes", mod / "target" / "lib"
    if (
        not (classes / "com" / "tribridge" / "compat" / "Provider.class").exists()
        or not lib.is_dir()
    ):
        raise JavaPeerError(
            f"the Dubbo {line} peer is not built ({classes} missing): run scripts/setup.sh"
        )
    return f"{classes}:{lib}/*"


def subnet() -> tuple[str, str]:
    """(host address, namespace address) of a /30 in 10.232.0.0/16 chosen by our PID."""
    n = os.getpid() % 16384
    net, low = f"10.232.{n // 64}", (n % 64) * 4
    return f"{net}.{low + 1}", f"{net}.{low + 2}"


@dataclass
class JavaProcess:
    """One JVM in the namespace; its stdout+stderr go to ``log``."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, marker: str, deadline: float) -> None:
        while marker not in self.text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise JavaPeerError(
                    f"{self.name} did not print {marker!r} (exit {self.proc.poll()}):\n"
                    + self.text()[-4000:]
                )
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGKILL by PID: the namespace and the ZooKeeper servers go away with it."""
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)


@dataclass
class Provider:
    """A running provider: where it listens and which ZooKeeper it registered in."""

    key: str
    line: str
    dubbo_version: str
    ports: dict[str, int]  # "dubbo" / "tri" / "dubbo+tri" -> port
    zk: ZookeeperServer | None
    process: JavaProcess
    app: str

    @property
    def zookeeper(self) -> str:
        assert self.zk is not None, f"provider {self.key} registers nowhere"
        return self.zk.address


class Consumer:
    """A long-running Java consumer; ``run(url)`` executes its checks against that address."""

    def __init__(self, line: str, process: JavaProcess, stdin: Any, stdout: Any) -> None:
        self.line = line
        self.process = process
        self._in, self._out = stdin, stdout
        self._lock = threading.Lock()

    def run(
        self, url: str, checks: list[str] | None = None, timeout: float = 120
    ) -> dict[str, str]:
        """Check name -> ``"ok"`` or what differed (exception class and message)."""
        with self._lock:
            cmd = f"run {url}" + (f" {','.join(checks)}" if checks else "")
            self._in.write((cmd + "\n").encode())
            self._in.flush()
            box: list[bytes] = []
            t = threading.Thread(target=lambda: box.append(self._out.readline()), daemon=True)
            t.start()
            t.join(timeout)
            if not box or not box[0]:
                raise JavaPeerError(
                    f"Java {self.line} consumer gave no answer to {cmd!r} within {timeout:g}s:\n"
                    + self.process.text()[-3000:]
                )
            return json.loads(box[0])


@dataclass
class JavaPeers:
    """Everything started for the session; ``close()`` stops it all by PID."""

    tmp: Path
    nets: Namespaces
    host_ip: str
    ns_ip: str
    providers: dict[str, Provider] = field(default_factory=dict)
    consumers: dict[str, Consumer] = field(default_factory=dict)
    processes: list[JavaProcess] = field(default_factory=list)
    zks: list[ZookeeperServer] = field(default_factory=list)
    nacos: Any = None  # nacos_emulator.EmulatorProcess, on the host side of the veth
    startup_seconds: float = 0.0

    @property
    def nacos_address(self) -> str:
        assert self.nacos is not None, "no Nacos emulator started"
        return f"{self.host_ip}:{self.nacos.http_port}"

    def spawn(self, name: str, line: str, main: str, args: list[str], props: list[str],
              stdin: bool = False) -> JavaProcess:  # fmt: skip
        java = shutil.which("java")
        if not java:
            raise JavaPeerError("java not found: run scripts/setup.sh")
        log = self.tmp / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [*self.nets.exec_prefix("java"), java, *JVM_FLAGS, *props,
                 "-cp", classpath(line), main, *args],
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE if stdin else out,
                stderr=out,
            )  # fmt: skip
        jp = JavaProcess(name, proc, log)
        self.processes.append(jp)
        return jp

    def close(self) -> None:
        for p in self.processes:
            with contextlib.suppress(OSError):
                p.stop()
        for zk in self.zks:
            zk.close()
        if self.nacos is not None:
            self.nacos.close()
        self.nets.delete()
        if not os.environ.get("TRIBRIDGE_KEEP_JAVA_LOGS"):
            shutil.rmtree(self.tmp, ignore_errors=True)


# key -> (line, protocol -> port, registry: "zk" (a ZooKeeper of its own), "nacos" (the
# session's Nacos emulator) or None)
PROVIDERS: dict[str, tuple[str, dict[str, int], str | None]] = {
    "33d": ("3.3", {"dubbo": 20880}, "zk"),
    "33t": ("3.3", {"tri": 50051}, "zk"),
    # Dubbo refuses a tri export and a dubbo+tri export of one service in one process
    "33u": ("3.3", {"dubbo+tri": 20881}, None),
    "27": ("2.7", {"dubbo": 20890}, "zk"),
    # Dubbo's own nacos registry (Java nacos-client 2.x, gRPC) into interop/nacos_emulator.py
    "33n": ("3.3", {"dubbo": 20882}, "nacos"),
}


def start_java_peers(
    consumers: bool = True, timeout: float = 120.0, tmp: Path | None = None
) -> JavaPeers:
    """Namespace, one ZooKeeper per provider, the providers (and consumers), all ready."""
    if os.geteuid() != 0:
        raise JavaPeerError("the Java peers need root to create a network namespace")
    for line in LINES:
        classpath(line)
    t0 = time.monotonic()
    host_ip, ns_ip = subnet()
    nets = Namespaces("tbjm")
    peers = JavaPeers(Path(tmp or tempfile.mkdtemp(prefix="tribridge-java-")), nets, host_ip, ns_ip)
    try:
        nets.add("java")
        nets.veth("v", None, f"{host_ip}/30", "java", f"{ns_ip}/30")
        started: list[tuple[JavaProcess, str]] = []
        if any(p[2] == "nacos" for p in PROVIDERS.values()):
            from .nacos_emulator import start_emulator_process

            peers.nacos = start_emulator_process(0, "--host", host_ip)
        for key, (line, ports, kind) in PROVIDERS.items():
            zk = None
            registry = "N/A"
            if kind == "zk":
                zk = ZookeeperServer(host=host_ip)
                peers.zks.append(zk)
                zk.start(timeout=30)
                registry = f"zookeeper://{zk.address}?timeout=20000"
            elif kind == "nacos":
                registry = f"nacos://{peers.nacos_address}"
            app = f"compat-{key}"
            spec = ",".join(f"{name}:{port}" for name, port in ports.items())
            # 2.7 publishes service definitions (signatures) only to a configured metadata report
            props = (
                [f"-Ddubbo.metadata-report.address=zookeeper://{zk.address}"]
                if zk and line == "2.7"
                else []
            )
            proc = peers.spawn(
                f"provider-{key}", line, "com.tribridge.compat.Provider",
                [f"app={app}", f"host={ns_ip}", f"protocols={spec}",
                 f"registry={registry}"],
                props,
            )  # fmt: skip
            started.append((proc, "READY"))
            peers.providers[key] = Provider(key, line, "", ports, zk, proc, app)
        if consumers:
            for line in LINES:
                proc = peers.spawn(
                    f"consumer-{line}", line, "com.tribridge.compat.Consumer", [], [], stdin=True
                )
                assert proc.proc.stdin is not None and proc.proc.stdout is not None
                peers.consumers[line] = Consumer(line, proc, proc.proc.stdin, proc.proc.stdout)
        deadline = time.monotonic() + timeout
        for proc, marker in started:
            proc.wait_ready(marker, deadline)
        for prov in peers.providers.values():
            ready = [ln for ln in prov.process.text().splitlines() if ln.startswith("READY")]
            prov.dubbo_version = ready[0].split()[2]
        for c in peers.consumers.values():
            _wait_consumer_ready(c, deadline)
        peers.startup_seconds = time.monotonic() - t0
        return peers
    except BaseException:
        peers.close()
        raise


def _wait_consumer_ready(c: Consumer, deadline: float) -> None:
    box: list[bytes] = []
    t = threading.Thread(target=lambda: box.append(c._out.readline()), daemon=True)
    t.start()
    t.join(max(0.1, deadline - time.monotonic()))
    if not box or not box[0].startswith(b"READY"):
        raise JavaPeerError(
            f"Java {c.line} consumer did not start ({box!r}):\n" + c.process.text()[-3000:]
        )
