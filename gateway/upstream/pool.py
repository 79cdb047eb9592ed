"""Pooled, multiplexed Dubbo2 connections to provider instances, and load balancing.

One provider process serves many services over one TCP connection (as Java consumers share
a connection per address), so pools are keyed by address, not by service.  Calls on a
connection are multiplexed by request id; the calls of one loop iteration go out in one write
and their timeouts share one ``call_later`` handle per timeout value (no task, no handle per
call).  A connection that hears nothing for a heartbeat interval sends a heartbeat, and after
three silent intervals it is closed.  READONLY from a provider stops new calls to it.

A provider that starts a frame and does not finish it (a header declaring a body never sent,
or sent a byte at a time) leaves the stream unusable: every later response would be read as
part of that frame.  Once no call that frame could answer is waiting any more (a response
starts after its request was sent) and it has been incomplete for the call timeout of a call
that timed out meanwhile, the connection is closed and the pool opens a fresh one.  Counted
from the frame's first byte, not the last read, which a provider trickling a byte at a time
keeps fresh; the clock is read once per frame (``Connection.frame_began``), never per read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from tribridge.codecs.dubbo import Frame
from tribridge.codecs.dubbo.connection import (
    Connection,
    Heartbeat,
    OversizeFrame,
    ProtocolError,
    ReadOnly,
    Response,
    Role,
)
from tribridge.config.upstream import UpstreamSettings
from tribridge.registries.base import Endpoint
from tribridge.security.tls import address_key
from tribridge.upstream.errors import (
    CallTimeout,
    ConnectFailed,
    ConnectionLost,
    RelayDown,
    UpstreamBusy,
    UpstreamError,
)
from tribridge.upstream.protocols import Waiter

log = logging.getLogger("tribridge.upstream")


class DubboConnection(asyncio.Protocol):
    """One TCP connection to a provider; calls multiplexed by request id."""

    def __init__(self, loop: asyncio.AbstractEventLoop, settings: UpstreamSettings) -> None:
        self.loop = loop
        self.settings = settings
        self.transport: asyncio.Transport | None = None
        #: framing, request ids, heartbeats and READONLY (sans-IO, codecs/dubbo/connection.py)
        self.wire = Connection(Role.CLIENT, max_payload=settings.max_payload)
        self.next_id = self.wire.next_request_id
        self.pending: dict[int, Waiter[Frame]] = {}
        #: one timer per (loop iteration, timeout) batch of calls, not one per call (see
        #: ``call``), by the batch's first request id: armed at the batch's flush, cancelled
        #: only when the connection fails
        self.timers: dict[int, asyncio.TimerHandle] = {}
        #: timeout -> ids of the calls sent in this loop iteration with that timeout
        self._due: dict[float, list[int]] = {}
        self.closed = False
        self.readonly = False
        #: the pool that counts this connection among its writable ones (see
        #: ``InstancePool.readonly``); None once the pool has let go of it
        self.pool: InstancePool | None = None
        #: a read since the last heartbeat tick, and how many ticks in a row had none
        #: (a flag per read: no clock on the hot path)
        self.heard = False
        self.silent_ticks = 0
        #: monotonic time of the first byte of the incomplete frame, and the first request
        #: id sent after it (both valid while ``wire.mid_frame``)
        self.frame_since = 0.0
        self.frame_first_id = 0
        #: the pending stall check, and the frame (its ``frame_since``) it is for
        self._stall_check: asyncio.TimerHandle | None = None
        self._stall_since = 0.0
        self._hb_handle: asyncio.TimerHandle | None = None
        self._out: list[bytes] = []
        self._out_bytes = 0  # in ``_out``
        #: the transport's buffer is past ``write_buffer_bytes`` (the provider lags reading)
        self.write_paused = False

    # ---- asyncio callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.set_write_buffer_limits(self.settings.write_buffer_bytes)  # type: ignore[attr-defined]
        self._schedule_heartbeat()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False

    def data_received(self, data: bytes) -> None:
        self.heard = True
        pending = self.pending
        wire = self.wire
        events = wire.receive_data(data)
        if wire.frame_began:
            self.frame_since = time.monotonic()
            self.frame_first_id = wire.upcoming_request_id
        for ev in events:
            if type(ev) is Response:
                fr = ev.frame
                fut = pending.pop(fr.request_id, None)
                if fut is not None and not fut.done():
                    fut.set_result(fr)
            elif type(ev) is OversizeFrame:
                # fail that call (CLIENT_ERROR via decode_response); the rest live on
                if ev.response:
                    self._answer(ev.frame)
            elif type(ev) is Heartbeat:
                if ev.reply is not None and self.transport is not None:
                    self.transport.write(ev.reply)
            elif type(ev) is ReadOnly:
                self._set_readonly(ev.readonly)
            elif type(ev) is ProtocolError:
                log.warning("closing provider connection: %s", ev.message)
                self._fail_all(ConnectionLost(f"provider sent a malformed frame: {ev.message}"))
                if self.transport is not None:
                    self.transport.abort()
                return
            # else: requests and other events from a provider are not ours to answer

    def _answer(self, fr: Frame) -> None:
        fut = self.pending.pop(fr.request_id, None)
        if fut is not None and not fut.done():
            fut.set_result(fr)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed and not self.readonly and self.pool is not None:
            self.pool.writable -= 1
        self.closed = True
        if self._hb_handle is not None:
            self._hb_handle.cancel()
        if self._stall_check is not None:
            self._stall_check.cancel()
            self._stall_check = None
        self._fail_all(
            ConnectionLost("connection to provider closed" + (f": {exc}" if exc else ""))
        )

    # ---- calls ---------------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        return not self.closed and not self.readonly and self.transport is not None

    def call(self, request_id: int, frame: bytes, timeout: float) -> asyncio.Future[Frame]:
        """Send a two-way request frame; the future resolves with the response frame."""
        fut: asyncio.Future[Frame] = self.loop.create_future()
        self.send(request_id, frame, timeout, fut)
        return fut

    def send(self, request_id: int, frame: bytes, timeout: float, waiter: Waiter[Frame]) -> None:
        """Send a two-way request frame; ``waiter`` gets the response frame or the error
        (at once when the connection cannot take the call)."""
        if self.closed or self.transport is None:
            waiter.set_exception(ConnectionLost("connection to provider is closed"))
            return
        if self.write_paused and self.backlogged():
            waiter.set_exception(
                UpstreamBusy(
                    f"provider is not reading: {self.transport.get_write_buffer_size()} bytes "
                    "of requests queued (upstream.max_queued_bytes)"
                )
            )
            return
        self.pending[request_id] = waiter
        # Coalesce the frames of one loop iteration into one write: under load many HTTP
        # requests arrive per iteration, and one syscall beats fifty; but a full batch goes
        # at once, so the provider works on it while the rest of the iteration is read.
        out = self._out
        if not out:
            self.loop.call_soon(self._flush)
            self._out_bytes = 0
        out.append(frame)
        self._out_bytes += len(frame)
        # Timeouts in batches too: the calls of one iteration with the same timeout share
        # one timer, armed at the flush (a timer per call cost ~1.7 µs to arm and cancel).
        due = self._due.get(timeout)
        if due is None:
            self._due[timeout] = [request_id]
        else:
            due.append(request_id)
        settings = self.settings
        if len(out) >= settings.batch_frames or self._out_bytes >= settings.batch_bytes:
            self._flush()  # (the flush already scheduled finds nothing, or the next batch)

    def _flush(self) -> None:
        out, self._out = self._out, []
        due, self._due = self._due, {}
        for timeout, ids in due.items():
            self._arm(timeout, ids)
        if self.transport is not None and not self.closed and out:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    def backlogged(self) -> bool:
        """More than ``max_queued_bytes`` wait in the transport (checked only once the
        high-water mark has paused writing: nothing per call on a healthy connection)."""
        t = self.transport
        return t is not None and t.get_write_buffer_size() > self.settings.max_queued_bytes

    def send_oneway(self, frame: bytes) -> None:
        if self.transport is not None and not self.closed:
            if self.write_paused and self.backlogged():
                return  # one-way: nobody waits for an answer; dropping beats unbounded memory
            self.transport.write(frame)

    def _arm(self, timeout: float, ids: list[int]) -> None:
        # keyed by the batch's first request id: ids are unique, so batches are too
        self.timers[ids[0]] = self.loop.call_later(timeout, self._expire, ids, timeout)

    def _expire(self, ids: list[int], timeout: float) -> None:
        """The calls of one batch whose timeout passed: those still unanswered fail."""
        self.timers.pop(ids[0], None)
        pending = self.pending
        for request_id in ids:
            fut = pending.pop(request_id, None)
            if fut is not None and not fut.done():
                fut.set_exception(CallTimeout(f"no response from provider within {timeout:g}s"))
        if self.wire.mid_frame and not self.closed:
            self._watch_stall(timeout)

    def _watch_stall(self, timeout: float) -> None:
        """A call timed out inside a frame: once no call that frame could answer waits any
        more, close the connection if the frame has been incomplete for ``timeout`` (now,
        or at a check scheduled for then, if the frame is still the one open).

        Counted from the frame's first byte, not the last read: a provider trickling a stuck
        frame a byte at a time would keep the last read fresh forever.  A frame slowly
        carrying the answer of a call still waiting is never cut.  ``pending`` keeps call
        order and ids grow, so its first key is the oldest call waiting: O(1), and only on
        a timeout."""
        oldest = next(iter(self.pending), None)
        if oldest is not None and oldest < self.frame_first_id:
            return  # sent before the frame began: the frame may be its answer; its own
            # timeout comes back here
        since = self.frame_since
        now = time.monotonic()
        if now - since >= timeout:
            self._stalled(now - since)
        elif self._stall_check is None or self._stall_since != since:
            if self._stall_check is not None:  # for a frame that has completed since
                self._stall_check.cancel()
            self._stall_since = since
            self._stall_check = self.loop.call_later(
                since + timeout - now, self._stall_check_due, since
            )

    def _stall_check_due(self, since: float) -> None:
        self._stall_check = None
        if not self.closed and self.wire.mid_frame and self.frame_since == since:
            self._stalled(time.monotonic() - since)

    def _stalled(self, waited: float) -> None:
        log.warning(
            "provider stream stalled: a frame incomplete for %.1fs answers no waiting call; "
            "closing the connection",
            waited,
        )
        self._fail_all(ConnectionLost("provider stream stalled in the middle of a frame"))
        if self.transport is not None:
            # abort: nothing more can be framed, and a TLS close would wait for the peer
            self.transport.abort()

    def _fail_all(self, exc: UpstreamError) -> None:
        pending, self.pending = self.pending, {}
        timers, self.timers = self.timers, {}
        self._due = {}
        for t in timers.values():
            t.cancel()
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(exc)

    def _set_readonly(self, readonly: bool) -> None:
        """READONLY (True) / WRITEABLE (False) from the provider: no new calls while set."""
        if readonly != self.readonly and not self.closed and self.pool is not None:
            self.pool.writable += -1 if readonly else 1
        self.readonly = readonly

    def _schedule_heartbeat(self) -> None:
        interval = self.settings.heartbeat_interval
        if interval > 0:
            self._hb_handle = self.loop.call_later(interval, self._heartbeat)

    def _heartbeat(self) -> None:
        if self.closed or self.transport is None:
            return
        if self.heard:
            self.heard = False
            self.silent_ticks = 0
        else:
            self.silent_ticks += 1
            if self.silent_ticks >= 3:
                log.warning(
                    "provider silent for %.0fs; closing connection",
                    self.silent_ticks * self.settings.heartbeat_interval,
                )
                # abort, not close: a TLS close waits (up to 30 s) for the silent peer's
                # close_notify, and the calls in flight would wait with it
                self.transport.abort()
                return
            self.transport.write(self.wire.heartbeat())
        self._schedule_heartbeat()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()


class InstancePool:
    """Connections to one provider address, with backoff and outlier ejection."""

    def __init__(self, host: str, port: int, settings: UpstreamSettings, tls: Any = None) -> None:
        self.host = host
        self.port = port
        self.settings = settings
        self.tls = tls  # a tls.ClientTls, or None for plain TCP
        self.conns: list[DubboConnection] = []
        #: how many of ``conns`` are open and not READONLY, kept by the connections as their
        #: state changes, so that ``readonly`` (asked per request) need not scan them
        self.writable = 0
        self.active = 0
        self.failures = 0
        self.ejected_until = 0.0
        self._rr = 0
        self._connecting: asyncio.Future[DubboConnection] | None = None
        self._next_attempt = 0.0
        self._backoff = settings.backoff_initial
        self._last_error = ""

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def readonly(self) -> bool:
        """Connections exist and none of them is open and writable (asked per request:
        O(1) through ``writable``; closed ones still listed count as not writable)."""
        return self.writable == 0 and bool(self.conns)

    def available(self, now: float) -> bool:
        return now >= self.ejected_until and not self.readonly

    def _live(self) -> list[DubboConnection]:
        live = [c for c in self.conns if c.usable]
        if len(live) != len(self.conns):
            self.conns = [c for c in self.conns if not c.closed]
        return live

    def ready_connection(self) -> DubboConnection | None:
        """A usable open connection when the pool is at its size, without awaiting."""
        conns = self.conns
        n = len(conns)
        if n < self.settings.connections_per_instance:
            return None
        if n == 1:
            c = conns[0]
            return c if c.usable else None
        self._rr += 1
        c = conns[self._rr % n]
        return c if c.usable else None

    async def connection(self) -> DubboConnection:
        live = self._live()
        want = self.settings.connections_per_instance
        if len(live) >= want or (live and self._connecting is not None):
            self._rr += 1
            return live[self._rr % len(live)]
        if live and time.monotonic() < self._next_attempt:
            return live[0]
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
            self._connecting.add_done_callback(self._connect_done)
        if live:
            return live[0]
        return await asyncio.shield(self._connecting)

    def _connect_done(self, fut: asyncio.Future[DubboConnection]) -> None:
        self._connecting = None
        if not fut.cancelled() and fut.exception() is not None:
            fut.exception()  # mark retrieved

    async def _connect(self) -> DubboConnection:
        now = time.monotonic()
        if now < self._next_attempt:
            raise ConnectFailed(
                f"{self.address}: reconnect backoff ({self._next_attempt - now:.1f}s left): "
                f"{self._last_error}"
            )
        loop = asyncio.get_running_loop()
        try:
            _, proto = await asyncio.wait_for(
                loop.create_connection(
                    lambda: DubboConnection(loop, self.settings),
                    self.host,
                    self.port,
                    **self._tls_args(),
                ),
                self.settings.connect_timeout,
            )
        except (OSError, TimeoutError, ValueError) as e:
            self._last_error = str(e) or type(e).__name__
            self._next_attempt = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, self.settings.backoff_max)
            self.record_failure()
            raise ConnectFailed(f"cannot connect to {self.address}: {self._last_error}") from None
        self._backoff = self.settings.backoff_initial
        self._next_attempt = 0.0
        self.adopt(proto)
        return proto

    def adopt(self, conn: DubboConnection) -> None:
        """Take a connected ``conn`` into the pool; from now on it keeps ``writable``."""
        self.conns.append(conn)
        conn.pool = self
        if not conn.closed and not conn.readonly:
            self.writable += 1

    def _tls_args(self) -> dict[str, Any]:
        if self.tls is None:
            return {}
        return {
            "ssl": self.tls.context(),
            "server_hostname": self.tls.server_name or self.host,
            "ssl_handshake_timeout": self.settings.connect_timeout,
        }

    def record_failure(self) -> None:
        self.failures += 1
        if self.failures >= self.settings.eject_after:
            self.ejected_until = time.monotonic() + self.settings.eject_seconds
            log.warning(
                "ejecting %s for %.0fs after %d consecutive failures",
                self.address,
                self.settings.eject_seconds,
                self.failures,
            )
            self.failures = 0

    def record_success(self) -> None:
        self.failures = 0

    def close(self) -> None:
        for c in self.conns:
            c.pool = None  # its connection_lost comes later, after the count is reset
            c.close()
        self.conns = []
        self.writable = 0

    def status(self) -> dict[str, object]:
        return {
            "address": self.address,
            "connections": len(self._live()),
            "active": self.active,
            "ejected": time.monotonic() < self.ejected_until,
            "readonly": self.readonly,
            "last_error": self._last_error or None,
        }


class MissingLink:
    """An endpoint ``relay:NAME`` naming no configured link (config validation prevents
    it): never available, every call fails at once as a link that is down."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.active = 0
        self.address = "?"
        self.up = False
        self.readonly = False
        self.tls = None

    def available(self, now: float) -> bool:
        return False

    def ready_connection(self) -> None:
        return None

    async def connection(self) -> DubboConnection:
        raise RelayDown(f"no relay link named {self.name!r} is configured")

    def record_failure(self) -> None:
        return None

    def record_success(self) -> None:
        return None

    def close(self) -> None:
        return None

    def status(self) -> dict[str, object]:
        return {"link": self.name, "up": False, "last_error": "not configured"}


