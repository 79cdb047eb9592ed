"""A sans-IO Dubbo2 connection: the protocol state of one TCP stream, apart from any I/O.

Dubbo2 has a little protocol *around* the RPC bodies that every endpoint must get right in
the same way: request ids that pair responses with calls, heartbeats (answered on both
sides, sent by clients), the READONLY/WRITEABLE events a provider sends before a graceful
stop, frames over the payload limit, and streams that stop being Dubbo at all.  Before this
module the upstream pool, the Dubbo2 ingress (and the relay listener built on it), the
MetadataService client and the demo provider each had their own copy of those rules; they
drifted (one matched READONLY loosely, the others ignored it).  Now each of them is thin
glue around one ``Connection``, as h11's ``Connection`` is for HTTP/1.1:

* bytes in: ``receive_data(data) -> list[ConnectionEvent]`` (any split of the stream);
* events out: typed, immutable dataclasses (below) — the caller dispatches on their type;
* bytes out: methods that return ``bytes`` (``heartbeat()``, ``readonly_event()``); what a
  received event asks for is carried by the event itself (``Heartbeat.reply``), so no
  caller re-derives "answer a two-way heartbeat with the request's serialization id".

No sockets, no clocks, no event loop: timers (when to heartbeat, when a stalled partial
frame or a silent peer is given up) stay with the caller, which reads ``mid_frame``,
``frame_began`` and ``buffered`` to decide.  Body decoding stays in ``messages.py`` (class
policy, depth and element limits are judged there); this module frames and classifies only,
so an event costs one small object on the request path.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .frame import (
    DEFAULT_MAX_PAYLOAD,
    FLAG_EVENT,
    FLAG_REQUEST,
    FLAG_TWOWAY,
    SERIALIZATION_MASK,
    DubboProtocolError,
    Frame,
    FrameDecoder,
)
from .messages import (
    READONLY_EVENT,
    WRITEABLE_EVENT,
    encode_event,
    encode_heartbeat,
    encode_heartbeat_response,
)

__all__ = [
    "MAX_EVENT_BODY",
    "Connection",
    "ConnectionEvent",
    "Heartbeat",
    "OtherEvent",
    "OversizeFrame",
    "ProtocolError",
    "ReadOnly",
    "Request",
    "Response",
    "Role",
]

#: Java rejects non-heartbeat event payloads longer than this (``deserialization.event.size``)
MAX_EVENT_BODY = 15
#: hessian2's encoding of null: the body of a heartbeat (``CodecSupport.getNullBytesOf``)
_NULL = b"N"
#: READONLY is the hessian string "R" (``01 52``); WRITEABLE is "W".  A 3.2 provider that
#: prefers fastjson2 sends them JSONB-encoded ("...\"R\""), so only the tail is matched.
_READONLY_TAILS = (b"R", b'"R"')
_WRITEABLE_TAILS = (b"W", b'"W"')
_ID_MAX = (1 << 63) - 1
_ID_MIN = -(1 << 63)


class Role(enum.Enum):
    """Which end of the stream this is: it decides what an over-limit frame means."""

    #: a consumer of a provider (the upstream pool, relay links, the metadata client)
    CLIENT = "client"
    #: a provider (the Dubbo2 ingress, the relay listener, the demo provider)
    SERVER = "server"


# ---- events --------------------------------------------------------------------------------


class ConnectionEvent:
    """Base of everything ``receive_data`` returns.  Events are values: the rare ones are
    frozen dataclasses; ``Request`` and ``Response``, one per call on the request path, are
    plain slotted ones (a frozen dataclass costs ~150 ns more to build) — do not mutate."""

    __slots__ = ()


@dataclass(slots=True)
class Request(ConnectionEvent):
    """A call (not an event): ``frame.request_id`` is to be echoed by the response, and
    only when ``frame.is_twoway`` is one expected.  The body is undecoded bytes — decode it
    with ``messages.decode_request_body`` and its limits, or forward it as it is."""

    frame: Frame


@dataclass(slots=True)
class Response(ConnectionEvent):
    """The answer to the request with ``frame.request_id``; decode it with
    ``messages.decode_response`` (or forward it under another id)."""

    frame: Frame


@dataclass(frozen=True, slots=True)
class Heartbeat(ConnectionEvent):
    """A heartbeat request (``response`` False) or the answer to one of ours (True).

    ``reply``: the bytes to send back — the heartbeat response under the same id and the
    same serialization id, as Java's ``HeartbeatHandler`` does — or None when nothing is
    owed (a one-way heartbeat, or a response).  Either way the peer is alive."""

    request_id: int
    response: bool
    reply: bytes | None


@dataclass(frozen=True, slots=True)
class ReadOnly(ConnectionEvent):
    """READONLY (``readonly`` True: the peer is shutting down gracefully — send it no new
    calls, let those in flight finish) or WRITEABLE (False: it takes calls again).  The
    connection's ``peer_readonly`` already reflects it."""

    readonly: bool


