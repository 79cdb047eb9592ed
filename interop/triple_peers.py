"""Triple peers in subprocesses: an apache-dubbo (official Python Dubbo) Triple server and a
grpcio (grpc.aio) server, both serving a Java-interface-style service in wrapper mode.

apache-dubbo does the HTTP/2 and gRPC work; its per-method serializer functions turn the
``TripleRequestWrapper`` into arguments (protobuf runtime + python-hessian's decoder, not
our codec) and the result into a ``TripleResponseWrapper``, so it answers as a Java
wrapper-mode provider does.  apache-dubbo cannot set response headers, so the Java
business-exception shape (``tri-exception-code`` + ``grpc-status: 0``), status codes,
echoed headers and trailers come from the grpcio server.

    python -m tribridge.interop.triple_peers dubbo PORT
    python -m tribridge.interop.triple_peers grpc PORT
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
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


def serve_dubbo(port: int) -> None:
    import dubbo
    from dubbo.configs import ServiceConfig
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
    raw = RpcServiceHandler(
        RAW_SERVICE, [RpcMethodHandler.unary(lambda b: b[::-1], method_name="reverse")]
    )
    server = dubbo.Server(ServiceConfig(svc, host="127.0.0.1", port=port))
    # apache-dubbo's export takes an iterable of handlers: both services on one port
    server._url.attributes["service-handler"] = [svc, raw]
    server.start()
    print("ready", flush=True)
    while True:
        time.sleep(3600)


# ---- grpcio -------------------------------------------------------------------------------


async def _serve_grpc(port: int) -> None:
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

    server = grpc.aio.server()
    handlers = {m: make(m) for m in [*SIGNATURES, "$invoke"]}
    # also under the demo provider's interface, so one service can have a Dubbo2 and a
    # Triple instance
    server.add_generic_rpc_handlers(
        tuple(grpc.method_handlers_generic_handler(s, handlers) for s in (SERVICE, DEMO_SERVICE))
    )
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


def start_peer(kind: str, port: int, timeout: float = 20.0) -> TriplePeer:
    """Start a ``dubbo`` or ``grpc`` server on 127.0.0.1:port and wait until it listens."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tribridge.interop.triple_peers", kind, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
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
    raise RuntimeError(f"{kind} Triple peer did not listen on {port} within {timeout}s")


def main(argv: list[str]) -> None:
    global SERVER_NAME
    kind, port = argv[0], int(argv[1])
    SERVER_NAME = {"dubbo": "apache-dubbo", "grpc": "grpcio"}.get(kind, kind)
    if kind == "dubbo":
        serve_dubbo(port)
    elif kind == "grpc":
        import asyncio

        asyncio.run(_serve_grpc(port))
    else:
        raise SystemExit(f"unknown peer {kind!r}: dubbo or grpc")


if __name__ == "__main__":
    main(sys.argv[1:])
