"""Hub benchmark: upload throughput and request latency under concurrent clients, on loopback.

Usage (from the repository root, in the project's venv; ``make bench-hub`` runs the default)::

    .venv/bin/python bench/hub.py [--records 1000000] [--clients 100] [--seconds 20]
                                  [--postgres postgresql://USER:PW@127.0.0.1/postgres]

For each store (SQLite always; PostgreSQL with ``--postgres``, on a fresh database):

1. a hub is made with ``hub init`` and run with ``hub serve`` on a loopback port, with an agency,
   an agreement in force, a project and a data officer;
2. an encoded file of ``--records`` rows is uploaded with the connector's own upload code
   (``connectors.upload``): chunks of 8 MiB, then the commit, which joins, checks, validates and
   encrypts the file and records the dataset version. The file is the connector's real output
   for a synthetic population, its rows repeated (with fresh record pseudonyms) up to
   ``--records``: the hub's work depends on the bytes, not on who the rows describe.
   ``upload_records_per_s`` is rows / wall seconds from the first request to the commit's answer;
3. ``--clients`` concurrent clients (aiohttp, one connection each) call authenticated
   endpoints (``GET /v1/me``, ``GET /v1/projects``, ``GET /v1/projects/{p}/datasets``) in turn for
   ``--seconds``; every call is authenticated, authorised and audited. ``p50_ms``/``p99_ms`` are
   latency percentiles, ``requests_per_s`` the throughput, ``errors`` the non-2xx answers and
   failed connections; afterwards the audit log is verified (``log_verified``).

There is no peer to run here: anonlink-entity-service, the closest system, is a Docker/Redis/
MinIO deployment that cannot run on these machines. The last line of stdout is the JSON result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow as pa
import pyarrow.parquet as pq

from bench._common import BENCH_DIR, REPO_DIR, log, machine_info, print_result_line
from bench._hubsetup import (
    add_agreement_project,
    fresh_postgres,
    keygen,
    pseudonymise,
    start_hub,
    stop_hub,
    user_token,
    verify_log,
)


def _encoded_file(out: Path, records: int) -> Path:
    """The connector's output for a synthetic population, rows repeated up to ``records``."""
    from connectors.synth import synthesise

    people = min(20_000, max(2_000, records // 10))
    synthesise(people, 17, out / "exports")
    keygen(out / "project.key")
    keygen(out / "ae-record.key", record_key=True)
    base = out / "base.parquet"
    pseudonymise(
        REPO_DIR / "config/mappings/ae.toml", out / "project.key", out / "ae-record.key",
        out / "exports/ae_attendances.csv", base,
    )  # fmt: skip
    table = pq.read_table(base)
    meta = json.loads(pq.read_metadata(base).metadata[b"pprl"])
    parts, rows = [], 0
    while rows < records:
        part = table.slice(0, min(table.num_rows, records - rows))
        pseudonyms = pa.array(
            [secrets.token_bytes(16) for _ in range(part.num_rows)],
            type=table["record_pseudonym"].type,
        )
        part = part.set_column(
            part.schema.get_field_index("record_pseudonym"), "record_pseudonym", pseudonyms
        )
        parts.append(part)
        rows += part.num_rows
    big = pa.concat_tables(parts)
    meta["row_count"] = big.num_rows
    path = out / f"encoded-{records}.parquet"
    with pq.ParquetWriter(path, big.schema) as writer:
        writer.add_key_value_metadata({"pprl": json.dumps(meta)})
        writer.write_table(big, row_group_size=65_536)
    return path


def _setup(url: str, admin: str, meta: dict[str, Any]) -> str:
    agency = meta["agency"]
    fields = [a["name"] for a in meta["attributes"]]
    add_agreement_project(
        url, admin, agreement="dsa-bench", project="bench",
        parties=[(agency, fields), ("police-bench", [])], meta=meta,
    )  # fmt: skip
    return user_token(url, admin, "officer", ["data_officer"], agency)


async def _load(url: str, token: str, clients: int, seconds: float) -> dict[str, Any]:
    import aiohttp

    paths = ["/v1/me", "/v1/projects", "/v1/projects/bench/datasets"]
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def client(n: int) -> None:
        nonlocal errors
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
            i = n
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    async with session.get(
                        url + paths[i % len(paths)], headers=headers
                    ) as response:
                        await response.read()
                        if response.status >= 300:
                            errors += 1
                except aiohttp.ClientError:
                    errors += 1
                latencies.append(time.perf_counter() - started)
                i += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 2),
        "p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 2),
        "errors": errors,
    }


def _measure(
    system: str, args: argparse.Namespace, encoded: Path, out: Path, database: str | None
) -> dict[str, Any]:
    from connectors.upload import HubClient, upload

    meta = json.loads(pq.read_metadata(encoded).metadata[b"pprl"])
    data_dir = out / system
    proc, url, made = start_hub(data_dir, database)
    try:
        token = _setup(url, made["admin"]["token"], meta)
        mb = encoded.stat().st_size / 1e6
        log(f"{system}: uploading {meta['row_count']:,} records ({mb:.1f} MB)")
        started = time.perf_counter()
        result = upload(HubClient(url, token), "bench", encoded)
        upload_s = time.perf_counter() - started
        log(f"{system}: {result.rows / upload_s:,.0f} records/s")
        log(f"{system}: {args.clients} clients for {args.seconds} s")
        load = asyncio.run(_load(url, token, args.clients, args.seconds))
        log(f"{system}: p50 {load['p50_ms']} ms, p99 {load['p99_ms']} ms, {load['errors']} errors")
    finally:
        stop_hub(proc)
    verified = bool(verify_log(data_dir, made["log_public_key"])["ok"])
    return {
        "system": system,
        "dataset": f"encoded-{meta['row_count']}",
        "records": meta["row_count"],
        "file_mb": round(encoded.stat().st_size / 1e6, 1),
        "upload_s": round(upload_s, 2),
        "upload_records_per_s": round(result.rows / upload_s, 1),
        "upload_mb_per_s": round(encoded.stat().st_size / 1e6 / upload_s, 2),
        "clients": args.clients,
        "seconds": args.seconds,
        **load,
        "log_verified": verified,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--postgres", metavar="ADMIN_URL")
    args = parser.parse_args()
    out = BENCH_DIR / "out" / "hub"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    os.environ.setdefault("PYTHONPATH", str(REPO_DIR))
    log(f"building an encoded file of {args.records:,} records")
    encoded = _encoded_file(out, args.records)
    results = [_measure("ours-sqlite", args, encoded, out, None)]
    if args.postgres:
        with fresh_postgres(args.postgres) as url:
            results.append(_measure("ours-postgresql", args, encoded, out, url))
    print()
    heads = (
        ("records/s", 12),
        ("MB/s", 8),
        ("req/s", 9),
        ("p50 ms", 9),
        ("p99 ms", 9),
        ("errors", 8),
    )
    print(f"{'system':<18}" + "".join(f"{h:>{w}}" for h, w in heads))
    for r in results:
        print(
            f"{r['system']:<18}{r['upload_records_per_s']:>12,.0f}{r['upload_mb_per_s']:>8.1f}"
            f"{r['requests_per_s']:>9,.0f}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}{r['errors']:>8}"
        )
    print_result_line("hub", machine_info(), results)


if __name__ == "__main__":
    main()
