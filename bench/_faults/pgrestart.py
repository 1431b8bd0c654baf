"""PostgreSQL restarted under a running hub, on a private throwaway cluster.

The machine's shared cluster is never touched: ``initdb`` (as user postgres) makes a cluster
in a temporary directory, ``pg_ctl start`` runs it on a free loopback port (local trust
authentication: nothing but this bench can reach it), and it is stopped and deleted at the
end, whatever happens. A hub (``hub serve`` supervising one worker) is set up on a database
there. Each round starts a linkage run, then, once a worker has claimed it, both agencies'
uploads and a burst of audited requests; after a random delay the cluster goes down and comes
back, one of three ways (drawn with the seeded RNG):

* ``restart-fast``: ``pg_ctl restart -m fast`` (clients disconnected, clean shutdown);
* ``crash``: ``pg_ctl stop -m immediate`` (no shutdown checkpoint: crash recovery at the next
  start), then ``start``;
* ``stop-pause``: ``pg_ctl stop -m fast``, 1 to 4 seconds down, then ``start``.

The hub is not restarted: the round measures how long after the database is back the hub
answers ``/readyz`` and an authenticated request again (``recovery_seconds``), counts the
errors its clients saw meanwhile, resumes the uploads, waits for the run to end and checks the
same invariants as after a kill. If the hub does not recover within a minute it is restarted
and that is reported (``hub_restarts``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import random
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from audit.db import open_engine
from bench._common import log
from bench._faults.checks import Checker
from bench._faults.ledger import Ledger
from bench._faults.procs import TOPOLOGIES, Fleet
from bench._faults.steps import AuditStep, RunStep, UploadStep
from bench._faults.world import Data, World, init_hub
from hub.local import free_port

__all__ = ["PrivateCluster", "run_pg_restart"]

SCENARIO = "pg-restart"
MODES = ("restart-fast", "crash", "stop-pause")
_BIN_DIRS = (Path("/usr/lib/postgresql/15/bin"),)


def _bin_dir() -> Path | None:
    for d in _BIN_DIRS:
        if (d / "initdb").is_file():
            return d
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class PrivateCluster:
    """A throwaway PostgreSQL cluster owned by user postgres, on a loopback port."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="pprl-faults-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.running = False

    @staticmethod
    def unavailable() -> str | None:
        """Why a private cluster cannot be made here (None: it can)."""
        if _bin_dir() is None:
            return "no initdb (PostgreSQL server binaries) on this machine"
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "no postgres user to run initdb as"
        if os.geteuid() != 0 and pwd.getpwuid(os.geteuid()).pw_name != "postgres":
            return "initdb must run as user postgres: run the bench as root or as postgres"
        return None

    def _as_postgres(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=120)

    def _ctl(self, *args: str) -> None:
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), *args)

    def start(self) -> str:
        """initdb, start, a role and database for the hub; the database URL."""
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self._as_postgres(
            str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
            "-E", "UTF8", "--no-instructions",
        )  # fmt: skip
        self.boot()
        import psycopg

        admin = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE ROLE faults LOGIN PASSWORD 'faults'")
            conn.execute("CREATE DATABASE faults OWNER faults")
        return f"postgresql://faults:faults@127.0.0.1:{self.port}/faults"

    def boot(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._ctl("-l", str(self.root / "server.log"), "-w", "-t", "60", "-o", options, "start")
        self.running = True

    def stop(self, mode: str) -> None:
        self._ctl("-m", mode, "-w", "-t", "60", "stop")
        self.running = False

    def bounce(self, how: str, rng: random.Random) -> float:
        """Take the cluster down and up ``how`` (``MODES``); seconds it was unavailable."""
        started = time.perf_counter()
        if how == "restart-fast":
            options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
            self._ctl("-l", str(self.root / "server.log"), "-m", "fast", "-w", "-t", "60",
                      "-o", options, "restart")  # fmt: skip
        else:
            self.stop("immediate" if how == "crash" else "fast")
            if how == "stop-pause":
                time.sleep(rng.uniform(1.0, 4.0))
            self.boot()
        return time.perf_counter() - started

    def close(self) -> None:
        if self.data.exists():
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self._as_postgres(
                    str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop",
                    check=False,
                )  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)


def _shape(n: int) -> str:
    """Round ``n``'s processes: the API beside a separate ``hub worker`` first, then ``hub
    serve`` supervising its own worker, in turn."""
    return TOPOLOGIES[n % len(TOPOLOGIES)]


def _serving(url: str, token: str) -> bool:
    """``/readyz`` and an authenticated (so audited) request both answer 200."""
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=5) as response:
            if response.status != 200:
                return False
        request = urllib.request.Request(url + "/v1/me")
        request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def run_pg_restart(
    data: Data, out: Path, *, restarts: int, chunk_bytes: int, seed: int
) -> dict[str, Any]:
    row: dict[str, Any] = {"system": "ours-postgresql", "dataset": "private cluster"}
    row["scenario"] = SCENARIO
    reason = PrivateCluster.unavailable()
    if reason is not None:
        log(f"pg-restart skipped: {reason}")
        return {**row, "skipped": reason}
    bin_dir = _bin_dir()
    assert bin_dir is not None
    cluster = PrivateCluster(bin_dir)
    fleet: Fleet | None = None
    try:
        url = cluster.start()
        made = init_hub(out / "hub", url, chunk_bytes)
        world = World(data, out / "hub", made, out)
        fleet = Fleet(world.data_dir, out / "logs")
        fleet.start(_shape(1))
        world.set_up(fleet.url)
        return {**row, **_play(world, fleet, cluster, restarts, random.Random(seed), out)}
    finally:
        if fleet is not None:
            fleet.close()
        cluster.close()


