"""A grpcio (grpc.aio) server of the IDL demo protos, with server reflection, for tests.

Run as ``python -m tribridge.interop.grpc_server --schema demo --port 0``; it prints
``READY <port>`` once listening. Messages are built from the ``.proto`` files at start-up
(grpcio-tools' protoc -> descriptor pool), so no generated ``_pb2`` code is committed.

``--reflection`` picks which reflection services are offered: grpcio-reflection implements
v1alpha; v1 is the same wire format under a new name, so the same servicer serves both.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2
from tribridge.idl.schema import Schema, load_protos
from tribridge.interop.standalone import serve_until_signalled

PROTO_DIR = Path(__file__).resolve().parent / "protos"
SCHEMAS = {
    "demo": (["demo.proto"], [PROTO_DIR]),
    "evolve_v1": (["evolve.proto"], [PROTO_DIR / "evolve_v1"]),
    "evolve_v2": (["evolve.proto"], [PROTO_DIR / "evolve_v2"]),
    "stream": (["stream.proto"], [PROTO_DIR]),
}


def schema_files(name: str) -> tuple[list[str], list[str]]:
    files, inc = SCHEMAS[name]
    return [str(inc[0] / f) for f in files], [str(d) for d in inc]


def load_schema(name: str) -> Schema:
    files, inc = schema_files(name)
    return load_protos(files, inc)


class DemoImpl:
    """idl.demo.v1.Demo: answers are computed from the request so tests can check decoding."""

    def __init__(self, schema: Schema, tag: str) -> None:
        self.m = {
            n: schema.method("idl.demo.v1.Demo", n)
            for n in ("Echo", "Describe", "Fail", "Slow", "GetBook", "UpdateBook")
        }
        self.tag = tag

    async def Echo(self, req: Any, ctx: Any) -> Any:
        return req

    async def Describe(self, p: Any, ctx: Any) -> Any:
        out = self.m["Describe"].output()
        out.text = f"{p.name} ({p.age})"
        out.tag_count = len(p.tags)
        out.counts_total = sum(p.counts.values())
        out.color = p.color
        out.city = p.address.city
        out.id_plus_one = p.id + 1
        out.server = self.tag
        return out

    async def Fail(self, req: Any, ctx: Any) -> Any:
        code = next((c for c in grpc.StatusCode if c.value[0] == req.code), grpc.StatusCode.UNKNOWN)
        await ctx.abort(code, req.message)

    async def Slow(self, req: Any, ctx: Any) -> Any:
        await asyncio.sleep(max(req.millis, 0) / 1000)
        out = self.m["Slow"].output()
        out.slept_millis = req.millis
        return out

    async def GetBook(self, req: Any, ctx: Any) -> Any:
        b = self.m["GetBook"].output()
        b.name, b.id, b.view, b.verbose, b.color = (
            req.name,
            req.id,
            req.view,
            req.verbose,
            req.color,
        )
        b.fields.extend(req.fields)
        b.title = f"Book {req.id} on {req.name}"
        b.city = req.where.city
        return b

    async def UpdateBook(self, req: Any, ctx: Any) -> Any:
        b = self.m["UpdateBook"].output()
        b.CopyFrom(req.book)
        b.name, b.id = req.name, req.id
        b.title = req.book.title + " (updated)"
        return b


class EvolveImpl:
    def __init__(self, schema: Schema, version: str) -> None:
        self.version = version
        self.ping = schema.method("idl.evolve.Evolving", "Hello").output

    async def Hello(self, req: Any, ctx: Any) -> Any:
        out = self.ping(text=f"{self.version}:{req.text}")
        if self.version == "v2":
            out.count = req.count + 1
        return out

    async def Goodbye(self, req: Any, ctx: Any) -> Any:
        return self.ping(text=f"bye:{req.text}")


class StreamImpl:
    """idl.stream.v1.Ticker: streams whose progress ``Inspect`` reports, so a test can see
    what the server saw (messages sent, a cancel from the client)."""

    def __init__(self, schema: Schema) -> None:
        self.m = {n: schema.method("idl.stream.v1.Ticker", n) for n in ("Count", "Sum", "Inspect")}
        #: id -> [sent, cancelled, finished, traceparent]; bounded: tests use a few ids each
        self.seen: dict[str, list[Any]] = {}

    def _track(self, key: str) -> list[Any]:
        if len(self.seen) > 10000:
            self.seen.clear()
        return self.seen.setdefault(key, [0, False, False, ""])

    async def Count(self, req: Any, ctx: Any) -> Any:
        seen = self._track(req.id)
        seen[3] = dict(ctx.invocation_metadata() or ()).get("traceparent", "")
        tick = self.m["Count"].output
        pad = "x" * req.size
        try:
            for n in range(req.count):
                if req.fail_at and n == req.fail_at:
                    await ctx.abort(grpc.StatusCode(_code(req.fail_code)), f"failed at {n}")
                yield tick(n=n, id=req.id, pad=pad)
                seen[0] += 1
                if req.delay_ms:
                    await asyncio.sleep(req.delay_ms / 1000)
            seen[2] = True
        except asyncio.CancelledError:
            seen[1] = True
            raise

    async def Sum(self, reqs: Any, ctx: Any) -> Any:
        total, count = 0, 0
        async for r in reqs:
            total += r.value
            count += 1
        return self.m["Sum"].output(sum=total, count=count)

    async def Echo(self, reqs: Any, ctx: Any) -> Any:
        async for r in reqs:
            yield type(r)(value=r.value * 2, id=r.id)

    async def Inspect(self, q: Any, ctx: Any) -> Any:
        sent, cancelled, finished, tp = self.seen.get(q.id, [0, False, False, ""])
        return self.m["Inspect"].output(
            sent=sent, cancelled=cancelled, finished=finished, traceparent=tp
        )


def _code(n: int) -> tuple[int, str]:
    return next(c for c in grpc.StatusCode if c.value[0] == n).value


_KINDS = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def _handlers(schema: Schema, service: str, impl: Any) -> grpc.GenericRpcHandler:
    sd = schema.pool.FindServiceByName(service)
    table = {}
    for md in sd.methods:
        mi = schema.method(service, md.name)
        make = _KINDS[(md.client_streaming, md.server_streaming)]
        table[md.name] = make(
            getattr(impl, md.name),
            request_deserializer=mi.input.FromString,
            response_serializer=mi.output.SerializeToString,
        )
    return grpc.method_handlers_generic_handler(service, table)


def _reflection_v1(servicer: Any) -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        "grpc.reflection.v1.ServerReflection",
        {
            "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                servicer.ServerReflectionInfo,
                request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
            )
        },
    )


async def start(
    schema_name: str,
    port: int = 0,
    reflections: tuple[str, ...] = ("v1", "v1alpha"),
    tag: str = "grpcio",
) -> tuple[grpc.aio.Server, int]:
    """A started server on 127.0.0.1 (``port`` 0: any free one) -> (server, port)."""
    schema = load_schema(schema_name)
    server = grpc.aio.server()
    if schema_name == "demo":
        service = "idl.demo.v1.Demo"
        server.add_generic_rpc_handlers((_handlers(schema, service, DemoImpl(schema, tag)),))
    elif schema_name == "stream":
        service = "idl.stream.v1.Ticker"
        server.add_generic_rpc_handlers((_handlers(schema, service, StreamImpl(schema)),))
    else:
        service = "idl.evolve.Evolving"
        impl = EvolveImpl(schema, schema_name.removeprefix("evolve_"))
        server.add_generic_rpc_handlers((_handlers(schema, service, impl),))
    names = [service]
    if "v1alpha" in reflections:
        names.append(reflection.SERVICE_NAME)
    if "v1" in reflections:
        names.append("grpc.reflection.v1.ServerReflection")
    servicer = reflection.aio.ReflectionServicer(names, pool=schema.pool)
    if "v1alpha" in reflections:
        reflection.enable_server_reflection(names, server, pool=schema.pool)
    if "v1" in reflections:
        server.add_generic_rpc_handlers((_reflection_v1(servicer),))
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server, bound


async def serve(schema_name: str, port: int, reflections: list[str], tag: str) -> None:
    server, bound = await start(schema_name, port, tuple(reflections), tag)
    await serve_until_signalled(str(bound), lambda: server.stop(0.2))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--schema", choices=sorted(SCHEMAS), default="demo")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--reflection", default="v1,v1alpha", help="comma list: v1, v1alpha or none")
    ap.add_argument("--tag", default="grpcio", help="Summary.server value")
    a = ap.parse_args(argv)
    refl = [r for r in a.reflection.split(",") if r and r != "none"]
    try:
        asyncio.run(serve(a.schema, a.port, refl, a.tag))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
