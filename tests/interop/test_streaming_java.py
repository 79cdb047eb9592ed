"""Triple streaming in Java-interface mode against Apache Dubbo 3.3 (provider ``33t``):
``com.tribridge.compat.StreamService`` (interop/java/dubbo33) with StreamObserver methods.
Server streams as SSE / NDJSON (String and POJO elements), an onError mid-stream, a client
disconnect the provider observes as a cancel, bidi and client streams over WebSocket."""

from __future__ import annotations

import asyncio
import http.client
import time

import orjson
import pytest
import yaml
from tribridge.interop.java_peers import JavaPeers
from tribridge.interop.testing import BackgroundLoop, http_request

from tests.conftest import tb
from tests.helpers.streams import StreamClient, ws_exchange

pytestmark = pytest.mark.interop

SVC = "com.tribridge.compat.StreamService"


@pytest.fixture(scope="module")
def gw(java_peers: JavaPeers, bg: BackgroundLoop):  # type: ignore[no-untyped-def]
    tri = java_peers.providers["33t"].ports["tri"]
    doc = {
        "listen": {"host": "127.0.0.1", "port": 0},
        "access_log": False,
        "registries": {
            "static": {
                "type": "static",
                "services": {SVC: [f"tri://{java_peers.ns_ip}:{tri}/{SVC}?version=1.0.0"]},
            }
        },
        "services": [
            {
                "interface": SVC,
                "registry": "static",
                "version": "1.0.0",
                "protocol": "tri",
                "methods": {
                    "count": {"stream": "server", "types": ["java.lang.String"]},
                    "boxes": {"stream": "server", "types": ["java.lang.String"]},
                    "echo": {"stream": "bidi", "types": ["java.lang.String"]},
                    "sum": {"stream": "client", "types": ["java.lang.Integer"]},
                    "inspect": {"types": ["java.lang.String"]},
                },
            }
        ],
        "routes": [
            {
                "method": "GET",
                "path": "/ticks/{id}",
                "service": SVC,
                "call": "count",
                "params": [{"from": "path", "name": "id", "type": "java.lang.String"}],
            }
        ],
        "auto_routes": {"prefix": "/", "expose": ["com.tribridge.compat.*"]},
    }
    return bg.start_gateway(yaml.safe_dump(doc))


@pytest.fixture(scope="module")
def port(gw) -> int:  # type: ignore[no-untyped-def]
    return int(gw.port)


def inspect(port: int, sid: str) -> dict[str, str]:
    status, body = http_request(port, "POST", f"/{SVC}/inspect", [sid])
    assert status == 200, body
    return dict(kv.split("=") for kv in body.split())


def test_server_stream_as_sse(port: int) -> None:
    c = StreamClient(port, f"/{SVC}/count", ["s1 6 0 -1"])
    assert c.status == 200, c.resp.read()
    assert c.content_type == "text/event-stream"
    events = [e for e in c.events() if e[0] != ":"]
    c.close()
    assert events == [("message", f"s1:{n}") for n in range(6)] + [("end", {})]
    assert inspect(port, "s1") == {"sent": "6", "cancelled": "false", "finished": "true"}


