"""Fault loop: SIGKILL the hub and its workers at random moments, fill its disk, restart its
PostgreSQL; after each fault, nothing acknowledged is lost, nothing half-written is visible and
the audit log verifies.

Usage (from the repository root, in the project's venv)::

    .venv/bin/python bench/faults.py [--rounds 40] [--seed 1] [--quick]
        [--postgres ADMIN_URL] [--private-postgres]
        [--scenarios upload,run,extract,audit,poison,disk-full,pg-restart]

One hub (``hub init``, SQLite by default; ``--postgres`` a fresh database on that server) is set
up once with what an extract needs. Each of ``--rounds`` rounds (``--quick``: 6) picks, with a
seeded RNG, a scenario (an upload, a linkage run, an extract build, a burst of audited
requests, or a job whose worker dies on every attempt), the processes' shape (``hub serve``
with its own worker, or the API beside a separate ``hub worker``), what to kill (the API, the
worker or both) and when; starts the work, SIGKILLs, restarts what died, lets the work recover
(uploads resume with the connector; a dead worker's job is taken over once its 3 s lease
expires) and checks the invariants (``bench/_faults/checks.py``). Then:

* ``disk-full``: a hub whose data directory is a small tmpfs (``mount -t tmpfs``, always
  unmounted) takes uploads until the disk is full, is killed and restarted while full, then the
  tmpfs is grown and uploads must work again, with nothing lost and the log verifying;
* ``pg-restart`` (with ``--postgres`` or ``--private-postgres``): a private throwaway
  PostgreSQL cluster (``initdb`` as user postgres, a free loopback port; never the machine's
  shared one) is restarted under a running hub during uploads, a run's polling and audited
  requests; the hub must recover without a restart of its own.

The last line of stdout is the JSON result; every figure is documented in ``bench/README.md``
("faults"). The exit status is 1 if any invariant failed, 2 if the bench itself failed.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BENCH_DIR, load_average, log, machine_info, print_result_line
from bench._faults.diskfull import run_disk_full
from bench._faults.ledger import Ledger
from bench._faults.loop import Loop, plan
from bench._faults.pgrestart import run_pg_restart
from bench._faults.procs import Fleet
from bench._faults.steps import STEPS
from bench._faults.world import Data, World, fresh_database, init_hub, make_data

SCENARIOS = (*STEPS, "disk-full", "pg-restart")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, help="kill rounds (default 40; quick 6)")
    p.add_argument("--seed", type=int, default=1, help="seed of every random choice")
    p.add_argument("--quick", action="store_true", help="6 rounds, one PostgreSQL restart")
    p.add_argument("--postgres", metavar="ADMIN_URL", help="the loop on a new database there")
    p.add_argument(
        "--private-postgres",
        action="store_true",
        help="pg-restart on a private throwaway cluster (--postgres implies it)",
    )
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help=", ".join(SCENARIOS))
    p.add_argument("--people", type=int, default=400, help="synthetic people per export")
    p.add_argument("--chunk-kib", type=int, default=16, help="upload chunk size (KiB)")
    p.add_argument("--disk-mb", type=int, default=6, help="tmpfs size for disk-full (MiB)")
    p.add_argument("--pg-restarts", type=int, help="PostgreSQL restarts (default 10; quick 1)")
    p.add_argument("--out", type=Path, default=BENCH_DIR / "out" / "faults")
    args = p.parse_args(argv)
    args.rounds = args.rounds or (6 if args.quick else 40)
    args.pg_restarts = args.pg_restarts or (1 if args.quick else 10)
    args.scenarios = tuple(s for s in args.scenarios.split(",") if s)
    unknown = sorted(set(args.scenarios) - set(SCENARIOS))
    if unknown:
        p.error(f"unknown scenarios: {', '.join(unknown)}")
    return args


def run_loop(
    args: argparse.Namespace, pending: Future[Data], kinds: tuple[str, ...]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The kill rounds on one hub: a result row per scenario kind, and the loop's details.
    (``hub init`` runs while the synthetic data are still being made.)"""
    system = "ours-postgresql" if args.postgres else "ours-sqlite"
    root = args.out / system
    rng = random.Random(args.seed)
    with fresh_database(args.postgres) as database:
        made = init_hub(root / "hub", database, args.chunk_kib * 1024)
        world = World(pending.result(), root / "hub", made, root)
        fleet = Fleet(world.data_dir, root / "logs")
        loop = Loop(world, fleet, Ledger(), rng)
        try:
            fleet.start("api+worker")
            world.set_up(fleet.url)
            timing = loop.calibrate()
            log(f"{system}: calibrated " + ", ".join(f"{k} {v:.2f} s" for k, v in timing.items()))
            for r in plan(args.rounds, rng, kinds):
                loop.play(r)
            final = loop.final_check()
        finally:
            loop.close()
            fleet.close()
    dataset = f"synthetic people={args.people} seed={args.seed}"
    rows = [{"system": system, "dataset": dataset, **loop.row(kind)} for kind in kinds]
    lost = loop.ledger.lost
    details = {
        "system": system,
        "lost_total": len(lost),
        "lost": [f"{kind} {key}: {why}" for (kind, key), why in lost.items()],
        "final_log_verified": final.log_verified and final.log_consistent,
        "final_half_written": final.half_written,
        "leftover_files": len(final.leftovers),
        "leftover_examples": final.leftovers[:5],
        "timing_s": {k: round(v, 3) for k, v in loop.timing.items()},
        "rounds": [r.summary() for r in loop.rounds],
    }
    return rows, details


