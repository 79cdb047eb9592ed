"""Provider-side proof for class-policy tests: what did the provider actually receive?

``CaptureProxy`` is a TCP relay put between a gateway and *any* Dubbo2 provider — the Python
demo provider here, a real Java Dubbo 2.7 provider (which has no class checks of its own) in
the Java matrix — recording every byte the gateway sends toward it. A test points the
gateway's registry at the proxy instead of the provider, throws hostile bodies at a door,
and asserts with ``assert_clean`` that the provider's byte stream never names a class the
policy refuses. Counting on the provider (``requests``) is not enough on its own: a door
could forward a rewritten body that still carries the class, and only the bytes tell.

To keep "nothing was forwarded" free of timing guesses, ``refused_and_not_forwarded``
follows each hostile frame with a benign sentinel call on the same consumer connection:
the gateway forwards in order on one multiplexed provider connection, so once the
sentinel's reply is back, anything the hostile frame caused has reached the proxy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from tribridge.codecs.dubbo import FrameDecoder, decode_request_body, decode_response
from tribridge.codecs.dubbo.frame import BAD_REQUEST, OK
from tribridge.security.policy import ClassPolicy

from tests.helpers.dubbo_raw import RawDubbo


class CaptureProxy:
    """Forwards both ways unchanged; ``received`` is every byte sent toward the provider."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.received = bytearray()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> CaptureProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.close()

    async def _serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            ur, uw = await asyncio.open_connection(*self.upstream)
        except OSError:
            w.close()
            return
        self._writers |= {w, uw}
        await asyncio.gather(self._pump(r, uw, True), self._pump(ur, w, False))

    async def _pump(self, r: asyncio.StreamReader, w: asyncio.StreamWriter, record: bool) -> None:
        try:
            while data := await r.read(65536):
                if record:
                    self.received += data
                w.write(data)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()
            self._writers.discard(w)

    def mark(self) -> int:
        return len(self.received)

    def since(self, mark: int) -> bytes:
        return bytes(self.received[mark:])

    def invocations(self, data: bytes | None = None) -> list[Any]:
        """The request bodies in ``data`` (default: everything), decoded (heartbeats and
        events left out). Only valid from a frame boundary (a ``mark`` taken between calls)."""
        frames = FrameDecoder(1 << 30).feed(bytes(self.received if data is None else data))
        return [decode_request_body(f.body) for f in frames if f.is_request and not f.is_event]


def spellings(cls: str) -> tuple[bytes, ...]:
    """How a class name can appear in a hessian / Dubbo2 body: dotted (class definitions,
    types, ``"class"`` keys, ``$invoke`` type names) and slashed (descriptors)."""
    return cls.encode(), cls.replace(".", "/").encode()


def assert_clean(data: bytes, denied: Iterable[str], policy: ClassPolicy | None = None) -> None:
    """No denied class name anywhere in the provider's bytes, and every request they hold
    passes the deny rules of ``policy`` (default: the built-in deny list)."""
    for cls in denied:
        for sp in spellings(cls):
            assert sp not in data, f"the provider received {sp!r}"
    pol = policy or ClassPolicy()
    frames = FrameDecoder(1 << 30).feed(data)
    for f in frames:
        if f.is_request and not f.is_event:
            pol.judge_invocation(decode_request_body(f.body), None)


def refused_and_not_forwarded(
    port: int,
    frame: bytes,
    capture: CaptureProxy,
    rule: str,
    denied: Iterable[str] = (),
    sentinel: bytes | None = None,
    tls: Any = None,
) -> str:
    """Send ``frame`` to a Dubbo2 door; assert the consumer gets status 40 naming ``rule``
    and the provider receives nothing but the sentinel (and no ``denied`` name). Returns
    the error text."""
    mark = capture.mark()
    raw = RawDubbo("127.0.0.1", port, tls=tls)
    try:
        raw.send(frame)
        fr = raw.recv(5)
        res = decode_response(fr)
        assert fr.status == BAD_REQUEST, (fr.status, res)
        assert f"(rule {rule})" in (res.error or ""), res.error
        assert "not forwarded" in res.error or rule == "too_deep", res.error
        if sentinel is not None:
            raw.send(sentinel)
            ok = raw.recv(5)
            assert ok.status == OK, decode_response(ok)
    finally:
        raw.close()
    got = capture.since(mark)
    if sentinel is not None:
        invs = capture.invocations(got)
        assert [i.method for i in invs] == [decode_request_body(sentinel[16:]).method], invs
    else:
        assert got == b"", "the refused request reached the provider"
    assert_clean(got, denied)
    return res.error or ""
