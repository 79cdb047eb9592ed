"""Readiness and registry status: what ``/readyz``, ``/registries`` and ``/metrics`` report.

Ready means every service (Java and IDL) has a provider; a registry-discovered service whose
registry has not answered yet (``pending``) is not ready either, so a load balancer sends no
traffic to a gateway that would answer 503 ``registry_not_ready``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from tribridge.http.messages import Response
from tribridge.invoke.invoker import Service
from tribridge.routing.state import RoutingState


def ready_response(st: RoutingState, services: Iterable[Service]) -> Response:
    """200 when every service of ``services`` and of ``st``'s IDL router has a provider,
    else 503 naming the ones without (and the ones still pending)."""
    states = [(str(s.cfg.key), s.snapshot.pending, bool(s.snapshot.endpoints)) for s in services]
    if st.idl is not None:
        states += [(str(s.cfg.key), s.pending, bool(s.targets)) for s in st.idl.services.values()]
    missing = [k for k, pending, has in states if pending or not has]
    body = {
        "ready": not missing,
        "services": len(states),
        "without_providers": missing,
        "pending": [k for k, pending, _ in states if pending],
    }
    return Response(200 if not missing else 503, orjson.dumps(body))


def registry_status(st: RoutingState, services: Iterable[Service]) -> dict[str, dict[str, Any]]:
    """Each registry's own status plus what the gateway saw: newest snapshot time and
    whether every snapshot from it is healthy."""
    services = list(services)
    out: dict[str, dict[str, Any]] = {}
    for name, reg in st.registries.items():
        try:
            info = dict(reg.status())
            # rejected registry records (registries/records.py), for every source alike
            info.setdefault("skipped_records", reg.skips.summary())
        except Exception as e:  # a status() bug must not break /metrics
            info = {"name": name, "status_error": str(e)}
        snaps = [
            s.snapshot
            for s in services
            if st.registry_for(s.cfg) is reg and not s.snapshot.pending
        ]
        info.setdefault("connected", all(s.healthy for s in snaps) if snaps else True)
        info.setdefault("last_sync", max((s.at for s in snaps), default=None))
        info["services"] = len(snaps)
        errors = sorted({s.error for s in snaps if s.error})
        if errors:
            info["errors"] = errors
        out[name] = info
    return out
