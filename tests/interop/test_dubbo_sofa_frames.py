"""Raw Dubbo2 frames from our codec against the real sofa-rpc-node provider (Node).

No gateway, no invoker: an asyncio socket plus ``RequestTemplate`` / ``encode_request`` /
``encode_heartbeat`` to write and ``FrameDecoder`` / ``decode_response`` to read, so a
failure here points at the codec (or the peer), nothing in between.  What the provider does
with values is described in ``interop/node/dubbo_provider.js``.
"""

from __future__ import annotations

import asyncio
import math
import socket
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from tribridge.codecs.dubbo import (
    Frame,
    FrameDecoder,
    RequestTemplate,
    Result,
    decode_response,
    encode_heartbeat,
    encode_request,
)
from tribridge.codecs.hessian2 import HessianObject, Int, Long

pytestmark = pytest.mark.interop

S = "com.tribridge.demo.SofaService"
V = "1.0.0"
USER = "com.tribridge.demo.User"
STR = "Ljava/lang/String;"
OBJ = "Ljava/lang/Object;"

GREET = RequestTemplate(S, "greet", STR, V)
ADD = RequestTemplate(S, "add", "II", V)
ADD_LONG = RequestTemplate(S, "addLong", "JJ", V)
ECHO = RequestTemplate(S, "echo", OBJ, V)
ECHO_USER = RequestTemplate(S, "echoUser", "Lcom/tribridge/demo/User;", V)
SLOW = RequestTemplate(S, "slow", "I", V)
FAIL = RequestTemplate(S, "fail", STR, V)

RESPONSE_FLAG = 0x02  # response, two-way bit clear, not an event, hessian2
HEARTBEAT_RESPONSE_FLAG = 0x22  # + event