@dataclass(frozen=True, slots=True)
class OtherEvent(ConnectionEvent):
    """An event frame that is neither a heartbeat nor READONLY/WRITEABLE (e.g. a long or
    unknown payload).  Java ignores these; nothing is owed."""

    frame: Frame


@dataclass(frozen=True, slots=True)
class OversizeFrame(ConnectionEvent):
    """A frame whose declared body exceeds ``max_payload`` was skipped without buffering
    it (client role only: other calls on the connection live on, as Java's
    ``finishRespWhenOverPayload``).  ``frame.oversize`` holds the declared length and
    ``frame.body`` is empty.  For a response, fail the call it answers: complete it with
    ``frame`` (``decode_response`` turns it into CLIENT_ERROR 90) or answer the consumer
    with SERIALIZATION_ERROR 25.  An over-limit request from the peer is dropped."""

    frame: Frame

    @property
    def response(self) -> bool:
        return not self.frame.flag & FLAG_REQUEST


@dataclass(frozen=True, slots=True)
class ProtocolError(ConnectionEvent):
    """The stream is no longer Dubbo2 (bad magic, a negative or over-limit length the role
    does not skip).  Always the last event: close the connection (abort it — nothing more
    can be framed) and fail the calls in flight.  Java hands such bytes to telnet; a
    gateway hangs up.  Later ``receive_data`` calls return nothing."""

    message: str


# ---- the connection ------------------------------------------------------------------------


