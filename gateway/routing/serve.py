"""Running a gateway as a process: logging set-up and the signal loop of ``tribridge run``."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from tribridge.ops import heap
from tribridge.routing.app import ACCESS_LOGGER, Gateway

log = logging.getLogger("tribridge")


def setup_logging(level: int = logging.INFO) -> None:
    """Access lines to stdout as they are; everything else from WARNING, timestamped."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access_log = logging.getLogger(ACCESS_LOGGER)
    access_log.addHandler(handler)
    access_log.setLevel(level)
    access_log.propagate = False
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("tribridge.config").setLevel(logging.INFO)  # "config … applied" is news


async def serve_forever(gw: Gateway) -> None:
    """Until SIGINT/SIGTERM; SIGHUP re-reads the config file the gateway watches."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        loop.add_signal_handler(signal.SIGHUP, _on_sighup, gw)
    except (NotImplementedError, RuntimeError, AttributeError):
        pass
    heap.settle()  # started: what is alive now lives as long as the process (ops/heap.py)
    await stop.wait()
    await gw.stop()


def _on_sighup(gw: Gateway) -> None:
    if gw.watcher is None:
        log.warning("SIGHUP: no config file to re-read (not started with -c FILE)")
        return
    gw.watcher.check_now()
