"""The Eureka emulator, proven with the official clients: py-eureka-client (Python, XML) and
eureka-js-client (Node, JSON), both unmodified."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from py_eureka_client import eureka_basic
from py_eureka_client.eureka_client import EurekaClient
from tribridge.interop import peers
from tribridge.interop.eureka_emulator import EurekaEmulator
from tribridge.interop.testing import BackgroundLoop, http_request


def start_eureka_js() -> peers.LinePeer:
    node = peers._require_node_modules("eureka-js-client")
    peer = peers.LinePeer([node, "eureka_client.js"], cwd=peers.NODE_DIR, name="eureka-js-client")
    try:
        peer.ping(timeout=30)
    except BaseException:
        peer.close()
        raise
    return peer


@pytest.fixture(scope="module")
def js() -> Iterator[peers.LinePeer]:
    peer = start_eureka_js()
    try:
        yield peer
    finally:
        peer.close()


def wait_for(pred: Callable[[], Any], timeout: float = 8.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def js_ok(peer: peers.LinePeer, line: str, timeout: float = 10.0) -> Any:
    reply = peer.request(line, timeout=timeout)
    assert "ok" in reply, reply
    return reply["ok"]


def js_config(emu: EurekaEmulator, app: str, port: int, iid: str) -> dict[str, Any]:
    return {
        "shouldUseDelta": True,
        "instance": {
            "app": app,
            "instanceId": iid,
            "hostName": "127.0.0.1",
            "ipAddr": "127.0.0.1",
            "port": {"$": port, "@enabled": "true"},
            "vipAddress": app.lower(),
            "metadata": {"dubbo.port": str(port + 1), "dubbo.interfaces": "com.x.Js"},
            "dataCenterInfo": {
                "@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo",
                "name": "MyOwn",
            },
            "leaseInfo": {"renewalIntervalInSecs": 1, "durationInSecs": 2},
        },
        "eureka": {
            "host": "127.0.0.1",
            "port": emu.port,
            "servicePath": "/eureka/apps/",
            "heartbeatInterval": 300,
            "registryFetchInterval": 300,
            "maxRetries": 1,
            "requestRetryDelay": 100,
        },
    }


# ---- formats -----------------------------------------------------------------------------


def test_register_rejects_what_eureka_rejects(emu: EurekaEmulator) -> None:
    good = {
        "hostName": "h",
        "ipAddr": "127.0.0.1",
        "app": "BAD-APP",
        "dataCenterInfo": {"@class": "x", "name": "MyOwn"},
    }
    for missing in ("hostName", "ipAddr", "app", "dataCenterInfo"):
        body = {"instance": {k: v for k, v in good.items() if k != missing}}
        status, _ = http_request(
            emu.port, "POST", "/eureka/apps/BAD-APP", body, {"content-type": "application/json"}
        )
        assert status == 400, missing
    status, _ = http_request(
        emu.port,
        "POST",
        "/eureka/apps/OTHER",
        {"instance": good},
        {"content-type": "application/json"},
    )
    assert status == 400
    status, _ = http_request(
        emu.port,
        "POST",
        "/eureka/apps/BAD-APP",
        b"<instance><oops",
        {"content-type": "application/xml"},
    )
    assert status == 400
    assert emu.get("BAD-APP", "h") is None


def test_json_and_xml_shapes(bg: BackgroundLoop, emu: EurekaEmulator) -> None:
    body = (
        b"<instance><instanceId>x-1</instanceId><hostName>hx</hostName><app>SHAPE</app>"
        b'<ipAddr>127.0.0.9</ipAddr><status>UP</status><port enabled="true">8123</port>'
        b'<dataCenterInfo class="com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo">'
        b"<name>MyOwn</name></dataCenterInfo></instance>"
    )
    status, _ = http_request(
        emu.port, "POST", "/eureka/apps/shape", body, {"content-type": "application/xml"}
    )
    assert status == 204
    status, doc = http_request(
        emu.port, "GET", "/eureka/apps/SHAPE", None, {"accept": "application/json"}
    )
    assert status == 200
    inst = doc["application"]["instance"][0]
    assert inst["port"] == {"$": 8123, "@enabled": "true"}
    assert inst["metadata"] == {"@class": "java.util.Collections$EmptyMap"}
    assert inst["status"] == "UP" and inst["app"] == "SHAPE" and inst["instanceId"] == "x-1"
    # the official Python client parses the XML forms
    app = bg.run(eureka_basic.get_application(emu.url, "SHAPE"))
    (got,) = app.up_instances
    assert (got.instanceId, got.ipAddr, got.port.port, got.port.enabled) == (
        "x-1",
        "127.0.0.9",
        8123,
        True,
    )
    one = bg.run(eureka_basic.get_app_instance(emu.url, "SHAPE", "x-1"))
    assert one.hostName == "hx"
    status, _ = http_request(emu.port, "GET", "/eureka/apps/SHAPE/nope")
    assert status == 404
    assert http_request(emu.port, "DELETE", "/eureka/apps/SHAPE/x-1")[0] == 200
    assert http_request(emu.port, "DELETE", "/eureka/apps/SHAPE/x-1")[0] == 404


def test_renew_unknown_is_404_and_delta_reports_changes(
    bg: BackgroundLoop, emu: EurekaEmulator
) -> None:
    assert http_request(emu.port, "PUT", "/eureka/apps/NOAPP/none?status=UP")[0] == 404
    bg.run(_register(emu, "DELTA", "d-1", 7001))
    bg.run(_register(emu, "DELTA", "d-2", 7002))
    assert (
        http_request(emu.port, "PUT", "/eureka/apps/DELTA/d-1/status?value=OUT_OF_SERVICE")[0]
        == 200
    )
    delta = bg.run(eureka_basic.get_delta(emu.url))
    app = next(a for a in delta.applications if a.name == "DELTA")
    actions = {(i.instanceId, i.actionType, i.status) for i in app.instances}
    assert ("d-2", "ADDED", "UP") in actions
    assert ("d-1", "MODIFIED", "OUT_OF_SERVICE") in actions
    full = bg.run(eureka_basic.get_applications(emu.url))
    counts: dict[str, int] = {}
    for a in full.applications:
        for i in a.instances:
            counts[i.status] = counts.get(i.status, 0) + 1
    expected = "".join(f"{s}_{n}_" for s, n in sorted(counts.items()))
    assert delta.appsHashcode == full.appsHashcode == expected
    assert "OUT_OF_SERVICE_1_" in expected
    # an override survives heartbeats; deleting it without a value leaves UNKNOWN, and the
    # next renew answers 404 so the client re-registers (Eureka's behaviour)
    assert http_request(emu.port, "PUT", "/eureka/apps/DELTA/d-1?status=UP")[0] == 200
    assert emu.get("DELTA", "d-1").effective_status == "OUT_OF_SERVICE"
    assert http_request(emu.port, "DELETE", "/eureka/apps/DELTA/d-1/status")[0] == 200
    assert http_request(emu.port, "PUT", "/eureka/apps/DELTA/d-1?status=UP")[0] == 404
    for iid in ("d-1", "d-2"):
        bg.run(eureka_basic.cancel(emu.url, "DELTA", iid))
    delta = bg.run(eureka_basic.get_delta(emu.url))
    app = next(a for a in delta.applications if a.name == "DELTA")
    assert [i.actionType for i in app.instances][-2:] == ["DELETED", "DELETED"]


async def _register(emu: EurekaEmulator, app: str, iid: str, port: int, duration: int = 90) -> None:
    await eureka_basic.register(
        emu.url,
        eureka_basic.Instance(
            instanceId=iid,
            app=app,
            hostName="127.0.0.1",
            ipAddr="127.0.0.1",
            port=eureka_basic.PortWrapper(port, True),
            status="UP",
            leaseInfo=eureka_basic.LeaseInfo(durationInSecs=duration),
        ),
    )


def test_lease_expires_without_renewals(bg: BackgroundLoop, emu: EurekaEmulator) -> None:
    bg.run(_register(emu, "EXPIRY", "e-1", 7101, duration=1))
    assert emu.get("EXPIRY", "e-1") is not None
    wait_for(lambda: emu.get("EXPIRY", "e-1") is None, 5, "the lease to expire")
    status, _ = http_request(emu.port, "GET", "/eureka/apps/EXPIRY")
    assert status == 404


# ---- both official clients together ------------------------------------------------------


def test_py_and_js_clients_register_renew_fetch_and_see_each_other(
    bg: BackgroundLoop, emu: EurekaEmulator, js: peers.LinePeer
) -> None:
    py = EurekaClient(
        eureka_server=emu.url,
        app_name="py-app",
        instance_id="py-1",
        instance_host="127.0.0.1",
        instance_ip="127.0.0.1",
        instance_port=9001,
        renewal_interval_in_secs=1,
        duration_in_secs=2,
        metadata={"dubbo.port": "20991", "dubbo.interfaces": "com.x.Py"},
    )
    bg.run(py.start())
    try:
        assert js_ok(js, "start " + json.dumps(js_config(emu, "JS-APP", 9002, "js-1"))) == "started"
        assert emu.get("PY-APP", "py-1") is not None and emu.get("JS-APP", "js-1") is not None
        # py sees js (its delta merge or a full fetch); js sees py with its metadata
        wait_for(
            lambda: (
                [i.instanceId for i in py.applications.get_application("JS-APP").up_instances]
                == ["js-1"]
            ),
            8,
            "py-eureka-client to see js-1",
        )
        seen = wait_for(lambda: js_ok(js, "instances PY-APP"), 8, "eureka-js-client to see py-1")
        assert seen[0]["instanceId"] == "py-1" and seen[0]["metadata"]["dubbo.port"] == "20991"
        # both keep their 2 s leases alive with heartbeats
        time.sleep(3.0)
        assert emu.get("PY-APP", "py-1") is not None and emu.get("JS-APP", "js-1") is not None
        stats = js_ok(js, "stats")
        assert stats["heartbeats"] >= 3 and stats["deltas"] >= 1
        # OUT_OF_SERVICE on py reaches js through a delta (eureka-js-client replaces the
        # cached instance on MODIFIED without re-filtering, so it shows the new status)
        bg.run(py.status_update("OUT_OF_SERVICE"))
        wait_for(
            lambda: [i["status"] for i in js_ok(js, "instances PY-APP")] == ["OUT_OF_SERVICE"],
            8,
            "js to see py-1 OUT_OF_SERVICE",
        )
        bg.run(py.status_update("UP"))
        wait_for(
            lambda: [i["status"] for i in js_ok(js, "instances PY-APP")] == ["UP"],
            8,
            "js to see py-1 UP again",
        )
        # a restarted Eureka forgets everything: both clients re-register after a 404 renew
        bg.run(emu.restart(down_for=0.5))
        assert emu.all_instances() == []
        wait_for(
            lambda: emu.get("PY-APP", "py-1") and emu.get("JS-APP", "js-1"),
            10,
            "both clients to re-register",
        )
        assert js_ok(js, "stats")["registered"] >= 2
        # deregistration
        assert js_ok(js, "stop") == "stopped"
        assert emu.get("JS-APP", "js-1") is None
    finally:
        bg.run(py.stop())
        quiet(py)
    assert emu.get("PY-APP", "py-1") is None


def quiet(client: EurekaClient) -> None:
    """py-eureka-client's heartbeat thread outlives ``stop()`` (a ``while True`` inside a
    ``Timer``) and would re-register forever; switch its work off once the test is done."""
    client._EurekaClient__should_register = False  # type: ignore[attr-defined]
    client._EurekaClient__should_discover = False  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("module", "path"),
    [
        ("tribridge.interop.eureka_emulator", "/eureka/apps/"),
        ("tribridge.interop.k8s_emulator", "/api/v1/namespaces/default/services"),
    ],
)
def test_emulators_run_standalone(module: str, path: str) -> None:
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().split()
        assert line[:1] == ["READY"], line
        status, body = http_request(int(line[1]), "GET", path, None, {"accept": "application/json"})
        assert status == 200
        assert "applications" in body or body["kind"] == "ServiceList"
    finally:
        proc.terminate()
        proc.wait(5)
