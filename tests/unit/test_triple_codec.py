"""Triple codec: gRPC framing, wrapper messages checked against the protobuf runtime,
status/grpc-message handling, attachments <-> headers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tribridge.codecs.triple import (
    Code,
    ExceptionWrapper,
    MessageDecoder,
    RequestWrapperTemplate,
    TripleProtocolError,
    attachments_to_headers,
    decode_exception_wrapper,
    decode_grpc_message,
    decode_request_wrapper,
    decode_response_wrapper,
    encode_exception_wrapper,
    encode_grpc_message,
    encode_message,
    encode_response_wrapper,
    headers_to_attachments,
    parse_status,
)
from tribridge.codecs.triple import wrapper_pb as pb


def test_framing_any_split() -> None:
    msgs = [b"", b"a", b"x" * 300, bytes(range(256))]
    stream = b"".join(encode_message(m) for m in msgs)
    for step in (1, 2, 5, 7, 1000):
        dec = MessageDecoder()
        out: list[bytes] = []
        for i in range(0, len(stream), step):
            out += dec.feed(stream[i : i + step])
        dec.close()
        assert out == msgs
    assert encode_message(b"ab") == b"\x00\x00\x00\x00\x02ab"


def test_framing_limits_and_errors() -> None:
    dec = MessageDecoder(max_size=10)
    with pytest.raises(TripleProtocolError, match="exceeds"):
        dec.feed(b"\x00\x00\x00\x00\x0b")  # refused before any body byte arrives
    with pytest.raises(TripleProtocolError, match="flag"):
        MessageDecoder().feed(b"\x07\x00\x00\x00\x00")
    with pytest.raises(TripleProtocolError, match="compressed"):
        MessageDecoder().feed(encode_message(b"z", compressed=True))
    d = MessageDecoder()
    assert d.feed(b"\x00\x00\x00\x00\x05abc") == []
    with pytest.raises(TripleProtocolError, match="ended inside"):
        d.close()


@settings(deadline=None)
@given(
    st.lists(st.binary(max_size=300), max_size=5),
    st.lists(st.text(max_size=40), max_size=5),
    st.sampled_from(["hessian4", "hessian2", ""]),
)
def test_request_wrapper_matches_protobuf_runtime(
    args: list[bytes], types: list[str], stype: str
) -> None:
    wire = RequestWrapperTemplate(types, stype).encode(args)
    m = pb.TripleRequestWrapper()
    m.ParseFromString(wire)
    assert (m.serializeType, list(m.args), list(m.argTypes)) == (stype, args, types)
    ref = pb.TripleRequestWrapper(serializeType=stype, args=args, argTypes=types)
    w = decode_request_wrapper(ref.SerializeToString())
    assert (w.serialize_type, w.args, w.arg_types) == (stype, args, types)


@settings(deadline=None)
@given(st.binary(max_size=2000), st.text(max_size=50))
def test_response_wrapper_matches_protobuf_runtime(data: bytes, tname: str) -> None:
    m = pb.TripleResponseWrapper()
    m.ParseFromString(encode_response_wrapper(data, tname))
    assert (m.serializeType, m.data, m.type) == ("hessian4", data, tname)
    ref = pb.TripleResponseWrapper(serializeType="hessian2", data=data, type=tname)
    w = decode_response_wrapper(ref.SerializeToString())
    assert (w.serialize_type, w.data, w.type) == ("hessian2", data, tname)


def test_exception_wrapper_and_unknown_fields() -> None:
    ew = ExceptionWrapper("JAVA", "hessian2", "java.lang.IllegalStateException", b"\x01\x02")
    ref = pb.TripleExceptionWrapper()
    ref.ParseFromString(encode_exception_wrapper(ew))
    assert ref.className == "java.lang.IllegalStateException" and ref.data == b"\x01\x02"
    # unknown varint, fixed64, fixed32 and length-delimited fields are skipped
    extra = b"\x20\x96\x01" + b"\x29" + b"\0" * 8 + b"\x35" + b"\0" * 4 + b"\x4a\x01z"
    assert decode_exception_wrapper(encode_exception_wrapper(ew) + extra) == ew
    w = decode_request_wrapper(b"\x0a\x08hessian4" + extra + b"\x12\x01a")
    assert w.args == [b"a"]


@pytest.mark.parametrize(
    "bad",
    [b"\x0a\x05abc", b"\x0a", b"\x0b\x00", b"\x00\x01", b"\x0a\x01\xff", b"\x29\x00"],
)
def test_wrapper_rejects_malformed(bad: bytes) -> None:
    with pytest.raises(TripleProtocolError):
        decode_request_wrapper(bad)
    with pytest.raises(TripleProtocolError):
        decode_exception_wrapper(bad)


def test_response_wrapper_rejects_malformed() -> None:
    with pytest.raises(TripleProtocolError):
        decode_response_wrapper(b"\x12\x05ab")


def test_grpc_message_decoding() -> None:
    assert decode_grpc_message("Invoke%20failed%3A%20%E2%9C%93") == "Invoke failed: ✓"
    assert decode_grpc_message("no+such+service") == "no such service"  # Netty QueryStringEncoder
    assert decode_grpc_message("1 + 1 = 2") == "1 + 1 = 2"  # gRPC: '+' is literal
    text = "bad arg: 100% ✓\n"
    assert decode_grpc_message(encode_grpc_message(text)) == text
    assert encode_grpc_message(text) == "bad arg: 100%25 %E2%9C%93%0A"


def test_parse_status() -> None:
    st_ = parse_status([("grpc-status", "12"), ("grpc-message", "Service%20x%20not%20found")])
    assert (st_.code, st_.name, st_.message) == (12, "UNIMPLEMENTED", "Service x not found")
    s2 = parse_status({"grpc-status": "0"}, [("tri-exception-code", "3")])
    assert s2.ok and s2.exception_code == 3
    # Trailers-Only: status in the single HEADERS block
    assert parse_status({}, {"grpc-status": "14"}).code == Code.UNAVAILABLE
    with pytest.raises(TripleProtocolError):
        parse_status({})
    with pytest.raises(TripleProtocolError):
        parse_status({"grpc-status": "x"})


def test_attachments_to_headers() -> None:
    hs = attachments_to_headers(
        {
            "traceId": "abc",
            "x-n": 5,
            "flag": True,
            "blob": b"\x00\x01",
            "group": "g",  # reserved: travels as tri-service-group
            "interface": "x",
            "weird name": "v",
            "obj": {"a": 1},
            "ctl": "a\nb",
        }
    )
    d = dict(hs)
    assert d["traceid"] == "abc" and d["x-n"] == "5" and d["flag"] == "true"
    assert d["blob-bin"] == b"\x00\x01"
    assert not {"group", "interface", "weird name", "obj", "ctl"} & set(d)
    assert "traceId" in d["tri-header-convert"]
    back = headers_to_attachments(
        [*hs, ("grpc-status", "0"), ("content-type", "application/grpc"), ("k-bin", "AAE")]
    )
    assert back["traceId"] == "abc" and back["blob"] == b"\x00\x01" and back["k"] == b"\x00\x01"
    assert "grpc-status" not in back and "tri-header-convert" not in back
