"""The access log: one JSON line per answered request, formatted cheaply, written in batches.

A ``logging`` call per request cost several microseconds of CPU (a ``LogRecord``, the logger
and handler locks, a ``Formatter``) plus a ``write`` and a ``flush`` syscall per line.  Here a
request costs one ``orjson.dumps`` of a small dict (the line format is unchanged) and a list
append; the lines go to the ``tribridge.access`` logger as ONE record, joined by newlines,
when ``batch`` lines are waiting, ``interval`` seconds after the first line of a batch (a
timer on the event loop, so an idle gateway still writes within that delay) and on shutdown.
The logger's handlers still decide where lines go: with the CLI's ``%(message)s`` handler the
bytes written are exactly those of per-line logging, only fewer writes.

The buffer is bounded by construction: flushing is synchronous on the event loop when
``batch`` lines are waiting, so at most ``batch`` lines are ever held, and nothing is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson

#: lines per write; ~25 KB at the usual 100-byte line
BATCH = 256
#: seconds a line may wait for its batch to fill
INTERVAL = 0.2

_INFO = logging.INFO


class AccessLog:
    """The ``access_log(request, response, elapsed)`` hook of ``http.server.HttpServer``."""

    def __init__(
        self, logger: logging.Logger, batch: int = BATCH, interval: float = INTERVAL
    ) -> None:
        self.logger = logger
        self.batch = batch
        self.interval = interval
        self.lines: list[str] = []
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, req: Any, resp: Any, elapsed: float) -> None:
        # isEnabledFor is a cached dict lookup: a gateway whose access logger is off (tests,
        # embedding without setup_logging) formats nothing, as logging.info did
        if not self.logger.isEnabledFor(_INFO):
            return
        lines = self.lines
        lines.append(
            orjson.dumps(
                {
                    "ts": round(time.time(), 3),
                    "method": req.method,
                    "path": req.path,
                    "status": resp.status,
                    "ms": round(elapsed * 1000, 3),
                    "client": req.client[0] if req.client else None,
                    "bytes": len(resp.body),
                }
            ).decode()
        )
        if len(lines) >= self.batch:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.interval, self.flush)

    def flush(self) -> None:
        """Write the waiting lines now (batch full, timer, shutdown)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.lines:
            text = "\n".join(self.lines)
            self.lines = []
            self.logger.info(text)
