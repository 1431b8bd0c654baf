"""Hub load test: concurrent connectors uploading and analysts polling a real hub on loopback.

Usage (from the repository root, in the project's venv)::

    .venv/bin/python bench/load.py [--seconds 60] [--connectors 16] [--analysts 32]
                                   [--auditors 2] [--agencies 4] [--analyst-users 8]
                                   [--sizes 300,800,1500,3000] [--chunk-kib 256]
                                   [--postgres postgresql://USER:PW@127.0.0.1/postgres]
    .venv/bin/python bench/load.py --quick     # what tests/integration/hub/test_load_quick.py runs

``--quick`` is 2 agencies, 4 connectors, 8 analysts, 1 auditor for 8 s (about 25 s a store).
For each store (SQLite unless ``--no-sqlite``; PostgreSQL with ``--postgres ADMIN_URL`` on a
fresh database it makes and drops, or on the empty database ``--database-url`` names):

1. ``hub init`` and ``hub serve`` on a loopback port (plain HTTP with bearer tokens; no mutual
   TLS), with ``limits.max_chunk_bytes`` set to ``--chunk-kib`` so that files of a few thousand
   rows go up in several chunks. Through the real API the administrator registers
   ``--agencies`` agencies, one agreement in force between all of them (each may upload its
   layout's attribute fields), one project, a data officer and token per agency,
   ``--analyst-users`` analysts and an auditor.
2. For ``--seconds``, at once:
   - ``--connectors`` connector clients (threads of one process; client ``c`` uploads for
     agency ``c mod agencies`` with its data officer's token, so several clients upload for
     one agency at the same time) each upload, again and again, one of its agency's encoded
     files (the connector's real output for prefixes of a synthetic export, one file per
     ``--sizes`` entry) with the connector's own upload code (``connectors.upload``): open,
     chunks, commit. Every ``--resume-every``-th multi-chunk upload of a client (its first,
     then every fourth by default) is interrupted after a random number of chunks and run
     again by a fresh client, which resumes the session from ``<file>.upload.json`` and must
     send only the missing chunks. Every commit answered 2xx is an acknowledged upload: its
     dataset version id, rows, SHA-256 and audit entry are kept;
   - ``--analysts`` analyst clients (asyncio + aiohttp, one connection each, tokens of the
     analyst users in turn) poll what an analyst reads: ``/v1/me``, projects, the project's
     datasets, runs and extracts, agreements, one agreement, agencies;
   - ``--auditors`` auditor clients monitor the log as ``audit monitor`` would: the newest
     checkpoint (signature checked), one entry's canonical bytes and its inclusion proof
     (checked against the checkpoint's root), and a consistency proof from the previous
     checkpoint they saw (checked).
   Every request's latency is recorded by kind; an error is any non-2xx answer (none is
   expected in this workload), a connection failure, a timeout, a retry the connector made
   after a transient failure, or a proof or answer that does not check.
3. The hub is stopped with SIGTERM (it must exit 0), started again, and an analyst lists the
   project's datasets; it is stopped again. Then "nothing lost" is checked: every acknowledged
   version is listed with its rows and SHA-256, its stored file decrypts (with its wrapped key
   and the master key) to bytes with that SHA-256 and row count, and its commit's audit entry
   names it. ``audit verify --db`` checks the whole log offline, and the log grew by at least
   as many entries as the load phase made requests (every access is audited).

Progress and a table go to stderr; the last line of stdout is the JSON result. The exit status
is 1 if anything was lost, any error occurred, the log does not verify, an access was not
audited, the hub logged an error, or it did not stop cleanly.

This file parses the options and runs the steps; the work is in ``bench/_load/`` (one module
each: the data, the set-up, the connector clients, the analyst and auditor clients, the checks,
the hub's log, the report).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BENCH_DIR, REPO_DIR, load_average, log, machine_info, print_result_line
from bench._hubsetup import fresh_postgres, init_hub, serve_hub, stop_hub, verify_log
from bench._load import report
from bench._load.checks import Checked, check_api, check_entries, check_store, tree_size
from bench._load.connectors import connectors_phase
from bench._load.data import Prepared, prepare
from bench._load.hublog import read_hub_log
from bench._load.pollers import pollers_phase
from bench._load.setup import load_spec, set_chunk_size, set_up


def _run_load(spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The connectors' process and the pollers' process, started together."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        spec = {**spec, "start_at": time.time() + 3.0}  # both processes imported and waiting
        uploads = pool.submit(connectors_phase, spec)
        polls = pool.submit(pollers_phase, spec)
        return uploads.result(), polls.result()


def measure(
    system: str, args: argparse.Namespace, prepared: Prepared, out: Path, database: str | None
) -> dict[str, Any]:
    """One store: a fresh hub, the load, then the checks; the result row."""
    data_dir = out / system
    made = init_hub(data_dir, database)
    set_chunk_size(data_dir, args.chunk_kib * 1024)
    log_path = data_dir.parent / f"{data_dir.name}-serve.log"
    proc, url = serve_hub(data_dir)
    exit_codes = []
    try:
        tokens = set_up(url, made["admin"]["token"], prepared, args.analyst_users)
        spec = load_spec(
            args, url, tokens, prepared, out / "clients" / system, made["log_public_key"]
        )
        size_before = tree_size(url, tokens["auditor"])
        log_start = log_path.stat().st_size
        log(
            f"{system}: {args.connectors} connectors, {args.analysts} analysts, "
            f"{args.auditors} auditors for {args.seconds:g} s"
        )
        uploads, polls = _run_load(spec)
        log_end = log_path.stat().st_size
        size_after = tree_size(url, tokens["auditor"])
    finally:
        exit_codes.append(stop_hub(proc))
    acked: list[dict[str, Any]] = uploads["acked"]
    log(f"{system}: {len(acked)} uploads acknowledged; restarting the hub to list them")
    proc, url = serve_hub(data_dir)
    try:
        present = check_api(url, tokens["analysts"][0], acked)
    finally:
        exit_codes.append(stop_hub(proc))
    log(f"{system}: reading the store and the audit log")
    checked = Checked(
        present=present,
        intact=check_store(data_dir, acked),
        entries=check_entries(data_dir, acked),
        tree_sizes=(size_before, size_after),
        log_report=verify_log(data_dir, made["log_public_key"]),
        exit_codes=exit_codes,
    )
    settings = {
        "seconds": args.seconds,
        "agencies": len(prepared.files),
        "connectors": args.connectors,
        "analysts": args.analysts,
        "analyst_users": args.analyst_users,
        "auditors": args.auditors,
        "chunk_kib": args.chunk_kib,
    }
    return report.result_row(
        system,
        f"synthetic-encoded sizes={','.join(map(str, args.sizes))}",
        settings,
        uploads,
        polls,
        read_hub_log(log_path, log_start, log_end),
        checked,
    )


def _sizes(text: str) -> list[int]:
    sizes = sorted({int(s) for s in text.split(",") if s.strip()})
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError("--sizes must be positive row counts, e.g. 300,1500")
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="CI size: 2 agencies, 4 connectors, 8 analysts, 1 auditor, 8 s, sizes 200,600,1500",
    )
    parser.add_argument("--seconds", type=float, help="length of the load phase (60; quick 8)")
    parser.add_argument("--connectors", type=int, help="concurrent connector clients (16; quick 4)")
    parser.add_argument("--analysts", type=int, help="concurrent analyst pollers (32; quick 8)")
    parser.add_argument("--auditors", type=int, help="concurrent auditor monitors (2; quick 1)")
    parser.add_argument("--agencies", type=int, help="agencies uploading (4; quick 2)")
    parser.add_argument("--analyst-users", type=int, default=8, help="analyst accounts (8)")
    parser.add_argument(
        "--sizes", type=_sizes, help="rows per encoded file (300,800,1500,3000; quick 200,600,1500)"
    )
    parser.add_argument("--chunk-kib", type=int, default=256, help="the hub's chunk size (256)")
    parser.add_argument(
        "--resume-every", type=int, default=4, help="interrupt every Nth multi-chunk upload (4)"
    )
    parser.add_argument("--seed", type=int, default=1, help="synthetic data and choices (1)")
    parser.add_argument(
        "--postgres",
        metavar="ADMIN_URL",
        help="also run on a fresh database made on this PostgreSQL server",
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="run the PostgreSQL row on this existing, empty database instead",
    )
    parser.add_argument("--no-sqlite", action="store_true", help="only the PostgreSQL row")
    parser.add_argument("--out-dir", type=Path, default=BENCH_DIR / "out" / "load")
    args = parser.parse_args(argv)
    defaults = (
        {"seconds": 8.0, "connectors": 4, "analysts": 8, "auditors": 1, "agencies": 2,
         "sizes": [200, 600, 1500]}
        if args.quick
        else {"seconds": 60.0, "connectors": 16, "analysts": 32, "auditors": 2, "agencies": 4,
              "sizes": [300, 800, 1500, 3000]}
    )  # fmt: skip
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.no_sqlite and not (args.postgres or args.database_url):
        parser.error("--no-sqlite needs --postgres or --database-url")
    if min(args.agencies, args.analyst_users, args.chunk_kib, args.resume_every) < 1:
        parser.error("--agencies, --analyst-users, --chunk-kib, --resume-every must be >= 1")
    if min(args.connectors, args.analysts, args.auditors) < 0:
        parser.error("--connectors, --analysts and --auditors cannot be negative")

    machine = {**machine_info(), "load_average_before": load_average()}
    out: Path = args.out_dir
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    os.environ.setdefault("PYTHONPATH", str(REPO_DIR))
    log(f"encoding files of {', '.join(map(str, args.sizes))} rows for {args.agencies} agencies")
    (out / "data").mkdir()
    with (out / "data" / "connector.log").open("w") as sink, contextlib.redirect_stdout(sink):
        prepared = prepare(
            out / "data", args.agencies, args.sizes, args.seed, args.chunk_kib * 1024
        )
    results = []
    if not args.no_sqlite:
        results.append(measure("ours-sqlite", args, prepared, out, None))
    if args.database_url:
        results.append(measure("ours-postgresql", args, prepared, out, args.database_url))
    elif args.postgres:
        with fresh_postgres(args.postgres, "pprl_load") as url:
            results.append(measure("ours-postgresql", args, prepared, out, url))
    print(file=sys.stderr)
    print(report.table(results), file=sys.stderr)
    for r in results:
        if not r["passed"]:
            for line in report.failure_lines(r):
                log(line)
    machine["load_average_after"] = load_average()
    print_result_line("load", machine, results)
    return 0 if all(r["passed"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
