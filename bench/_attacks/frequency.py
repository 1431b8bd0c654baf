"""Frequency alignment on every token column and every Bloom-filter column.

The hub sees which records share a token value or a filter value (equality classes), and how
many records each class has. The attacker computes the same column's value for every person of
its reference population (token inputs after the schema's public transforms; a filter's input,
with the salt value when the schema salts), sorts both sides by frequency and aligns them rank
by rank: the most frequent encoded value is guessed to be the most frequent plaintext value, and
so on (ties are broken at random). Every encoded value gets a guess down to the shorter list.

A guess is *confident* when its rank is stable on both sides: its count differs from the counts
of both neighbouring ranks by more than ``z`` standard deviations of a Poisson count
(``z sqrt(count)``), on the encoded side and on the reference side alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench._attacks.bits import distinct
from bench._attacks.data import Column, HubView

Codes = np.ndarray[Any, np.dtype[np.int64]]


@dataclass(frozen=True, slots=True)
class ColumnGuess:
    guess: Codes  # per hub record: guessed value code (-1: none)
    confident: np.ndarray[Any, np.dtype[np.bool_]]


def classes(view: HubView, column: str) -> Codes:
    """The hub's equality classes of one column: a class id per record (-1: null)."""
    if column.startswith("tok_"):
        name = column[4:]
        return distinct(view.tokens[name], view.token_null[name]).code
    name = column[3:]
    return distinct(view.filters[name], view.filter_null[name]).code


def _stable(counts: np.ndarray[Any, Any], z: float) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """For counts sorted in decreasing order: is each rank separated from its neighbours?"""
    c = counts.astype(np.float64)
    inf = np.array([np.inf])
    above = np.concatenate([inf, c[:-1] - c[1:]])
    below = np.concatenate([c[:-1] - c[1:], c[-1:]])
    return np.minimum(above, below) > z * np.sqrt(c)


def _ranked(codes: Codes, rng: np.random.Generator) -> tuple[Codes, Codes]:
    """Distinct non-negative codes by decreasing frequency (ties at random), and their counts."""
    values, counts = np.unique(codes[codes >= 0], return_counts=True)
    order = np.lexsort((rng.random(values.size), -counts))
    return values[order], counts[order]


def align(
    encoded: Codes, plain: Codes, rng: np.random.Generator, z: float
) -> tuple[Codes, np.ndarray[Any, np.dtype[np.bool_]]]:
    """Per encoded class id: the aligned plaintext code (-1: none) and whether confident."""
    enc_values, enc_counts = _ranked(encoded, rng)
    pt_values, pt_counts = _ranked(plain, rng)
    size = int(encoded.max()) + 1 if encoded.size and encoded.max() >= 0 else 0
    guess = np.full(size, -1, dtype=np.int64)
    sure = np.zeros(size, dtype=bool)
    m = min(enc_values.size, pt_values.size)
    if m:
        guess[enc_values[:m]] = pt_values[:m]
        sure[enc_values[:m]] = _stable(enc_counts, z)[:m] & _stable(pt_counts, z)[:m]
    return guess, sure


def attack(
    view: HubView,
    columns: Mapping[str, Column],
    reference: Codes,
    rng: np.random.Generator,
    hub_classes: Mapping[str, Codes],
    z: float = 2.0,
) -> dict[str, ColumnGuess]:
    """Frequency-align every column; ``reference`` are the reference people's population
    indices and ``hub_classes`` the hub's class ids per column (:func:`classes`)."""
    out: dict[str, ColumnGuess] = {}
    for name, col in columns.items():
        enc = hub_classes[name]
        guess, sure = align(enc, col.person_code[reference], rng, z)
        held = enc >= 0
        g = np.full(view.records, -1, dtype=np.int64)
        c = np.zeros(view.records, dtype=bool)
        g[held], c[held] = guess[enc[held]], sure[enc[held]]
        out[name] = ColumnGuess(g, c)
    return out
