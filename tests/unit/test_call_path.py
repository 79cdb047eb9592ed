"""The call path in memory (tribridge.interop.harness): Gateway.handle and the invoker over
in-process providers that read the real hessian2 request bytes and write real replies —
retries, the deadline, outlier ejection, error mapping and the event hooks."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tribridge.codecs.dubbo.frame import (
    BAD_REQUEST,
    SERVER_THREADPOOL_EXHAUSTED_ERROR,
    SERVICE_ERROR,
)
from tribridge.codecs.hessian2 import parse_types
from tribridge.config.services import MethodConfig, ServiceConfig
from tribridge.config.upstream import UpstreamSettings
from tribridge.interop.harness import (
    Fault,
    InMemoryPools,
    Status,
    Thrown,
    json_body,
    open_gateway,
    request,
)
from tribridge.invoke.call import Call, RequestContext
from tribridge.invoke.events import (
    AttemptFailed,
    CallEnded,
    CallStarted,
    Events,
    InstanceEjected,
)
from tribridge.invoke.invoker import Service
from tribridge.registries.base import Endpoint, ServiceKey, Snapshot
from tribridge.registries.metadata import MethodDefinition, ServiceDefinition

S = "com.x.Calc"
A, B = "127.0.0.1:20001", "127.0.0.1:20002"


def add(inv: Any) -> Any:
    return inv.args[0] + inv.args[1]


def config(retries: int = 2, idempotent: bool = False, timeout: str = "2s", more: str = "") -> str:
    return f"""
listen: {{host: 127.0.0.1, port: 0}}
upstream: {{eject_after: 2, eject_seconds: 60}}
registries:
  static: {{type: static, services: {{{S}: ["{A}", "{B}"]}}}}
services:
  - interface: {S}
    loadbalance: roundrobin
    retries: {retries}
    timeout: {timeout}
    methods:
      add: {{types: [int, int], idempotent: {str(idempotent).lower()}}}
routes:
  - {{method: GET, path: "/add/{{a}}/{{b}}", service: {S}, call: add,
      params: [{{from: path, name: a, type: int}}, {{from: path, name: b, type: int}}]}}
