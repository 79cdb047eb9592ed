"""The sans-IO Dubbo2 connection (codecs/dubbo/connection.py), as h11's tests test its
``Connection``: feed bytes — whole, split at every offset, one byte at a time, in random
chunks — and assert the events, for both roles and for hostile streams."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import struct
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tribridge.codecs.dubbo import (
    Frame,
    decode_response,
    encode_error_response,
    encode_event,
    encode_heartbeat,
    encode_heartbeat_response,
    encode_request,
    encode_response,
    pack_frame,
)
from tribridge.codecs.dubbo.connection import (
    MAX_EVENT_BODY,
    Connection,
    ConnectionEvent,
    Heartbeat,
    OtherEvent,
    OversizeFrame,
    ProtocolError,
    ReadOnly,
    Request,
    Response,
    Role,
)
from tribridge.codecs.dubbo.frame import SKIP_FLOOR
from tribridge.config.upstream import UpstreamSettings
from tribridge.upstream.errors import CallTimeout, ConnectionLost
from tribridge.upstream.pool import DubboConnection

FASTJSON2 = 23
#: a READONLY event as a 3.2 provider preferring fastjson2 sends it (flag 0xA0 | 23)
FJ_READONLY = pack_frame(0xA0 | FASTJSON2, 0, 40, b'\x00\x00\x00\x03"R"')


def header(flag: int, status: int, rid: int, length: int) -> bytes:
    return struct.pack(">HBBqi", 0xDABB, flag, status, rid, length)


def summary(ev: ConnectionEvent) -> tuple[Any, ...]:
    """An event as comparable plain values (frames by their fields)."""
    if isinstance(ev, (Request, Response, OtherEvent, OversizeFrame)):
        f = ev.frame
        return (type(ev).__name__, f.flag, f.status, f.request_id, f.body, f.oversize)
    return (type(ev).__name__, *dataclasses.astuple(ev))


def feed(conn: Connection, chunks: list[bytes]) -> list[tuple[Any, ...]]:
    return [summary(ev) for c in chunks for ev in conn.receive_data(c)]


def splits(data: bytes) -> list[list[bytes]]:
    """The stream whole, cut once at every offset, twice at offsets a prime apart, and
    one byte at a time."""
    out = [[data]]
    out += [[data[:i], data[i:]] for i in range(1, len(data))]
    out += [[data[:i], data[i : i + 7], data[i + 7 :]] for i in range(0, len(data), 5)]
    out.append([data[i : i + 1] for i in range(len(data))])
    return out


# ---- a mixed stream, both roles ------------------------------------------------------------

CALL = encode_request(1, "org.example.Greeter", "sayHello", "Ljava/lang/String;", ["world"])
ONEWAY = encode_request(2, "org.example.Greeter", "fire", "", [], twoway=False)
STREAM_TO_SERVER = b"".join(
    [
        CALL,
        encode_heartbeat(3),
        pack_frame(0xA2, 0, 4, b"N"),  # a one-way heartbeat: nothing owed
        ONEWAY,
        encode_heartbeat_response(5),  # the consumer answering one of ours
        pack_frame(0xE0 | FASTJSON2, 0, 6, b"N"),  # heartbeat under another serialization
    ]
)
STREAM_TO_CLIENT = b"".join(
    [
        encode_response(1, "hello world"),
        encode_heartbeat(-7),
        encode_event(8, "R"),
        encode_error_response(9, 40, "bad request"),
        encode_event(10, "W"),
        FJ_READONLY,
        encode_heartbeat_response(11),
        pack_frame(0xA2, 0, 12, b"\x0fnot-a-READONLY-R"),  # too long for an event: ignored
        pack_frame(0x22, 20, 13, b"\x01R"),  # a *response* event "R" is not READONLY
    ]
)


def test_server_role_events() -> None:
    evs = Connection(Role.SERVER).receive_data(STREAM_TO_SERVER)
    assert [type(e) for e in evs] == [Request, Heartbeat, Heartbeat, Request, Heartbeat, Heartbeat]
    call, hb, oneway_hb, oneway, hb_answer, fj_hb = evs
    assert isinstance(call, Request) and call.frame.request_id == 1 and call.frame.is_twoway
    assert hb == Heartbeat(3, False, encode_heartbeat_response(3))
    assert oneway_hb == Heartbeat(4, False, None)
    assert isinstance(oneway, Request) and not oneway.frame.is_twoway
    assert hb_answer == Heartbeat(5, True, None)
    # the reply keeps the request's serialization id (HeartBeatResponse.setProto)
    assert fj_hb == Heartbeat(6, False, encode_heartbeat_response(6, FASTJSON2))
    assert fj_hb.reply is not None and fj_hb.reply[2] == 0x20 | FASTJSON2


def test_client_role_events() -> None:
    conn = Connection(Role.CLIENT)
    evs = conn.receive_data(STREAM_TO_CLIENT)
    names = [type(e).__name__ for e in evs]
    assert names == [
        "Response", "Heartbeat", "ReadOnly", "Response", "ReadOnly", "ReadOnly", "Heartbeat",
        "OtherEvent", "OtherEvent",
    ]  # fmt: skip
    ok, hb, ro, err, wr, fj, hb_answer, _, _ = evs
    assert isinstance(ok, Response) and decode_response(ok.frame).value == "hello world"
    assert hb == Heartbeat(-7, False, encode_heartbeat_response(-7))
    assert (ro, wr, fj) == (ReadOnly(True), ReadOnly(False), ReadOnly(True))
    assert isinstance(err, Response) and decode_response(err.frame).error == "bad request"
    assert hb_answer == Heartbeat(11, True, None)
    assert conn.peer_readonly  # the last of them was the fastjson2 READONLY


@pytest.mark.parametrize(
    ("role", "stream"), [(Role.SERVER, STREAM_TO_SERVER), (Role.CLIENT, STREAM_TO_CLIENT)]
)
def test_any_split_gives_the_same_events(role: Role, stream: bytes) -> None:
    want = feed(Connection(role), [stream])
    assert len(want) >= 6
    for chunks in splits(stream):
        conn = Connection(role)
        assert feed(conn, chunks) == want, [len(c) for c in chunks]
        assert not conn.mid_frame and conn.buffered == 0 and not conn.broken


def test_mid_frame_and_buffered_follow_the_stream() -> None:
    conn = Connection(Role.SERVER)
    assert not conn.mid_frame
    assert conn.receive_data(CALL[:10]) == []
    assert conn.mid_frame and conn.buffered == 10
    assert conn.receive_data(CALL[10:-1]) == []
    assert conn.buffered == len(CALL) - 1
    (ev,) = conn.receive_data(CALL[-1:])
    assert isinstance(ev, Request) and not conn.mid_frame and conn.buffered == 0


# ---- request ids and what the connection writes --------------------------------------------


def test_request_ids_count_and_wrap_like_java() -> None:
    conn = Connection(Role.CLIENT)
    assert [conn.next_request_id() for _ in range(3)] == [1, 2, 3]
    hb = Connection(Role.SERVER).receive_data(conn.heartbeat())
    assert hb == [Heartbeat(4, False, encode_heartbeat_response(4))]  # one counter for both
    top = Connection(Role.CLIENT, first_id=2**63 - 2)
    ids = [top.next_request_id() for _ in range(4)]
    assert ids == [2**63 - 2, 2**63 - 1, -(2**63), -(2**63) + 1]
    neg = Connection(Role.CLIENT, first_id=-2)
    assert [neg.next_request_id() for _ in range(3)] == [-2, -1, 0]
    for rid in ids:  # every id fits the header's signed 64 bits
        pack_frame(0xC2, 0, rid, b"")


def test_heartbeat_round_trip_between_the_roles() -> None:
    client, server = Connection(Role.CLIENT), Connection(Role.SERVER)
    out = client.heartbeat()
    assert out == encode_heartbeat(1)
    (ev,) = server.receive_data(out)
    assert isinstance(ev, Heartbeat) and not ev.response and ev.reply is not None
    assert client.receive_data(ev.reply) == [Heartbeat(1, True, None)]


def test_readonly_round_trip_between_the_roles() -> None:
    client, server = Connection(Role.CLIENT), Connection(Role.SERVER)
    out = server.readonly_event()
    assert out == encode_event(1, "R") and out[2] == 0xA2  # one-way event
    assert client.receive_data(out) == [ReadOnly(True)] and client.peer_readonly
    assert client.receive_data(server.readonly_event(False)) == [ReadOnly(False)]
    assert not client.peer_readonly
    assert server.next_request_id() == 3  # events take ids from the same counter


def test_event_payload_limit_is_javas() -> None:
    at = pack_frame(0xA2, 0, 1, b"\x00" * (MAX_EVENT_BODY - 1) + b"R")
    over = pack_frame(0xA2, 0, 2, b"\x00" * MAX_EVENT_BODY + b"R")
    conn = Connection(Role.CLIENT)
    assert conn.receive_data(at) == [ReadOnly(True)]
    (ev,) = conn.receive_data(over)
    assert isinstance(ev, OtherEvent) and ev.frame.request_id == 2


def test_events_are_immutable() -> None:
    ev = Heartbeat(1, False, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.request_id = 2  # type: ignore[misc]


# ---- oversize frames and protocol errors ---------------------------------------------------


def _oversize_stream(limit: int) -> bytes:
    big = pack_frame(0x02, 20, 21, b"\x94" + b"x" * (limit + 100))
    return big + encode_response(22, "after")


def test_client_skips_an_oversize_response_at_any_split() -> None:
    limit = 64
    stream = _oversize_stream(limit)
    for chunks in splits(stream):
        conn = Connection(Role.CLIENT, max_payload=limit)
        events = [ev for c in chunks for ev in conn.receive_data(c)]
        assert [type(e) for e in events] == [OversizeFrame, Response], [len(c) for c in chunks]
        big, after = events
        assert isinstance(big, OversizeFrame) and big.response
        assert big.frame.request_id == 21 and big.frame.oversize == limit + 101
        assert big.frame.body == b""  # never buffered
        assert decode_response(big.frame).status == 90
        assert isinstance(after, Response) and decode_response(after.frame).value == "after"
        assert not conn.mid_frame and not conn.broken


def test_client_skipping_holds_no_body_bytes() -> None:
    limit = 64
    conn = Connection(Role.CLIENT, max_payload=limit)
    (ev,) = conn.receive_data(header(0x02, 20, 5, 10_000) + b"x" * 100)
    assert isinstance(ev, OversizeFrame)
    assert conn.mid_frame and conn.buffered == 0  # skipping, nothing held
    assert conn.receive_data(b"x" * (10_000 - 100)) == []
    assert not conn.mid_frame


ANSWER = encode_response(30, "done")


def frame_starts(stream: bytes) -> list[int]:
    """Offsets where the frames of a well-formed stream begin (read from their headers)."""
    starts, off = [], 0
    while off < len(stream):
        starts.append(off)
        off += 16 + int.from_bytes(stream[off + 12 : off + 16], "big")
    return starts


@pytest.mark.parametrize(
    ("role", "stream", "limit"),
    [
        (Role.SERVER, STREAM_TO_SERVER, 1 << 20),
        (Role.CLIENT, STREAM_TO_CLIENT, 1 << 20),
        (Role.CLIENT, _oversize_stream(64) * 2 + ANSWER, 64),  # skipped bodies too
    ],
    ids=["server", "client", "client-skipping"],
)
def test_frame_began_marks_the_read_holding_the_first_byte_of_the_open_frame(
    role: Role, stream: bytes, limit: int
) -> None:
    """The stall clock of the upstream pool starts at the read ``frame_began`` marks: the
    read where the still-incomplete frame began — never a later read inside it (a provider
    trickling a stuck frame byte by byte must not restart it), always a read that ends a
    frame and starts the next."""
    starts = frame_starts(stream)
    for chunks in splits(stream):
        conn = Connection(role, max_payload=limit)
        pos = 0
        for c in chunks:
            conn.receive_data(c)
            end = pos + len(c)
            mid = end < len(stream) and end not in starts
            began = mid and max(s for s in starts if s < end) >= pos
            assert (conn.mid_frame, conn.frame_began) == (mid, began), (
                [len(c) for c in chunks], pos, end
            )
            pos = end


def test_frame_began_is_cleared_by_a_broken_stream() -> None:
    conn = Connection(Role.CLIENT)
    conn.receive_data(ANSWER + b"\xda")
    assert conn.frame_began
    (ev,) = conn.receive_data(b"\x00" * 20)  # magic 0xda00
    assert isinstance(ev, ProtocolError) and not conn.frame_began


def test_oversize_request_from_a_provider_is_reported_as_such() -> None:
    conn = Connection(Role.CLIENT, max_payload=64)
    (ev,) = conn.receive_data(pack_frame(0xA2, 0, 5, b"R" * 200))
    assert isinstance(ev, OversizeFrame) and not ev.response and not conn.peer_readonly


@pytest.mark.parametrize("role", [Role.SERVER, Role.CLIENT])
def test_oversize_is_a_protocol_error_when_not_skipping(role: Role) -> None:
    limit = 64
    stream = _oversize_stream(limit)
    for chunks in splits(stream):
        conn = Connection(role, max_payload=limit, skip_oversized=False)
        events = [ev for c in chunks for ev in conn.receive_data(c)]
        assert len(events) == 1 and isinstance(events[0], ProtocolError)
        assert "exceeds the payload limit" in events[0].message
        assert conn.broken and conn.buffered == 0
        assert conn.receive_data(encode_heartbeat(1)) == []  # nothing after the error


def test_client_refuses_a_body_too_big_to_skip() -> None:
    conn = Connection(Role.CLIENT, max_payload=64)
    (ev,) = conn.receive_data(header(0x02, 20, 1, 2**31 - 1))
    assert isinstance(ev, ProtocolError) and conn.broken
    assert conn.receive_data(b"x" * SKIP_FLOOR) == []


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "bad magic"),
        (b"\x00" * 16, "bad magic"),
        (header(0xC2, 0, 1, -1), "negative body length"),
        (encode_heartbeat(1) + b"ls\r\n" + b"\x00" * 12, "bad magic"),  # telnet after a frame
    ],
)
@pytest.mark.parametrize("role", [Role.SERVER, Role.CLIENT])
def test_non_dubbo_streams_end_in_one_protocol_error(role: Role, data: bytes, fragment: str) -> None:
    for chunks in splits(data):
        conn = Connection(role)
        events = [ev for c in chunks for ev in conn.receive_data(c)]
        assert isinstance(events[-1], ProtocolError) and fragment in events[-1].message
        assert all(not isinstance(e, ProtocolError) for e in events[:-1])
        assert conn.broken and conn.buffered == 0


def test_hostile_bytes_never_raise_and_stay_bounded() -> None:
    rnd = random.Random(16)
    limit = 256
    for _ in range(300):
        role = rnd.choice([Role.CLIENT, Role.SERVER])
        conn = Connection(role, max_payload=limit)
        # valid frames with mutated bytes, truncated, or pure noise
        base = bytearray(rnd.choice([STREAM_TO_SERVER, STREAM_TO_CLIENT]))
        for _ in range(rnd.randrange(4)):
            base[rnd.randrange(len(base))] = rnd.randrange(256)
        data = bytes(base) if rnd.random() < 0.8 else rnd.randbytes(rnd.randrange(1, 200))
        pos = 0
        while pos < len(data):
            step = rnd.randrange(1, 40)
            for ev in conn.receive_data(data[pos : pos + step]):
                assert isinstance(ev, ConnectionEvent)
            pos += step
            assert conn.buffered <= limit + 16


# ---- property: any chunking of any sequence of frames --------------------------------------

_frames = st.lists(
    st.one_of(
        st.builds(
            lambda rid, body, flag: pack_frame(flag, 0, rid, body),
            st.integers(-(2**63), 2**63 - 1),
            st.binary(max_size=40),
            st.sampled_from([0xC2, 0x82, 0xE2, 0xA2, 0x02, 0x22, 0xA0 | FASTJSON2]),
        ),
        st.builds(encode_heartbeat, st.integers(-(2**63), 2**63 - 1)),
        st.builds(encode_event, st.integers(0, 2**31), st.sampled_from(["R", "W"])),
    ),
    max_size=8,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=_frames, cuts=st.lists(st.integers(0, 2000), max_size=6))
def test_chunking_never_changes_the_events(frames: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(frames)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    for role in Role:
        whole = feed(Connection(role), [stream])
        assert len(whole) == len(frames)
        assert feed(Connection(role), chunks) == whole


# ---- the upstream pool's glue --------------------------------------------------------------


class _Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.aborted = False

    def write(self, b: bytes) -> None:
        self.written.append(b)

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None: ...

    def set_write_buffer_limits(self, high: int) -> None: ...

    def get_write_buffer_size(self) -> int:
        return 0


async def test_upstream_fails_only_the_call_an_oversize_response_answers() -> None:
    loop = asyncio.get_running_loop()
    conn = DubboConnection(loop, UpstreamSettings(max_payload=64, heartbeat_interval=0))
    t = _Transport()
    conn.connection_made(t)  # type: ignore[arg-type]
    a, b = conn.next_id(), conn.next_id()
    fa = conn.call(a, encode_heartbeat(a), 5)
    fb = conn.call(b, encode_heartbeat(b), 5)
    # an over-limit *event* from the provider under our id ``a`` answers nothing
    conn.data_received(pack_frame(0xA2, 0, a, b"R" * 100))
    assert not fa.done() and conn.usable
    conn.data_received(pack_frame(0x02, 20, a, b"x" * 100) + encode_response(b, "ok"))
    fr_a: Frame = fa.result()
    assert fr_a.oversize == 100 and decode_response(fr_a).status == 90
    assert decode_response(fb.result()).value == "ok"
    assert not conn.pending
    conn.connection_lost(None)


async def test_upstream_closes_on_a_protocol_error_and_fails_calls_in_flight() -> None:
    loop = asyncio.get_running_loop()
    conn = DubboConnection(loop, UpstreamSettings(heartbeat_interval=0))
    t = _Transport()
    conn.connection_made(t)  # type: ignore[arg-type]
    rid = conn.next_id()
    fut = conn.call(rid, encode_heartbeat(rid), 5)
    conn.data_received(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    assert t.aborted and fut.done()
    with pytest.raises(Exception, match="malformed frame: bad magic"):
        fut.result()
    conn.connection_lost(None)


def _upstream(**settings: Any) -> tuple[DubboConnection, _Transport]:
    conn = DubboConnection(
        asyncio.get_running_loop(), UpstreamSettings(heartbeat_interval=0, **settings)
    )
    t = _Transport()
    conn.connection_made(t)  # type: ignore[arg-type]
    return conn, t


def _call(conn: DubboConnection, timeout: float) -> tuple[int, asyncio.Future[Frame]]:
    rid = conn.next_id()
    return rid, conn.call(rid, encode_heartbeat(rid), timeout)


async def test_upstream_closes_a_frame_trickled_past_the_call_timeout() -> None:
    """A provider answers with a header and then one byte every 50 ms: never silent for a
    call timeout (0.3 s), yet the frame never ends; closed once 0.3 s have passed since its
    first byte, and the calls stuck behind it fail at once."""
    conn, t = _upstream()
    rid, fut = _call(conn, 0.3)
    t0 = time.monotonic()
    conn.data_received(header(0x02, 20, rid, 10_000))
    behind: asyncio.Future[Frame] | None = None
    while not t.aborted and time.monotonic() - t0 < 5:
        await asyncio.sleep(0.05)
        if behind is None:
            _, behind = _call(conn, 30)
        conn.data_received(b"x")
    took = time.monotonic() - t0
    assert t.aborted, "the trickled frame kept the connection open"
    assert 0.25 <= took < 2.0, took
    with pytest.raises(CallTimeout):
        fut.result()
    assert behind is not None and behind.done()
    with pytest.raises(ConnectionLost, match="stalled in the middle of a frame"):
        behind.result()
    conn.connection_lost(None)


async def test_upstream_keeps_a_stream_whose_frames_keep_completing() -> None:
    """Every read ends inside a frame (pipelined responses cut mid-frame) for 1 s, more
    than the call timeout that expires meanwhile; each completed frame restarts the clock,
    so the connection stays and answers the next call."""
    conn, t = _upstream()
    _, lost = _call(conn, 0.2)  # never answered: its timeout looks at the stream
    one = encode_response(1000, "v" * 40)
    stream = b"".join(encode_response(1000 + i, "v" * 40) for i in range(25))
    half = len(one) // 2
    conn.data_received(stream[:half])
    t0 = time.monotonic()
    for k in range(24):  # chunk k: the second half of frame k, the first half of frame k+1
        await asyncio.sleep(0.04)
        conn.data_received(stream[k * len(one) + half : (k + 1) * len(one) + half])
        assert conn.wire.mid_frame and not t.aborted
    assert time.monotonic() - t0 > 0.5  # well past the 0.2 s timeout, and its check
    with pytest.raises(CallTimeout):
        lost.result()
    conn.data_received(stream[24 * len(one) + half :])
    rid, fut = _call(conn, 1)
    conn.data_received(encode_response(rid, "still here"))
    assert decode_response(fut.result()).value == "still here" and not t.aborted
    conn.connection_lost(None)


async def test_upstream_keeps_a_slow_frame_a_longer_call_still_waits_for() -> None:
    """A 2 s call's answer arrives slowly (0.7 s) while a 0.2 s call times out: a call
    the frame may answer still waits, so the frame is not cut."""
    conn, t = _upstream()
    rid, slow = _call(conn, 2.0)
    _, short = _call(conn, 0.2)
    answer = encode_response(rid, "y" * 2000)
    step = len(answer) // 10 + 1
    for i in range(0, len(answer), step):
        conn.data_received(answer[i : i + step])
        await asyncio.sleep(0.07)
    with pytest.raises(CallTimeout):
        short.result()
    assert decode_response(slow.result()).value == "y" * 2000
    await asyncio.sleep(0.05)
    assert not t.aborted and conn.usable
    conn.connection_lost(None)


async def test_upstream_stall_check_follows_the_frame_now_open() -> None:
    """A check scheduled for a frame that then completed does not close the connection,
    and a frame that stalls after it is caught by the next timeout."""
    conn, t = _upstream()
    _, first = _call(conn, 1.0)
    await asyncio.sleep(0.5)
    other = encode_response(999, "z")  # an answer nobody waits for, begun after ``first``
    conn.data_received(other[:5])
    while not first.done():
        await asyncio.sleep(0.01)
    # ``first`` timed out 0.5 s into ``other``: a check is due 0.5 s from now
    assert conn._stall_check is not None and not t.aborted
    conn.data_received(other[5:] + header(0x02, 20, 77, 50))  # done; a stuck frame begins
    while conn._stall_check is not None:
        await asyncio.sleep(0.02)
    assert not t.aborted  # the check (for ``other``) came and went
    _, late = _call(conn, 0.2)
    t0 = time.monotonic()
    while not t.aborted and time.monotonic() - t0 < 3:
        await asyncio.sleep(0.02)
    assert t.aborted and time.monotonic() - t0 < 1.5
    with pytest.raises(CallTimeout):
        late.result()
    conn.connection_lost(None)


async def test_upstream_heartbeat_ticks_count_silent_intervals() -> None:
    """A tick after a read sends nothing; a silent one sends a heartbeat; the third
    silent tick in a row closes the connection (three silent heartbeat intervals)."""
    conn, t = _upstream()
    conn._heartbeat()
    assert len(t.written) == 1 and t.written[0][2] & 0x20  # a two-way event: heartbeat
    conn.data_received(encode_heartbeat_response(int.from_bytes(t.written[0][4:12], "big")))
    conn._heartbeat()
    assert len(t.written) == 1 and not t.aborted
    conn._heartbeat()
    conn._heartbeat()
    assert len(t.written) == 3 and not t.aborted
    conn._heartbeat()
    assert t.aborted and len(t.written) == 3
    conn.connection_lost(None)


# ---- the MetadataService client's glue -----------------------------------------------------


async def test_metadata_client_answers_heartbeats_and_stops_at_a_protocol_error() -> None:
    from tribridge.registries.metadata_service import MetadataServiceError, fetch_metadata_info

    got: list[bytes] = []

    async def provider(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        wire = Connection(Role.SERVER)
        reqs: list[ConnectionEvent] = []
        while not reqs:  # the call, whichever way the stream split it
            reqs = [e for e in wire.receive_data(await r.read(65536)) if isinstance(e, Request)]
        w.write(encode_heartbeat(-3) + encode_event(4, "R"))
        data = await r.readexactly(17)  # the heartbeat response: 16-byte header + "N"
        got.append(data)
        w.write(b"\xda\xbc" + b"\x00" * 14)  # then something that is not Dubbo2
        await w.drain()
        await r.read()  # until the client hangs up
        w.close()

    server = await asyncio.start_server(provider, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(MetadataServiceError, match="bad magic 0xdabc"):
            await fetch_metadata_info("127.0.0.1", port, "conn-app", "r-conn", timeout=5)
    finally:
        server.close()
    assert got == [encode_heartbeat_response(-3)]


async def test_calls_of_one_iteration_share_a_timeout_timer_and_still_time_out_alone() -> None:
    """The calls written in one loop iteration with one timeout share one timer (armed at
    their one write); an answered call is not failed by it, the unanswered one is, and a
    connection that fails cancels what is still armed."""
    loop = asyncio.get_running_loop()
    conn = DubboConnection(loop, UpstreamSettings(heartbeat_interval=0))
    t = _Transport()
    conn.connection_made(t)  # type: ignore[arg-type]
    a, b, c = conn.next_id(), conn.next_id(), conn.next_id()
    fa = conn.call(a, encode_heartbeat(a), 0.2)
    fb = conn.call(b, encode_heartbeat(b), 0.2)
    fc = conn.call(c, encode_heartbeat(c), 5)
    await asyncio.sleep(0)  # the flush: one write, one timer per timeout value
    assert len(t.written) == 1 and len(conn.timers) == 2
    conn.data_received(encode_response(a, "ok"))
    assert decode_response(fa.result()).value == "ok"
    with pytest.raises(CallTimeout):
        await asyncio.wait_for(fb, 2)
    assert list(conn.timers) == [c] and not fc.done()  # the 0.2 s batch's timer is gone
    conn.connection_lost(None)
    assert not conn.timers
    with pytest.raises(ConnectionLost):
        fc.result()


class _Waiter:
    """A caller's own waiter (``send``): records what it got, and when."""

    def __init__(self) -> None:
        self.got: list[object] = []

    def done(self) -> bool:
        return bool(self.got)

    def set_result(self, fr: Frame) -> None:
        self.got.append(decode_response(fr).value)

    def set_exception(self, exc: BaseException) -> None:
        self.got.append(exc)


