"""The bounded fault loop: rounds of workload, SIGKILL, restart, recovery and checks.

``Loop.calibrate`` runs each step once without a kill (an upload of both agencies, a linkage
run, an extract build) to time them: a kill's delay is drawn from within each step's duration,
so that it lands in the middle of the work. ``plan`` draws each round's scenario (the kinds in
turn, in a seeded random order, so that every kind gets its share), the processes' shape
(``hub serve`` with its own worker, or the API beside a separate ``hub worker``) and what the
kill hits (the API for uploads and audit bursts; the worker, the API or both for runs and
extract builds; the worker, on every attempt, for ``poison``). ``Loop.play`` runs one round;
``Loop.row`` sums a scenario's rounds into its result row.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select

from audit.db import open_engine
from bench._common import log
from bench._faults.checks import Checker, Findings
from bench._faults.ledger import Ledger
from bench._faults.procs import TARGETS, TOPOLOGIES, Fleet, HubDidNotStart
from bench._faults.steps import (
    STEPS,
    TERMINAL,
    AuditStep,
    ExtractStep,
    RunStep,
    Step,
    UploadStep,
)
from bench._faults.world import World
from hub.store.schema import jobs

__all__ = ["Loop", "Round", "plan"]

RECOVERY_TIMEOUT = 180.0


@dataclass
class Round:
    """One round's plan and what happened."""

    n: int
    scenario: str
    topology: str
    target: str
    delay: float = 0.0
    killed: list[str] = field(default_factory=list)
    mid_work: bool = False
    ready_s: float = 0.0
    recovery_s: float = 0.0
    problems: list[str] = field(default_factory=list)
    findings: Findings | None = None
    half_new: list[str] = field(default_factory=list)  # half-written objects first seen now
    job: str | None = None  # poison: the kind of job whose worker dies on every attempt

    def summary(self) -> dict[str, Any]:
        f = self.findings
        return {
            "round": self.n,
            "scenario": self.scenario,
            "topology": self.topology,
            "target": self.target,
            "job": self.job,
            "delay_s": round(self.delay, 3),
            "killed": self.killed,
            "mid_work": self.mid_work,
            "ready_s": round(self.ready_s, 2),
            "recovery_s": round(self.recovery_s, 2),
            "lost": [] if f is None else f.lost,
            "half_written": self.half_new,
            "log_verified": f is not None and f.log_verified and f.log_consistent,
            "log_size": 0 if f is None else f.log_size,
            "problems": self.problems,
        }