auto_routes: {{prefix: /, expose: ["com.x.*"]}}
{more}"""


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# ---- the router, end to end in memory -----------------------------------------------------


def test_explicit_route_reaches_the_provider_through_real_bytes() -> None:
    async def go() -> None:
        gw, pools = open_gateway(config(), {A: add, B: add})
        r = await request(gw, "GET", "/add/40/2")
        assert (r.status, json_body(r)) == (200, 42)
        r = await request(gw, "POST", f"/{S}/add", [1, 2])  # auto route, same service
        assert (r.status, json_body(r)) == (200, 3)
        received = pools[A].received + pools[B].received
        assert [(i.method, i.desc, i.args) for i in received] == [
            ("add", "II", [40, 2]),
            ("add", "II", [1, 2]),
        ]

    run(go())


def test_a_request_that_never_left_goes_to_another_instance() -> None:
    async def go() -> None:
        gw, pools = open_gateway(config(retries=1), {B: add})  # A refuses connections
        for _ in range(4):
            r = await request(gw, "GET", "/add/1/1")
            assert (r.status, json_body(r)) == (200, 2)
        assert pools[B].calls == 4 and pools[A].calls == 0

    run(go())


@pytest.mark.parametrize("idempotent", [False, True])
def test_a_sent_request_is_retried_only_for_idempotent_methods(idempotent: bool) -> None:
    async def go() -> None:
        gw, pools = open_gateway(config(idempotent=idempotent), {A: add, B: add})
        pools[A].faults = [Fault.LOST]  # round robin starts at A: its call is lost
        r = await request(gw, "GET", "/add/2/3")
        if idempotent:
            assert (r.status, json_body(r)) == (200, 5)
            assert pools[A].calls + pools[B].calls == 2  # one lost, one answered
        else:
            assert r.status == 502 and json_body(r)["error"]["code"] == "connection_lost"
            assert pools[A].calls + pools[B].calls == 1

    run(go())


def test_no_attempt_starts_after_the_deadline() -> None:
    async def go() -> None:
        gw, pools = open_gateway(config(idempotent=True, timeout="200ms"), {A: add, B: add})
        pools[A].faults = [Fault.TIMEOUT]
        pools[B].faults = [Fault.TIMEOUT]
        r = await request(gw, "GET", "/add/2/3")
        assert r.status == 504 and json_body(r)["error"]["code"] == "upstream_timeout"
        # the first attempt used the whole timeout: an idempotent method is not sent again
        assert pools[A].calls + pools[B].calls == 1

    run(go())


def test_a_failing_instance_is_ejected_and_skipped() -> None:
    async def go() -> None:
        gw, pools = open_gateway(config(retries=0), {A: add, B: add})
        ejected: list[InstanceEjected] = []
        failed: list[AttemptFailed] = []
        gw.events.subscribe(InstanceEjected, ejected.append)
        gw.events.subscribe(AttemptFailed, failed.append)
        pools[A].faults = [Fault.BUSY] * 10  # fails fast, never sent
        pools[B].faults = []
        statuses = [(await request(gw, "GET", "/add/1/2")).status for _ in range(8)]
        # round robin: A fails twice (eject_after: 2), then every call goes to B
        assert pools[A].calls == 2, statuses
        assert statuses.count(200) == 6 and statuses.count(503) == 2
        assert [(e.service, e.address) for e in ejected] == [(S, A)]
        # both failures are attempt failures, whether the loop or the fast path made them
        assert [(f.address, f.code) for f in failed] == [(A, "upstream_backlogged")] * 2
        assert gw.stats.attempt_failures == {(S, "upstream_backlogged"): 2}

    run(go())


@pytest.mark.parametrize(
    ("raised", "status", "code"),
    [
        (Thrown("java.lang.IllegalStateException", "boom"), 500, "provider_exception"),
        (
            Status(BAD_REQUEST, "unexpected object java.lang.String"),
            400,
            "provider_rejected_request",
        ),
        (Status(SERVICE_ERROR, "Service com.x.Calc not found"), 404, "not_found"),
        (Status(SERVER_THREADPOOL_EXHAUSTED_ERROR, "pool full"), 503, "provider_overloaded"),
    ],
)
def test_provider_failures_map_to_http(raised: Exception, status: int, code: str) -> None:
    def fail(inv: Any) -> Any:
        raise raised

    async def go() -> None:
        gw, pools = open_gateway(config(retries=0), {A: fail, B: fail})
        r = await request(gw, "GET", "/add/1/2")
        err = json_body(r)["error"]
        assert (r.status, err["code"]) == (status, code), err
        if code == "provider_exception":
            assert err["exception"] == "java.lang.IllegalStateException"
            assert err["message"] == "boom"
        if code == "provider_rejected_request":
            assert "[hint:" in err["message"]  # what to do about it
        overloaded = code == "provider_overloaded"
        # an overloaded provider counts against the instance; an answer otherwise resets it
        assert pools[A].failures + pools[B].failures == (1 if overloaded else 0)

    run(go())


# ---- event hooks --------------------------------------------------------------------------


def test_event_hooks_see_every_routed_request_once() -> None:
    async def go() -> None:
        more = "tracing: {enabled: true, generate: true, response_header: true}\n"
        gw, pools = open_gateway(config(retries=1, more=more), {A: add})  # B refuses
        started: list[CallStarted] = []
        ended: list[CallEnded] = []
        failed: list[AttemptFailed] = []
        gw.events.subscribe(CallStarted, started.append)
        gw.events.subscribe(CallEnded, ended.append)
        gw.events.subscribe(AttemptFailed, failed.append)
        ok = await request(gw, "GET", "/add/1/2")
        missing = await request(gw, "GET", "/nowhere")
        assert ok.status == 200 and missing.status == 404
        assert [(e.ctx.route, e.ctx.service, e.ctx.method) for e in started] == [
            ("GET /add/{a}/{b}", S, "add")
        ]
        assert [(e.ctx.route, e.status) for e in ended] == [("GET /add/{a}/{b}", 200), ("", 404)]
        # the tracing hook injected a traceparent the provider received, and answered it
        sent = pools[A].received[-1].attachments["traceparent"]
        assert ("traceresponse", sent) in ok.headers
        # the metrics hook counted both; a refused instance (if picked) was an attempt failure
        series = gw.stats.series
        assert series[("GET /add/{a}/{b}", S, "add", 200)][0] == 1
        assert series[("", "", "", 404)][0] == 1
        assert all(f.address == B and f.code == "connect_failed" for f in failed)
        assert sum(gw.stats.attempt_failures.values()) == len(failed)

    run(go())


# ---- the invoker alone --------------------------------------------------------------------


def service(pools: InMemoryPools, retries: int = 2) -> Service:
    cfg = ServiceConfig(S, retries=retries, loadbalance="roundrobin")
    cfg.methods["add"] = MethodConfig("add", parse_types("int,int"))
    svc = Service(cfg, pools)  # type: ignore[arg-type]
    eps = tuple(Endpoint(a.split(":")[0], int(a.split(":")[1])) for a in (A, B))
    svc.update(Snapshot(ServiceKey(S), eps))
    return svc


def test_invoker_outcome_is_a_value_or_an_error() -> None:
    def maybe(inv: Any) -> Any:
        if inv.args[0] < 0:
            raise Thrown("java.lang.ArithmeticException", "negative")
        return add(inv)

    async def go() -> None:
        pools = InMemoryPools({A: maybe, B: maybe})
        svc = service(pools)
        out = await svc.invoke(Call("add", [20, 22]))
        assert out.ok and out.unwrap() == 42 and out.attachments["dubbo"]
        bad = await svc.invoke(Call("add", [-1, 1]))
        assert not bad.ok and bad.error is not None and bad.value is None
        assert (bad.error.status, bad.error.extra["exception"]) == (
            500,
            "java.lang.ArithmeticException",
        )
        with pytest.raises(type(bad.error)):
            bad.unwrap()

    run(go())


def test_invoker_runs_the_attempt_loop_with_its_events() -> None:
    async def go() -> None:
        pools = InMemoryPools({B: add}, UpstreamSettings(eject_after=1))  # A refuses
        svc = service(pools, retries=0)
        svc.events = events = Events()
        failed: list[AttemptFailed] = []
        ejected: list[InstanceEjected] = []
        events.subscribe(AttemptFailed, failed.append)
        events.subscribe(InstanceEjected, ejected.append)
        ctx = RequestContext("test", S, "add", events=events)
        outcomes = [await svc.invoke(Call("add", [1, 1]), ctx) for _ in range(3)]
        errors = [o.error.code for o in outcomes if o.error is not None]
        # no retries: the refused instance answers once (connect_failed), then it is
        # ejected and the balancer keeps to the other one
        assert errors == ["connect_failed"], outcomes
        assert [(f.ctx, f.address, f.retrying) for f in failed] == [(ctx, A, False)]
        assert [e.address for e in ejected] == [A]
        assert pools[B].calls == 2

    run(go())


# ---- the Dubbo2 ingress on the same loop --------------------------------------------------


class _Consumer:
    """What the ingress needs from a consumer connection: replies land in ``sent``."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.peer = "test"
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.sent.append(data)


