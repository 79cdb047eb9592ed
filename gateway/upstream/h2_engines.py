"""Two sans-IO HTTP/2 client engines behind one small interface, for gateway/upstream/triple_h2.py.

* ``HyperEngine`` wraps python-hyper's ``h2`` (full state machine, validation, priority…).
* ``LeanEngine`` is the subset a unary gRPC client uses, written for speed: request header
  blocks are HPACK literals *without indexing* (stateless, so a method's block is built once
  and reused byte for byte), responses are decoded by the ``hpack`` library's decoder with
  a cache of blocks that left the dynamic table unchanged (see ``_headers``), frames are
  packed and parsed with ``struct``.  docs/benchmarks.md has the numbers that justified
  it: per call, h2 spent ~70 us sending and ~85 us receiving, on the same machine where
  the whole Dubbo2 path costs ~100 us.

Both feed what they receive to a ``Sink`` (the connection): ``on_headers``, ``on_data``,
``on_end``, ``on_reset``, ``on_goaway``, ``on_window``; both raise ``H2ProtocolError`` on a
peer that breaks the protocol (the caller then fails every stream and closes).
"""

from __future__ import annotations

import struct
from typing import Protocol

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
WINDOW = 16 * 1024 * 1024  # our receive window, per stream and for the connection
MAX_HEADER_LIST = 65536
MAX_FRAME_IN = 16384  # we never raise SETTINGS_MAX_FRAME_SIZE from its default
CANCEL = 0x8
REFUSED_STREAM = 0x7

# frame types and flags (RFC 9113 §6)
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE = range(9)
CONTINUATION = 9
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 0x1, 0x1, 0x4, 0x8, 0x20

_HDR = struct.Struct(">BHBBI")  # length (24 bits as B+H), type, flags, stream id
_U32 = struct.Struct(">I")
_SETTING = struct.Struct(">HI")


class H2ProtocolError(Exception):
    pass


class Sink(Protocol):
    def on_headers(self, sid: int, headers: list[tuple[bytes, bytes]]) -> None: ...
    def on_data(self, sid: int, data: bytes) -> None: ...
    def on_end(self, sid: int) -> None: ...
    def on_reset(self, sid: int, code: int) -> None: ...
    def on_goaway(self, last_sid: int, code: int) -> None: ...
    def on_window(self) -> None: ...


