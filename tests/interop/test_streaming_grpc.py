"""Streams end to end against two real servers of idl.stream.v1.Ticker (interop/protos/
stream.proto): grpcio (interop/grpc_server.py, gRPC) and @apachedubbo/dubbo-node
(interop/node/dubbo_node_server.js, Triple): server streams as SSE and NDJSON, client and bidi
streams over WebSocket, errors both ways, cancellation reaching the provider, a slow client
slowing the provider through HTTP/2 flow control, many streams on one upstream connection,
keep-alives, deadlines, the stream limit and graceful shutdown."""

from __future__ import annotations

import asyncio
import http.client
import shlex
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
import pytest
from tribridge.cli.commands import demo_config, demo_curl_lines
from tribridge.interop.idl_peers import (
    ReadyProcess,
    demo_descriptor_set,
    start_dubbo_node_server,
    start_grpc_server,
)
from tribridge.interop.testing import BackgroundLoop, http_request

from tests.helpers.streams import StreamClient, ws_exchange

SVC = "idl.stream.v1.Ticker"
COUNT = f"/{SVC}/Count"


@dataclass(frozen=True)
class Peer:
    name: str
    port: int
    idl: str  # the service's idl: source
    protocol: str  # grpc | tri


def config(peer: Peer, extra: str = "") -> str:
    return f"""
listen: {{host: 127.0.0.1, port: 0}}
access_log: false
limits: {{write_buffer_bytes: 65536}}
services:
  - interface: {SVC}
    protocol: {peer.protocol}
    endpoints: ["127.0.0.1:{peer.port}"]
    idl: {peer.idl}
    timeout: 5s
routes:
  - {{method: GET, path: "/v1/ticks/{{id}}", service: {SVC}, call: Count}}
{extra}
"""


@pytest.fixture(scope="module")
def grpcio_ticker() -> Iterator[ReadyProcess]:
    with start_grpc_server("stream", reflection="v1") as srv:
        yield srv


@pytest.fixture(scope="module")
def node_ticker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ReadyProcess, Path]]:
    dset = demo_descriptor_set(tmp_path_factory.mktemp("stream") / "stream.pb", "stream")
    with start_dubbo_node_server(dset) as srv:
        yield srv, dset


@pytest.fixture(scope="module", params=["grpcio", "dubbo-node"])
def ticker(request: pytest.FixtureRequest) -> Peer:
    """The streaming server: grpcio (gRPC, reflection) or dubbo-node (Triple, a descriptor
    set: it serves no reflection)."""
    if request.param == "grpcio":
        srv = request.getfixturevalue("grpcio_ticker")
        return Peer("grpcio", srv.port, "{reflection: true}", "grpc")
    srv, dset = request.getfixturevalue("node_ticker")
    return Peer("dubbo-node", srv.port, f'{{descriptor_set: "{dset}"}}', "tri")


@pytest.fixture(scope="module")
def gw(bg: BackgroundLoop, ticker: ReadyProcess):  # type: ignore[no-untyped-def]
    extra = "streaming: {keepalive: 200ms, max_streams: 200, websocket_max_message: 4096}"
    return bg.start_gateway(config(ticker, extra))


def inspect(port: int, sid: str) -> dict:
    status, body = http_request(port, "POST", f"/{SVC}/Inspect", {"id": sid})
    assert status == 200, body
    return body


