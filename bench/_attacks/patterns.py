"""Pattern mining on Bloom-filter bit patterns, in the style of Christen, Vidanage, Ranbaduge and
Schnell, "Pattern-mining based cryptanalysis of Bloom filters for privacy-preserving record
linkage" (PAKDD 2018), adapted to field-level filters with keyed, independent positions.

Per filter column, with the encoded filters the hub holds and the reference population's values:

1. **Undo balancing** when the schema balances (:func:`bits.debalance`): complementary columns
   are paired and the sparser member kept, which gives back the unbalanced filters up to an
   unknown column order (which does not matter: positions are keyed anyway).
2. **Mine** frequent bit patterns (:func:`mine`). A q-gram sets the same ``k`` positions (the
   schema's ``hashes``, public) in every filter of a value containing it, so its positions are
   always set together, in the share of filters its values have. On a weighted sample of the
   encoded records and the columns set in fewer than half the filters, pairs of positions set
   together in at least the ``top_qgrams``-th largest q-gram support (less a tolerance) seed a
   fixed-point search: keep the positions set in at least 90% of the filters that have all the
   current ones. Results of ``0.6 k`` to ``k`` positions, not mostly a pattern found before,
   are the pool.
3. **Name** the patterns (:func:`label`): the patterns' pairwise joint shares and the frequent
   q-grams' pairwise joint supports in the reference are two weighted graphs; the naming is the
   quadratic assignment that makes them agree best (an iterated local search from the
   support-only assignment). The relative misfit is reported (``label_residual``).
4. **Re-identify** (:func:`decode`): a filter contains a known q-gram when all its positions are
   set; the filter's presence vector over the known q-grams is looked up among the reference
   values' q-gram vectors, keeping the values whose number of q-grams fits the filter's number
   of set bits. One match is a *confident* guess; several give the most frequent of them.
5. **Bootstrap** (:func:`learn`; as ``docs/security.md`` warns: "from a few such guesses,
   pattern mining may recover which (keyed) positions some bigrams set and then read rarer
   names"): the positions set in 90% of the filters confidently decoded (with at least three
   known q-grams present) to a value containing ``g`` are ``g``'s positions when there are
   about ``k`` of them; with the q-grams learnt that way, step 4 runs again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from bench._attacks.bits import BoolMatrix, debalance, distinct, unpack
from bench._attacks.data import SEP, Column, HubView
from bench._attacks.frequency import ColumnGuess
from connectors.encoding_schema import FilterSpec

Codes = np.ndarray[Any, np.dtype[np.int64]]


@dataclass(frozen=True, slots=True)
class Params:
    top_qgrams: int = 40  # q-grams to name (the reference's most frequent)
    pool: int = 60  # patterns mined at most
    seed_budget: int = 400  # seed pairs grown at most
    tolerance: float = 0.3  # a pattern's share may fall this far (relative) below the support
    sample_records: int = 6000  # encoded records (by weight) used for mining
    bootstrap_rounds: int = 3
    kicks: int = 60  # perturbations per local search when naming patterns
    restarts: int = 10  # further searches from noisy starts while the naming fits badly
    min_anchors: int = 4  # decoded filters needed to learn one q-gram's positions


@dataclass(slots=True)
class Report:
    column: str
    distinct_filters: int = 0
    positions: int = 0  # columns after undoing balancing (or the filter's bits)
    mined: int = 0
    residual: float = 0.0  # relative misfit of the naming (0: the graphs agree exactly)
    learnt: list[int] = field(default_factory=list)  # known q-grams after each bootstrap round
    decoded: list[int] = field(default_factory=list)  # confident distinct filters per round


def qgrams(value: str, n: int) -> list[str]:
    """The padded n-grams the connector hashes (``connectors.encode._FilterEncoder.ngrams``)."""
    pad = " " * (n - 1)
    padded = f"{pad}{value}{pad}"
    return sorted({padded[i : i + n] for i in range(len(padded) - n + 1)})


@dataclass(frozen=True, slots=True)
class Plain:
    """The reference's distinct values of one column and their q-gram incidence."""

    codes: Codes  # vocabulary codes of the distinct values
    weight: np.ndarray[Any, np.dtype[np.float64]]  # reference people holding each
    grams: list[str]
    incidence: sp.csr_matrix  # (values, grams)

    @property
    def support(self) -> np.ndarray[Any, np.dtype[np.float64]]:
        return np.asarray(self.weight @ self.incidence / self.weight.sum()).ravel()


