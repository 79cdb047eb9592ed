"""MetadataService over Triple (Dubbo 3.3 exports it on the tri port whenever tri is enabled).

The peer is a real gRPC server (grpcio) answering ``getMetadataInfo`` with the exact bytes
captured from Apache Dubbo 3.3.6 (``interop/captured/dubbo-3.3.6-metadataservice-tri.json``):
the request it receives is checked the way Java 3.3 reads it (path, ``tri-service-group`` /
``tri-service-version``, one hessian2 argument in a ``TripleRequestWrapper`` with
``argTypes [java.lang.String]``), and the ZooKeeper application-level test uses the instance
record that provider wrote to ZooKeeper.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import uuid
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from kazoo.client import KazooClient
from tribridge.codecs.hessian2 import decode as hdecode
from tribridge.codecs.hessian2 import encode as hencode
from tribridge.codecs.triple import decode_request_wrapper, encode_response_wrapper
from tribridge.registries import metadata_service as ms
from tribridge.registries import open_registry
from tribridge.registries.base import RegistryError, ServiceKey
from tribridge.registries.metadata_service import (
    MetadataServiceError,
    instance_metadata_info,
    instance_urls,
    metadata_service_candidates,
)

CAPTURED = json.loads(
    (
        Path(__file__).resolve().parents[2]
        / "interop"
        / "captured"
        / "dubbo-3.3.6-metadataservice-tri.json"
    ).read_text()
)
REVISION = CAPTURED["revision"]
ANSWER = base64.b64decode(CAPTURED["answer"]["message_b64"])
NULL_ANSWER = base64.b64decode(CAPTURED["answer_unknown_revision"]["message_b64"])
JAVA_META: dict[str, str] = json.loads(CAPTURED["zookeeper_instance_json"])["payload"]["metadata"]
APP = "rr-demo"


class FakeDubboMetadataService:
    """A grpcio server answering ``MetadataService.getMetadataInfo`` with captured bytes."""

    def __init__(self, mode: str = "captured") -> None:
        self.mode = mode
        self.fixed = b""
        self.requests: list[tuple[dict[str, str], Any]] = []
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        handler = grpc.method_handlers_generic_handler(
            ms.METADATA_SERVICE,
            {"getMetadataInfo": grpc.unary_unary_rpc_method_handler(self._get)},
        )
        self.server.add_generic_rpc_handlers((handler,))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.lock = threading.Lock()

    def _get(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        md = dict(context.invocation_metadata())
        w = decode_request_wrapper(request)
        with self.lock:
            self.requests.append((md, w))
        if self.mode == "unimplemented":
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "no MetadataService here")
        if self.mode == "fixed":
            return self.fixed
        if self.mode == "garbage":
            return encode_response_wrapper(b"C\x05", "x")
        revision = hdecode(w.args[0]) if w.args else None
        return ANSWER if revision == REVISION else NULL_ANSWER

    def __enter__(self) -> FakeDubboMetadataService:
        self.server.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.stop(0).wait(5)


def meta_for(port: int, protocol: str = "tri", endpoints: dict[str, int] | None = None) -> dict:
    """The instance metadata Dubbo 3.3.6 wrote, pointed at ``port``."""
    meta = dict(JAVA_META)
    params = json.loads(meta["dubbo.metadata-service.url-params"])
    params.update(port=str(port), protocol=protocol)
    meta["dubbo.metadata-service.url-params"] = json.dumps(params)
    if endpoints is not None:
        meta["dubbo.endpoints"] = json.dumps(
            [{"port": p, "protocol": k} for k, p in endpoints.items()]
        )
    return meta


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    ms._cache.clear()
    yield
    ms._cache.clear()


async def _no_remote(app: str, revision: str) -> tuple[None, str]:
    raise AssertionError("local metadata must not be read from the registry")


def test_captured_instance_metadata_names_tri() -> None:
    """What Dubbo 3.3.6 with dubbo+tri registered: the MetadataService is on the tri port."""
    assert metadata_service_candidates("10.233.7.2", 20880, JAVA_META) == [
        ("tri", 50051),
        ("dubbo", 20880),
    ]


def test_get_metadata_info_over_triple_from_a_grpc_server() -> None:
    with FakeDubboMetadataService() as svc:
        meta = meta_for(svc.port)
        info = asyncio.run(instance_metadata_info(APP, "127.0.0.1", 20880, meta, _no_remote))
    assert info.app == APP and info.revision == REVISION
    assert sorted(info.services) == ["demo.Greeter:1.0.0:dubbo", "demo.Greeter:1.0.0:tri"]
    tri = info.services["demo.Greeter:1.0.0:tri"]
    assert (tri.protocol, tri.port, tri.version, tri.methods) == (
        "tri",
        50051,
        "1.0.0",
        ("add", "greet"),
    )
    md, w = svc.requests[0]
    # what Java 3.3's server needs to find and decode the call
    assert md["tri-service-group"] == APP and md["tri-service-version"] == "1.0.0"
    assert w.serialize_type == "hessian4" and w.arg_types == ["java.lang.String"]
    assert [hdecode(a) for a in w.args] == [REVISION]
    urls = instance_urls("demo.Greeter", APP, "127.0.0.1", 20880, meta, info)
    assert sorted((u.protocol, u.port) for u in urls) == [("dubbo", 20880), ("tri", 50051)]


def test_unknown_revision_is_reported_not_retried() -> None:
    """Java answers an unknown revision with grpc-status 0 and a null MetadataInfo."""
    with FakeDubboMetadataService() as svc:
        meta = meta_for(svc.port, endpoints={"tri": svc.port, "dubbo": 1})
        meta["dubbo.metadata.revision"] = "deadbeef"
        with pytest.raises(MetadataServiceError, match="no metadata for revision deadbeef"):
            asyncio.run(instance_metadata_info(APP, "127.0.0.1", 1, meta, _no_remote))
    assert len(svc.requests) == 1


def test_falls_back_to_tri_endpoint_when_url_params_are_wrong() -> None:
    """url-params naming dubbo on a dead port: the instance's tri endpoint is asked next."""
    with FakeDubboMetadataService() as svc:
        dead = _dead_port()
        meta = meta_for(dead, protocol="dubbo", endpoints={"dubbo": dead, "tri": svc.port})
        info = asyncio.run(instance_metadata_info(APP, "127.0.0.1", dead, meta, _no_remote))
    assert "demo.Greeter:1.0.0:tri" in info.services
    assert len(svc.requests) == 1


