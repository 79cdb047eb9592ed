"""The gateway's own HTTP/2 Triple clients (``h2`` and ``lean``, gateway/triple_h2.py)
against grpcio servers: stream limits, a server going away, big messages, header blocks."""

from __future__ import annotations

import asyncio
import time

import pytest
from tribridge.codecs.hessian2 import decode, encode
from tribridge.codecs.triple import decode_response_wrapper, encode_request_wrapper
from tribridge.h2_engines import literal_block
from tribridge.interop.triple_peers import SERVICE, start_peer
from tribridge.triple import TripleCallError, make_triple_client

from .conftest import free_port

CLIENTS = ["h2", "lean"]


def sleep_payload(ms: int) -> bytes:
    return encode_request_wrapper([encode(ms)], ["int"])


@pytest.mark.parametrize("kind", CLIENTS)
def test_max_concurrent_streams_respected(kind: str) -> None:
    # a server allowing 2 streams: 12 concurrent 200 ms calls all succeed (they queue).
    # (grpc.aio's client, with retries off as the gateway sets it, gets REFUSED_STREAM
    # from this server instead: that is why it is not in this test)
    peer = start_peer("grpc", free_port(), 20.0, "2")

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
