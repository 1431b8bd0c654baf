"""``python -m linkage``: link encoded files offline and write links, entities and diagnostics."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from linkage.charts import parameter_chart_svg, weight_histogram_svg
from linkage.engines import DEFAULT_MEMORY_LIMIT, DuckDBEngine, Engine, SparkEngine
from linkage.errors import InputMismatchError, LinkageError
from linkage.inputs import read_encoded
from linkage.run import LinkResult, LinkSettings, blocking_report, link, probability_to_weight


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m linkage", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("link", help="link two or more encoded files")
    p.add_argument("inputs", nargs="+", type=Path, help="encoded Parquet files (2 or more)")
    p.add_argument("--out", type=Path, required=True, help="directory for the outputs")
    p.add_argument(
        "--schema", type=Path, help="encoding schema (TOML) the inputs must have been made with"
    )
    p.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb", help="SQL engine")
    p.add_argument(
        "--spark-master", default="local[*]", help="Spark master URL (with --engine spark)"
    )
    p.add_argument("--threshold", type=float, help="match probability threshold (default: chosen)")
    p.add_argument("--seed", type=int, default=1, help="seed for u sampling and LSH")
    p.add_argument(
        "--scores", type=Path, help="also write every scored pair (probability >= 0.001) here"
    )
    p.add_argument(
        "--memory-limit", default=DEFAULT_MEMORY_LIMIT, help="DuckDB memory limit (default 1.5GB)"
    )
    p.add_argument(
        "--temp-dir", type=Path, help="DuckDB spill directory (default: a private temporary one)"
    )
    p = sub.add_parser("blocking", help="report candidate pairs per blocking rule, without linking")
    p.add_argument("inputs", nargs="+", type=Path, help="encoded Parquet files (2 or more)")
    p.add_argument("--seed", type=int, default=1, help="seed for LSH band positions")
    return parser


def diagnostics(result: LinkResult) -> dict[str, Any]:
    """The run's diagnostics as JSON-ready data."""
    weights = result.weights[np.isfinite(result.weights)]
    counts: list[int] = []
    edges: list[float] = []
    if weights.size:
        hist, bounds = np.histogram(weights, bins=40)
        counts, edges = [int(c) for c in hist], [float(e) for e in bounds]
    return {
        "threshold": asdict(result.choice),
        "links": result.links.num_rows,
        "entities": len(set(result.entities.column("entity_id").to_pylist())),
        "records": result.entities.num_rows,
        "blocking": {
            "per_rule": [{"rule": r, "new_pairs": n} for r, n in result.blocking.per_rule],
            "total": result.blocking.total,
            "possible": result.blocking.possible,
            "compared": result.compared,
            "skipped_tokens": [{"token": t, "pairs": n} for t, n in result.blocking.skipped],
        },
        "parameters": [
            {"comparison": p.comparison, "level": p.level, "m": p.m, "u": p.u, "weight": p.weight}
            for p in result.parameters
        ],
        "weight_histogram": {
            "counts": counts,
            "edges": edges,
        },
        "seconds": result.seconds,
        "checks": [f.as_dict() for f in result.findings],
        "filter_baselines": dict(result.plan.baselines),
        "model": result.model,
    }


def write_outputs(result: LinkResult, out: Path) -> None:
    """links.parquet, review.parquet, entities.parquet, diagnostics.json and two charts."""
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(result.links, out / "links.parquet")
    p = result.scored.column("match_probability")
    band = pc.and_(
        pc.greater_equal(p, result.choice.review_lower), pc.less(p, result.choice.threshold)
    )
    pq.write_table(result.scored.filter(band), out / "review.parquet")
    pq.write_table(result.entities, out / "entities.parquet")
    (out / "diagnostics.json").write_text(json.dumps(diagnostics(result), indent=2, default=str))
    (out / "weights.svg").write_text(
        weight_histogram_svg(
            result.weights, threshold_weight=probability_to_weight(result.choice.threshold)
        )
    )
    (out / "parameters.svg").write_text(parameter_chart_svg(result.parameters))


def _engine(args: argparse.Namespace) -> Engine:
    if args.engine == "spark":
        from pyspark.sql import SparkSession

        session = (
            SparkSession.builder.master(args.spark_master)
            .appName("pprl-hub-linkage")
            .config("spark.ui.enabled", "false")
            .getOrCreate()
        )
        checkpoints = args.out / "spark-checkpoints"
        session.sparkContext.setCheckpointDir(str(checkpoints))
        return SparkEngine(session)
    return DuckDBEngine(
        memory_limit=args.memory_limit, temp_directory=args.temp_dir, threads=os.cpu_count()
    )


def _link(args: argparse.Namespace) -> int:
    datasets = [read_encoded(p) for p in args.inputs]
    if args.schema is not None:
        from connectors.encoding_schema import load_encoding_schema

        expected = load_encoding_schema(args.schema)
        for ds in datasets:
            if ds.schema_hash != expected.hash:
                raise InputMismatchError(
                    f"{ds.name} was not encoded with {args.schema} (schema hash differs)"
                )
    settings = LinkSettings(threshold=args.threshold, seed=args.seed)
    result = link(datasets, settings, _engine(args))
    write_outputs(result, args.out)
    if args.scores is not None:
        pq.write_table(result.scored, args.scores)
    for finding in result.findings:
        if not finding.ok:
            print(f"warning: {finding.message}", file=sys.stderr)
    c = result.choice
    print(
        f"linked {', '.join(ds.name for ds in datasets)}: {result.links.num_rows} links at "
        f"threshold {c.threshold:.3f} (expected precision {c.expected_precision:.3f}, recall "
        f"{c.expected_recall:.3f}; {c.review_pairs} pairs for clerical review), "
        f"{len(set(result.entities.column('entity_id').to_pylist()))} entities; "
        f"outputs in {args.out}"
    )
    return 0


def _blocking(args: argparse.Namespace) -> int:
    report = blocking_report([read_encoded(p) for p in args.inputs], LinkSettings(seed=args.seed))
    width = max(len(rule) for rule, _ in report.per_rule) if report.per_rule else 10
    for rule, pairs in report.per_rule:
        print(f"{rule:<{width}}  {pairs:>14,} new pairs")
    print(
        f"{'total':<{width}}  {report.total:>14,} pairs to compare "
        f"(of {report.possible:,} possible)"
    )
    for token, pairs in report.skipped:
        print(f"not blocked on {token}: it agrees on {pairs:,} pairs (over the per-record budget)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _blocking(args) if args.command == "blocking" else _link(args)
    except LinkageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
