"""The demo Dubbo2 provider, driven by a raw asyncio client built from our sans-IO codecs."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import sys
import time
from decimal import Decimal
from typing import Any

import pytest
from tribridge.codecs.dubbo import (
    Frame,
    FrameDecoder,
    RequestTemplate,
    Result,
    decode_response,
    encode_heartbeat,
    generic_args,
    generic_template,
    pack_frame,
)
from tribridge.codecs.hessian2 import Encoder, HessianObject, Long, TypedList
from tribridge.interop.demo_provider import (
    COLOR,
    DEMO_SIGNATURES,
    DEMO_TYPES,
    GENERIC_EXCEPTION,
    SERVICE,
    USER,
    DemoProvider,
)

pytestmark = pytest.mark.timeout(30)

T = 3.0  # upper bound for any single response


class Client:
    """One Dubbo2 connection: requests correlated by id, server-sent events queued."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.decoder = FrameDecoder()
        self.pending: dict[int, asyncio.Future[Frame]] = {}
        self.events: asyncio.Queue[Frame] = asyncio.Queue()
        self.arrivals: list[int] = []
        self.ids = itertools.count(1)
        self.eof = asyncio.Event()
        self.task = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def _read(self) -> None:
        try:
            while data := await self.reader.read(65536):
                for frame in self.decoder.feed(data):
                    if frame.is_request:  # READONLY / heartbeat from the provider
                        self.events.put_nowait(frame)
                        continue
                    self.arrivals.append(frame.request_id)
                    fut = self.pending.pop(frame.request_id, None)
                    if fut is not None and not fut.done():
                        fut.set_result(frame)
        finally:
            self.eof.set()

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    def expect(self, rid: int) -> asyncio.Future[Frame]:
        fut: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self.pending[rid] = fut
        return fut

    async def request(self, data: bytes, rid: int) -> Frame:
        fut = self.expect(rid)
        self.send(data)
        return await asyncio.wait_for(fut, T)

    async def call(
        self,
        method: str,
        args: list[Any],
        *,
        typed: bool = False,
        attachments: dict[str, Any] | None = None,
        version: str | None = "1.0.0",
        desc: str | None = None,
    ) -> Result:
        rid = next(self.ids)
        desc = DEMO_SIGNATURES[method] if desc is None else desc
        tpl = RequestTemplate(SERVICE, method, desc, version)
        frame = await self.request(tpl.frame(rid, args, attachments), rid)
        return decode_response(frame, typed=typed)

    async def generic(
        self,
        method: str,
        types: list[str] | None,
        args: list[Any],
        *,
        typed: bool = False,
        attachments: dict[str, Any] | None = None,
    ) -> Result:
        rid = next(self.ids)
        tpl = generic_template(SERVICE, "1.0.0")
        body = tpl.frame(rid, generic_args(method, types, args), attachments)
        return decode_response(await self.request(body, rid), typed=typed)

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def raw_body(
    dubbo_version: str, method: str, desc: str, args: list[Any], version: str = "1.0.0"
) -> bytes:
    """A request body with any dubbo version string (RequestTemplate always says 2.0.2)."""
    enc = Encoder()
    for s in (dubbo_version, SERVICE, version, method, desc):
        enc.write_string(s)
    for a in args:
        enc.write(a)
    enc.write({"path": SERVICE, "version": version})
    return enc.getvalue()


@pytest.fixture
async def provider():
    p = DemoProvider()
    await p.start()
    yield p
    await p.close(0.1)


@pytest.fixture
async def client(provider):
    c = await Client.connect(provider.port)
    yield c
    await c.close()


def user_fields(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": Long(0),
        "name": None,
        "age": 0,
        "email": None,
        "tags": None,
        "color": None,
    }
    base.update(kw)
    return base


# ---- direct calls --------------------------------------------------------------------------


def test_exports():
    assert DEMO_SIGNATURES["add"] == "II"
    assert DEMO_SIGNATURES["addLong"] == "JJ"
    assert DEMO_SIGNATURES["echoUser"] == "Lcom/tribridge/demo/User;"
    assert DEMO_SIGNATURES["echoBytes"] == "[B"
    assert DEMO_SIGNATURES["noop"] == ""
    assert DEMO_TYPES[USER]["fields"]["id"] == "long"
    assert DEMO_TYPES[COLOR] == {"enum": ["RED", "GREEN", "BLUE"]}


async def test_greet(provider, client):
    res = await client.call("greet", ["world"], attachments={"trace": "t-1"})
    assert res.ok and res.value == "Hello, world"
    assert res.flag == 4 and res.attachments == {"dubbo": "2.0.2"}
    assert provider.calls == 1 and provider.connections == 1
    assert provider.last_attachments["greet"]["trace"] == "t-1"
    assert (await client.call("greet", [None])).value == "Hello, null"


