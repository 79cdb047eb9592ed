"""Relay links between gateways in different network domains (docs/relay.md).

The link is one mutually authenticated TLS connection carrying plain Dubbo2 frames: a
call is the request frame as the consumer (or the HTTP invoker) encoded it, under a
link-local request id; the remote gateway routes it by the service path, version and
``group`` attachment in the body, exactly as its Dubbo2 ingress would, to providers it
resolves through its own registries.  Everything Dubbo2 already has serves the link:
request ids multiplex calls (a slow service never holds up others), heartbeats detect a
dead peer, READONLY announces a graceful restart, the ``timeout`` attachment carries the
caller's deadline.

``RelayLink`` (the calling side) keeps the connection up by itself and reconnects with
exponential backoff and jitter.  It has the call surface of ``upstream.InstancePool``, so
the HTTP invoker reaches a remote provider through an endpoint ``relay:NAME`` with no
special path; while the link is down calls fail at once (HTTP 503 / Dubbo status 70) with
a message naming the link and its last error, instead of waiting for a timeout.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import sys
import time

from tribridge.config.relay import (
    IngressConfig,
    IngressRoute,
    LinkConfig,
    RelayConfig,
    TlsConfig,
)
from tribridge.config.upstream import UpstreamSettings
from tribridge.ingress.dubbo import DubboIngress, IngressHost
from tribridge.upstream.errors import RelayDown
from tribridge.upstream.pool import DubboConnection

log = logging.getLogger("tribridge.relay")


def server_context(tls: TlsConfig) -> ssl.SSLContext:
    """TLS for a listener: its certificate, and client certificates required when a CA
    is given (always for the relay listener; optional for the Dubbo2 ingress)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(tls.cert, tls.key)
    if tls.ca is not None:
        ctx.load_verify_locations(tls.ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_context(tls: TlsConfig) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(tls.cert, tls.key)
    ctx.load_verify_locations(tls.ca)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class _LinkConnection(DubboConnection):
    """A DubboConnection that tells its link when it goes away."""

    def __init__(self, loop: asyncio.AbstractEventLoop, settings: UpstreamSettings) -> None:
        super().__init__(loop, settings)
        self.lost: asyncio.Future[None] = loop.create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.lost.done():
            self.lost.set_result(None)

    def _set_readonly(self, readonly: bool) -> None:
        was = self.readonly
        super()._set_readonly(readonly)
        if self.readonly and not was and not self.lost.done():
            # The remote gateway is stopping: calls in flight finish, new ones wait for
            # the next connection (to the restarted gateway).
            self.lost.set_result(None)


class RelayLink:
    """The calling end of one link; call surface of ``upstream.InstancePool``."""

    def __init__(self, cfg: LinkConfig, settings: UpstreamSettings) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.settings = UpstreamSettings(
            heartbeat_interval=cfg.heartbeat,
            connect_timeout=cfg.connect_timeout,
            max_payload=settings.max_payload,
            write_buffer_bytes=settings.write_buffer_bytes,
            max_queued_bytes=settings.max_queued_bytes,
        )
        self.ssl = client_context(cfg.tls)
        #: ``UpstreamPool.tls``: a link carries Dubbo2 only, never a Triple call
        self.tls = None
        self.conn: _LinkConnection | None = None
        self.active = 0
        self.connects = 0
        self.last_error = "not connected yet"
        self.next_attempt = 0.0
        self._attempt: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._backoff = cfg.backoff_initial
        self._retiring: set[asyncio.Future[None]] = set()

    @property
    def address(self) -> str:
        return f"{self.cfg.host}:{self.cfg.port}"

    @property
    def up(self) -> bool:
        c = self.conn
        return not self._closed and c is not None and c.usable

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    def close(self) -> None:
        """Stop reconnecting and close the connection (``PoolSet.close``, after the
        gateway's listeners have drained)."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
        if self.conn is not None:
            self.conn.close()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closed:
            self._attempt = loop.create_future()
            try:
                _, conn = await asyncio.wait_for(
                    loop.create_connection(
                        lambda: _LinkConnection(loop, self.settings),
                        self.cfg.host,
                        self.cfg.port,
                        ssl=self.ssl,
                        server_hostname=self.cfg.server_name or self.cfg.host,
                    ),
                    self.cfg.connect_timeout,
                )
            except (OSError, TimeoutError, ssl.SSLError) as e:
                self.last_error = _describe(e)
                delay = self._backoff * random.uniform(0.8, 1.2)
                self._backoff = min(self._backoff * 2, self.cfg.backoff_max)
                self.next_attempt = time.monotonic() + delay
                self._attempt.set_result(None)
                log.warning(
                    "relay link %r to %s: %s; retrying in %.2fs",
                    self.name,
                    self.address,
                    self.last_error,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            self.conn = conn
            self.connects += 1
            self._backoff = self.cfg.backoff_initial
            self._attempt.set_result(None)
            log.warning("relay link %r to %s is up", self.name, self.address)
            await conn.lost
            self.last_error = (
                "the remote gateway is shutting down (READONLY)"
                if conn.readonly and not conn.closed
                else "connection lost"
            )
            log.warning("relay link %r to %s: %s", self.name, self.address, self.last_error)
            if not conn.closed:
                # Drained by the remote before it closes; we stop using it now.
                self._retire(conn)
            self.next_attempt = time.monotonic() + self._backoff
            await asyncio.sleep(self._backoff)

    def _retire(self, conn: _LinkConnection) -> None:
        """Let calls in flight on a READONLY connection finish, then close it."""

        async def later() -> None:
            deadline = time.monotonic() + 60
            while conn.pending and not conn.closed and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            conn.close()

        task = asyncio.ensure_future(later())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    # ---- InstancePool call surface -------------------------------------------------------

    def available(self, now: float) -> bool:
        return self.up

    @property
    def readonly(self) -> bool:
        return False

    def ready_connection(self) -> DubboConnection | None:
        return self.conn if self.up else None

    async def connection(self) -> DubboConnection:
        c = self.ready_connection()
        if c is not None:
            return c
        attempt = self._attempt
        if attempt is not None and not attempt.done():
            # A connect is under way (gateway start, or just after a drop): worth a wait.
            try:
                await asyncio.wait_for(asyncio.shield(attempt), self.cfg.connect_timeout)
            except TimeoutError:
                pass
            c = self.ready_connection()
            if c is not None:
                return c
        wait = max(self.next_attempt - time.monotonic(), 0.0)
        raise RelayDown(
            f"relay link {self.name!r} to {self.address} is down: {self.last_error}; "
            f"reconnecting (next attempt in {wait:.1f}s)"
        )

    def record_failure(self) -> None:
        return None

    def record_success(self) -> None:
        return None

    def status(self) -> dict[str, object]:
        return {
            "link": self.name,
            "address": self.address,
            "up": self.up,
            "active": self.active,
            "connects": self.connects,
            "last_error": None if self.up else self.last_error,
        }


def _describe(e: BaseException) -> str:
    if isinstance(e, TimeoutError):
        return "connect timed out"
    if isinstance(e, ssl.SSLError):
        return f"TLS handshake failed: {e.reason or e}"
    return str(e) or type(e).__name__


class RelayRuntime:
    """Dubbo ingress, relay listener and outgoing links of one gateway."""

    def __init__(self, gw: IngressHost) -> None:
        self.gw = gw
        rc: RelayConfig | None = getattr(gw.cfg, "relay", None)
        self.links: dict[str, RelayLink] = {}
        if rc is not None:
            for name, lc in rc.links.items():
                self.links[name] = RelayLink(lc, gw.cfg.upstream)
        gw.pools.relay_links = self.links  # endpoints ``relay:NAME`` resolve here
        self.ingress: DubboIngress | None = None
        self.relay_server: DubboIngress | None = None
        ic: IngressConfig | None = getattr(gw.cfg, "dubbo_ingress", None)
        if ic is not None:
            ctx = server_context(ic.tls) if ic.tls is not None else None
            self.ingress = DubboIngress(gw, ic, self.links, ssl_context=ctx)
        if rc is not None and rc.host is not None and rc.tls is not None:
            scfg = IngressConfig(
                host=rc.host,
                port=rc.port,
                routes=[IngressRoute(interface=g, to="local") for g in rc.exports],
                max_payload=gw.cfg.upstream.max_payload,
                idle_timeout=rc.idle_timeout,
                max_in_flight=rc.max_in_flight,
                max_connections=rc.max_connections,
            )
            self.relay_server = DubboIngress(
                gw,
                scfg,
                {},
                ssl_context=server_context(rc.tls),
                label="relay listener",
                allow=rc.allow,
                not_found_hint="not exported over the tribridge relay",
            )

    async def start(self) -> None:
        for link in self.links.values():
            link.start()
        for srv, what in ((self.relay_server, "relay (TLS)"), (self.ingress, "dubbo ingress")):
            if srv is not None:
                await srv.start()
                print(f"tribridge {what} on {srv.cfg.host}:{srv.port}", file=sys.stderr, flush=True)

    async def stop(self, grace: float) -> None:
        """Listeners only: the links stay up until the gateway closes its pools, so HTTP
        calls still draining can finish over them."""
        for srv in (self.ingress, self.relay_server):
            if srv is not None:
                await srv.close(grace)


def attach(gw: IngressHost) -> RelayRuntime | None:
    """The gateway's hook: a runtime when the config has ``dubbo_ingress`` or ``relay``."""
    if getattr(gw.cfg, "relay", None) is None and getattr(gw.cfg, "dubbo_ingress", None) is None:
        return None
    return RelayRuntime(gw)
