"""The disk fills up: the hub's whole data directory (database, keys, chunks, datasets) on a
small tmpfs.

1. ``mount -t tmpfs -o size=N`` (needs root; without it the scenario is skipped with the
   reason), ``hub init`` into it, ``hub serve`` with its own worker, the usual set-up;
2. both agencies upload distinct files until uploads fail: what the clients see is recorded
   (status, error code and message per kind), whether the hub is still running, what
   ``/readyz`` and an ordinary read answer while the disk is full;
3. the hub is SIGKILLed and started again while the disk is still full (does it come up, or
   exit at start-up: a supervisor would restart it in a loop);
4. the tmpfs is grown (``mount -o remount,size=4N``, live): the failed uploads are resumed,
   one more upload is made, and the invariants are checked as after every kill.

The tmpfs is always unmounted at the end (lazily if a process still holds it).
"""

from __future__ import annotations

import os
import random
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from audit.db import open_engine
from bench._common import log
from bench._faults.checks import Checker
from bench._faults.ledger import Ledger
from bench._faults.procs import Fleet, HubDidNotStart
from bench._faults.steps import UploadStep
from bench._faults.world import Data, World, init_hub

__all__ = ["run_disk_full"]

SCENARIO = "disk-full"


def _mount(path: Path, size_mb: int) -> str | None:
    """Mount a tmpfs of ``size_mb`` MiB at ``path``; the reason if that is not possible."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root (the bench runs as an ordinary user)"
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        return "no mount command on this machine"
    if done.returncode != 0:
        return f"mount -t tmpfs is not permitted here: {done.stderr.strip()[:300]}"
    return None


def _umount(path: Path) -> None:
    for args in (["umount", str(path)], ["umount", "-l", str(path)]):
        if subprocess.run(args, capture_output=True, check=False).returncode == 0:
            return


def _usage(path: Path) -> dict[str, float]:
    st = os.statvfs(path)
    return {
        "size_mb": round(st.f_blocks * st.f_frsize / 2**20, 2),
        "free_mb": round(st.f_bavail * st.f_frsize / 2**20, 2),
    }


def _status(url: str, path: str, token: str | None = None) -> str:
    request = urllib.request.Request(url + path)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return str(response.status)
    except urllib.error.HTTPError as exc:
        return f"{exc.code} {exc.read()[:200].decode('utf-8', 'replace')}"
    except OSError as exc:
        return f"unreachable: {exc}"


def run_disk_full(
    data: Data,
    out: Path,
    *,
    size_mb: int,
    chunk_bytes: int,
    seed: int,
    database: str | None = None,
) -> dict[str, Any]:
    """The scenario on SQLite (the database on the tmpfs too) or, given a PostgreSQL
    ``database`` URL, with only the data directory's files on the tmpfs."""
    mount = out / "tmpfs"
    reason = _mount(mount, size_mb)
    system = "ours-postgresql" if database else "ours-sqlite"
    row: dict[str, Any] = {"system": system, "dataset": f"tmpfs {size_mb} MiB"}
    row["scenario"] = SCENARIO
    if reason is not None:
        log(f"disk-full skipped: {reason}")
        return {**row, "skipped": reason}
    fleet: Fleet | None = None
    try:
        data_dir = mount / "hub"
        made = init_hub(data_dir, database, chunk_bytes)
        world = World(data, data_dir, made, out)
        fleet = Fleet(data_dir, out / "logs")
        fleet.start("api")  # no job runs here: no worker
        world.set_up(fleet.url)
        return {**row, **_play(world, fleet, mount, size_mb, random.Random(seed), out)}
    finally:
        if fleet is not None:
            fleet.close()
        _umount(mount)


def _play(
    world: World, fleet: Fleet, mount: Path, size_mb: int, rng: random.Random, out: Path
) -> dict[str, Any]:
    ledger = Ledger()
    ledger.begin(SCENARIO, 1)
    engine = open_engine(world.database_url())
    checker = Checker(world, ledger, out / "checks")
    try:
        figures: dict[str, Any] = {"tmpfs_mb": size_mb}
        failed: list[UploadStep] = []
        uploads = 0
        while len(failed) < 3 and uploads < 400:
            step = UploadStep(world, ledger, engine, rng)
            step.run(fleet.url)
            uploads += len(step.finished)
            if step.done_us is None:
                failed.append(step)
                if len(failed) == 1:
                    figures["disk_at_first_failure"] = _usage(mount)
        figures["uploads_before_full"] = uploads
        figures["errors_when_full"] = dict(ledger.errors.get(SCENARIO, {}))
        figures["error_examples"] = dict(ledger.examples.get(SCENARIO, {}))
        figures["hub_alive_when_full"] = fleet.hub_alive()
        figures["readyz_when_full"] = _status(fleet.url, "/readyz")
        figures["read_when_full"] = _status(fleet.url, "/v1/me", world.tokens["analyst"])
        log(f"disk-full: full after {uploads} uploads: {figures['errors_when_full']}")
        figures["kills"] = len(fleet.kill("hub"))
        try:
            fleet.restart()
            figures["restart_when_full"] = "ready"
        except HubDidNotStart as exc:
            log_tail = sorted(fleet.logs.iterdir())[-1].read_text(errors="replace")[-400:]
            figures["restart_when_full"] = f"failed: {exc}: {log_tail}"
        log(f"disk-full: restart while full: {figures['restart_when_full'][:200]}")
        grown = time.perf_counter()
        subprocess.run(["mount", "-o", f"remount,size={4 * size_mb}m", str(mount)], check=True)
        if not fleet.hub_alive():
            fleet.restart()
        fleet.wait_ready(60)
        for step in failed:
            step.recover(fleet.url, 60)
        after = UploadStep(world, ledger, engine, rng)
        after.run(fleet.url)
        figures["upload_after_growing"] = after.done_us is not None
        figures["recovery_seconds"] = round(time.perf_counter() - grown, 2)
        found = checker.check(fleet.url)
        figures.update(
            acknowledged=ledger.acknowledged(SCENARIO),
            lost=len(ledger.lost),
            lost_examples=found.lost[:5],
            half_written_visible=len(found.half_written),
            half_written_examples=found.half_written[:5],
            log_verified=found.log_verified and found.log_consistent,
            leftover_files=len(found.leftovers),
            errors_seen=dict(sorted(ledger.errors.get(SCENARIO, {}).items())),
        )
        figures["problems"] = [s.problem for s in (*failed, after) if s.problem]
        if not figures["upload_after_growing"]:
            figures["problems"].append("no upload succeeded after growing the disk")
        return figures
    finally:
        engine.dispose()
