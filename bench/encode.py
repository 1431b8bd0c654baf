"""Encoding throughput: the pprl-hub connector against clkhash, on the same records, in one run.

    .venv/bin/python bench/encode.py                    # 100,000 records (make bench-encode)
    .venv/bin/python bench/encode.py --records 5000 --sizes 5000 --repeat 1   # quick look

Both systems read the same synthetic A&E CSV (``connector synth`` data, cut to exactly
``--records`` rows). Every run is a fresh process: ours is ``connector pseudonymise ...
--workers W`` (through ``bench/_timed_connector.py``, which also times the pipeline call), the
peer is ``clkhash.clk.generate_clk_from_csv(max_workers=W)`` (schema v3, 1024-bit CLKs) run by
``bench/peers/run_clkhash.py`` inside ``bench/.peers-venv``, which is created here from
``bench/requirements-peers.txt`` when missing or stale. Runs of the two systems are interleaved,
so background load hits both alike. Smaller ``--sizes`` are prefixes of the same file and show
how memory grows with input size.

Prints a table, then, as its last line, the JSON result object (figures: ``bench/README.md``).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import math
import os
import secrets
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import (  # bench/ is on sys.path: it is the script's directory
    BENCH_DIR,
    REPO_DIR,
    RunMeasurement,
    ensure_peers_venv,
    last_json_line,
    load_average,
    log,
    machine_info,
    print_result_line,
    run_measured,
)

OURS = "pprl-hub connector"
CLKHASH = "clkhash"
SYSTEMS = {"ours": OURS, "clkhash": CLKHASH}
TARGET_RATIO = 2.0
MAPPING = REPO_DIR / "config" / "mappings" / "ae.toml"
ENCODING_SCHEMA = REPO_DIR / "config" / "encoding" / "v1.toml"
CLKHASH_SCHEMA = BENCH_DIR / "peers" / "clkhash-ae-v3.json"
CLKHASH_RUNNER = BENCH_DIR / "peers" / "run_clkhash.py"
CONNECTOR_RUNNER = BENCH_DIR / "_timed_connector.py"
#: A&E rows per synthetic person (about 0.63 for connectors.synth); a low guess, topped up below.
_AE_ROWS_PER_PERSON = 0.6


@dataclass(frozen=True, slots=True)
class Config:
    records: int
    sizes: tuple[int, ...]
    workers: tuple[int, ...]
    repeat: int
    seed: int
    systems: tuple[str, ...]
    out_dir: Path
    fresh_data: bool


@dataclass(frozen=True, slots=True)
class Keys:
    linkage: Path
    record: Path
    clkhash_secret: Path


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    path: Path
    records: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Sample:
    """One measured run of one system."""

    system: str
    workers: int
    dataset: Dataset
    run: RunMeasurement
    encode_seconds: float
    records_out: int
    effective_workers: int
    version: str
    command: str


# --- arguments -----------------------------------------------------------------------------


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x.replace("_", "")) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of integers: {text}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"need positive integers: {text}")
    return values


def parse_args(argv: Sequence[str] | None = None) -> Config:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=100_000, help="records in the full dataset")
    p.add_argument(
        "--sizes",
        type=_int_list,
        default=(25_000, 50_000),
        help="smaller prefixes also measured, to show memory against input size "
        "(default 25000,50000; --records is always included)",
    )
    p.add_argument("--workers", type=_int_list, default=(1, 2), help="worker counts (1,2)")
    p.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs per system and worker count at --records (median reported); other sizes once",
    )
    p.add_argument("--seed", type=int, default=1, help="synthetic data seed")
    p.add_argument(
        "--systems",
        default="ours,clkhash",
        help="comma-separated subset of: " + ", ".join(SYSTEMS),
    )
    p.add_argument(
        "--out-dir",
        type=Path,
        default=BENCH_DIR / "out" / "encode",
        help="data, keys and outputs (default bench/out/encode, gitignored)",
    )
    p.add_argument("--fresh-data", action="store_true", help="re-synthesise even if cached")
    a = p.parse_args(argv)
    systems = tuple(s.strip() for s in a.systems.split(",") if s.strip())
    unknown = sorted(set(systems) - set(SYSTEMS))
    if unknown or not systems:
        p.error(f"--systems: unknown {unknown}; choose from {sorted(SYSTEMS)}")
    if a.records < 1 or a.repeat < 1:
        p.error("--records and --repeat must be at least 1")
    sizes = tuple(sorted({s for s in a.sizes if s < a.records} | {a.records}))
    return Config(
        records=a.records,
        sizes=sizes,
        workers=a.workers,
        repeat=a.repeat,
        seed=a.seed,
        systems=systems,
        out_dir=a.out_dir.resolve(),
        fresh_data=a.fresh_data,
    )


# --- data and keys -------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_prefix(src: Path, rows: int, dest: Path) -> int:
    """Copy the header and the first ``rows`` records of ``src``; return the records copied."""
    tmp = dest.with_name(dest.name + ".partial")
    written = 0
    with (
        src.open(encoding="utf-8", newline="") as fin,
        tmp.open("w", encoding="utf-8", newline="") as fout,
    ):
        reader, writer = csv.reader(fin), csv.writer(fout, lineterminator="\n")
        writer.writerow(next(reader))
        for row in reader:
            if written == rows:
                break
            writer.writerow(row)
            written += 1
    tmp.replace(dest)
    return written


def _synthesise_ae(records: int, seed: int, work: Path) -> Path:
    """A synthetic A&E export with at least ``records`` rows."""
    from connectors.synth import synthesise  # project venv only

    people = math.ceil(records / _AE_ROWS_PER_PERSON) + 1_000
    while True:
        log(f"synthesising {people:,} people (seed {seed}) for {records:,} A&E records")
        summary = synthesise(people, seed, work)
        if summary.ae_rows >= records:
            return summary.ae_path
        people = math.ceil(people * 1.1 * records / max(summary.ae_rows, 1))


def prepare_datasets(cfg: Config) -> dict[int, Dataset]:
    """The full CSV (cached by seed and size) and its prefixes, one per size."""
    data_dir = cfg.out_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    full = data_dir / f"ae-seed{cfg.seed}-{cfg.records}.csv"
    if cfg.fresh_data or not full.is_file():
        with tempfile.TemporaryDirectory(dir=data_dir) as work:
            ae = _synthesise_ae(cfg.records, cfg.seed, Path(work))
            _write_prefix(ae, cfg.records, full)
    datasets = {}
    for size in cfg.sizes:
        path = (
            full
            if size == cfg.records
            else data_dir / f"ae-seed{cfg.seed}-{size}-of-{full.stem}.csv"
        )
        if path != full and (cfg.fresh_data or not path.is_file()):
            _write_prefix(full, size, path)
        name = f"synth-ae seed={cfg.seed} records={size}"
        datasets[size] = Dataset(name=name, path=path, records=size, sha256=_sha256(path))
    return datasets


def _connector(*args: str) -> list[str]:
    return [sys.executable, "-m", "connectors.cli", *args]


def make_keys(cfg: Config) -> Keys:
    keys_dir = cfg.out_dir / "keys"
    keys_dir.mkdir(parents=True, exist_ok=True)
    keys = Keys(
        linkage=keys_dir / "linkage.key",
        record=keys_dir / "ae-record.key",
        clkhash_secret=keys_dir / "clkhash.secret",
    )
    for cmd in (
        _connector("keygen", "--out", str(keys.linkage), "--force"),
        _connector("keygen", "--record-key", "--out", str(keys.record), "--force"),
    ):
        run = run_measured(cmd)
        if run.returncode != 0:
            raise SystemExit(f"keygen failed: {run.stderr.strip()}")
    fd = os.open(keys.clkhash_secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    return keys


# --- runs ----------------------------------------------------------------------------------


def _rel(path: Path) -> str:
    return os.path.relpath(path, REPO_DIR)


def _display(cmd: Iterable[str]) -> str:
    return shlex.join(cmd)


def source_fingerprint() -> str:
    """SHA-256 of the connector's source files: which code a figure measured (it changes often)."""
    digest = hashlib.sha256()
    for path in sorted((REPO_DIR / "connectors").rglob("*.py")):
        digest.update(path.relative_to(REPO_DIR).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def run_ours(dataset: Dataset, workers: int, keys: Keys, out_dir: Path) -> Sample:
    output = out_dir / f"ours-w{workers}-{dataset.records}.parquet"
    # fmt: off
    args = [
        "pseudonymise",
        "--mapping", _rel(MAPPING), "--schema", _rel(ENCODING_SCHEMA),
        "--key", _rel(keys.linkage), "--record-key", _rel(keys.record),
        "--input", _rel(dataset.path), "--output", _rel(output),
        "--quiet", "--workers", str(workers),
    ]
    # fmt: on
    run = run_measured([sys.executable, _rel(CONNECTOR_RUNNER), *args])
    if run.returncode != 0:
        raise SystemExit(f"connector failed ({run.returncode}):\n{run.stderr}")
    timing = last_json_line(run.stdout)
    if timing["rows_read"] != dataset.records:
        raise SystemExit(f"connector read {timing['rows_read']} rows, expected {dataset.records}")
    return Sample(
        system=OURS,
        workers=workers,
        dataset=dataset,
        run=run,
        encode_seconds=float(timing["encode_seconds"]),
        records_out=int(timing["rows_written"]),
        effective_workers=workers,
        version=f"{timing['software_version']} (source {source_fingerprint()})",
        command=_display(["connector", *args]),
    )


def run_clkhash(dataset: Dataset, workers: int, keys: Keys, out_dir: Path, python: Path) -> Sample:
    output = out_dir / f"clkhash-w{workers}-{dataset.records}.json"
    # fmt: off
    args = [
        _rel(CLKHASH_RUNNER),
        "--schema", _rel(CLKHASH_SCHEMA), "--secret-file", _rel(keys.clkhash_secret),
        "--input", _rel(dataset.path), "--output", _rel(output), "--workers", str(workers),
    ]
    # fmt: on
    run = run_measured([str(python), *args])
    if run.returncode != 0:
        raise SystemExit(f"clkhash failed ({run.returncode}):\n{run.stderr}")
    timing = last_json_line(run.stdout)
    if timing["records"] != dataset.records:
        raise SystemExit(f"clkhash encoded {timing['records']} rows, expected {dataset.records}")
    return Sample(
        system=CLKHASH,
        workers=workers,
        dataset=dataset,
        run=run,
        encode_seconds=float(timing["encode_seconds"]),
        records_out=int(timing["records"]),
        effective_workers=int(timing["effective_workers"]),
        version=str(timing["clkhash_version"]),
        command=_display([_rel(python), *args]),
    )


def run_all(
    cfg: Config, datasets: dict[int, Dataset], keys: Keys, peers: Path | None
) -> dict[tuple[str, int, int], list[Sample]]:
    """Every (size, repeat, workers, system), interleaving the systems."""
    runs_dir = cfg.out_dir / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    cells: dict[tuple[str, int, int], list[Sample]] = {}
    for size in cfg.sizes:
        repeat = cfg.repeat if size == cfg.records else 1  # smaller sizes: memory points
        for rep in range(1, repeat + 1):
            for workers in cfg.workers:
                for system in cfg.systems:
                    if system == "ours":
                        sample = run_ours(datasets[size], workers, keys, runs_dir)
                    else:
                        assert peers is not None
                        sample = run_clkhash(datasets[size], workers, keys, runs_dir, peers)
                    log(
                        f"{sample.system:<19} w={workers} n={size:>7,} run {rep}/{repeat}: "
                        f"{sample.encode_seconds:6.2f} s encode, {sample.run.wall_seconds:6.2f} s "
                        f"wall, {sample.run.peak_tree_pss_mb:5.0f} MB"
                    )
                    cells.setdefault((sample.system, workers, size), []).append(sample)
    return cells


# --- figures -------------------------------------------------------------------------------


def summarise(samples: list[Sample]) -> dict[str, Any]:
    """One ``results`` entry: medians of the repeats' times, maxima of their memory."""
    first = samples[0]
    encode = [s.encode_seconds for s in samples]
    wall = [s.run.wall_seconds for s in samples]
    records = first.dataset.records
    encode_median, wall_median = statistics.median(encode), statistics.median(wall)
    return {
        "system": first.system,
        "version": first.version,
        "dataset": first.dataset.name,
        "dataset_sha256": first.dataset.sha256,
        "records": records,
        "records_out": first.records_out,
        "workers": first.workers,
        "effective_workers": first.effective_workers,
        "repeats": len(samples),
        "encode_seconds": round(encode_median, 3),
        "records_per_s": round(records / encode_median),
        "records_per_s_best": round(records / min(encode)),
        "wall_seconds": round(wall_median, 3),
        "records_per_s_wall": round(records / wall_median),
        "overhead_seconds": round(
            statistics.median(w - e for w, e in zip(wall, encode, strict=True)), 3
        ),
        "encode_seconds_runs": [round(x, 3) for x in encode],
        "wall_seconds_runs": [round(x, 3) for x in wall],
        "peak_rss_mb": round(max(s.run.peak_rss_mb for s in samples), 1),
        "peak_tree_pss_mb": round(max(s.run.peak_tree_pss_mb for s in samples), 1),
        "command": first.command,
    }


def _find(
    results: list[dict[str, Any]], system: str, workers: int, records: int
) -> dict[str, Any] | None:
    for r in results:
        if (r["system"], r["workers"], r["records"]) == (system, workers, records):
            return r
    return None


def ratios(results: list[dict[str, Any]], cfg: Config) -> list[dict[str, Any]]:
    """ours / clkhash throughput per worker count and size."""
    out = []
    for size in cfg.sizes:
        for workers in cfg.workers:
            ours, peer = _find(results, OURS, workers, size), _find(results, CLKHASH, workers, size)
            if ours is None or peer is None:
                continue
            ratio = ours["records_per_s"] / peer["records_per_s"]
            out.append(
                {
                    "records": size,
                    "workers": workers,
                    "records_per_s_ratio": round(ratio, 3),
                    "records_per_s_wall_ratio": round(
                        ours["records_per_s_wall"] / peer["records_per_s_wall"], 3
                    ),
                    "records_per_s_best_ratio": round(
                        ours["records_per_s_best"] / peer["records_per_s_best"], 3
                    ),
                    "target": TARGET_RATIO,
                    "meets_target": ratio >= TARGET_RATIO,
                }
            )
    return out


def memory_scaling(results: list[dict[str, Any]], cfg: Config) -> list[dict[str, Any]]:
    """Peak memory against input size, per system and worker count."""
    out = []
    for system in (SYSTEMS[s] for s in cfg.systems):
        for workers in cfg.workers:
            rows = [r for size in cfg.sizes if (r := _find(results, system, workers, size))]
            if len(rows) < 2:
                continue
            span = rows[-1]["records"] - rows[0]["records"]
            growth = rows[-1]["peak_tree_pss_mb"] - rows[0]["peak_tree_pss_mb"]
            out.append(
                {
                    "system": system,
                    "workers": workers,
                    "records": [r["records"] for r in rows],
                    "peak_tree_pss_mb": [r["peak_tree_pss_mb"] for r in rows],
                    "peak_rss_mb": [r["peak_rss_mb"] for r in rows],
                    "pss_mb_per_100k_records": round(growth / span * 100_000, 1),
                }
            )
    return out


# --- report --------------------------------------------------------------------------------


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


_HEAD = [
    "system",
    "workers",
    "encode s",
    "records/s",
    "best rec/s",
    "wall s",
    "records/s (wall)",
    "overhead s",
    "peak RSS MB",
    "tree PSS MB",
]


def _workers_cell(r: dict[str, Any]) -> str:
    ran = r["effective_workers"]
    return f"{r['workers']}" + ("" if ran == r["workers"] else f" (ran {ran})")


def _throughput_table(results: list[dict[str, Any]]) -> str:
    rows = [_HEAD] + [
        [
            r["system"],
            _workers_cell(r),
            f"{r['encode_seconds']:.2f}",
            f"{r['records_per_s']:,}",
            f"{r['records_per_s_best']:,}",
            f"{r['wall_seconds']:.2f}",
            f"{r['records_per_s_wall']:,}",
            f"{r['overhead_seconds']:.2f}",
            f"{r['peak_rss_mb']:.0f}",
            f"{r['peak_tree_pss_mb']:.0f}",
        ]
        for r in results
    ]
    return _table(rows)


def _ratio_lines(rat: list[dict[str, Any]]) -> list[str]:
    lines = []
    for x in rat:
        verdict = "meets" if x["meets_target"] else "BELOW"
        lines.append(
            f"ours / clkhash, {x['workers']} worker(s): {x['records_per_s_ratio']:.2f}x "
            f"(encode call), {x['records_per_s_wall_ratio']:.2f}x (whole command), "
            f"{x['records_per_s_best_ratio']:.2f}x (best runs): {verdict} the "
            f"{TARGET_RATIO:g}x target"
        )
    return lines


def _memory_table(mem: list[dict[str, Any]], sizes: Sequence[int]) -> str:
    rows = [["system", "workers", *(f"{s:,}" for s in sizes), "MB per 100k records"]]
    for m in mem:
        by_size = dict(zip(m["records"], m["peak_tree_pss_mb"], strict=True))
        rows.append(
            [m["system"], str(m["workers"])]
            + [f"{by_size[s]:.0f}" if s in by_size else "-" for s in sizes]
            + [f"{m['pss_mb_per_100k_records']:+.1f}"]
        )
    return _table(rows)


def render(
    cfg: Config,
    machine: dict[str, Any],
    results: list[dict[str, Any]],
    rat: list[dict[str, Any]],
    mem: list[dict[str, Any]],
) -> str:
    out = [
        f"encode throughput: {cfg.records:,} synthetic A&E records (seed {cfg.seed}), "
        f"median of {cfg.repeat} run(s); {machine['cores']} cores, {machine['cpu_model']}; "
        f"load average {machine['load_average_start']} at start, "
        f"{machine['load_average_end']} at end",
        "",
        _throughput_table([r for r in results if r["records"] == cfg.records]),
    ]
    main_ratios = [x for x in rat if x["records"] == cfg.records]
    if main_ratios:
        out += ["", *_ratio_lines(main_ratios)]
    if mem:
        out += ["", "peak memory (tree PSS MB) against input size:", _memory_table(mem, cfg.sizes)]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    started = time.perf_counter()
    cli_args = list(sys.argv[1:] if argv is None else argv)
    cfg = parse_args(cli_args)
    machine = machine_info()
    machine["load_average_start"] = load_average()
    if machine["load_average_start"] and machine["load_average_start"][0] > 0.5:
        log(f"warning: load average {machine['load_average_start']}: other work is running")
    peers = ensure_peers_venv() if "clkhash" in cfg.systems else None
    datasets = prepare_datasets(cfg)
    keys = make_keys(cfg)
    cells = run_all(cfg, datasets, keys, peers)
    results = [summarise(samples) for samples in cells.values()]
    results.sort(key=lambda r: (r["records"], r["workers"], r["system"] != OURS))
    rat, mem = ratios(results, cfg), memory_scaling(results, cfg)
    machine["load_average_end"] = load_average()
    print(render(cfg, machine, results, rat, mem))
    print()
    elapsed = time.perf_counter() - started
    print(f"whole bench: {elapsed:.0f} s")
    print_result_line(
        "encode",
        machine,
        results,
        ratios=rat,
        memory_scaling=mem,
        command=shlex.join([_rel(Path(sys.executable)), "bench/encode.py", *cli_args]),
        elapsed_seconds=round(elapsed, 1),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
