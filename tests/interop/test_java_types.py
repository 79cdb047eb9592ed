"""Every JSON <-> Java type row against the real Apache Dubbo providers (Java), one per
line x protocol: HTTP/JSON -> tribridge (configured signatures) -> Dubbo 3.3 over dubbo, over
tri, over dubbo and tri on one port, and Dubbo 2.7 over dubbo.  The provider echoes, so each
row proves both directions; ``typeOf`` shows the Java class that really arrived."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tribridge.interop.java_peers import TYPES, JavaPeers
from tribridge.interop.testing import BackgroundLoop, http_request

from tests.helpers.java_compat import (
    BARE_BIGDECIMAL_ROWS,
    BARE_ROWS,
    PRECISION_ROWS,
    ROWS,
    TARGETS,
    Row,
    Target,
    direct_config,
)

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def gateways(java_peers: JavaPeers) -> Iterator[Callable[[Target, bool], int]]:
    """HTTP port of a gateway per target, started on first use: with every signature and
    POJO configured, or ``bare`` (no ``services:``; types only from request headers)."""
    ports: dict[tuple[str, bool], int] = {}
    with BackgroundLoop() as bg:

        def get(target: Target, bare: bool = False) -> int:
            if (target.id, bare) not in ports:
                # a bare gateway knows no signature, so POJO classes need an allow pattern
                allow = {"classes": {"allow": ["com.tribridge.compat.*"]}}
                extra = {"services": [], "security": allow} if bare else None
                cfg = direct_config(java_peers, target, extra)
                ports[(target.id, bare)] = bg.start_gateway(cfg).port
            return ports[(target.id, bare)]

        yield get


def call(port: int, row: Row) -> tuple[int, Any]:
    status, body = http_request(port, "POST", f"/{TYPES}/{row.method}", row.args, dict(row.headers))
    if status != 200 and isinstance(body, dict) and "error" in body:
        return status, body["error"].get("code")
    return status, body


@pytest.mark.parametrize("target", TARGETS, ids=[t.id for t in TARGETS])
@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_type_row(gateways: Callable[[Target, bool], int], target: Target, row: Row) -> None:
    status, body = call(gateways(target, False), row)
    assert (status, body) == (row.status, row.want), f"{target.id} {row.method}{row.args}"


@pytest.mark.parametrize("target", TARGETS, ids=[t.id for t in TARGETS])
@pytest.mark.parametrize("row", BARE_ROWS, ids=[r.id for r in BARE_ROWS])
def test_bare_row(gateways: Callable[[Target, bool], int], target: Target, row: Row) -> None:
    status, body = call(gateways(target, True), row)
    assert (status, body) == (row.status, row.want), f"{target.id} {row.method}{row.args}"


# ---- differences being fixed in parallel -----------------------------------------------------


@pytest.mark.parametrize("target", TARGETS, ids=[t.id for t in TARGETS])
@pytest.mark.parametrize("row", PRECISION_ROWS, ids=[r.id for r in PRECISION_ROWS])
def test_precision_row(gateways: Callable[[Target, bool], int], target: Target, row: Row) -> None:
    """JSON numbers beyond 64 bits / float precision reach Java exact (README promise)."""
    status, body = call(gateways(target, False), row)
    assert (status, body) == (row.status, row.want), f"{target.id} {row.method}{row.args!r}"


@pytest.mark.parametrize("target", TARGETS, ids=[t.id for t in TARGETS])
@pytest.mark.parametrize("row", BARE_BIGDECIMAL_ROWS, ids=[r.id for r in BARE_BIGDECIMAL_ROWS])
def test_bare_bigdecimal_row(
    gateways: Callable[[Target, bool], int], target: Target, row: Row
) -> None:
    """A BigDecimal field with no configured types, and the explicit class/value form."""
    status, body = call(gateways(target, True), row)
    assert (status, body) == (row.status, row.want), f"{target.id} {row.method}{row.args!r}"