async def test_upstream_send_completes_the_waiter_inside_data_received() -> None:
    """``send`` (the gateway's fast path): the reply reaches the waiter in the very
    ``data_received`` that read it (no loop hop), each waiter its own, out of order too;
    a timeout and a lost connection reach waiters as they reach futures."""
    conn, _ = _upstream()
    w1, w2, w3 = _Waiter(), _Waiter(), _Waiter()
    ids = [conn.next_id() for _ in range(3)]
    for rid, w in zip(ids, (w1, w2, w3), strict=True):
        conn.send(rid, encode_heartbeat(rid), 5, w)
    conn.data_received(encode_response(ids[1], "two") + encode_response(ids[0], "one"))
    assert (w1.got, w2.got, w3.got) == (["one"], ["two"], [])  # no await in between
    conn.connection_lost(None)
    assert len(w3.got) == 1 and isinstance(w3.got[0], ConnectionLost)
    assert not conn.pending


async def test_upstream_send_on_a_closed_connection_fails_the_waiter_at_once() -> None:
    conn, _ = _upstream()
    conn.connection_lost(None)
    w = _Waiter()
    conn.send(1, encode_heartbeat(1), 5, w)
    assert len(w.got) == 1 and isinstance(w.got[0], ConnectionLost)
    assert not conn.pending


