"""The access log: one JSON line per answered request, formatted cheaply, written in batches.

A ``logging`` call per request cost several microseconds of CPU (a ``LogRecord``, the logger
and handler locks, a ``Formatter``) plus a ``write`` and a ``flush`` syscall per line.  Here a
request costs one bytes formatting (its strings escaped by ``orjson``; the keys, their order
and the values are those of the original per-line JSON) and a list append; the lines go to the ``tribridge.access`` logger as ONE record, joined by newlines,
when the next line would take the batch past ``max_bytes``, ``interval`` seconds after the
first line of a batch (a timer on the event loop, so an idle gateway still writes within that
delay) and on shutdown.
The logger's handlers still decide where lines go: with the CLI's ``%(message)s`` handler the
bytes written are exactly those of per-line logging, only fewer writes.

``max_bytes`` is ``PIPE_BUF`` (4096 on Linux): ``--workers N`` processes share one stdout,
often a pipe (a container's log), and only writes up to ``PIPE_BUF`` are atomic there, so a
bigger batch could interleave mid-line with another worker's (a line alone never did).  The
buffer is bounded by construction: flushing is synchronous on the event loop, so at most
``max_bytes`` are ever held, and nothing is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import select
import time
from typing import Any

import orjson

#: bytes per write (lines and their newlines): at most one atomic pipe write
MAX_BYTES = getattr(select, "PIPE_BUF", 512)
#: seconds a line may wait for its batch to fill
INTERVAL = 0.2

_INFO = logging.INFO
_dumps = orjson.dumps
#: one line: ts (seconds, ms precision), method, path, status, ms, client address, body bytes
_LINE = b'{"ts":%.3f,"method":%s,"path":%s,"status":%d,"ms":%.3f,"client":%s,"bytes":%d}'


#: str -> its JSON, for the strings lines repeat (methods, paths, client addresses); at
#: most 4096 strings of at most 256 characters (clients choose paths)
_JSON: dict[str, bytes] = {}


def _json(s: str) -> bytes:
    j = _JSON.get(s)
    if j is None:
        j = _dumps(s)
        if len(s) <= 256:
            if len(_JSON) >= 4096:
                _JSON.clear()
            _JSON[s] = j
    return j


class AccessLog:
    """The ``access_log(request, response, elapsed)`` hook of ``http.server.HttpServer``."""

    def __init__(
        self, logger: logging.Logger, max_bytes: int = MAX_BYTES, interval: float = INTERVAL
    ) -> None:
        self.logger = logger
        self.max_bytes = max_bytes
        self.interval = interval
        self.lines: list[bytes] = []
        self.size = 0  # bytes in ``lines``, a newline each
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, req: Any, resp: Any, elapsed: float) -> None:
        # a gateway whose access logger is off (tests, embedding without setup_logging)
        # formats nothing, as logging.info did; asked at the start of each batch (a level
        # changed mid-batch: ``logger.info`` itself still drops that batch)
        if not self.lines and not self.logger.isEnabledFor(_INFO):
            return
        client = req.client
        # the line's JSON: strings through orjson (escaped; the few distinct methods, paths
        # and clients remembered), numbers formatted in place
        raw = _LINE % (
            time.time(),
            _json(req.method),
            _json(req.path),
            resp.status,
            elapsed * 1000,
            _json(client[0]) if client else b"null",
            len(resp.body),
        )
        n = len(raw) + 1  # UTF-8 bytes, as written, and the newline
        if self.size + n > self.max_bytes:
            self.flush()
        self.lines.append(raw)
        self.size += n
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.interval, self.flush)

    def flush(self) -> None:
        """Write the waiting lines now (batch full, timer, shutdown)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.lines:
            text = b"\n".join(self.lines).decode()
            self.lines = []
            self.size = 0
            self.logger.info(text)