class RawClient:
    """One TCP connection; frames are matched to requests by id, never by order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.decoder = FrameDecoder()
        self.received: list[Frame] = []  # in arrival order

    async def send(self, data: bytes, *, bytewise: bool = False) -> None:
        if not bytewise:
            self.writer.write(data)
            await self.writer.drain()
            return
        for i in range(len(data)):
            self.writer.write(data[i : i + 1])
            await self.writer.drain()
            if i % 16 == 0:
                await asyncio.sleep(0.001)  # let single bytes leave as separate segments

    async def recv(
        self, count: int, *, bytewise: bool = False, timeout: float = 10.0
    ) -> list[Frame]:
        """Reads until ``count`` more frames arrived; returns them in arrival order."""
        want = len(self.received) + count
        async with asyncio.timeout(timeout):
            while len(self.received) < want:
                data = await self.reader.read(65536)
                assert data, f"provider closed the connection after {len(self.received)} frames"
                if bytewise:
                    for i in range(len(data)):
                        self.received += self.decoder.feed(data[i : i + 1])
                else:
                    self.received += self.decoder.feed(data)
        assert len(self.received) == want, "more frames than requests"
        assert self.decoder.buffered == 0
        return self.received[want - count :]

    async def call(self, frame: bytes, *, typed: bool = False) -> Result:
        await self.send(frame)
        (resp,) = await self.recv(1)
        return decode_response(resp, typed=typed)

    async def calls(self, frames: Iterable[bytes], *, bytewise: bool = False) -> dict[int, Frame]:
        """All frames in one write (or one byte per write); responses keyed by request id."""
        frames = list(frames)
        await self.send(b"".join(frames), bytewise=bytewise)
        got = await self.recv(len(frames), bytewise=bytewise)
        by_id = {f.request_id: f for f in got}
        assert len(by_id) == len(frames), "duplicate response ids"
        return by_id


@asynccontextmanager
async def connect(port: int) -> AsyncIterator[RawClient]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        yield RawClient(reader, writer)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass


def ok_value(frame: Frame, request_id: int, *, typed: bool = False) -> Any:
    assert frame.request_id == request_id
    assert frame.flag == RESPONSE_FLAG and frame.status == 20, (frame.flag, frame.status)
    res = decode_response(frame, typed=typed)
    assert res.ok and res.flag == 1 and res.attachments == {}, res
    return res.value


# ---- argument types ----------------------------------------------------------------------


async def test_string_argument_and_64bit_request_id(sofa_provider: int) -> None:
    rid = 2**40 + 5  # the id field is a Java long: the high bytes must come back too
    async with connect(sofa_provider) as c:
        await c.send(GREET.frame(rid, ["Zoë 张伟"]))
        (resp,) = await c.recv(1)
    assert ok_value(resp, rid) == "Hello, Zoë 张伟"


async def test_encode_request_function(sofa_provider: int) -> None:
    frame = encode_request(3, S, "greet", STR, ["Ada"], version=V)
    assert frame == GREET.frame(3, ["Ada"])
    async with connect(sofa_provider) as c:
        res = await c.call(frame)
    assert (res.request_id, res.status, res.value) == (3, 20, "Hello, Ada")


async def test_int_int_with_java_wraparound(sofa_provider: int) -> None:
    async with connect(sofa_provider) as c:
        got = await c.calls([ADD.frame(1, [40, 2]), ADD.frame(2, [2**31 - 1, 1])])
    assert ok_value(got[1], 1) == 42
    wrapped = ok_value(got[2], 2, typed=True)
    assert wrapped == -(2**31) and type(wrapped) is int  # an int on the wire, not a long
    assert got[2].body == b"\x91I\x80\x00\x00\x00"


async def test_long_long_near_2_pow_63(sofa_provider: int) -> None:
    frames = [
        ADD_LONG.frame(1, [Long(2**63 - 2), Long(1)]),
        ADD_LONG.frame(2, [Long(2**63 - 1), Long(1)]),
        ADD_LONG.frame(3, [Long(-(2**63)), Long(-1)]),
        ADD_LONG.frame(4, [Long(1), Long(2)]),
    ]
    # Long forces the long tags even for small values: 0xe1 = long 1, 0xe2 = long 2.
    assert b"\x07addLong\x02JJ\xe1\xe2H" in frames[3]  # then the attachments map
    async with connect(sofa_provider) as c:
        got = await c.calls(frames)
    values = [ok_value(got[i], i, typed=True) for i in (1, 2, 3, 4)]
    assert values == [2**63 - 1, -(2**63), 2**63 - 1, 3]
    assert all(type(v) is Long for v in values)
    assert got[1].body == b"\x91L\x7f\xff\xff\xff\xff\xff\xff\xff"


async def test_user_pojo_as_hessian_object(sofa_provider: int) -> None:
    user = HessianObject(USER, {"id": Long(2**62 + 1), "name": "Zoë 张伟 🚀", "age": Int(31)})
    async with connect(sofa_provider) as c:
        typed = await c.call(ECHO_USER.frame(1, [user]), typed=True)
        plain = await c.call(ECHO_USER.frame(2, [user]))
    assert typed.ok and typed.value == user  # same class, same field order, same types
    assert type(typed.value.fields["id"]) is Long and type(typed.value.fields["age"]) is int
    assert plain.value == {"class": USER, "id": 2**62 + 1, "name": "Zoë 张伟 🚀", "age": 31}


async def test_user_pojo_as_plain_map(sofa_provider: int) -> None:
    async with connect(sofa_provider) as c:
        res = await c.call(ECHO_USER.frame(1, [{"id": 5, "name": "Bo", "age": 3}]), typed=True)
        got = await c.call(RequestTemplate(S, "getUser", "J", V).frame(2, [Long(42)]))
    assert res.value == HessianObject(USER, {"id": Long(5), "name": "Bo", "age": 3})
    assert got.value == {"class": USER, "id": 42, "name": "user-42", "age": 62}


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        pytest.param(
            [1, "a", 2.5, True, None, {"k": [1]}], [1, "a", 2.5, True, None, {"k": [1]}], id="list"
        ),
        pytest.param(
            {"b": 1, "a": [1.25, False], "n": None},
            {"a": [1.25, False], "b": 1, "n": None},
            id="map",
        ),
        pytest.param(0.1, 0.1, id="double-0.1"),
        pytest.param(math.pi, math.pi, id="double-pi"),
        pytest.param(-3.75e-5, -3.75e-5, id="double-small"),
        pytest.param(2.0, 2, id="integral-double-comes-back-int"),  # hessian.js guesses int
        pytest.param(True, True, id="true"),
        pytest.param(False, False, id="false"),
        pytest.param(None, None, id="null"),
        pytest.param("", "", id="empty-string"),
        pytest.param([], [], id="empty-list"),
        pytest.param({}, {}, id="empty-map"),
        pytest.param(
            HessianObject(USER, {"id": Long(9), "name": "x"}), {"id": 9, "name": "x"}, id="pojo"
        ),  # sofa-rpc-node drops the class name of an Object argument: a map comes back
    ],
)
async def test_object_echo(sofa_provider: int, arg: Any, expected: Any) -> None:
    async with connect(sofa_provider) as c:
        res = await c.call(ECHO.frame(11, [arg]))
    assert res.ok and res.flag == 1 and res.request_id == 11
    assert res.value == expected and type(res.value) is type(expected)
    if isinstance(expected, dict):
        assert list(res.value) == sorted(expected)  # hessian.js writes plain-object keys sorted


# ---- events -------------------------------------------------------------------------------


async def test_heartbeat_answered_with_heartbeat_response(sofa_provider: int) -> None:
    async with connect(sofa_provider) as c:
        await c.send(encode_heartbeat(77))
        (hb,) = await c.recv(1)
        after = await c.call(GREET.frame(78, ["again"]))
    assert (hb.request_id, hb.flag, hb.status, hb.body) == (77, HEARTBEAT_RESPONSE_FLAG, 20, b"N")
    assert hb.is_event and hb.is_heartbeat and not hb.is_request and not hb.is_twoway
    res = decode_response(hb)
    assert res.event and res.status == 20 and res.value is None and not res.ok
    assert (after.request_id, after.value) == (78, "Hello, again")


# ---- one connection, many frames ---------------------------------------------------------


async def test_pipelined_in_one_write_matched_by_id(sofa_provider: int) -> None:
    frames = [SLOW.frame(1000, [300])]  # answered last: responses come out of order
    expected: dict[int, Any] = {1000: "done"}
    for i in range(60):
        rid = 2000 + i
        if i % 3 == 0:
            frames.append(GREET.frame(rid, [f"n{i}"]))
            expected[rid] = f"Hello, n{i}"
        elif i % 3 == 1:
            frames.append(ADD.frame(rid, [i, 1000 * i]))
            expected[rid] = 1001 * i
        else:
            frames.append(ADD_LONG.frame(rid, [Long(2**62), Long(i)]))
            expected[rid] = 2**62 + i
    frames.append(encode_heartbeat(3000))
    async with connect(sofa_provider) as c:
        got = await c.calls(frames)
        order = [f.request_id for f in c.received]
    assert set(got) == {*expected, 3000}
    assert {rid: ok_value(got[rid], rid) for rid in expected} == expected
    assert got[3000].is_heartbeat and got[3000].status == 20
    assert order[-1] == 1000 and order[0] != 1000


async def test_frames_sent_and_read_byte_by_byte(sofa_provider: int) -> None:
    user = HessianObject(USER, {"id": Long(7), "name": "Ünïcode", "age": Int(8)})
    frames = [
        GREET.frame(1, ["bytes"]),
        encode_heartbeat(2),
        ECHO_USER.frame(3, [user]),
        ECHO.frame(4, [[1.5, "x", None]]),
        ADD.frame(5, [-7, 3]),
    ]
    async with connect(sofa_provider) as c:
        got = await c.calls(frames, bytewise=True)  # sent one byte a write, fed one byte a call
    assert ok_value(got[1], 1) == "Hello, bytes"
    assert got[2].is_heartbeat and got[2].flag == HEARTBEAT_RESPONSE_FLAG
    assert ok_value(got[3], 3, typed=True) == user
    assert ok_value(got[4], 4) == [1.5, "x", None]
    assert ok_value(got[5], 5) == -4


# ---- errors -------------------------------------------------------------------------------


async def test_thrown_error_is_status_80_with_message(sofa_provider: int) -> None:
    async with connect(sofa_provider) as c:
        res = await c.call(FAIL.frame(9, ["boom: ünïcode"]))
        after = await c.call(GREET.frame(10, ["still here"]))
    assert (res.request_id, res.status, res.status_name) == (9, 80, "SERVER_ERROR")
    assert res.error == "boom: ünïcode"
    assert not res.ok and res.flag is None and res.value is None and res.exception is None
    assert after.value == "Hello, still here"


async def test_unknown_method_is_an_error_with_message(sofa_provider: int) -> None:
    async with connect(sofa_provider) as c:
        res = await c.call(RequestTemplate(S, "nope", STR, V).frame(5, ["x"]))
    assert res.status != 20 and res.status == 80 and res.request_id == 5
    assert res.error == f"Can not find method: {S}:{V}#nope()"


@pytest.mark.parametrize("version", ["2.0.0", None])
async def test_wrong_version_is_an_error(sofa_provider: int, version: str | None) -> None:
    tmpl = RequestTemplate(S, "greet", STR, version)
    async with connect(sofa_provider) as c:
        res = await c.call(tmpl.frame(6, ["x"]))
        ok = await c.call(GREET.frame(7, ["x"]))
    assert res.status != 20 and res.request_id == 6 and not res.ok
    assert res.error == f"not found service: {S}:{version or '0.0.0'}"
    assert ok.ok and ok.value == "Hello, x"
