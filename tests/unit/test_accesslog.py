"""The access log hook: the per-line JSON format, batches by size, by timer and on flush."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import orjson
from tribridge.ops.accesslog import AccessLog


class Grab(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())


def _logger(name: str) -> tuple[logging.Logger, Grab]:
    log = logging.getLogger(name)
    log.handlers.clear()
    log.propagate = False
    log.setLevel(logging.INFO)
    grab = Grab()
    log.addHandler(grab)
    return log, grab


REQ = SimpleNamespace(method="GET", path='/a"b/\u00e9', client=("127.0.0.1", 5))
RESP = SimpleNamespace(status=200, body=b"hello")


async def test_lines_keep_their_format_and_go_out_in_batches_of_max_bytes() -> None:
    log, grab = _logger("tribridge.test.access.batch")
    probe = AccessLog(log)
    probe(REQ, RESP, 0.0012345)
    size = len(probe.lines[0]) + 1  # UTF-8 bytes (the path is not ASCII) and the newline
    assert probe.size == size
    probe.flush()
    grab.records.clear()
    hook = AccessLog(log, max_bytes=3 * size, interval=60)
    for _ in range(3):
        hook(REQ, RESP, 0.0012345)
    assert grab.records == []  # three lines fit
    hook(REQ, RESP, 0.0012345)  # a fourth would not: the three go out first
    assert len(grab.records) == 1 and len(hook.lines) == 1 and hook.size == size
    lines = grab.records[0].split("\n")
    assert len(lines) == 3 and len(grab.records[0].encode()) + 1 <= hook.max_bytes
    doc = orjson.loads(lines[0])
    assert list(doc) == ["ts", "method", "path", "status", "ms", "client", "bytes"]
    assert doc["path"] == REQ.path and doc["ms"] == 1.234 and doc["client"] == "127.0.0.1"
    assert doc["bytes"] == 5 and doc["status"] == 200
    hook.flush()  # shutdown
    assert len(grab.records) == 2 and hook._timer is None and hook.size == 0


async def test_a_lone_line_is_written_by_the_timer() -> None:
    log, grab = _logger("tribridge.test.access.timer")
    hook = AccessLog(log, interval=0.01)
    hook(REQ, RESP, 0.001)
    assert grab.records == []
    await asyncio.sleep(0.05)
    assert len(grab.records) == 1 and orjson.loads(grab.records[0])["method"] == "GET"


async def test_nothing_is_formatted_while_the_logger_is_off() -> None:
    log, _ = _logger("tribridge.test.access.off")
    log.setLevel(logging.WARNING)
    hook = AccessLog(log)
    hook(REQ, RESP, 0.001)
    assert hook.lines == [] and hook._timer is None


async def test_remembered_strings_are_bounded_and_never_change_a_line() -> None:
    """Methods, paths and client addresses are kept as JSON once seen; clients choose
    paths, so the table holds at most 4096 strings of at most 256 characters."""
    from tribridge.ops import accesslog

    log, grab = _logger("tribridge.test.access.bounded")
    hook = AccessLog(log, interval=60)
    paths = [f'/p/{i}/"x"' for i in range(5000)] + ["/" + "y" * 10_000]
    for p in paths:
        hook(SimpleNamespace(method="GET", path=p, client=("::1", 9)), RESP, 0.001)
        assert len(accesslog._JSON) <= 4096
    hook.flush()
    got = [orjson.loads(x)["path"] for r in grab.records for x in r.split("\n")]
    assert got == paths
    assert not any(len(s) > 256 for s in accesslog._JSON)
