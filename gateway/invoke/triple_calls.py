"""A Java-interface service's calls to Triple providers: wrapper mode over HTTP/2 and
Triple's HTTP/1.1 unary mode, as attempts for the attempt loop (``invoke.attempts``).

Separate from the Dubbo2 side of ``invoke.invoker.Service`` because everything here is
Triple's: the request wrapper and its header templates (per method, signature, version,
group), the shared Triple clients (``PoolSet.triple_client()`` / ``http1_client()``, typed as
``upstream.protocols.TripleTransport``), and which statuses are the instance's failure.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from tribridge.codecs.hessian2 import HessianError, encode
from tribridge.codecs.triple import RequestWrapperTemplate, attachments_to_headers
from tribridge.config.services import ServiceConfig
from tribridge.errors import GatewayError
from tribridge.invoke import attempts
from tribridge.invoke.call import Call, Outcome
from tribridge.invoke.events import Events
from tribridge.invoke.jsonmap import JSONDecodeError, dumps, loads
from tribridge.invoke.prepared import Prepared
from tribridge.invoke.replies import (
    GENERIC_ARG_TYPES,
    TRIPLE_FAILURES,
    TripleFailed,
    http1_status,
    triple_error,
    triple_outcome,
)
from tribridge.registries.base import Endpoint
from tribridge.upstream.pool import PoolSet
from tribridge.upstream.protocols import TripleTransport, UpstreamPool, Waiter
from tribridge.upstream.triple import APP_NAME, TripleCallError


class TripleServed(Protocol):
    """What the Triple half reads of the service it belongs to (``invoke.invoker.Service``,
    which owns a ``TripleCalls``): its configuration, the shared clients, the pool of an
    instance and the gateway's event listeners."""

    cfg: ServiceConfig
    pools: PoolSet
    events: Events

    def pool(self, ep: Endpoint) -> UpstreamPool: ...


def _identity(version: str, group: str) -> list[tuple[str, str | bytes]]:
    """Who calls and which export: the headers every Triple request starts with."""
    headers: list[tuple[str, str | bytes]] = [("tri-consumer-appname", APP_NAME)]
    if version:
        headers.append(("tri-service-version", version))
    if group:
        headers.append(("tri-service-group", group))
    return headers


@dataclass(slots=True)
class TripleTemplate:
    path: str
    wrapper: RequestWrapperTemplate
    headers: list[tuple[str, str | bytes]]