def _frame(ftype: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return _HDR.pack(n >> 16, n & 0xFFFF, ftype, flags, sid) + payload


def _hpack_int(value: int, prefix: int, first: int) -> bytes:
    top = (1 << prefix) - 1
    if value < top:
        return bytes((first | value,))
    out = bytearray((first | top,))
    value -= top
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


#: HPACK static table entries whose *name* a request uses (RFC 7541 Appendix A)
_STATIC_NAMES = {
    b":authority": 1,
    b":method": 2,
    b":path": 4,
    b":scheme": 6,
    b"content-type": 31,
    b"user-agent": 58,
}
_STATIC_FULL = {(b":method", b"POST"): 3, (b":scheme", b"http"): 6}


def literal_block(headers: list[tuple[bytes, bytes]]) -> bytes:
    """An HPACK block of fully indexed static entries and literals *without indexing*:
    it never touches the peer's dynamic table, so the same bytes are valid on any
    connection at any time."""
    out = bytearray()
    for name, value in headers:
        full = _STATIC_FULL.get((name, value))
        if full is not None:
            out += _hpack_int(full, 7, 0x80)
            continue
        idx = _STATIC_NAMES.get(name, 0)
        if idx:
            out += _hpack_int(idx, 4, 0x00)
        else:
            out += b"\x00" + _hpack_int(len(name), 7, 0x00) + name
        out += _hpack_int(len(value), 7, 0x00) + value
    return bytes(out)


class LeanEngine:
    """The unary-client subset of HTTP/2, see the module docstring."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.out: list[bytes] = []
        self.dec = hpack.Decoder(max_header_list_size=MAX_HEADER_LIST)
        self.next_sid = 1
        self.open: dict[int, int] = {}  # open stream -> its send window
        self.max_streams = 1 << 31
        self.peer_initial = 65535
        self.conn_window = 65535
        self.max_frame = 16384
        self.unacked = 0  # received DATA not yet given back to the connection window
        self._buf = b""
        self._cont: tuple[int, int, bytearray] | None = None  # CONTINUATION in progress
        self._cache: dict[bytes, list[tuple[bytes, bytes]]] = {}
        self.goaway = False

    # ---- sending -------------------------------------------------------------------------

    def start(self) -> None:
        settings = (
            _SETTING.pack(2, 0) + _SETTING.pack(4, WINDOW) + _SETTING.pack(6, MAX_HEADER_LIST)
        )
        self.out.append(
            PREFACE
            + _frame(SETTINGS, 0, 0, settings)
            + _frame(WINDOW_UPDATE, 0, 0, _U32.pack(WINDOW - 65535))
        )

    def take(self) -> bytes:
        out = b"".join(self.out)
        self.out.clear()
        return out

    def can_open(self) -> bool:
        return len(self.open) < self.max_streams and self.next_sid < 0x7FFFFFF0

    def open_stream(self, block: bytes) -> int:
        sid = self.next_sid
        self.next_sid += 2
        self.open[sid] = self.peer_initial
        mf = self.max_frame
        if len(block) <= mf:
            self.out.append(_frame(HEADERS, END_HEADERS, sid, block))
        else:
            self.out.append(_frame(HEADERS, 0, sid, block[:mf]))
            rest = block[mf:]
            while rest:
                chunk, rest = rest[:mf], rest[mf:]
                self.out.append(_frame(CONTINUATION, 0 if rest else END_HEADERS, sid, chunk))
        return sid

    def send_window(self, sid: int) -> int:
        return min(self.open.get(sid, 0), self.conn_window)

    def send_data(self, sid: int, data: bytes, end: bool) -> None:
        n = len(data)
        self.open[sid] -= n
        self.conn_window -= n
        self.out.append(_frame(DATA, END_STREAM if end else 0, sid, data))

    def reset(self, sid: int, code: int = CANCEL) -> None:
        if self.open.pop(sid, None) is not None:
            self.out.append(_frame(RST_STREAM, 0, sid, _U32.pack(code)))

    def close(self) -> None:
        self.out.append(_frame(GOAWAY, 0, 0, _U32.pack(0) + _U32.pack(0)))

    # ---- receiving -----------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        pos = 0
        end = len(buf)
        sink = self.sink
        while end - pos >= 9:
            hi, lo, ftype, flags, sid = _HDR.unpack_from(buf, pos)
            length = hi << 16 | lo
            sid &= 0x7FFFFFFF
            if length > MAX_FRAME_IN:
                raise H2ProtocolError(
                    f"frame of {length} bytes, above SETTINGS_MAX_FRAME_SIZE {MAX_FRAME_IN}"
                )
            if end - pos - 9 < length:
                break
            payload = buf[pos + 9 : pos + 9 + length]
            pos += 9 + length
            if self._cont is not None and ftype != CONTINUATION:
                raise H2ProtocolError("expected CONTINUATION")
            if ftype == DATA:
                if flags & PADDED:
                    payload = payload[1 : length - payload[0]]
                if length:
                    self.unacked += length
                    if self.unacked > WINDOW // 2:
                        self.out.append(_frame(WINDOW_UPDATE, 0, 0, _U32.pack(self.unacked)))
                        self.unacked = 0
                if sid in self.open:
                    sink.on_data(sid, payload)
                    if flags & END_STREAM:
                        self.open.pop(sid, None)
                        sink.on_end(sid)
            elif ftype == HEADERS:
                if flags & PADDED:
                    payload = payload[1 : length - payload[0]]
                if flags & PRIO:
                    payload = payload[5:]
                if flags & END_HEADERS:
                    self._headers(sid, payload, flags & END_STREAM)
                else:
                    self._cont = (sid, flags, bytearray(payload))
            elif ftype == CONTINUATION:
                if self._cont is None or self._cont[0] != sid:
                    raise H2ProtocolError("unexpected CONTINUATION")
                self._cont[2].extend(payload)
                if len(self._cont[2]) > MAX_HEADER_LIST * 2:
                    raise H2ProtocolError("header block too large")
                if flags & END_HEADERS:
                    csid, cflags, block = self._cont
                    self._cont = None
                    self._headers(csid, bytes(block), cflags & END_STREAM)
            elif ftype == SETTINGS:
                if not flags & ACK:
                    self._settings(payload)
            elif ftype == WINDOW_UPDATE:
                inc = _U32.unpack(payload)[0] & 0x7FFFFFFF
                if sid == 0:
                    self.conn_window += inc
                elif sid in self.open:
                    self.open[sid] += inc
                sink.on_window()
            elif ftype == PING:
                if not flags & ACK:
                    self.out.append(_frame(PING, ACK, 0, payload))
            elif ftype == RST_STREAM:
                if self.open.pop(sid, None) is not None:
                    sink.on_reset(sid, _U32.unpack(payload)[0])
            elif ftype == GOAWAY:
                self.goaway = True
                last = _U32.unpack_from(payload)[0] & 0x7FFFFFFF
                sink.on_goaway(last, _U32.unpack_from(payload, 4)[0])
            elif ftype == PUSH_PROMISE:
                raise H2ProtocolError("PUSH_PROMISE although push is disabled")
            # PRIORITY and unknown frame types are ignored (RFC 9113 §4.1, §5.5)
        self._buf = buf[pos:] if pos < end else b""

    def _settings(self, payload: bytes) -> None:
        for off in range(0, len(payload) - len(payload) % 6, 6):
            key, value = _SETTING.unpack_from(payload, off)
            if key == 1:
                # the peer's decoder table size: we never index, nothing to do
                pass
            elif key == 3:
                self.max_streams = value
            elif key == 4:
                if value > 0x7FFFFFFF:
                    raise H2ProtocolError("INITIAL_WINDOW_SIZE too large")
                delta = value - self.peer_initial
                self.peer_initial = value
                for sid in self.open:
                    self.open[sid] += delta
            elif key == 5:
                self.max_frame = value
        self.out.append(_frame(SETTINGS, ACK, 0))
        self.sink.on_window()

    def _headers(self, sid: int, block: bytes, end: int) -> None:
        headers = self._cache.get(block)
        if headers is None:
            dyn = self.dec.header_table.dynamic_entries
            n, first = len(dyn), dyn[0] if dyn else None
            try:
                headers = [(bytes(k), bytes(v)) for k, v in self.dec.decode(block, raw=True)]
            except hpack.HPACKError as e:
                raise H2ProtocolError(f"HPACK: {e}") from None
            # insertions go to the front and evictions shorten the table: a block after
            # which both are as before did not change the dynamic table, so the same bytes
            # will mean the same headers until a block that does (which empties the cache)
            if len(dyn) == n and (dyn[0] if dyn else None) is first:
                if len(self._cache) > 256:
                    self._cache.clear()
                self._cache[block] = headers
            elif self._cache:
                self._cache.clear()
        if sid not in self.open:
            return
        self.sink.on_headers(sid, headers)
        if end:
            self.open.pop(sid, None)
            self.sink.on_end(sid)


_HYPER_CONFIG = h2.config.H2Configuration(
    client_side=True,
    header_encoding=None,
    validate_outbound_headers=False,
    normalize_outbound_headers=False,
    validate_inbound_headers=False,
    normalize_inbound_headers=False,
)


class HyperEngine:
    """python-hyper ``h2`` behind the engine interface."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.h = h2.connection.H2Connection(_HYPER_CONFIG)
        self.goaway = False

    def start(self) -> None:
        h = self.h
        h.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: WINDOW,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST,
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
            },
        )
        h.initiate_connection()
        h.increment_flow_control_window(WINDOW - 65535)

    def take(self) -> bytes:
        return self.h.data_to_send()

    @property
    def max_frame(self) -> int:
        return self.h.max_outbound_frame_size

    def can_open(self) -> bool:
        h = self.h
        return h.open_outbound_streams < h.remote_settings.max_concurrent_streams

    def open_stream(self, headers: list[tuple[bytes, bytes]]) -> int:
        sid = self.h.get_next_available_stream_id()
        self.h.send_headers(sid, headers)
        return sid

    def send_window(self, sid: int) -> int:
        try:
            return self.h.local_flow_control_window(sid)
        except h2.exceptions.StreamClosedError:
            return 0

    def send_data(self, sid: int, data: bytes, end: bool) -> None:
        self.h.send_data(sid, data, end_stream=end)

    def reset(self, sid: int, code: int = CANCEL) -> None:
        try:
            self.h.reset_stream(sid, code)
        except h2.exceptions.H2Error:
            pass

    def close(self) -> None:
        try:
            self.h.close_connection()
        except h2.exceptions.H2Error:
            pass

    def feed(self, data: bytes) -> None:
        try:
            events = self.h.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            raise H2ProtocolError(str(e)) from None
        sink = self.sink
        for ev in events:
            t = type(ev)
            if t is h2.events.DataReceived:
                if ev.flow_controlled_length:
                    self.h.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                sink.on_data(ev.stream_id, ev.data)
            elif t is h2.events.ResponseReceived or t is h2.events.TrailersReceived:
                sink.on_headers(ev.stream_id, ev.headers)
            elif t is h2.events.StreamEnded:
                sink.on_end(ev.stream_id)
            elif t is h2.events.StreamReset:
                sink.on_reset(ev.stream_id, int(ev.error_code))
            elif t is h2.events.ConnectionTerminated:
                self.goaway = True
                sink.on_goaway(ev.last_stream_id or 0, int(ev.error_code))
            elif t is h2.events.WindowUpdated or t is h2.events.RemoteSettingsChanged:
                sink.on_window()


ENGINES = {"h2": HyperEngine, "lean": LeanEngine}
