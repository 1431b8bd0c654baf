"""Similarity-graph matching, in the style of Vidanage, Ranbaduge, Christen and Schnell, "A graph
matching attack on privacy-preserving record linkage" (CIKM 2020).

Two graphs over a sample of nodes (a few thousand: the all-pairs similarities are quadratic):

* **encoded graph**: one encoded record per sampled person of the encoded population; the edge
  between two records of one field is the Dice coefficient of their filters as the hub holds
  them;
* **plaintext graph**: the same number of reference people, of whom the share ``overlap`` are
  people of the encoded sample. The attacker knows the public schema (bits, hashes, q, balancing,
  salt) but not the key, so it encodes the reference values itself under a key of its own: the
  similarity of two values does not depend on the key (only on the values, the schema and, when
  salted, the salt values), so both graphs carry the same similarity function. This is stronger
  than comparing q-gram similarity of the plaintext with Dice of the filters, which needs the
  regression Vidanage et al. fit between the two.

Every node gets a feature vector per field: how many nodes have an identical filter, its five
largest similarities, a histogram of its similarities to all other nodes (bins at the encoded
graph's similarity quantiles), their mean and spread, and the mean number of identical-value
neighbours of its five nearest neighbours (two hops); plus the same over the mean similarity of
all fields. Features are standardised together; the nodes are matched by the assignment that
minimises the total Euclidean distance between matched feature vectors (Hungarian algorithm).
A match is *confident* when the two nodes are each other's nearest neighbour in feature space.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from bench._attacks.bits import dice, unpack
from bench._attacks.data import HubView, World
from bench._attacks.resolve import Outcome
from connectors.encode import Encoder

BINS = 12


@dataclass(frozen=True, slots=True)
class Params:
    nodes: int = 3000


def _field_features(
    sim: np.ndarray[Any, np.dtype[np.float32]],
    missing: np.ndarray[Any, Any],
    edges: np.ndarray[Any, Any],
) -> np.ndarray[Any, np.dtype[np.float64]]:
    n = sim.shape[0]
    s = sim.astype(np.float64)
    np.fill_diagonal(s, np.nan)
    s[missing, :] = np.nan
    s[:, missing] = np.nan
    same = np.nansum(s >= 0.9999, axis=1)
    filled = np.where(np.isnan(s), -1.0, s)
    top = -np.sort(-filled, axis=1)[:, :5]
    hist = np.stack(
        [((s >= lo) & (s < hi)).sum(axis=1) for lo, hi in itertools.pairwise(edges)],
        axis=1,
    )
    valid = np.maximum((~np.isnan(s)).sum(axis=1), 1)
    mean = np.nansum(s, axis=1) / valid
    spread = np.sqrt(np.maximum(np.nansum(s**2, axis=1) / valid - mean**2, 0.0))
    nearest = np.argsort(-filled, axis=1)[:, :5]
    two_hop = same[nearest].mean(axis=1)
    out = np.column_stack(
        [np.log1p(same), top, np.log1p(hist) if n else hist, mean, spread, np.log1p(two_hop)]
    )
    out[missing] = 0.0
    return np.column_stack([out, missing.astype(np.float64)])


def _similarities(
    filters: dict[str, np.ndarray[Any, Any]], nulls: dict[str, np.ndarray[Any, Any]]
) -> dict[str, np.ndarray[Any, np.dtype[np.float32]]]:
    """All-pairs Dice per field, and their mean over the fields both nodes hold (``__mean__``)."""
    out: dict[str, np.ndarray[Any, np.dtype[np.float32]]] = {}
    total = count = None
    for name, packed in filters.items():
        bits = unpack(packed)
        sim = dice(bits, bits)
        out[name] = sim
        both = ~(nulls[name][:, None] | nulls[name][None, :])
        total = np.where(both, sim, 0.0) + (0.0 if total is None else total)
        count = both.astype(np.float32) + (0.0 if count is None else count)
    assert total is not None and count is not None
    out["__mean__"] = (total / np.maximum(count, 1.0)).astype(np.float32)
    return out


def _features(
    sims: dict[str, np.ndarray[Any, Any]],
    nulls: dict[str, np.ndarray[Any, Any]],
    edges: dict[str, np.ndarray[Any, Any]],
) -> np.ndarray[Any, np.dtype[np.float64]]:
    n = next(iter(sims.values())).shape[0]
    none = np.zeros(n, dtype=bool)
    return np.column_stack(
        [_field_features(sim, nulls.get(name, none), edges[name]) for name, sim in sims.items()]
    )


def _edges(
    sims: dict[str, np.ndarray[Any, Any]], nulls: dict[str, np.ndarray[Any, Any]]
) -> dict[str, np.ndarray[Any, Any]]:
    """Histogram bin edges per field: quantiles of the encoded graph's similarities."""
    out = {}
    for name, sim in sims.items():
        keep = ~nulls[name] if name in nulls else np.ones(sim.shape[0], dtype=bool)
        sub = sim[np.ix_(keep, keep)]
        out[name] = _quantile_edges(sub[np.triu_indices(sub.shape[0], 1)])
    return out