def test_explicit_route_streams(port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    conn.request("GET", "/ticks/r1%202%200%20-1", headers={"accept": "text/event-stream"})
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("content-type") == "text/event-stream"
    assert r.read() == b'data: "r1:0"\n\ndata: "r1:1"\n\nevent: end\ndata: {}\n\n'
    conn.close()


def test_server_stream_of_pojos_as_ndjson(port: int) -> None:
    c = StreamClient(port, f"/{SVC}/boxes", ["b 3"], accept="application/x-ndjson")
    rows = list(c.ndjson())
    c.close()
    assert [(r["label"], r["value"]) for r in rows] == [("b:0", 0), ("b:1", 1), ("b:2", 2)]
    assert all(r.get("class") == "com.tribridge.compat.Box" for r in rows)


def test_on_error_mid_stream_is_an_error_event(port: int) -> None:
    c = StreamClient(port, f"/{SVC}/count", ["e1 10 0 3"])
    events = [e for e in c.events() if e[0] != ":"]
    c.close()
    assert [e[1] for e in events[:3]] == ["e1:0", "e1:1", "e1:2"]
    assert events[3][0] == "error" and len(events) == 4
    err = events[3][1]["error"]
    assert err["grpc_status"] == "UNKNOWN" and "failed at 3" in err["grpc_message"]


def test_client_disconnect_reaches_the_java_provider(port: int) -> None:
    c = StreamClient(port, f"/{SVC}/count", ["c1 100000 20 -1"])
    it = c.events()
    assert [next(it)[1] for _ in range(3)] == ["c1:0", "c1:1", "c1:2"]
    c.close()
    deadline = time.monotonic() + 15
    seen = inspect(port, "c1")
    while seen["cancelled"] != "true" and time.monotonic() < deadline:
        time.sleep(0.1)
        seen = inspect(port, "c1")
    assert seen["cancelled"] == "true", seen
    assert seen["finished"] == "false" and int(seen["sent"]) < 100000


def test_undeclared_method_streams_when_the_client_asks(port: int) -> None:
    """No ``stream:`` for the method: ``Accept: application/x-ndjson`` makes the auto route a
    server stream, the argument type from ``x-tribridge-types``."""
    hdr = {"x-tribridge-types": "java.lang.String"}
    c = StreamClient(
        port, f"/{SVC}/count", ["auto 3 0 -1"], accept="application/x-ndjson", headers=hdr
    )
    assert c.status == 200
    rows = list(c.ndjson())
    c.close()
    assert rows == ["auto:0", "auto:1", "auto:2"]


def test_a_type_hint_may_not_name_an_undeclared_class(port: int) -> None:
    """A method without configured types takes its types from the hint, which the class
    policy judges before anything is sent (configured types would win over the hint)."""
    hdr = {"x-tribridge-types": "com.evil.Gadget"}
    c = StreamClient(port, f"/{SVC}/watch", [{}], accept="application/x-ndjson", headers=hdr)
    body = c.resp.read()
    c.close()
    assert c.status == 400 and b"class_not_allowed" in body and b"com.evil.Gadget" in body


def test_streams_are_counted_per_route(gw, port: int) -> None:  # type: ignore[no-untyped-def]
    c = StreamClient(port, f"/{SVC}/count", ["m1 2 0 -1"])
    list(c.events())
    c.close()
    c = StreamClient(port, f"/{SVC}/count", ["m2 5 0 2"])
    list(c.events())
    c.close()
    text = gw.metrics_text().decode()
    row = 'tribridge_requests_total{method="count",route="auto",service="%s",status="%s"}'
    assert row % (SVC, 200) in text
    assert row % (SVC, 500) in text  # onError: UNKNOWN -> 500
    assert 'tribridge_streams_total{format="sse",kind="server",outcome="error"}' in text


def test_bidi_stream_over_websocket(port: int) -> None:
    got, code, _ = asyncio.run(ws_exchange(port, f"/{SVC}/echo", ["a", "b", "c"]))
    assert got == ["echo:a", "echo:b", "echo:c"]
    assert code == 1000


def test_client_stream_over_websocket(port: int) -> None:
    got, code, _ = asyncio.run(ws_exchange(port, f"/{SVC}/sum", list(range(1, 11))))
    assert got == [55]
    assert code == 1000


# ---- tribridge call --stream: straight to the provider, NDJSON out -----------------------------


def _target(peers: JavaPeers) -> str:
    return f"tri://{peers.ns_ip}:{peers.providers['33t'].ports['tri']}"


def test_cli_prints_a_server_stream_as_ndjson(java_peers: JavaPeers) -> None:
    r = tb(
        "call", _target(java_peers), f"{SVC}.count", '["cli 4 0 -1"]',
        "--types", "java.lang.String", "--version", "1.0.0", "--stream", "server",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert [orjson.loads(x) for x in r.stdout.splitlines()] == [f"cli:{n}" for n in range(4)]


def test_cli_bidi_stream_reads_ndjson_from_stdin(java_peers: JavaPeers) -> None:
    r = tb(
        "call", _target(java_peers), f"{SVC}.echo", "--types", "java.lang.String",
        "--version", "1.0.0", "--stream", "bidi", stdin='"x"\n"y"\n',
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ['"echo:x"', '"echo:y"']


def test_cli_stream_error_is_a_json_error(java_peers: JavaPeers) -> None:
    r = tb(
        "call", _target(java_peers), f"{SVC}.count", '["clie 5 0 2"]',
        "--types", "java.lang.String", "--version", "1.0.0", "--stream", "server",
    )  # fmt: skip
    assert r.returncode == 1
    assert [orjson.loads(x) for x in r.stdout.splitlines()] == ["clie:0", "clie:1"]
    assert orjson.loads(r.stderr)["error"]["grpc_status"] == "UNKNOWN"
