"""How the gateway consumes a dynamic registry: first answer awaited, not-ready, last-known-good,
signatures from provider metadata, unknown auto services forgotten.

The registry here is an in-process ``Registry`` driven by the test (the wire protocols of
real registries are proven in their own test modules); what is under test is the gateway."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from tribridge.config.model import parse_config
from tribridge.interop.demo_provider import DEMO_METHODS, DEMO_TYPES, USER
from tribridge.interop.testing import BackgroundLoop, http_request
from tribridge.registries.base import (
    Endpoint,
    Listener,
    ServiceKey,
    Snapshot,
)
from tribridge.registries.metadata import ServiceDefinition
from tribridge.routing.app import Gateway

from tests.helpers.registries import ScriptedRegistry

S = "com.tribridge.demo.DemoService"


class DrivenRegistry(ScriptedRegistry):
    """Answers only when the test says so, like a registry that is slow or down."""

    def __init__(self) -> None:
        super().__init__("driven")
        self.unsubscribed: list[ServiceKey] = []

    def first_answer(self, service: ServiceKey) -> Snapshot | None:
        return Snapshot(service, (), healthy=False, pending=True)

    def unsubscribe(self, service: ServiceKey, listener: Listener) -> None:
        self.unsubscribed.append(service)
        self.listeners.get(service, []).remove(listener)

    def push(self, service: str, snap_kw: dict) -> None:
        for key, ls in self.listeners.items():
            if key.interface == service:
                for listener in ls:
                    listener(Snapshot(key, **snap_kw))


def definition() -> ServiceDefinition:
    methods = [
        {"name": m.name, "parameterTypes": list(m.params), "returnType": m.returns}
        for m in DEMO_METHODS.values()
    ]
    types = [
        {"type": USER, "properties": DEMO_TYPES[USER]["fields"]},
        {
            "type": "com.tribridge.demo.Color",
            "enums": DEMO_TYPES["com.tribridge.demo.Color"]["enum"],
        },
    ]
    return ServiceDefinition.from_json(
        {"canonicalName": S, "methods": methods, "types": types}, "provider metadata (test)"
    )


@pytest.fixture()
def env() -> Iterator[tuple[BackgroundLoop, DrivenRegistry, int, object]]:
    with BackgroundLoop() as bg:
        provider = bg.start_provider(version="")
        cfg = parse_config(
            "registries: {d: {type: static, services: {}}}\n"
            "registry_wait: 0.5\n"
            "auto_routes: {prefix: /, expose: ['com.tribridge.*']}\n",
            "<test>",
        )
        reg = DrivenRegistry()

        async def go() -> Gateway:
            gw = Gateway(cfg)
            gw.registries["d"] = reg
            await gw.start(port=0)
            return gw

        gw = bg.run(go())
        try:
            yield bg, reg, gw.port, provider
        finally:
            bg.run(gw.stop(0.5))


def _endpoint(provider: object) -> Endpoint:
    return Endpoint("127.0.0.1", provider.port)  # type: ignore[attr-defined]


def test_first_request_waits_for_the_registry(env) -> None:  # type: ignore[no-untyped-def]
    bg, reg, port, provider = env
    bg.loop.call_later(0.1, reg.push, S, {"endpoints": (_endpoint(provider),)})
    status, body = http_request(port, "POST", f"/{S}/greet", ["Ada"])
    assert (status, body) == (200, "Hello, Ada")


def test_registry_silent_means_not_ready_then_unknown_is_forgotten(env) -> None:  # type: ignore[no-untyped-def]
    bg, reg, port, _ = env
    status, body = http_request(port, "POST", f"/{S}/greet", ["Ada"])
    assert status == 503 and body["error"]["code"] == "registry_not_ready"
    # the registry then says: nobody provides it -> 404, and the watch is released
    bg.loop.call_soon_threadsafe(reg.push, S, {"endpoints": ()})
    status, body = http_request(port, "POST", f"/{S}/greet", ["Ada"])
    assert status == 404, body
    assert any(k.interface == S for k in reg.unsubscribed)


def test_last_known_good_keeps_serving(env) -> None:  # type: ignore[no-untyped-def]
    bg, reg, port, provider = env
    bg.loop.call_later(0.05, reg.push, S, {"endpoints": (_endpoint(provider),)})
    assert http_request(port, "POST", f"/{S}/greet", ["a"])[0] == 200
    lost = {"endpoints": (_endpoint(provider),), "healthy": False, "error": "session expired"}
    bg.loop.call_soon_threadsafe(reg.push, S, lost)
    assert http_request(port, "POST", f"/{S}/greet", ["b"]) == (200, "Hello, b")


def test_signature_from_provider_metadata(env) -> None:  # type: ignore[no-untyped-def]
    bg, reg, port, provider = env
    snap = {"endpoints": (_endpoint(provider),), "definition": definition()}
    bg.loop.call_later(0.05, reg.push, S, snap)
    # long, long from metadata: a direct call with descriptor JJ, no generic $invoke
    assert http_request(port, "POST", f"/{S}/addLong", [2**40, 1]) == (200, 2**40 + 1)
    assert provider.last_args["addLong"] == [2**40, 1]
    assert "$invoke" not in provider.last_attachments
    # a POJO parameter without "class" becomes a User because metadata says so
    status, body = http_request(port, "POST", f"/{S}/echoUser", {"id": 3, "name": "Al", "age": 9})
    assert status == 200 and body["class"] == USER and body["name"] == "Al"
    # a value that does not fit names the metadata as the signature source
    status, body = http_request(port, "POST", f"/{S}/addLong", ["x", 1])
    assert status == 400 and "provider metadata (test)" in body["error"]["message"]


def test_overloads_that_arity_cannot_split_are_refused(env) -> None:  # type: ignore[no-untyped-def]
    bg, reg, port, provider = env
    d = ServiceDefinition.from_json(
        {
            "canonicalName": S,
            "methods": [
                {"name": "greet", "parameterTypes": ["java.lang.String"]},
                {"name": "greet", "parameterTypes": ["int"]},
            ],
        },
        "provider metadata (test)",
    )
    bg.loop.call_later(0.05, reg.push, S, {"endpoints": (_endpoint(provider),), "definition": d})
    status, body = http_request(port, "POST", f"/{S}/greet", ["x"])
    assert status == 400 and body["error"]["code"] == "ambiguous_overload"
    # the request's type hint settles it
    hint = {"x-tribridge-types": "java.lang.String"}
    assert http_request(port, "POST", f"/{S}/greet", ["x"], hint) == (200, "Hello, x")


def test_malformed_definition_is_a_registry_error() -> None:
    from tribridge.registries.base import RegistryError

    for bad in (b"{", b"[]", b'{"methods": []}', b'{"canonicalName": "a.B", "methods": [{}]}'):
        with pytest.raises(RegistryError):
            ServiceDefinition.from_json(bad)
    d = ServiceDefinition.from_json(
        b'{"canonicalName":"a.B","methods":[],"types":[{"type":"a.C","properties":{"f":""}},'
        b'{"type":"a.D","properties":{"f":"int"}}]}'
    )
    assert "a.C" not in d.types.defs and "a.D" in d.types.defs


def test_lookup_waits_for_a_settled_snapshot() -> None:
    async def go() -> Snapshot:
        reg = DrivenRegistry()
        asyncio.get_running_loop().call_later(0.05, reg.push, S, {"endpoints": ()})
        return await reg.lookup(ServiceKey(S), timeout=2)

    snap = asyncio.run(go())
    assert snap.endpoints == () and not snap.pending


def test_another_group_is_followed_in_the_registry_bounded_and_released() -> None:
    """A call for a group (or version) other than the service's own asks the registry for
    that key — the service's snapshot never held those exports — at most
    MAX_FOLLOWED_KEYS of them, all released with the service."""
    from tribridge.config.services import ServiceConfig
    from tribridge.invoke.invoker import MAX_FOLLOWED_KEYS, Call, Service
    from tribridge.upstream.pool import PoolSet

    reg = DrivenRegistry()
    svc = Service(ServiceConfig(S, "1.0.0", "g1"), PoolSet())
    svc.registry = reg
    g1 = Endpoint("10.0.0.1", 20880, version="1.0.0", group="g1")
    g2 = Endpoint("10.0.0.1", 20880, version="1.0.0", group="g2")
    svc.update(Snapshot(svc.cfg.key, (g1,)))
    assert svc.candidates(Call("m", [])) == [g1]

    call = Call("m", [], group="g2")
    assert svc.snapshot_for(call).pending  # asked, not answered: not g1's endpoint
    k2 = ServiceKey(S, "1.0.0", "g2")
    for listener in reg.listeners[k2]:
        listener(Snapshot(k2, (g2,)))
    assert svc.candidates(call) == [g2]
    assert svc.candidates(Call("m", [], group="g1")) == [g1]

    for i in range(MAX_FOLLOWED_KEYS + 10):
        svc.candidates(Call("m", [], group=f"x{i}"))
    followed = [k for k, ls in reg.listeners.items() if ls]
    assert len(followed) == MAX_FOLLOWED_KEYS  # g2 and 31 of the x-groups; then no more
    # past the bound: our own snapshot, narrowed as before (g1's endpoint is not group x)
    assert svc.candidates(Call("m", [], group="x99")) == []

    svc.release()
    assert sorted(map(str, reg.unsubscribed)) == sorted(map(str, followed))
    assert not any(reg.listeners.values())


def test_a_call_for_another_version_is_typed_by_that_version_s_definition() -> None:
    from tribridge.config.services import ServiceConfig
    from tribridge.invoke.invoker import Call, Service
    from tribridge.upstream.pool import PoolSet

    def d(param: str, source: str) -> ServiceDefinition:
        doc = {"canonicalName": S, "methods": [{"name": "m", "parameterTypes": [param]}]}
        return ServiceDefinition.from_json(doc, source)

    reg = DrivenRegistry()
    svc = Service(ServiceConfig(S, "1.0.0"), PoolSet())
    svc.registry = reg
    svc.update(
        Snapshot(
            svc.cfg.key, (Endpoint("10.0.0.1", 1, version="1.0.0"),), definition=d("int", "v1")
        )
    )
    v2 = Call("m", [1], version="2.0.0")
    assert svc.signature(v2)[1] == "v1"  # v2 not answered yet: as before, the service's own
    k2 = ServiceKey(S, "2.0.0", "")
    for listener in reg.listeners[k2]:
        listener(
            Snapshot(k2, (Endpoint("10.0.0.1", 1, version="2.0.0"),), definition=d("long", "v2"))
        )
    types, source = svc.signature(v2)
    assert source == "v2" and [str(t) for t in types or []] == ["long"]
    assert svc.signature(Call("m", [1]))[1] == "v1"
