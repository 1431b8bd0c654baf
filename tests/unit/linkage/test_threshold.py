"""Choosing a threshold from the model's own probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from linkage.errors import SettingsError
from linkage.threshold import choose_threshold, expected_metrics


def _realised_f1(p: np.ndarray, labels: np.ndarray, t: float) -> float:
    pred = p >= t
    tp = int((pred & labels).sum())
    fp = int((pred & ~labels).sum())
    fn = int((~pred & labels).sum())
    return 2 * tp / (2 * tp + fp + fn)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_chosen_threshold_is_near_the_best_realised_f1(seed: int) -> None:
    """On calibrated scores, the label-free choice gets within 0.01 of the best realised F1."""
    rng = np.random.default_rng(seed)
    # many clear non-matches, clear matches, and a grey zone, like a real weight distribution
    p = np.concatenate(
        [rng.beta(0.3, 12, 20_000), rng.beta(12, 0.3, 2_000), rng.uniform(0, 1, 600)]
    )
    labels = rng.random(p.size) < p  # calibrated by construction
    choice = choose_threshold(p)
    best = max(_realised_f1(p, labels, t) for t in np.linspace(0.01, 0.99, 99))
    assert _realised_f1(p, labels, choice.threshold) >= best - 0.01
    assert abs(choice.expected_matches - labels.sum()) < 4 * np.sqrt(labels.sum())
    assert choice.review_lower <= choice.threshold


def test_expected_metrics_on_a_small_case() -> None:
    """Expected precision, recall and F1 follow from sums of probabilities."""
    precision, recall, f1 = expected_metrics([0.9, 0.8, 0.3, 0.1], 0.5)
    assert precision == pytest.approx(1.7 / 2)
    assert recall == pytest.approx(1.7 / 2.1)
    assert f1 == pytest.approx(2 * 1.7 / (2 * 1.7 + 0.3 + 0.4))


def test_review_band_has_the_promised_precision() -> None:
    """Pairs in the review band are expected to be matches at least a quarter of the time."""
    p = np.array([0.99, 0.98, 0.6, 0.4, 0.3, 0.05, 0.01, 0.01])
    choice = choose_threshold(p)
    band = p[(p >= choice.review_lower) & (p < choice.threshold)]
    assert band.size == choice.review_pairs
    if band.size:
        assert band.mean() >= 0.25


def test_review_band_is_whole_with_tied_probabilities() -> None:
    """With ties at the band's lower edge the band [review_lower, threshold) still holds exactly
    review_pairs pairs, expected to be matches at least a quarter of the time."""
    p = np.array([0.95] * 10 + [0.4, 0.12, 0.12])
    choice = choose_threshold(p)
    assert choice.threshold == 0.95
    band = p[(p >= choice.review_lower) & (p < choice.threshold)]
    assert band.size == choice.review_pairs
    assert band.mean() >= 0.25


def test_degenerate_inputs() -> None:
    """No pairs, or only zeros, give a neutral answer; bad probabilities are refused."""
    assert choose_threshold([]).threshold == 0.5
    assert choose_threshold([0.0, 0.0]).expected_matches == 0.0
    with pytest.raises(SettingsError):
        choose_threshold([0.5, 1.5])
    with pytest.raises(SettingsError):
        choose_threshold([0.5], minimum=0.0)
