"""Snapshot.repeats: which re-sends every registry (ZooKeeper, Nacos) holds back."""

from __future__ import annotations

from dataclasses import replace

from tribridge.registries.base import Endpoint, ServiceKey, Snapshot

KEY = ServiceKey("com.x.Greeter")
EPS = (Endpoint("10.0.0.1", 20880),)


def test_a_snapshot_differing_only_in_time_repeats_the_last() -> None:
    old = Snapshot(KEY, EPS, at=1.0)
    assert Snapshot(KEY, EPS, at=2.0).repeats(old)


def test_news_is_never_held_back() -> None:
    old = Snapshot(KEY, EPS, healthy=False, error="connection lost")
    assert not Snapshot(KEY, ()).repeats(old)  # endpoints
    assert not replace(old, healthy=True, error=None).repeats(old)  # health
    assert not replace(old, error="session expired").repeats(old)  # a new reason
    assert not replace(old, definition=object()).repeats(old)  # signatures
    assert not Snapshot(KEY, EPS).repeats(None)  # the first one
    # an answer after a pending one is news even when it looks the same
    assert not Snapshot(KEY, ()).repeats(Snapshot(KEY, (), pending=True))