async def test_add_is_int_and_wraps_like_java(client):
    res = await client.call("add", [2, 40], typed=True)
    assert res.value == 42 and type(res.value) is int  # int tag, not Long
    assert (await client.call("add", [2**31 - 1, 1])).value == -(2**31)


async def test_add_long_returns_long(client):
    res = await client.call("addLong", [Long(1), Long(2)], typed=True)
    assert isinstance(res.value, Long) and res.value == 3
    res = await client.call("addLong", [Long(2**53 + 1), Long(1)], typed=True)
    assert isinstance(res.value, Long) and res.value == 2**53 + 2


async def test_null_primitive_is_npe(client):
    res = await client.call("add", [None, 1])
    assert res.status == 20 and res.exception is not None
    assert res.exception.cls == "java.lang.NullPointerException"


async def test_get_user_direct_is_pojo(client):
    res = await client.call("getUser", [Long(7)], typed=True)
    user = res.value
    assert isinstance(user, HessianObject) and user.cls == USER
    assert user.fields == {
        "id": Long(7),
        "name": "user7",
        "age": 27,
        "email": "user7@example.com",
        "tags": ["demo", "id7"],
        "color": HessianObject(COLOR, {"name": "GREEN"}),
    }
    assert isinstance(user.fields["id"], Long)


async def test_get_user_generic_is_map_with_class(client):
    for types in (["long"], None):
        res = await client.generic("getUser", types, [7], typed=True)
        assert res.ok, res
        assert type(res.value) is dict  # an untyped H map, not an object
        assert res.value["class"] == USER
        assert res.value["id"] == 7 and isinstance(res.value["id"], Long)
        assert res.value["color"] == "GREEN" and res.value["tags"] == ["demo", "id7"]


async def test_echo_user_object_or_map(client):
    sent = HessianObject(USER, {"id": Long(1), "name": "Ada", "age": 36, "extra": "dropped"})
    as_map = {"id": 1, "name": "Ada", "age": 36}
    for arg in (sent, as_map):
        res = await client.call("echoUser", [arg], typed=True)
        assert isinstance(res.value, HessianObject) and res.value.cls == USER
        assert res.value.fields == user_fields(id=Long(1), name="Ada", age=36)
    res = await client.call(
        "echoUser", [{"id": 2, "color": HessianObject(COLOR, {"name": "BLUE"})}], typed=True
    )
    assert res.value.fields["color"] == HessianObject(COLOR, {"name": "BLUE"})


async def test_echo_user_generic(client):
    arg = {"class": USER, "id": 3, "name": "Bo", "color": "BLUE", "tags": ["x"]}
    res = await client.generic("echoUser", [USER], [arg], typed=True)
    assert res.value == {"class": USER, **user_fields(id=3, name="Bo", color="BLUE", tags=["x"])}


async def test_list_users(client):
    res = await client.call("listUsers", [3], typed=True)
    assert [u.fields["id"] for u in res.value] == [1, 2, 3]
    assert [u.fields["color"].fields["name"] for u in res.value] == ["GREEN", "BLUE", "RED"]
    res = await client.generic("listUsers", ["int"], [2])
    assert [u["class"] for u in res.value] == [USER, USER]
    res = await client.call("listUsers", [-1])
    assert res.exception.cls == "java.lang.IllegalArgumentException"


async def test_fail_is_java_exception(client):
    res = await client.call("fail", ["boom"], typed=True)
    assert res.status == 20 and res.flag == 3 and not res.ok
    assert res.exception.cls == "java.lang.IllegalStateException"
    assert res.exception.message == "boom"
    raw = res.exception.raw
    assert raw.fields["cause"] is raw  # cause == this
    assert raw.fields["stackTrace"] == TypedList("[java.lang.StackTraceElement", [])


async def test_fail_generic_is_generic_exception(client):
    res = await client.generic("fail", ["java.lang.String"], ["boom"])
    assert res.status == 20 and res.flag == 3
    assert res.exception.cls == "java.lang.IllegalStateException"
    assert res.exception.message == "boom"
    raw = res.exception.raw
    assert raw["class"] == GENERIC_EXCEPTION
    assert raw["exceptionClass"] == "java.lang.IllegalStateException"
    assert raw["detailMessage"].startswith("java.lang.IllegalStateException: boom\n")


async def test_echo_bytes(client):
    data = bytes(range(256)) * 3
    assert (await client.call("echoBytes", [data])).value == data
    assert (await client.generic("echoBytes", ["byte[]"], [data])).value == data


