"""EM on our token comparisons recovers the m and u parameters of a known generating model."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

from linkage.comparisons import token_comparison

TRUE_M = {"tok_a": 0.95, "tok_b": 0.90, "tok_c": 0.80, "tok_d": 0.70, "tok_e": 0.60}
BLOCKS = 100
TRUE_U = {"tok_a": 0.01, "tok_b": 0.02, "tok_c": 0.05, "tok_d": 0.10, "tok_e": 0.20}


def _datasets(seed: int) -> tuple[pa.Table, pa.Table]:
    """Two datasets of people whose token agreement follows TRUE_M for matches, TRUE_U otherwise.

    Each person has a value per token from a vocabulary of 1/u values; side B keeps it with
    probability m and otherwise draws another value. Non-matching pairs then agree with
    probability u. A block column (BLOCKS values) gives EM a mixture of matches and non-matches.
    """
    rng = np.random.default_rng(seed)
    people = 3000
    vocab = {c: round(1 / u) for c, u in TRUE_U.items()}
    truth = {c: rng.integers(0, vocab[c], people) for c in TRUE_M}
    block = rng.integers(0, BLOCKS, people)
    in_b = np.concatenate([rng.permutation(people)[: int(people * 0.6)]])
    extra = 1200
    a = {"unique_id": [f"a{i}" for i in range(people)], "blk": block}
    a |= {c: truth[c] for c in TRUE_M}
    b_ids = [f"b{i}" for i in in_b] + [f"x{i}" for i in range(extra)]
    b = {"unique_id": b_ids, "blk": np.concatenate([block[in_b], rng.integers(0, BLOCKS, extra)])}
    for c in TRUE_M:
        kept = rng.random(in_b.size) < TRUE_M[c]
        other = (truth[c][in_b] + rng.integers(1, vocab[c], in_b.size)) % vocab[c]
        b[c] = np.concatenate(
            [np.where(kept, truth[c][in_b], other), rng.integers(0, vocab[c], extra)]
        )

    def table(cols: dict[str, object]) -> pa.Table:
        out = {}
        for name, values in cols.items():
            if name.startswith("tok_"):
                out[name] = pa.array([int(v).to_bytes(4, "big") for v in values], pa.binary())
            else:
                out[name] = pa.array(list(values))  # type: ignore[call-overload]
        return pa.table(out)

    return table(a), table(b)


@pytest.mark.parametrize("seed", [7, 8])
def test_em_recovers_known_parameters(seed: int) -> None:
    """m within sampling error and u within 30% of the generating values, after u sampling + EM."""
    left, right = _datasets(seed)
    db = DuckDBAPI()
    inputs = [
        db.register(left, table_name="em_a", dataset_display_name="a"),
        db.register(right, table_name="em_b", dataset_display_name="b"),
    ]
    settings = SettingsCreator(
        link_type="link_only",
        comparisons=[token_comparison(c) for c in TRUE_M],
        blocking_rules_to_generate_predictions=[block_on("blk")],
    )
    linker = Linker(inputs, settings, log_level="ERROR")
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=seed)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("blk"), estimate_without_term_frequencies=True
    )
    model = linker.misc.save_model_to_json()
    for comparison in model["comparisons"]:
        column = comparison["output_column_name"]
        agree = next(
            lv
            for lv in comparison["comparison_levels"]
            if "=" in lv["sql_condition"] and not lv.get("is_null_level")
        )
        # four standard errors of a proportion over the 1,800 true matches, plus 0.01 for EM
        m = TRUE_M[column]
        tolerance = 4 * (m * (1 - m) / 1800) ** 0.5 + 0.01
        assert agree["m_probability"] == pytest.approx(m, abs=tolerance), column
        assert agree["u_probability"] == pytest.approx(TRUE_U[column], rel=0.3), column
