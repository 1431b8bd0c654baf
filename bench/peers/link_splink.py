"""Link two plaintext files with Splink 5 (DuckDB backend) and time it (project ``.venv``).

Usage::

    .venv/bin/python bench/peers/link_splink.py --a plain_a.parquet --b plain_b.parquet \\
        --profile synthetic --out pairs.parquet --workers 2 --seed 1

A Fellegi-Sunter model built as the Splink documentation teaches (``link_only``):

* comparisons from ``splink.comparison_library``: ``NameComparison`` on given and family name
  with term-frequency adjustments, ``DateOfBirthComparison``, ``ExactMatch`` on sex and the
  identifiers (NHS number, phone), ``EmailComparison``, and address with postcode as one
  ``CustomComparison`` (see :func:`location_comparison`: as two comparisons they count the same
  evidence twice and merge households); for FEBRL the comparisons of Splink's own FEBRL4 example
  (Damerau-Levenshtein on the social security id and postcode, exact street number);
* blocking rules for prediction: a union of equi-joins chosen for high recall at a modest
  number of pairs (names; date of birth or postcode with an initial or birth year; identifiers),
  so the pair count grows roughly linearly with the input;
* training: ``estimate_probability_two_random_records_match`` from deterministic rules,
  u by random sampling (``max_pairs=1e7``, seeded by ``--seed``), m by expectation maximisation
  on two blocking rules that between them leave no comparison untrained (``max_pairs=5e6``,
  which only samples on inputs far larger than the bench's);
* ``predict(threshold_match_probability=0.01)``: every pair at or above 0.01 is written with its
  match probability, so the harness can sweep thresholds. Splink's usual decision threshold is
  a match probability of 0.5.

``--workers`` sets DuckDB's thread count. ``seconds.total`` runs from just after the inputs are
read to just after the pairs are written; the stages are ``setup`` (registering the tables),
``train_prior``, ``train_u``, ``train_m`` and ``predict`` (scoring and writing the pairs).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import _linkpeer
import duckdb
import pandas as pd
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import ColumnExpression, DuckDBAPI, Linker, SettingsCreator, block_on
from splink.internals.blocking_rule_creator import BlockingRuleCreator
from splink.internals.comparison_creator import ComparisonCreator

SYSTEM = "splink-plaintext"
DEFAULT_THRESHOLD = 0.5
SCORE_FLOOR = 0.01
U_MAX_PAIRS = 1e7
#: EM samples its blocked pairs down to about this many (only bites on very large inputs).
EM_MAX_PAIRS = 5e6


@dataclass(frozen=True)
class Model:
    """Everything profile-specific about the Splink model: columns, comparisons, rules."""

    columns: tuple[str, ...]
    comparisons: list[ComparisonCreator]
    prediction_rules: list[BlockingRuleCreator | str]
    deterministic_rules: list[BlockingRuleCreator | str]
    deterministic_recall: float
    em_rules: list[BlockingRuleCreator]


def location_comparison() -> ComparisonCreator:
    """Address and UK postcode as one comparison, from the most to the least specific agreement.

    The two columns describe the same place, so as separate comparisons their evidence would be
    counted twice (Fellegi-Sunter assumes comparisons independent given match status), which
    makes members of one household look like the same person. The postcode levels are those of
    ``PostcodeComparison`` (sector, district).
    """
    postcode = ColumnExpression("postcode")
    sector = postcode.regex_extract(cl.PostcodeComparison.SECTOR_REGEX)
    district = postcode.regex_extract(cl.PostcodeComparison.DISTRICT_REGEX)
    return cl.CustomComparison(
        output_column_name="address_postcode",
        comparison_description="address and postcode",
        comparison_levels=[
            cll.And(cll.NullLevel("address"), cll.NullLevel("postcode")),
            cll.And(cll.ExactMatchLevel("address"), cll.ExactMatchLevel("postcode")),
            cll.ExactMatchLevel("address"),
            cll.And(cll.JaroWinklerLevel("address", 0.9), cll.ExactMatchLevel("postcode")),
            cll.ExactMatchLevel("postcode"),
            cll.JaroWinklerLevel("address", 0.9),
            cll.ExactMatchLevel(sector).configure(label_for_charts="Exact match on sector"),
            cll.ExactMatchLevel(district).configure(label_for_charts="Exact match on district"),
            cll.ElseLevel(),
        ],
    )


def synthetic_model() -> Model:
    """The model for the synthetic A&E / police layout (UK identifiers)."""
    return Model(
        columns=(
            "record_id",
            "given_name",
            "family_name",
            "date_of_birth",
            "sex",
            "nhs_number",
            "postcode",
            "address",
            "phone",
            "email",
        ),
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("family_name").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True),
            cl.ExactMatch("sex"),
            cl.ExactMatch("nhs_number"),
            location_comparison(),
            cl.ExactMatch("phone"),
            cl.EmailComparison("email"),
        ],
        prediction_rules=[
            block_on("given_name", "family_name"),
            block_on("date_of_birth", "substr(given_name, 1, 1)"),
            block_on("date_of_birth", "substr(family_name, 1, 1)"),
            block_on("postcode", "substr(given_name, 1, 1)"),
            block_on("postcode", "substr(date_of_birth, 1, 4)"),
            block_on("phone"),
            block_on("nhs_number"),
            block_on("email"),
            block_on("address", "substr(given_name, 1, 1)"),
        ],
        deterministic_rules=[
            block_on("nhs_number"),
            block_on("given_name", "family_name", "date_of_birth"),
            block_on("phone", "date_of_birth"),
        ],
        deterministic_recall=0.7,
        em_rules=[block_on("date_of_birth"), block_on("given_name", "family_name")],
    )


def febrl_model() -> Model:
    """The model for FEBRL4, after Splink's own FEBRL4 example."""
    return Model(
        columns=(
            "record_id",
            "given_name",
            "family_name",
            "date_of_birth",
            "street_number",
            "address_1",
            "address_2",
            "suburb",
            "au_postcode",
            "state",
            "soc_sec_id",
        ),
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("family_name").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.DamerauLevenshteinAtThresholds("au_postcode", [1, 2]).configure(
                term_frequency_adjustments=True
            ),
        ],
        prediction_rules=[
            block_on("given_name", "family_name"),
            "l.given_name = r.family_name and l.family_name = r.given_name",
            block_on("date_of_birth"),
            block_on("soc_sec_id"),
            block_on("state", "address_1"),
            block_on("street_number", "address_1"),
            block_on("au_postcode"),
        ],
        deterministic_rules=[
            block_on("soc_sec_id"),
            block_on("given_name", "family_name", "date_of_birth"),
        ],
        deterministic_recall=0.8,
        em_rules=[block_on("date_of_birth"), block_on("au_postcode")],
    )