async def test_enums(client):
    green = HessianObject(COLOR, {"name": "GREEN"})
    assert (await client.call("colorOf", [green])).value == "GREEN"
    assert (await client.call("colorOf", [{"name": "BLUE"}])).value == "BLUE"
    res = await client.call("nextColor", [green], typed=True)
    assert res.value == HessianObject(COLOR, {"name": "BLUE"})
    assert (await client.generic("nextColor", [COLOR], ["BLUE"])).value == "RED"
    assert (await client.generic("colorOf", None, [{"name": "RED"}])).value == "RED"
    # direct: Java cannot read the argument, leaves it null, the method then NPEs
    res = await client.call("colorOf", [HessianObject(COLOR, {"name": "PURPLE"})])
    assert res.exception.cls == "java.lang.NullPointerException"
    # generic: PojoUtils.realize throws inside GenericFilter -> status 70
    res = await client.generic("colorOf", [COLOR], ["PURPLE"])
    assert res.status == 70 and "No enum constant com.tribridge.demo.Color.PURPLE" in res.error


async def test_values_round_trip(client):
    assert (await client.call("sum", [[1, Long(2), 3.9]], typed=True)).value == Long(6)
    res = await client.call("echoMap", [{"a": 1, "b": Long(2)}], typed=True)
    assert res.value == {"a": 1, "b": 2} and isinstance(res.value["b"], Long)
    when = dt.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=dt.UTC)
    assert (await client.call("echoDate", [when])).value == when
    assert (await client.call("echoDecimal", [Decimal("1.50")])).value == Decimal("1.50")
    res = await client.call("echoObject", [Long(5)], typed=True)
    assert res.value == 5 and isinstance(res.value, Long)
    # an unknown class is read by Java as a HashMap
    res = await client.call("echoObject", [HessianObject("com.unknown.X", {"a": 1})], typed=True)
    assert type(res.value) is dict and res.value == {"a": 1}
    res = await client.call("$echo", ["ping"], desc="Ljava/lang/Object;")
    assert res.value == "ping"


async def test_generic_realize_and_generalize(client):
    assert (await client.generic("add", ["int", "int"], ["40", 2.9])).value == 42
    res = await client.generic("echoDate", ["java.util.Date"], ["2024-01-02 03:04:05"])
    assert res.value == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert (await client.generic("echoDecimal", None, ["1.5"])).value == Decimal("1.5")
    res = await client.generic("echoObject", None, [{"class": USER, "id": 3}], typed=True)
    assert res.value == {"class": USER, **user_fields(id=3)}
    res = await client.generic("greet", None, [5])  # invoke fails: ClassCastException
    assert res.exception.cls == "java.lang.ClassCastException"
    assert res.exception.raw["class"] == GENERIC_EXCEPTION
    res = await client.generic("add", ["int", "int"], ["abc", 1])
    assert res.status == 70 and "java.lang.NumberFormatException" in res.error


async def test_noop_is_null_flag(client):
    res = await client.call("noop", [])
    assert res.ok and res.flag == 5 and res.value is None
    res = await client.generic("noop", [], [])
    assert res.ok and res.flag == 5


async def test_old_dubbo_version_gets_no_response_attachments(client):
    for method, args, flag in (("greet", ["x"], 1), ("noop", [], 2), ("fail", ["x"], 0)):
        body = raw_body("2.5.3", method, DEMO_SIGNATURES[method], args)
        res = decode_response(await client.request(pack_frame(0xC2, 0, 900, body), 900))
        assert res.status == 20 and res.flag == flag and res.attachments == {}


# ---- errors --------------------------------------------------------------------------------


async def test_wrong_version_is_40(client):
    res = await client.call("greet", ["x"], version="9.9.9")
    assert res.status == 40
    assert res.error.startswith("Fail to decode request due to: java.io.IOException: ")
    assert f"Service {SERVICE}:9.9.9 not found, invocation rejected." in res.error
    res = await client.call("greet", ["x"], version=None)  # "0.0.0"
    assert res.status == 40 and f"Service {SERVICE} not found" in res.error


async def test_wrong_group_is_70(provider, client):
    res = await client.call("greet", ["x"], attachments={"group": "other"})
    assert res.status == 70
    assert res.error.startswith("org.apache.dubbo.remoting.RemotingException: ")
    assert f"Not found exported service: other/{SERVICE}:1.0.0:{provider.port}" in res.error


async def test_group_provider():
    async with DemoProvider(group="g1", version="") as p:
        c = await Client.connect(p.port)
        try:
            assert (await c.call("greet", ["x"], version=None)).status == 70
            res = await c.call("greet", ["x"], version=None, attachments={"group": "g1"})
            assert res.ok and res.value == "Hello, x"
        finally:
            await c.close()