def _play(
    world: World,
    fleet: Fleet,
    cluster: PrivateCluster,
    restarts: int,
    rng: random.Random,
    out: Path,
) -> dict[str, Any]:
    ledger = Ledger()
    engine = open_engine(world.database_url())
    checker = Checker(world, ledger, out / "checks")
    recovery: list[float] = []
    downtime: list[float] = []
    modes: list[str] = []
    problems: list[str] = []
    half: set[str] = set()
    counts = {"hub_restarts": 0, "supervised_worker_restarts": 0, "standalone_worker_exits": 0}
    log_ok = True
    try:
        ledger.begin(SCENARIO, 0)
        first = UploadStep(world, ledger, engine, rng)  # a run needs both agencies' uploads
        first.run(fleet.url)
        for n in range(1, restarts + 1):
            ledger.begin(SCENARIO, n)
            shape = _shape(n)
            if fleet.topology != shape:
                fleet.stop()
                fleet.start(shape)
            how = rng.choice(MODES)
            modes.append(how)
            down, back_in = _round(
                world, fleet, cluster, ledger, engine, rng, how, counts, problems
            )
            downtime.append(down)
            if back_in is None:
                problems.append(f"round {n} ({how}, {shape}): the hub did not recover in 60 s")
            recovery.append(60.0 if back_in is None else back_in)
            found = checker.check(fleet.url)
            log_ok = log_ok and found.log_verified and found.log_consistent
            half.update(found.half_written)
            log(
                f"pg-restart {n} ({how}, {shape}): database down {down:.1f} s, hub serving "
                f"{recovery[-1]:.1f} s after it was back; log "
                f"{'verifies' if found.log_verified and found.log_consistent else 'FAILS'}"
                + (f"; LOST {found.lost}" if found.lost else "")
                + (f"; HALF-WRITTEN {found.half_written}" if found.half_written else "")
            )
    finally:
        engine.dispose()
    return {
        "rounds": len(modes),
        "restarts": len(modes),
        "modes": {m: modes.count(m) for m in MODES},
        "acknowledged": ledger.acknowledged(SCENARIO),
        "lost": len(ledger.lost),
        "lost_examples": [f"{k} {key}: {why}" for (k, key), why in list(ledger.lost.items())[:5]],
        "half_written_visible": len(half),
        "half_written_examples": sorted(half)[:5],
        "log_verified": log_ok and bool(modes),
        "database_down_seconds_p50": _p50(downtime),
        "recovery_seconds_p50": _p50(recovery),
        "recovery_seconds_max": round(max(recovery), 2) if recovery else None,
        **counts,
        "recovered_without_restart": counts["hub_restarts"] == 0
        and counts["standalone_worker_exits"] == 0,
        "errors_seen": dict(sorted(ledger.errors.get(SCENARIO, {}).items())),
        "error_examples": ledger.examples.get(SCENARIO, {}),
        "problems": problems,
    }


def _round(
    world: World,
    fleet: Fleet,
    cluster: PrivateCluster,
    ledger: Ledger,
    engine: Any,
    rng: random.Random,
    how: str,
    counts: dict[str, int],
    problems: list[str],
) -> tuple[float, float | None]:
    """One restart under load; (seconds the database was down, seconds after it was back
    until the hub served again, None if it did not within a minute)."""
    hub_pid = fleet.hub.pid if fleet.hub is not None else None
    supervised = set(fleet.supervised_workers())
    run = RunStep(world, ledger, engine)
    run_thread = threading.Thread(target=run.run, args=(fleet.url,), daemon=True)
    run_thread.start()
    run.started.wait(120)  # a worker holds the run's job when the database goes away
    upload = UploadStep(world, ledger, engine, rng)
    burst = AuditStep(world, ledger, engine)
    threads = [
        threading.Thread(target=s.run, args=(fleet.url,), daemon=True) for s in (upload, burst)
    ]
    for t in threads:
        t.start()
    time.sleep(rng.uniform(0.1, 1.0))
    down = cluster.bounce(how, rng)
    back = time.perf_counter()
    back_in: float | None = None
    while time.perf_counter() - back < 60:
        if _serving(fleet.url, world.tokens["analyst"]):
            back_in = time.perf_counter() - back
            break
        time.sleep(0.1)
    if back_in is None or fleet.hub is None or fleet.hub.pid != hub_pid or not fleet.hub_alive():
        counts["hub_restarts"] += 1
        fleet.kill("hub")
        fleet.restart()
    burst.stop.set()
    for t in (*threads, run_thread):
        t.join(120)
    upload.recover(fleet.url, 120)
    if upload.problem:
        problems.append(upload.problem)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if fleet.topology == "api+worker" and not fleet.worker_alive():
            counts["standalone_worker_exits"] += 1  # nothing restarts it but the operator
            log("pg-restart: the separate hub worker exited; starting another, as systemd would")
            fleet.restart()
        if run.job_id is None or run._job_done_us(run.job_id) is not None:
            break
        time.sleep(0.25)
    run.recover(fleet.url, 30)
    if fleet.topology == "serve+worker" and set(fleet.supervised_workers()) != supervised:
        counts["supervised_worker_restarts"] += 1
    return down, back_in


def _p50(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None
