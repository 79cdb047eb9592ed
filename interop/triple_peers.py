"""Triple peers in subprocesses: an apache-dubbo (official Python Dubbo) Triple server and a
grpcio (grpc.aio) server, both serving a Java-interface-style service in wrapper mode.

apache-dubbo does the HTTP/2 and gRPC work; its per-method serializer functions turn the
``TripleRequestWrapper`` into arguments (protobuf runtime + python-hessian's decoder, not
our codec) and the result into a ``TripleResponseWrapper``, so it answers as a Java
wrapper-mode provider does.  apache-dubbo cannot set response headers, so the Java
business-exception shape (``tri-exception-code`` + ``grpc-status: 0``), status codes,
echoed headers and trailers come from the grpcio server.

With ``--zookeeper host:port`` the apache-dubbo server registers itself through
apache-dubbo's own ZooKeeper registry (a ``tri://`` URL under ``/dubbo``, without
``interface``/``methods``/``side``); it then serves ``SERVICE`` only, because
apache-dubbo's registry export takes a single service handler.

    python -m tribridge.interop.triple_peers dubbo PORT [--zookeeper HOST:PORT]
    python -m tribridge.interop.triple_peers grpc PORT
    python -m tribridge.interop.triple_peers fast PORT

``fast`` is the benchmark's Triple server: grpcio's C core (grpc.aio, raw bytes) serving the
Dubbo2 demo provider's ``greet``/``add`` in wrapper mode with tribridge's own hessian2 codec
and no per-call extras, so that gateway -> Triple and gateway -> Dubbo2 are compared against
servers of similar per-call cost (bench/triple_bench.py).
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SERVICE = "com.tribridge.triple.GreeterService"
RAW_SERVICE = "com.tribridge.triple.Raw"
DEMO_SERVICE = "com.tribridge.demo.DemoService"
#: method -> Class.getName() argument types a Java provider would declare
SIGNATURES: dict[str, list[str]] = {
    "greet": ["java.lang.String"],
    "add": ["int", "int"],
    "addLong": ["long", "long"],
    "echo": ["java.lang.Object"],
    "names": ["[Ljava.lang.String;"],
    "fail": ["java.lang.String"],
    "sleep": ["int"],
    "status": ["int", "java.lang.String"],
    "headers": [],
}
SERVER_NAME = "?"
APPLICATION = "tribridge-apache-dubbo"
RETURNS = {"greet": "java.lang.String", "add": "int", "addLong": "long"}


# ---- wrapper (de)serialization, independent of tribridge's codec on the way in -----------


def _hessian_read(data: bytes) -> Any:
    from pyhessian.parser import Parser
    from pyhessian.protocol import Object

    p = Parser()
    p.version = 2
    p._stream = io.BytesIO(data)
    v = p._adapter._read_object()

    def plain(x: Any) -> Any:
        if isinstance(x, Object):
            return {k: plain(y) for k, y in x.__getstate__().items()}
        if isinstance(x, dict):
            return {k: plain(y) for k, y in x.items()}
        if isinstance(x, (list, tuple)):
            return [plain(y) for y in x]
        return x

    return plain(v)


def unwrap(method: str, data: bytes) -> list[Any]:
    from tribridge.codecs.triple.wrapper_pb import TripleRequestWrapper

    m = TripleRequestWrapper()
    m.ParseFromString(data)
    if m.serializeType != "hessian4":
        raise ValueError(f"serializeType {m.serializeType!r}, Java expects hessian4")
    want = SIGNATURES.get(method)
    if method == "$invoke":
        want = ["java.lang.String", "[Ljava.lang.String;", "[Ljava.lang.Object;"]
    if want is not None and list(m.argTypes) != want:
        raise ValueError(f"no overload {method}({','.join(m.argTypes)}); declared {want}")
    return [_hessian_read(a) for a in m.args]


def wrap(value: Any, type_name: str = "java.lang.Object") -> bytes:
    from tribridge.codecs.hessian2 import encode
    from tribridge.codecs.triple.wrapper_pb import TripleResponseWrapper

    return TripleResponseWrapper(
        serializeType="hessian4", data=encode(value), type=type_name
    ).SerializeToString()


def java_exception(cls: str, message: str) -> Any:
    from tribridge.codecs.dubbo import java_exception as jx

    return jx(cls, message)


def business(method: str, args: list[Any], headers: dict[str, str] | None = None) -> Any:
    """The service's behaviour, shared by both servers."""
    if method == "$invoke":
        name, _types, real = args
        return business(name, list(real or []), headers)
    if method == "greet":
        return f"Hello, {args[0]} (via {SERVER_NAME})"
    if method in ("add", "addLong"):
        return args[0] + args[1]
    if method == "echo":
        return args[0]
    if method == "names":
        return [n.upper() for n in args[0]]
    if method == "sleep":
        time.sleep(args[0] / 1000)
        return args[0]
    if method == "headers":
        return dict(headers or {})
    if method == "fail":
        raise RuntimeError(f"failing on purpose: {args[0]}")
    raise ValueError(f"unknown method {method}")