async def test_unknown_method_or_descriptor_is_40(client):
    res = await client.call("nope", [1], desc="I")
    assert res.status == 40 and f"Service not found:{SERVICE}, nope" in res.error
    res = await client.call("add", [Long(1), Long(2)], desc="JJ")
    assert res.status == 40 and f"Service not found:{SERVICE}, add" in res.error


async def test_generic_lookup_failures_are_70(client):
    res = await client.generic("add", ["long", "long"], [1, 2])
    assert res.status == 70
    assert res.error.startswith("org.apache.dubbo.rpc.RpcException: No such method add in class")
    res = await client.generic("nope", None, [])
    assert res.status == 70 and "No such method nope" in res.error
    res = await client.generic("echoUser", ["com.nowhere.User"], [{}])
    assert res.status == 70 and "com.nowhere.User" in res.error
    res = await client.generic("add", None, [1])
    assert res.status == 70 and "args.length != types.length" in res.error


async def test_garbage_body_is_40_and_connection_survives(client):
    frame = await client.request(pack_frame(0xC2, 0, 500, b"\x05hello\xff\xfe"), 500)
    res = decode_response(frame)
    assert res.status == 40 and res.error.startswith("Fail to decode request due to: ")
    assert (await client.call("greet", ["again"])).value == "Hello, again"


async def test_foreign_serialization_is_40(client):
    body = raw_body("2.0.2", "greet", "Ljava/lang/String;", ["x"])
    res = decode_response(await client.request(pack_frame(0xC0 | 3, 0, 501, body), 501))
    assert res.status == 40 and "Unexpected serialization id:3" in res.error


async def test_heartbeat_answered(client):
    frame = await client.request(encode_heartbeat(77), 77)
    assert (frame.flag, frame.status, frame.body) == (0x22, 20, b"N")


async def test_one_way_not_answered(provider, client):
    tpl = RequestTemplate(SERVICE, "greet", DEMO_SIGNATURES["greet"], "1.0.0")
    client.send(tpl.frame(600, ["quiet"], twoway=False))
    client.send(pack_frame(0x82, 0, 601, b"garbage"))  # one-way and broken: still silent
    assert (await client.call("greet", ["loud"])).value == "Hello, loud"
    assert 600 not in client.arrivals and 601 not in client.arrivals
    assert provider.last_args["greet"] == ["loud"] and provider.calls == 2


async def test_slow_call_does_not_block_others(client):
    slow_tpl = RequestTemplate(SERVICE, "slow", "I", "1.0.0")
    slow = client.expect(700)
    client.send(slow_tpl.frame(700, [400]))
    t0 = time.monotonic()
    res = await client.call("greet", ["fast"])
    assert res.value == "Hello, fast" and time.monotonic() - t0 < 0.3
    assert decode_response(await asyncio.wait_for(slow, T)).value == "done"
    assert client.arrivals[-2:] == [res.request_id, 700]  # out of request order


# ---- shutdown ------------------------------------------------------------------------------


async def test_close_sends_readonly_and_waits_for_in_flight():
    p = await DemoProvider().start()
    c = await Client.connect(p.port)
    try:
        assert (await c.call("greet", ["x"])).ok
        slow = c.expect(800)
        c.send(RequestTemplate(SERVICE, "slow", "I", "1.0.0").frame(800, [300]))
        await asyncio.sleep(0.05)
        await p.close(grace=2.0)
        event = await asyncio.wait_for(c.events.get(), T)
        assert event.is_event and not event.is_twoway and event.flag == 0xA2
        assert decode_response(event).value == "R"
        assert decode_response(await asyncio.wait_for(slow, T)).value == "done"
        await asyncio.wait_for(c.eof.wait(), T)
        assert p.connections == 0
    finally:
        await c.close()


async def test_standalone_main():
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tribridge.interop.demo_provider",
        "--port",
        "0",
        "--version",
        "2.0.0",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        word, port = line.decode().split()
        assert word == "READY"
        c = await Client.connect(int(port))
        try:
            assert (await c.call("greet", ["cli"], version="2.0.0")).value == "Hello, cli"
        finally:
            await c.close()
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 10) == 0


def test_runs_on_uvloop():
    """The gateway runs on uvloop, whose transports are not asyncio.Transport subclasses."""
    import uvloop  # a runtime dependency: its absence is a failure, not a skip

    async def go() -> None:
        async with DemoProvider() as p:
            c = await Client.connect(p.port)
            try:
                assert (await c.call("greet", ["uv"])).value == "Hello, uv"
                res = await c.call("getUser", [Long(1)], typed=True)
                assert res.value.cls == USER
            finally:
                await c.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(go())
