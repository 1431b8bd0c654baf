"""``link()``: block -> compare -> train -> score -> choose threshold -> cluster, on one engine.

The engine (DuckDB in-process by default) only runs SQL; everything it needs is derived here from
the inputs' encoding schema. Outputs are Arrow tables and plain data (no I/O of its own).
Records are named by the hex of their record pseudonym; datasets by their agency id.
"""

from __future__ import annotations

import copy
import itertools
import logging
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
from linkage.checks import Finding, check_links, check_parameters
from linkage.clustering import cluster_table
from linkage.engines import DuckDBEngine, Engine
from linkage.errors import SettingsError
from linkage.inputs import EncodedDataset, check_linkable, filter_word_columns
from linkage.lsh import band_key_lists, band_keys, choose_bands_within_budget, filter_bytes
from linkage.model import (
    DEFAULT_ADDRESS_THRESHOLDS,
    DEFAULT_FIELD_THRESHOLDS,
    ModelPlan,
    TrainingBlock,
    flipped_similarity,
    plan_from_schema,
    splink_comparisons,
)
from linkage.threshold import ThresholdChoice, choose_threshold, expected_metrics
from linkage.u_estimate import (
    baselines_of,
    comparable_pairs,
    concatenated_similarity,
    configure_u,
    estimate_u,
    join_size,
    random_pair_dice,
)

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
log = logging.getLogger(__name__)

#: The list of LSH band keys of each record (one exploded blocking rule).
LSH_COLUMN = "lsh_names"
#: Pairs scored below this probability are dropped before the threshold is chosen.
SCORE_FLOOR = 0.001


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """Everything a run may be told; the defaults are the documented ones."""

    threshold: float | None = None
    seed: int = 1
    u_sample_pairs: int = 1_000_000
    field_thresholds: tuple[float, ...] = DEFAULT_FIELD_THRESHOLDS
    address_thresholds: tuple[float, ...] = DEFAULT_ADDRESS_THRESHOLDS
    #: LSH bands aim at pairs whose concatenated name filters agree on this share of bits
    #: (None: no LSH); the scheme with the best recall there whose expected unrelated candidates
    #: stay within ``lsh_budget`` per record is used.
    lsh_similarity: float | None = 0.9
    lsh_budget: float = 0.5
    #: band keys shared by more records than this (in one dataset) are not blocked on
    lsh_max_bucket: int | None = 50
    #: A token is a blocking rule only if it agrees on at most this many pairs per record: a
    #: token of few values (date of birth and sex) grows with the square of the input (21.6
    #: million of the 22.5 million pairs at a million records per side, with a budget of 20, in
    #: the diagnostics of ``python bench/linkage.py --datasets synthetic-1m --systems ours``)
    #: while the others grow with it (under 0.2 pairs per record each).
    block_budget: float = 1.0
    bridge_threshold: float = 0.99

    def __post_init__(self) -> None:
        if self.threshold is not None and not 0.0 < self.threshold <= 1.0:
            raise SettingsError("threshold must be in (0, 1]")
        if self.u_sample_pairs < 1_000:
            raise SettingsError("u_sample_pairs must be at least 1,000")
        if self.lsh_similarity is not None and not 0.0 < self.lsh_similarity <= 1.0:
            raise SettingsError("lsh_similarity must be in (0, 1]")
        if self.lsh_budget <= 0 or self.block_budget <= 0:
            raise SettingsError("lsh_budget and block_budget must be positive")
        if self.lsh_max_bucket is not None and self.lsh_max_bucket < 2:
            raise SettingsError("lsh_max_bucket must be at least 2")
        for name in ("field_thresholds", "address_thresholds"):
            values = getattr(self, name)
            if not values or any(not 0.0 <= t <= 1.0 for t in values):
                raise SettingsError(f"{name} must be a non-empty list of values in [0, 1]")
        if not 0.0 < self.bridge_threshold <= 1.0:
            raise SettingsError("bridge_threshold must be in (0, 1]")


@dataclass(frozen=True, slots=True)
class BlockingReport:
    """What blocking will cost: new candidate pairs per rule, their total, and all pairs."""

    per_rule: tuple[tuple[str, int], ...]
    total: int
    possible: int
    #: tokens left out of blocking, with the pairs they would have added
    skipped: tuple[tuple[str, int], ...] = ()


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
    #: Automatic checks of the trained model and its links (see linkage.checks).
    findings: list[Finding] = field(default_factory=list)


