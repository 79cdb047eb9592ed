"""The kube-apiserver emulator (interop/k8s_emulator.py) proven with the official Go client,
``k8s.io/client-go`` shared informers on EndpointSlices (label selector) and Endpoints, as
controllers and service meshes use them: the initial list (client-go streams it with
``sendInitialEvents``), watch events for an endpoint appearing, changing and disappearing,
resuming after the server ends a watch, and relisting after ``410 Gone``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tribridge.interop.k8s_emulator import (
    KubeEmulator,
    endpoint_slice,
    endpoints,
    slice_endpoint,
)
from tribridge.interop.registry_peers import LineClient, start_k8s_informer
from tribridge.interop.testing import BackgroundLoop

pytestmark = pytest.mark.interop

NS = "shop"
SELECTOR = "kubernetes.io/service-name=cart"
DUBBO = [{"name": "dubbo", "port": 20880, "protocol": "TCP"}]


@pytest.fixture(scope="session")
def kbg() -> Iterator[BackgroundLoop]:
    with BackgroundLoop() as loop:
        yield loop


@pytest.fixture(scope="session")
def kube(kbg: BackgroundLoop) -> Iterator[KubeEmulator]:
    emu = kbg.run(KubeEmulator().start())
    # one object exists before the informer starts: it must come with the initial list
    kbg.run(
        _call(
            emu.apply, endpoint_slice("cart-old", "cart", [slice_endpoint("10.1.0.1")], DUBBO, NS)
        )
    )
    try:
        yield emu
    finally:
        kbg.run(emu.stop())


@pytest.fixture(scope="session")
def informer(kube: KubeEmulator) -> Iterator[LineClient]:
    client = start_k8s_informer(kube.url, NS, SELECTOR)
    try:
        yield client
    finally:
        client.close(grace=5)


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def on_loop(bg: BackgroundLoop, fn: Callable[..., Any], *args: Any) -> Any:
    return bg.run(_call(fn, *args))


def ev(
    kind: str, typ: str, name: str, ready: list[str] | None = None
) -> Callable[[dict[str, Any]], bool]:
    def pred(e: dict[str, Any]) -> bool:
        return (
            e.get("kind") == kind
            and e.get("type") == typ
            and e.get("name") == name
            and (ready is None or e.get("ready") == ready)
        )

    return pred


def test_initial_list_arrives_before_sync(kube: KubeEmulator, informer: LineClient) -> None:
    # client-go (v0.37) lists by streaming: a watch with sendInitialEvents, ended for the
    # reflector by the initial-events-end bookmark
    first = next(q for plural, q, _ in kube.watch_log if plural == "endpointslices")
    assert first.get("sendInitialEvents") == "true", first
    assert first.get("labelSelector") == SELECTOR, first
    synced = next(i for i, e in enumerate(informer.events) if e.get("kind") == "SYNCED")
    added = [e for e in informer.events[:synced] if e.get("name") == "cart-old"]
    assert added and added[0]["type"] == "ADDED" and added[0]["ready"] == ["10.1.0.1:20880"]


def test_endpoint_appears_changes_and_disappears(
    kbg: BackgroundLoop, kube: KubeEmulator, informer: LineClient
) -> None:
    on_loop(
        kbg, kube.apply, endpoint_slice("cart-a", "cart", [slice_endpoint("10.1.0.2")], DUBBO, NS)
    )
    informer.wait_event(ev("EndpointSlice", "ADDED", "cart-a", ["10.1.0.2:20880"]), 10, "ADDED")
    # a second pod joins; the first turns terminating (not routable)
    eps = [slice_endpoint("10.1.0.2", ready=False, terminating=True), slice_endpoint("10.1.0.3")]
    on_loop(kbg, kube.apply, endpoint_slice("cart-a", "cart", eps, DUBBO, NS))
    informer.wait_event(ev("EndpointSlice", "UPDATED", "cart-a", ["10.1.0.3:20880"]), 10, "UPDATED")
    on_loop(kbg, kube.delete, "EndpointSlice", "cart-a", NS)
    informer.wait_event(ev("EndpointSlice", "DELETED", "cart-a"), 10, "DELETED")
    # the core/v1 Endpoints informer (no selector) follows the same lifecycle
    on_loop(kbg, kube.apply, endpoints("cart", ["10.1.0.4"], DUBBO, namespace=NS))
    informer.wait_event(ev("Endpoints", "ADDED", "cart", ["10.1.0.4:20880"]), 10, "Endpoints ADDED")
    on_loop(kbg, kube.apply, endpoints("cart", [], DUBBO, namespace=NS))
    informer.wait_event(ev("Endpoints", "UPDATED", "cart", []), 10, "Endpoints emptied")
    on_loop(kbg, kube.delete, "Endpoints", "cart", NS)
    informer.wait_event(ev("Endpoints", "DELETED", "cart"), 10, "Endpoints DELETED")
    # the label selector is the server's job: another Service's slice, or another namespace's,
    # never reaches the slice informer
    on_loop(
        kbg, kube.apply, endpoint_slice("pay-a", "pay", [slice_endpoint("10.2.0.1")], DUBBO, NS)
    )
    on_loop(
        kbg,
        kube.apply,
        endpoint_slice("cart-x", "cart", [slice_endpoint("10.3.0.1")], DUBBO, "other"),
    )
    on_loop(
        kbg, kube.apply, endpoint_slice("cart-b", "cart", [slice_endpoint("10.1.0.5")], DUBBO, NS)
    )
    informer.wait_event(ev("EndpointSlice", "ADDED", "cart-b"), 10, "cart-b")
    names = {e.get("name") for e in informer.events}
    assert "pay-a" not in names and "cart-x" not in names


def test_watch_resumes_after_the_server_ends_it(
    kbg: BackgroundLoop, kube: KubeEmulator, informer: LineClient
) -> None:
    """The apiserver ends watches (timeouts, restarts); client-go re-watches from the last
    resourceVersion: later changes arrive, nothing is re-ADDED."""
    watches = sum(1 for r in kube.requests if r.endswith("endpointslices?watch"))
    before = len(informer.events)
    on_loop(kbg, kube.end_watches)
    on_loop(
        kbg, kube.apply, endpoint_slice("cart-c", "cart", [slice_endpoint("10.1.0.6")], DUBBO, NS)
    )
    informer.wait_event(
        ev("EndpointSlice", "ADDED", "cart-c", ["10.1.0.6:20880"]), 30, "after resume"
    )
    assert sum(1 for r in kube.requests if r.endswith("endpointslices?watch")) > watches
    again = [
        e
        for e in informer.events[before:]
        if e.get("type") == "ADDED" and e.get("name") != "cart-c"
    ]
    assert again == [], again


def test_relist_after_410_gone(
    kbg: BackgroundLoop, kube: KubeEmulator, informer: LineClient
) -> None:
    """While the server is down, a slice is deleted, another created and the history
    compacted: client-go's resume gets 410 Gone, relists, and reports both changes."""

    async def outage() -> None:
        await kube.stop()
        kube.delete("EndpointSlice", "cart-b", NS)
        kube.apply(endpoint_slice("cart-d", "cart", [slice_endpoint("10.1.0.7")], DUBBO, NS))
        kube.compact()
        await kube.start()

    n = len(kube.watch_log)
    kbg.run(outage())
    informer.wait_event(
        ev("EndpointSlice", "DELETED", "cart-b"), 40, "the deletion made while away"
    )
    informer.wait_event(
        ev("EndpointSlice", "ADDED", "cart-d", ["10.1.0.7:20880"]), 40, "the new slice"
    )
    after = [
        (q, outcome) for plural, q, outcome in kube.watch_log[n:] if plural == "endpointslices"
    ]
    gone = [i for i, (_, outcome) in enumerate(after) if outcome == "gone"]
    assert gone, after
    # ... and the relist that followed was a streaming list again
    assert any(q.get("sendInitialEvents") == "true" for q, _ in after[gone[0] + 1 :]), after
