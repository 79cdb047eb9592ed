"""The gateway's own HTTP/2 Triple clients (``h2`` and ``lean``, gateway/upstream/triple_h2.py)
against grpcio servers: stream limits, a server going away, big messages, header blocks."""

from __future__ import annotations

import asyncio
import time

import pytest
from tribridge.codecs.hessian2 import decode, encode
from tribridge.codecs.triple import decode_response_wrapper, encode_request_wrapper
from tribridge.interop.triple_peers import SERVICE, start_peer
from tribridge.upstream.h2_engines import literal_block
from tribridge.upstream.triple import TripleCallError, make_triple_client

from tests.conftest import free_port

CLIENTS = ["h2", "lean"]


def sleep_payload(ms: int) -> bytes:
    return encode_request_wrapper([encode(ms)], ["int"])


@pytest.mark.parametrize("kind", CLIENTS)
def test_max_concurrent_streams_respected(kind: str) -> None:
    # a server allowing 2 streams: 12 concurrent 200 ms calls all succeed (they queue).
    # (grpc.aio's client, with retries off as the gateway sets it, gets REFUSED_STREAM
    # from this server instead: that is why it is not in this test)
    peer = start_peer("grpc", free_port(), max_streams=2)

    async def go() -> tuple[list[int], float]:
        c = make_triple_client(kind)
        addr = ("127.0.0.1", peer.port)
        # one call first: streams opened before the server's SETTINGS arrive may be
        # refused, an HTTP/2 start-up race
        await c.unary(addr, f"/{SERVICE}/sleep", sleep_payload(1), [], 10)
        t = time.monotonic()
        try:
            replies = await asyncio.gather(
                *[c.unary(addr, f"/{SERVICE}/sleep", sleep_payload(200), [], 10) for _ in range(12)]
            )
            took = time.monotonic() - t
            return [decode(decode_response_wrapper(r.data).data) for r in replies], took
        finally:
            await c.close()

    try:
        values, took = asyncio.run(go())
    finally:
        peer.close()
    assert values == [200] * 12
    assert took >= 1.0, took  # 6 waves of 2 streams x 200 ms: the limit was obeyed


@pytest.mark.parametrize("kind", CLIENTS)
def test_server_stops_mid_call_then_returns(kind: str) -> None:
    port = free_port()
    peer = start_peer("grpc", port)

    async def go() -> list[object]:
        c = make_triple_client(kind)
        addr = ("127.0.0.1", port)
        out: list[object] = []
        try:
            await c.unary(addr, f"/{SERVICE}/sleep", sleep_payload(1), [], 5)
            slow = asyncio.ensure_future(
                c.unary(addr, f"/{SERVICE}/sleep", sleep_payload(3000), [], 10)
            )
            await asyncio.sleep(0.3)
            peer.close()  # SIGTERM: the process dies with the call in flight
            t = time.monotonic()
            try:
                await slow
            except TripleCallError as e:
                out.append((e.status.name, e.sent, time.monotonic() - t < 2.0))
            try:  # while down: refused at once, known not sent
                await c.unary(addr, f"/{SERVICE}/sleep", sleep_payload(1), [], 5)
            except TripleCallError as e:
                out.append((e.status.name, e.sent))
            back = start_peer("grpc", port)
            try:
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    try:
                        r = await c.unary(addr, f"/{SERVICE}/sleep", sleep_payload(7), [], 5)
                        out.append(decode(decode_response_wrapper(r.data).data))
                        break
                    except TripleCallError:
                        await asyncio.sleep(0.1)
            finally:
                back.close()
        finally:
            await c.close()
        return out

    try:
        out = asyncio.run(go())
    finally:
        peer.close()
    assert out == [("UNAVAILABLE", True, True), ("UNAVAILABLE", False), 7]


@pytest.mark.parametrize("kind", CLIENTS)
def test_deadline_resets_stream_and_connection_stays_usable(kind: str) -> None:
    peer = start_peer("grpc", free_port())

    async def go() -> list[object]:
        c = make_triple_client(kind)
        addr = ("127.0.0.1", peer.port)
        out: list[object] = []
        try:
            for _ in range(3):
                try:
                    await c.unary(addr, f"/{SERVICE}/sleep", sleep_payload(2000), [], 0.2)
                except TripleCallError as e:
                    out.append(e.status.name)
            r = await c.unary(addr, f"/{SERVICE}/sleep", sleep_payload(3), [], 5)
            out.append(decode(decode_response_wrapper(r.data).data))
        finally:
            await c.close()
        return out

    try:
        assert asyncio.run(go()) == ["DEADLINE_EXCEEDED"] * 3 + [3]
    finally:
        peer.close()


def test_literal_block_decodes_with_hpack() -> None:
    # the lean engine's request blocks, read by python-hyper's decoder (as a server would)
    import hpack

    hs = [
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b":path", b"/a.B/c"),
        (b":authority", b"h:1"),
        (b"content-type", b"application/grpc"),
        (b"te", b"trailers"),
        (b"x-long", b"v" * 300),
    ]
    dec = hpack.Decoder()
    block = literal_block(hs)
    assert [(bytes(k), bytes(v)) for k, v in dec.decode(block, raw=True)] == hs
    assert dec.header_table.dynamic_entries == type(dec.header_table.dynamic_entries)()
    # stateless: the same bytes decode the same way again
    assert [(bytes(k), bytes(v)) for k, v in dec.decode(block, raw=True)] == hs


