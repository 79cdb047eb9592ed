"""``tribridge run --workers N``: N forked processes on one port (SO_REUSEPORT).

The parent only supervises: it forks the workers before any event loop exists, forwards
SIGHUP (config re-read) and SIGTERM/SIGINT (graceful stop) to them by PID, restarts a worker
that dies, and exits when they are gone.  The kernel spreads new connections over the
workers' listening sockets; a connection stays with its worker for its whole life.

Every worker is a complete gateway, identical to ``--workers 1``:

* **Registries**: each worker subscribes itself.  Endpoint snapshots are consumed by the
  worker's own event loop on every request, so they must be in its memory; relaying them
  from one watcher process would need an IPC channel on the control path and make that
  process a single point of failure, for little gain — a registry serves N more watchers
  easily (ZooKeeper watches and Nacos/Eureka polls are cheap), and each worker degrades to
  last-known-good on its own.
* **Config**: each worker watches the file itself (``reload.interval``), and the parent
  forwards SIGHUP, so ``kill -HUP <parent>`` reaches all of them.  ``PUT /config`` on the
  admin API is refused in workers (it would change one of N); edit the file instead.
* **Admin / metrics**: worker *i* serves the admin API on ``admin.port + i`` (each
  worker's own counters; scrape each port, or sum them in Prometheus).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable

from tribridge.ops.admin import WORKER_ENV

#: a worker dying this soon after its start counts as a crash loop
_QUICK_DEATH = 2.0
_MAX_QUICK_DEATHS = 3


def supervise(n: int, worker_main: Callable[[int], int], grace: float = 15.0) -> int:
    """Fork ``n`` workers running ``worker_main(index)``; return the parent's exit code."""
    children: dict[int, tuple[int, float]] = {}  # pid -> (index, started)
    pending: list[int] = []  # signals received, handled in the loop below

    def on_signal(signum: int, _frame: object) -> None:
        pending.append(signum)

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                # ignored until the worker's loop handles it (a reload, never a death)
                signal.signal(signal.SIGHUP, signal.SIG_IGN)
                os.environ[WORKER_ENV] = str(index)
                code = worker_main(index)
            except BaseException as e:  # report and leave without running the parent's code
                print(f"tribridge worker {index}: {e!r}", file=sys.stderr, flush=True)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children[pid] = (index, time.monotonic())

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    for i in range(n):
        spawn(i)
    print(
        f"tribridge supervisor {os.getpid()}: workers {', '.join(map(str, children))}",
        file=sys.stderr,
        flush=True,
    )
    quick_deaths = 0
    stopping = False
    deadline = 0.0
    code = 0
    while children:
        while pending:
            signum = pending.pop(0)
            if signum == signal.SIGHUP and not stopping:
                _send(children, signal.SIGHUP)
            elif signum in (signal.SIGTERM, signal.SIGINT) and not stopping:
                stopping = True
                deadline = time.monotonic() + grace
                _send(children, signal.SIGTERM)
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            if stopping and time.monotonic() > deadline:
                _send(children, signal.SIGKILL)
                deadline = time.monotonic() + 5
            time.sleep(0.05)
            continue
        if pid not in children:
            continue
        index, started = children.pop(pid)
        if stopping:
            continue
        rc = os.waitstatus_to_exitcode(status)
        print(f"tribridge worker {index} (pid {pid}) exited with {rc}", file=sys.stderr, flush=True)
        quick_deaths = quick_deaths + 1 if time.monotonic() - started < _QUICK_DEATH else 0
        if quick_deaths >= _MAX_QUICK_DEATHS:
            print("tribridge: workers keep dying at start; stopping", file=sys.stderr, flush=True)
            stopping = True
            code = 1
            deadline = time.monotonic() + grace
            _send(children, signal.SIGTERM)
            continue
        time.sleep(min(1.0, 0.2 * quick_deaths))
        spawn(index)
    return code


def _send(children: dict[int, tuple[int, float]], sig: int) -> None:
    for pid in list(children):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