async def _ingress_call(retries: int, providers: dict[str, Any], faults: dict[str, Any]) -> Any:
    from tribridge.codecs.dubbo import FrameDecoder, decode_response, encode_request

    more = "dubbo_ingress:\n  listen: {host: 127.0.0.1, port: 0}\n"
    more += '  routes: [{interface: "com.x.*", to: local}]\n'
    gw, pools = open_gateway(config(retries=retries, more=more), providers)
    for addr, fault in faults.items():
        pools[addr].faults = [fault]
    ingress = gw.relay.ingress
    ingress._server = object()  # accepting, as after start() (no socket in memory)
    consumer = _Consumer()
    (frame,) = FrameDecoder().feed(encode_request(7, S, "add", "II", [40, 2]))
    ingress.on_request(consumer, frame)
    for _ in range(100):  # the reply comes on the loop (a task, then a callback)
        if consumer.sent:
            break
        await asyncio.sleep(0.01)
    (reply,) = FrameDecoder().feed(consumer.sent[0])
    assert reply.request_id == 7  # the consumer's own id, whatever went upstream
    return decode_response(reply), pools


def test_ingress_retries_a_refused_instance_through_the_loop() -> None:
    res, pools = run(_ingress_call(1, {B: add}, {}))  # A refuses: the loop goes on to B
    assert res.ok and res.value == 42, res
    assert pools[B].received[0].args == [40, 2]  # the body forwarded byte for byte


@pytest.mark.parametrize(
    ("providers", "faults", "status"),
    [
        ({}, {}, SERVICE_ERROR),  # nobody listens: no provider answered (70)
        ({A: add, B: add}, {A: Fault.BUSY, B: Fault.BUSY}, SERVER_THREADPOOL_EXHAUSTED_ERROR),
    ],
)
def test_ingress_failures_answer_the_table_status(
    providers: dict[str, Any], faults: dict[str, Any], status: int
) -> None:
    res, _ = run(_ingress_call(0, providers, faults))
    assert res.status == status and "tribridge" in (res.error or ""), res


# ---- method plans: per snapshot, never stale ------------------------------------------------


def _eps(*addrs: str) -> tuple[Endpoint, ...]:
    return tuple(Endpoint(a.split(":")[0], int(a.split(":")[1])) for a in addrs)


