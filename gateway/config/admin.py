"""The ``admin:`` section: who may change the gateway through the admin API, how much it
accepts (docs/security.md "Admin API"); the listener itself is ``tribridge.ops.admin``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tribridge.config.reader import _V, _Loc
from tribridge.security.tls import ServerTls

#: environment variable holding the admin API's bearer token (when the config names none)
ADMIN_TOKEN_ENV = "TRIBRIDGE_ADMIN_TOKEN"
#: shortest admin token accepted: a guessable token is no protection
MIN_ADMIN_TOKEN = 16
ADMIN_KEYS = {
    "host",
    "port",
    "token",
    "token_file",
    "allowed_hosts",
    "max_body_bytes",
    "parse_timeout",
    "tls",
}


@dataclass
class AdminConfig:
    """Who may change the gateway through the admin API, and how much it accepts.

    Mutations (PUT/POST/DELETE) need a bearer ``token`` or a client certificate verified by
    ``tls.client_ca``; with neither, they are refused (fail closed). Every request's Host
    must be in ``allowed_hosts`` (plus the loopback names and the listener's own address),
    so a DNS-rebinding page cannot reach the API through a browser.
    """

    token: str | None = field(default=None, repr=False)
    #: where the token came from, for the startup line (never the token itself)
    token_source: str | None = None
    allowed_hosts: list[str] = field(default_factory=list)
    max_body_bytes: int = 1024 * 1024
    #: seconds a config body may take to parse and validate (off the event loop)
    parse_timeout: float = 10.0
    #: TLS on the admin listener; with client_ca, a client certificate is required
    tls: ServerTls | None = None

    @property
    def mtls(self) -> bool:
        return self.tls is not None and self.tls.client_ca is not None


def parse_admin(v: _V, a: _Loc) -> AdminConfig:
    """The ``admin:`` protections. The token comes from ``token_file``, ``token`` or the
    ``TRIBRIDGE_ADMIN_TOKEN`` environment variable, in that order."""
    out = AdminConfig(
        allowed_hosts=[h.lower() for h in _strlist(v, a, "allowed_hosts", "admin")],
        max_body_bytes=v.get(a, "max_body_bytes", "admin", int, 1024 * 1024),
        parse_timeout=v.duration(a, "parse_timeout", "admin", 10.0) or 10.0,
    )
    if out.max_body_bytes < 1:
        raise v.fail(a, "admin.max_body_bytes", "expected a positive number", "max_body_bytes")
    key: str | None = None  # the config key the token came from (None: the environment)
    if "token_file" in a:
        key = "token_file"
        path = v.get(a, key, "admin", str)
        try:
            out.token = Path(path).read_text().strip()
        except OSError as e:
            raise v.fail(a, "admin.token_file", f"cannot read: {e.strerror}", key) from None
        out.token_source = f"admin.token_file ({path})"
    elif "token" in a:
        key = "token"
        out.token = v.get(a, key, "admin", str)
        out.token_source = "admin.token"
    elif os.environ.get(ADMIN_TOKEN_ENV):
        out.token = os.environ[ADMIN_TOKEN_ENV].strip()
        out.token_source = f"${ADMIN_TOKEN_ENV}"
    if out.token is not None and len(out.token) < MIN_ADMIN_TOKEN:
        raise v.fail(
            a,
            f"admin.{key}" if key else f"${ADMIN_TOKEN_ENV}",
            f"an admin token needs at least {MIN_ADMIN_TOKEN} characters",
            key,
        )
    if "tls" in a:
        t = v.mapping(a["tls"], "admin.tls", {"cert", "key", "client_ca"})
        out.tls = ServerTls(
            cert=v.get(t, "cert", "admin.tls", str, required=True),
            key=v.get(t, "key", "admin.tls", str, required=True),
            client_ca=v.get(t, "client_ca", "admin.tls", str, None),
        )
        out.tls.require_client_cert = out.tls.client_ca is not None
        try:
            out.tls.context()
        except (OSError, ValueError) as e:
            raise v.fail(t, "admin.tls", f"cannot load certificate/key: {e}") from None
    return out


def _strlist(v: _V, node: _Loc, key: str, path: str) -> list[str]:
    items = v.get(node, key, path, list, [])
    if not all(isinstance(x, str) for x in items):
        raise v.fail(node, f"{path}.{key}", "expected a list of strings", key)
    return [str(x) for x in items]