# ---- apache-dubbo -------------------------------------------------------------------------


def serve_dubbo(port: int, zookeeper: str | None = None, application: str = APPLICATION) -> None:
    import dubbo
    from dubbo.configs import ApplicationConfig, RegistryConfig, ServiceConfig
    from dubbo.proxy.handlers import RpcMethodHandler, RpcServiceHandler

    def handler(method: str) -> RpcMethodHandler:
        def run(args: list[Any]) -> Any:
            return business(method, args)

        return RpcMethodHandler.unary(
            run,
            method_name=method,
            request_deserializer=lambda b: unwrap(method, b),
            response_serializer=lambda v: wrap(v, RETURNS.get(method, "java.lang.Object")),
        )

    svc = RpcServiceHandler(SERVICE, [handler(m) for m in [*SIGNATURES, "$invoke"]])
    config = ServiceConfig(svc, host="127.0.0.1", port=port)
    if zookeeper:
        zk_host, _, zk_port = zookeeper.rpartition(":")
        bootstrap = dubbo.Dubbo(
            application_config=ApplicationConfig(name=application),
            registry_config=RegistryConfig("zookeeper", zk_host or "127.0.0.1", int(zk_port)),
        )
        server = bootstrap.create_server(config)
    else:
        raw = RpcServiceHandler(
            RAW_SERVICE, [RpcMethodHandler.unary(lambda b: b[::-1], method_name="reverse")]
        )
        server = dubbo.Server(config)
        # apache-dubbo's export takes an iterable of handlers: both services on one port
        server._url.attributes["service-handler"] = [svc, raw]
    server.start()  # with a registry: registered, then listening
    print("ready", flush=True)
    while True:
        time.sleep(3600)


# ---- grpcio -------------------------------------------------------------------------------


async def _serve_grpc(
    port: int, max_streams: int = 0, host: str = "127.0.0.1", tls: str = "", mtls: bool = False
) -> None:
    import asyncio

    import grpc
    import grpc.aio

    def make(method: str) -> Any:
        async def h(req: bytes, ctx: grpc.aio.ServicerContext) -> bytes:
            md = {k: v for k, v in ctx.invocation_metadata() if isinstance(v, str)}
            ctx.set_trailing_metadata(
                (
                    ("x-served-by", "grpcio"),
                    ("x-echo-bin", b"\x00\xff"),
                    ("traceid", md.get("traceid", "")),
                )
            )
            try:
                args = unwrap(method, req)
            except ValueError as e:
                await ctx.abort(grpc.StatusCode.UNIMPLEMENTED, str(e))
            if method == "status":
                await ctx.abort(grpc.StatusCode(_code(args[0])), args[1])
            if method == "sleep":
                await asyncio.sleep(args[0] / 1000)
                return wrap(args[0], "int")
            try:
                value = business(method, args, md)
            except RuntimeError as e:
                # Java's wrapper-mode business exception: grpc-status 0 + tri-exception-code
                await ctx.send_initial_metadata((("tri-exception-code", "3"),))
                return wrap(
                    java_exception("java.lang.IllegalStateException", str(e)), "java.lang.String"
                )
            return wrap(value, RETURNS.get(method, "java.lang.Object"))

        return grpc.unary_unary_rpc_method_handler(h)

    options = [("grpc.max_concurrent_streams", max_streams)] if max_streams else []
    options += [("grpc.max_receive_message_length", 16 << 20)]
    server = grpc.aio.server(options=options)
    handlers = {m: make(m) for m in [*SIGNATURES, "$invoke"]}
    # also under the demo provider's interface, so one service can have a Dubbo2 and a
    # Triple instance
    server.add_generic_rpc_handlers(
        tuple(grpc.method_handlers_generic_handler(s, handlers) for s in (SERVICE, DEMO_SERVICE))
    )
    if tls:  # certificates from tribridge.security.certs.make_certs: server.pem/.key, ca.pem
        d = Path(tls)
        creds = grpc.ssl_server_credentials(
            [((d / "server.key").read_bytes(), (d / "server.pem").read_bytes())],
            root_certificates=(d / "ca.pem").read_bytes() if mtls else None,
            require_client_auth=mtls,
        )
        server.add_secure_port(f"{host}:{port}", creds)
    else:
        server.add_insecure_port(f"{host}:{port}")
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