def test_a_new_snapshot_voids_the_method_plans_made_from_the_old_one() -> None:
    """``prepare`` keeps what every call of a method shares (signature, endpoints,
    templates) per snapshot: a registry update must reach the very next call — its
    endpoints (one gone, none at all) and its provider metadata (a signature where there
    was none turns an inferred, generic call into a direct one with the declared types)."""

    def add_any(inv: Any) -> Any:  # direct, or generic: ($invoke method, types, args)
        args = inv.args[2] if inv.method == "$invoke" else inv.args
        return args[0] + args[1]

    async def go() -> None:
        pools = InMemoryPools({A: add_any, B: add_any})
        cfg = ServiceConfig(S, retries=0, loadbalance="roundrobin")  # no configured types
        svc = Service(cfg, pools)  # type: ignore[arg-type]
        svc.update(Snapshot(ServiceKey(S), _eps(A, B)))
        for _ in range(4):
            assert (await svc.invoke(Call("add", [1, 2]))).unwrap() == 3
        assert (pools[A].calls, pools[B].calls) == (2, 2)
        assert pools[A].received[-1].method == "$invoke"  # no signature known: generic

        svc.update(Snapshot(ServiceKey(S), _eps(B)))
        for _ in range(3):
            await svc.invoke(Call("add", [1, 2]))
        assert (pools[A].calls, pools[B].calls) == (2, 5)

        svc.update(Snapshot(ServiceKey(S), ()))
        out = await svc.invoke(Call("add", [1, 2]))
        assert out.error is not None and out.error.code == "no_provider"

        d = ServiceDefinition(
            S, {"add": (MethodDefinition("add", tuple(parse_types("long,long"))),)}
        )
        svc.update(Snapshot(ServiceKey(S), _eps(A), definition=d))
        assert (await svc.invoke(Call("add", [40, 2]))).unwrap() == 42
        inv = pools[A].received[-1]
        assert (inv.method, inv.desc) == ("add", "JJ")  # direct, the declared types

    run(go())


def test_method_plans_are_per_argument_count_and_per_call_overrides() -> None:
    """Overloads are chosen by argument count, and a call's own version, group and timeout
    make their own plan; type hints (per request) are never taken from a plan."""

    async def go() -> None:
        pools = InMemoryPools({A: lambda inv: inv.desc, B: lambda inv: inv.desc})
        cfg = ServiceConfig(S, retries=0, call="direct")
        svc = Service(cfg, pools)  # type: ignore[arg-type]
        d = ServiceDefinition(
            S,
            {
                "f": (
                    MethodDefinition("f", tuple(parse_types("int"))),
                    MethodDefinition("f", tuple(parse_types("int,java.lang.String"))),
                )
            },
        )
        svc.update(Snapshot(ServiceKey(S), _eps(A), definition=d))
        assert (await svc.invoke(Call("f", [1]))).unwrap() == "I"
        assert (await svc.invoke(Call("f", [1, "x"]))).unwrap() == "ILjava/lang/String;"
        hinted = Call("f", [1], types=parse_types("long"))
        assert (await svc.invoke(hinted)).unwrap() == "J"
        assert (await svc.invoke(Call("f", [1]))).unwrap() == "I"
        # a timeout of its own: the call carries it (the attachment says so)
        await svc.invoke(Call("f", [1], timeout=0.5))
        assert pools[A].received[-1].attachments["timeout"] == "500"
        await svc.invoke(Call("f", [1]))
        assert pools[A].received[-1].attachments["timeout"] != "500"

    run(go())


def test_a_fast_path_reply_that_cannot_be_rendered_still_answers() -> None:
    """The fast path's waiter (``routing.app._Reply``) always completes its ``Later``: a
    provider future cancelled under it (a Triple client closing) or a bug in rendering ends
    as a failed Later, which the listener answers 500, never as a request left hanging."""
    from types import SimpleNamespace

    from tribridge.routing.app import _Reply

    class Svc:
        def finish(self, prep: Any, answer: Any, exc: BaseException | None) -> Any:
            if exc is not None:
                raise exc
            raise RuntimeError("rendering bug")

    ctx = RequestContext("r", S, "add")
    for complete in (
        lambda r: r.set_exception(asyncio.CancelledError()),
        lambda r: r.set_result(object()),
    ):
        reply = _Reply(Svc(), SimpleNamespace(call=Call("add", [])), ctx)  # type: ignore[arg-type]
        seen: list[Any] = []
        reply.then(seen.append)
        complete(reply)
        assert seen == [reply] and reply.done()
        with pytest.raises((asyncio.CancelledError, RuntimeError)):
            reply.outcome()


def test_method_plans_are_bounded_whatever_clients_choose() -> None:
    """Clients choose methods, argument counts and timeouts (auto routes, the timeout
    header): the plans kept per service stay at most ``MAX_PLANS``, and calls still work."""
    from tribridge.invoke.invoker import MAX_PLANS

    async def go() -> None:
        pools = InMemoryPools({A: add, B: add})
        svc = service(pools, retries=0)
        for i in range(MAX_PLANS + 50):
            out = await svc.invoke(Call("add", [i, 1], timeout=1 + i / 1000))
            assert out.unwrap() == i + 1
            assert len(svc._plans) <= MAX_PLANS

    run(go())
