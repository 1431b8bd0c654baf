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

__all__ = ["worker_supervisor"]

log = structlog.get_logger("hub.supervisor")
_GRACE_SECONDS = 30
_CHECK_SECONDS = 2.0


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

        async def watch() -> None:
            while True:
                await asyncio.sleep(_CHECK_SECONDS)
                for i, proc in enumerate(procs):
                    code = proc.poll()
                    if code is not None:
                        log.warning("worker exited; restarting it", pid=proc.pid, code=code)
                        procs[i] = _start(data_dir)

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
