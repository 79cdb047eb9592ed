"""The shared skip-and-report model for untrusted registry records (registries/records.py)."""

from __future__ import annotations

import logging

import pytest
from tribridge.registries.base import RegistryError
from tribridge.registries.records import (
    BAD_PORT,
    BAD_TYPE,
    BAD_VALUE,
    MAX_REASONS,
    NOT_UTF8,
    TOO_LARGE,
    RecordRejected,
    SkipReport,
    bounded_int,
    checked_text,
)
from tribridge.registries.static import StaticRegistry


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_rejection_is_a_registry_error_with_a_reason() -> None:
    e = RecordRejected(BAD_PORT, "port 99999")
    assert isinstance(e, RegistryError)
    assert (e.reason, e.detail, str(e)) == (BAD_PORT, "port 99999", "bad_port: port 99999")


def test_a_record_still_bad_on_the_next_pass_is_counted_once() -> None:
    rep = SkipReport("zk")
    for _ in range(5):  # five polls see the same bad record
        rep.update("com.x.A", [("n1", RecordRejected(BAD_PORT, "x"))])
    assert rep.total == 1 and rep.by_reason == {BAD_PORT: 1}
    rep.update("com.x.A", [])  # removed: forgotten, not counted
    assert rep.records() == [] and rep.total == 1
    rep.update("com.x.A", [("n1", RecordRejected(BAD_PORT, "x"))])  # back again: new appearance
    assert rep.total == 2


def test_bounded_per_source_sources_and_reasons() -> None:
    rep = SkipReport("zk", keep=3, max_sources=2)
    for i in range(10):
        rep.add("s1", f"n{i}", RecordRejected(BAD_VALUE))
    assert [r.where for r in rep.records("s1")] == ["n7", "n8", "n9"]
    rep.add("s2", "a", BAD_VALUE, "d")
    rep.add("s3", "a", BAD_VALUE, "d")
    assert {r.source for r in rep.records()} == {"s2", "s3"}
    for i in range(MAX_REASONS + 10):
        rep.add("s3", f"r{i}", RecordRejected(f"reason{i}"))
    assert len(rep.by_reason) == MAX_REASONS + 1  # the rest folded into "other"
    assert rep.by_reason["other"] >= 10
    rep.add("s3", "x" * 10_000 + "\x00", BAD_VALUE)
    assert all(len(r.where) < 1000 and r.where.isprintable() for r in rep.records())


def test_logging_is_rate_limited_per_source(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    rep = SkipReport("zk", log_interval=60, clock=clock)
    with caplog.at_level(logging.WARNING, "tribridge.registry.records"):
        for i in range(100):
            rep.add("s", f"n{i}", RecordRejected(BAD_VALUE))
        assert len(caplog.records) == 1
        clock.t = 61
        rep.add("s", "late", RecordRejected(BAD_VALUE))
    assert len(caplog.records) == 2
    assert "+99 more" in caplog.records[1].getMessage()
    assert rep.total == 101


def test_every_registry_has_a_report_in_its_summary() -> None:
    reg = StaticRegistry({})
    reg.skips.add("com.x.A", "n", RecordRejected(BAD_PORT, "p"))
    assert reg.skips is reg.skips
    s = reg.skips.summary()
    assert s["total"] == 1 and s["current"][0]["reason"] == BAD_PORT


def test_checked_text_and_bounded_int() -> None:
    assert checked_text(b"ok", 10) == "ok"
    with pytest.raises(RecordRejected) as e:
        checked_text(b"x" * 11, 10)
    assert e.value.reason == TOO_LARGE
    with pytest.raises(RecordRejected) as e:
        checked_text(b"\xff\xfe", 10)
    assert e.value.reason == NOT_UTF8
    assert bounded_int("42", 0, 100, "w") == 42 and bounded_int(-1, -5, 5, "w") == -1
    for bad, reason in [
        (True, BAD_TYPE),
        (1.5, BAD_TYPE),
        ("1e9", BAD_VALUE),
        ("9" * 400, BAD_VALUE),
        (101, BAD_VALUE),
        ("٣", BAD_VALUE),
    ]:
        with pytest.raises(RecordRejected) as e:
            bounded_int(bad, 0, 100, "w")
        assert e.value.reason == reason, bad


def test_more_bad_records_than_shown_are_still_counted_once() -> None:
    rep = SkipReport("zk", keep=3)
    bad = [(f"n{i}", RecordRejected(BAD_PORT)) for i in range(50)]
    for _ in range(4):  # four passes over the same 50 bad records
        rep.update("s", bad)
    assert rep.total == 50
    assert len(rep.records("s")) == 3
    rep.update("s", bad[:10])  # 40 fixed
    rep.update("s", bad)  # and broken again: new appearances
    assert rep.total == 90
    rep.clear("s", "n0")
    rep.update("s", bad)
    assert rep.total == 91
