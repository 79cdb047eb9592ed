"""What a Dubbo 3.3 provider publishes for application-level discovery, whatever the registry.

Shared by the ZooKeeper (``registration.py``) and Nacos (``nacos_registration.py``)
registration helpers, so both describe a provider the same way:

* ``metadata_info`` — the ``MetadataInfo`` (with its revision) that
  ``MetadataService.getMetadataInfo`` returns over hessian2 (``storage-type=local``);
  ``metadata_info_json`` is the same content as the metadata report stores it
  (``storage-type=remote``);
* ``instance_metadata`` — the instance's metadata (``ServiceInstanceMetadataUtils``);
* ``serve_metadata`` — make a running ``DemoProvider`` answer ``getMetadataInfo``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from tribridge.codecs.hessian2 import HessianObject, TypedMap
from tribridge.registries.base import DubboURL
from tribridge.registries.metadata_service import (
    METADATA_INFO_CLASS,
    METADATA_SERVICE_VERSION,
    SERVICE_INFO_CLASS,
    match_key,
)

DUBBO_VERSION = "2.0.2"
RELEASE = "3.3.1"
#: URL params that are per process, not part of the revision
_VOLATILE = ("pid", "timestamp", "anyhost", "bind.ip", "bind.port")


def metadata_info(app: str, urls: Iterable[DubboURL]) -> tuple[str, HessianObject]:
    """(revision, ``org.apache.dubbo.metadata.MetadataInfo``) for the exported ``urls``, as
    ``MetadataService.getMetadataInfo`` returns it over hessian2."""
    services: dict[str, HessianObject] = {}
    for u in urls:
        params = {k: v for k, v in u.params.items() if k not in _VOLATILE}
        si = HessianObject(
            SERVICE_INFO_CLASS,
            {
                "name": u.interface,
                "group": u.get("group") or None,
                "version": u.get("version") or None,
                "protocol": u.protocol,
                "port": u.port,
                "path": u.path,
                "params": params,
            },
        )
        services[match_key(u.interface, u.get("group"), u.get("version"), u.protocol)] = si
    # MetadataInfo.calAndGetRevision: MD5 over the app and each ServiceInfo.toDescString()
    # (match key, port, path, sorted params), so instances on other ports differ
    desc = "".join(
        f"{k}{v.fields['port']}{v.fields['path']}{sorted(v.fields['params'].items())}"
        for k, v in sorted(services.items())
    )
    revision = hashlib.md5(f"{app}{desc}".encode()).hexdigest()
    obj = HessianObject(
        METADATA_INFO_CLASS,
        {
            "app": app,
            "revision": revision,
            "services": TypedMap("java.util.concurrent.ConcurrentHashMap", services),
        },
    )
    return revision, obj


def metadata_info_json(info: HessianObject) -> dict[str, Any]:
    """The MetadataInfo as JSON, the form the metadata report stores (``storage-type=remote``)."""
    f = info.fields
    return {
        "app": f["app"],
        "revision": f["revision"],
        "services": {k: dict(si.fields) for k, si in f["services"].items()},
    }


def instance_metadata(
    revision: str,
    metadata_port: int,
    endpoints: Mapping[str, int],
    storage: str = "local",
    **extra: str,
) -> dict[str, str]:
    """The instance metadata Dubbo 3.3 writes (``ServiceInstanceMetadataUtils``)."""
    meta = {
        "dubbo.metadata.revision": revision,
        "dubbo.metadata.storage-type": storage,
        "dubbo.endpoints": orjson.dumps(
            [{"port": p, "protocol": proto} for proto, p in endpoints.items()]
        ).decode(),
        "dubbo.metadata-service.url-params": orjson.dumps(
            {
                "version": METADATA_SERVICE_VERSION,
                "dubbo": DUBBO_VERSION,
                "release": RELEASE,
                "side": "provider",
                "port": str(metadata_port),
                "protocol": "dubbo",
            }
        ).decode(),
        "meta-v": "1.0.0",
        "timestamp": str(int(time.time() * 1000)),
    }
    meta.update(extra)
    return meta


def serve_metadata(provider: Any, app: str, revision: str, info: HessianObject) -> None:
    """Let a running ``DemoProvider`` export ``MetadataService`` (group = ``app``) answering
    ``getMetadataInfo(revision)``."""
    provider.application = app
    provider.metadata[revision] = info