# ---- LeanEngine on crafted input: the paths the peers above never take ------------------------


class _Sink:
    def __init__(self) -> None:
        self.events: list[tuple[object, ...]] = []

    def on_headers(self, sid: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.events.append(("headers", sid, headers))

    def on_data(self, sid: int, data: bytes) -> None:
        self.events.append(("data", sid, bytes(data)))

    def on_end(self, sid: int) -> None:
        self.events.append(("end", sid))

    def on_reset(self, sid: int, code: int) -> None:
        self.events.append(("reset", sid, code))

    def on_goaway(self, last_sid: int, code: int) -> None:
        self.events.append(("goaway", last_sid, code))

    def on_window(self) -> None:
        self.events.append(("window",))


def _engine():  # type: ignore[no-untyped-def]
    from tribridge.upstream.h2_engines import LeanEngine

    sink = _Sink()
    eng = LeanEngine(sink)
    eng.start()
    eng.take()
    return eng, sink


def _fr(ftype: int, flags: int, sid: int, payload: bytes) -> bytes:
    from tribridge.upstream.h2_engines import _frame

    return _frame(ftype, flags, sid, payload)


def test_lean_engine_continuation_padding_ping_settings() -> None:
    import struct

    import hpack

    eng, sink = _engine()
    sid = eng.open_stream(literal_block([(b":method", b"POST")]))
    enc = hpack.Encoder()
    block = enc.encode([(b":status", b"200"), (b"x-long", b"v" * 100)])
    # HEADERS split into HEADERS + CONTINUATION, fed one byte at a time
    data = _fr(1, 0, sid, block[:10]) + _fr(9, 0x4, sid, block[10:])
    # padded DATA (pad length 3), then trailers with END_STREAM
    data += _fr(0, 0x8, sid, b"\x03" + b"hello" + b"\0\0\0")
    data += _fr(1, 0x5, sid, enc.encode([(b"grpc-status", b"0")]))
    data += _fr(6, 0, 0, b"12345678")  # PING
    data += _fr(4, 0, 0, struct.pack(">HI", 4, 1000) + struct.pack(">HI", 3, 7))  # SETTINGS
    for i in range(len(data)):
        eng.feed(data[i : i + 1])
    assert sink.events[:4] == [
        ("headers", sid, [(b":status", b"200"), (b"x-long", b"v" * 100)]),
        ("data", sid, b"hello"),
        ("headers", sid, [(b"grpc-status", b"0")]),
        ("end", sid),
    ]
    out = eng.take()
    assert _fr(6, 0x1, 0, b"12345678") in out  # PING answered
    assert _fr(4, 0x1, 0, b"") in out  # SETTINGS acknowledged
    assert eng.peer_initial == 1000 and eng.max_streams == 7
    s2 = eng.open_stream(b"\x83")
    assert eng.send_window(s2) == 1000


def test_lean_engine_refuses_broken_peers() -> None:
    from tribridge.upstream.h2_engines import H2ProtocolError

    cases = {
        "push": _fr(5, 0x4, 1, b"\0\0\0\x02"),
        "huge frame": b"\x7f\xff\xff\x00\x00\x00\x00\x00\x01",
        "bad hpack": _fr(1, 0x5, 1, b"\xff\xff\xff\xff\x7f"),
        "stray continuation": _fr(9, 0x4, 1, b"\x88"),
    }
    for name, data in cases.items():
        eng, _ = _engine()
        eng.open_stream(b"\x83")
        with pytest.raises(H2ProtocolError):
            eng.feed(data)
            raise AssertionError(f"{name} accepted")


def test_lean_engine_flow_control_and_reset() -> None:
    import struct

    eng, sink = _engine()
    sid = eng.open_stream(b"\x83")
    assert eng.send_window(sid) == 65535
    eng.send_data(sid, b"x" * 65535, False)
    assert eng.send_window(sid) == 0
    eng.feed(_fr(8, 0, 0, struct.pack(">I", 100)) + _fr(8, 0, sid, struct.pack(">I", 50)))
    assert eng.send_window(sid) == 50
    # received DATA is given back to the connection window in batches (WINDOW_UPDATE)
    eng.take()
    for _ in range(520):
        eng.feed(_fr(0, 0, sid, b"y" * 16384))
    # a connection-level WINDOW_UPDATE was queued
    assert b"\x00\x00\x04\x08\x00\x00\x00\x00\x00" in eng.take()
    eng.feed(_fr(3, 0, sid, struct.pack(">I", 7)))
    assert sink.events[-1] == ("reset", sid, 7)
    eng.feed(_fr(7, 0, 0, struct.pack(">II", 1, 0)))
    assert sink.events[-1] == ("goaway", 1, 0) and eng.goaway


def test_triple_client_config() -> None:
    from tribridge.config.model import ConfigError, parse_config

    base = "listen: {host: 127.0.0.1, port: 0}\nupstream: {triple_client: %s}\n"
    assert parse_config(base % "grpcio", "<t>").upstream.triple_client == "grpcio"
    assert parse_config("listen: {port: 0}\n", "<t>").upstream.triple_client == "lean"
    with pytest.raises(ConfigError, match="triple_client"):
        parse_config(base % "curl", "<t>")