def plain_side(col: Column, reference_codes: Codes, n: int) -> Plain:
    codes, counts = np.unique(reference_codes[reference_codes >= 0], return_counts=True)
    index: dict[str, int] = {}
    rows, cols = [], []
    for i, code in enumerate(codes.tolist()):
        value = str(col.vocab[code]).split(SEP, 1)[0]
        for g in qgrams(value, n):
            rows.append(i)
            cols.append(index.setdefault(g, len(index)))
    incidence = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float64), (rows, cols)), shape=(codes.size, len(index))
    )
    return Plain(codes, counts.astype(np.float64), list(index), incidence)


def _converge(
    bits: BoolMatrix,
    fbits: np.ndarray[Any, Any],
    w: np.ndarray[Any, Any],
    seed: Sequence[int],
    theta: float,
) -> tuple[np.ndarray[Any, np.dtype[np.intp]], np.ndarray[Any, np.dtype[np.bool_]]]:
    """From seed positions: the positions set in at least ``theta`` of the rows that have all the
    current positions, iterated to a fixed point; then positions whose removal would let clearly
    more rows in are dropped (set by chance in most rows of the q-gram, not by the q-gram)."""
    chosen = np.array(sorted(seed), dtype=np.intp)
    rows = bits[:, chosen].all(axis=1)
    for _ in range(12):
        idx = np.flatnonzero(rows)
        total = w[idx].sum()
        if total <= 0:
            break
        cond = (w[idx] @ fbits[idx]) / total
        nxt = np.flatnonzero(cond >= theta)
        if nxt.size == 0:
            break
        if np.array_equal(nxt, chosen):
            break
        chosen = nxt
        rows = bits[:, chosen].all(axis=1)
    base = w[rows].sum()
    keep = []
    for j in range(chosen.size):
        others = np.delete(chosen, j)
        if others.size and w[bits[:, others].all(axis=1)].sum() > 1.1 * base:
            continue
        keep.append(chosen[j])
    chosen = np.array(keep, dtype=np.intp)
    rows = bits[:, chosen].all(axis=1) if chosen.size else np.zeros(bits.shape[0], dtype=bool)
    return chosen, rows


@dataclass(frozen=True, slots=True)
class Pattern:
    positions: np.ndarray[Any, np.dtype[np.intp]]
    rows: np.ndarray[Any, np.dtype[np.bool_]]  # mining rows having every position
    share: float  # their weight share


