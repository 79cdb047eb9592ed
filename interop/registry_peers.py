"""Real registry servers and official registry clients, for proving tribridge's Eureka
discovery against a real Eureka server and its Nacos and Kubernetes emulators against the
official client libraries.

* ``start_eureka_server()``: Spring Cloud Netflix Eureka Server (``interop/java/eureka``),
  tuned for tests (no response cache, no self-preservation, eviction every 0.5 s);
* ``start_eureka_client(...)``: a Spring Cloud Netflix Eureka client app registering one
  instance with the ``dubbo.*`` metadata tribridge reads;
* ``start_nacos_java(...)`` / ``start_nacos_go(...)``: the official Java ``nacos-client``
  (``interop/java/nacos``) and Go ``nacos-sdk-go/v2`` (``interop/go/cmd/nacosprobe``);
* ``start_k8s_informer(...)``: ``k8s.io/client-go`` shared informers
  (``interop/go/cmd/k8sinformer``).

Everything is built by ``scripts/setup.sh`` (Maven ``package`` + ``copy-dependencies``,
``go build``); nothing is downloaded here.  A missing build or a peer that does not come up
raises ``PeerError`` (tests fail, never skip).  Every wait is bounded; processes are stopped by
their own PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from .peers import PeerError

__all__ = [
    "EUREKA_DIR",
    "GO_BIN",
    "JVM_FLAGS",
    "NACOS_JAVA_DIR",
    "EurekaServer",
    "LineClient",
    "free_port",
    "start_eureka_client",
    "start_eureka_server",
    "start_k8s_informer",
    "start_nacos_go",
    "start_nacos_java",
]

INTEROP_DIR = Path(__file__).resolve().parent
EUREKA_DIR = INTEROP_DIR / "java" / "eureka"
NACOS_JAVA_DIR = INTEROP_DIR / "java" / "nacos"
GO_BIN = INTEROP_DIR / "go" / "bin"

#: fast JVM start for short-lived test peers (C1 only, CDS when available, small heap)
JVM_FLAGS: tuple[str, ...] = ("-XX:TieredStopAtLevel=1", "-Xshare:auto", "-Xmx384m")
_SETUP = "run scripts/setup.sh (it builds interop/java/* and interop/go)"
_LOG_LINES = 300


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _classpath(module: Path) -> str:
    """``target/<artifact>.jar:target/lib/*`` of a module built by setup.sh."""
    jars = sorted((module / "target").glob("*.jar"))
    lib = module / "target" / "lib"
    if not jars or not lib.is_dir():
        raise PeerError(f"{module.relative_to(INTEROP_DIR.parent)} is not built: {_SETUP}")
    return f"{jars[0]}{os.pathsep}{lib}/*"


def _go_binary(name: str) -> Path:
    path = GO_BIN / name
    if not os.access(path, os.X_OK):
        raise PeerError(f"{path.relative_to(INTEROP_DIR.parent)} is not built: {_SETUP}")
    return path


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    return str(Path(home) / "bin" / "java") if home else "java"


def _stop(proc: subprocess.Popen[Any], grace: float) -> None:
    """SIGTERM by PID, then SIGKILL after ``grace`` seconds."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout=10)


class LineClient:
    """A child process driven by one command per stdin line.

    Its stdout lines are sorted: ``READY …`` (once), ``OK …`` / ``ERR …`` (the answer to the
    last command), ``EVENT {json}`` and bare ``{json}`` lines (asynchronous events, kept in
    ``events``); anything else (a JVM's logging) goes to the log tail shown in errors.
    """

    def __init__(self, argv: Sequence[str], name: str, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log: deque[str] = deque(maxlen=_LOG_LINES)
        self.events: list[dict[str, Any]] = []
        self.ready_line: str | None = None
        #: scratch directories (client caches, logs) removed by close()
        self.scratch: list[str] = []
        self._replies: queue.Queue[str | None] = queue.Queue()
        self._ready = threading.Event()
        self._cond = threading.Condition()
        self._lock = threading.Lock()
        try:
            self.proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )
        except OSError as e:
            raise PeerError(f"{name}: cannot start: {e}") from e
        assert self.proc.stdout is not None
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    def _read(self, stream: IO[bytes]) -> None:
        try:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                if line.startswith("READY") and self.ready_line is None:
                    self.ready_line = line
                    self._ready.set()
                elif line.startswith(("OK", "ERR")):
                    self._replies.put(line)
                elif line.startswith(("EVENT {", "{")):
                    try:
                        event = json.loads(line.removeprefix("EVENT "))
                    except ValueError:
                        self.log.append(line)
                        continue
                    with self._cond:
                        self.events.append(event)
                        self._cond.notify_all()
                else:
                    self.log.append(line)
        except (OSError, ValueError):
            pass
        finally:
            self._ready.set()
            self._replies.put(None)
            with self._cond:
                self._cond.notify_all()

    def _fail(self, what: str) -> PeerError:
        rc = self.proc.poll()
        tail = "\n".join(list(self.log)[-40:])
        return PeerError(
            f"{self.name}: {what} (exit code {rc if rc is not None else '-'})"
            + (f"\n--- output tail ---\n{tail}" if tail else "")
        )

    def wait_ready(self, timeout: float) -> str:
        """The ``READY …`` line; PeerError (with the log tail) if none within ``timeout``."""
        if not self._ready.wait(timeout) or self.ready_line is None:
            err = self._fail(f"no READY line within {timeout:g}s")
            self.close(grace=2)
            raise err
        return self.ready_line

    def command(self, line: str, timeout: float = 30.0) -> str:
        """Send one command; return the text after ``OK`` (PeerError on ``ERR`` / no answer)."""
        with self._lock:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.write(line.encode() + b"\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError) as e:
                raise self._fail(f"{line!r}: cannot write: {e}") from e
            try:
                reply = self._replies.get(timeout=timeout)
            except queue.Empty:
                raise self._fail(f"{line!r}: no answer within {timeout:g}s") from None
        if reply is None:
            raise self._fail(f"{line!r}: the process ended")
        if reply.startswith("ERR"):
            raise PeerError(f"{self.name}: {line!r} -> {reply}")
        return reply[2:].strip()

    def json_command(self, line: str, timeout: float = 30.0) -> Any:
        return json.loads(self.command(line, timeout))

    def wait_event(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float, what: str = "an event"
    ) -> dict[str, Any]:
        """The first event (seen so far or arriving within ``timeout``) that ``pred`` accepts."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for ev in self.events[seen:]:
                    if pred(ev):
                        return ev
                seen = len(self.events)
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    break
                self._cond.wait(min(left, 0.5))
        raise self._fail(
            f"timed out after {timeout:g}s waiting for {what}; events: {self.events[-5:]}"
        )

    def close(self, grace: float = 10.0, command: str | None = "EXIT") -> None:
        """Ask politely (``command`` on stdin, then EOF), then stop by PID."""
        if self.proc.poll() is None and self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                if command:
                    self.proc.stdin.write(command.encode() + b"\n")
                self.proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace)
        _stop(self.proc, 2.0)
        for d in self.scratch:
            shutil.rmtree(d, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL by PID: the process leaves without unregistering anything."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


# ---- Eureka ------------------------------------------------------------------------------------

#: server properties for tests: everything on 127.0.0.1, changes visible at once (no read-only
#: response cache), dead leases evicted within ~1 s, no self-preservation, no peers to wait for
EUREKA_SERVER_PROPS: tuple[str, ...] = (
    "--server.address=127.0.0.1",
    "--spring.application.name=eureka",
    "--spring.main.banner-mode=off",
    "--eureka.client.register-with-eureka=false",
    "--eureka.client.fetch-registry=false",
    "--eureka.server.enable-self-preservation=false",
    "--eureka.server.use-read-only-response-cache=false",
    "--eureka.server.eviction-interval-timer-in-ms=500",
    "--eureka.server.wait-time-in-ms-when-sync-empty=0",
    "--eureka.server.registry-sync-retries=0",
    "--eureka.dashboard.enabled=false",
)


class EurekaServer:
    """A running Spring Cloud Netflix Eureka server (``url`` ends in ``/eureka/``)."""

    def __init__(self, proc: LineClient, port: int) -> None:
        self.proc = proc
        self.port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/eureka/"

    def apps_xml(self) -> str:
        with urllib.request.urlopen(self.url + "apps/", timeout=5) as r:
            return str(r.read().decode())

    def close(self) -> None:
        """SIGTERM by PID (Spring's graceful shutdown), SIGKILL after 10 s; then its
        scratch directory (the embedded Tomcat's work files) goes."""
        _stop(self.proc.proc, 10.0)
        for d in self.proc.scratch:
            shutil.rmtree(d, ignore_errors=True)

    def restart(self, timeout: float = 90.0) -> None:
        """Stop, then start a new server on the same port: it comes back empty, as a lone
        Eureka server does, and clients must register again."""
        self.close()
        self.proc = start_eureka_server(timeout, port=self.port).proc


def start_eureka_server(timeout: float = 90.0, port: int = 0) -> EurekaServer:
    """Start the server (on a free port unless ``port``) and wait until ``GET /eureka/apps/``
    answers 200."""
    port = port or free_port()
    tmp = tempfile.mkdtemp(prefix="tribridge-eureka-server-")
    argv = [
        _java(),
        *JVM_FLAGS,
        f"-Djava.io.tmpdir={tmp}",  # Spring Boot's Tomcat work dirs, removed by close()
        "-cp",
        _classpath(EUREKA_DIR),
        "com.tribridge.interop.eureka.server.EurekaServerApp",
        f"--server.port={port}",
        f"--eureka.client.service-url.defaultZone=http://127.0.0.1:{port}/eureka/",
        *EUREKA_SERVER_PROPS,
    ]
    proc = LineClient(argv, "eureka-server")
    proc.scratch.append(tmp)
    server = EurekaServer(proc, port)
    deadline = time.monotonic() + timeout
    while True:
        if proc.proc.poll() is not None:
            raise proc._fail("the Eureka server exited")
        try:
            server.apps_xml()
            return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            err = proc._fail(f"GET /eureka/apps/ did not answer within {timeout:g}s")
            proc.close(grace=2, command=None)
            raise err
        time.sleep(0.25)


def start_eureka_client(
    server_url: str,
    app: str,
    instance_id: str,
    port: int,
    metadata: dict[str, str],
    timeout: float = 90.0,
) -> LineClient:
    """A Spring Cloud Eureka client app registering ``instance_id`` of ``app`` at
    127.0.0.1:``port`` with ``metadata``; 1 s renewals, 3 s leases, 1 s registry fetches.
    Commands: ``STATUS UP|DOWN|OUT_OF_SERVICE``, ``APPS NAME``, ``CANCEL``, ``EXIT``."""
    meta = [f"--eureka.instance.metadata-map[{k}]={v}" for k, v in metadata.items()]
    tmp = tempfile.mkdtemp(prefix="tribridge-eureka-client-")
    argv = [
        _java(),
        *JVM_FLAGS,
        f"-Djava.io.tmpdir={tmp}",  # Spring Boot's Tomcat work dirs, removed by close()
        "-cp",
        _classpath(EUREKA_DIR),
        "com.tribridge.interop.eureka.client.EurekaClientApp",
        f"--spring.application.name={app}",
        "--spring.main.banner-mode=off",
        # the server's Jersey client is on this classpath too; a Spring Cloud app without the
        # server uses Spring's RestTemplate transport, and so does this one
        "--eureka.client.jersey.enabled=false",
        f"--eureka.client.service-url.defaultZone={server_url}",
        "--eureka.client.registry-fetch-interval-seconds=1",
        "--eureka.client.instance-info-replication-interval-seconds=1",
        "--eureka.client.initial-instance-info-replication-interval-seconds=0",
        "--eureka.instance.lease-renewal-interval-in-seconds=1",
        "--eureka.instance.lease-expiration-duration-in-seconds=3",
        "--eureka.instance.prefer-ip-address=true",
        "--eureka.instance.ip-address=127.0.0.1",
        "--eureka.instance.hostname=127.0.0.1",
        f"--eureka.instance.non-secure-port={port}",
        f"--eureka.instance.instance-id={instance_id}",
        *meta,
    ]
    client = LineClient(argv, f"eureka-client {instance_id}")
    client.scratch.append(tmp)
    client.wait_ready(timeout)
    return client


# ---- Nacos -------------------------------------------------------------------------------------


def start_nacos_java(server_addr: str, namespace: str = "", timeout: float = 60.0) -> LineClient:
    """The official Java nacos-client (NacosProbe) connected to ``server_addr`` (host:port;
    gRPC on port + 1000), in ``namespace`` (empty: public).  Its snapshot/log files go to a
    temporary home."""
    home = tempfile.mkdtemp(prefix="tribridge-nacos-java-")
    argv = [
        _java(),
        *JVM_FLAGS,
        f"-Duser.home={home}",
        f"-DJM.LOG.PATH={home}/logs",
        f"-DJM.SNAPSHOT.PATH={home}",
        "-cp",
        _classpath(NACOS_JAVA_DIR),
        "com.tribridge.interop.nacos.NacosProbe",
        server_addr,
        namespace,
    ]
    client = LineClient(argv, "nacos-client (Java)")
    client.scratch.append(home)
    client.wait_ready(timeout)
    return client


def start_nacos_go(server_addr: str, namespace: str = "", timeout: float = 30.0) -> LineClient:
    """The official Go nacos-sdk-go/v2 (nacosprobe) connected to ``server_addr``, in
    ``namespace`` (empty: public)."""
    d = tempfile.mkdtemp(prefix="tribridge-nacos-go-")
    argv = [str(_go_binary("nacosprobe")), "-server", server_addr, "-dir", d]
    client = LineClient([*argv, "-namespace", namespace], "nacos-sdk-go")
    client.scratch.append(d)
    client.wait_ready(timeout)
    return client


# ---- Kubernetes --------------------------------------------------------------------------------


def start_k8s_informer(
    server_url: str, namespace: str, selector: str = "", timeout: float = 30.0
) -> LineClient:
    """client-go informers on EndpointSlices (``selector``) and Endpoints in ``namespace``;
    returns once both caches have synced (the ``{"kind": "SYNCED"}`` event)."""
    argv = [str(_go_binary("k8sinformer")), "-server", server_url, "-namespace", namespace]
    if selector:
        argv += ["-selector", selector]
    client = LineClient(argv, "client-go informer")
    try:
        client.wait_event(lambda e: e.get("kind") == "SYNCED", timeout, "the informers to sync")
    except PeerError:
        client.close(grace=2, command=None)
        raise
    return client
