"""Protobuf schemas for IDL services: descriptors -> a DescriptorPool -> message classes.

Three sources feed a ``Schema`` (an immutable pool plus per-method lookups):

* a descriptor set written by ``protoc --descriptor_set_out --include_imports``;
* ``.proto`` files compiled once at startup with grpcio-tools' bundled protoc;
* gRPC server reflection (``grpc.reflection.v1`` or ``v1alpha``), fetched per service on
  first use and fetched again when a method is missing or the server says UNIMPLEMENTED,
  so a provider that restarts with a changed service is picked up without a gateway restart.

A schema is never mutated: a refresh builds a new pool and swaps it in, because a protobuf
pool cannot hold two different definitions of one file.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import DecodeError, Message

#: reflection services, newest first (Dubbo Java 3.3 only has v1alpha)
REFLECTION_PATHS = {
    "v1": "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "v1alpha": "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
}
#: a reflection answer may pull in at most this many files (bounds a hostile server)
MAX_REFLECTION_FILES = 500
#: a missing method triggers at most one reflection fetch per service in this many seconds
REFRESH_INTERVAL = 1.0


class IdlError(Exception):
    """Descriptors could not be loaded or do not describe what was asked for."""


class UnknownService(IdlError):
    pass


class UnknownMethod(IdlError):
    pass


class RequestMismatch(ValueError):
    """The JSON does not fit the request message; the text names the field."""


class ReplyDecodeError(ValueError):
    """The provider's bytes are not the declared reply message."""


@dataclass(frozen=True, slots=True)
class MethodInfo:
    service: str  # package.Service
    name: str
    path: str  # /package.Service/Method, the gRPC :path
    input: Any  # message class
    output: Any  # message class
    pool: descriptor_pool.DescriptorPool
    client_streaming: bool = False
    server_streaming: bool = False

    @property
    def unary(self) -> bool:
        return not (self.client_streaming or self.server_streaming)


class Schema:
    """An immutable descriptor pool built from FileDescriptorProtos, plus method lookups."""

    def __init__(self, files: Iterable[descriptor_pb2.FileDescriptorProto]) -> None:
        by_name: dict[str, descriptor_pb2.FileDescriptorProto] = {}
        for f in files:
            by_name.setdefault(f.name, f)
        self.files = by_name
        self.pool = descriptor_pool.DescriptorPool()
        added: set[str] = set()
        # dependencies first; iterative so a deep or cyclic import graph cannot recurse
        for root in sorted(by_name):
            stack: list[tuple[str, bool]] = [(root, False)]
            visiting: set[str] = set()
            while stack:
                name, expanded = stack.pop()
                if name in added:
                    continue
                fdp = by_name.get(name)
                if fdp is None:
                    raise IdlError(f"descriptor for {name!r} is missing (imported but not given)")
                if expanded:
                    try:
                        self.pool.Add(fdp)
                    except Exception as e:  # protobuf raises TypeError/ValueError variants
                        raise IdlError(f"cannot load {name}: {e}") from None
                    added.add(name)
                    continue
                if name in visiting:
                    raise IdlError(f"import cycle through {name}")
                visiting.add(name)
                stack.append((name, True))
                stack.extend((d, False) for d in fdp.dependency if d not in added)
        self._methods: dict[tuple[str, str], MethodInfo] = {}

    @classmethod
    def from_descriptor_set(cls, data: bytes, source: str = "descriptor set") -> Schema:
        fds = descriptor_pb2.FileDescriptorSet()
        try:
            fds.ParseFromString(data)
        except DecodeError as e:
            raise IdlError(f"{source}: not a FileDescriptorSet: {e}") from None
        if not fds.file:
            raise IdlError(f"{source}: the descriptor set holds no files")
        return cls(fds.file)

    def services(self) -> list[str]:
        return sorted(
            f"{f.package}.{s.name}" if f.package else s.name
            for f in self.files.values()
            for s in f.service
        )

    def has_service(self, service: str) -> bool:
        try:
            self.pool.FindServiceByName(service)
        except KeyError:
            return False
        return True

    def method(self, service: str, name: str) -> MethodInfo:
        hit = self._methods.get((service, name))
        if hit is not None:
            return hit
        try:
            sd = self.pool.FindServiceByName(service)
        except KeyError:
            raise UnknownService(f"no service {service!r} in the descriptors") from None
        md = sd.methods_by_name.get(name)
        if md is None:
            raise UnknownMethod(f"service {service} has no method {name!r}")
        mi = MethodInfo(
            service=service,
            name=name,
            path=f"/{service}/{name}",
            input=message_factory.GetMessageClass(md.input_type),
            output=message_factory.GetMessageClass(md.output_type),
            pool=self.pool,
            client_streaming=md.client_streaming,
            server_streaming=md.server_streaming,
        )
        self._methods[(service, name)] = mi
        return mi


