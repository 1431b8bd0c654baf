"""``link()``: block -> compare -> train -> score -> choose threshold -> cluster, on one engine.

The engine (DuckDB in-process by default) only runs SQL; everything it needs is derived here from
the inputs' encoding schema. Outputs are Arrow tables and plain data (no I/O of its own).
Records are named by the hex of their record pseudonym; datasets by their agency id.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from splink import Linker, SettingsCreator, block_on
from splink.blocking_analysis import count_comparisons_from_blocking_rules

from linkage.charts import LevelParameters
from linkage.clustering import cluster
from linkage.engines import DuckDBEngine, Engine
from linkage.errors import SettingsError
from linkage.inputs import EncodedDataset, check_linkable
from linkage.lsh import band_keys, choose_bands, filter_bytes
from linkage.model import ModelPlan, plan_from_schema, splink_comparisons
from linkage.threshold import ThresholdChoice, choose_threshold, expected_metrics

LINK_SCHEMA = pa.schema(
    [
        pa.field("dataset_l", pa.string(), nullable=False),
        pa.field("record_l", pa.string(), nullable=False),
        pa.field("dataset_r", pa.string(), nullable=False),
        pa.field("record_r", pa.string(), nullable=False),
        pa.field("match_weight", pa.float64(), nullable=False),
        pa.field("match_probability", pa.float64(), nullable=False),
    ]
)
#: Pairs scored below this probability are dropped before the threshold is chosen.
SCORE_FLOOR = 0.001


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """Everything a run may be told; the defaults are the documented ones."""

    threshold: float | None = None
    seed: int = 1
    u_max_pairs: float = 2e6
    name_thresholds: tuple[float, ...] = (0.95, 0.85, 0.7)
    address_thresholds: tuple[float, ...] = (0.9, 0.75)
    lsh_similarity: float | None = 0.9
    lsh_recall: float = 0.99
    bridge_threshold: float = 0.99

    def __post_init__(self) -> None:
        if self.threshold is not None and not 0.0 < self.threshold <= 1.0:
            raise SettingsError("threshold must be in (0, 1]")
        if self.u_max_pairs < 1_000:
            raise SettingsError("u_max_pairs must be at least 1,000")


@dataclass(frozen=True, slots=True)
class BlockingReport:
    """What blocking will cost: new candidate pairs per rule, their total, and all pairs."""

    per_rule: tuple[tuple[str, int], ...]
    total: int
    possible: int


@dataclass(frozen=True, slots=True)
class LinkResult:
    """Links, entities and what the model says about them."""

    links: pa.Table
    entities: pa.Table
    choice: ThresholdChoice
    #: Every compared pair scored at or above :data:`SCORE_FLOOR` (links are those at or above
    #: the threshold; the clerical-review band lies between ``choice.review_lower`` and it).
    scored: pa.Table
    parameters: list[LevelParameters]
    weights: np.ndarray[Any, np.dtype[np.float64]]
    blocking: BlockingReport
    compared: int
    model: dict[str, Any] = field(repr=False)
    plan: ModelPlan = field(repr=False)
    #: Wall seconds per stage (prepare, train, predict, cluster, report).
    seconds: dict[str, float] = field(default_factory=dict)


def _lsh_columns(
    ds: EncodedDataset, columns: Sequence[str], bands: int, bits: int, seed: int
) -> dict[str, pa.Array]:
    """Band keys over the concatenation of the name filters (null if any of them is null)."""
    matrices, valids = zip(*(filter_bytes(ds.table.column(c)) for c in columns), strict=True)
    joined = np.ascontiguousarray(np.hstack(matrices))
    valid = np.logical_and.reduce(valids)
    n, width = joined.shape
    combined = pa.Array.from_buffers(
        pa.binary(width),
        n,
        [pa.py_buffer(np.packbits(valid, bitorder="little").tobytes()), pa.py_buffer(joined)],
    )
    keys = band_keys(combined, bands, bits, seed)
    return {f"lsh_names_{i}": k for i, k in enumerate(keys)}


def _input_table(ds: EncodedDataset, lsh: dict[str, pa.Array]) -> pa.Table:
    """Splink's input: ``unique_id`` (hex of the record pseudonym), tokens, filters, band keys."""
    pseudonyms = ds.table.column("record_pseudonym").to_pylist()
    cols: dict[str, pa.Array] = {"unique_id": pa.array([v.hex() for v in pseudonyms])}
    for name in ds.table.column_names:
        if name.startswith(("tok_", "bf_")):
            cols[name] = ds.table.column(name)
    cols.update(lsh)
    return pa.table(cols)


def _parameters(model: dict[str, Any]) -> list[LevelParameters]:
    out: list[LevelParameters] = []
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            out.append(
                LevelParameters(
                    comparison["output_column_name"],
                    str(level.get("label_for_charts", level["sql_condition"])),
                    level.get("m_probability"),
                    level.get("u_probability"),
                )
            )
    return out


@dataclass(frozen=True, slots=True)
class _Prepared:
    """Inputs registered on an engine, with the plan and blocking rules."""

    plan: ModelPlan
    tables: list[pa.Table]
    inputs: list[Any]
    rules: list[Any]


