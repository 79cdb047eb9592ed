"""Call Dubbo services from Python, whatever registry the gateway uses.

Through a gateway (its auto routes, ``POST /{interface}/{method}``)::

    from tribridge import Client
    c = Client("http://127.0.0.1:8080")
    c.call("com.x.Greeter", "sayHello", "world", types=["java.lang.String"])

or straight to a provider with the gateway's own codecs and connection pool::

    c = Client.direct("dubbo://127.0.0.1:20880")     # or tri://, static://h:p?protocol=tri

``AsyncClient`` has the same API with ``await``.  Failures raise ``CallError`` carrying the
HTTP status and the gateway's JSON error (``code``, ``message``, ``exception`` ...), the same
in both modes.
"""

from __future__ import annotations

import asyncio
import http.client
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from tribridge.invoke.jsonmap import dumps, loads

Types = str | Sequence[str] | None


class CallError(Exception):
    """A call that did not return a value: ``status`` (HTTP), ``error`` (the JSON error)."""

    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(f"{status} {error.get('code')}: {error.get('message')}")
        self.status = status
        self.error = error
        self.code = error.get("code")


# ---- call targets: one grammar for every scheme -----------------------------------------------

#: Schemes that name one provider instance: the protocol it speaks (``static://`` is the
#: static registry's form, Dubbo2 unless ``?protocol=tri``).
DIRECT_SCHEMES = ("dubbo", "tri", "static")
TARGET_GRAMMAR = (
    "SCHEME://HOST:PORT[/PATH] SERVICE.METHOD (or SCHEME://HOST:PORT[/PATH]/SERVICE METHOD)"
)


class TargetError(ValueError):
    """A call target that names no provider or registry; the message is one line."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where ``tribridge call`` (and ``Client.direct``) sends a call.

    ``endpoint`` (host, port, protocol) for a direct scheme, else ``registry_url``: the
    target without the service, which ``open_registry`` understands (eureka's ``/eureka``
    path and every ``?query`` stay)."""

    scheme: str
    interface: str
    method: str
    endpoint: tuple[str, int, str] | None = None
    registry_url: str | None = None


def _schemes() -> list[str]:
    from tribridge.registries import SCHEMES

    return [*DIRECT_SCHEMES, *SCHEMES]


def direct_endpoint(url: str) -> tuple[str, int, str]:
    """``dubbo://h:p``, ``tri://h:p``, ``static://h:p[?protocol=tri]`` -> (host, port,
    protocol)."""
    u = urlsplit(url)
    scheme = u.scheme.lower()
    if scheme not in DIRECT_SCHEMES:
        raise TargetError(f"expected {'://, '.join(DIRECT_SCHEMES)}://HOST:PORT, got {url!r}")
    try:
        host, port = u.hostname, u.port
    except ValueError:
        host, port = None, None
    if not host or not port:
        raise TargetError(f"{scheme}:// needs HOST:PORT, got {url!r}")
    protocol = scheme
    if scheme == "static":
        protocol = (parse_qs(u.query).get("protocol") or ["dubbo"])[-1]
        if protocol not in ("dubbo", "tri"):
            raise TargetError(f"static://: protocol must be dubbo or tri, got {protocol!r}")
    return host, port, protocol


def parse_target(target: str, service_method: str) -> Target:
    """``SCHEME://HOST:PORT[/PATH] SERVICE.METHOD`` for every scheme (``dubbo``, ``tri``,
    ``static``, and each registry: ``zookeeper``, ``nacos``, ``eureka``, ``kubernetes`` ...).

    The older form with the service as the target's last path segment and a bare METHOD
    (``zookeeper://h:2181/com.x.Svc sayHello``) still works, and so does naming the service
    in both places when they agree.  A registry's own path (``eureka://h:8761/eureka/v2``)
    is kept for the registry.  Java method names have no ".", so a "." in the second word
    always separates SERVICE from METHOD."""
    u = urlsplit(target)
    scheme = u.scheme.lower()
    if not scheme or "://" not in target:
        raise TargetError(f"expected {TARGET_GRAMMAR}, got {target!r}")
    schemes = _schemes()
    if scheme not in schemes:
        raise TargetError(
            f"unknown scheme {scheme!r} in {target!r}: expected one of {', '.join(schemes)}"
        )
    segments = [s for s in u.path.split("/") if s]
    iface, _, method = service_method.rpartition(".")
    if iface:  # SERVICE.METHOD: a path ending in that service names it once more
        if segments and segments[-1] == iface:
            segments.pop()
        elif segments and (scheme in DIRECT_SCHEMES or "." in segments[-1]):
            raise TargetError(
                f"{target!r} names service {'/'.join(segments)} but the call names {iface}"
            )
    elif segments:  # TARGET/SERVICE METHOD
        iface = segments.pop()
    if not iface or not method or "/" in service_method:
        raise TargetError(f"expected {TARGET_GRAMMAR}, got {target!r} {service_method!r}")
    if scheme in DIRECT_SCHEMES:
        if segments:
            raise TargetError(f"{scheme}:// takes no path before the service, got {target!r}")
        return Target(scheme, iface, method, endpoint=direct_endpoint(target))
    path = "/" + "/".join(segments) if segments else ""
    query = f"?{u.query}" if u.query else ""
    return Target(scheme, iface, method, registry_url=f"{scheme}://{u.netloc}{path}{query}")


