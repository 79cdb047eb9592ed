"""The Triple client API: one ``unary`` for the Java-interface (wrapper) mode in the invoker
and the IDL/protobuf mode, over one of three HTTP/2 clients chosen by
``upstream.triple_client`` (``make_triple_client``): grpcio's ``grpc.aio``
(``triple_grpcio``), or the gateway's own on its event loop, python-hyper ``h2`` or the lean
engine (``triple_h2``).  The call types live in ``triple_call``; this module names them all.
"""

from __future__ import annotations

from typing import Any

from tribridge.codecs.triple import code_name
from tribridge.upstream.triple_call import (
    APP_NAME,
    TripleCallError,
    TripleReply,
    TripleSettings,
    status_error,
)
from tribridge.upstream.triple_grpcio import TripleClient
from tribridge.upstream.triple_h2 import H2TripleClient


def make_triple_client(kind: str, settings: TripleSettings | None = None) -> Any:
    """``"grpcio"`` -> ``TripleClient``; ``"h2"`` / ``"lean"`` -> ``H2TripleClient`` on that
    HTTP/2 engine (gateway/upstream/h2_engines.py).  All have the same ``unary``."""
    if kind in ("h2", "lean"):
        return H2TripleClient(settings, kind)
    if kind == "grpcio":
        return TripleClient(settings)
    raise ValueError(f"unknown Triple client {kind!r}: grpcio, h2 or lean")


__all__ = [
    "APP_NAME",
    "TripleCallError",
    "TripleClient",
    "TripleReply",
    "TripleSettings",
    "code_name",
    "make_triple_client",
    "status_error",
]