class TripleCalls:
    """The Triple half of one ``Service``."""

    def __init__(self, svc: TripleServed) -> None:
        self.svc = svc
        self._templates: dict[tuple[Any, ...], TripleTemplate] = {}

    def _template(self, prep: Prepared) -> TripleTemplate:
        svc = self.svc
        cfg = svc.cfg
        call = prep.call
        version = call.version if call.version is not None else cfg.version
        group = call.group if call.group is not None else cfg.group
        types = prep.types
        key = (call.method, tuple(map(str, types or ())), version, group, prep.generic)
        t = self._templates.get(key)
        if t is None:
            if prep.generic:
                method = "$invoke"
                arg_types = list(GENERIC_ARG_TYPES)
            else:
                method = call.method
                arg_types = [jt.class_name() for jt in types or ()]
            headers = _identity(version, group)
            if prep.generic:
                headers.append(("generic", "true"))
            if cfg.token:
                headers.append(("token", cfg.token))
            t = TripleTemplate(
                f"/{cfg.interface}/{method}", RequestWrapperTemplate(arg_types), headers
            )
            if len(self._templates) > 4096:
                self._templates.clear()
            self._templates[key] = t
        return t

    def _request(
        self, prep: Prepared, with_attachments: bool = True
    ) -> tuple[TripleTemplate, bytes, list[tuple[str, str | bytes]]]:
        call = prep.call
        t = self._template(prep)
        try:
            payload = t.wrapper.encode([encode(a) for a in prep.wire])
        except HessianError as e:
            raise GatewayError(
                400, "bad_arguments", str(e), service=self.svc.cfg.interface, method=call.method
            ) from None
        headers = t.headers
        if call.attachments and with_attachments:
            headers = headers + attachments_to_headers(call.attachments)
        return t, payload, headers

    def send_fast(self, prep: Prepared, ep: Endpoint, waiter: Waiter[Any]) -> bool:
        """Start a Triple call without a coroutine when the client can (the h2/lean
        clients with an open connection): its future's outcome goes on to ``waiter``;
        else (False) hand over to the async path."""
        svc = self.svc
        prep.first = ep
        if svc.cfg.transport == "http1":
            return False
        start = getattr(svc.pools.triple_client(), "start", None)
        if start is None:
            return False
        t, payload, _ = self._request(prep, with_attachments=False)
        extra = attachments_to_headers(prep.call.attachments) if prep.call.attachments else ()
        pool = svc.pool(ep)
        try:
            # the template's headers are a cache key in the client; attachments vary per call
            fut = start(ep, t.path, payload, t.headers, prep.timeout, extra, pool.tls)
        except TripleCallError:
            return False  # the async path reports it (and may try another instance)
        if fut is None:
            return False
        prep.first = None
        prep.triple = True
        prep.pool = pool
        pool.active += 1
        fut.add_done_callback(partial(_forward, waiter))
        return True

    def finish(self, prep: Prepared, reply: Any, exc: BaseException | None) -> Outcome:
        pool = prep.pool
        assert pool is not None
        pool.active -= 1
        svc = self.svc
        if exc is not None:
            if isinstance(exc, TripleCallError):
                if exc.code in TRIPLE_FAILURES:
                    attempts.record(pool, False, svc.cfg.interface, svc.events)
                return Outcome.failed(triple_error(exc, svc.cfg, prep.call))
            raise exc
        pool.record_success()
        return triple_outcome(reply, svc.cfg, prep.call)

    async def attempt(
        self, prep: Prepared, ep: Endpoint, pool: UpstreamPool, timeout: float
    ) -> tuple[Outcome, bool | None]:
        """One wrapper-mode attempt (an ``invoke.attempts.Attempt``)."""
        t, payload, headers = self._request(prep)
        client: TripleTransport = self.svc.pools.triple_client()
        pool.active += 1
        try:
            reply = await client.unary(ep, t.path, payload, headers, timeout, pool.tls)
        except TripleCallError as e:
            return self._failed(e, ep, prep.call), None
        finally:
            pool.active -= 1
        return triple_outcome(reply, self.svc.cfg, prep.call), True

    def _failed(self, e: TripleCallError, ep: Endpoint, call: Call) -> Outcome:
        if not e.sent or e.code in TRIPLE_FAILURES:
            raise TripleFailed(e, f"{ep.host}:{ep.port}")
        return Outcome.failed(triple_error(e, self.svc.cfg, call))

    async def attempt_http1(
        self, prep: Prepared, ep: Endpoint, pool: UpstreamPool, timeout: float
    ) -> tuple[Outcome, bool | None]:
        """Triple's HTTP/1.1 unary mode: the call's JSON arguments as the body (one argument:
        itself, as Java binds a single parameter to the whole body; several: a JSON array,
        bound by position), the JSON reply as the value."""
        cfg = self.svc.cfg
        call = prep.call
        extra = {"service": cfg.interface, "method": call.method}
        args = call.args
        try:
            body = (
                dumps(args[0] if len(args) == 1 else args, decimals_as_numbers=True)
                if args
                else b"{}"
            )
        except (TypeError, ValueError) as e:
            raise GatewayError(400, "bad_arguments", str(e), **extra) from None
        version = call.version if call.version is not None else cfg.version
        group = call.group if call.group is not None else cfg.group
        headers = _identity(version, group)
        if cfg.token:
            headers.append(("token", cfg.token))
        if call.attachments:
            headers += attachments_to_headers(call.attachments)
        pool.active += 1
        try:
            reply = await self.svc.pools.http1_client().unary(
                ep, f"/{cfg.interface}/{call.method}", body, headers, timeout
            )
        except TripleCallError as e:
            return self._failed(e, ep, call), None
        finally:
            pool.active -= 1
        if reply.status != 200:
            err = triple_error(TripleCallError(http1_status(reply)), cfg, call)
            return Outcome.failed(err), (False if reply.status >= 500 else None)
        try:
            value = loads(reply.body) if reply.body else None
        except JSONDecodeError as e:
            err = GatewayError(502, "bad_provider_response", f"reply is not JSON: {e}", **extra)
            return Outcome.failed(err), True
        return Outcome(value, reply.attachments()), True


def _forward(waiter: Waiter[Any], fut: asyncio.Future[Any]) -> None:
    """A Triple client's future, done: its outcome to the fast path's waiter."""
    if fut.cancelled():
        waiter.set_exception(asyncio.CancelledError())
    elif (exc := fut.exception()) is not None:
        waiter.set_exception(exc)
    else:
        waiter.set_result(fut.result())