def wait_for(pred, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


# ---- server streams ----------------------------------------------------------------------


def test_sse_messages_in_order_then_end(gw) -> None:  # type: ignore[no-untyped-def]
    c = StreamClient(gw.port, COUNT, {"id": "sse-1", "count": 25})
    assert c.status == 200
    assert c.content_type == "text/event-stream"
    events = [e for e in c.events() if e[0] != ":"]
    c.close()
    assert [e[0] for e in events] == ["message"] * 25 + ["end"]
    assert [e[1].get("n", 0) for e in events[:25]] == list(range(25))
    assert all(e[1]["id"] == "sse-1" for e in events[:25])
    assert inspect(gw.port, "sse-1") == {"sent": 25, "finished": True}  # no cancel, no trace


def test_explicit_route_streams(gw) -> None:  # type: ignore[no-untyped-def]
    """A google.api.http route to a streaming method: path variable and query bind the
    request message, as for unary methods."""
    c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    c.request("GET", "/v1/ticks/route-1?count=3", headers={"accept": "application/x-ndjson"})
    r = c.getresponse()
    assert r.status == 200 and r.getheader("content-type") == "application/x-ndjson"
    rows = [orjson.loads(x) for x in r.read().splitlines()]
    c.close()
    assert rows == [{"id": "route-1"}, {"n": 1, "id": "route-1"}, {"n": 2, "id": "route-1"}]


def test_ndjson_by_accept(gw) -> None:  # type: ignore[no-untyped-def]
    c = StreamClient(gw.port, COUNT, {"id": "nd-1", "count": 7}, accept="application/x-ndjson")
    assert c.content_type == "application/x-ndjson"
    rows = list(c.ndjson())
    c.close()
    assert [r.get("n", 0) for r in rows] == list(range(7))


def test_error_mid_stream_is_an_sse_error_event(gw) -> None:  # type: ignore[no-untyped-def]
    body = {"id": "err-1", "count": 10, "failAt": 3, "failCode": 8}
    c = StreamClient(gw.port, COUNT, body)
    events = [e for e in c.events() if e[0] != ":"]
    c.close()
    assert [e[0] for e in events] == ["message"] * 3 + ["error"]
    err = events[-1][1]["error"]
    assert err["grpc_status"] == "RESOURCE_EXHAUSTED" and err["grpc_code"] == 8
    assert err["grpc_message"] == "failed at 3"
    assert err["code"] == "provider_overloaded"  # statuses.GRPC_TO_HTTP, as for unary calls


def test_error_mid_stream_is_an_ndjson_error_line(gw) -> None:  # type: ignore[no-untyped-def]
    body = {"id": "err-2", "count": 10, "failAt": 2, "failCode": 7}
    c = StreamClient(gw.port, COUNT, body, accept="application/x-ndjson")
    rows = list(c.ndjson())
    c.close()
    assert [r.get("n", 0) for r in rows[:2]] == [0, 1]
    assert rows[2]["error"]["grpc_status"] == "PERMISSION_DENIED"
    assert len(rows) == 3


def test_error_before_the_first_message_is_an_http_status(gw) -> None:  # type: ignore[no-untyped-def]
    body = {"id": "err-3", "count": 10, "failAt": 0}
    c = StreamClient(gw.port, f"/{SVC}/Nope", body)
    assert c.status == 404
    c.close()


def test_client_disconnect_cancels_the_provider_stream(gw) -> None:  # type: ignore[no-untyped-def]
    c = StreamClient(gw.port, COUNT, {"id": "cancel-1", "count": 10000, "delayMs": 20})
    it = c.events()
    got = [next(it) for _ in range(3)]
    assert [g[1].get("n", 0) for g in got if g[0] == "message"][:2] == [0, 1]
    c.close()
    assert wait_for(lambda: inspect(gw.port, "cancel-1").get("cancelled", False))
    probe = inspect(gw.port, "cancel-1")
    assert not probe.get("finished", False) and probe["sent"] < 10000


def test_slow_client_slows_the_provider_with_bounded_buffers(gw, ticker: Peer) -> None:  # type: ignore[no-untyped-def]
    """16 KiB messages, 2000 of them (32 MiB): while the client reads nothing, the gateway
    holds at most its write high-water mark plus one message for the client and reads no
    further from the provider; grpcio's handler then waits (HTTP/2 flow control), while
    dubbo-node's keeps generating into its own process's buffers (its handler does not wait
    for the HTTP/2 stream to drain: a provider's choice, on its side of the wire)."""
    n, size = 2000, 16 * 1024
    c = StreamClient(gw.port, COUNT, {"id": "slow-1", "count": n, "size": size}, rcvbuf=64 * 1024)
    time.sleep(1.5)
    stalled = inspect(gw.port, "slow-1")["sent"]
    if ticker.name == "grpcio":  # about 250 here: kernel socket buffers, mostly
        assert stalled < n // 4, stalled
    held = [
        conn.transport.get_write_buffer_size()
        for conn in list(gw.http._conns)
        if conn.stream is not None and conn.transport is not None
    ]
    assert held and max(held) <= 65536 + 2 * size, held
    count = 0
    for name, data in c.events():
        if name == "message":
            assert data.get("n", 0) == count
            count += 1
    c.close()
    assert count == n
    assert inspect(gw.port, "slow-1")["finished"]


def test_keepalive_comments_on_an_idle_stream(gw) -> None:  # type: ignore[no-untyped-def]
    c = StreamClient(gw.port, COUNT, {"id": "ka-1", "count": 2, "delayMs": 900})
    events = list(c.events())
    c.close()
    names = [e[0] for e in events]
    assert names.count("message") == 2 and names[-1] == "end"
    assert ":" in names[1:-1]  # a comment between the two messages
    assert (":", "keep-alive") in events


def test_deadline_ends_the_stream(gw) -> None:  # type: ignore[no-untyped-def]
    body = {"id": "dl-1", "count": 100, "delayMs": 100}
    c = StreamClient(gw.port, COUNT, body, headers={"x-dubbo-timeout": "1500"})
    events = [e for e in c.events() if e[0] != ":"]
    c.close()
    assert 3 <= len(events) < 100
    assert events[-1][0] == "error"
    assert events[-1][1]["error"]["grpc_status"] == "DEADLINE_EXCEEDED"


def test_trace_context_reaches_the_provider(gw) -> None:  # type: ignore[no-untyped-def]
    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    c = StreamClient(gw.port, COUNT, {"id": "tr-1", "count": 2}, headers={"traceparent": tp})
    assert [e[0] for e in c.events()] == ["message", "message", "end"]
    c.close()
    seen = inspect(gw.port, "tr-1")["traceparent"]
    assert seen.split("-")[1] == "0af7651916cd43dd8448eb211c80319c"


def test_many_concurrent_streams_share_one_upstream_connection(gw) -> None:  # type: ignore[no-untyped-def]
    results: dict[int, list[int]] = {}

    def one(i: int) -> None:
        c = StreamClient(gw.port, COUNT, {"id": f"many-{i}", "count": 20, "delayMs": 5})
        results[i] = [d.get("n", 0) for name, d in c.events() if name == "message"]
        c.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 40
    assert all(v == list(range(20)) for v in results.values())
    grpc_client = gw.pools.triple_client()._grpc
    stream_channels = [k for k in grpc_client._channels if k[2].endswith("\0streams")]
    assert len(stream_channels) == 1


# ---- client and bidi streams over WebSocket ---------------------------------------------------


def test_client_stream_over_websocket(gw, bg) -> None:  # type: ignore[no-untyped-def]
    nums = [{"value": i} for i in range(1, 11)]
    got, code, _ = asyncio.run(ws_exchange(gw.port, f"/{SVC}/Sum", nums))
    assert got == [{"sum": "55", "count": 10}]
    assert code == 1000


def test_websocket_flood_is_relayed_whole_and_in_order(gw) -> None:  # type: ignore[no-untyped-def]
    """3,000 messages sent at once: the gateway reads on only as the provider takes them
    (reading from the client pauses past 8 queued), and none is lost or reordered."""
    nums = [{"value": i} for i in range(3000)]
    got, code, _ = asyncio.run(ws_exchange(gw.port, f"/{SVC}/Echo", nums, timeout=30))
    assert [g.get("value", 0) for g in got] == [2 * i for i in range(3000)]
    assert code == 1000
    got, code, _ = asyncio.run(ws_exchange(gw.port, f"/{SVC}/Sum", nums, timeout=30))
    assert got == [{"sum": str(sum(range(3000))), "count": 3000}]


def test_bidi_stream_over_websocket(gw) -> None:  # type: ignore[no-untyped-def]
    nums = [{"value": i, "id": "b"} for i in range(1, 21)]
    got, code, _ = asyncio.run(ws_exchange(gw.port, f"/{SVC}/Echo", nums))
    assert [g["value"] for g in got] == [2 * i for i in range(1, 21)]
    assert code == 1000


def test_websocket_bad_message_closes_with_1007(gw) -> None:  # type: ignore[no-untyped-def]
    _got, code, reason = asyncio.run(
        ws_exchange(gw.port, f"/{SVC}/Echo", [{"value": 1}], end=False, raw=["{not json"])
    )
    assert code == 1007, (code, reason)
    assert "not JSON" in reason


def test_websocket_error_close_code_carries_grpc_status(gw) -> None:  # type: ignore[no-untyped-def]
    got, code, reason = asyncio.run(
        ws_exchange(gw.port, f"/{SVC}/Echo", [{"value": "x"}], end=False)
    )
    assert code == 4003, (code, reason)  # INVALID_ARGUMENT: the value is not an int32
    assert got == []  # refused in the gateway: nothing reached the provider


def test_websocket_message_over_the_limit_closes_with_1009(gw) -> None:  # type: ignore[no-untyped-def]
    big = {"value": 1, "id": "x" * 8000}
    got, code, reason = asyncio.run(ws_exchange(gw.port, f"/{SVC}/Echo", [big], end=False))
    assert code == 1009, (code, reason)
    assert got == [] and "4096" in reason


def test_client_stream_without_websocket_is_426(gw) -> None:  # type: ignore[no-untyped-def]
    status, body = http_request(gw.port, "POST", f"/{SVC}/Sum", {"value": 1})
    assert status == 426
    assert body["error"]["code"] == "websocket_required"


def test_server_stream_over_websocket(gw) -> None:  # type: ignore[no-untyped-def]
    got, code, _ = asyncio.run(
        ws_exchange(gw.port, COUNT, [{"id": "ws-srv", "count": 4}], end=False)
    )
    assert [g.get("n", 0) for g in got] == [0, 1, 2, 3]
    assert code == 1000


# ---- limits and shutdown -------------------------------------------------------------------


def test_stream_limit_answers_503(bg: BackgroundLoop, ticker: Peer) -> None:
    g = bg.start_gateway(config(ticker, "streaming: {max_streams: 1}"))
    first = StreamClient(g.port, COUNT, {"id": "lim-1", "count": 1000, "delayMs": 50})
    next(first.events())
    second = StreamClient(g.port, COUNT, {"id": "lim-2", "count": 1})
    assert second.status == 503
    second.close()
    first.close()


def test_metrics_count_streams(gw) -> None:  # type: ignore[no-untyped-def]
    c = StreamClient(gw.port, COUNT, {"id": "met-1", "count": 3})
    list(c.events())
    c.close()
    text = gw.metrics_text().decode()
    assert 'tribridge_streams_total{format="sse",kind="server",outcome="ok"}' in text
    assert "tribridge_streams_active" in text
    assert 'tribridge_stream_messages_total{direction="out"}' in text


def test_graceful_shutdown_ends_streams_cleanly(bg: BackgroundLoop, ticker: Peer) -> None:
    g = bg.start_gateway(config(ticker))
    c = StreamClient(g.port, COUNT, {"id": "shut-1", "count": 10000, "delayMs": 20})
    it = c.events()
    assert next(it)[0] == "message"
    stopper = threading.Thread(target=lambda: bg.run(g.stop(5.0)))
    stopper.start()
    rest = [e for e in it if e[0] != ":"]
    stopper.join(10)
    c.close()
    assert rest and rest[-1][0] == "error"
    assert rest[-1][1]["error"]["grpc_status"] == "UNAVAILABLE"
    assert "shutting down" in rest[-1][1]["error"]["message"]


def test_demo_prints_a_working_streaming_curl_line(
    bg: BackgroundLoop, grpcio_ticker: ReadyProcess
) -> None:
    """``tribridge demo``'s streaming line, run by curl against the demo's config."""
    provider = bg.start_provider(version="1.0.0")
    g = bg.start_gateway(demo_config(provider.port, 0, grpcio_ticker.port))
    lines = [ln for ln in demo_curl_lines(f"http://127.0.0.1:{g.port}") if "event-stream" in ln]
    assert len(lines) == 1
    argv = shlex.split(lines[0].replace('"delayMs": 500', '"delayMs": 10'))
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    data = [ln for ln in out.stdout.splitlines() if ln.startswith("data: ")]
    assert len(data) == 6 and data[-1] == "data: {}"  # five ticks, then the end event
    assert '"n":4' in data[4] and '"id":"demo"' in data[0]


def test_graceful_shutdown_closes_websockets_with_1001(bg: BackgroundLoop, ticker: Peer) -> None:
    g = bg.start_gateway(config(ticker))

    async def run() -> tuple[list, int | None]:
        url = f"http://127.0.0.1:{g.port}/{SVC}/Echo"
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            await ws.send_str('{"value": 1}')
            first = await asyncio.wait_for(ws.receive(), 5)
            stopper = asyncio.get_running_loop().run_in_executor(None, lambda: bg.run(g.stop(5.0)))
            closing = await asyncio.wait_for(ws.receive(), 5)
            await stopper
            return [first.data, closing.type], ws.close_code

    (data, kind), code = asyncio.run(run())
    assert data == '{"value":2}'
    assert kind == aiohttp.WSMsgType.CLOSE and code == 1001


def test_idle_websocket_gets_pings(gw) -> None:  # type: ignore[no-untyped-def]
    """keepalive 200ms: a WebSocket whose provider is silent gets Pings."""

    async def run() -> list[aiohttp.WSMsgType]:
        url = f"http://127.0.0.1:{gw.port}/{SVC}/Echo"
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(url, autoping=False) as ws,
        ):
            kinds = [(await asyncio.wait_for(ws.receive(), 3)).type for _ in range(2)]
            await ws.send_str('{"value": 21}')
            while (msg := await asyncio.wait_for(ws.receive(), 3)).type != aiohttp.WSMsgType.TEXT:
                pass
            assert msg.data == '{"value":42}'
            return kinds

    assert asyncio.run(run()) == [aiohttp.WSMsgType.PING] * 2
