"""Linkage quality and speed: our pipeline on encoded data against the established tools.

Usage (from the repository root, in the project's venv; ``make bench-linkage`` runs the default)::

    python bench/linkage.py [--datasets febrl4,synthetic-100k] [--systems ours,splink,...]

For each dataset, in one run and on the same records:

* **ours**: the connector encodes both exports (keyed tokens, hardened Bloom filters), then
  ``python -m linkage link`` (DuckDB) links the encoded files; links are mapped back to record ids
  with the agencies' keymaps only here, to score them;
* **splink**: Splink on the normalised plaintext (``peers/link_splink.py``);
* **recordlinkage**: recordlinkage's classic pipeline on the plaintext
  (``peers/link_recordlinkage.py``);
* **anonlink**: clkhash CLKs of the plaintext, anonlink all-pairs Dice and greedy 1:1 solving
  (``peers/link_anonlink.py``, in ``bench/.peers-venv``).

Every system gets the same normalised plaintext (the connector's own normalisers), so the only
difference between us and the plaintext tools is the encoding. Each runs as its own process tree,
measured for wall time and peak memory. Quality is pair-level precision, recall and F1 against
the truth, at the system's default threshold and at its best threshold (the sweep uses labels,
so it is an upper bound no user could pick blind). Figures are documented in ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench._common import (
    BENCH_DIR,
    RunMeasurement,
    ensure_peers_venv,
    last_json_line,
    load_average,
    log,
    machine_info,
    print_result_line,
    run_measured,
)
from bench._linkdata import Dataset, febrl4, synthetic

SYSTEMS = ("ours", "splink", "recordlinkage", "anonlink")
#: Systems run at one million records per side (anonlink all pairs and recordlinkage would not
#: finish in reasonable time there).
LARGE_SYSTEMS = ("ours", "splink")
DATASETS = ("febrl4", "synthetic-10k", "synthetic-100k", "synthetic-1m")
PEER_SCRIPTS = {
    "splink": "link_splink.py",
    "recordlinkage": "link_recordlinkage.py",
    "anonlink": "link_anonlink.py",
}


@dataclass(frozen=True, slots=True)
class Config:
    datasets: tuple[str, ...]
    systems: tuple[str, ...]
    workers: int
    out: Path
    memory_limit: str | None


@dataclass(frozen=True, slots=True)
class Quality:
    threshold: float
    precision: float
    recall: float
    f1: float


# --- arguments -----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> Config:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--datasets",
        default="febrl4,synthetic-100k",
        help="comma-separated subset of: " + ", ".join(DATASETS),
    )
    p.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help="comma-separated subset of: " + ", ".join(SYSTEMS),
    )
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes per tool")
    p.add_argument("--memory-limit", help="DuckDB memory limit for our run, e.g. 5GB")
    p.add_argument(
        "--out",
        type=Path,
        default=BENCH_DIR / "out" / "linkage",
        help="data, keys and outputs (default bench/out/linkage, gitignored)",
    )
    a = p.parse_args(argv)
    datasets = tuple(d.strip() for d in a.datasets.split(",") if d.strip())
    systems = tuple(s.strip() for s in a.systems.split(",") if s.strip())
    if not datasets or set(datasets) - set(DATASETS):
        p.error(f"--datasets: choose from {', '.join(DATASETS)}")
    if not systems or set(systems) - set(SYSTEMS):
        p.error(f"--systems: choose from {', '.join(SYSTEMS)}")
    if a.workers < 1:
        p.error("--workers must be at least 1")
    return Config(datasets, systems, a.workers, a.out.resolve(), a.memory_limit)


def _dataset(name: str, out: Path) -> Dataset:
    data = out / "data"
    if name == "febrl4":
        return febrl4(data)
    return synthetic(data, {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}[name.split("-")[1]])


# --- quality -------------------------------------------------------------------------------


def truth_keys(path: Path) -> pa.Array:
    t = pq.read_table(path)
    return _pair_keys(t.column("record_a"), t.column("record_b"))


def _pair_keys(a: pa.ChunkedArray | pa.Array, b: pa.ChunkedArray | pa.Array) -> pa.Array:
    joined = pc.binary_join_element_wise(a, b, "\x1f")
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


def evaluate(pairs: pa.Table, truth: pa.Array, default: float) -> dict[str, Any]:
    """Precision, recall and F1 at ``default`` and at the best threshold (from the labels)."""
    keyed = pa.table(
        {
            "key": _pair_keys(pairs.column("record_a"), pairs.column("record_b")),
            "score": pairs.column("score"),
        }
    )
    # a pair scored twice counts once, at its highest score
    keyed = keyed.group_by("key").aggregate([("score", "max")])
    scores = keyed.column("score_max").to_numpy()
    true = np.asarray(
        pc.is_in(keyed.column("key"), value_set=truth).to_numpy(zero_copy_only=False), dtype=bool
    )
    order = np.argsort(-scores, kind="stable")
    s, t = scores[order], true[order]
    tp = np.cumsum(t)
    k = np.arange(1, s.size + 1)
    total = len(truth)
    f1 = 2 * tp / (k + total) if s.size else np.zeros(0)
    # only cut between distinct scores
    last = np.r_[s[1:] != s[:-1], True] if s.size else np.zeros(0, dtype=bool)
    best_i = int(np.argmax(np.where(last, f1, -1.0))) if s.size else -1
    at = s >= default  # s and t are both in score order
    tp_d = int(t[at].sum())
    kept = int(at.sum())

    def q(th: float, tp_: int, n: int) -> Quality:
        precision = tp_ / n if n else 1.0
        recall = tp_ / total if total else 1.0
        f = 2 * tp_ / (n + total) if n + total else 0.0
        return Quality(th, round(precision, 4), round(recall, 4), round(f, 4))

    d = q(default, tp_d, kept)
    b = q(float(s[best_i]), int(tp[best_i]), int(k[best_i])) if s.size else d
    return {
        "threshold": d.threshold,
        "precision": d.precision,
        "recall": d.recall,
        "f1": d.f1,
        "best_threshold": round(b.threshold, 4),
        "best_precision": b.precision,
        "best_recall": b.recall,
        "best_f1": b.f1,
        "true_pairs": total,
        "candidate_recall": round(float(true.sum()) / total, 4) if total else 1.0,
    }


# --- our pipeline --------------------------------------------------------------------------


def _keys(out: Path) -> dict[str, Path]:
    keys = out / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    paths = {
        "linkage": keys / "linkage.key",
        "a": keys / "record_a.key",
        "b": keys / "record_b.key",
    }
    for name, path in paths.items():
        if not path.exists():
            cmd = ["connector", "keygen", "--out", str(path)]
            _check(run_measured([*cmd, *(["--record-key"] if name != "linkage" else [])]), cmd)
    return paths


def _check(run: RunMeasurement, cmd: Sequence[str]) -> RunMeasurement:
    if run.returncode != 0:
        raise SystemExit(f"failed ({run.returncode}): {' '.join(cmd)}\n{run.stderr[-3000:]}")
    return run


def encode(ds: Dataset, cfg: Config) -> dict[str, Any]:
    """Encode both sides with the connector (reused while the data and keys are unchanged)."""
    keys = _keys(cfg.out)
    enc = cfg.out / "encoded" / ds.name
    enc.mkdir(parents=True, exist_ok=True)
    stamp = enc / "stamp.json"
    want = {"info": ds.info, "schema": ds.schema.read_text(encoding="utf-8")}
    if stamp.exists() and json.loads(stamp.read_text(encoding="utf-8")).get("want") == want:
        done: dict[str, Any] = json.loads(stamp.read_text(encoding="utf-8"))
        return done
    seconds = {}
    for side, raw, mapping in (("a", ds.raw_a, ds.mapping_a), ("b", ds.raw_b, ds.mapping_b)):
        log(f"{ds.name}: encoding side {side} with the connector")
        cmd = [
            *("connector", "pseudonymise", "--quiet", "--workers", str(cfg.workers)),
            *("--mapping", str(mapping), "--schema", str(ds.schema)),
            *("--key", str(keys["linkage"]), "--record-key", str(keys[side])),
            *("--agency", f"{ds.name}-{side}", "--input", str(raw)),
            *(
                "--output",
                str(enc / f"{side}.parquet"),
                "--keymap",
                str(enc / f"keymap_{side}.parquet"),
            ),
        ]
        seconds[side] = round(_check(run_measured(cmd), cmd).wall_seconds, 2)
    done = {"want": want, "encode_seconds": seconds}
    stamp.write_text(json.dumps(done), encoding="utf-8")
    return done


def run_ours(ds: Dataset, cfg: Config) -> tuple[dict[str, Any], pa.Table, float, pa.Table]:
    enc = cfg.out / "encoded" / ds.name
    encoded = encode(ds, cfg)
    run_dir = cfg.out / "runs" / ds.name / "ours"
    scores = run_dir / "scores.parquet"
    cmd = [
        *(sys.executable, "-m", "linkage", "link", "--schema", str(ds.schema)),
        *(str(enc / "a.parquet"), str(enc / "b.parquet"), "--out", str(run_dir)),
        *("--scores", str(scores)),
        *(["--memory-limit", cfg.memory_limit] if cfg.memory_limit else []),
    ]
    log(f"{ds.name}: ours (DuckDB)")
    run = _check(run_measured(cmd), cmd)
    diag = json.loads((run_dir / "diagnostics.json").read_text(encoding="utf-8"))
    pairs = _to_record_ids(pq.read_table(scores), enc, f"{ds.name}-a")
    entity_pairs = _entity_pairs(pq.read_table(run_dir / "entities.parquet"), enc, f"{ds.name}-a")
    figures = {
        "seconds": round(run.wall_seconds, 2),
        "seconds_in_process": round(sum(diag["seconds"].values()), 2),
        "stage_seconds": diag["seconds"],
        "encode_seconds": encoded["encode_seconds"],
        "peak_rss_mb": round(run.peak_rss_mb),
        "peak_tree_pss_mb": round(run.peak_tree_pss_mb),
        "compared_pairs": diag["blocking"]["compared"],
        "expected_f1": round(diag["threshold"]["expected_f1"], 4),
        "command": " ".join(cmd),
    }
    return figures, pairs, float(diag["threshold"]["threshold"]), entity_pairs


def _keymap(enc: Path, side: str) -> dict[str, str]:
    t = pq.read_table(enc / f"keymap_{side}.parquet")
    return {
        p.hex(): r
        for p, r in zip(
            t.column("record_pseudonym").to_pylist(), t.column("record_id").to_pylist(), strict=True
        )
    }


def _to_record_ids(scored: pa.Table, enc: Path, name_a: str) -> pa.Table:
    """Scored pairs (pseudonyms, either orientation) as ``record_a, record_b, score``."""
    ka, kb = _keymap(enc, "a"), _keymap(enc, "b")
    left_is_a = pc.equal(scored.column("dataset_l"), name_a).to_numpy(zero_copy_only=False)
    l_ = scored.column("record_l").to_pylist()
    r_ = scored.column("record_r").to_pylist()
    ra = [ka[x if a else y] for x, y, a in zip(l_, r_, left_is_a, strict=True)]
    rb = [kb[y if a else x] for x, y, a in zip(l_, r_, left_is_a, strict=True)]
    return pa.table({"record_a": ra, "record_b": rb, "score": scored.column("match_probability")})


def _entity_pairs(entities: pa.Table, enc: Path, name_a: str) -> pa.Table:
    """Every cross pair that shares an entity (what clustering asserts), scored 1."""
    ka, kb = _keymap(enc, "a"), _keymap(enc, "b")
    groups: dict[str, tuple[list[str], list[str]]] = {}
    for e, d, r in zip(
        *(entities.column(c).to_pylist() for c in ("entity_id", "dataset", "record")), strict=True
    ):
        sides = groups.setdefault(e, ([], []))
        if d == name_a:
            sides[0].append(ka[r])
        else:
            sides[1].append(kb[r])
    ra = [a for sa, sb in groups.values() for a in sa for _ in sb]
    rb = [b for sa, sb in groups.values() for _ in sa for b in sb]
    return pa.table({"record_a": ra, "record_b": rb, "score": np.ones(len(ra))})


# --- peers ---------------------------------------------------------------------------------


def run_peer(system: str, ds: Dataset, cfg: Config) -> tuple[dict[str, Any], pa.Table, float]:
    profile = "febrl" if ds.name == "febrl4" else "synthetic"
    run_dir = cfg.out / "runs" / ds.name / system
    run_dir.mkdir(parents=True, exist_ok=True)
    pairs_path = run_dir / "pairs.parquet"
    python = str(ensure_peers_venv()) if system == "anonlink" else sys.executable
    cmd = [
        *(python, str(BENCH_DIR / "peers" / PEER_SCRIPTS[system])),
        *("--a", str(ds.plain_a), "--b", str(ds.plain_b), "--profile", profile),
        *("--out", str(pairs_path), "--workers", str(cfg.workers)),
    ]
    if system == "anonlink" and profile == "synthetic":
        # several records per person on each side: greedy 1:1 could reach at most about half
        # of the true pairs, so anonlink gets its threshold-only configuration here
        cmd += ["--solver", "none"]
    log(f"{ds.name}: {system}")
    run = _check(run_measured(cmd), cmd)
    report = last_json_line(run.stdout)
    figures = {
        "seconds": round(run.wall_seconds, 2),
        "seconds_in_process": round(float(report["seconds"]["total"]), 2),
        "stage_seconds": report["seconds"],
        "peak_rss_mb": round(run.peak_rss_mb),
        "peak_tree_pss_mb": round(run.peak_tree_pss_mb),
        "versions": report.get("versions", {}),
        "command": " ".join(cmd),
    }
    for extra in ("comparisons", "comparisons_per_second", "pairs"):
        if extra in report:
            figures[extra] = report[extra]
    return figures, pq.read_table(pairs_path), float(report["default_threshold"])


# --- report --------------------------------------------------------------------------------


def _ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ours against each peer, per dataset: F1 difference, time and memory ratios."""
    out = []
    by = {(r["dataset"], r["system"]): r for r in results}
    for (dataset, system), ours in by.items():
        if system != "ours":
            continue
        for (d2, peer), r in by.items():
            if d2 != dataset or peer in ("ours", "ours-entities"):
                continue
            out.append(
                {
                    "dataset": dataset,
                    "versus": peer,
                    "f1_minus_peer_f1": round(ours["f1"] - r["f1"], 4),
                    "f1_minus_peer_best_f1": round(ours["f1"] - r["best_f1"], 4),
                    "peer_seconds_over_ours": round(
                        r["seconds_in_process"] / max(ours["seconds_in_process"], 1e-9), 2
                    ),
                    "our_peak_memory_over_peer": round(
                        ours["peak_tree_pss_mb"] / max(r["peak_tree_pss_mb"], 1), 2
                    ),
                }
            )
    return out