async def test_upstream_writes_a_full_batch_at_once_and_the_rest_at_the_iteration_end() -> None:
    """The calls of one loop iteration share writes, but a batch that reaches
    ``batch_frames`` frames (or ``batch_bytes``) is written at once, so the provider starts
    on it while the gateway reads on; every call keeps its timeout and its answer."""
    conn, t = _upstream(batch_frames=4, batch_bytes=4096)
    calls = [_call(conn, 5) for _ in range(10)]
    assert len(t.written) == 2  # after frames 4 and 8, within the same iteration
    assert all(len(w) == 4 * len(encode_heartbeat(1)) for w in t.written)
    await asyncio.sleep(0)  # the iteration ends: frames 9 and 10 in one write
    assert len(t.written) == 3
    conn.data_received(b"".join(encode_response(rid, rid) for rid, _ in calls))
    assert [decode_response(f.result()).value for _, f in calls] == [r for r, _ in calls]
    big = b"x" * 5000  # past batch_bytes alone: written at once
    w = _Waiter()
    conn.send(99, big, 5, w)
    assert t.written[-1] == big
    conn.connection_lost(None)
    assert isinstance(w.got[0], ConnectionLost)


async def test_upstream_batches_time_out_each_call_on_its_own() -> None:
    conn, _ = _upstream(batch_frames=2)
    (_, fa), (b, fb), (_, fc) = _call(conn, 0.05), _call(conn, 0.05), _call(conn, 5)
    conn.data_received(encode_response(b, "b"))
    with pytest.raises(CallTimeout):
        await asyncio.wait_for(fa, 2)
    assert decode_response(fb.result()).value == "b" and not fc.done()
    conn.connection_lost(None)
    assert isinstance(fc.exception(), ConnectionLost)