def _lsh_column(
    ds: EncodedDataset, columns: Sequence[str], scheme: tuple[int, int], settings: LinkSettings
) -> pa.ListArray:
    """Band keys over the concatenation of the name filters, as one list per record (null if
    any of the filters is null)."""
    matrices, valids = zip(*(filter_bytes(ds.table.column(c)) for c in columns), strict=True)
    joined = np.ascontiguousarray(np.hstack(matrices))
    valid = np.logical_and.reduce(valids)
    n, width = joined.shape
    combined = pa.Array.from_buffers(
        pa.binary(width),
        n,
        [pa.py_buffer(np.packbits(valid, bitorder="little").tobytes()), pa.py_buffer(joined)],
    )
    bands, bits = scheme
    keys = band_keys(combined, bands, bits, settings.seed)
    return band_key_lists(keys, settings.lsh_max_bucket)


def _input_table(ds: EncodedDataset) -> pa.Table:
    """Splink's input: ``unique_id`` (hex of the record pseudonym), tokens, filters as words and
    popcounts (:func:`linkage.inputs.filter_word_columns`), band keys."""
    pseudonyms = ds.table.column("record_pseudonym").to_pylist()
    cols: dict[str, pa.Array] = {"unique_id": pa.array([v.hex() for v in pseudonyms])}
    for name in ds.table.column_names:
        if name.startswith("tok_"):
            cols[name] = ds.table.column(name)
        elif name.startswith("bf_"):
            cols.update(filter_word_columns(name, ds.table.column(name)))
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
    #: tokens not blocked on because they agree on more pairs than the budget allows
    skipped: tuple[tuple[str, int], ...] = ()


def _prepare(
    datasets: Sequence[EncodedDataset], settings: LinkSettings, engine: Engine
) -> _Prepared:
    check_linkable(datasets)
    definition = datasets[0].metadata["schema"]["definition"]

    def planned(baselines: dict[str, float]) -> ModelPlan:
        return plan_from_schema(
            definition,
            field_thresholds=settings.field_thresholds,
            address_thresholds=settings.address_thresholds,
            baselines=baselines,
        )

    draft = planned({})
    tables = [_input_table(ds) for ds in datasets]
    random_dice = random_pair_dice(tables, draft, seed=settings.seed)
    plan = planned(baselines_of(random_dice))
    # a comparison no pair can make (a field only one agency records) adds nothing
    plan = replace(plan, ladders=tuple(x for x in plan.ladders if comparable_pairs(tables, x)))
    name_filters = [c for c in plan.name_filter_columns if c in random_dice]
    scheme = None
    if settings.lsh_similarity is not None and name_filters:
        records = sum(t.num_rows for t in tables)
        pairs = sum(a.num_rows * b.num_rows for a, b in itertools.combinations(tables, 2))
        scheme = choose_bands_within_budget(
            flipped_similarity(settings.lsh_similarity, plan.flip_probability),
            concatenated_similarity(random_dice, name_filters, plan),
            settings.lsh_budget * records / max(pairs, 1),
        )
    if scheme is not None:
        for i, ds in enumerate(datasets):
            lists = _lsh_column(ds, name_filters, scheme, settings)
            tables[i] = tables[i].append_column(LSH_COLUMN, lists)
    inputs = engine.register(tables, [ds.name for ds in datasets])
    budget = settings.block_budget * sum(t.num_rows for t in tables)
    tokens: list[tuple[str, int]] = []
    skipped: list[tuple[str, int]] = []
    for token in plan.blocking_tokens:
        size = sum(join_size(a, b, token) for a, b in itertools.combinations(tables, 2))
        (tokens if size <= budget else skipped).append((token, size))
    rules: list[Any] = [block_on(c) for c, _ in tokens]
    if scheme is not None:
        # first: a rule's SQL excludes the pairs of every rule before it, and for an exploded
        # rule that exclusion is evaluated on every (band key, record) row
        rules.insert(0, block_on(LSH_COLUMN, arrays_to_explode=[LSH_COLUMN]))
    return _Prepared(plan, tables, inputs, rules, tuple(skipped))


