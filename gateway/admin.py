"""The admin API: its own listener (127.0.0.1 by default), our HTTP server, JSON answers.

    GET /routes       configured routes and the auto-route settings
    GET /services     endpoints per service with their pool state
    GET /registries   status, connected, last sync per registry
    GET /config       version (hash), source, loaded-at, reload counters, last error
    PUT /config       YAML body: validated and applied (400 with the located error, else 200)
    GET /counters     request totals by status and service, connections
    GET /metrics      Prometheus text format
    GET /healthz, /readyz

It shares the gateway's event loop and reads the same ``state`` the data plane does.  Keep it
on loopback (or a private interface): ``PUT /config`` changes routing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING, Any

import orjson

from .config import ConfigError, parse_config
from .http_server import HttpServer, Request, Response, error_response

if TYPE_CHECKING:
    from .app import Gateway

log = logging.getLogger("tribridge.admin")
PROM_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: set in worker processes (``tribridge run --workers``): PUT /config would change one
#: worker only, so it is refused there in favour of the file + SIGHUP
WORKER_ENV = "TRIBRIDGE_WORKER"


def _json(obj: Any, status: int = 200) -> Response:
    return Response(status, orjson.dumps(obj, default=str, option=orjson.OPT_INDENT_2))


class AdminServer:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.http = HttpServer(self.handle)

    async def start(self, host: str, port: int) -> None:
        await self.http.start(host, port)

    @property
    def port(self) -> int:
        return self.http.port

    async def stop(self) -> None:
        await self.http.shutdown(1.0)

    def handle(self, req: Request) -> Any:
        path = req.path.rstrip("/") or "/"
        if path == "/config" and req.method == "PUT":
            return self._put_config(req)
        if req.method not in ("GET", "HEAD"):
            return error_response(405, "method_not_allowed", f"{req.method} {path}")
        page = self._pages.get(path)
        if page is None:
            return error_response(
                404, "not_found", f"no admin page {path}; try: {', '.join(sorted(self._pages))}"
            )
        return page(self)

    # ---- pages ---------------------------------------------------------------------------

    def _routes(self) -> Response:
        st = self.gw.state
        routes = [
            {
                "method": r.http_method,
                "path": r.path,
                "service": r.service,
                "call": r.method,
                "params": [
                    {"from": p.source, "name": p.name, "type": str(p.type) if p.type else None}
                    for p in r.params
                ],
            }
            for r in st.cfg.routes
        ]
        auto = st.auto
        return _json(
            {
                "version": st.version,
                "routes": routes,
                "auto_routes": None
                if auto is None
                else {"prefix": auto.prefix, "expose": auto.expose},
            }
        )

    def _services(self) -> Response:
        gw = self.gw
        pools: dict[tuple[str, int], list[dict[str, object]]] = {}
        for pool in list(gw.pools.pools.values()):  # keyed by address and TLS profile
            pools.setdefault((pool.host, pool.port), []).append(pool.status())
        out = {}
        configured = gw.state.services
        for name, svc in sorted(gw.all_services().items()):
            snap = svc.snapshot
            out[name] = {
                "key": str(svc.cfg.key),
                "auto": name not in configured,
                "registry": svc.cfg.registry,
                "loadbalance": svc.cfg.loadbalance,
                "pending": snap.pending,
                "healthy": snap.healthy,
                "error": snap.error,
                "snapshot_at": snap.at,
                "signatures": getattr(snap.definition, "source", None),
                "endpoints": [
                    {
                        "address": f"{e.host}:{e.port}",
                        "protocol": e.protocol,
                        "version": e.version,
                        "group": e.group,
                        "weight": e.weight,
                        "pools": pools.get((e.host, e.port), []),
                    }
                    for e in snap.endpoints
                ],
            }
        return _json({"services": out})

    def _registries(self) -> Response:
        return _json({"registries": self.gw.registry_status()})

    def _config(self) -> Response:
        gw = self.gw
        st = gw.state
        w = gw.watcher
        return _json(
            {
                "version": st.version,
                "source": st.cfg.source,
                "loaded_at": st.loaded_at,
                "pid": os.getpid(),
                "worker": os.environ.get(WORKER_ENV),
                "listen": f"{st.cfg.host}:{st.cfg.port}",
                "watching": None
                if w is None
                else {"path": w.path, "interval": w.interval, "last_check": w.last_check},
                "last_error": w.last_error if w is not None else None,
                "reloads": gw.reload_counts,
                "restart_needed_for": ["listen", "admin"],
            }
        )

    def _counters(self) -> Response:
        gw = self.gw
        body = gw.stats.totals()
        body["uptime"] = round(time.time() - gw.started, 3)
        body["http_connections"] = gw.http.active_connections if gw.http else 0
        body["upstream_connections"] = {
            p.address: sum(1 for c in p.conns if not c.closed) for p in gw.pools.pools.values()
        }
        body["pid"] = os.getpid()
        body["config_version"] = gw.state.version
        return _json(body)

    def _metrics(self) -> Response:
        return Response(200, self.gw.metrics_text(), content_type=PROM_CONTENT_TYPE)

    def _healthz(self) -> Response:
        return Response(200, b'{"status":"ok"}')

    def _readyz(self) -> Response:
        return self.gw._ready(self.gw.state)

    _pages = {
        "/routes": _routes,
        "/services": _services,
        "/registries": _registries,
        "/config": _config,
        "/counters": _counters,
        "/metrics": _metrics,
        "/healthz": _healthz,
        "/readyz": _readyz,
    }

    async def _put_config(self, req: Request) -> Response:
        if os.environ.get(WORKER_ENV):
            return error_response(
                409,
                "per_worker",
                "this gateway runs with --workers: PUT /config would change one worker only; "
                "edit the config file and send SIGHUP to the parent process",
            )
        try:
            text = req.body.decode("utf-8")
        except UnicodeDecodeError:
            return error_response(400, "invalid_config", "config body is not UTF-8")
        try:
            cfg = parse_config(text, "<PUT /config>")
        except ConfigError as e:
            self.gw.reload_counts["rejected"] += 1
            log.error("PUT /config rejected, old config kept: %s", e)
            return error_response(400, "invalid_config", str(e))
        try:
            warnings = await asyncio.shield(self.gw.reload(cfg))
        except ConfigError as e:
            log.error("PUT /config rejected, old config kept: %s", e)
            return error_response(400, "invalid_config", str(e))
        st = self.gw.state
        return _json({"version": st.version, "loaded_at": st.loaded_at, "warnings": warnings})
