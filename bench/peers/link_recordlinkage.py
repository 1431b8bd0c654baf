"""Link two plaintext files with the recordlinkage toolkit and time it (project ``.venv``).

Usage::

    .venv/bin/python bench/peers/link_recordlinkage.py --a plain_a.parquet --b plain_b.parquet \\
        --profile febrl --out pairs.parquet --workers 2

The toolkit's classic unsupervised pipeline:

* ``recordlinkage.Index`` with several ``Block`` rules and one ``SortedNeighbourhood`` rule; the
  index is the union of their candidate pairs. Blocking keys that need a derived value (an
  initial, a birth year) get a helper column first;
* ``recordlinkage.Compare``: Jaro-Winkler on names and addresses, exact agreement on
  identifiers, ``date`` on the date of birth (1 equal, 0.5 day and month swapped); missing values
  compare as 0;
* ``recordlinkage.ECMClassifier(binarize=0.85)``: expectation/conditional maximisation of a
  Fellegi-Sunter model on the features made binary at 0.85 (so a string agrees when its
  Jaro-Winkler similarity is at least 0.85, a date only when equal). ``classifier.prob`` gives a
  match probability per candidate pair, and ``predict`` (the toolkit's decision) is that
  probability at 0.5.

``--workers`` is accepted and reported but the comparison runs in one process: the toolkit's
only parallelism, ``Compare(n_jobs=N)``, hands chunks to joblib worker processes, and on the
2-core machine measured that was always slower (3,000,000 pairs, two Jaro-Winkler features and
one exact: 10.8 s with ``n_jobs=1``, 15.5 s with ``n_jobs=2``; 600,000 pairs: 2.0 s against
4.4 s).

Every candidate pair is written with its ECM probability. ``seconds.total`` runs from just after
the inputs are read to just after the pairs are written (``index``, ``compare``, ``classify``,
``write``).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import _linkpeer
import pandas as pd
import recordlinkage
from recordlinkage.index import Block, SortedNeighbourhood

SYSTEM = "recordlinkage"
DEFAULT_THRESHOLD = 0.5
BINARIZE = 0.85
#: joblib processes for Compare (see the module docstring: more was slower here).
COMPARE_JOBS = 1

Indexer = Callable[[], list[Any]]


def add_helper_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Add the derived blocking keys: given and family name initials and birth year."""
    out = df.copy()
    out["given_initial"] = df["given_name"].str[:1]
    out["family_initial"] = df["family_name"].str[:1]
    out["birth_year"] = df["date_of_birth"].str[:4]
    out["dob"] = pd.to_datetime(df["date_of_birth"], format="%Y-%m-%d", errors="coerce")
    return out


def synthetic_index_rules() -> list[Any]:
    """Blocking for the synthetic A&E / police layout: names, date of birth or postcode with an
    initial or birth year, the identifiers, and a sorted neighbourhood on family name."""
    return [
        Block(["given_name", "family_name"]),
        Block(["date_of_birth", "given_initial"]),
        Block(["date_of_birth", "family_initial"]),
        Block(["postcode", "given_initial"]),
        Block(["postcode", "birth_year"]),
        Block("phone"),
        Block("nhs_number"),
        Block("email"),
        SortedNeighbourhood("family_name", window=3, block_on=["given_name", "birth_year"]),
    ]


def febrl_index_rules() -> list[Any]:
    """Blocking for FEBRL4: given name, a sorted neighbourhood on family name, date of birth,
    social security id and postcode."""
    return [
        Block("given_name"),
        SortedNeighbourhood("family_name", window=3),
        Block("date_of_birth"),
        Block("soc_sec_id"),
        Block("au_postcode"),
    ]


def synthetic_compare() -> recordlinkage.Compare:
    """Features for the synthetic layout (one per identifier)."""
    c = recordlinkage.Compare(n_jobs=COMPARE_JOBS)
    c.string("given_name", "given_name", method="jarowinkler", label="given_name")
    c.string("family_name", "family_name", method="jarowinkler", label="family_name")
    c.date("dob", "dob", label="date_of_birth")
    c.exact("sex", "sex", label="sex")
    c.exact("nhs_number", "nhs_number", label="nhs_number")
    c.exact("postcode", "postcode", label="postcode")
    c.string("address", "address", method="jarowinkler", label="address")
    c.exact("phone", "phone", label="phone")
    c.exact("email", "email", label="email")
    return c


def febrl_compare() -> recordlinkage.Compare:
    """Features for FEBRL4 (as in the toolkit's FEBRL examples, plus the identifiers)."""
    c = recordlinkage.Compare(n_jobs=COMPARE_JOBS)
    c.string("given_name", "given_name", method="jarowinkler", label="given_name")
    c.string("family_name", "family_name", method="jarowinkler", label="family_name")
    c.date("dob", "dob", label="date_of_birth")
    c.exact("street_number", "street_number", label="street_number")
    c.string("address_1", "address_1", method="jarowinkler", label="address_1")
    c.string("address_2", "address_2", method="jarowinkler", label="address_2")
    c.string("suburb", "suburb", method="jarowinkler", label="suburb")
    c.exact("au_postcode", "au_postcode", label="postcode")
    c.exact("state", "state", label="state")
    c.string("soc_sec_id", "soc_sec_id", method="jarowinkler", label="soc_sec_id")
    return c


PROFILES: dict[str, tuple[Indexer, Callable[[], recordlinkage.Compare]]] = {
    "synthetic": (synthetic_index_rules, synthetic_compare),
    "febrl": (febrl_index_rules, febrl_compare),
}


def candidate_pairs(a: pd.DataFrame, b: pd.DataFrame, rules: list[Any]) -> pd.MultiIndex:
    """The union of the candidate pairs of every indexing rule (positions in ``a`` and ``b``)."""
    indexer = recordlinkage.Index()
    for rule in rules:
        indexer.add(rule)
    return indexer.index(a, b)


def classify(features: pd.DataFrame) -> pd.Series:
    """Fit the ECM classifier on the binarised features; the match probability per pair."""
    ecm = recordlinkage.ECMClassifier(binarize=BINARIZE)
    ecm.fit(features)
    return ecm.prob(features)


def main() -> int:
    args = _linkpeer.parse_args(__doc__.splitlines()[0])
    a_raw = _linkpeer.read_plain(args.a).to_pandas()
    b_raw = _linkpeer.read_plain(args.b).to_pandas()
    _linkpeer.log(f"{len(a_raw):,} x {len(b_raw):,} records, profile {args.profile}")
    stages = _linkpeer.Stages()
    index_rules, compare = PROFILES[args.profile]
    with stages.stage("index"):
        a = add_helper_columns(a_raw)
        b = add_helper_columns(b_raw)
        pairs = candidate_pairs(a, b, index_rules())
    _linkpeer.log(f"{len(pairs):,} candidate pairs")
    with stages.stage("compare"):
        features = compare().compute(pairs, a, b)
    with stages.stage("classify"):
        prob = classify(features)
    with stages.stage("write"):
        ia = prob.index.get_level_values(0)
        ib = prob.index.get_level_values(1)
        n = _linkpeer.write_pairs(
            args.out,
            a["record_id"].to_numpy()[ia],
            b["record_id"].to_numpy()[ib],
            prob.to_numpy(),
        )
    _linkpeer.print_result(
        SYSTEM,
        DEFAULT_THRESHOLD,
        stages.report(),
        n,
        {"recordlinkage": version("recordlinkage"), "jellyfish": version("jellyfish")},
        candidates=len(pairs),
        records_a=len(a),
        records_b=len(b),
        workers=args.workers,
        compare_jobs=COMPARE_JOBS,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
