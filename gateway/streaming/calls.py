"""``Streams``: where a routed request becomes a stream (docs/streaming.md).

The routers decide *what* is called (route tables, parameter mapping, auto routes); this
module decides *that* it streams and runs it:

* a Java-interface method streams when configured (``methods.<m>.stream: server | client |
  bidi``) or when the client asks: ``Accept: text/event-stream`` / ``application/x-ndjson``
  (a server stream) or a WebSocket upgrade (client / bidi); an IDL method streams when its
  descriptor says so;
* a server stream is answered as SSE or NDJSON (``Accept``; else ``streaming.default_format``),
  client and bidi streams need a WebSocket (426 otherwise);
* errors the provider reports before its first message (within ``FIRST_WAIT``) are HTTP
  statuses, later ones an in-stream error (SSE ``event: error``, NDJSON ``{"error":…}``,
  WebSocket close code 4000 + gRPC code);
* ``max_streams`` bounds the streams open at once (503 past it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tribridge.codecs.hessian2.javatypes import JavaType
from tribridge.codecs.triple import attachments_to_headers
from tribridge.config.streaming import StreamingSettings
from tribridge.errors import GatewayError
from tribridge.http.headers import timeout_header
from tribridge.http.messages import Request, Response
from tribridge.http.streaming import StreamResponse, StreamSink
from tribridge.statuses import grpc_to_http
from tribridge.streaming import websocket as ws
from tribridge.streaming.codecs import IdlCodec, MessageCodec, WrapperCodec
from tribridge.streaming.formats import Framer, asked_format
from tribridge.streaming.metrics import StreamStats
from tribridge.streaming.pumps import StreamState, first_event, server_stream
from tribridge.upstream.triple_call import APP_NAME, TripleCallError, status_error

#: seconds a stream waits for the provider's first message before sending its head (an
#: early error is then an HTTP status); an idle stream gets its head and keep-alives after
FIRST_WAIT = 1.0
#: the Java type Dubbo declares a stream's observer with
OBSERVER = "org.apache.dubbo.common.stream.StreamObserver"


@dataclass(slots=True)
class StreamPlan:
    """What a router resolved for one stream: how to open it upstream and code it."""

    kind: str  # server | client | bidi
    open_up: Callable[[bytes | None], Any]  # the one request (server) or None -> the stream
    codec: MessageCodec
    args: Sequence[Any]  # a server stream's arguments (its one request)
    where: dict[str, Any]  # service / method, for errors
    done: Callable[[int], None]  # counted and traced with this status when it ends


def _error(e: GatewayError) -> Response:
    return Response(e.status, e.body())


class Streams:
    def __init__(self, settings: StreamingSettings | None = None) -> None:
        self.settings = settings or StreamingSettings()
        self.stats = StreamStats()

    # ---- deciding ------------------------------------------------------------------------

    def kind(self, req: Request, cfg: Any, method: str) -> str | None:
        """The stream kind a Java-interface route's request opens, or None (unary)."""
        m = cfg.methods.get(method)
        configured = m.stream if m is not None else ""
        h = req.headers
        if "upgrade" in h and ws.is_upgrade(req):
            return configured or "bidi"
        if configured:
            return configured
        accept = h.get("accept")  # (every unary request passes here: no call without one)
        return "server" if accept is not None and asked_format(accept) else None

    # ---- Java-interface (wrapper) mode ------------------------------------------------------

    async def wrapper(
        self,
        req: Request,
        svc: Any,
        call: Any,
        kind: str,
        guard: Any,
        registry_wait: float,
        render: Callable[[Any], bytes],
        done: Callable[[int], None],
    ) -> Response:
        """A Java StreamObserver method (``svc`` an ``invoke.invoker.Service``)."""
        cfg = svc.cfg
        where = {"service": cfg.interface, "method": call.method}
        try:
            if guard is not None:
                pending = guard.check(req, cfg.interface, call.method, call.attachments)
                if pending is not None:
                    await pending
            if svc.snapshot.pending:
                await svc.settled(registry_wait)
            pol = svc.class_policy
            if pol is not None and call.attachments:
                pol.check_attachments(cfg.interface, call.attachments)
            types = self._java_types(svc, call, kind)
            reg = svc.type_registry()
            check = (lambda a, t: pol.check_args(a, t, reg)) if pol is not None else None
            codec = WrapperCodec(types, reg, render, check, where)
            eps = svc.candidates(call)
            if not eps:
                raise GatewayError(
                    503, "no_provider", f"no provider instance of {cfg.interface} is known", **where
                )
            ep = svc.pick(eps, set(), None)
            if not svc.is_triple(ep):
                raise GatewayError(
                    501,
                    "streaming_not_supported",
                    f"{ep.host}:{ep.port} speaks Dubbo2, which has no streams (Triple has)",
                    **where,
                )
            tls = svc.pool(ep).tls
            headers = self._wrapper_headers(svc, call)
            timeout = self._timeout(req, call.timeout)
            client = self._client(svc.pools.triple_client())
            path = f"/{cfg.interface}/{call.method}"

            def open_up(request: bytes | None) -> Any:
                return client.stream(ep, path, request, headers, timeout, tls)

        except GatewayError as e:
            done(e.status)
            return _error(e)
        return await self.serve(req, StreamPlan(kind, open_up, codec, call.args, where, done))

    def _java_types(self, svc: Any, call: Any, kind: str) -> list[JavaType | None]:
        """Configured types, else ``x-tribridge-types``, else the provider's metadata
        without the observer; empty when nobody says (values are then inferred)."""
        m = svc.cfg.methods.get(call.method)
        if m is not None and m.types is not None:
            return list(m.types)
        d = svc.snapshot.definition
        if call.types is not None:
            pol = svc.class_policy
            if pol is not None:  # a hint names classes: only declared or allowed ones
                declared = (
                    [t for o in d.overloads(call.method) for t in o.parameter_types] if d else []
                )
                pol.check_hint(call.types, declared, svc.type_registry())
            return list(call.types)
        if d is not None and kind == "server":
            for o in d.overloads(call.method):
                params = [t for t in o.parameter_types if str(t) != OBSERVER]
                if len(params) == len(o.parameter_types) - 1 and len(params) == len(call.args):
                    return list(params)
        return []

    @staticmethod
    def _wrapper_headers(svc: Any, call: Any) -> list[tuple[str, str | bytes]]:
        cfg = svc.cfg
        version = call.version if call.version is not None else cfg.version
        group = call.group if call.group is not None else cfg.group
        headers: list[tuple[str, str | bytes]] = [("tri-consumer-appname", APP_NAME)]
        if version:
            headers.append(("tri-service-version", version))
        if group:
            headers.append(("tri-service-group", group))
        if cfg.token:
            headers.append(("token", cfg.token))
        if call.attachments:
            headers += attachments_to_headers(call.attachments)
        return headers

    def _client(self, client: Any) -> Any:
        """The Triple client, its stream channels sized by ``streaming.stream_window``."""
        client.settings.stream_window = self.settings.stream_window
        return client

    def _timeout(self, req: Request, configured: float | None) -> float | None:
        """A stream's deadline: ``x-dubbo-timeout``, else ``streaming.timeout`` (0: none).
        A unary method timeout does not apply to a whole stream."""
        t = timeout_header(req.headers)
        if t is not None:
            return t
        return self.settings.timeout or None

    # ---- IDL mode ------------------------------------------------------------------------

    async def idl(
        self,
        req: Request,
        client: Any,
        target: Any,
        mi: Any,
        opts: Any,
        metadata: Sequence[tuple[str, str]],
        value: Any,
        where: dict[str, Any],
    ) -> Response:
        """A protobuf streaming method (``mi`` an ``idl.schema.MethodInfo``)."""
        kind = (
            "bidi"
            if mi.client_streaming and mi.server_streaming
            else "client"
            if mi.client_streaming
            else "server"
        )
        codec = IdlCodec(mi, opts, where)
        try:
            timeout = self._timeout(req, None)
        except GatewayError as e:
            return _error(e)

        client = self._client(client)

        def open_up(request: bytes | None) -> Any:
            return client.stream(target, mi.path, request, list(metadata), timeout)

        plan = StreamPlan(kind, open_up, codec, [value], where, lambda status: None)
        return await self.serve(req, plan)

    # ---- running -------------------------------------------------------------------------

    async def serve(self, req: Request, plan: StreamPlan) -> Response:
        s = self.settings
        kind, where, done = plan.kind, plan.where, plan.done
        upgrade = ws.is_upgrade(req)
        if not upgrade and kind != "server":
            done(426)
            return Response(
                426,
                GatewayError(
                    426,
                    "websocket_required",
                    f"{kind} streams are served over WebSocket (Upgrade: websocket)",
                    **where,
                ).body(),
                [("upgrade", "websocket")],
            )
        if self.stats.active >= s.max_streams:
            done(503)
            return _error(
                GatewayError(
                    503,
                    "too_many_streams",
                    f"{s.max_streams} streams are open (streaming.max_streams); retry later",
                    **where,
                )
            )
        if upgrade:
            return self._websocket(req, plan)
        fmt = asked_format(req.headers.get("accept")) or s.default_format
        st = StreamState(kind, fmt, where)
        try:
            up = plan.open_up(plan.codec.request(plan.args))
        except GatewayError as e:
            done(e.status)
            return _error(e)
        except TripleCallError as e:
            err = status_error(e.status, **where)
            done(err.status)
            return _error(err)
        t0 = time.monotonic()
        self.stats.opened(st)
        try:
            first = await first_event(up, FIRST_WAIT, st)
        except TripleCallError as e:
            err = status_error(e.status, **where)
            st.grpc_code = e.status.code
            self.stats.closed(st, time.monotonic() - t0)
            done(err.status)
            return _error(err)
        except BaseException:
            up.cancel()
            st.cancelled = True
            self.stats.closed(st, time.monotonic() - t0)
            raise
        framer = Framer(fmt)
        produce = server_stream(up, plan.codec, framer, st, first, s.keepalive)

        def ended(sink: StreamSink | None) -> None:
            if sink is None or sink.gone:
                st.cancelled = True
                up.cancel()
            self.stats.closed(st, time.monotonic() - t0)
            done(_final_status(st))

        return StreamResponse(
            200,
            b"",
            [("cache-control", "no-cache"), ("x-accel-buffering", "no")],
            framer.content_type,
            produce=produce,
            on_end=ended,
        )

    def _websocket(self, req: Request, plan: StreamPlan) -> Response:
        done = plan.done
        try:
            headers = ws.accept_headers(req)
        except GatewayError as e:
            done(e.status)
            return _error(e)
        st = StreamState(plan.kind, "websocket", plan.where)
        t0 = time.monotonic()
        self.stats.opened(st)
        s = self.settings
        produce = ws.bridge(plan.open_up, plan.codec, st, s.websocket_max_message, s.keepalive)

        def ended(sink: StreamSink | None) -> None:
            if sink is None or sink.gone:
                st.cancelled = True
            self.stats.closed(st, time.monotonic() - t0)
            done(_final_status(st))

        return StreamResponse(101, b"", headers, "", produce=produce, on_end=ended)

    def collector(self) -> Any:
        return self.stats.collector()


def _final_status(st: StreamState) -> int:
    """The status a stream is counted (and traced) with: 200 when it ended OK, 499 when the
    client left first, else the HTTP status of its gRPC code."""
    if st.grpc_code == 0:
        return 200
    if st.cancelled or st.grpc_code is None:
        return 499
    return grpc_to_http(st.grpc_code)[0]


__all__ = ["FIRST_WAIT", "Streams"]
