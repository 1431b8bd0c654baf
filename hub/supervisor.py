"""``hub serve``'s worker processes: started beside the API, restarted if one dies, stopped
(SIGTERM, then SIGKILL after a grace period) when the API shuts down.

Workers run as separate processes (``hub worker``), never as threads of the API: linkage is
CPU-bound work that would stall the event loop, and a worker killed mid-job must not take
the API with it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import structlog
from aiohttp import web

__all__ = ["restart_delay", "worker_supervisor"]

log = structlog.get_logger("hub.supervisor")
_GRACE_SECONDS = 30
_CHECK_SECONDS = 2.0
#: A worker that ran this long before exiting is restarted at once.
_STABLE_SECONDS = 60.0
_MAX_DELAY_SECONDS = 60.0


def restart_delay(quick_exits: int) -> float:
    """Seconds to wait before starting again a worker that exited: none after one that had
    run for a while (or exited quickly once), then doubling (4, 8, ... up to a minute) while
    each new worker exits soon after it starts (a broken configuration, say)."""
    if quick_exits <= 1:
        return 0.0
    return min(_MAX_DELAY_SECONDS, _CHECK_SECONDS * 2.0 ** (quick_exits - 1))


def _start(data_dir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "worker", "--data-dir", str(data_dir)],
        stdin=subprocess.DEVNULL,
    )


def worker_supervisor(
    data_dir: Path, count: int
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context running ``count`` workers for the app's lifetime."""

    async def supervise(app: web.Application) -> AsyncIterator[None]:
        procs = [_start(data_dir) for _ in range(count)]
        log.info("workers started", count=count, pids=[p.pid for p in procs])

        loop = asyncio.get_running_loop()
        started = [loop.time()] * count
        quick_exits = [0] * count  # consecutive exits within _STABLE_SECONDS of starting
        due: list[float | None] = [None] * count  # when an exited worker is started again

        async def watch() -> None:
            while True:
                await asyncio.sleep(_CHECK_SECONDS)
                for i, proc in enumerate(procs):
                    code = proc.poll()
                    if code is None:
                        continue
                    now = loop.time()
                    if due[i] is None:  # seen exiting for the first time
                        ran = now - started[i]
                        quick_exits[i] = quick_exits[i] + 1 if ran < _STABLE_SECONDS else 0
                        due[i] = now + restart_delay(quick_exits[i])
                        log.warning("worker exited", pid=proc.pid, code=code, ran_seconds=ran)
                    if now < (due[i] or now):
                        continue  # one that keeps dying at once is restarted less often
                    log.warning("restarting a worker", after_quick_exits=quick_exits[i])
                    procs[i] = _start(data_dir)
                    started[i], due[i] = now, None

        watcher = asyncio.create_task(watch())
        try:
            yield
        finally:
            watcher.cancel()
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
            for proc in procs:
                try:
                    await asyncio.to_thread(proc.wait, _GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    await asyncio.to_thread(proc.wait)
            log.info("workers stopped")

    return supervise
