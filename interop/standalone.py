"""The tail every ``python -m tribridge.interop.X`` server shares: announce, wait, close.

Test launchers (``peers.start_ready_process``) wait for the ``READY …`` line, then stop the
process by PID with SIGTERM; this makes that a clean shutdown in every server.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from typing import Any


async def serve_until_signalled(ready: str, close: Callable[[], Awaitable[Any]]) -> None:
    """Print ``READY {ready}``, wait for SIGINT or SIGTERM, then ``await close()``."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    print(f"READY {ready}", flush=True)
    try:
        await stop.wait()
    finally:
        await close()