MODELS = {"synthetic": synthetic_model, "febrl": febrl_model}


def connect(workers: int) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB using ``workers`` threads, without progress bars."""
    con = duckdb.connect()
    con.execute(f"SET threads = {int(workers)}")
    con.execute("SET enable_progress_bar = false")
    return con


def make_linker(
    a: pd.DataFrame, b: pd.DataFrame, model: Model, con: duckdb.DuckDBPyConnection
) -> Linker:
    """Register both sides in the DuckDB connection and build a ``link_only`` linker."""
    db_api = DuckDBAPI(connection=con)
    cols = list(model.columns)
    side_a = db_api.register(a[cols], dataset_display_name="a")
    side_b = db_api.register(b[cols], dataset_display_name="b")
    settings = SettingsCreator(
        link_type="link_only",
        unique_id_column_name="record_id",
        comparisons=model.comparisons,
        blocking_rules_to_generate_predictions=model.prediction_rules,
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )
    return Linker([side_a, side_b], settings, log_level=logging.WARNING)


def train(linker: Linker, model: Model, seed: int, stages: _linkpeer.Stages) -> None:
    """Estimate lambda, then u by random sampling, then m by EM on each training rule."""
    training = linker.training
    with stages.stage("train_prior"):
        training.estimate_probability_two_random_records_match(
            model.deterministic_rules, recall=model.deterministic_recall
        )
    with stages.stage("train_u"):
        training.estimate_u_using_random_sampling(max_pairs=U_MAX_PAIRS, seed=seed)
    with stages.stage("train_m"):
        for rule in model.em_rules:
            training.estimate_parameters_using_expectation_maximisation(
                rule, max_pairs=EM_MAX_PAIRS
            )


def predict_and_write(linker: Linker, con: duckdb.DuckDBPyConnection, out: Path) -> int:
    """Score the blocked pairs at or above the floor and write them as A/B record id pairs."""
    predictions = linker.inference.predict(threshold_match_probability=SCORE_FLOOR)
    table = con.sql(
        f"""
        SELECT
            CASE WHEN source_dataset_l = 'a' THEN record_id_l ELSE record_id_r END AS record_a,
            CASE WHEN source_dataset_l = 'a' THEN record_id_r ELSE record_id_l END AS record_b,
            CAST(match_probability AS DOUBLE) AS score
        FROM {predictions.physical_name}
        """
    ).to_arrow_table()
    return _linkpeer.write_pairs(
        out, table.column("record_a"), table.column("record_b"), table.column("score")
    )


def main() -> int:
    args = _linkpeer.parse_args(__doc__.splitlines()[0])
    a = _linkpeer.read_plain(args.a).to_pandas()
    b = _linkpeer.read_plain(args.b).to_pandas()
    _linkpeer.log(f"{len(a):,} x {len(b):,} records, profile {args.profile}")
    stages = _linkpeer.Stages()
    model = MODELS[args.profile]()
    with stages.stage("setup"):
        con = connect(args.workers)
        linker = make_linker(a, b, model, con)
    train(linker, model, args.seed, stages)
    with stages.stage("predict"):
        pairs = predict_and_write(linker, con, args.out)
    extra: dict[str, Any] = {"records_a": len(a), "records_b": len(b), "workers": args.workers}
    _linkpeer.print_result(
        SYSTEM,
        DEFAULT_THRESHOLD,
        stages.report(),
        pairs,
        {"splink": version("splink"), "duckdb": version("duckdb")},
        **extra,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
