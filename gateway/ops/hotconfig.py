"""Hot config: a changed file (polled), SIGHUP or ``PUT /config`` becomes a new routing state.

Nothing is reloaded: the new config is parsed and validated, the parts that changed are
built next to the running ones, and one reference (``Gateway.state``) is swapped.

* Listeners never restart and client connections are never closed.  The listen address
  cannot change without a restart (a warning says so and the old address stays).
* Upstream pools are keyed by provider address and shared by every state, so provider
  connections survive any config change; changed ``upstream`` settings are copied into the
  shared settings object (``max_payload`` applies to new connections).
* A service whose config and registry are unchanged keeps its ``Service`` object (balancer
  state, cached request templates, registry subscription).  A changed one gets a new
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
from typing import TYPE_CHECKING, Any

from tribridge.config.model import ConfigError, GatewayConfig, parse_config
from tribridge.config.services import ServiceConfig
from tribridge.http.messages import HttpLimits
from tribridge.invoke.invoker import Service
from tribridge.registries.base import Registry, RegistryError

if TYPE_CHECKING:
    from tribridge.routing.app import Gateway

log = logging.getLogger("tribridge.config")


def service_fingerprint(sc: ServiceConfig) -> str:
    """Equal for configs that would behave identically (TypeRegistry has no ``__eq__``)."""
    types = sorted((n, repr(d)) for n, d in sc.types.defs.items())
    return repr(dataclasses.replace(sc, types=None)) + repr(types)  # type: ignore[arg-type]


async def apply_config(gw: Gateway, cfg: GatewayConfig) -> list[str]:
    from tribridge.routing.app import build_idl, build_state, open_one_registry

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
    services: dict[str, Service] = {}
    fresh: list[Service] = []
    probe = build_state(cfg, {}, regs)
    for sc in cfg.services:
        prev_svc = old.services.get(sc.interface)
        reg = probe.registry_for(sc)
        if (
            prev_svc is not None
            and service_fingerprint(prev_svc.cfg) == service_fingerprint(sc)
            and old.registry_for(prev_svc.cfg) is reg
        ):
            services[sc.interface] = prev_svc
            continue
        svc = gw._new_service(probe, sc)
        gw._subscribe(probe, svc)
        fresh.append(svc)
        services[sc.interface] = svc

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
    for svc in services.values():
        if svc not in fresh:
            gw.secure_service(new, svc)  # class policy / upstream TLS of the new config

    # 4. auto-routed services that no longer fit are forgotten (re-created on demand);
    #    this and the swap run without an await in between, so no request sees a mix
    dropped_auto = []
    for key, svc in list(gw._auto.items()):
        iface = svc.cfg.interface  # keys are "interface" or "group/interface"
        keep = (
            new.auto is not None
            and iface not in services
            and new.exposure.service(iface, new.registry_name(svc.cfg))
            and old.registry_for(svc.cfg) is new.registry_for(svc.cfg)
        )
        if not keep:
            dropped_auto.append(svc)
            del gw._auto[key]
        else:
            gw.secure_service(new, svc)

    # 5. the swap
    gw.state = new
    if cfg.streaming is not None:  # new streams use the new limits; open ones keep theirs
        gw.streams.settings = cfg.streaming
    _update_settings(gw, cfg)

    # 6. release what the old state alone held
    kept = {id(s) for s in services.values()}
    for svc in old.services.values():
        if id(svc) not in kept:
            _unsubscribe(old.registry_for(svc.cfg), svc)
    for svc in dropped_auto:
        _unsubscribe(old.registry_for(svc.cfg), svc)
    if old.idl is not None and old.idl is not idl:
        for isvc in old.idl.services.values():
            _unsubscribe(old.registry_for(isvc.cfg), isvc)
        _later(gw, old.idl.close())  # requests in flight on it finish first
    if old.guard is not None and old.guard is not guard:
        _later(gw, old.guard.close())
    live = {id(r) for r in regs.values()}
    for r in old.registries.values():
        if id(r) not in live:
            await _close(r)
    log.warning(
        "config %s applied (was %s): %d services (%d rebuilt), %d routes%s",
        new.version,
        old.version,
        len(services),
        len(fresh),
        len(cfg.routes),
        "".join(f"; {w}" for w in warnings),
    )
    return warnings


#: how long a replaced IDL router / guard stays open for the requests still using it
RETIRE_AFTER = 30.0


def _later(gw: Gateway, close: Any) -> None:
    """Await ``close`` after ``RETIRE_AFTER`` s, or at once in ``retire_now`` (gateway stop)."""
    retiring: dict[asyncio.Task[None], Any] = gw.__dict__.setdefault("_retiring", {})

    async def run() -> None:
        await asyncio.sleep(RETIRE_AFTER)
        retiring.pop(task, None)
        try:
            await close
        except Exception:
            log.exception("closing a replaced component failed")

    task = asyncio.get_running_loop().create_task(run())
    retiring[task] = close


async def retire_now(gw: Gateway) -> None:
    retiring: dict[asyncio.Task[None], Any] = gw.__dict__.get("_retiring", {})
    for task, close in list(retiring.items()):
        task.cancel()
        try:
            await close
        except Exception:
            log.exception("closing a replaced component failed")
    retiring.clear()


def _unsubscribe(reg: Registry | None, svc: Any) -> None:
    if reg is not None:
        try:
            reg.unsubscribe(svc.cfg.key, svc.update)
            svc.release()
        except Exception:
            log.exception("unsubscribing %s failed", svc.cfg.key)


async def _close(reg: Registry) -> None:
    try:
        await reg.close()
    except Exception:
        log.exception("closing registry %s failed", reg.name)


def _update_settings(gw: Gateway, cfg: GatewayConfig) -> None:
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

    def __init__(self, gw: Gateway, path: str, interval: float | None = None) -> None:
        self.gw = gw
        self.path = path
        self.interval = gw.cfg.watch_interval if interval is None else interval
        self._stat = self._stat_now()
        self._digest = gw.state.version
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
            self.gw.reload_counts["rejected"] += 1
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
                self.gw.reload_counts["unchanged"] += 1
            return "unchanged"
        self._digest = digest
        return await apply_text(self.gw, text, self.path)


#: reads of a file that changed while being read, before the watcher waits for the next poll
READ_ATTEMPTS = 5
#: seconds between those reads
SETTLE = 0.05


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


class ConfigBusy(ConfigError):
    """Another config is still being parsed (perhaps past its time budget): try later."""


async def parse_off_loop(gw: Gateway, text: str, source: str, budget: float) -> GatewayConfig:
    """``parse_config`` in a worker thread, at most one at a time, within ``budget`` seconds.

    Why: parsing and validating YAML is pure Python; on the event loop a big body stops every
    request for as long as it takes. In a thread the loop keeps serving. A thread cannot be
    killed, so a parse past its budget is answered at once (ConfigError) and keeps the slot
    until it ends: parses never pile up. Aliases are refused (config.py) and bodies bounded
    (admin.max_body_bytes), so every parse ends in time linear in its text.
    """
    busy: asyncio.Future[Any] | None = gw.__dict__.get("_parsing")
    if busy is not None and not busy.done():
        raise ConfigBusy(f"{source}: another config is still being parsed; try again later")
    fut = asyncio.ensure_future(asyncio.to_thread(parse_config, text, source))
    gw.__dict__["_parsing"] = fut
    try:
        return await asyncio.wait_for(asyncio.shield(fut), budget)
    except TimeoutError:
        fut.add_done_callback(_drop_result)
        raise ConfigError(
            f"{source}: parsing took longer than {budget:g}s (admin.parse_timeout); refused"
        ) from None


def _drop_result(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()  # retrieved: no "exception was never retrieved" noise


async def apply_text(gw: Gateway, text: str, source: str) -> str:
    """Parse (off the event loop), validate and apply; errors are logged and counted, never
    raised."""
    try:
        cfg = await parse_off_loop(gw, text, source, gw.cfg.admin.parse_timeout)
    except ConfigError as e:
        gw.reload_counts["rejected"] += 1
        return _rejected(gw, e)
    try:
        await gw.reload(cfg)  # counts itself
    except ConfigError as e:
        return _rejected(gw, e)
    if gw.watcher is not None:
        gw.watcher.last_error = None
    return "ok"


def _rejected(gw: Gateway, e: ConfigError) -> str:
    if gw.watcher is not None:
        gw.watcher.last_error = str(e)
    log.error("config reload rejected, old config kept: %s", e)
    return "rejected"