def _quantile_edges(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    values = values[~np.isnan(values)]
    q = np.quantile(values, np.linspace(0, 1, BINS + 1)) if values.size else np.linspace(0, 1, 13)
    q[0], q[-1] = -np.inf, np.inf
    return np.unique(q)


def attack(
    view: HubView,
    world: World,
    reference: np.ndarray[Any, np.dtype[np.int64]],
    overlap: float,
    rng: np.random.Generator,
    params: Params,
) -> tuple[Outcome, dict[str, Any]]:
    """Match a sample of encoded records to reference people by similarity-graph features."""
    person = view.record_index
    encoded_people = np.unique(person)
    in_ref = np.isin(encoded_people, reference)
    outside_ref = reference[~np.isin(reference, encoded_people)]
    n = min(params.nodes, encoded_people.size)
    n_both = round(overlap * n)
    both = rng.choice(encoded_people[in_ref], size=n_both, replace=False)
    only_enc = rng.choice(encoded_people[~in_ref], size=n - n_both, replace=False)
    only_ref = rng.choice(outside_ref, size=n - n_both, replace=False)
    enc_people = np.concatenate([both, only_enc])
    ref_people = rng.permutation(np.concatenate([both, only_ref]))
    # one random record of each sampled encoded person
    order = rng.permutation(person.size)
    first = {}
    for i in order.tolist():
        first.setdefault(int(person[i]), i)
    rows = np.array([first[int(p)] for p in enc_people.tolist()], dtype=np.int64)

    names = [f.name for f in view.schema.filters]
    enc_filters = {f: view.filters[f][rows] for f in names}
    enc_nulls = {f: view.filter_null[f][rows] for f in names}
    own = Encoder(view.schema, rng.bytes(32), rng.bytes(32))
    fields = {
        f: [world.person_fields[_source(f)][i] for i in ref_people.tolist()]
        for f in view.schema.fields_used()
    }
    batch = own.encode(fields, [str(i) for i in ref_people.tolist()])
    ref_filters, ref_nulls = {}, {}
    width = {f.name: view.schema.filter_bytes(f) for f in view.schema.filters}
    for f in names:
        values = batch.filters[f].to_pylist()
        ref_nulls[f] = np.array([v is None for v in values], dtype=bool)
        blob = b"".join(bytes(width[f]) if v is None else v for v in values)
        ref_filters[f] = np.frombuffer(blob, dtype=np.uint8).reshape(len(values), width[f])

    enc_sims = _similarities(enc_filters, enc_nulls)
    ref_sims = _similarities(ref_filters, ref_nulls)
    edges = _edges(enc_sims, enc_nulls)
    fe = _features(enc_sims, enc_nulls, edges)
    fr = _features(ref_sims, ref_nulls, edges)
    both_f = np.vstack([fe, fr])
    mu, sd = both_f.mean(axis=0), both_f.std(axis=0)
    sd[sd == 0] = 1.0
    cost = cdist((fe - mu) / sd, (fr - mu) / sd)
    r, c = linear_sum_assignment(cost)
    match = np.empty(n, dtype=np.int64)
    match[r] = c
    mutual = (cost.argmin(axis=1) == match) & (cost.argmin(axis=0)[match] == np.arange(n))
    right = ref_people[match] == enc_people
    outcome = Outcome(right.astype(np.float64), mutual, mutual & right)
    return outcome, {"nodes": n, "features": int(fe.shape[1])}


def _source(field: str) -> str:
    """The reference field behind a canonical field (the phone token inputs take the mobile)."""
    return "mobile" if field == "phone" else field