# ---- static sources -----------------------------------------------------------------------


def well_known_include() -> str:
    """grpcio-tools ships google/protobuf/*.proto; protoc needs them on the include path."""
    import grpc_tools

    return str(Path(grpc_tools.__file__).resolve().parent / "_proto")


def compile_protos(files: Sequence[str | os.PathLike[str]], include: Sequence[str] = ()) -> bytes:
    """``.proto`` files -> a serialized FileDescriptorSet with all imports.

    protoc runs as a child process so its error text (file:line:col: message) can be
    reported as-is; this happens once at startup.
    """
    if not files:
        raise IdlError("no .proto files given")
    inc = [str(Path(d).resolve()) for d in include]
    for f in files:  # protoc wants every file under an include dir: add its folder if not
        parent = Path(f).resolve().parent
        if not any(parent.is_relative_to(d) for d in inc):
            inc.insert(0, str(parent))
    files = [str(Path(f).resolve()) for f in files]
    with tempfile.TemporaryDirectory(prefix="tribridge-protoc-") as tmp:
        out = Path(tmp) / "set.pb"
        args = [sys.executable, "-m", "grpc_tools.protoc"]
        args += [f"-I{d}" for d in inc] + [f"-I{well_known_include()}"]
        args += [f"--descriptor_set_out={out}", "--include_imports", "--include_source_info"]
        args += [str(f) for f in files]
        try:
            proc = subprocess.run(args, capture_output=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise IdlError(f"cannot run protoc (grpcio-tools): {e}") from None
        if proc.returncode != 0 or not out.exists():
            msg = proc.stderr.decode("utf-8", "replace").strip() or f"exit {proc.returncode}"
            raise IdlError(f"protoc failed: {msg}")
        return out.read_bytes()


def load_descriptor_set(path: str | os.PathLike[str]) -> Schema:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise IdlError(f"{path}: cannot read: {e.strerror}") from None
    return Schema.from_descriptor_set(data, str(path))


def load_protos(files: Sequence[str], include: Sequence[str] = ()) -> Schema:
    return Schema.from_descriptor_set(compile_protos(files, include), "protoc output")


# ---- reflection ---------------------------------------------------------------------------

#: opens a raw-bytes bidi stream: (target, path, timeout) -> an object with
#: ``write(bytes)``, ``read() -> bytes | EOF``, ``done_writing()`` and ``cancel()``
StreamOpener = Callable[[str, str, float], Any]


class ReflectionUnsupported(IdlError):
    """The server answers no reflection service we know."""


async def fetch_by_reflection(
    open_stream: StreamOpener, target: str, service: str, version: str, timeout: float = 5.0
) -> list[descriptor_pb2.FileDescriptorProto]:
    """The file defining ``service`` and every file it imports, via one reflection stream."""
    import grpc
    from grpc_reflection.v1alpha import reflection_pb2 as rpb  # same wire format as v1

    call = open_stream(target, REFLECTION_PATHS[version], timeout)
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    asked: set[str] = set()

    async def ask(req: Any) -> Any:
        await call.write(req.SerializeToString())
        raw = await call.read()
        if raw is grpc.aio.EOF or raw is None:
            raise IdlError("reflection stream closed early")
        resp = rpb.ServerReflectionResponse.FromString(raw)
        if resp.HasField("error_response"):
            return resp.error_response
        for blob in resp.file_descriptor_response.file_descriptor_proto:
            fdp = descriptor_pb2.FileDescriptorProto.FromString(blob)
            files.setdefault(fdp.name, fdp)
            if len(files) > MAX_REFLECTION_FILES:
                raise IdlError(f"reflection returned more than {MAX_REFLECTION_FILES} files")
        return None

    async def run() -> None:
        err = await ask(rpb.ServerReflectionRequest(file_containing_symbol=service))
        if err is not None:
            if err.error_code in (grpc.StatusCode.NOT_FOUND.value[0],):
                raise UnknownService(f"the server does not know service {service!r}")
            raise IdlError(f"reflection error {err.error_code}: {err.error_message}")
        for _ in range(MAX_REFLECTION_FILES):
            missing = sorted(
                {d for f in files.values() for d in f.dependency if d not in files} - asked
            )
            if not missing:
                return
            for name in missing:
                asked.add(name)
                err = await ask(rpb.ServerReflectionRequest(file_by_filename=name))
                if err is not None:
                    raise IdlError(f"reflection cannot give {name}: {err.error_message}")

    try:
        await asyncio.wait_for(run(), timeout)
    except grpc.aio.AioRpcError as e:
        if e.code() == grpc.StatusCode.UNIMPLEMENTED:
            raise ReflectionUnsupported(f"{target} has no {version} reflection") from None
        raise IdlError(f"reflection on {target}: {e.code().name}: {e.details()}") from None
    except TimeoutError:
        raise IdlError(f"reflection on {target} did not answer within {timeout:g}s") from None
    finally:
        call.cancel()
    return list(files.values())


class SchemaSource:
    """Where a service's schema comes from; ``method`` may fetch, ``invalidate`` forgets."""

    async def method(self, service: str, name: str, target: str | None) -> MethodInfo:
        raise NotImplementedError

    def cached(self, service: str, name: str) -> MethodInfo | None:
        return None

    def invalidate(self, service: str) -> None:
        return None


class StaticSchemaSource(SchemaSource):
    def __init__(self, schema: Schema) -> None:
        self.schema = schema

    def cached(self, service: str, name: str) -> MethodInfo | None:
        try:
            return self.schema.method(service, name)
        except IdlError:
            return None

    async def method(self, service: str, name: str, target: str | None) -> MethodInfo:
        return self.schema.method(service, name)


class ReflectionSchemaSource(SchemaSource):
    """Per-service schemas fetched from the provider; one fetch in flight per service."""

    def __init__(self, open_stream: StreamOpener, version: str = "auto", timeout: float = 5.0):
        if version not in ("auto", "v1", "v1alpha"):
            raise ValueError("reflection version must be auto, v1 or v1alpha")
        self.open_stream = open_stream
        self.version = version
        self.timeout = timeout
        self.schemas: dict[str, Schema] = {}
        self.fetches = 0  # observable by tests and metrics
        self._fetched_at: dict[str, float] = {}
        self._inflight: dict[str, asyncio.Future[Schema]] = {}
        self._target_version: dict[str, str] = {}

    def cached(self, service: str, name: str) -> MethodInfo | None:
        s = self.schemas.get(service)
        if s is None:
            return None
        try:
            return s.method(service, name)
        except IdlError:
            return None

    def invalidate(self, service: str) -> None:
        self.schemas.pop(service, None)
        self._fetched_at.pop(service, None)

    async def method(self, service: str, name: str, target: str | None) -> MethodInfo:
        schema = self.schemas.get(service)
        if schema is None:
            schema = await self._fetch(service, target)
        try:
            return schema.method(service, name)
        except UnknownMethod:
            # the provider may have been redeployed with the method: look again, rate-limited
            if time.monotonic() - self._fetched_at.get(service, 0.0) < REFRESH_INTERVAL:
                raise
        schema = await self._fetch(service, target)
        return schema.method(service, name)

    async def _fetch(self, service: str, target: str | None) -> Schema:
        fut = self._inflight.get(service)
        if fut is not None:
            return await asyncio.shield(fut)
        if target is None:
            raise IdlError(f"no provider of {service} to ask for its descriptors")
        fut = asyncio.get_running_loop().create_future()
        self._inflight[service] = fut
        try:
            schema = await self._fetch_now(service, target)
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # retrieved: waiters re-raise it, nobody logs it as lost
            raise
        else:
            fut.set_result(schema)
            self.schemas[service] = schema
            self._fetched_at[service] = time.monotonic()
            return schema
        finally:
            del self._inflight[service]

    async def _fetch_now(self, service: str, target: str) -> Schema:
        versions = [self.version] if self.version != "auto" else ["v1", "v1alpha"]
        known = self._target_version.get(target)
        if known in versions:
            versions.remove(known)
            versions.insert(0, known)
        last: Exception | None = None
        for v in versions:
            self.fetches += 1
            try:
                files = await fetch_by_reflection(
                    self.open_stream, target, service, v, self.timeout
                )
            except ReflectionUnsupported as e:
                last = e
                continue
            except IdlError as e:
                # a refused stream for a service the server lacks is UNIMPLEMENTED, but grpc
                # core sometimes reports it as INTERNAL: in auto mode the next version decides
                if v == versions[-1] or self.version != "auto":
                    raise
                last = e
                continue
            self._target_version[target] = v
            schema = Schema(files)
            if not schema.has_service(service):
                raise UnknownService(f"reflection on {target} did not describe {service}")
            return schema
        raise ReflectionUnsupported(
            f"{target} answers no gRPC reflection ({', '.join(versions)}): {last}"
        )


# ---- JSON <-> protobuf --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JsonOptions:
    """proto3 JSON mapping knobs: output names, defaults and enums; input is lenient."""

    proto_names: bool = False  # snake_case field names instead of lowerCamelCase
    emit_defaults: bool = False  # print fields that hold their default value
    enums_as_numbers: bool = False
    ignore_unknown: bool = False  # accept (and drop) JSON keys the message does not have


def _clean(msg: str) -> str:
    # json_format appends the whole list of available fields: useful but long
    head, _, _ = msg.partition("\n Available Fields")
    return head.strip()


def json_to_message(mi: MethodInfo, value: Any, opts: JsonOptions) -> Message:
    """Parsed JSON -> request message; RequestMismatch names the offending field."""
    msg = mi.input()
    name = mi.input.DESCRIPTOR.full_name
    if (
        value is not None
        and not isinstance(value, dict)
        and not name.startswith("google.protobuf.")
    ):
        raise RequestMismatch(f"{name} is written as a JSON object, got {type(value).__name__}")
    try:
        json_format.ParseDict(
            {} if value is None else value,
            msg,
            ignore_unknown_fields=opts.ignore_unknown,
            descriptor_pool=mi.pool,
            max_recursion_depth=64,
        )
    except json_format.ParseError as e:
        raise RequestMismatch(_clean(str(e))) from None
    except (TypeError, ValueError, AttributeError, RecursionError) as e:
        raise RequestMismatch(
            f"request does not fit {mi.input.DESCRIPTOR.full_name}: {e}"
        ) from None
    return msg


def json_body_to_bytes(mi: MethodInfo, body: bytes, opts: JsonOptions) -> bytes:
    if not body.strip():
        value: Any = {}
    else:
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise RequestMismatch(f"request body is not valid JSON: {e}") from None
    return json_to_message(mi, value, opts).SerializeToString()


def message_to_json(mi: MethodInfo, payload: bytes, opts: JsonOptions) -> bytes:
    """Reply bytes -> JSON bytes; ReplyDecodeError if they are not the declared message."""
    try:
        msg = mi.output.FromString(payload)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise ReplyDecodeError(
            f"reply is not a valid {mi.output.DESCRIPTOR.full_name}: {e}"
        ) from None
    try:
        d = json_format.MessageToDict(
            msg,
            always_print_fields_with_no_presence=opts.emit_defaults,
            preserving_proto_field_name=opts.proto_names,
            use_integers_for_enums=opts.enums_as_numbers,
            descriptor_pool=mi.pool,
        )
    except (json_format.SerializeToJsonError, TypeError, ValueError) as e:
        raise ReplyDecodeError(f"reply cannot be written as JSON: {e}") from None
    return orjson.dumps(d)


async def resolve(
    source: SchemaSource, service: str, name: str, target: Callable[[], str | None]
) -> MethodInfo:
    """Cached lookup first (no await on the hot path), else ask the source."""
    hit = source.cached(service, name)
    if hit is not None:
        return hit
    return await source.method(service, name, target())


__all__ = [
    "REFLECTION_PATHS",
    "IdlError",
    "JsonOptions",
    "MethodInfo",
    "ReflectionSchemaSource",
    "ReplyDecodeError",
    "RequestMismatch",
    "Schema",
    "SchemaSource",
    "StaticSchemaSource",
    "UnknownMethod",
    "UnknownService",
    "compile_protos",
    "json_body_to_bytes",
    "json_to_message",
    "load_descriptor_set",
    "load_protos",
    "message_to_json",
    "resolve",
]
