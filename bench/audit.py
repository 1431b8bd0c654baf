"""Audit log benchmark: durable appends/s, inclusion-proof verifications/s, full verification.

Usage (from the repository root, in the project's venv; ``make bench-audit`` runs the default)::

    .venv/bin/python bench/audit.py [--entries 1000000] [--producers 256]
                                    [--postgres postgresql://USER:PW@127.0.0.1/postgres]

For each store (SQLite always; PostgreSQL when ``--postgres`` names a server, on which a fresh
database is created and dropped):

1. ``--entries`` entries are built first (``entry_build_us``: what building and validating
   one costs the request handler that logs it), then ``--producers`` concurrent
   coroutines submit them through one
   ``BatchingWriter`` (the single writer: each batch is one transaction with its own signed
   checkpoint, acknowledged only after commit; SQLite runs WAL with ``synchronous=FULL``).
   ``appends_per_s`` is entries divided by the wall time from the first submit to the last
   acknowledgement.
2. 10,000 inclusion proofs for random entries are built from the stored tree nodes
   (``proofs_built_per_s``), then verified against the latest checkpoint's root
   (``inclusion_verifications_per_s``, one core, pure Python over hashlib).
3. ``audit verify --db ... --json`` runs as a separate process: it re-reads every entry,
   re-checks its canonical encoding, recomputes every leaf, node and checkpoint root, checks
   every signature and consecutive consistency proof, and compares every stored tree node.
   ``verify_s`` is its wall time including interpreter start; ``verify_1m_s`` is the same
   figure when ``--entries`` is 1,000,000 (null otherwise).

Reference (not run here): Tessera, Go, POSIX backend on a 12-core machine, publishes about
2,900 writes/s. The last line of stdout is the JSON result (see bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audit.entry import AuditEntry
from audit.log import AuditLog
from audit.merkle import leaf_hash
from audit.note import SigningKey
from audit.verify import verify_inclusion
from audit.writer import BatchingWriter
from bench._common import BENCH_DIR, REPO_DIR, log, machine_info, print_result_line

ORIGIN = "bench.pprl-hub.invalid/audit"
ACTIONS = ("view", "download", "upload", "link-run", "extract-request", "approve")
PROOFS = 10_000


def _entry(i: int, t0: float) -> AuditEntry:
    from datetime import UTC, datetime

    return AuditEntry(
        time=datetime.fromtimestamp(t0 + i / 1000, tz=UTC),
        actor=f"user-{i % 97}",
        role="analyst",
        agency=("police-a", "ed-b", "council-c")[i % 3],
        auth_method="bearer",
        source_address=f"10.0.{i % 5}.{i % 250}",  # a few hundred agency egress addresses
        action=ACTIONS[i % len(ACTIONS)],  # type: ignore[arg-type]
        outcome="allowed",
        resource=f"dataset/{i % 5000}",
        dsa_id="dsa-svd-001",
        dsa_version=3,
        purpose="serious-violence-duty",
        query_hash=f"{i:064x}",
    )


async def _append_all(
    log_: AuditLog, drafts: list[AuditEntry], producers: int
) -> tuple[float, int]:
    queue = iter(drafts)

    async def produce(writer: BatchingWriter) -> None:
        for draft in queue:
            await writer.submit(draft)

    async with BatchingWriter(log_.append, max_batch=2000) as writer:
        start = time.perf_counter()
        await asyncio.gather(*(produce(writer) for _ in range(producers)))
        elapsed = time.perf_counter() - start
        batches = writer.batches
    return elapsed, batches


def _measure(target: str, system: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    key = SigningKey.generate(ORIGIN)
    pub = out / f"{system}.pub"
    pub.write_text(key.verifier().to_vkey() + "\n")
    log_ = AuditLog.open(target, origin=ORIGIN, log_key=key.verifier(), key=key, create=True)
    t0 = time.time()
    start = time.perf_counter()
    drafts = [_entry(i, t0) for i in range(args.entries)]
    build_us = (time.perf_counter() - start) / args.entries * 1e6
    log(f"{system}: appending {args.entries:,} entries with {args.producers} producers")
    elapsed, batches = asyncio.run(_append_all(log_, drafts, args.producers))
    del drafts
    appends = args.entries / elapsed
    log(f"{system}: {appends:,.0f} appends/s, {batches:,} batches")

    head = log_.latest()
    assert head is not None
    cp = head[0]
    rng = random.Random(7)
    indices = [rng.randrange(cp.size) for _ in range(PROOFS)]
    leaves = {i: leaf_hash(log_.entry_bytes(i)) for i in indices}
    start = time.perf_counter()
    proofs = [log_.inclusion_proof(i, cp.size) for i in indices]
    built = PROOFS / (time.perf_counter() - start)
    start = time.perf_counter()
    for i, proof in zip(indices, proofs, strict=True):
        verify_inclusion(leaves[i], i, cp.size, proof, cp.root_hash)
    verifications = PROOFS / (time.perf_counter() - start)
    log(f"{system}: {built:,.0f} proofs built/s, {verifications:,.0f} verifications/s")
    log_.close()

    log(f"{system}: running `audit verify` over {args.entries:,} entries")
    cmd = [str(REPO_DIR / ".venv/bin/audit"), "verify", "--db", target, "--log-key", str(pub)]
    start = time.perf_counter()
    done = subprocess.run([*cmd, "--json"], capture_output=True, text=True, check=False)
    verify_s = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"audit verify failed: {done.stderr or done.stdout}")
    log(f"{system}: verified in {verify_s:.1f} s")
    return {
        "system": system,
        "dataset": f"synthetic-entries-{args.entries}",
        "entries": args.entries,
        "producers": args.producers,
        "batches": batches,
        "appends_per_s": round(appends, 1),
        "entry_build_us": round(build_us, 1),
        "proofs_built_per_s": round(built, 1),
        "inclusion_verifications_per_s": round(verifications, 1),
        "verify_s": round(verify_s, 2),
        "verify_1m_s": round(verify_s, 2) if args.entries == 1_000_000 else None,
    }


def _postgres_database(admin_url: str) -> tuple[str, Any]:
    import psycopg

    name = f"pprl_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return admin_url.rpartition("/")[0] + "/" + name, drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--producers", type=int, default=256)
    parser.add_argument("--postgres", metavar="ADMIN_URL", help="also run on PostgreSQL")
    args = parser.parse_args()
    if args.entries < 1 or args.producers < 1:
        parser.error("--entries and --producers must be positive")
    out = BENCH_DIR / "out" / "audit"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    machine = machine_info()
    results = [_measure(str(out / "hub.sqlite"), "ours-sqlite", args, out)]
    if args.postgres:
        url, drop = _postgres_database(args.postgres)
        try:
            results.append(_measure(url, "ours-postgresql", args, out))
        finally:
            drop()
    print()
    print(f"{'system':<18}{'appends/s':>12}{'proofs/s':>12}{'verifs/s':>12}{'verify s':>10}")
    for r in results:
        print(
            f"{r['system']:<18}{r['appends_per_s']:>12,.0f}{r['proofs_built_per_s']:>12,.0f}"
            f"{r['inclusion_verifications_per_s']:>12,.0f}{r['verify_s']:>10.1f}"
        )
    print("reference: Tessera (Go, POSIX, 12 cores) publishes about 2,900 writes/s")
    print_result_line("audit", machine, results, reference={"tessera_posix_writes_per_s": 2900})


if __name__ == "__main__":
    main()