class Connection:
    """Protocol state of one Dubbo2 stream, for either role; see the module docstring.

    ``max_payload`` bounds every body this side buffers; in the client role a larger
    declared body (up to ``frame.SKIP_FACTOR`` times the limit) is skipped and reported as
    ``OversizeFrame`` unless ``skip_oversized`` is False (a one-call client that would
    rather fail the stream).  Request ids start at ``first_id`` and wrap as Java's signed
    64-bit counter does."""

    __slots__ = ("_broken", "_decoder", "_next_id", "frame_began", "peer_readonly", "role")

    def __init__(
        self,
        role: Role,
        *,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        skip_oversized: bool | None = None,
        first_id: int = 1,
    ) -> None:
        self.role = role
        skip = role is Role.CLIENT if skip_oversized is None else skip_oversized
        self._decoder = FrameDecoder(max_payload, skip_oversized=skip)
        self._next_id = first_id
        self._broken = False
        #: the peer announced READONLY (and no WRITEABLE since)
        self.peer_readonly = False
        #: the last ``receive_data`` ended inside a frame whose first byte was in that data
        #: (see ``receive_data``)
        self.frame_began = False

    # ---- state the caller's timers look at ------------------------------------------------

    @property
    def max_payload(self) -> int:
        return self._decoder.max_payload

    @property
    def buffered(self) -> int:
        """Bytes of a partial frame held (the ingress counts them in a listener budget)."""
        return self._decoder.buffered

    @property
    def mid_frame(self) -> bool:
        """Inside a frame (partial header/body held, or an oversized body being skipped):
        a peer that stops here has left the stream unusable, so a caller gives it a
        deadline (``frame_timeout``, or a call timeout on a client), counted from the read
        that set ``frame_began`` — not from the last read, which a peer trickling one byte
        at a time would keep fresh."""
        return self._decoder.mid_frame

    @property
    def upcoming_request_id(self) -> int:
        """The id ``next_request_id`` returns next: a request under a smaller id was sent
        before now (ids only grow; they wrap only after 2**63 of them)."""
        return self._next_id

    @property
    def broken(self) -> bool:
        """A ``ProtocolError`` was reported: the stream cannot be framed any more."""
        return self._broken

    # ---- bytes in ----------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[ConnectionEvent]:
        """Feed bytes as they arrived (any split); return the events they complete.

        A malformed stream ends the list with ``ProtocolError`` (events of the same chunk
        before the bad frame are not reported: the connection is closed anyway) and drops
        what was buffered, so a broken peer holds no memory."""
        if self._broken:
            return []
        dec = self._decoder
        held = dec.buffered
        try:
            frames = dec.feed(data)
        except DubboProtocolError as e:
            self._broken = True
            self.frame_began = False
            return [ProtocolError(str(e))]
        self.frame_began = dec.mid_frame and self._began_here(held, frames)
        events: list[ConnectionEvent] = []
        for fr in frames:
            flag = fr.flag
            if flag & FLAG_EVENT or fr.oversize:
                events.append(OversizeFrame(fr) if fr.oversize else self._event(fr))
            else:
                events.append(Request(fr) if flag & FLAG_REQUEST else Response(fr))
        return events

    def _event(self, fr: Frame) -> ConnectionEvent:
        flag = fr.flag
        body = fr.body
        if body == _NULL:
            if not flag & FLAG_REQUEST:
                return Heartbeat(fr.request_id, True, None)
            reply = None
            if flag & FLAG_TWOWAY:
                # same id, same serialization id (HeartBeatResponse.setProto(req.getProto()))
                reply = encode_heartbeat_response(fr.request_id, flag & SERIALIZATION_MASK)
            return Heartbeat(fr.request_id, False, reply)
        if flag & FLAG_REQUEST and len(body) <= MAX_EVENT_BODY:
            if body.endswith(_READONLY_TAILS):
                self.peer_readonly = True
                return ReadOnly(True)
            if body.endswith(_WRITEABLE_TAILS):
                self.peer_readonly = False
                return ReadOnly(False)
        return OtherEvent(fr)

    def _began_here(self, held: int, frames: list[Frame]) -> bool:
        """Still inside a frame after a read: did that frame's first byte come in that read?

        A caller timing stalls stamps its clock only when it did (once per frame, not per
        read).  ``held`` is what the decoder buffered before the read; an oversized body
        being skipped holds nothing and was reported (``OversizeFrame``) at its header."""
        if self._decoder.buffered:  # a partial header/body: new unless the same as before
            return not held or bool(frames)
        # skipping: the frame is the last one reported; new unless its header was held
        return len(frames) > 1 or (bool(frames) and not held)

    # ---- bytes out -----------------------------------------------------------------------

    def next_request_id(self) -> int:
        """A fresh request id (opaque signed 64-bit, wrapping like Java's counter)."""
        rid = self._next_id
        self._next_id = rid + 1 if rid != _ID_MAX else _ID_MIN
        return rid

    def heartbeat(self) -> bytes:
        """A two-way hessian2 heartbeat under a fresh id: a client sends one when the
        provider has been quiet for a heartbeat interval (Java providers close a connection
        after three silent ones); the answer arrives as ``Heartbeat(response=True)``."""
        return encode_heartbeat(self.next_request_id())

    def readonly_event(self, readonly: bool = True) -> bytes:
        """The one-way READONLY (or WRITEABLE) event a provider sends every consumer before
        a graceful stop, so they send nothing new while calls in flight finish."""
        event = READONLY_EVENT if readonly else WRITEABLE_EVENT
        return encode_event(self.next_request_id(), event)
