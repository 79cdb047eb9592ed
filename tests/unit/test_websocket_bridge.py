"""``streaming.websocket.bridge`` without sockets: the client's bad message must close the
WebSocket even when the provider's reply is read in the same loop pass."""

from __future__ import annotations

import asyncio
from typing import Any

from tribridge.streaming.codecs import MessageCodec
from tribridge.streaming.pumps import StreamState
from tribridge.streaming.websocket import bridge
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, TextMessage


class Sink:
    """What ``bridge`` reads and writes of the listener's stream sink."""

    def __init__(self) -> None:
        self.closing: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.out = bytearray()
        self.on_data: Any = None

    def listen(self, on_data: Any, on_eof: Any) -> None:
        self.on_data = on_data

    def write(self, data: bytes) -> None:
        self.out += data

    async def drain(self) -> None:
        return None

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


class EchoAtOnce:
    """A bidi provider whose reply to the first message is ready at once, and who then
    waits for more (as an echo service does): it never ends the stream itself."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.replies: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def write(self, data: bytes) -> None:
        self.sent.append(data)
        self.replies.put_nowait(data)

    async def read(self) -> bytes | None:
        return await self.replies.get()

    async def done_writing(self) -> None: ...

    def cancel(self) -> None: ...


class Identity(MessageCodec):  # type: ignore[misc]
    def element(self, value: Any) -> bytes:
        return repr(value).encode()

    def reply(self, msg: bytes) -> bytes:
        return b'"' + msg + b'"'


async def test_a_bad_message_closes_1007_even_when_a_reply_arrives_in_the_same_pass() -> None:
    sink, up, st = Sink(), EchoAtOnce(), StreamState("bidi", "websocket")
    produce = bridge(lambda _first: up, Identity(), st, max_message=4096)
    task = asyncio.ensure_future(produce(sink))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    client = Connection(ConnectionType.CLIENT)
    # a good message and a bad one in one read: the writer sends the first (its reply is
    # ready at once) and fails on the second in the same pass
    sink.on_data(client.send(TextMessage('{"value": 1}')) + client.send(TextMessage("{not json")))
    await asyncio.wait_for(task, 2)
    client.receive_data(bytes(sink.out))
    events = list(client.events())
    closes = [e for e in events if isinstance(e, CloseConnection)]
    assert len(closes) == 1 and closes[0].code == 1007, events
    assert "not JSON" in closes[0].reason and st.grpc_code == 3