def test_no_url_params_tries_dubbo_then_tri_on_the_instance_port() -> None:
    meta = {k: v for k, v in JAVA_META.items() if k != "dubbo.metadata-service.url-params"}
    meta.pop("dubbo.endpoints")
    assert metadata_service_candidates("h", 50051, meta) == [("dubbo", 50051), ("tri", 50051)]


def test_every_attempt_is_named_when_none_answers() -> None:
    dead1, dead2 = _dead_port(), _dead_port()
    meta = meta_for(dead1, endpoints={"tri": dead1, "dubbo": dead2})
    with pytest.raises(MetadataServiceError) as ei:
        asyncio.run(instance_metadata_info(APP, "127.0.0.1", dead2, meta, _no_remote))
    text = str(ei.value)
    assert f"tri://127.0.0.1:{dead1}" in text and f"dubbo://127.0.0.1:{dead2}" in text
    assert "cannot connect" in text


def test_grpc_error_and_garbage_answers_are_reasons() -> None:
    for mode, match in (
        ("unimplemented", "UNIMPLEMENTED: no MetadataService here"),
        ("garbage", "undecodable answer"),
    ):
        with (
            FakeDubboMetadataService(mode) as svc,
            pytest.raises(MetadataServiceError, match=match),
        ):
            asyncio.run(ms.fetch_metadata_info("127.0.0.1", svc.port, APP, REVISION, 3, "tri"))


def test_unspeakable_protocol_is_a_reason() -> None:
    meta = meta_for(1, protocol="rest", endpoints={})
    with pytest.raises(MetadataServiceError, match="cannot speak 'rest'"):
        asyncio.run(instance_metadata_info(APP, "127.0.0.1", 2, meta, _no_remote))


def test_bad_url_params_are_a_registry_error() -> None:
    for raw in ('{"port": "99999", "protocol": "tri"}', "[1]", '{"protocol": 7}', "{"):
        meta = dict(JAVA_META, **{"dubbo.metadata-service.url-params": raw})
        with pytest.raises(RegistryError, match="url-params"):
            metadata_service_candidates("h", 1, meta)


