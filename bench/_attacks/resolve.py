"""From guessed values to a guessed person, and the scoring every attack shares.

An attack produces, per encoded record and attacked column, a *guessed value* (a code in the
column's vocabulary) and whether the attacker is *confident* in it. Two levels are scored:

* **value level** (one row per column): a record's value is re-identified when the attacker's
  top guess for it equals the value the record was encoded from;
* **record level** (one row per attack): the attacker turns its confident value guesses (its
  *facts* about the record) into a guess of the person in the reference population, by
  :func:`resolve_people`. A record is re-identified when that top guess is the record's person;
  with several equally good candidates the top guess is one of them at random, and the record
  counts as the expected value, ``1 / candidates`` when the true person is among them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Codes = np.ndarray[Any, np.dtype[np.int64]]
Flags = np.ndarray[Any, np.dtype[np.bool_]]

#: A fact shared by at most this many reference people proposes them as candidates.
SPECIFIC = 30
#: A person guess is confident when one candidate alone has the top score and it agrees with
#: every fact, or with at least this many.
CONFIDENT_AGREEMENT = 3


@dataclass(frozen=True, slots=True)
class Outcome:
    """Per attacked record: expected correctness of the top guess; confident; confident & right."""

    credit: np.ndarray[Any, np.dtype[np.float64]]
    confident: Flags
    confident_correct: Flags

    @property
    def records(self) -> int:
        return int(self.credit.size)


def value_outcome(guess: Codes, confident: Flags, true: Codes) -> Outcome:
    """Value level, over the records that hold the value (non-null)."""
    held = true >= 0
    right = (guess == true) & (guess >= 0)
    return Outcome(
        right[held].astype(np.float64),
        confident[held] & (guess[held] >= 0),
        (right & confident)[held],
    )


def _hash(codes: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.uint64]]:
    """One 64-bit key per row of small non-negative integer codes (collisions: ~n^2 / 2^64)."""
    h = np.full(codes.shape[0], 0x9E3779B97F4A7C15, dtype=np.uint64)
    mult = np.uint64(0xBF58476D1CE4E5B9)
    with np.errstate(over="ignore"):
        for c in range(codes.shape[1]):
            h = (h ^ (codes[:, c].astype(np.uint64) + np.uint64(c + 1))) * mult
            h ^= h >> np.uint64(31)
    return h


def resolve_people(
    facts: Mapping[str, Codes],
    reference: Mapping[str, Codes],
    true_ref: Codes,
) -> Outcome:
    """The attacker's person guess for each record from its facts (``-1``: no fact).

    ``reference[c]`` is column ``c``'s code for each reference person (``-1``: missing) and
    ``true_ref`` the reference index of each record's person (``-1``: not in the reference).

    Candidates are the reference people sharing one of the record's *specific* facts (a value at
    most :data:`SPECIFIC` reference people have); each scores the number of facts it agrees with
    and the top score wins. A record with facts but no specific one (say, only a common family
    name and a common given name) gets the people who agree with all its facts as candidates.
    """
    cols = list(facts)
    n = true_ref.size
    credit = np.zeros(n, dtype=np.float64)
    confident = np.zeros(n, dtype=bool)
    if not cols:
        return Outcome(credit, confident, confident.copy())
    F = np.stack([facts[c] for c in cols], axis=1)
    R = np.stack([reference[c] for c in cols], axis=1)
    n_ref = R.shape[0]
    n_facts = (F >= 0).sum(axis=1)

    # candidates from specific facts
    recs, cands = [], []
    for j in range(len(cols)):
        order = np.argsort(R[:, j], kind="stable")
        sorted_codes = R[order, j]
        f = F[:, j]
        lo = np.searchsorted(sorted_codes, f, "left")
        hi = np.searchsorted(sorted_codes, f, "right")
        size = np.where(f >= 0, hi - lo, 0)
        pick = np.flatnonzero((size >= 1) & (size <= SPECIFIC))
        if pick.size == 0:
            continue
        sizes = size[pick]
        rec = np.repeat(pick, sizes)
        start = np.repeat(lo[pick], sizes)
        offset = np.arange(rec.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        recs.append(rec)
        cands.append(order[start + offset])
    has_pairs = np.zeros(n, dtype=bool)
    if recs:
        key = np.unique(np.concatenate(recs) * n_ref + np.concatenate(cands))
        rec, cand = key // n_ref, key % n_ref
        score = ((F[rec] >= 0) & (F[rec] == R[cand])).sum(axis=1)
        # per record (rec is sorted): top score, how many reach it, is the true person one of them
        starts = np.flatnonzero(np.r_[True, rec[1:] != rec[:-1]])
        top = np.maximum.reduceat(score, starts)
        owner = rec[starts]
        at_top = score == np.repeat(top, np.diff(np.r_[starts, rec.size]))
        ties = np.add.reduceat(at_top.astype(np.int64), starts)
        true_top = np.add.reduceat((at_top & (cand == true_ref[rec])).astype(np.int64), starts)
        credit[owner] = true_top / ties
        confident[owner] = (ties == 1) & ((top == n_facts[owner]) | (top >= CONFIDENT_AGREEMENT))
        has_pairs[owner] = True

    # no specific fact: the people who agree with every fact
    rest = np.flatnonzero(~has_pairs & (n_facts > 0))
    masks = (F[rest] >= 0) @ (1 << np.arange(len(cols), dtype=np.int64))
    for mask in np.unique(masks):
        sel = rest[masks == mask]
        on = [j for j in range(len(cols)) if mask >> j & 1]
        # a reference person missing one of these values agrees with no fact about it
        present = R[(R[:, on] >= 0).all(axis=1)][:, on]
        if present.shape[0] == 0:
            continue
        ref_keys, counts = np.unique(_hash(present), return_counts=True)
        rec_keys = _hash(F[sel][:, on])
        at = np.minimum(np.searchsorted(ref_keys, rec_keys), ref_keys.size - 1)
        count = np.where(ref_keys[at] == rec_keys, counts[at], 0)
        t = true_ref[sel]
        true_ok = (t >= 0) & (R[np.maximum(t, 0)][:, on] == F[sel][:, on]).all(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            credit[sel] = np.where(count > 0, true_ok / np.maximum(count, 1), 0.0)
        confident[sel] = count == 1
    correct = confident & (credit == 1.0)
    return Outcome(credit, confident, correct)


def result_row(
    *,
    attack: str,
    level: str,
    target: str,
    hardening: str,
    overlap: float,
    outcome: Outcome,
    base: Mapping[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    """One ``results[]`` entry (figures documented in ``bench/README.md``)."""
    guesses = int(outcome.confident.sum())
    correct = int(outcome.confident_correct.sum())
    records = outcome.records
    return {
        **base,
        "attack": attack,
        "level": level,
        "target": target,
        "overlap": overlap,
        "hardening": hardening,
        "records": records,
        "reidentified": round(float(outcome.credit.sum()), 1),
        "reidentified_share": round(float(outcome.credit.sum()) / records, 6) if records else 0.0,
        "guesses": guesses,
        "correct_guesses": correct,
        "guess_precision": round(correct / guesses, 4) if guesses else None,
        **extra,
    }
