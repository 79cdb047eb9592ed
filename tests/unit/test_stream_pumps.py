"""The stream pumps and codecs without sockets: an in-memory upstream stream (the
``UpstreamStream`` seam) and sink, so ordering, keep-alives, errors, cancellation and
back-pressure are plain unit tests."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from tribridge.codecs.hessian2 import Decoder, TypeRegistry, encode, parse_types
from tribridge.codecs.triple import (
    Code,
    Status,
    decode_request_wrapper,
    encode_response_wrapper,
)
from tribridge.errors import GatewayError
from tribridge.streaming.codecs import WrapperCodec
from tribridge.streaming.formats import Framer
from tribridge.streaming.pumps import PENDING, StreamState, first_event, server_stream
from tribridge.upstream.triple_call import TripleCallError


class FakeUpstream:
    """Messages fed by the test; ``read`` waits for the next one."""

    def __init__(self) -> None:
        self.q: asyncio.Queue[Any] = asyncio.Queue()
        self.cancelled = False
        self.reads = 0

    async def read(self) -> bytes | None:
        item = await self.q.get()
        self.reads += 1
        if isinstance(item, Exception):
            raise item
        return item

    def cancel(self) -> None:
        self.cancelled = True


class FakeSink:
    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.closing: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.blocked: asyncio.Event = asyncio.Event()
        self.blocked.set()

    def write(self, data: bytes) -> None:
        if data:
            self.out.append(data)

    async def drain(self) -> None:
        await self.blocked.wait()


class Echo:
    """A codec whose messages are JSON already."""

    def request(self, args: Any) -> bytes:
        return orjson.dumps(args)

    def element(self, value: Any) -> bytes:
        return orjson.dumps(value)

    def reply(self, data: bytes) -> bytes:
        return data


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_messages_in_order_then_end() -> None:
    up, sink, st = FakeUpstream(), FakeSink(), StreamState("server", "sse")
    for m in (b"1", b"2", b"3", None):
        up.q.put_nowait(m)
    first = await first_event(up, 1.0, st)
    await server_stream(up, Echo(), Framer("sse"), st, first, 0)(sink)  # type: ignore[arg-type]
    assert sink.out == [b"data: 1\n\n", b"data: 2\n\n", b"data: 3\n\n", b"event: end\ndata: {}\n\n"]
    assert st.grpc_code == 0 and st.messages_out == 3 and not up.cancelled


async def test_first_event_times_out_and_the_read_goes_on() -> None:
    up, st = FakeUpstream(), StreamState("server", "sse")
    assert await first_event(up, 0.01, st) is PENDING
    assert st.read_task is not None and not st.read_task.done()
    up.q.put_nowait(b"late")
    assert await st.read_task == b"late"


async def test_keepalives_while_idle_then_error_event() -> None:
    up, sink, st = FakeUpstream(), FakeSink(), StreamState("server", "sse", {"service": "S"})
    task = asyncio.ensure_future(
        server_stream(up, Echo(), Framer("sse"), st, PENDING, 0.02)(sink)  # type: ignore[arg-type]
    )
    await asyncio.sleep(0.09)
    up.q.put_nowait(TripleCallError(Status(Code.NOT_FOUND, "gone")))
    await asyncio.wait_for(task, 1)
    assert sink.out.count(b": keep-alive\n\n") >= 2
    err = orjson.loads(sink.out[-1].split(b"data: ", 1)[1])["error"]
    assert (err["grpc_status"], err["grpc_message"], err["service"]) == ("NOT_FOUND", "gone", "S")
    assert st.grpc_code == Code.NOT_FOUND and up.cancelled


async def test_ndjson_sends_no_keepalives() -> None:
    up, sink, st = FakeUpstream(), FakeSink(), StreamState("server", "ndjson")
    task = asyncio.ensure_future(
        server_stream(up, Echo(), Framer("ndjson"), st, PENDING, 0.01)(sink)  # type: ignore[arg-type]
    )
    await asyncio.sleep(0.05)
    up.q.put_nowait(None)
    await asyncio.wait_for(task, 1)
    assert sink.out == []


async def test_cancelling_the_producer_cancels_upstream() -> None:
    up, sink, st = FakeUpstream(), FakeSink(), StreamState("server", "sse")
    task = asyncio.ensure_future(
        server_stream(up, Echo(), Framer("sse"), st, PENDING, 0)(sink)  # type: ignore[arg-type]
    )
    await settle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert up.cancelled and st.cancelled and st.grpc_code is None


async def test_slow_client_stops_upstream_reads() -> None:
    """While the client does not take what was written, no further message is read."""
    up, sink, st = FakeUpstream(), FakeSink(), StreamState("server", "sse")
    sink.blocked.clear()
    for i in range(10):
        up.q.put_nowait(b"%d" % i)
    task = asyncio.ensure_future(
        server_stream(up, Echo(), Framer("sse"), st, PENDING, 0)(sink)  # type: ignore[arg-type]
    )
    await asyncio.sleep(0.05)
    assert up.reads == 1 and len(sink.out) == 1  # one message written, the next one unread
    up.q.put_nowait(None)
    sink.blocked.set()
    await asyncio.wait_for(task, 1)
    assert up.reads == 11 and len(sink.out) == 11


async def test_shutdown_ends_the_stream_with_unavailable() -> None:
    up, sink, st = FakeUpstream(), FakeSink(), StreamState("server", "ndjson")
    task = asyncio.ensure_future(
        server_stream(up, Echo(), Framer("ndjson"), st, PENDING, 0)(sink)  # type: ignore[arg-type]
    )
    await settle()
    sink.closing.set_result(None)
    await asyncio.wait_for(task, 1)
    assert orjson.loads(sink.out[-1])["error"]["grpc_status"] == "UNAVAILABLE"
    assert up.cancelled


# ---- the Java-interface wrapper codec ----------------------------------------------------------


def test_wrapper_request_holds_typed_arguments() -> None:
    codec = WrapperCodec(parse_types("int,java.lang.String"), TypeRegistry(), orjson.dumps)
    w = decode_request_wrapper(codec.request([7, "x"]))
    assert w.arg_types == ["int", "java.lang.String"]
    assert [Decoder(a).read() for a in w.args] == [7, "x"]


def test_wrapper_element_and_reply() -> None:
    codec = WrapperCodec(parse_types("java.lang.Integer"), TypeRegistry(), orjson.dumps)
    w = decode_request_wrapper(codec.element(5))
    assert w.arg_types == ["java.lang.Integer"] and Decoder(w.args[0]).read() == 5
    assert codec.reply(encode_response_wrapper(encode("hi"), "java.lang.String")) == b'"hi"'


def test_wrapper_refuses_wrong_arguments() -> None:
    codec = WrapperCodec(parse_types("int"), TypeRegistry(), orjson.dumps, where={"method": "m"})
    with pytest.raises(GatewayError) as e:
        codec.request([1, 2])
    assert e.value.status == 400 and "takes 1 argument" in e.value.message
    with pytest.raises(GatewayError) as e:
        codec.request(["not an int"])
    assert e.value.status == 400


def test_wrapper_reply_that_is_not_hessian_is_502() -> None:
    codec = WrapperCodec([], TypeRegistry(), orjson.dumps)
    with pytest.raises(GatewayError) as e:
        codec.reply(encode_response_wrapper(b"{}", "", "fastjson2"))
    assert e.value.status == 502 and e.value.code == "bad_provider_response"