class PoolSet:
    """All instance pools of the gateway, shared by every service on the same address."""

    def __init__(self, settings: UpstreamSettings | None = None) -> None:
        self.settings = settings or UpstreamSettings()
        self.pools: dict[tuple[str, int, str], InstancePool] = {}
        self._triple: Any = None
        self._http1: Any = None
        #: relay links by name, registered by gateway/relay/links.py; endpoints ``relay:NAME``
        #: resolve to them (``UpstreamPool``s: upstream never imports the relay)
        self.relay_links: dict[str, Any] = {}

    def triple_client(self) -> Any:
        """The shared ``TripleClient`` (gateway/upstream/triple.py), created on first Triple call."""
        if self._triple is None:
            from tribridge.upstream.triple import TripleSettings, make_triple_client

            self._triple = make_triple_client(
                self.settings.triple_client,
                TripleSettings(
                    max_message=self.settings.max_payload,
                    connect_timeout=self.settings.connect_timeout,
                    write_buffer_bytes=self.settings.write_buffer_bytes,
                    max_queued_bytes=self.settings.max_queued_bytes,
                ),
            )
        return self._triple

    def http1_client(self) -> Any:
        """The shared Triple HTTP/1.1 client (gateway/upstream/triple_http1.py), on first use."""
        if self._http1 is None:
            from tribridge.upstream.triple import TripleSettings
            from tribridge.upstream.triple_http1 import Http1TripleClient

            self._http1 = Http1TripleClient(
                TripleSettings(
                    max_message=self.settings.max_payload,
                    connect_timeout=self.settings.connect_timeout,
                )
            )
        return self._http1

    async def aclose(self) -> None:
        """``close`` plus the Triple channels (closing those needs the loop)."""
        self.close()
        if self._triple is not None:
            t, self._triple = self._triple, None
            await t.close()
        if self._http1 is not None:
            h, self._http1 = self._http1, None
            await h.close()

    def get(self, ep: Endpoint, tls: Any = None) -> InstancePool:
        """The pool of an address; with TLS, a separate pool per TLS profile."""
        if ep.protocol == "relay":
            return self._relay(ep.host)
        key = address_key(ep.host, ep.port, tls)
        pool = self.pools.get(key)
        if pool is None:
            pool = self.pools[key] = InstancePool(ep.host, ep.port, self.settings, tls)
        return pool

    def _relay(self, name: str) -> Any:
        link = self.relay_links.get(name)
        return link if link is not None else MissingLink(name)

    def close(self) -> None:
        for p in self.pools.values():
            p.close()
        self.pools.clear()
        for link in self.relay_links.values():
            link.close()