def test_zookeeper_application_level_with_metadata_over_tri(zookeeper: str) -> None:
    """The instance record Dubbo 3.3.6 wrote to ZooKeeper (address moved to 127.0.0.1, the
    MetadataService port to the grpcio peer): application-level discovery finds the tri
    and dubbo endpoints of ``demo.Greeter``."""
    with FakeDubboMetadataService() as svc:
        record = json.loads(CAPTURED["zookeeper_instance_json"])
        record["address"] = "127.0.0.1"
        record["id"] = record["payload"]["id"] = "127.0.0.1:20880"
        record["payload"]["metadata"] = meta_for(svc.port)
        zk = KazooClient(zookeeper)
        zk.start()
        try:
            zk.create(
                f"/services/{APP}/127.0.0.1:20880",
                json.dumps(record).encode(),
                makepath=True,
            )
            zk.create("/dubbo/mapping/demo.Greeter", APP.encode(), makepath=True)

            async def look() -> Any:
                reg = open_registry(f"zookeeper://{zookeeper}?discovery=application")
                await reg.start()
                try:
                    return await reg.lookup(ServiceKey("demo.Greeter", "1.0.0"), 10)
                finally:
                    await reg.close()

            snap = asyncio.run(look())
        finally:
            zk.delete(f"/services/{APP}", recursive=True)
            zk.delete("/dubbo/mapping/demo.Greeter")
            zk.stop()
    eps = sorted((e.protocol, e.host, e.port) for e in snap.endpoints)
    assert eps == [("dubbo", "127.0.0.1", 20880), ("tri", "127.0.0.1", 50051)], snap.error
    assert svc.requests and svc.requests[0][0]["tri-service-group"] == APP


def _dead_port() -> int:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_hessian_encode_roundtrip_of_revision() -> None:
    assert hdecode(hencode(REVISION)) == REVISION


def test_nacos_application_level_with_metadata_over_tri(nacos: Any) -> None:
    """Nacos application level (Dubbo 3.3.6's instance metadata, the MetadataService on the
    grpcio peer over tri): the registry finds demo.Greeter's tri and dubbo endpoints."""
    from tribridge.interop.nacos_registration import client_config
    from tribridge.registries.nacos import NacosRegistry
    from v2.nacos import (
        ConfigParam,
        NacosConfigService,
        NacosNamingService,
        RegisterInstanceParam,
    )

    ns = f"tri-{uuid.uuid4().hex[:8]}"

    async def go(port: int) -> Any:
        cfg = client_config(nacos.address, namespace=ns)
        naming = await NacosNamingService.create_naming_service(cfg)
        config = await NacosConfigService.create_config_service(cfg)
        reg = NacosRegistry(nacos.address, namespace=ns, mode="instance", timeout=1.0)
        try:
            await config.publish_config(
                ConfigParam(data_id="demo.Greeter", group="mapping", content=APP)
            )
            await naming.register_instance(
                RegisterInstanceParam(
                    service_name=APP, ip="127.0.0.1", port=20880, metadata=meta_for(port)
                )
            )
            await reg.start()
            return await reg.lookup(ServiceKey("demo.Greeter", "1.0.0"), 10)
        finally:
            await reg.close()
            await naming.shutdown()
            config.grpc_client_proxy.stop_event.set()
            config.grpc_client_proxy.execute_config_listen_channel.put_nowait(None)

    with FakeDubboMetadataService() as svc:
        snap = asyncio.run(go(svc.port))
    eps = sorted((e.protocol, e.host, e.port) for e in snap.endpoints)
    assert eps == [("dubbo", "127.0.0.1", 20880), ("tri", "127.0.0.1", 50051)], snap.error
    assert svc.requests[0][0]["tri-service-group"] == APP


def test_hostile_triple_metadata_answers_are_reasons() -> None:
    """A MetadataService is whoever listens there: oversized, deeply nested and exception
    answers become reasons, within the time limit."""
    deep = b"".join([b"\x57"] * 100_000)  # an untyped list opened 100k times, never closed
    cases = {
        "huge": (
            encode_response_wrapper(b"S" + b"\x00" * (ms.MAX_METADATA_BYTES + 10)),
            "larger than|exceeds",
        ),
        "deep": (encode_response_wrapper(deep), "undecodable|nested"),
        "json": (encode_response_wrapper(b"x", "y", "json"), "not hessian2"),
    }
    for name, (answer, match) in cases.items():
        svc = FakeDubboMetadataService("fixed")
        svc.fixed = answer
        with svc, pytest.raises(MetadataServiceError, match=match):
            asyncio.run(ms.fetch_metadata_info("127.0.0.1", svc.port, APP, f"r-{name}", 3, "tri"))
