"""Hot config: a changed file (polled), SIGHUP or ``PUT /config`` becomes a new routing state.

Nothing is reloaded: the new config is parsed and validated, the parts that changed are
built next to the running ones, and one reference (``Gateway.state``) is swapped.

* Listeners never restart and client connections are never closed.  The listen address
  cannot change without a restart (a warning says so and the old address stays).
* Upstream pools are keyed by provider address and shared by every state, so provider
  connections survive any config change; changed ``upstream`` settings are copied into the
  shared settings object (``max_payload`` applies to new connections).
* A service whose config and registry are unchanged keeps its ``Service`` object (balancer
  state, cached request templates, registry subscription); the service directory
  (``routing.directory``) decides which are kept, built, carried over and retired.  A changed one gets a new
  ``Service`` subscribed *before* the swap; the old one is unsubscribed after it.  Requests
  already routed finish on the state they started with.
* A registry whose definition is unchanged is reused; a new or changed one is opened and
  started before the swap and the old one closed after it.
* Invalid config raises ``ConfigError`` with file, line and path; the old state stays.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import os
import time
from collections.abc import Awaitable
from typing import Any, Protocol

from tribridge.config.model import ConfigError, GatewayConfig, parse_config
from tribridge.http.messages import HttpLimits
from tribridge.http.server import HttpServer
from tribridge.ops import heap
from tribridge.ops.accesslog import AccessLog
from tribridge.registries.base import Registry, RegistryError
from tribridge.routing.directory import ServiceDirectory, unfollow
from tribridge.routing.state import RoutingState, build_idl, build_state, open_one_registry
from tribridge.streaming.calls import Streams
from tribridge.upstream.pool import PoolSet

log = logging.getLogger("tribridge.config")

#: how long a replaced IDL router / guard stays open for the requests still using it
RETIRE_AFTER = 30.0


class Reloadable(Protocol):
    """What a reload needs of the gateway it reloads (``tribridge.routing.app.Gateway``)."""

    #: the routing state requests read; a reload replaces it whole
    state: RoutingState
    directory: ServiceDirectory
    pools: PoolSet
    #: the main listener (None before ``start``): its limits and access log follow the config
    http: HttpServer | None
    access: AccessLog
    watcher: ConfigWatcher | None
    #: streams over HTTP: a reload hands new streams the new ``streaming:`` settings
    streams: Streams


class Reloads:
    """One gateway's reloads: at most one applied at a time, at most one config parsed at a
    time, counted by outcome, and the components they replaced closed later.

    Why an object: the lock, the counters, the parse in progress and the components still
    retiring are state that outlives any one reload; they belong to the gateway's reloads,
    not to the ``Gateway`` class that owns one of these.
    """

    def __init__(self, gw: Reloadable) -> None:
        self.gw = gw
        #: outcomes since start: "ok", "rejected", "unchanged" (admin API, metrics)
        self.counts: dict[str, int] = {"ok": 0, "rejected": 0, "unchanged": 0}
        self._lock = asyncio.Lock()
        #: the config being parsed in a worker thread (perhaps past its time budget)
        self.parsing: asyncio.Future[GatewayConfig] | None = None
        #: replaced IDL routers and guards: the task closing each later -> its close
        self.retiring: dict[asyncio.Task[None], Awaitable[Any]] = {}

    async def reload(self, cfg: GatewayConfig) -> list[str]:
        """Swap in ``cfg`` without dropping anything; returns warnings (settings that need a
        restart).  Raises ``ConfigError`` (old config kept) when it cannot apply."""
        async with self._lock:
            try:
                warnings = await apply_config(self, cfg)
            except ConfigError:
                self.counts["rejected"] += 1
                raise
            self.counts["ok"] += 1
            if heap.frozen():  # the replaced state may hold cycles: collect, freeze again
                heap.settle()
            return warnings

    async def parse(self, text: str, source: str, budget: float) -> GatewayConfig:
        """``parse_config`` in a worker thread, at most one at a time, within ``budget`` s.

        Why: parsing and validating YAML is pure Python; on the event loop a big body stops
        every request for as long as it takes. In a thread the loop keeps serving. A thread
        cannot be killed, so a parse past its budget is answered at once (ConfigError) and
        keeps the slot until it ends: parses never pile up. Aliases are refused (config
        reader) and bodies bounded (admin.max_body_bytes), so every parse ends in time
        linear in its text.
        """
        busy = self.parsing
        if busy is not None and not busy.done():
            raise ConfigBusy(f"{source}: another config is still being parsed; try again later")
        fut = asyncio.ensure_future(asyncio.to_thread(parse_config, text, source))
        self.parsing = fut
        try:
            return await asyncio.wait_for(asyncio.shield(fut), budget)
        except TimeoutError:
            fut.add_done_callback(_drop_result)
            raise ConfigError(
                f"{source}: parsing took longer than {budget:g}s (admin.parse_timeout); refused"
            ) from None

    async def apply_text(self, text: str, source: str) -> str:
        """Parse (off the event loop), validate and apply; errors are logged and counted,
        never raised."""
        try:
            cfg = await self.parse(text, source, self.gw.state.cfg.admin.parse_timeout)
        except ConfigError as e:
            self.counts["rejected"] += 1
            return self._rejected(e)
        try:
            await self.reload(cfg)  # counts itself
        except ConfigError as e:
            return self._rejected(e)
        if self.gw.watcher is not None:
            self.gw.watcher.last_error = None
        return "ok"

    def _rejected(self, e: ConfigError) -> str:
        if self.gw.watcher is not None:
            self.gw.watcher.last_error = str(e)
        log.error("config reload rejected, old config kept: %s", e)
        return "rejected"

    def later(self, close: Awaitable[Any]) -> None:
        """Await ``close`` after ``RETIRE_AFTER`` s, or at once in ``retire_now``."""
        retiring = self.retiring

        async def run() -> None:
            await asyncio.sleep(RETIRE_AFTER)
            retiring.pop(task, None)
            try:
                await close
            except Exception:
                log.exception("closing a replaced component failed")

        task = asyncio.get_running_loop().create_task(run())
        retiring[task] = close

    async def retire_now(self) -> None:
        """Close every replaced component still retiring (the gateway stops)."""
        for task, close in list(self.retiring.items()):
            task.cancel()
            try:
                await close
            except Exception:
                log.exception("closing a replaced component failed")
        self.retiring.clear()


async def apply_config(reloads: Reloads, cfg: GatewayConfig) -> list[str]:
    """Build what ``cfg`` changes next to what runs, swap ``state``, release the rest."""
    gw = reloads.gw
    old = gw.state
    warnings: list[str] = []
    if (cfg.host, cfg.port) != (old.cfg.host, old.cfg.port):
        warnings.append(
            f"listen address {cfg.host}:{cfg.port} differs from the running "
            f"{old.cfg.host}:{old.cfg.port}; a listen address change needs a restart "
            "(still listening on the old one)"
        )
    if (cfg.admin_host, cfg.admin_port, cfg.admin) != (
        old.cfg.admin_host,
        old.cfg.admin_port,
        old.cfg.admin,
    ):
        warnings.append(
            "admin address and admin protections (token, allowed_hosts, limits, tls) change "
            "only with a restart (admin API unchanged)"
        )
    # the running listeners keep their address and protections: record the ones in force
    cfg.host, cfg.port = old.cfg.host, old.cfg.port
    cfg.admin_host, cfg.admin_port = old.cfg.admin_host, old.cfg.admin_port
    cfg.admin = old.cfg.admin

    # 1. registries: reuse unchanged ones, open and start new or changed ones
    regs: dict[str, Registry] = {}
    started: list[Registry] = []
    try:
        for name, spec in cfg.registries.items():
            prev = old.registries.get(name)
            if prev is not None and old.cfg.registries.get(name) == spec:
                regs[name] = prev
                continue
            reg = open_one_registry(name, spec)
            await reg.start()
            started.append(reg)
            regs[name] = reg
    except (RegistryError, ValueError, OSError) as e:
        for r in started:
            await _close(r)
        raise ConfigError(f"{cfg.source}: registries: {e}") from None

    # 2. services: reuse the unchanged, build and subscribe the rest
    probe = build_state(cfg, {}, regs)
    services, fresh = gw.directory.configure(probe, old)

    # 3. guard (auth, rate limits) and IDL router: kept when their config is unchanged
    #    (rate-limit buckets and cached keys survive), else built anew
    sec = cfg.security
    guard = old.guard
    if cfg.security_digest != old.cfg.security_digest:
        guard = sec.guard()
    idl = old.idl
    same_regs = all(regs.get(n) is r for n, r in old.registries.items()) and len(regs) == len(
        old.registries
    )
    idl_spec = repr((cfg.idl_services, cfg.idl_routes, cfg.auto, cfg.passthrough_headers))
    old_idl_spec = repr(
        (old.cfg.idl_services, old.cfg.idl_routes, old.cfg.auto, old.cfg.passthrough_headers)
    )
    if idl_spec != old_idl_spec or not same_regs:
        idl = build_idl(cfg, guard, gw.pools, gw.streams)
        if idl is not None:
            idl.subscribe(probe.registry_for)
    elif idl is not None:
        idl.guard = guard
    new = build_state(cfg, services, regs, guard, idl)

    # 4. kept services take the new class policy / upstream TLS; auto-routed services that
    #    no longer fit are forgotten (re-created on demand); this and the swap run without
    #    an await in between, so no request sees a mix
    dropped_auto = gw.directory.carry_over(old, new, fresh)

    # 5. the swap
    gw.state = new
    gw.streams.settings = cfg.streaming  # new streams use the new limits; open ones keep theirs
    _update_settings(gw, cfg)

    # 6. release what the old state alone held
    gw.directory.retire(old, new, dropped_auto)
    if old.idl is not None and old.idl is not idl:
        for isvc in old.idl.services.values():
            unfollow(old.registry_for(isvc.cfg), isvc)
        reloads.later(old.idl.close())  # requests in flight on it finish first
    if old.guard is not None and old.guard is not guard:
        reloads.later(old.guard.close())
    live = {id(r) for r in regs.values()}
    for r in old.registries.values():
        if id(r) not in live:
            await _close(r)
    log.info(
        "config %s applied (was %s): %d services (%d rebuilt), %d routes%s",
        new.version,
        old.version,
        len(services),
        len(fresh),
        len(cfg.routes),
        "".join(f"; {w}" for w in warnings),
    )
    return warnings


async def _close(reg: Registry) -> None:
    try:
        await reg.close()
    except Exception:
        log.exception("closing registry %s failed", reg.name)


def _update_settings(gw: Reloadable, cfg: GatewayConfig) -> None:
    """Settings objects shared with live pools and the listener change in place."""
    target = gw.pools.settings
    for f in dataclasses.fields(cfg.upstream):
        setattr(target, f.name, getattr(cfg.upstream, f.name))
    cfg.upstream = target
    if gw.http is not None:
        fresh = HttpLimits(**cfg.limits)
        for f in dataclasses.fields(fresh):  # new connections read these
            setattr(gw.http.limits, f.name, getattr(fresh, f.name))
        gw.http.access_log = gw.access if cfg.access_log else None


class ConfigWatcher:
    """Polls one file (stat every ``interval`` s, read and hash only when the stat changed)
    and applies it; ``check_now()`` forces a read (SIGHUP)."""

    def __init__(self, reloads: Reloads, path: str, interval: float | None = None) -> None:
        self.reloads = reloads
        self.path = path
        state = reloads.gw.state
        self.interval = state.cfg.watch_interval if interval is None else interval
        self._stat = self._stat_now()
        self._digest = state.version
        self._task: asyncio.Task[None] | None = None
        self._kick = asyncio.Event()
        self.last_error: str | None = None
        self.last_check = 0.0

    def _stat_now(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def check_now(self) -> None:
        self._kick.set()

    async def _run(self) -> None:
        while True:
            timeout = self.interval if self.interval > 0 else None
            forced = False
            try:
                await asyncio.wait_for(self._kick.wait(), timeout)
                forced = True
            except TimeoutError:
                pass
            self._kick.clear()
            try:
                await self.check(forced)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("config check failed")

    async def check(self, forced: bool = False) -> str:
        """-> "ok", "unchanged" or "rejected" (the old config then stays)."""
        self.last_check = time.time()
        st = self._stat_now()
        if not forced and st == self._stat:
            return "unchanged"
        try:
            for _ in range(READ_ATTEMPTS):
                text = await asyncio.to_thread(_read, self.path)
                after = self._stat_now()
                if after == st:
                    break
                # written while we read (an editor truncates, then writes): a half-written
                # file may be valid YAML that drops routes, so read it again once it settles
                st = after
                await asyncio.sleep(SETTLE)
            else:
                self._stat = None  # still changing: the next poll reads it again
                log.warning("config reload: %s keeps changing; read again later", self.path)
                return "unchanged"
        except OSError as e:
            self._stat = st
            self.last_error = f"{self.path}: cannot read: {e.strerror}"
            log.error("config reload rejected, old config kept: %s", self.last_error)
            self.reloads.counts["rejected"] += 1
            return "rejected"
        self._stat = st
        if not text.strip():
            # what a file looks like between an editor's truncate and its write; a config
            # that really drops everything says so (e.g. ``routes: []``)
            log.warning("config reload: %s is empty; not applied (old config kept)", self.path)
            return "unchanged"
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        if digest == self._digest:
            if forced:
                log.warning("config reload: %s unchanged (version %s)", self.path, digest)
                self.reloads.counts["unchanged"] += 1
            return "unchanged"
        self._digest = digest
        return await self.reloads.apply_text(text, self.path)


#: reads of a file that changed while being read, before the watcher waits for the next poll
READ_ATTEMPTS = 5
#: seconds between those reads
SETTLE = 0.05


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


class ConfigBusy(ConfigError):
    """Another config is still being parsed (perhaps past its time budget): try later."""


def _drop_result(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()  # retrieved: no "exception was never retrieved" noise