def run_others(args: argparse.Namespace, data: Data) -> list[dict[str, Any]]:
    """The disk-full and PostgreSQL-restart scenarios, as asked for."""
    rows = []
    if "disk-full" in args.scenarios:
        with fresh_database(args.postgres) as database:
            rows.append(
                run_disk_full(
                    data,
                    args.out / "disk-full",
                    size_mb=args.disk_mb,
                    chunk_bytes=args.chunk_kib * 1024,
                    seed=args.seed,
                    database=database,
                )
            )
    if "pg-restart" in args.scenarios:
        if args.postgres or args.private_postgres:
            rows.append(
                run_pg_restart(
                    data,
                    args.out / "pg-restart",
                    restarts=args.pg_restarts,
                    chunk_bytes=args.chunk_kib * 1024,
                    seed=args.seed,
                )
            )
        else:
            rows.append(
                {"system": "ours-postgresql", "dataset": "private cluster",
                 "scenario": "pg-restart", "skipped": "needs --private-postgres or --postgres"}
            )  # fmt: skip
    return rows


def failed(row: dict[str, Any]) -> bool:
    """Did an invariant fail in this row (a skipped scenario fails nothing)?"""
    if row.get("skipped"):
        return False
    return bool(
        row.get("lost")
        or row.get("half_written_visible")
        or not row.get("log_verified", False)
        or row.get("problems")
    )


def _print_table(results: list[dict[str, Any]]) -> None:
    heads = ("rounds", "kills", "acked", "lost", "half", "log", "rec p50", "rec max")
    print(f"\n{'system':<16}{'scenario':<11}" + "".join(f"{h:>8}" for h in heads) + "  errors")
    for r in results:
        if r.get("skipped"):
            print(f"{r['system']:<16}{r['scenario']:<11}  skipped: {r['skipped']}")
            continue
        cells = (
            r.get("rounds", 1), r.get("kills", 0), r["acknowledged"], r["lost"],
            r["half_written_visible"], "yes" if r["log_verified"] else "NO",
            r.get("recovery_seconds_p50", r.get("recovery_seconds")),
            r.get("recovery_seconds_max", r.get("recovery_seconds")),
        )  # fmt: skip
        errors = ", ".join(f"{k} {v}" for k, v in r.get("errors_seen", {}).items())
        print(f"{r['system']:<16}{r['scenario']:<11}" + "".join(f"{c!s:>8}" for c in cells), errors)


def _redacted(argv: Sequence[str]) -> list[str]:
    """The command line without the PostgreSQL URL (it may hold a password)."""
    out = list(argv)
    for i, a in enumerate(out):
        if i and out[i - 1] == "--postgres":
            out[i] = "ADMIN_URL"
        elif a.startswith("--postgres="):
            out[i] = "--postgres=ADMIN_URL"
    return out


def _stop_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(f"stopped by {signal.Signals(signum).name}")


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    started = time.perf_counter()
    machine = {**machine_info(), "load_average_start": load_average()}
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    log(f"synthetic data: {args.people} people, seed {args.seed}")
    results: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(make_data, args.out / "data", args.people, args.seed)
        kinds = tuple(k for k in STEPS if k in args.scenarios)
        if kinds:
            rows, extra["loop"] = run_loop(args, pending, kinds)
            results += rows
        results += run_others(args, pending.result())
    machine["load_average_end"] = load_average()
    _print_table(results)
    loop = extra.get("loop")
    bad = any(failed(r) for r in results) or bool(
        loop
        and (loop["lost_total"] or loop["final_half_written"] or not loop["final_log_verified"])
    )
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    settings["postgres"] = bool(args.postgres)
    print_result_line(
        "faults",
        machine,
        results,
        invariants_held=not bad,
        settings=settings,
        command=" ".join(["bench/faults.py", *_redacted(argv)]),
        elapsed_seconds=round(time.perf_counter() - started, 1),
        **extra,
    )
    return 1 if bad else 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)  # so that every finally block runs
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        return run(args, argv)
    except Exception:  # noqa: BLE001 - the bench broke: say so apart from a failed invariant
        log(traceback.format_exc())
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