def mine(
    bits: BoolMatrix, w: np.ndarray[Any, np.dtype[np.float64]], floor: float, k: int, params: Params
) -> list[Pattern]:
    """Distinct frequent bit patterns: sets of positions always set together.

    Seeds are pairs of positions set together in at least ``floor`` of the (weighted) filters,
    most surprising first (joint support over the product of the two positions' supports); each
    is grown to a fixed point by :func:`_converge`. A pattern needs ``0.6 k`` to ``k`` positions
    (the schema's ``hashes``, less collisions), a share of at least ``floor``, and may not share
    more than half its positions with a pattern found before.
    """
    w = w / w.sum()
    fbits = bits.astype(np.float32)
    support = w @ fbits
    joint = (fbits * w[:, None].astype(np.float32)).T @ fbits
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = np.where(joint > 0, joint / np.outer(support, support), 0.0)
    a, b = np.nonzero(np.triu(joint >= floor, 1))
    order = np.argsort(-lift[a, b], kind="stable")
    k_min = max(3, int(np.ceil(0.6 * k)))
    pool: list[Pattern] = []
    member = np.zeros((bits.shape[1], params.pool), dtype=bool)
    # sets grown from a seed and refused for size: their pairs are not tried again (positions
    # of q-grams that always occur together, like " 1" and "19" in dates, grow into one set)
    explored: list[np.ndarray[Any, np.dtype[np.bool_]]] = []
    tried = 0
    for i in order.tolist():
        if len(pool) >= params.pool or tried >= params.seed_budget:
            break
        pa, pb = int(a[i]), int(b[i])
        if (member[pa] & member[pb]).any() or any(e[pa] and e[pb] for e in explored):
            continue  # both positions belong to one pattern found (or refused) already
        tried += 1
        chosen, rows = _converge(bits, fbits, w, (pa, pb), 0.9)
        if chosen.size > k:
            seen = np.zeros(bits.shape[1], dtype=bool)
            seen[chosen] = True
            explored.append(seen)
            continue
        if chosen.size < k_min:
            continue
        if (member[chosen].sum(axis=0) > chosen.size // 2).any():
            continue
        share = float(w[rows].sum())
        if share < floor:
            continue
        member[chosen, len(pool)] = True
        pool.append(Pattern(chosen, rows, share))
    return pool


def _misfit(a: np.ndarray[Any, Any], enc: np.ndarray[Any, Any], ref: np.ndarray[Any, Any]) -> float:
    return float(((enc - ref[np.ix_(a, a)]) ** 2).sum())


def _descend(
    a: np.ndarray[Any, Any], enc: np.ndarray[Any, Any], ref: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """Best-improvement descent over all renames (to an unused q-gram) and swaps of two names;
    every move's change of the squared misfit comes from a few matrix products."""
    a = a.copy()
    n, c = enc.shape[0], ref.shape[0]
    e2 = (enc**2).sum(axis=1)
    de = np.diag(enc)
    dr = np.diag(ref)
    idx = np.arange(n)
    for _ in range(4 * n):
        q = ref[np.ix_(a, a)]  # q[i, j] = ref[a_i, a_j]
        ra = ref[:, a]  # ra[c, j] = ref[c, a_j]
        # rename i -> c: row i's off-diagonal terms with label c, minus with label a_i
        u = e2[:, None] - 2 * enc @ ra.T + (ra**2).sum(axis=1)[None, :]
        u -= (de[:, None] - ra.T) ** 2  # drop j = i
        cur = e2 - 2 * (enc * q).sum(axis=1) + (q**2).sum(axis=1) - (de - np.diag(q)) ** 2
        rename = (
            2 * (u - cur[:, None]) + (de[:, None] - dr[None, :]) ** 2 - ((de - dr[a]) ** 2)[:, None]
        )
        used = np.zeros(c, dtype=bool)
        used[a] = True
        rename[:, used] = np.inf
        # swap i <-> k: row i takes label a_k and row k label a_i (pair (i, k) term unchanged)
        t = e2[:, None] - 2 * enc @ q.T + (q**2).sum(axis=1)[None, :]  # t[i, k]: row i, label a_k
        qd = np.diag(q)
        ti_k = t - (de[:, None] - q.T) ** 2 - (enc - qd[None, :]) ** 2  # drop j = i and j = k
        ti_i = cur[:, None] - (enc - q) ** 2  # row i with its own label, also without j = k
        swap = 2 * (ti_k - ti_i + ti_k.T - ti_i.T)
        swap += (de[:, None] - qd[None, :]) ** 2 - (de - qd)[:, None] ** 2
        swap += (de[None, :] - qd[:, None]) ** 2 - (de - qd)[None, :] ** 2
        swap[idx, idx] = np.inf
        r_best, s_best = float(rename.min()), float(swap.min())
        if min(r_best, s_best) >= -1e-15:
            break
        if r_best <= s_best:
            i, new = np.unravel_index(int(rename.argmin()), rename.shape)
            a[i] = new
        else:
            i, k = np.unravel_index(int(swap.argmin()), swap.shape)
            a[i], a[k] = a[k], a[i]
    return a


def _search(
    start: np.ndarray[Any, Any],
    enc: np.ndarray[Any, Any],
    ref: np.ndarray[Any, Any],
    rng: np.random.Generator,
    kicks: int,
) -> tuple[np.ndarray[Any, Any], float]:
    """Iterated local search: descend, then repeatedly kick the best naming (a few random
    renames and swaps) and descend again, keeping any improvement."""
    best = _descend(start, enc, ref)
    fit = _misfit(best, enc, ref)
    n, c = enc.shape[0], ref.shape[0]
    for _ in range(kicks):
        trial = best.copy()
        for _ in range(int(rng.integers(2, 6))):
            i, new = int(rng.integers(n)), int(rng.integers(c))
            k = np.flatnonzero(trial == new)
            if k.size:
                trial[i], trial[k[0]] = trial[k[0]], trial[i]
            else:
                trial[i] = new
        trial = _descend(trial, enc, ref)
        f = _misfit(trial, enc, ref)
        if f < fit - 1e-15:
            best, fit = trial, f
    return best, fit


def label(
    pool: Sequence[Pattern],
    w: np.ndarray[Any, np.dtype[np.float64]],
    plain: Plain,
    candidates: Sequence[int],
    rng: np.random.Generator,
    kicks: int = 60,
    restarts: int = 10,
    good_fit: float = 0.01,
) -> tuple[dict[int, np.ndarray[Any, Any]], float]:
    """Name the mined patterns with q-grams by graph matching.

    The patterns' joint shares (diagonal: their own shares) and the candidate q-grams' joint
    supports in the reference are two weighted graphs; the naming is the injective map that
    minimises the squared difference between them (a quadratic assignment problem), searched by
    :func:`_search` from the assignment on support alone (log-ratio of share to support,
    Hungarian), and again from noisy versions of it while the relative residual is above
    ``good_fit`` (up to ``restarts`` times); the best fit wins. Returns the naming and its
    relative residual (0: the graphs agree exactly).
    """
    from scipy.optimize import linear_sum_assignment

    if not pool:
        return {}, 1.0
    w = w / w.sum()
    cand = np.asarray(candidates)
    pool = sorted(pool, key=lambda p: -p.share)[: cand.size]
    inc = plain.incidence[:, cand].toarray()
    pw = plain.weight / plain.weight.sum()
    ref = (inc * pw[:, None]).T @ inc  # (c, c) joint supports; diagonal = supports
    rows = np.stack([p.rows for p in pool], axis=1).astype(np.float64)
    enc = (rows * w[:, None]).T @ rows
    n = len(pool)
    cost0 = np.abs(np.log(np.diag(enc)[:, None] / np.diag(ref)[None, :]))
    pi, cj = linear_sum_assignment(cost0)
    start = np.empty(n, dtype=np.int64)
    start[pi] = cj
    scale = max(float((enc**2).sum()), 1e-12)
    best = _search(start, enc, ref, rng, kicks)
    for _ in range(restarts):
        if best[1] / scale < good_fit:
            break
        pi, cj = linear_sum_assignment(cost0 + rng.gumbel(scale=0.2, size=cost0.shape))
        other = np.empty(n, dtype=np.int64)
        other[pi] = cj
        found = _search(other, enc, ref, rng, kicks)
        if found[1] < best[1]:
            best = found
    residual = best[1] / scale
    return {int(cand[best[0][i]]): pool[i].positions for i in range(n)}, residual


def presence(bits: BoolMatrix, patterns: Sequence[np.ndarray[Any, Any]]) -> BoolMatrix:
    """(filters, q-grams): every position of the q-gram's pattern is set."""
    m = np.zeros((bits.shape[1], len(patterns)), dtype=np.float32)
    for j, p in enumerate(patterns):
        m[p, j] = 1.0
    need = m.sum(axis=0) - 0.5
    out = np.empty((bits.shape[0], len(patterns)), dtype=bool)
    for start in range(0, bits.shape[0], 8192):
        chunk = bits[start : start + 8192].astype(np.float32)
        out[start : start + 8192] = chunk @ m >= need
    return out


def expected_popcount(grams: np.ndarray[Any, Any], bits: int, k: int) -> np.ndarray[Any, Any]:
    """Expected set bits of an unbalanced filter of a value with ``grams`` distinct q-grams."""
    return bits * (1.0 - (1.0 - 1.0 / bits) ** (k * np.asarray(grams, dtype=np.float64)))


def decode(
    bits: BoolMatrix, known: dict[int, np.ndarray[Any, Any]], plain: Plain, size: int, k: int
) -> tuple[Codes, np.ndarray[Any, np.dtype[np.bool_]], np.ndarray[Any, np.dtype[np.int64]]]:
    """Per filter: index of the best reference value (-1: none), whether it is the only one, and
    how many known q-grams the filter contains.

    Candidates are the reference values with exactly the filter's presence vector over the known
    q-grams whose q-gram count fits the filter's number of set bits (within three standard
    deviations, at least 6 bits: one q-gram more or less moves it by about ``k``); the most
    frequent candidate is the guess.
    """
    grams = sorted(known)
    n = bits.shape[0]
    guess = np.full(n, -1, dtype=np.int64)
    unique = np.zeros(n, dtype=bool)
    if not grams:
        return guess, unique, np.zeros(n, dtype=np.int64)
    has = plain.incidence[:, grams].toarray() > 0
    pres = presence(bits, [known[g] for g in grams])
    m = np.asarray(plain.incidence.sum(axis=1)).ravel()
    expect = expected_popcount(m, size, k)
    lam = k * m / size
    sd = np.sqrt(size * np.exp(-2 * lam) * (np.exp(lam) - 1 - lam))
    slack = np.maximum(3 * sd, 6.0)
    table: dict[bytes, list[int]] = {}
    for v in np.argsort(-plain.weight, kind="stable").tolist():
        table.setdefault(np.packbits(has[v]).tobytes(), []).append(v)
    packed = np.packbits(pres, axis=1)
    pop = bits.sum(axis=1)
    for i in range(n):
        hit = table.get(packed[i].tobytes())
        if not hit:
            continue
        fits = [v for v in hit if abs(pop[i] - expect[v]) <= slack[v]]
        if fits:
            guess[i] = fits[0]
            unique[i] = len(fits) == 1
    return guess, unique, pres.sum(axis=1).astype(np.int64)


def learn(
    bits: BoolMatrix,
    guess: Codes,
    anchor: np.ndarray[Any, np.dtype[np.bool_]],
    plain: Plain,
    k: int,
    min_anchors: int,
) -> dict[int, np.ndarray[Any, Any]]:
    """Positions of q-grams seen in at least ``min_anchors`` anchor filters (confidently decoded):
    those set in at least 90% of them. Kept only when there are ``k`` of them, or one or two
    fewer (a q-gram's own positions can collide), and when they are not all set in more than
    1% of the anchors whose value lacks the q-gram (then they belong to another q-gram that
    usually comes with it, as "oa" with "ro" in "road")."""
    anchors = np.flatnonzero(anchor)
    if anchors.size == 0:
        return {}
    inc = plain.incidence[guess[anchors]].tocsc()  # (anchors, grams)
    k_low = k - max(1, k // 10)
    sub = bits[anchors]
    out: dict[int, np.ndarray[Any, Any]] = {}
    for g in range(inc.shape[1]):
        rows = inc.indices[inc.indptr[g] : inc.indptr[g + 1]]
        if rows.size < min_anchors:
            continue
        pos = np.flatnonzero(sub[rows].mean(axis=0) >= 0.9)
        if not k_low <= pos.size <= k:
            continue
        without = np.ones(anchors.size, dtype=bool)
        without[rows] = False
        if without.any() and sub[without][:, pos].all(axis=1).mean() > 0.01:
            continue
        out[g] = pos
    return out


def attack_column(
    view: HubView,
    col: Column,
    spec: FilterSpec,
    reference_codes: Codes,
    rng: np.random.Generator,
    params: Params,
) -> tuple[ColumnGuess, Report]:
    """Pattern-mine one filter column; the guess per hub record and what the attack found."""
    name = spec.name
    report = Report(col.name)
    d = distinct(view.filters[name], view.filter_null[name])
    balanced = unpack(d.packed)
    bits = debalance(balanced).bits if view.schema.hardening.balance else balanced
    report.distinct_filters, report.positions = int(bits.shape[0]), int(bits.shape[1])
    plain = plain_side(col, reference_codes, spec.ngram)
    support = plain.support
    top = np.argsort(-support)[: params.top_qgrams]
    floor = float(support[top[-1]]) * (1 - params.tolerance)

    # mining on a weighted sample of records
    draw = rng.choice(d.count.size, size=params.sample_records, p=d.count / d.count.sum())
    rows, mult = np.unique(draw, return_counts=True)
    weights = mult.astype(np.float64)
    # columns set in more than half the filters are dropped for mining: they join every
    # pattern (balancing already turned them round, see bits.debalance)
    sparse = np.flatnonzero((d.count @ bits) < 0.5 * d.count.sum())
    pool = [
        Pattern(sparse[p.positions], p.rows, p.share)
        for p in mine(bits[rows][:, sparse], weights, floor, spec.hashes, params)
    ]
    named = np.flatnonzero(support >= floor * (1 - params.tolerance))
    known, report.residual = label(
        pool, weights, plain, named.tolist(), rng, kicks=params.kicks, restarts=params.restarts
    )
    report.mined = len(pool)
    size = spec.bits
    guess, unique, present = decode(bits, known, plain, size, spec.hashes)
    report.learnt.append(len(known))
    report.decoded.append(int(unique.sum()))
    for _ in range(params.bootstrap_rounds):
        anchor = unique & (present >= 3)
        learnt = learn(bits, guess, anchor, plain, spec.hashes, params.min_anchors)
        if not learnt or learnt.keys() <= known.keys():
            break
        known = {**learnt, **known}  # mined patterns are kept
        guess, unique, present = decode(bits, known, plain, size, spec.hashes)
        report.learnt.append(len(known))
        report.decoded.append(int(unique.sum()))
    held = d.code >= 0
    g = np.full(view.records, -1, dtype=np.int64)
    c = np.zeros(view.records, dtype=bool)
    value = np.where(guess >= 0, plain.codes[np.maximum(guess, 0)], -1)
    g[held] = value[d.code[held]]
    c[held] = unique[d.code[held]]
    return ColumnGuess(g, c), report
