"""Clients for the streaming tests: SSE / NDJSON over a plain socket (so a test controls
reading and closing), and WebSocket through aiohttp's client (an independent implementation
of RFC 6455)."""

from __future__ import annotations

import asyncio
import http.client
import socket
from collections.abc import Iterator
from typing import Any

import aiohttp
import orjson


class StreamClient:
    """One streamed HTTP response read line by line (chunked decoding by http.client)."""

    def __init__(
        self,
        port: int,
        path: str,
        body: Any,
        accept: str = "text/event-stream",
        headers: dict[str, str] | None = None,
        rcvbuf: int | None = None,
        timeout: float = 15.0,
    ) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        if rcvbuf is not None:
            s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.conn.sock = s
        h = {"accept": accept, **(headers or {})}
        self.conn.request("POST", path, body=orjson.dumps(body), headers=h)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.content_type = self.resp.getheader("content-type", "")

    def lines(self) -> Iterator[bytes]:
        while True:
            line = self.resp.readline()
            if not line:
                return
            yield line.rstrip(b"\n")

    def events(self) -> Iterator[tuple[str, Any]]:
        """SSE events as (event name, parsed data); comments as (":", text)."""
        name, data = "message", b""
        for line in self.lines():
            if line.startswith(b":"):
                yield ":", line[1:].strip().decode()
            elif line.startswith(b"event: "):
                name = line[7:].decode()
            elif line.startswith(b"data: "):
                data = line[6:]
            elif line == b"":
                if data:
                    yield name, orjson.loads(data)
                name, data = "message", b""

    def ndjson(self) -> Iterator[Any]:
        for line in self.lines():
            if line:
                yield orjson.loads(line)

    def close(self) -> None:
        self.conn.close()


async def ws_exchange(
    port: int,
    path: str,
    send: list[Any],
    end: bool = True,
    raw: list[str] | None = None,
    timeout: float = 15.0,
) -> tuple[list[Any], int | None, str]:
    """Open a WebSocket, send ``send`` (JSON each) then, with ``end``, the empty message
    that ends our side; -> (received JSON messages, close code, close reason)."""
    got: list[Any] = []
    async with aiohttp.ClientSession() as session:
        wst = aiohttp.ClientWSTimeout(ws_receive=timeout, ws_close=timeout)
        async with session.ws_connect(f"http://127.0.0.1:{port}{path}", timeout=wst) as ws:
            for item in send:
                await ws.send_str(orjson.dumps(item).decode())
            for text in raw or []:
                await ws.send_str(text)
            if end:
                await ws.send_str("")
            reason = ""
            async with asyncio.timeout(timeout):
                while True:
                    msg = await ws.receive()
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        got.append(orjson.loads(msg.data))
                        continue
                    if msg.type == aiohttp.WSMsgType.CLOSE:
                        reason = msg.extra or ""
                    break
            return got, ws.close_code, reason
