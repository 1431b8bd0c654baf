"""Choosing a match threshold without labels, from the model's own probabilities (pure NumPy).

If the model's match probabilities are calibrated, then over the scored pairs at or above a
threshold ``t`` the expected number of true matches is the sum of their probabilities, the
expected number of false matches the sum of one minus them, and the expected number of matches
missed the sum of the probabilities below ``t``. The default threshold maximises the expected F1
these give; a fixed 0.5 does not adapt to how many matches there are or how sure the model is.

Matches that blocking never compared are invisible here, so the expected recall is an upper
bound. The clerical-review band is ``[review_lower, threshold)``: the widest band below the
threshold in which at least ``review_precision`` of pairs are expected to be matches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from linkage.errors import SettingsError


@dataclass(frozen=True, slots=True)
class ThresholdChoice:
    """The chosen threshold and what the model expects of it."""

    threshold: float
    expected_matches: float
    expected_precision: float
    expected_recall: float
    expected_f1: float
    review_lower: float
    review_pairs: int


def expected_metrics(probabilities: npt.ArrayLike, threshold: float) -> tuple[float, float, float]:
    """Expected (precision, recall, F1) of accepting pairs at or above ``threshold``."""
    p = np.asarray(probabilities, dtype=np.float64)
    above = p >= threshold
    tp = float(p[above].sum())
    fp = float((1.0 - p[above]).sum())
    fn = float(p[~above].sum())
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return precision, recall, f1


def choose_threshold(
    probabilities: npt.ArrayLike,
    *,
    minimum: float = 0.05,
    review_precision: float = 0.25,
) -> ThresholdChoice:
    """The threshold that maximises expected F1 (never below ``minimum``), and a review band."""
    if not 0.0 < minimum < 1.0 or not 0.0 < review_precision < 1.0:
        raise SettingsError("minimum and review_precision must be between 0 and 1")
    p = np.sort(np.asarray(probabilities, dtype=np.float64))[::-1]
    if p.size and (np.isnan(p).any() or p.min() < 0.0 or p.max() > 1.0):
        raise SettingsError("probabilities must lie in [0, 1]")
    total = float(p.sum())
    if total == 0.0:
        return ThresholdChoice(0.5, 0.0, 1.0, 1.0, 0.0, 0.5, 0)
    # accepting the k highest pairs: TP_k = cumsum(p), FP_k = k - TP_k, FN_k = total - TP_k
    tp = np.cumsum(p)
    k = np.arange(1, p.size + 1)
    f1 = 2 * tp / (2 * tp + (k - tp) + (total - tp))
    allowed = p >= minimum
    if not allowed.any():
        return ThresholdChoice(float(minimum), total, 1.0, 0.0, 0.0, float(minimum), 0)
    best = int(np.argmax(np.where(allowed, f1, -1.0)))
    threshold = float(p[best])
    precision, recall, best_f1 = expected_metrics(p, threshold)
    below = p[p < threshold]  # descending
    band_precision = np.cumsum(below) / np.arange(1, below.size + 1) if below.size else below
    # a band can only end where the probability changes (equal scores are all in or all out)
    ends = np.r_[below[1:] != below[:-1], True] if below.size else np.zeros(0, dtype=bool)
    ok = np.nonzero((band_precision >= review_precision) & ends)[0]
    if ok.size:
        n_review = int(ok[-1]) + 1
        review_lower = float(below[n_review - 1])
    else:
        n_review, review_lower = 0, threshold
    return ThresholdChoice(
        threshold=threshold,
        expected_matches=total,
        expected_precision=precision,
        expected_recall=recall,
        expected_f1=best_f1,
        review_lower=review_lower,
        review_pairs=n_review,
    )
