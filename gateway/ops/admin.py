"""The admin API: its own listener (127.0.0.1 by default), our HTTP server, JSON answers.

    GET /routes       configured routes and the auto-route settings
    GET /services     endpoints per service with their pool state
    GET /registries   status, connected, last sync per registry
    GET /config       version (hash), source, loaded-at, reload counters, last error
    PUT /config       YAML body: validated and applied (400 with the located error, else 200)
    GET /counters     request totals by status and service, connections
    GET /metrics      Prometheus text format
    GET /healthz, /readyz

It shares the gateway's event loop and reads the same ``state`` the data plane does; a config
body is parsed and validated in a worker thread with a time budget (``admin.parse_timeout``),
never on that loop, so a big body cannot stall the data plane.

Safe by default (docs/security.md "Admin API"), in this order:

1. **Host allowlist** on every request: the loopback names, the listener's own address and
   ``admin.allowed_hosts``; anything else is 403 (a DNS-rebinding page cannot use a
   browser on this host to reach the API under its own name).
2. **Mutations** (every method but GET/HEAD) from another site are refused: a cross-site
   ``Origin`` or ``Sec-Fetch-Site`` is 403. No CORS headers are ever sent.
3. **Mutations need credentials**: ``Authorization: Bearer <admin token>`` (compared in
   constant time) or a client certificate verified by ``admin.tls.client_ca``. With neither
   configured, mutations are refused (403 ``admin_mutations_disabled``): fail closed.
4. Bodies over ``admin.max_body_bytes`` are 413; YAML anchors/aliases are refused (config.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import time
from typing import Any, Protocol

import orjson
from tribridge.config.admin import ADMIN_TOKEN_ENV, AdminConfig
from tribridge.config.model import ConfigError, GatewayConfig
from tribridge.http.messages import HttpLimits, Request, Response, error_response
from tribridge.http.server import HttpServer
from tribridge.invoke.invoker import Service
from tribridge.ops.hotconfig import ConfigBusy, ConfigWatcher, Reloads
from tribridge.ops.metrics import RequestStats
from tribridge.routing.state import RoutingState
from tribridge.upstream.pool import PoolSet

log = logging.getLogger("tribridge.admin")
PROM_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: set in worker processes (``tribridge run --workers``): PUT /config would change one
#: worker only, so it is refused there in favour of the file + SIGHUP
WORKER_ENV = "TRIBRIDGE_WORKER"


def _json(obj: Any, status: int = 200) -> Response:
    return Response(status, orjson.dumps(obj, default=str, option=orjson.OPT_INDENT_2))


#: the only methods that need no credentials; every other one (PUT, POST, PATCH, DELETE,
#: OPTIONS, anything unknown) is judged as a mutation: credentials and a same-site origin
READS = frozenset({"GET", "HEAD"})
#: Host names every admin listener answers to (plus its own address and allowed_hosts)
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
_WILDCARD = frozenset({"", "0.0.0.0", "::", "[::]"})


def how_to_authorize() -> str:
    """One line for ``tribridge run`` and the 403: how to allow admin mutations."""
    return (
        f"set admin.token_file (or admin.token, or ${ADMIN_TOKEN_ENV}) to a secret of 16+ "
        "characters and send 'Authorization: Bearer <token>', or give admin.tls a client_ca "
        "for mTLS"
    )


def auth_summary(a: AdminConfig) -> str:
    """How admin mutations are authorized, for the startup line (never the secret)."""
    ways = []
    if a.mtls:
        ways.append("a client certificate (admin.tls.client_ca)")
    if a.token is not None:
        ways.append(f"a bearer token from {a.token_source}")
    if not ways:
        return "admin mutations (PUT /config) are disabled: " + how_to_authorize()
    return "admin mutations (PUT /config) need " + " or ".join(ways)


def _split_host(value: str) -> tuple[str, str | None]:
    """``host[:port]`` / ``[v6]:port`` -> (lower-cased host, port text or None). The port
    text is returned as written (the caller refuses one that is not digits)."""
    v = value.strip().lower()
    if v.startswith("["):
        end = v.find("]")
        if end < 0:
            return v, None
        host, rest = v[: end + 1], v[end + 1 :]
        return host, (rest[1:] if rest.startswith(":") else rest) or None
    host, sep, port = v.rpartition(":")
    return (host, port) if sep else (v, None)


class Administered(Protocol):
    """What the admin API reads and changes of a gateway (``tribridge.routing.app.Gateway``)."""

    state: RoutingState
    pools: PoolSet
    http: HttpServer | None
    stats: RequestStats
    started: float
    reloads: Reloads
    watcher: ConfigWatcher | None

    def all_services(self) -> dict[str, Service]: ...
    def registry_status(self) -> dict[str, dict[str, Any]]: ...
    def metrics_text(self) -> bytes: ...
    def ready(self) -> Response: ...
    async def reload(self, cfg: GatewayConfig) -> list[str]: ...


class AdminServer:
    def __init__(self, gw: Administered) -> None:
        self.gw = gw
        #: fixed at start: changing who may administer needs a restart, never a PUT
        self.settings: AdminConfig = gw.state.cfg.admin
        self._token_digest = (
            hashlib.sha256(self.settings.token.encode()).digest()
            if self.settings.token is not None
            else None
        )
        self.http = HttpServer(self.handle, HttpLimits(max_body_bytes=self.settings.max_body_bytes))
        self._hosts: frozenset[str] = frozenset()
        self._exact: frozenset[str] = frozenset()
        self._port = ""

    async def start(self, host: str, port: int) -> None:
        tls = self.settings.tls
        await self.http.start(host, port, ssl=tls.context() if tls is not None else None)
        self._port = str(self.http.port)
        own = {host.lower()} - _WILDCARD
        own |= {f"[{h}]" for h in own if ":" in h and not h.startswith("[")}
        named = frozenset(self.settings.allowed_hosts)
        self._exact = frozenset(h for h in named if _split_host(h)[1] is not None)
        self._hosts = LOOPBACK_HOSTS | own | (named - self._exact)

    @property
    def port(self) -> int:
        return self.http.port

    async def stop(self) -> None:
        await self.http.shutdown(1.0)

    def _host_ok(self, value: str | None, same_port: bool = False) -> bool:
        """``value`` (a Host header, or with ``same_port`` an Origin's authority) names
        this listener.

        The Host's port is not checked: a rebinding page is told apart by its name, and a
        port-forward (``kubectl port-forward 19901:9901``) changes the port legitimately. An
        Origin must match the port too: a page on another local port is another site."""
        if not value:
            return False
        host, port = _split_host(value)
        if port is not None and not (port.isascii() and port.isdigit()):
            return False
        if value.lower() in self._exact:  # an allowed_hosts entry written with its port
            return True
        return host in self._hosts and (port == self._port if same_port else True)

    def _refuse(self, req: Request) -> Response | None:
        """The Host, same-site and credential checks; None when the request may proceed."""
        h = req.headers
        if not self._host_ok(h.get("host")):
            return error_response(
                403,
                "host_not_allowed",
                "the Host header does not name this admin listener; add the name to "
                "admin.allowed_hosts if it is yours",
            )
        if req.method in READS:
            return None
        origin = h.get("origin")
        if origin is not None:
            scheme, sep, authority = origin.partition("://")
            if (
                not sep
                or scheme.lower() not in ("http", "https")
                or not self._host_ok(authority, same_port=True)
            ):
                return error_response(403, "cross_site", "cross-site admin requests are refused")
        site = h.get("sec-fetch-site")
        if site is not None and site.lower() not in ("same-origin", "none"):
            return error_response(403, "cross_site", "cross-site admin requests are refused")
        if self.settings.mtls:
            return None  # the listener required and verified a client certificate
        if self._token_digest is None:
            return error_response(
                403,
                "admin_mutations_disabled",
                "admin mutations are disabled until credentials are configured: "
                + how_to_authorize(),
            )
        kind, _, given = h.get("authorization", "").strip().partition(" ")
        digest = hashlib.sha256(given.strip().encode()).digest()
        # compare digests: constant time whatever the length of what the client sent
        if kind.lower() != "bearer" or not hmac.compare_digest(digest, self._token_digest):
            resp = error_response(401, "unauthenticated", "a valid admin bearer token is required")
            resp.headers.append(("www-authenticate", 'Bearer realm="tribridge-admin"'))
            return resp
        return None

    def handle(self, req: Request) -> Any:
        refused = self._refuse(req)
        if refused is not None:
            return refused
        path = req.path  # canonical (gateway/http/canonical.py): no trailing slash, no '//'
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
                "reloads": gw.reloads.counts,
                "restart_needed_for": ["listen", "admin"],
                "admin_mutations": self._mutations_by(),
            }
        )

    def _mutations_by(self) -> str:
        s = self.settings
        return "mtls" if s.mtls else "token" if s.token is not None else "disabled"

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
        return self.gw.ready()

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
            cfg = await self.gw.reloads.parse(text, "<PUT /config>", self.settings.parse_timeout)
        except ConfigBusy as e:
            return error_response(503, "config_busy", str(e))
        except ConfigError as e:
            self.gw.reloads.counts["rejected"] += 1
            log.error("PUT /config rejected, old config kept: %s", e)
            return error_response(400, "invalid_config", str(e))
        try:
            warnings = await asyncio.shield(self.gw.reload(cfg))
        except ConfigError as e:
            log.error("PUT /config rejected, old config kept: %s", e)
            return error_response(400, "invalid_config", str(e))
        st = self.gw.state
        return _json({"version": st.version, "loaded_at": st.loaded_at, "warnings": warnings})
