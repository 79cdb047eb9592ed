"""A Triple provider built with apache-dubbo (the official Python Dubbo, PyPI 3.0.0b1) that
registers itself in ZooKeeper with apache-dubbo's own ZooKeeper registry.

    python -m tribridge.interop.apache_dubbo_provider --zookeeper 127.0.0.1:2181 [--port 0]

Serves ``com.tribridge.demo.TripleGreeter`` (unary ``greet``: raw bytes in, ``Hello, `` +
bytes out — apache-dubbo's default serialization is raw bytes) on 127.0.0.1 and prints
``READY <port>`` once exported.  apache-dubbo registers a ``tri://`` URL without
``interface``/``methods``/``side`` (peers.md); tribridge must still find it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

SERVICE = "com.tribridge.demo.TripleGreeter"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def greet(request: bytes) -> bytes:
    return b"Hello, " + request


class ApacheDubboProvider:
    """The provider process, started by ``start()``; stop it by PID with ``close()``."""

    def __init__(self, zookeeper: str, timeout: float = 30.0) -> None:
        import subprocess

        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tribridge.interop.apache_dubbo_provider",
                "--zookeeper",
                zookeeper,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        box: list[bytes] = []
        t = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(timeout)
        line = box[0].decode().split() if box else []
        if len(line) != 2 or line[0] != "READY":
            self.close()
            err = (
                self.proc.stderr.read().decode("utf-8", "replace")[-2000:]
                if self.proc.stderr
                else ""
            )
            raise RuntimeError(f"apache-dubbo provider did not start (got {box!r}):\n{err}")
        self.port = int(line[1])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except Exception:
                self.proc.kill()
                self.proc.wait(5)
        for s in (self.proc.stdout, self.proc.stderr):
            if s is not None:
                s.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tribridge.interop.apache_dubbo_provider")
    parser.add_argument("--zookeeper", required=True, help="host:port of ZooKeeper")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port")
    parser.add_argument("--application", default="tribridge-apache-dubbo")
    args = parser.parse_args(argv)

    try:
        import dubbo
        from dubbo.configs import ApplicationConfig, RegistryConfig, ServiceConfig
        from dubbo.proxy.handlers import RpcMethodHandler, RpcServiceHandler
    except ImportError as e:
        print(
            f'apache-dubbo is not installed: pip install "apache-dubbo[zookeeper]" ({e})',
            file=sys.stderr,
        )
        return 2

    host, _, zk_port = args.zookeeper.rpartition(":")
    port = args.port or _free_port()
    handler = RpcServiceHandler(
        service_name=SERVICE,
        method_handlers=[RpcMethodHandler.unary(greet, method_name="greet")],
    )
    bootstrap = dubbo.Dubbo(
        application_config=ApplicationConfig(name=args.application),
        registry_config=RegistryConfig("zookeeper", host or "127.0.0.1", int(zk_port)),
    )
    server = bootstrap.create_server(ServiceConfig(handler, host="127.0.0.1", port=port))
    server.start()
    print(f"READY {port}", flush=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