async def _serve_fast(port: int) -> None:
    import grpc
    import grpc.aio
    from tribridge.codecs.hessian2 import Decoder, encode
    from tribridge.codecs.triple import decode_request_wrapper, encode_response_wrapper

    def greet(req: bytes, ctx: Any) -> bytes:
        w = decode_request_wrapper(req)
        if w.arg_types != ["java.lang.String"]:
            raise ValueError(w.arg_types)
        name = Decoder(w.args[0]).read()
        return encode_response_wrapper(encode(f"Hello, {name}"), "java.lang.String")

    def add(req: bytes, ctx: Any) -> bytes:
        w = decode_request_wrapper(req)
        if w.arg_types != ["int", "int"]:
            raise ValueError(w.arg_types)
        a, b = (Decoder(x).read() for x in w.args)
        s = (a + b + 2**31) % 2**32 - 2**31
        return encode_response_wrapper(encode(s), "int")

    # sync handlers: grpc.aio runs them on the loop without a coroutine per call
    handlers = {
        "greet": grpc.unary_unary_rpc_method_handler(greet),
        "add": grpc.unary_unary_rpc_method_handler(add),
    }

    class AnyService(grpc.GenericRpcHandler):
        """``/{any interface}/greet``: one server stands in for several services."""

        def service(self, details: Any) -> Any:
            return handlers.get(details.method.rpartition("/")[2])

    server = grpc.aio.server()
    server.add_generic_rpc_handlers((AnyService(),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


def _code(n: int) -> Any:
    import grpc

    for c in grpc.StatusCode:
        if c.value[0] == n:
            return c.value
    raise ValueError(n)


# ---- launcher -----------------------------------------------------------------------------


class TriplePeer:
    """A server subprocess; ``close`` stops it by PID."""

    def __init__(self, kind: str, port: int, proc: subprocess.Popen[bytes]) -> None:
        self.kind = kind
        self.port = port
        self.proc = proc

    def __enter__(self) -> TriplePeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()


#: services of interop/node/triple_server.js (dubbo-node)
JSON_SERVICE = "com.tribridge.triple.JsonGreeter"


def start_node_server(mode: str, timeout: float = 20.0) -> Any:
    """interop/node/triple_server.js (@apachedubbo/dubbo-node): ``h2``, ``http1`` or
    ``raw``; it picks its own port.  Returns a ``peers.ReadyProcess`` (``.port``,
    ``.close()``)."""
    from tribridge.interop.peers import NODE_DIR, start_ready_process

    return start_ready_process(
        ["node", "triple_server.js", mode, "0"],
        NODE_DIR,
        f"dubbo-node Triple server ({mode})",
        timeout,
    )


def start_peer(
    kind: str,
    port: int,
    timeout: float = 20.0,
    zookeeper: str | None = None,
    max_streams: int = 0,
    tls: str | Path = "",
    mtls: bool = False,
) -> TriplePeer:
    """Start a ``dubbo`` or ``grpc`` server on 127.0.0.1:port and wait until it listens
    (``zookeeper``: the dubbo server registers itself there first; ``max_streams``: the
    grpc server's SETTINGS_MAX_CONCURRENT_STREAMS)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "tribridge.interop.triple_peers", kind, str(port)]
    if zookeeper:
        cmd += ["--zookeeper", zookeeper]
    if max_streams:
        cmd += ["--max-streams", str(max_streams)]
    if tls:
        cmd += ["--tls", str(tls)] + (["--mtls"] if mtls else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"{kind} Triple peer exited ({proc.returncode}):\n{out[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return TriplePeer(kind, port, proc)
        except OSError:
            time.sleep(0.05)
    proc.kill()
    proc.wait(5)
    raise RuntimeError(f"{kind} Triple peer did not listen on {port} within {timeout}s")


def main(argv: list[str]) -> None:
    global SERVER_NAME
    parser = argparse.ArgumentParser(prog="python -m tribridge.interop.triple_peers")
    parser.add_argument("kind", choices=["dubbo", "grpc", "fast"])
    parser.add_argument("port", type=int)
    parser.add_argument("--zookeeper", help="host:port; the dubbo server registers itself")
    parser.add_argument("--application", default=APPLICATION)
    parser.add_argument("--max-streams", type=int, default=0, help="grpc: max concurrent streams")
    parser.add_argument("--host", default="127.0.0.1", help="grpc: the address to listen on")
    parser.add_argument("--tls", default="", help="grpc: serve TLS with DIR/server.pem")
    parser.add_argument("--mtls", action="store_true", help="grpc: require client certificates")
    args = parser.parse_args(argv)
    SERVER_NAME = {"dubbo": "apache-dubbo", "grpc": "grpcio", "fast": "grpcio-fast"}[args.kind]
    if args.kind == "dubbo":
        serve_dubbo(args.port, args.zookeeper, args.application)
    else:
        if args.zookeeper:
            parser.error("--zookeeper: only the dubbo (apache-dubbo) server registers itself")
        import asyncio

        if args.kind == "fast":
            import uvloop

            uvloop.install()
            asyncio.run(_serve_fast(args.port))
        else:
            asyncio.run(_serve_grpc(args.port, args.max_streams, args.host, args.tls, args.mtls))


if __name__ == "__main__":
    main(sys.argv[1:])