def plan(rounds: int, rng: random.Random, kinds: tuple[str, ...] = STEPS) -> list[Round]:
    """The rounds in groups: each group plays every kind once, in a random order, except
    that ``poison`` (three kills and a lease for each: the slowest kind) sits out every
    second group. The processes' shape changes every ``block`` rounds (a switch costs a
    graceful stop and a start, so not every round)."""
    order: list[str] = []
    for g in range(rounds):
        if len(order) >= rounds:
            break
        group = [k for k in kinds if k != "poison" or g % 2 == 0 or len(kinds) == 1]
        rng.shuffle(group)
        order += group
    block = max(4, -(-rounds // 4))
    shapes = list(TOPOLOGIES)
    rng.shuffle(shapes)
    out = []
    for n, kind in enumerate(order[:rounds], 1):
        topology = shapes[((n - 1) // block) % len(shapes)]
        if kind in ("upload", "audit"):
            target = "hub"
        elif kind == "poison":
            target = "worker"
        else:
            target = rng.choice(TARGETS[topology])
        out.append(Round(n, kind, topology, target))
    return out


def _p50(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


class Loop:
    """One hub's fault loop."""

    def __init__(self, world: World, fleet: Fleet, ledger: Ledger, rng: random.Random) -> None:
        self.world = world
        self.fleet = fleet
        self.ledger = ledger
        self.rng = rng
        self.checker = Checker(world, ledger, world.scratch / "checks")
        self._half_seen: set[str] = set()
        self._log_size = 0
        self.engine: Engine = open_engine(world.database_url())
        self.timing: dict[str, float] = {}
        self.last_run: str | None = None
        self.rounds: list[Round] = []

    def close(self) -> None:
        self.engine.dispose()

    # -- calibration ------------------------------------------------------------------

    def _job_seconds(self, job_id: str | None) -> float:
        with self.engine.connect() as conn:
            job = conn.execute(select(jobs).where(jobs.c.id == job_id)).one()
        return max(0.2, float(job.finished_us - job.started_us) / 1e6)

    def calibrate(self) -> dict[str, float]:
        """Each step once, without a kill; the seconds each took."""
        self.ledger.begin("setup", 0)
        if self.fleet.topology != "api+worker":
            self.fleet.stop()
            self.fleet.start("api+worker")
        url = self.fleet.url
        up = UploadStep(self.world, self.ledger, self.engine, self.rng)
        started = time.perf_counter()
        up.run(url)
        self.timing["upload_s"] = time.perf_counter() - started
        if up.done_us is None:
            raise RuntimeError("calibration: the upload failed without a kill")
        run = RunStep(self.world, self.ledger, self.engine)
        run.run(url)
        run.recover(url, RECOVERY_TIMEOUT)
        self.timing["run_s"] = self._job_seconds(run.job_id)
        self.last_run = run.run_id
        ext = ExtractStep(self.world, self.ledger, self.engine, str(run.run_id))
        ext.run(url)
        ext.recover(url, RECOVERY_TIMEOUT)
        self.timing["extract_s"] = self._job_seconds(ext.job_id)
        findings = self.checker.check(url)
        if not findings.ok:
            raise RuntimeError(f"calibration: the hub fails its checks without a kill: {findings}")
        return dict(self.timing)

    # -- a round ----------------------------------------------------------------------

    def _step(self, r: Round) -> Step:
        kind = r.scenario
        if kind == "poison":
            kind = r.job = self.rng.choice(("run", "extract"))
        if kind == "upload":
            return UploadStep(self.world, self.ledger, self.engine, self.rng)
        if kind == "run":
            return RunStep(self.world, self.ledger, self.engine)
        if kind == "extract":
            return ExtractStep(self.world, self.ledger, self.engine, str(self.last_run))
        return AuditStep(self.world, self.ledger, self.engine)

    def play(self, r: Round) -> Round:
        self.rounds.append(r)
        self.ledger.begin(r.scenario, r.n)
        if self.fleet.topology != r.topology or not self.fleet.hub_alive():
            self.fleet.stop()
            self.fleet.start(r.topology)
        step = self._step(r)
        thread = threading.Thread(target=step.run, args=(self.fleet.url,), daemon=True)
        thread.start()
        if not step.started.wait(180) or step.problem:
            r.problems.append(step.problem or "the step's work did not start")
        elif r.scenario == "poison":
            thread.join(120)
        else:
            lo, hi = step.window(self.timing)
            r.delay = self.rng.uniform(lo, hi)  # after the work began (a job: its claim)
            time.sleep(max(0.0, step.started_at + r.delay - time.time()))
        kill_us = int(time.time() * 1_000_000)
        killed_at = time.perf_counter()
        if r.scenario == "poison" and not r.problems:
            assert isinstance(step, RunStep | ExtractStep)
            self._kill_every_attempt(r, step)
        else:
            r.killed = self.fleet.kill(r.target)
        if isinstance(step, AuditStep):
            step.stop.set()
        thread.join(120)
        try:
            self.fleet.restart()
        except HubDidNotStart as exc:
            r.problems.append(f"the hub did not restart: {exc}")
            return r
        r.ready_s = time.perf_counter() - killed_at
        step.recover(self.fleet.url, RECOVERY_TIMEOUT)
        r.recovery_s = time.perf_counter() - killed_at
        if step.problem and step.problem not in r.problems:
            r.problems.append(step.problem)
        r.mid_work = step.mid_work(kill_us)
        if isinstance(step, RunStep) and step.run_id is not None:
            self._remember_run(step.run_id)
        r.findings = f = self.checker.check(self.fleet.url)
        r.half_new = [h for h in f.half_written if h not in self._half_seen]
        self._half_seen.update(f.half_written)
        if f.log_size < self._log_size:
            r.problems.append(f"the log shrank from {self._log_size} to {f.log_size} entries")
        self._log_size = max(self._log_size, f.log_size)
        log(
            f"round {r.n} {r.scenario}{'/' + r.job if r.job else ''}/{r.topology}/kill "
            f"{r.target} after {r.delay:.2f} s "
            f"({'mid-work' if r.mid_work else 'after the work'}): killed {r.killed or 'nothing'}, "
            f"ready in {r.ready_s:.1f} s, recovered in {r.recovery_s:.1f} s, log "
            f"{'verifies' if f.log_verified and f.log_consistent else 'FAILS'} "
            f"({f.log_size} entries)"
            + (f"; LOST {f.lost}" if f.lost else "")
            + (f"; HALF-WRITTEN {f.half_written}" if f.half_written else "")
            + (f"; {r.problems}" if r.problems else "")
        )
        return r

    def _kill_every_attempt(self, r: Round, step: RunStep | ExtractStep) -> None:
        """The worker dies on every attempt of the job (as the OOM killer would kill it on
        a run too large for the machine), until the job has no attempts left. Each kill
        lands within the first moments of the attempt (measured from its claim), so that
        even a short extract build is caught mid-work."""
        assert step.job_id is not None
        job = step._job(step.job_id)
        seconds = self.timing["run_s" if isinstance(step, RunStep) else "extract_s"]
        while True:
            r.delay = self.rng.uniform(0.0, min(0.3, seconds / 4))
            time.sleep(max(0.0, job.started_us / 1e6 + r.delay - time.time()))
            r.killed += self.fleet.kill("worker")
            job = step._job(step.job_id)
            if job.status in TERMINAL or job.attempts >= job.max_attempts:
                return
            self.fleet.restart()  # a new worker (``serve+worker``: the API restarts its own)
            deadline = time.monotonic() + 60
            attempts = job.attempts
            while time.monotonic() < deadline:
                job = step._job(step.job_id)
                if job.status in TERMINAL or (job.status == "running" and job.attempts > attempts):
                    break
                time.sleep(0.02)
            else:
                r.problems.append(f"no worker claimed job {step.job_id} again")
                return
            if job.status in TERMINAL:
                return

    def _remember_run(self, run_id: str) -> None:
        """Later extracts use the newest run that finished."""
        with self.engine.connect() as conn:
            status = conn.execute(
                select(jobs.c.status)
                .select_from(jobs)
                .where(jobs.c.subject_id == run_id, jobs.c.kind == "link")
            ).scalar()
        if status == "succeeded":
            self.last_run = run_id

    def final_check(self) -> Findings:
        """A clean restart (so the start-up sweep runs) and the checks once more."""
        self.ledger.begin("final", 0)
        self.fleet.restart_api()
        return self.checker.check(self.fleet.url)

    # -- figures ----------------------------------------------------------------------

    def row(self, scenario: str) -> dict[str, Any]:
        played = [r for r in self.rounds if r.scenario == scenario]
        killed = Counter(k for r in played for k in r.killed)
        recovery = [r.recovery_s for r in played]
        ready = [r.ready_s for r in played]
        errors = self.ledger.errors.get(scenario, Counter())
        return {
            "scenario": scenario,
            "rounds": len(played),
            "kills": sum(killed.values()),
            "kills_hub": killed["hub"],
            "kills_worker": killed["worker"],
            "mid_work_rounds": sum(1 for r in played if r.mid_work),
            "acknowledged": self.ledger.acknowledged(scenario),
            "lost": self.ledger.lost_in(scenario),
            "half_written_visible": sum(len(r.half_new) for r in played),
            "log_verified": all(
                r.findings is not None and r.findings.log_verified and r.findings.log_consistent
                for r in played
            ),
            "ready_seconds_p50": _p50(ready),
            "recovery_seconds_p50": _p50(recovery),
            "recovery_seconds_max": round(max(recovery), 2) if recovery else None,
            "errors_seen": dict(sorted(errors.items())),
            "error_examples": self.ledger.examples.get(scenario, {}),
            "problems": [p for r in played for p in r.problems],
        }
