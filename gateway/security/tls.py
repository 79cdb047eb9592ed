"""TLS contexts: HTTPS ingress (optionally mutual) and TLS to Dubbo2 and Triple providers.

Contexts are built once from files at startup, so a missing or unreadable certificate is a
startup error, not a failure of the first request. Both sides require TLS 1.2 or newer.
"""

from __future__ import annotations

import fnmatch
import functools
import ssl
from dataclasses import dataclass, field

from tribridge.registries.base import Endpoint


@dataclass
class ServerTls:
    cert: str
    key: str
    client_ca: str | None = None
    require_client_cert: bool = False

    def context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert, self.key)
        if self.client_ca is not None:
            ctx.load_verify_locations(self.client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED if self.require_client_cert else ssl.CERT_OPTIONAL
        elif self.require_client_cert:
            raise ValueError("require_client_cert needs client_ca")
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx


@dataclass
class ClientTls:
    """TLS to providers matching ``service``/``registry`` globs (first match wins)."""

    service: str = "*"
    registry: str = "*"
    ca: str | None = None  # None: the system's trust store
    cert: str | None = None
    key: str | None = None
    server_name: str | None = None
    verify: bool = True
    _ctx: ssl.SSLContext | None = field(default=None, repr=False, compare=False)
    _h2ctx: ssl.SSLContext | None = field(default=None, repr=False, compare=False)

    def matches(self, service: str, registry: str | None) -> bool:
        return fnmatch.fnmatchcase(service, self.service) and fnmatch.fnmatchcase(
            registry or "", self.registry
        )

    def context(self) -> ssl.SSLContext:
        if self._ctx is None:
            self._ctx = self._build()
        return self._ctx

    def _build(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert is not None:
            ctx.load_cert_chain(self.cert, self.key)
        if not self.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def h2_context(self) -> ssl.SSLContext:
        """The same trust and client certificate, offering ALPN ``h2`` (Triple and gRPC
        servers refuse TLS connections that do not negotiate it)."""
        if self._h2ctx is None:
            ctx = self._build()
            ctx.set_alpn_protocols(["h2"])
            self._h2ctx = ctx
        return self._h2ctx

    def read_pem(self) -> tuple[bytes | None, bytes | None, bytes | None]:
        """(CA, key, certificate chain) file contents, for grpcio's channel credentials."""

        def read(path: str | None) -> bytes | None:
            if path is None:
                return None
            with open(path, "rb") as f:
                return f.read()

        return read(self.ca), read(self.key), read(self.cert)

    @functools.cached_property
    def key_name(self) -> str:
        """Names the profile in pool and connection keys (looked up on every call)."""
        return f"{self.service}|{self.registry}|{self.ca}|{self.cert}|{self.server_name}"


def address_key(host: str, port: int, tls: ClientTls | None) -> tuple[str, int, str]:
    """The key of a connection (pool, channel) to an address: one per TLS profile."""
    return (host, port, tls.key_name if tls is not None else "")


DEFAULT_CLIENT = ClientTls()


def endpoint_wants_tls(ep: Endpoint) -> bool:
    """A provider URL may say it serves TLS (``ssl=true`` / ``ssl-enabled=true``)."""
    md = ep.metadata
    return any(str(md.get(k, "")).lower() == "true" for k in ("ssl", "ssl-enabled", "tls"))


def client_tls_for(
    profiles: list[ClientTls], service: str, registry: str | None, ep: Endpoint
) -> ClientTls | None:
    for p in profiles:
        if p.matches(service, registry):
            return p
    return DEFAULT_CLIENT if endpoint_wants_tls(ep) else None