def _print_table(results: list[dict[str, Any]], ratios: list[dict[str, Any]]) -> None:
    head = (
        f"{'dataset':<15} {'system':<16} {'thr':>6} {'P':>6} {'R':>6} {'F1':>6} "
        f"{'bestF1':>7} {'@thr':>6} {'secs':>7} {'peakMB':>7}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        print(
            f"{r['dataset']:<15} {r['system']:<16} {r['threshold']:>6.3f} {r['precision']:>6.4f} "
            f"{r['recall']:>6.4f} {r['f1']:>6.4f} {r['best_f1']:>7.4f} "
            f"{r['best_threshold']:>6.3f} {r['seconds_in_process']:>7.1f} "
            f"{r['peak_tree_pss_mb']:>7}"
        )
    print()
    for x in ratios:
        print(
            f"{x['dataset']:<15} ours vs {x['versus']:<14} F1 {x['f1_minus_peer_f1']:+.4f} "
            f"(vs its best {x['f1_minus_peer_best_f1']:+.4f}), its time / ours "
            f"{x['peer_seconds_over_ours']:.2f}, "
            f"our memory / its {x['our_peak_memory_over_peer']:.2f}"
        )


def dice_kernels(cfg: Config) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Our Dice kernel outside SQL against anonlink's, one core each, on the same random
    1,024-bit filters (``_kernel_ours.py``, ``peers/kernel_anonlink.py``)."""
    env = {
        **os.environ,
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    commands = {
        "ours": [sys.executable, str(BENCH_DIR / "_kernel_ours.py")],
        "anonlink": [
            str(ensure_peers_venv()),
            "-W",
            "ignore",
            str(BENCH_DIR / "peers" / "kernel_anonlink.py"),
        ],
    }
    results, rates = [], {}
    for name, cmd in commands.items():
        log(f"Dice kernel: {name}")
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        report = last_json_line(done.stdout)
        rates[name] = float(report["pairs_per_second"])
        results.append(
            {
                "system": report["system"],
                "dataset": f"random {report['bits']}-bit filters, {report['n']} x {report['n']}",
                "pairs_per_second_per_core": round(rates[name]),
                "command": " ".join(cmd),
            }
        )
    ratio = {
        "dataset": "dice-kernel",
        "versus": "anonlink",
        "our_kernel_speed_over_peer": round(rates["ours"] / rates["anonlink"], 3),
    }
    return results, ratio


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    machine = machine_info()
    results: list[dict[str, Any]] = []
    for name in cfg.datasets:
        ds = _dataset(name, cfg.out)
        truth = truth_keys(ds.truth)
        systems = [s for s in cfg.systems if name != "synthetic-1m" or s in LARGE_SYSTEMS]
        for system in systems:
            base = {
                "system": system if system != "splink" else "splink-plaintext",
                "dataset": name,
                "records_a": ds.info["rows_a"],
                "records_b": ds.info["rows_b"],
            }
            if system == "ours":
                figures, pairs, default, entity_pairs = run_ours(ds, cfg)
                results.append({**base, **evaluate(pairs, truth, default), **figures})
                ent = evaluate(entity_pairs, truth, 1.0)
                results.append(
                    {**base, "system": "ours-entities", **ent, **figures, "best_f1": ent["f1"]}
                )
            else:
                figures, pairs, default = run_peer(system, ds, cfg)
                results.append({**base, **evaluate(pairs, truth, default), **figures})
    ratios = _ratios(results)
    _print_table(results, ratios)
    if "anonlink" in cfg.systems and "ours" in cfg.systems:
        kernels, kernel_ratio = dice_kernels(cfg)
        for k in kernels:
            print(
                f"Dice kernel, one core: {k['system']}: {k['pairs_per_second_per_core']:,} pairs/s"
            )
        results += kernels
        ratios.append(kernel_ratio)
    machine["load_average_end"] = load_average()
    print_result_line("linkage", machine, results, ratios=ratios)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