def _types_header(types: Types) -> str | None:
    if types is None:
        return None
    return types if isinstance(types, str) else ",".join(types)


def _headers(
    types: Types,
    version: str | None,
    group: str | None,
    timeout: float | None,
    extra: dict[str, str] | None,
) -> dict[str, str]:
    h = {"content-type": "application/json"}
    t = _types_header(types)
    if t is not None:
        h["x-tribridge-types"] = t
    if version is not None:
        h["x-dubbo-version"] = version
    if group is not None:
        h["x-dubbo-group"] = group
    if timeout is not None:
        h["x-dubbo-timeout"] = str(max(1, int(timeout * 1000)))
    if extra:
        h.update(extra)
    return h


def _answer(status: int, raw: bytes) -> Any:
    try:
        body = loads(raw) if raw else None
    except ValueError:
        msg = raw[:200].decode("latin-1")
        raise CallError(status, {"code": "bad_response", "message": msg}) from None
    if status == 200:
        return body
    err = body.get("error") if isinstance(body, dict) else None
    raise CallError(
        status, err if isinstance(err, dict) else {"code": "http", "message": str(body)}
    )


class _Direct:
    """Provider calls with the gateway's Service/PoolSet on an event loop."""

    def __init__(self, url: str, timeout: float) -> None:
        self.host, self.port, self.protocol = direct_endpoint(url)
        self.timeout = timeout
        self._pools: Any = None
        self._services: dict[tuple[str, str, str, str | None], Any] = {}

    async def call(
        self,
        interface: str,
        method: str,
        args: list[Any],
        types: Types,
        version: str | None,
        group: str | None,
        timeout: float | None,
        attachments: dict[str, str] | None,
    ) -> Any:
        from tribridge.codecs.hessian2 import HessianError, parse_types
        from tribridge.config.services import MethodConfig, ServiceConfig
        from tribridge.config.upstream import UpstreamSettings
        from tribridge.errors import GatewayError
        from tribridge.invoke.invoker import Call, Service
        from tribridge.registries.base import Endpoint, ServiceKey, Snapshot
        from tribridge.upstream.pool import PoolSet

        if self._pools is None:
            self._pools = PoolSet(UpstreamSettings(connect_timeout=min(self.timeout, 5.0)))
        try:
            jtypes = (
                parse_types(types if isinstance(types, str) else list(types))
                if types is not None
                else None
            )
        except HessianError as e:
            raise CallError(400, {"code": "bad_types", "message": str(e)}) from None
        key = (
            interface,
            version or "",
            group or "",
            _types_header(types) + method if types is not None else None,
        )
        svc = self._services.get(key)
        if svc is None:
            cfg = ServiceConfig(
                interface, version or "", group or "", timeout=self.timeout, retries=0
            )
            if jtypes is not None:
                cfg.methods[method] = MethodConfig(method, jtypes)
            svc = Service(cfg, self._pools)
            ep = Endpoint(self.host, self.port, self.protocol)
            svc.update(Snapshot(ServiceKey(interface), (ep,)))
            self._services[key] = svc
        call = Call(method, list(args), timeout=timeout, attachments=dict(attachments or {}))
        try:
            value = (await svc.invoke(call)).unwrap()
        except GatewayError as e:
            raise CallError(e.status, {"code": e.code, "message": e.message, **e.extra}) from None
        return loads(dumps(value))  # the same JSON view a gateway client gets

    def close(self) -> None:
        if self._pools is not None:
            self._pools.close()


def _gateway_address(url: str) -> tuple[str, int, str]:
    """``http://host:port[/prefix]`` -> (host, port, prefix without trailing slash)."""
    u = urlsplit(url)
    if u.scheme != "http" or not u.hostname:
        raise ValueError(f"expected http://host:port[/prefix], got {url!r}")
    return u.hostname, u.port or 80, u.path.rstrip("/")


