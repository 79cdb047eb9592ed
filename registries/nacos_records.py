"""Nacos records -> the gateway's model: service names, instances, endpoints.

Registrants choose every field of a Nacos instance, so each one is checked here and a bad one
is skipped with a reason (``RecordRejected``) while the others stay.  Interface-level
services are named ``providers:{iface}:{version}:{group}`` (and the compatible forms);
application-level instances go through their MetadataInfo.  No client calls here except the
MetadataInfo read the registry provides (``_read_metadata_info``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable
from types import MappingProxyType
from typing import Any

from .base import DubboURL, Endpoint, RegistryError, ServiceKey
from .checks import check_host, check_metadata, check_port, check_text, check_weight
from .metadata_service import instance_metadata_info, instance_urls
from .records import (
    BAD_PORT,
    BAD_TYPE,
    BAD_VALUE,
    UNAVAILABLE,
    WRONG_SERVICE,
    RecordRejected,
    SkipReport,
)

_PROTO_RE = re.compile(r"^[a-z][a-z0-9+.-]{0,31}$")


def _bool(v: Any, default: bool = True) -> bool:
    if isinstance(v, bool):
        return v
    return default if v is None else str(v).lower() != "false"


class NacosRecords:
    """The record mapping of ``NacosRegistry`` (mixed into it): which Nacos services name an
    interface, which instances are usable, and instance -> endpoints, every skipped record
    reported in the registry's ``skips``."""

    skips: SkipReport
    _read_metadata_info: Callable[[str, str], Awaitable[tuple[str | None, str]]]

    def _concrete_names(self, key: ServiceKey) -> list[str]:
        i, v, g = key.interface, key.version, key.group
        if v in ("", "*") or g == "*":
            return []
        out = [f"providers:{i}:{v}:{g}"]
        compat = ":".join(["providers", i, *(s for s in (v, g) if s)])
        if compat not in out:
            out.append(compat)
        return out

    @staticmethod
    def _name_interface(name: str) -> str | None:
        if not name.startswith("providers:"):
            return None
        return name.split(":")[1] or None

    def _skip(self, source: str, where: str, e: Exception) -> None:
        """Report a skipped record of ``source`` (the interface being resolved)."""
        if not isinstance(e, RecordRejected):
            label = UNAVAILABLE if "could not be fetched" in str(e) else BAD_VALUE
            e = RecordRejected(label, str(e))
        self.skips.add(source, where, e)

    def _usable(self, inst: Any) -> bool:
        # Java consumers list healthy instances only (selectInstances(healthy=true)), which
        # also drops disabled ones and those with weight <= 0.  Malformed weights are not
        # judged here: _record refuses them with a reason.
        try:
            weight = float(getattr(inst, "weight", 1.0) or 0)
        except (TypeError, ValueError):
            weight = 1.0
        return (
            _bool(getattr(inst, "healthy", True))
            and _bool(getattr(inst, "enabled", True))
            and not weight <= 0
        )

    @staticmethod
    def _record(inst: Any) -> tuple[str, int, dict[str, str]]:
        """(ip, port, metadata) of one Nacos instance, checked: registrants choose every
        field (``RecordRejected`` says what is wrong)."""
        host = check_host(getattr(inst, "ip", None), "ip")
        port = check_port(getattr(inst, "port", None), "port")
        weight = getattr(inst, "weight", 1.0)
        if not isinstance(weight, int | float) or isinstance(weight, bool):
            raise RecordRejected(BAD_TYPE, f"bad weight {str(weight)[:20]!r}")
        if not 0 <= weight <= 10000:  # also NaN; Nacos' own range
            raise RecordRejected(BAD_VALUE, f"instance weight {weight!r} outside 0..10000")
        meta = check_metadata(getattr(inst, "metadata", None) or {})
        return host, port, meta

    @staticmethod
    def _where(name: str, inst: Any) -> str:
        ip, port = getattr(inst, "ip", "?"), getattr(inst, "port", "?")
        return f"{name} {str(ip)[:80]}:{str(port)[:10]}"

    def _interface_endpoint(self, name: str, inst: Any, iface: str) -> Endpoint | None:
        where = self._where(name, inst)
        try:
            host, port, meta = self._record(inst)
            if meta.get("category", "providers") != "providers":
                return None
            protocol = meta.get("protocol") or "dubbo"
            if not _PROTO_RE.match(protocol):
                raise RecordRejected(BAD_VALUE, f"bad protocol {protocol[:40]!r}")
            if meta.get("interface") and meta["interface"] != iface:
                raise RecordRejected(
                    WRONG_SERVICE,
                    f"interface {meta['interface'][:120]!r} under the service of {iface}",
                )
            check_weight(meta.get("weight"), 100, "weight")
            for k in ("version", "group"):
                check_text(meta.get(k), k, 128)
            url = DubboURL(protocol, host, port, meta.get("path") or iface, MappingProxyType(meta))
            ep = Endpoint.from_url(url)
        except (RecordRejected, RegistryError) as e:
            self._skip(iface, where, e)
            return None
        self.skips.clear(iface, where)
        return ep

    async def _app_endpoints(self, app: str, inst: Any, iface: str) -> list[Endpoint]:
        where = self._where(app, inst)
        try:
            host, port, meta = self._record(inst)
            info = await instance_metadata_info(
                app, host, port, meta, self._read_metadata_info, 3.0
            )
            out = []
            for url in instance_urls(iface, app, host, port, meta, info):
                check_weight(url.params.get("weight"), 100, "weight")
                ep = Endpoint.from_url(url)
                if not 0 < ep.port < 65536:
                    raise RecordRejected(BAD_PORT, f"service port {ep.port} out of range")
                if not _bool(getattr(inst, "enabled", True)):
                    ep = dataclasses.replace(ep, enabled=False)
                out.append(ep)
        except (RecordRejected, RegistryError) as e:
            self._skip(iface, where, e)
            return []
        self.skips.clear(iface, where)
        return out
