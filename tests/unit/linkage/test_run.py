"""The run's pure pieces: settling trained parameters, and settings validation (linkage.run)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage.errors import SettingsError
from linkage.run import M_FLOOR, U_FLOOR, LinkSettings, settle_parameters


def level(m: float | None, u: float | None, **extra: Any) -> dict[str, Any]:
    """A non-null level as Splink saves it (a missing probability is absent or None)."""
    out: dict[str, Any] = {"sql_condition": "x", **extra}
    if m is not None:
        out["m_probability"] = m
    if u is not None:
        out["u_probability"] = u
    return out


def model(lam: float | None, *comparisons: list[dict[str, Any]]) -> dict[str, Any]:
    """A saved model: each comparison a null level then the given levels."""
    return {
        "probability_two_random_records_match": lam,
        "comparisons": [
            {
                "output_column_name": f"c{i}",
                "comparison_levels": [{"sql_condition": "n IS NULL", "is_null_level": True}, *lv],
            }
            for i, lv in enumerate(comparisons)
        ],
    }


def probabilities(settled: dict[str, Any], which: str, index: int = 0) -> list[float]:
    """The non-null levels' m or u of comparison ``index``."""
    levels = settled["comparisons"][index]["comparison_levels"]
    return [lv[f"{which}_probability"] for lv in levels if not lv.get("is_null_level")]


def test_u_is_corrected_for_the_matches_among_all_pairs() -> None:
    """u = (u_observed - lambda m) / (1 - lambda): worked by hand for lambda = 0.01."""
    settled = settle_parameters(model(0.01, [level(0.9, 0.0095), level(0.1, 0.9905)]))
    assert probabilities(settled, "m") == pytest.approx([0.9, 0.1])
    # (0.0095 - 0.009) / 0.99 and (0.9905 - 0.001) / 0.99
    assert probabilities(settled, "u") == pytest.approx([0.0005 / 0.99, 0.9895 / 0.99])
    assert sum(probabilities(settled, "u")) == pytest.approx(1.0)


def test_floors_then_renormalisation() -> None:
    """An m of zero rises to M_FLOOR; a u the correction drives below zero rises to U_FLOOR; each
    comparison's m and u then sum to one."""
    settled = settle_parameters(model(0.01, [level(1.0, 0.005), level(0.0, 0.995)]))
    m = probabilities(settled, "m")
    assert m == pytest.approx([1.0 / (1.0 + M_FLOOR), M_FLOOR / (1.0 + M_FLOOR)])
    u = probabilities(settled, "u")
    # first level: 0.005 - 0.01 * m[0] < 0 -> floor; the other takes the rest
    raw = (0.995 - 0.01 * m[1]) / 0.99
    assert u == pytest.approx([U_FLOOR / (U_FLOOR + raw), raw / (U_FLOOR + raw)])
    assert min(u) > 0 and sum(u) == pytest.approx(1.0) and sum(m) == pytest.approx(1.0)


def test_a_level_no_training_pair_reached_gets_the_m_floor() -> None:
    """A None m (EM saw no such pair) is rare among matches, not impossible: it gets M_FLOOR."""
    settled = settle_parameters(
        model(0.0, [level(0.8, 0.01), level(None, 0.09, m_probability=None), level(0.2, 0.9)])
    )
    total = 1.0 + M_FLOOR
    assert probabilities(settled, "m") == pytest.approx([0.8 / total, M_FLOOR / total, 0.2 / total])
    assert probabilities(settled, "u") == pytest.approx([0.01, 0.09, 0.9])  # lambda 0: unchanged


def test_untrained_or_unestimated_comparisons_are_left_alone() -> None:
    """A comparison with no m at all, or a level without u, is copied unchanged; the input model
    is not modified."""
    original = model(
        0.01,
        [level(None, 0.1), level(None, 0.9)],
        [level(0.9, None), level(0.1, 0.5)],
        [level(0.9, 0.05), level(0.1, 0.95)],
    )
    before = copy.deepcopy(original)
    settled = settle_parameters(original)
    assert original == before
    assert settled["comparisons"][0] == original["comparisons"][0]
    assert settled["comparisons"][1] == original["comparisons"][1]
    assert settled["comparisons"][2] != original["comparisons"][2]


@pytest.mark.parametrize("lam", [None, 0.0, 1.0])
def test_no_correction_without_a_usable_lambda(lam: float | None) -> None:
    """With lambda missing, 0 or 1, u is only floored and renormalised."""
    settled = settle_parameters(model(lam, [level(0.5, 0.0), level(0.5, 2.0)]))
    assert probabilities(settled, "u") == pytest.approx(
        [U_FLOOR / (2 + U_FLOOR), 2 / (2 + U_FLOOR)]
    )


@given(
    st.lists(st.tuples(st.floats(0, 1), st.floats(1e-6, 1)), min_size=2, max_size=6),
    st.floats(0, 0.5),
)
@settings(max_examples=100, deadline=None)
def test_settled_parameters_are_distributions_above_the_floors(
    raw: list[tuple[float, float]], lam: float
) -> None:
    """For any trained levels, settled m and u are probability distributions (sum one) whose
    entries are positive, and m keeps the order of the trained m."""
    total_u = sum(u for _, u in raw)
    levels = [level(m, u / total_u) for m, u in raw]
    settled = settle_parameters(model(lam, levels))
    m, u = np.array(probabilities(settled, "m")), np.array(probabilities(settled, "u"))
    assert m.sum() == pytest.approx(1.0) and u.sum() == pytest.approx(1.0)
    assert (m > 0).all() and (u > 0).all()
    trained = [max(x, M_FLOOR) for x, _ in raw]
    assert np.argsort(m, kind="stable").tolist() == np.argsort(trained, kind="stable").tolist()


def test_link_settings_validation() -> None:
    """The defaults are valid (threshold chosen by the run); a threshold outside (0, 1] or a u
    sample under 1,000 pairs is refused."""
    assert LinkSettings().threshold is None
    assert LinkSettings(threshold=1.0, u_sample_pairs=1_000).threshold == 1.0
    bads: list[dict[str, Any]] = [
        {"threshold": 0.0},
        {"threshold": 1.5},
        {"u_sample_pairs": 999},
        {"lsh_similarity": 0.0},
        {"lsh_budget": 0.0},
        {"block_budget": -1.0},
        {"lsh_max_bucket": 1},
        {"field_thresholds": ()},
        {"address_thresholds": (0.5, 1.5)},
        {"bridge_threshold": 0.0},
    ]
    for bad in bads:
        with pytest.raises(SettingsError):
            LinkSettings(**bad)  # type: ignore[arg-type]