class AsyncClient:
    """``await client.call(interface, method, *args, types=...)``."""

    def __init__(
        self, gateway_url: str, *, timeout: float = 10.0, headers: dict[str, str] | None = None
    ) -> None:
        self.host, self.port, self.prefix = _gateway_address(gateway_url)
        self.timeout = timeout
        self.headers = dict(headers or {})
        self._direct: _Direct | None = None
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._lock: asyncio.Lock | None = None

    @classmethod
    def direct(cls, url: str, *, timeout: float = 10.0) -> AsyncClient:
        c = cls.__new__(cls)
        c._direct, c.timeout = _Direct(url, timeout), timeout
        c._conn = None
        c._lock = None
        return c

    async def call(
        self,
        interface: str,
        method: str,
        *args: Any,
        types: Types = None,
        version: str | None = None,
        group: str | None = None,
        timeout: float | None = None,
        attachments: dict[str, str] | None = None,
    ) -> Any:
        if self._direct is not None:
            return await self._direct.call(
                interface, method, list(args), types, version, group, timeout, attachments
            )
        path = f"{self.prefix}/{quote(interface)}/{quote(method)}"
        h = _headers(types, version, group, timeout, {**self.headers, **(attachments or {})})
        status, raw = await asyncio.wait_for(self._post(path, dumps(list(args)), h), self.timeout)
        return _answer(status, raw)

    async def _post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # one keep-alive connection, one request at a time
            for attempt in (0, 1):
                if self._conn is None:
                    self._conn = await asyncio.open_connection(self.host, self.port)
                r, w = self._conn
                head = f"POST {path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\n"
                head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                head += f"content-length: {len(body)}\r\n\r\n"
                try:
                    w.write(head.encode("latin-1") + body)
                    status_line = await r.readuntil(b"\r\n")
                    status = int(status_line.split()[1])
                    length, close = 0, False
                    while True:
                        line = await r.readuntil(b"\r\n")
                        if line == b"\r\n":
                            break
                        name, _, value = line.decode("latin-1").partition(":")
                        name = name.strip().lower()
                        if name == "content-length":
                            length = int(value)
                        elif name == "connection" and value.strip().lower() == "close":
                            close = True
                    data = await r.readexactly(length)
                except (OSError, asyncio.IncompleteReadError) as e:
                    self._drop()
                    if (
                        attempt == 0
                        and isinstance(e, asyncio.IncompleteReadError)
                        and not e.partial
                    ):
                        continue  # the server closed an idle keep-alive connection
                    raise CallError(502, {"code": "connection_failed", "message": str(e)}) from None
                if close:
                    self._drop()
                return status, data
        raise AssertionError("unreachable")

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn[1].close()
            self._conn = None

    async def aclose(self) -> None:
        self._drop()
        if self._direct is not None:
            self._direct.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class Client:
    """The synchronous client: ``client.call(interface, method, *args, types=...)``."""

    def __init__(
        self, gateway_url: str, *, timeout: float = 10.0, headers: dict[str, str] | None = None
    ) -> None:
        self.host, self.port, self.prefix = _gateway_address(gateway_url)
        self.timeout = timeout
        self.headers = dict(headers or {})
        self._http: http.client.HTTPConnection | None = None
        self._direct: _Direct | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @classmethod
    def direct(cls, url: str, *, timeout: float = 10.0) -> Client:
        """Straight to one provider (``dubbo://host:port``); calls run on a private loop."""
        from tribridge.http.server import new_event_loop

        c = cls.__new__(cls)
        c.timeout = timeout
        c._http = None
        c._lock = threading.Lock()
        c._direct = _Direct(url, timeout)
        c._loop = new_event_loop()
        c._thread = threading.Thread(
            target=c._loop.run_forever, daemon=True, name="tribridge-client"
        )
        c._thread.start()
        return c

    def call(
        self,
        interface: str,
        method: str,
        *args: Any,
        types: Types = None,
        version: str | None = None,
        group: str | None = None,
        timeout: float | None = None,
        attachments: dict[str, str] | None = None,
    ) -> Any:
        if self._direct is not None:
            assert self._loop is not None
            fut = asyncio.run_coroutine_threadsafe(
                self._direct.call(
                    interface, method, list(args), types, version, group, timeout, attachments
                ),
                self._loop,
            )
            return fut.result(self.timeout + 5)
        path = f"{self.prefix}/{quote(interface)}/{quote(method)}"
        h = _headers(types, version, group, timeout, {**self.headers, **(attachments or {})})
        body = dumps(list(args))
        with self._lock:
            for attempt in (0, 1):
                if self._http is None:
                    self._http = http.client.HTTPConnection(
                        self.host, self.port, timeout=self.timeout
                    )
                try:
                    self._http.request("POST", path, body=body, headers=h)
                    r = self._http.getresponse()
                    raw = r.read()
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                    self._http.close()
                    self._http = None
                    if attempt == 0:
                        continue  # an idle keep-alive connection closed by the server
                    raise
                if r.will_close:
                    self._http.close()
                    self._http = None
                return _answer(r.status, raw)
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._direct is not None and self._loop is not None:
            loop = self._loop
            loop.call_soon_threadsafe(self._direct.close)
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(5)
            self._direct = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
