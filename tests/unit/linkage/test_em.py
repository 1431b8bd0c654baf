"""EM on the plan's comparisons recovers the m and u parameters of a known generating model.

The comparisons are built as a run builds them (:class:`linkage.model.Ladder` levels through
:func:`linkage.model.splink_comparisons`), u comes from :func:`linkage.u_estimate.estimate_u` and
m from Splink's EM, and the parameters are settled by :func:`linkage.run.settle_parameters`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

from linkage.inputs import filter_word_columns
from linkage.model import Agree, Ladder, ModelPlan, Similar, splink_comparisons
from linkage.run import settle_parameters
from linkage.u_estimate import configure_u, estimate_u

TRUE_M = {"tok_a": 0.95, "tok_b": 0.90, "tok_c": 0.80, "tok_d": 0.70, "tok_e": 0.60}
TRUE_U = {"tok_a": 0.01, "tok_b": 0.02, "tok_c": 0.05, "tok_d": 0.10, "tok_e": 0.20}
#: How side B's name filter differs from the person's: identical, 6 of 64 set bits moved
#: (Dice 0.906), 14 moved (0.781), or a random filter unlike any name (else).
NAME_M = (0.6, 0.2, 0.1, 0.1)
NAME_MOVES = (0, 6, 14)
NAME_THRESHOLDS = (0.95, 0.85, 0.7)
NAMES = 50
BLOCKS = 100
PEOPLE = 3000
MATCHED = 1800
EXTRA = 1200
FILTER_BYTES = 16


def _balanced(rng: np.random.Generator, count: int) -> np.ndarray:
    order = np.argsort(rng.random((count, FILTER_BYTES * 8)), axis=1)
    bits = np.zeros((count, FILTER_BYTES * 8), dtype=np.uint8)
    np.put_along_axis(bits, order[:, : FILTER_BYTES * 4], 1, axis=1)
    return bits


def _moved(row: np.ndarray, pairs: int, rng: np.random.Generator) -> np.ndarray:
    out = row.copy()
    if pairs:
        ones, zeros = np.flatnonzero(out == 1), np.flatnonzero(out == 0)
        out[rng.choice(ones, pairs, replace=False)] = 0
        out[rng.choice(zeros, pairs, replace=False)] = 1
    return out


def _datasets(seed: int) -> tuple[pa.Table, pa.Table]:
    """Two datasets of people whose agreement follows TRUE_M / NAME_M for matches.

    Tokens: each person has a value per token from a vocabulary of 1/u values; side B keeps it
    with probability m and otherwise draws another, so non-matching pairs agree with probability
    u. Names: each person has one of NAMES base filters; side A holds it exactly, side B (for
    matched people and extra records alike) holds it identical, degraded or replaced per NAME_M,
    so a non-matching pair reaches Dice level k only by sharing a base name: u_k = m_k / NAMES.
    A block column (BLOCKS values) gives EM a mixture of matches and non-matches.
    """
    rng = np.random.default_rng(seed)
    vocab = {c: round(1 / u) for c, u in TRUE_U.items()}
    truth = {c: rng.integers(0, vocab[c], PEOPLE) for c in TRUE_M}
    bases = _balanced(rng, NAMES)
    name = rng.integers(0, NAMES, PEOPLE)
    block = rng.integers(0, BLOCKS, PEOPLE)
    in_b = rng.permutation(PEOPLE)[:MATCHED]
    a: dict[str, Any] = {"unique_id": [f"a{i}" for i in range(PEOPLE)], "blk": block}
    a |= {c: truth[c] for c in TRUE_M}
    b: dict[str, Any] = {
        "unique_id": [f"b{i}" for i in in_b] + [f"x{i}" for i in range(EXTRA)],
        "blk": np.concatenate([block[in_b], rng.integers(0, BLOCKS, EXTRA)]),
    }
    for c in TRUE_M:
        kept = rng.random(in_b.size) < TRUE_M[c]
        other = (truth[c][in_b] + rng.integers(1, vocab[c], in_b.size)) % vocab[c]
        b[c] = np.concatenate(
            [np.where(kept, truth[c][in_b], other), rng.integers(0, vocab[c], EXTRA)]
        )
    b_names = np.concatenate([name[in_b], rng.integers(0, NAMES, EXTRA)])
    kinds = rng.choice(len(NAME_M), b_names.size, p=NAME_M)
    b_bits = []
    for base, kind in zip(b_names, kinds, strict=True):
        if kind == len(NAME_MOVES):  # else: Dice about 0.5 with every name
            b_bits.append(_balanced(rng, 1)[0])
        else:
            b_bits.append(_moved(bases[base], NAME_MOVES[kind], rng))

    def table(cols: dict[str, Any], bits: np.ndarray) -> pa.Table:
        out: dict[str, pa.Array] = {}
        for column, values in cols.items():
            if column.startswith("tok_"):
                out[column] = pa.array([int(v).to_bytes(8, "big") for v in values], pa.binary(8))
            else:
                out[column] = pa.array(list(values))
        filters = pa.array([row.tobytes() for row in np.packbits(bits, axis=1)], pa.binary(16))
        return pa.table(out | filter_word_columns("bf_name", filters))

    return table(a, bases[name]), table(b, np.stack(b_bits))


PLAN = ModelPlan(
    ladders=(
        *(Ladder(c.removeprefix("tok_"), (Agree(c),)) for c in TRUE_M),
        Ladder("name", tuple(Similar("bf_name", t) for t in NAME_THRESHOLDS)),
    ),
    blocking_tokens=(),
    training_blocks=(),
    filter_words=(("bf_name", 2),),
)


@pytest.mark.parametrize("seed", [7, 8])
def test_em_recovers_known_parameters(seed: int) -> None:
    """After u estimation, EM and settling: m within sampling error of the generating values,
    and u within sampling error of the vocabulary's, for token comparisons and a Dice ladder."""
    left, right = _datasets(seed)
    comparisons = splink_comparisons(PLAN)
    configure_u(comparisons, estimate_u([left, right], PLAN, sample_pairs=1_000_000, seed=seed))
    db = DuckDBAPI()
    inputs = [
        db.register(left, table_name="em_a", dataset_display_name="a"),
        db.register(right, table_name="em_b", dataset_display_name="b"),
    ]
    settings = SettingsCreator(
        link_type="link_only",
        comparisons=list[Any](comparisons),
        blocking_rules_to_generate_predictions=[block_on("blk")],
    )
    linker = Linker(inputs, settings, log_level="ERROR")
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("blk"), estimate_without_term_frequencies=True
    )
    model = settle_parameters(linker.misc.save_model_to_json())
    # (m, u, records on side B that can show the level) for every level but else
    expected = {c.removeprefix("tok_"): [(m, TRUE_U[c], PEOPLE)] for c, m in TRUE_M.items()}
    expected["name"] = [(m, m / NAMES, PEOPLE * m) for m in NAME_M[:-1]]
    for comparison in model["comparisons"]:
        name = comparison["output_column_name"]
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        assert len(levels) == len(expected[name]) + 1
        for k, (m, u, shown) in enumerate(expected[name]):
            # four standard errors of a proportion over the 1,800 true matches, plus 0.01 for EM
            tolerance = 4 * (m * (1 - m) / MATCHED) ** 0.5 + 0.01
            assert levels[k]["m_probability"] == pytest.approx(m, abs=tolerance), (name, k)
            # u is counted over all pairs (matches removed by settling); what remains is the
            # realised frequency of each value on the two sides: relative error about
            # sqrt(1 / records on A + 1 / records on B showing the level); four of those
            relative = 4 * (1 / PEOPLE + 1 / shown) ** 0.5
            assert levels[k]["u_probability"] == pytest.approx(u, rel=relative), (name, k)
