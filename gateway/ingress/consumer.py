"""One Dubbo2 consumer connection to the ingress: frames in, replies out.

The connection's own concerns — framing, heartbeats and READONLY through the sans-IO
``codecs.dubbo.connection.Connection``, replies coalesced per loop iteration, back-pressure
both ways, the partial-frame budget — apart from what the listener does with a request
(``ingress.dubbo.DubboIngress.on_request``).  The connection names its listener through the
``Listener`` Protocol, what it needs of it, so the listener's module is the only one of the
two that imports the other.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

from tribridge.codecs.dubbo.connection import Connection, Heartbeat, ProtocolError, Request, Role
from tribridge.codecs.dubbo.frame import Frame
from tribridge.config.relay import IngressConfig

log = logging.getLogger("tribridge.dubbo_ingress")


class Listener(Protocol):
    """What a consumer connection needs of its listener (``ingress.dubbo.DubboIngress``):
    its settings and log label, admission (connection cap, allowed certificate names),
    release, the partial-frame budget shared by all its consumers, and the request handler."""

    cfg: IngressConfig
    label: str

    def accept(self, conn: Consumer, transport: asyncio.BaseTransport) -> bool: ...
    def release(self, conn: Consumer) -> None: ...
    def hold(self, delta: int) -> bool: ...
    def on_request(self, conn: Consumer, fr: Frame) -> None: ...


class Consumer(asyncio.Protocol):
    """One consumer connection: frames in, replies out (coalesced per loop iteration).

    Bounded both ways: a consumer that stops reading its replies (a heartbeat or request
    flood) is no longer read once the transport passes ``write_buffer_bytes``, and dropped
    past ``max_unread_reply_bytes``; a partial frame counts against the listener's
    ``max_buffered_frame_bytes`` and must complete within ``frame_timeout``."""

    def __init__(self, ingress: Listener) -> None:
        self.ingress = ingress
        #: framing, heartbeats, READONLY (sans-IO, codecs/dubbo/connection.py)
        self.wire = Connection(Role.SERVER, max_payload=ingress.cfg.max_payload)
        self.transport: Any = None
        self.in_flight = 0
        self.last_read = time.monotonic()
        self.peer = "?"
        self._out: list[bytes] = []
        self.held = 0  # partial-frame bytes counted in the listener's budget
        self.frame_since = 0.0  # monotonic time the open partial frame began (0: none)
        self.write_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.peer = f"{peer[0]}:{peer[1]}"
        if not self.ingress.accept(self, transport):
            transport.abort()  # nothing to say in Dubbo before a request; existing ones live on

    def connection_lost(self, exc: Exception | None) -> None:
        self.ingress.release(self)
        self._out = []
        if self.held:
            self.ingress.hold(-self.held)
            self.held = 0

    def pause_writing(self) -> None:
        # the consumer lags reading its replies: stop reading its requests until it catches up
        self.write_paused = True
        t = self.transport
        if t is not None and not t.is_closing():
            t.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        t = self.transport
        if t is not None and not t.is_closing():
            t.resume_reading()

    def data_received(self, data: bytes) -> None:
        self.last_read = now = time.monotonic()
        wire = self.wire
        events = wire.receive_data(data)
        if events and type(last := events[-1]) is ProtocolError:
            # Java hands non-dubbo bytes to telnet; a gateway hangs up on them.
            ing = self.ingress
            log.info("%s: closing consumer connection %s: %s", ing.label, self.peer, last.message)
            self.close()
            return
        # a partial frame is timed from its own first byte: a consumer whose reads all end
        # inside a frame while its frames keep completing is not cut, and one trickling a
        # stuck frame (or an oversized body being skipped) is, frame_timeout after it began
        if wire.frame_began:
            self.frame_since = now
        elif not wire.mid_frame:
            self.frame_since = 0.0
        buffered = wire.buffered
        if buffered != self.held and self._hold(buffered):
            return
        on_request = self.ingress.on_request
        for ev in events:
            if type(ev) is Request:
                on_request(self, ev.frame)
            elif type(ev) is Heartbeat and ev.reply is not None:
                self.send(ev.reply)
            # else: heartbeat answers and other events from a consumer need nothing

    def _hold(self, buffered: int) -> bool:
        """Account a partial frame in the listener's budget; True: over it, closed."""
        ing = self.ingress
        over = ing.hold(buffered - self.held)
        self.held = buffered
        if not over:
            return False
        log.warning(
            "%s: closing %s: partial frames of all consumers exceed %d bytes",
            ing.label,
            self.peer,
            ing.cfg.max_buffered_frame_bytes,
        )
        self.abort()
        return True

    def send(self, data: bytes) -> None:
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(data)

    def _flush(self) -> None:
        out, self._out = self._out, []
        t = self.transport
        if out and t is not None and not t.is_closing():
            if self._overflowing(t):
                return
            t.write(out[0] if len(out) == 1 else b"".join(out))
            self._overflowing(t)  # this write may have crossed both marks at once

    def _overflowing(self, t: Any) -> bool:
        """Past the high-water mark with ``max_unread_reply_bytes`` queued: abort -> True."""
        if (
            not self.write_paused
            or t.get_write_buffer_size() <= self.ingress.cfg.max_unread_reply_bytes
        ):
            return False
        log.warning(
            "%s: consumer %s stopped reading its replies; aborting", self.ingress.label, self.peer
        )
        self.abort()
        return True

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop at once: unread input and output go (``close`` would flush them first)."""
        if self.held:
            self.ingress.hold(-self.held)
            self.held = 0
        self.wire = Connection(Role.SERVER, max_payload=self.ingress.cfg.max_payload)
        if self.transport is not None:
            self.transport.abort()
