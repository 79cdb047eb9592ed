"""A Nacos 2.x/3.x server emulator: the gRPC protocol the SDKs speak, plus login over HTTP.

No Nacos server can run on these machines (it is Java and not packaged), so the tests talk to
this emulator instead, and ``tests/interop/test_nacos_emulator.py`` proves it with the official
``nacos-sdk-python`` client, unmodified.  It follows the server's code (alibaba/nacos,
``GrpcRequestAcceptor``, ``GrpcBiStreamRequestAcceptor``, the naming and config request
handlers), including behaviours clients trip over:

* gRPC on HTTP port + 1000; ``Payload{metadata{type, clientIp, headers}, body: Any(JSON)}``
  on ``/Request/request`` and ``/BiRequestStream/requestBiStream``;
* ``ServerCheckRequest`` answers the connection id; requests on a connection that has not sent
  ``ConnectionSetupRequest`` on its bi-stream get ``ErrorResponse`` 301 (unregistered); setup is
  acknowledged by a ``SetupAckRequest`` push (ability negotiation);
* an ephemeral instance belongs to the connection that registered it: one instance (or one
  batch) per service per connection, removed when the connection goes away;
* subscribers get ``NotifySubscriberRequest`` pushes with a strictly increasing
  ``lastRefTime``; disabled instances are left out of what subscribers see;
* config: query (300 when missing), publish (with CAS), remove, batch listen by MD5 and
  ``ConfigChangeNotifyRequest`` pushes;
* namespaces (``""`` and ``public`` are the same), groups, optional username/password auth
  with an ``accessToken`` from ``POST /nacos/v1/auth/users/login``.

Not emulated: clustering/Distro, health checks of persistent instances, protect thresholds,
selectors, gray/beta config, fuzzy watch, AI/MCP types (see docs/nacos.md).

Run standalone: ``python -m tribridge.interop.nacos_emulator --port 8848`` prints
``READY http=8848 grpc=9848`` once both listeners are up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import orjson
from aiohttp import web
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory
from tribridge.interop.standalone import serve_until_signalled

__all__ = [
    "GRPC_PORT_OFFSET",
    "EmulatorProcess",
    "NacosEmulator",
    "free_port_pair",
    "start_emulator_process",
]

GRPC_PORT_OFFSET = 1000
DEFAULT_NAMESPACE = "public"
DEFAULT_GROUP = "DEFAULT_GROUP"
DEFAULT_CLUSTER = "DEFAULT"

# NacosException / ResponseCode codes the server uses
SUCCESS = 200
FAIL = 500
UN_REGISTER = 301
NO_HANDLER = 302
INVALID_PARAM = 400
NO_RIGHT = 403
BAD_GATEWAY = 502
CONFIG_NOT_FOUND = 300

_CLUSTER_RE = re.compile(r"^[0-9a-zA-Z-]+$")
#: abilities a 3.x server announces in SetupAckRequest
SERVER_ABILITIES = {"supportPersistentInstanceByGrpc": True, "lock": False, "mcp": False}


# ---- protobuf: the Payload of nacos_grpc_service.proto, built in a private pool -----------------


def _payload_class() -> Any:
    pool = descriptor_pool.DescriptorPool()
    any_file = descriptor_pb2.FileDescriptorProto()
    any_pb2.DESCRIPTOR.CopyToProto(any_file)
    pool.Add(any_file)
    f = descriptor_pb2.FileDescriptorProto(
        name="tribridge_nacos_grpc_service.proto",
        syntax="proto3",
        dependency=["google/protobuf/any.proto"],
    )
    md = f.message_type.add(name="Metadata")
    md.field.add(name="type", number=3, type=9, label=1)
    md.field.add(name="clientIp", number=8, type=9, label=1)
    entry = md.nested_type.add(name="HeadersEntry")
    entry.field.add(name="key", number=1, type=9, label=1)
    entry.field.add(name="value", number=2, type=9, label=1)
    entry.options.map_entry = True
    md.field.add(name="headers", number=7, type=11, label=3, type_name=".Metadata.HeadersEntry")
    pl = f.message_type.add(name="Payload")
    pl.field.add(name="metadata", number=2, type=11, label=1, type_name=".Metadata")
    pl.field.add(name="body", number=3, type=11, label=1, type_name=".google.protobuf.Any")
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("Payload"))


Payload = _payload_class()


def _payload(type_name: str, body: dict[str, Any]) -> Any:
    p = Payload()
    p.metadata.type = type_name
    p.body.value = orjson.dumps(body)
    return p


class NacosError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# ---- state ----------------------------------------------------------------------------------------


@dataclass
class Connection:
    id: str
    peer: str
    client_ip: str = ""
    version: str = ""
    tenant: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    queue: asyncio.Queue[Any] | None = None
    registered: bool = False


@dataclass
class ServiceEntry:
    namespace: str
    group: str
    name: str
    ephemeral: bool
    #: client id -> instances that client published (one, or a batch)
    published: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: connection id -> subscribed clusters ("" = all)
    subscribers: dict[str, str] = field(default_factory=dict)
    empty_since: float | None = None
    #: False for the placeholder a subscription to an unknown service leaves: the server keeps
    #: the subscriber but the service does not exist (ServiceManager has no singleton) until
    #: an instance is registered, so it is not listed and has no kind yet
    created: bool = True

    @property
    def grouped(self) -> str:
        return f"{self.group}@@{self.name}"

    def hosts(self) -> list[dict[str, Any]]:
        return [i for insts in self.published.values() for i in insts]


@dataclass
class ConfigItem:
    content: str
    md5: str
    last_modified: int
    type: str = "text"
    app: str = ""
    encrypted_data_key: str = ""


def _ns(value: Any) -> str:
    """NamespaceUtil.processNamespaceParameter: blank and ``public`` are the same namespace."""
    v = value.strip() if isinstance(value, str) else ""
    return v or DEFAULT_NAMESPACE


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest() if text else ""


def _str(body: dict[str, Any], key: str, default: str = "") -> str:
    v = body.get(key)
    return v if isinstance(v, str) else default


class NacosEmulator:
    """One in-process emulated Nacos server (``start()``/``stop()`` on the running loop)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        grpc_offset: int = GRPC_PORT_OFFSET,
        username: str | None = None,
        password: str | None = None,
        empty_service_ttl: float = 60.0,
        cache_millis: int = 10000,
    ) -> None:
        self.host = host
        self.http_port = port
        self.grpc_offset = grpc_offset
        self.username = username
        self.password = password
        self.empty_service_ttl = empty_service_ttl
        self.cache_millis = cache_millis
        self.tokens: set[str] = set()
        self.connections: dict[str, Connection] = {}  # connection id -> connection
        self._peer_conn: dict[str, str] = {}  # gRPC peer -> connection id
        self.services: dict[tuple[str, str, str], ServiceEntry] = {}
        self.configs: dict[tuple[str, str, str], ConfigItem] = {}
        self.config_listeners: dict[tuple[str, str, str], set[str]] = {}
        #: (connection id, pushed type, request id) for each client ack received on the stream
        self.acks: list[tuple[str, str, str]] = []
        self.requests: dict[str, int] = {}  # request type -> count
        self._push_ids = itertools.count(1)
        self._last_ref = 0
        self._grpc: grpc.aio.Server | None = None
        self._http: web.AppRunner | None = None

    @property
    def grpc_port(self) -> int:
        return self.http_port + self.grpc_offset

    @property
    def address(self) -> str:
        return f"{self.host}:{self.http_port}"

    # ---- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> NacosEmulator:
        if self.http_port == 0:
            self.http_port = free_port_pair(self.host, self.grpc_offset)
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "Request",
                    {
                        "request": grpc.unary_unary_rpc_method_handler(
                            self._unary,
                            request_deserializer=Payload.FromString,
                            response_serializer=Payload.SerializeToString,
                        )
                    },
                ),
                grpc.method_handlers_generic_handler(
                    "BiRequestStream",
                    {
                        "requestBiStream": grpc.stream_stream_rpc_method_handler(
                            self._bi_stream,
                            request_deserializer=Payload.FromString,
                            response_serializer=Payload.SerializeToString,
                        )
                    },
                ),
            )
        )
        if server.add_insecure_port(f"{self.host}:{self.grpc_port}") == 0:
            raise OSError(f"cannot listen on {self.host}:{self.grpc_port}")
        await server.start()
        self._grpc = server
        app = web.Application()
        for ctx in ("/nacos", ""):
            app.router.add_post(f"{ctx}/v1/auth/users/login", self._login)
            app.router.add_post(f"{ctx}/v1/auth/login", self._login)
            app.router.add_get(f"{ctx}/v1/console/health/readiness", self._health)
            app.router.add_get(f"{ctx}/v2/console/health/readiness", self._health)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.http_port, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            await server.stop(0)
            raise
        self._http = runner
        return self

    async def stop(self, grace: float = 0.0) -> None:
        """Stop listening and drop every connection (clients see the server go away)."""
        if self._grpc is not None:
            # like a server going down: open bi-streams are cancelled, not completed, so
            # clients see an error on the stream and reconnect
            server, self._grpc = self._grpc, None
            await server.stop(grace)
        if self._http is not None:
            runner, self._http = self._http, None
            await runner.cleanup()
        for cid in list(self.connections):
            self._drop_connection(cid)

    # ---- HTTP -----------------------------------------------------------------------------------

    async def _login(self, request: web.Request) -> web.Response:
        form = dict(request.query)
        if request.can_read_body:
            form.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        if self.username is None:
            # auth disabled: the real server still answers login (token unused)
            token = secrets.token_hex(16)
        elif form.get("username") != self.username or form.get("password") != self.password:
            return web.Response(status=403, text="unknown user!")
        else:
            token = secrets.token_hex(16)
            self.tokens.add(token)
        body = {
            "accessToken": token,
            "tokenTtl": 18000,
            "globalAdmin": True,
            "username": form.get("username", ""),
        }
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _health(self, _request: web.Request) -> web.Response:
        return web.Response(text="OK")

    # ---- gRPC: unary ----------------------------------------------------------------------------

    async def _unary(self, payload: Any, context: grpc.aio.ServicerContext) -> Any:
        rtype = payload.metadata.type
        self.requests[rtype] = self.requests.get(rtype, 0) + 1
        peer = context.peer()
        if rtype == "ServerCheckRequest":
            ip, port = _peer_addr(peer)
            cid = f"{int(time.time() * 1000)}_{ip}_{port}"
            self._peer_conn[peer] = cid
            self.connections.setdefault(cid, Connection(cid, peer))
            return _payload(
                "ServerCheckResponse",
                {
                    "resultCode": SUCCESS,
                    "errorCode": 0,
                    "connectionId": cid,
                    "supportAbilityNegotiation": True,
                },
            )
        handler = self._handlers.get(rtype)
        if handler is None:
            return _error(NO_HANDLER, "RequestHandler Not Found")
        conn = self.connections.get(self._peer_conn.get(peer, ""))
        if conn is None or not conn.registered:
            return _error(UN_REGISTER, "Connection is unregistered.")
        try:
            body = orjson.loads(payload.body.value)
            if not isinstance(body, dict):
                raise ValueError("request body is not a JSON object")
        except ValueError as e:
            return _error(BAD_GATEWAY, str(e))
        headers = dict(payload.metadata.headers)
        if isinstance(body.get("headers"), dict):
            headers = {**{str(k): str(v) for k, v in body["headers"].items()}, **headers}
        resp_type, secured, fn = handler
        base = {"requestId": _str(body, "requestId")}
        if secured and self.username is not None and headers.get("accessToken") not in self.tokens:
            return _payload(
                resp_type,
                {**base, "resultCode": FAIL, "errorCode": NO_RIGHT, "message": "user not found!"},
            )
        try:
            out = fn(self, conn, body, headers)
        except NacosError as e:
            return _error(e.code, e.message)
        return _payload(
            resp_type, {"resultCode": SUCCESS, "errorCode": 0, "message": "", **base, **out}
        )

    # ---- gRPC: bi-stream ------------------------------------------------------------------------

    async def _bi_stream(
        self, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        peer = context.peer()
        out: asyncio.Queue[Any] = asyncio.Queue()
        reader = asyncio.create_task(self._read_stream(peer, requests, out))
        try:
            while True:
                item = await out.get()
                if item is None:
                    break
                yield item
        finally:
            reader.cancel()
            cid = self._peer_conn.pop(peer, None)
            if cid is not None:
                self._drop_connection(cid)

    async def _read_stream(
        self, peer: str, requests: AsyncIterator[Any], out: asyncio.Queue[Any]
    ) -> None:
        try:
            async for payload in requests:
                rtype = payload.metadata.type
                try:
                    body = orjson.loads(payload.body.value)
                except ValueError:
                    continue  # the server logs a parse error and ignores the message
                if not isinstance(body, dict):
                    continue
                if rtype == "ConnectionSetupRequest":
                    self._setup(peer, payload, body, out)
                elif rtype.endswith("Response"):
                    cid = self._peer_conn.get(peer, "")
                    self.acks.append((cid, rtype, _str(body, "requestId")))
        except (asyncio.CancelledError, grpc.aio.AioRpcError):
            pass
        finally:
            out.put_nowait(None)

    def _setup(
        self, peer: str, payload: Any, body: dict[str, Any], out: asyncio.Queue[Any]
    ) -> None:
        cid = self._peer_conn.get(peer)
        if cid is None:  # no ServerCheck on this transport: the server would still know it
            ip, port = _peer_addr(peer)
            cid = f"{int(time.time() * 1000)}_{ip}_{port}"
            self._peer_conn[peer] = cid
        conn = self.connections.setdefault(cid, Connection(cid, peer))
        conn.client_ip = payload.metadata.clientIp
        conn.version = _str(body, "clientVersion")
        conn.tenant = _str(body, "tenant")
        labels = body.get("labels")
        conn.labels = (
            {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}
        )
        conn.queue = out
        conn.registered = True
        if body.get("abilityTable") is not None:
            self._push(conn, "SetupAckRequest", {"abilityTable": SERVER_ABILITIES}, ack=False)

    def _push(self, conn: Connection, rtype: str, body: dict[str, Any], ack: bool = True) -> None:
        if conn.queue is None:
            return
        rid = str(next(self._push_ids)) if ack else ""
        conn.queue.put_nowait(
            _payload(rtype, {"headers": {}, "requestId": rid, "module": "", **body})
        )

    def _drop_connection(self, cid: str) -> None:
        """ClientDisconnectEvent: the connection's ephemeral instances and subscriptions go."""
        conn = self.connections.pop(cid, None)
        if conn is None:
            return
        for cids in self.config_listeners.values():
            cids.discard(cid)
        for svc in list(self.services.values()):
            svc.subscribers.pop(cid, None)
            if svc.published.pop(cid, None) is not None:
                self._changed(svc)

    # ---- naming ---------------------------------------------------------------------------------

    def _service(self, body: dict[str, Any], ephemeral: bool, create: bool) -> ServiceEntry | None:
        name = _str(body, "serviceName")
        if not name.strip():
            raise NacosError(INVALID_PARAM, "Param 'serviceName' is illegal, serviceName is blank")
        key = (_ns(body.get("namespace")), _str(body, "groupName") or DEFAULT_GROUP, name)
        svc = self.services.get(key)
        if svc is None and create:
            svc = self.services[key] = ServiceEntry(*key, ephemeral=ephemeral)
        return svc

    def _instance(self, svc: ServiceEntry, raw: Any, ephemeral: bool) -> dict[str, Any]:
        """NamingUtils.checkInstanceIsLegal + InstancePublishInfo -> api Instance."""
        if not isinstance(raw, dict):
            raise NacosError(INVALID_PARAM, "instance is required")
        ip = raw.get("ip")
        port = raw.get("port")
        if not isinstance(ip, str) or not ip or not isinstance(port, int) or not 0 <= port <= 65535:
            raise NacosError(INVALID_PARAM, "Instance 'ip' and 'port' are required and valid")
        cluster = raw.get("clusterName") or DEFAULT_CLUSTER
        if not isinstance(cluster, str) or not _CLUSTER_RE.match(cluster):
            raise NacosError(
                INVALID_PARAM,
                f"Instance 'clusterName' should be characters with only 0-9a-zA-Z-. (current: {cluster})",
            )
        metadata = raw.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise NacosError(INVALID_PARAM, "Instance 'metadata' must be an object")
        weight = raw.get("weight", 1.0)
        iid = raw.get("instanceId") or f"{ip}#{port}#{cluster}#{svc.grouped}"
        return {
            "instanceId": iid,
            "ip": ip,
            "port": port,
            "weight": float(weight) if isinstance(weight, (int, float)) else 1.0,
            "healthy": raw.get("healthy", True) is not False,
            "enabled": raw.get("enabled", True) is not False,
            "ephemeral": ephemeral,
            "clusterName": cluster,
            "serviceName": svc.grouped,
            "metadata": {str(k): "" if v is None else str(v) for k, v in metadata.items()},
            "instanceHeartBeatInterval": 5000,
            "instanceHeartBeatTimeOut": 15000,
            "ipDeleteTimeout": 30000,
            "instanceIdGenerator": "simple",
        }

    def _ref_time(self) -> int:
        self._last_ref = max(int(time.time() * 1000), self._last_ref + 1)
        return self._last_ref

    def service_info(
        self, svc: ServiceEntry, clusters: str = "", healthy_only: bool = False
    ) -> dict[str, Any]:
        """ServiceUtil.selectInstancesWithHealthyProtection(enableOnly=true) as subscribers see it."""
        wanted = {c for c in clusters.split(",") if c}
        hosts = [
            h
            for h in svc.hosts()
            if h["enabled"]
            and (not wanted or h["clusterName"] in wanted)
            and (not healthy_only or h["healthy"])
        ]
        return {
            "name": svc.name,
            "groupName": svc.group,
            "clusters": clusters,
            "cacheMillis": self.cache_millis,
            "hosts": hosts,
            "lastRefTime": self._ref_time(),
            "checksum": "",
            "allIPs": False,
            "reachProtectionThreshold": False,
            "valid": True,
        }

    def _changed(self, svc: ServiceEntry) -> None:
        svc.empty_since = None if svc.published else time.monotonic()
        for cid, clusters in list(svc.subscribers.items()):
            conn = self.connections.get(cid)
            if conn is None:
                continue
            self._push(
                conn,
                "NotifySubscriberRequest",
                {
                    "namespace": svc.namespace,
                    "serviceName": svc.name,
                    "groupName": svc.group,
                    "serviceInfo": self.service_info(svc, clusters),
                },
            )

    def _publish(self, svc: ServiceEntry, client_id: str, instances: list[dict[str, Any]]) -> None:
        svc.published[client_id] = instances
        self._changed(svc)

    def _unpublish(self, svc: ServiceEntry, client_id: str) -> None:
        if svc.published.pop(client_id, None) is not None:
            self._changed(svc)

    def _check_kind(self, svc: ServiceEntry, ephemeral: bool) -> None:
        if not svc.created:  # the first registration creates a subscribed-to service
            svc.created, svc.ephemeral = True, ephemeral
            return
        if svc.ephemeral != ephemeral:
            kind = "persistent" if svc.ephemeral is False else "ephemeral"
            raise NacosError(
                INVALID_PARAM,
                f"Current service {svc.grouped} is {kind} service, can't register "
                f"{'ephemeral' if ephemeral else 'persistent'} instance.",
            )

    def _h_instance(
        self, conn: Connection, body: dict[str, Any], _h: dict[str, str]
    ) -> dict[str, Any]:
        rtype = _str(body, "type")
        if rtype == "registerInstance":
            svc = self._service(body, True, True)
            assert svc is not None
            self._check_kind(svc, True)
            self._publish(svc, conn.id, [self._instance(svc, body.get("instance"), True)])
        elif rtype == "deregisterInstance":
            svc = self._service(body, True, False)
            if svc is not None:
                self._unpublish(svc, conn.id)
        else:
            raise NacosError(INVALID_PARAM, f"Unsupported request type {rtype}")
        return {"type": rtype}

    def _h_persistent(
        self, _conn: Connection, body: dict[str, Any], _h: dict[str, str]
    ) -> dict[str, Any]:
        rtype = _str(body, "type")
        if rtype not in ("registerInstance", "deregisterInstance"):
            raise NacosError(INVALID_PARAM, f"Unsupported request type {rtype}")
        svc = self._service(body, False, rtype == "registerInstance")
        if svc is None:
            return {"type": rtype}
        raw = body.get("instance")
        if not isinstance(raw, dict):
            raise NacosError(INVALID_PARAM, "instance is required")
        client_id = f"{raw.get('ip')}:{raw.get('port')}#false"
        if rtype == "registerInstance":
            self._check_kind(svc, False)
            self._publish(svc, client_id, [self._instance(svc, raw, False)])
        else:
            self._unpublish(svc, client_id)
        return {"type": rtype}

    def _h_batch(
        self, conn: Connection, body: dict[str, Any], _h: dict[str, str]
    ) -> dict[str, Any]:
        rtype = _str(body, "type")
        if rtype != "batchRegisterInstance":
            raise NacosError(INVALID_PARAM, f"Unsupported request type {rtype}")
        svc = self._service(body, True, True)
        assert svc is not None
        self._check_kind(svc, True)
        raw = body.get("instances")
        if not isinstance(raw, list):
            raise NacosError(INVALID_PARAM, "instances is required")
        insts = [self._instance(svc, r, True) for r in raw]
        if insts:
            self._publish(svc, conn.id, insts)
        else:
            self._unpublish(svc, conn.id)
        return {"type": rtype}

    def _empty_info(self, body: dict[str, Any], clusters: str) -> dict[str, Any]:
        tmp = ServiceEntry(
            _ns(body.get("namespace")),
            _str(body, "groupName") or DEFAULT_GROUP,
            _str(body, "serviceName"),
            True,
        )
        return self.service_info(tmp, clusters)

    def _h_subscribe(
        self, conn: Connection, body: dict[str, Any], _h: dict[str, str]
    ) -> dict[str, Any]:
        clusters = _str(body, "clusters")
        svc = self._service(body, True, False)
        if body.get("subscribe", False):
            if svc is None:  # the server keeps the subscription for a service yet to appear
                svc = self._service(body, True, True)
                assert svc is not None
                svc.empty_since = time.monotonic()
                svc.created = False
            svc.subscribers[conn.id] = clusters
        elif svc is not None:
            svc.subscribers.pop(conn.id, None)
        info = (
            self.service_info(svc, clusters)
            if svc is not None
            else self._empty_info(body, clusters)
        )
        return {"serviceInfo": info}

    def _h_query(
        self, _conn: Connection, body: dict[str, Any], _h: dict[str, str]
    ) -> dict[str, Any]:
        svc = self._service(body, True, False)
        cluster = _str(body, "cluster")
        healthy_only = body.get("healthyOnly") is True  # Java's field name; "healthOnly" is ignored
        info = (
            self.service_info(svc, cluster, healthy_only)
            if svc is not None
            else self._empty_info(body, cluster)
        )
        return {"serviceInfo": info}

    def _visible(self, svc: ServiceEntry) -> bool:
        if not svc.created:
            # a subscription alone creates no service (nacos-sdk-go's SelectAllInstances
            # subscribes: a lookup of an unknown service must not make it listed)
            return False
        if svc.published or svc.empty_since is None:
            return True
        return time.monotonic() - svc.empty_since < self.empty_service_ttl

    def _h_list(
        self, _conn: Connection, body: dict[str, Any], _h: dict[str, str]
    ) -> dict[str, Any]:
        ns = _ns(body.get("namespace"))
        group = _str(body, "groupName") or DEFAULT_GROUP
        names = sorted(
            s.name
            for (n, g, _), s in self.services.items()
            if n == ns and g == group and self._visible(s)
        )
        page_no = body.get("pageNo") if isinstance(body.get("pageNo"), int) else 1
        page_size = body.get("pageSize") if isinstance(body.get("pageSize"), int) else 10
        start = max((page_no - 1) * page_size, 0)
        return {"count": len(names), "serviceNames": names[start : start + max(page_size, 0)]}

    # ---- config ---------------------------------------------------------------------------------

    @staticmethod
    def _config_key(body: dict[str, Any]) -> tuple[str, str, str]:
        data_id = _str(body, "dataId")
        group = _str(body, "group")
        if not data_id.strip() or not group.strip():
            raise NacosError(INVALID_PARAM, "dataId and group are required")
        return (_ns(body.get("tenant")), group, data_id)

    def _h_config_query(
        self, _conn: Connection, body: dict[str, Any], _h: dict[str, str]
    ) -> dict[str, Any]:
        item = self.configs.get(self._config_key(body))
        if item is None:
            return {
                "resultCode": FAIL,
                "errorCode": CONFIG_NOT_FOUND,
                "message": "config data not exist",
            }
        return {
            "content": item.content,
            "encryptedDataKey": item.encrypted_data_key,
            "contentType": item.type,
            "md5": item.md5,
            "lastModified": item.last_modified,
            "isBeta": False,
        }

    def _h_config_publish(
        self, _conn: Connection, body: dict[str, Any], _h: dict[str, str]
    ) -> dict[str, Any]:
        key = self._config_key(body)
        content = body.get("content")
        if not isinstance(content, str) or not content:
            return {
                "resultCode": FAIL,
                "errorCode": INVALID_PARAM,
                "message": "content is required",
            }
        cas = _str(body, "casMd5")
        old = self.configs.get(key)
        if cas and old is not None and old.md5 != cas:
            return {
                "resultCode": FAIL,
                "errorCode": FAIL,
                "message": "Cas publish fail, server md5 may have changed.",
            }
        extra = body.get("additionMap") if isinstance(body.get("additionMap"), dict) else {}
        self.configs[key] = ConfigItem(
            content,
            _md5(content),
            int(time.time() * 1000),
            type=str(extra.get("type") or "text"),
            app=str(extra.get("appName") or ""),
            encrypted_data_key=str(extra.get("encryptedDataKey") or ""),
        )
        self._config_changed(key)
        return {}

    def _h_config_remove(
        self, _conn: Connection, body: dict[str, Any], _h: dict[str, str]
    ) -> dict[str, Any]:
        key = self._config_key(body)
        if self.configs.pop(key, None) is not None:
            self._config_changed(key)
        return {}

    def _h_config_listen(
        self, conn: Connection, body: dict[str, Any], _h: dict[str, str]
    ) -> dict[str, Any]:
        listen = body.get("listen", True) is not False
        changed = []
        contexts = body.get("configListenContexts")
        for ctx in contexts if isinstance(contexts, list) else ():
            if not isinstance(ctx, dict):
                continue
            key = (_ns(ctx.get("tenant")), _str(ctx, "group"), _str(ctx, "dataId"))
            if listen:
                self.config_listeners.setdefault(key, set()).add(conn.id)
                item = self.configs.get(key)
                if (item.md5 if item else "") != _str(ctx, "md5"):
                    changed.append(
                        {"dataId": key[2], "group": key[1], "tenant": _str(ctx, "tenant")}
                    )
            else:
                self.config_listeners.get(key, set()).discard(conn.id)
        return {"changedConfigs": changed}

    def _config_changed(self, key: tuple[str, str, str]) -> None:
        tenant, group, data_id = key
        for cid in list(self.config_listeners.get(key, ())):
            conn = self.connections.get(cid)
            if conn is not None:
                self._push(
                    conn,
                    "ConfigChangeNotifyRequest",
                    {
                        "dataId": data_id,
                        "group": group,
                        "tenant": "" if tenant == DEFAULT_NAMESPACE else tenant,
                    },
                )

    def _h_health(
        self, _conn: Connection, _body: dict[str, Any], _h: dict[str, str]
    ) -> dict[str, Any]:
        return {}

    # request type -> (response type, secured, handler)
    _handlers: dict[str, tuple[str, bool, Any]] = {
        "HealthCheckRequest": ("HealthCheckResponse", False, _h_health),
        "InstanceRequest": ("InstanceResponse", True, _h_instance),
        "PersistentInstanceRequest": ("InstanceResponse", True, _h_persistent),
        "BatchInstanceRequest": ("BatchInstanceResponse", True, _h_batch),
        "SubscribeServiceRequest": ("SubscribeServiceResponse", True, _h_subscribe),
        "ServiceQueryRequest": ("QueryServiceResponse", True, _h_query),
        "ServiceListRequest": ("ServiceListResponse", True, _h_list),
        "ConfigQueryRequest": ("ConfigQueryResponse", True, _h_config_query),
        "ConfigPublishRequest": ("ConfigPublishResponse", True, _h_config_publish),
        "ConfigRemoveRequest": ("ConfigRemoveResponse", True, _h_config_remove),
        "ConfigBatchListenRequest": ("ConfigChangeBatchListenResponse", True, _h_config_listen),
    }

    # ---- helpers for tests ----------------------------------------------------------------------

    def instances(
        self, service: str, group: str = DEFAULT_GROUP, namespace: str = ""
    ) -> list[dict[str, Any]]:
        svc = self.services.get((_ns(namespace), group, service))
        return svc.hosts() if svc is not None else []

    def subscriber_count(
        self, service: str, group: str = DEFAULT_GROUP, namespace: str = ""
    ) -> int:
        svc = self.services.get((_ns(namespace), group, service))
        return len(svc.subscribers) if svc is not None else 0


def _error(code: int, message: str) -> Any:
    return _payload(
        "ErrorResponse",
        {"resultCode": FAIL, "errorCode": code, "message": message, "requestId": ""},
    )


def _peer_addr(peer: str) -> tuple[str, int]:
    """``ipv4:127.0.0.1:5555`` / ``ipv6:[::1]:5555`` -> (ip, port)."""
    rest = peer.split(":", 1)[1] if ":" in peer else peer
    host, _, port = rest.rpartition(":")
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        return rest, 0


def free_port_pair(host: str = "127.0.0.1", offset: int = GRPC_PORT_OFFSET, tries: int = 50) -> int:
    """A port P with P and P+offset both free now (the SDK always dials HTTP port + offset)."""
    for _ in range(tries):
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port + offset > 65535:
            continue
        with socket.socket() as s2:
            try:
                s2.bind((host, port + offset))
            except OSError:
                continue
        return port
    raise OSError(f"no free port pair (P, P+{offset}) found on {host}")


# ---- as a separate process ---------------------------------------------------------------------------


class EmulatorProcess:
    """``python -m tribridge.interop.nacos_emulator`` started by ``start_emulator_process``."""

    def __init__(self, proc: subprocess.Popen[bytes], http_port: int, grpc_port: int) -> None:
        self.proc = proc
        self.http_port = http_port
        self.grpc_port = grpc_port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    def close(self, timeout: float = 5.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_emulator_process(
    port: int | None = None, *args: str, timeout: float = 20.0
) -> EmulatorProcess:
    """Start the emulator in its own process and wait for ``READY``; raise with its output if not."""
    cmd = [
        sys.executable,
        "-m",
        "tribridge.interop.nacos_emulator",
        "--port",
        str(port or 0),
        *args,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[str] = []
    ready: list[tuple[int, int]] = []
    done = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            if not ready and line.startswith("READY"):
                parts = dict(p.split("=", 1) for p in line.split()[1:])
                ready.append((int(parts["http"]), int(parts["grpc"])))
                done.set()
            elif len(lines) < 200:
                lines.append(line)
        done.set()

    threading.Thread(target=read, daemon=True).start()
    done.wait(timeout)
    if not ready:
        with contextlib.suppress(Exception):
            proc.kill()
            proc.wait(5)
        raise RuntimeError(
            "the Nacos emulator did not print READY within "
            f"{timeout:g}s (exit code {proc.poll()}): " + "\n".join(lines[-20:])
        )
    return EmulatorProcess(proc, *ready[0])


async def _serve(args: argparse.Namespace) -> None:
    emu = NacosEmulator(
        args.host,
        args.port,
        grpc_offset=args.grpc_offset,
        username=args.username,
        password=args.password,
        empty_service_ttl=args.empty_service_ttl,
    )
    await emu.start()
    await serve_until_signalled(f"http={emu.http_port} grpc={emu.grpc_port}", emu.stop)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="nacos_emulator", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8848, help="HTTP port (0: pick a free pair)")
    p.add_argument("--grpc-offset", type=int, default=GRPC_PORT_OFFSET)
    p.add_argument("--username")
    p.add_argument("--password")
    p.add_argument("--empty-service-ttl", type=float, default=60.0)
    asyncio.run(_serve(p.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
