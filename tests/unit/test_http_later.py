"""``http.messages.Later``: a response a callback completes, without a future."""

from __future__ import annotations

import asyncio
import logging

import pytest
from tribridge.http.messages import Later, Response


def test_then_runs_at_resolution_or_at_once_when_already_done() -> None:
    seen: list[Response] = []
    a = Later()
    a.then(lambda x: seen.append(x.outcome()))
    assert seen == [] and not a.done()
    a.resolve(Response(200, b"a"))
    b = Later()
    b.resolve(Response(201, b"b"))
    b.then(lambda x: seen.append(x.outcome()))
    assert [r.body for r in seen] == [b"a", b"b"]
    a.resolve(Response(500))  # completed once: later calls change nothing
    a.fail(RuntimeError("late"))
    assert a.outcome().body == b"a"


def test_a_failed_later_raises_its_exception_from_outcome() -> None:
    later = Later()
    later.fail(ValueError("provider"))
    with pytest.raises(ValueError, match="provider"):
        later.outcome()


def test_one_consumer_only() -> None:
    later = Later()
    later.then(lambda _: None)
    with pytest.raises(RuntimeError, match="one consumer"):
        later.then(lambda _: None)


def test_a_failing_continuation_does_not_reach_the_resolver(caplog) -> None:
    """The resolver is a provider connection's ``data_received``: other replies of the
    same read must still be delivered, so a continuation's exception is logged there."""
    later = Later()

    def boom(_: Later) -> None:
        raise RuntimeError("continuation")

    later.then(boom)
    with caplog.at_level(logging.ERROR, "tribridge.http"):
        later.resolve(Response(200))
    assert "continuation of a Later failed" in caplog.text


async def test_await_yields_the_response_or_raises() -> None:
    loop = asyncio.get_running_loop()
    ok, bad, done = Later(), Later(), Later()
    done.resolve(Response(204))
    loop.call_soon(ok.resolve, Response(200, b"x"))
    loop.call_soon(bad.fail, KeyError("k"))
    assert (await ok).body == b"x"
    assert (await done).status == 204
    with pytest.raises(KeyError):
        await bad