def blocking_report(
    datasets: Sequence[EncodedDataset],
    settings: LinkSettings | None = None,
    engine: Engine | None = None,
) -> BlockingReport:
    """The cost of a run before paying it: candidate pairs per blocking rule and in total."""
    engine = engine or DuckDBEngine()
    try:
        prepared = _prepare(datasets, settings or LinkSettings(), engine)
        return replace(_blocking_report(prepared.inputs, prepared.rules), skipped=prepared.skipped)
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
    comparisons = splink_comparisons(plan)
    configure_u(
        comparisons,
        estimate_u(tables, plan, sample_pairs=settings.u_sample_pairs, seed=settings.seed),
    )
    clock.lap("u")
    creator = SettingsCreator(
        link_type="link_only",
        unique_id_column_name="unique_id",
        comparisons=list[Any](comparisons),
        blocking_rules_to_generate_predictions=rules,
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )
    # validate_settings parses every level's SQL with sqlglot (seconds for long Dice sums); our
    # SQL is generated and tested, so the check is skipped
    linker = Linker(inputs, creator, log_level="WARNING", validate_settings=False)
    training = [b.sql() for b in _training_blocks(plan, tables)]
    linker.training.estimate_probability_two_random_records_match(
        [block_on(b.token) for b in plan.training_blocks[:1]], recall=0.8
    )
    for rule in training:
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    trained = linker.misc.save_model_to_json()
    settled = settle_parameters(trained)
    linker = Linker(inputs, settled, log_level="WARNING", validate_settings=False)
    clock.lap("train")
    predictions = linker.inference.predict()
    per_key, scored = engine.scored_pairs(predictions, SCORE_FLOOR)
    compared = sum(per_key.values())
    # the engine's copies of the pairs are no longer needed: free them before clustering
    linker.table_management.delete_tables_created_by_splink_from_db()  # type: ignore[no-untyped-call]
    clock.lap("predict")
    probabilities = scored.column("match_probability").to_numpy()
    choice = choose_threshold(probabilities)
    threshold = settings.threshold if settings.threshold is not None else choice.threshold
    scored = scored.cast(LINK_SCHEMA).sort_by([("match_probability", "descending")])
    links = scored.filter(pc.greater_equal(scored.column("match_probability"), threshold))
    records = pa.concat_tables(
        pa.table(
            {
                "dataset": pa.array([ds.name] * t.num_rows, pa.string()),
                "record": t.column("unique_id"),
            }
        )
        for t, ds in zip(tables, datasets, strict=True)
    )
    entities = cluster_table(
        records,
        links,
        threshold=threshold,
        bridge_threshold=max(threshold, settings.bridge_threshold),
    )
    clock.lap("cluster")
    findings = check_parameters(trained) + check_links(
        links, tables, [ds.name for ds in datasets], plan
    )
    for finding in findings:
        if not finding.ok:
            log.warning("linkage check failed: %s", finding.message)
    model = linker.misc.save_model_to_json()
    blocking = BlockingReport(
        per_rule=tuple(
            (_rule_sql(rule, engine.name), per_key.get(i, 0)) for i, rule in enumerate(rules)
        ),
        total=compared,
        possible=sum(a.num_rows * b.num_rows for a, b in itertools.combinations(tables, 2)),
        skipped=prepared.skipped,
    )
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
        findings=findings,
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


#: No level is impossible for a true match: EM can drive a level's m to zero on a training block
#: that happens to contain no such pair, which would make one disagreement an absolute veto.
M_FLOOR = 1e-3
#: Nor certain for a non-match (a shared NHS number in error is rare, not impossible).
U_FLOOR = 1e-7


def settle_parameters(model: dict[str, Any]) -> dict[str, Any]:
    """The trained model with u corrected for the matches in the pairs it was counted on, and
    floors on m and u; each comparison's m and u renormalised.

    u is counted over all pairs, which include the true matches: observed u = (1 - lambda) u +
    lambda m. For levels where non-matches almost never agree (a unique identifier, an identical
    date of birth and name), the matches are most of the count, so the observed u is far too
    high; solving for u removes them.
    """
    settled = copy.deepcopy(model)
    lam = float(settled.get("probability_two_random_records_match") or 0.0)
    for comparison in settled["comparisons"]:
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        ms = [lv.get("m_probability") for lv in levels]
        us = [lv.get("u_probability") for lv in levels]
        if all(m is None for m in ms) or any(u is None for u in us):
            continue
        # a level no training pair fell into is rare among matches, not impossible
        m = np.maximum(np.asarray([M_FLOOR if x is None else x for x in ms]), M_FLOOR)
        m /= m.sum()
        u = np.asarray(us, dtype=np.float64)
        if 0.0 < lam < 1.0:
            u = (u - lam * m) / (1.0 - lam)
        u = np.maximum(u, U_FLOOR)
        u /= u.sum()
        for level, m_k, u_k in zip(levels, m, u, strict=True):
            level["m_probability"] = float(m_k)
            level["u_probability"] = float(u_k)
    return settled


def _training_blocks(plan: ModelPlan, tables: Sequence[pa.Table]) -> list[TrainingBlock]:
    """The plan's first training block, and of its other candidates the one with most agreeing
    pairs (a unique identifier one agency rarely records would train on a handful of pairs)."""
    if not plan.training_blocks:
        raise SettingsError("the encoding schema has no token to train the model on")
    first, *candidates = plan.training_blocks

    def agreeing(block: TrainingBlock) -> int:
        return sum(join_size(a, b, block.token) for a, b in itertools.combinations(tables, 2))

    # the second block must train every comparison the first leaves out
    complementary = [c for c in candidates if not set(c.skips) & set(first.skips)]
    if not complementary:
        log.warning("no training block trains every comparison the first one leaves out")
        complementary = candidates
    if not complementary:
        return [first]
    return [first, max(complementary, key=agreeing)]


def _rule_sql(rule: Any, dialect: str) -> str:
    return str(rule.get_blocking_rule(dialect).blocking_rule_sql)


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
