"""The Triple wrapper messages as protobuf runtime classes, built from triple_wrapper.proto's
shape at import (no generated code to ship).  Decoding goes through them: upb parses a
response wrapper ~4x faster than Python code can (docs/benchmarks.md)."""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_pool = descriptor_pool.DescriptorPool()


def _build() -> dict[str, Any]:
    fd = descriptor_pb2.FileDescriptorProto(
        name="triple_wrapper.proto", package="org.apache.dubbo.triple", syntax="proto3"
    )
    T = descriptor_pb2.FieldDescriptorProto
    shapes = {
        "TripleRequestWrapper": [
            ("serializeType", 1, T.TYPE_STRING, T.LABEL_OPTIONAL),
            ("args", 2, T.TYPE_BYTES, T.LABEL_REPEATED),
            ("argTypes", 3, T.TYPE_STRING, T.LABEL_REPEATED),
        ],
        "TripleResponseWrapper": [
            ("serializeType", 1, T.TYPE_STRING, T.LABEL_OPTIONAL),
            ("data", 2, T.TYPE_BYTES, T.LABEL_OPTIONAL),
            ("type", 3, T.TYPE_STRING, T.LABEL_OPTIONAL),
        ],
        "TripleExceptionWrapper": [
            ("language", 1, T.TYPE_STRING, T.LABEL_OPTIONAL),
            ("serialization", 2, T.TYPE_STRING, T.LABEL_OPTIONAL),
            ("className", 3, T.TYPE_STRING, T.LABEL_OPTIONAL),
            ("data", 4, T.TYPE_BYTES, T.LABEL_OPTIONAL),
        ],
    }
    for name, fields in shapes.items():
        m = fd.message_type.add(name=name)
        for fname, num, ftype, label in fields:
            m.field.add(name=fname, number=num, type=ftype, label=label)
    _pool.Add(fd)
    return {
        name: message_factory.GetMessageClass(
            _pool.FindMessageTypeByName(f"org.apache.dubbo.triple.{name}")
        )
        for name in shapes
    }


_classes = _build()
TripleRequestWrapper = _classes["TripleRequestWrapper"]
TripleResponseWrapper = _classes["TripleResponseWrapper"]
TripleExceptionWrapper = _classes["TripleExceptionWrapper"]