def _prepare(
    datasets: Sequence[EncodedDataset], settings: LinkSettings, engine: Engine
) -> _Prepared:
    check_linkable(datasets)
    definition = datasets[0].metadata["schema"]["definition"]
    plan = plan_from_schema(
        definition,
        name_thresholds=settings.name_thresholds,
        address_thresholds=settings.address_thresholds,
    )
    name_filters = list(plan.name_filter_columns)
    lsh_rules: list[str] = []
    tables = []
    for ds in datasets:
        lsh: dict[str, pa.Array] = {}
        if settings.lsh_similarity is not None and name_filters:
            bands, bits = choose_bands(settings.lsh_similarity, settings.lsh_recall)
            lsh = _lsh_columns(ds, name_filters, bands, bits, settings.seed)
            lsh_rules = list(lsh)
        tables.append(_input_table(ds, lsh))
    inputs = engine.register(tables, [ds.name for ds in datasets])
    rules: list[Any] = [block_on(c) for c in (*plan.blocking_tokens, *lsh_rules)]
    return _Prepared(plan, tables, inputs, rules)


def blocking_report(
    datasets: Sequence[EncodedDataset],
    settings: LinkSettings | None = None,
    engine: Engine | None = None,
) -> BlockingReport:
    """The cost of a run before paying it: candidate pairs per blocking rule and in total."""
    engine = engine or DuckDBEngine()
    try:
        prepared = _prepare(datasets, settings or LinkSettings(), engine)
        return _blocking_report(prepared.inputs, prepared.rules)
    finally:
        engine.close()


def link(
    datasets: Sequence[EncodedDataset],
    settings: LinkSettings | None = None,
    engine: Engine | None = None,
) -> LinkResult:
    """Link two or more encoded datasets on ``engine`` (DuckDB in-process by default)."""
    settings = settings or LinkSettings()
    engine = engine or DuckDBEngine()
    try:
        return _link(datasets, settings, engine)
    finally:
        engine.close()


def _link(datasets: Sequence[EncodedDataset], settings: LinkSettings, engine: Engine) -> LinkResult:
    clock = _Clock()
    prepared = _prepare(datasets, settings, engine)
    clock.lap("prepare")
    plan, tables, inputs, rules = prepared.plan, prepared.tables, prepared.inputs, prepared.rules
    creator = SettingsCreator(
        link_type="link_only",
        unique_id_column_name="unique_id",
        comparisons=list[Any](splink_comparisons(plan)),
        blocking_rules_to_generate_predictions=rules,
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )
    linker = Linker(inputs, creator, log_level="WARNING")
    training: list[Any] = [block_on(c) for c in plan.training_blocks]
    linker.training.estimate_probability_two_random_records_match(training, recall=0.8)
    linker.training.estimate_u_using_random_sampling(
        max_pairs=settings.u_max_pairs, seed=settings.seed
    )
    for rule in training:
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    clock.lap("train")
    predictions = linker.inference.predict()
    compared, scored = engine.scored_pairs(predictions, SCORE_FLOOR)
    clock.lap("predict")
    probabilities = scored.column("match_probability").to_numpy()
    choice = choose_threshold(probabilities)
    threshold = settings.threshold if settings.threshold is not None else choice.threshold
    scored = scored.cast(LINK_SCHEMA).sort_by([("match_probability", "descending")])
    links = scored.filter(pc.greater_equal(scored.column("match_probability"), threshold))
    records = [
        (ds.name, str(r))
        for t, ds in zip(tables, datasets, strict=True)
        for r in t.column("unique_id").to_pylist()
    ]
    edges = [
        ((a, b), (c, d), float(p))
        for a, b, c, d, p in zip(
            *(
                links.column(n).to_pylist()
                for n in ("dataset_l", "record_l", "dataset_r", "record_r", "match_probability")
            ),
            strict=True,
        )
    ]
    entities = cluster(
        records,
        edges,
        threshold=threshold,
        bridge_threshold=max(threshold, settings.bridge_threshold),
    )
    clock.lap("cluster")
    model = linker.misc.save_model_to_json()
    blocking = _blocking_report(inputs, rules)
    clock.lap("report")
    return LinkResult(
        links=links,
        entities=entities,
        scored=scored,
        choice=choice
        if settings.threshold is None
        else _with_threshold(choice, threshold, probabilities),
        parameters=_parameters(model),
        weights=scored.column("match_weight").to_numpy(),
        blocking=blocking,
        compared=compared,
        model=model,
        plan=plan,
        seconds=clock.laps,
    )


class _Clock:
    """Wall seconds per named stage."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 3)
        self._last = now


def _with_threshold(
    choice: ThresholdChoice, threshold: float, p: np.ndarray[Any, Any]
) -> ThresholdChoice:
    """The choice's expectations recomputed for a threshold the caller fixed."""
    precision, recall, f1 = expected_metrics(p, threshold)
    return replace(
        choice,
        threshold=threshold,
        expected_precision=precision,
        expected_recall=recall,
        expected_f1=f1,
    )


def _blocking_report(inputs: Sequence[Any], rules: Sequence[Any]) -> BlockingReport:
    """Exact candidate pairs per rule (new pairs only) and in total, by Splink's own counter."""
    records = count_comparisons_from_blocking_rules(
        list(inputs),
        blocking_rules=list(rules),
        link_type="link_only",
        unique_id_column_name="unique_id",
        record_sample_proportion=1.0,
    )
    per_rule = tuple(
        (str(r["blocking_rule"]), int(r["marginal_comparison_count"])) for r in records
    )
    total = int(records[-1]["cumulative_comparison_count"]) if records else 0
    possible = int(records[-1]["total_possible_comparison_count"]) if records else 0
    return BlockingReport(per_rule, total, possible)


def probability_to_weight(p: float) -> float:
    """Match weight (log2 Bayes factor) of a probability, ignoring the prior."""
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log2(p / (1 - p))
