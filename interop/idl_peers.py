"""Launchers for the IDL-mode peers: a grpcio server and a dubbo-node server.

Both print ``READY <port>`` once listening on 127.0.0.1; ``close()`` stops them by PID::

    with start_grpc_server("demo") as srv:          # grpcio + reflection (v1 and v1alpha)
        ...  srv.port
    with start_dubbo_node_server(descriptor_set) as srv:   # Triple + gRPC, no reflection
        ...
"""

from __future__ import annotations

import sys
from pathlib import Path

from tribridge.idl.schema import compile_protos

from .grpc_server import schema_files
from .peers import NODE_DIR, ReadyProcess, _require_node_modules, start_ready_process

__all__ = [
    "ReadyProcess",
    "demo_descriptor_set",
    "start_dubbo_node_server",
    "start_grpc_js_server",
    "start_grpc_server",
]


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
    return start_ready_process(args, None, f"grpc server ({schema})", timeout)


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
    return start_ready_process(args, NODE_DIR, "dubbo-node server", timeout)


def start_grpc_js_server(reflection: str = "v1,v1alpha", port: int = 0, timeout: float = 30.0):
    """interop/node/grpc_js_server.js: @grpc/grpc-js with @grpc/reflection, whose v1 and
    v1alpha services are independent implementations (``reflection`` picks which run)."""
    node = _require_node_modules("@grpc/grpc-js", "@grpc/proto-loader", "@grpc/reflection")
    protos = Path(__file__).resolve().parent / "protos"
    args = [node, "grpc_js_server.js", str(protos), str(port), reflection]
    return start_ready_process(args, NODE_DIR, f"grpc-js server (reflection {reflection})", timeout)
