"""The linkage model derived from a project's encoding schema (no hand-written SQL per project).

Fellegi-Sunter multiplies the evidence of its comparisons as if they were independent, so each
piece of evidence must enter the model once. The plan compares **fields**, as a plaintext model
would, using the best encoding the schema offers for each:

* a field encoded as a **Bloom filter** is compared by Dice, in levels (identical first, then
  decreasing similarity): given name, family name, date of birth, and any extra field;
* **household**: members of one household share family name, address, postcode and landline.
  Counted as independent, that evidence makes siblings, or a parent and a child of the same
  name, look like one person: the model would learn "same household" instead of "same person".
  So family name and place of residence (landline, address and postcode) are one comparison
  whose levels are their joint outcomes (same family name and same place, same place only, same
  family name only, ...), and EM learns how often non-matches share a household. Without a
  family-name filter, place alone is one **location** comparison;
* a **unique identifier** without a filter (NHS number, PNC id, phone, email, unique extra codes)
  is one token comparison;
* a **token** enters the model only when it carries evidence no filter or identifier comparison
  carries (a field it reads has no filter): with schema v1, whose date of birth has no filter,
  the name-and-date-of-birth tokens form one ladder, most exact first, and the tokens with the
  postcode join the location ladder; a token of one filtered field and sex (v2's date of birth
  and sex) becomes the top level of that field's ladder, so twins of opposite sex, who agree on
  everything else, are told apart. Otherwise tokens only find candidate pairs (blocking).

Training blocks are tokens too. EM cannot estimate a comparison from pairs that were chosen
because they agree on it, so each training rule names, beside the token, the columns of every
comparison that reads one of the token's fields, and Splink leaves those comparisons out of that
EM session (it drops comparisons whose columns appear in the blocking rule). Two blocks with
disjoint fields train every comparison.

A :class:`ModelPlan` is plain data (column names and thresholds); :func:`splink_comparisons`
turns it into Splink comparisons for any engine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from linkage.comparisons import (
    AndLevel,
    DiceLevel,
    EncodedComparison,
    LadderLevel,
    OrLevel,
    TokenMatchLevel,
    ladder_comparison,
    token_comparison,
)
from linkage.errors import SettingsError

UNIQUE_FIELDS = frozenset({"nhs_number", "pnc_id", "phone", "email"})
NAME_FIELDS = frozenset({"given_name", "family_name", "other_names"})
#: Household evidence; "landline" is the phone field through the ``landline`` transform.
LOCATION_FIELDS = frozenset({"postcode", "address", "landline"})
# Thresholds are on a normalised similarity scale: 1 is identical filters, 0 is what two
# unrelated values typically score. Dice of two balanced filters equals the share of bit
# positions on which the unbalanced filters agree, so unrelated values score well above zero,
# and how far above depends on the field (sparser filters agree on more zeros; about 0.65 for
# names and 0.77 for addresses, see docs/linkage.md). The run measures each filter's baseline b
# on random pairs and compares Dice against b + t * (1 - b). By arithmetic, not measurement, one
# typo in a six-letter name (two of seven bigrams changed) lands near t = 0.55. When the schema
# flips bits (``[hardening] flip_probability``), identical values no longer score 1: the scale's
# top becomes the ceiling c of :func:`flip_ceiling` and Dice is compared against b + t * (c - b).
#: Levels for fields compared on their own.
DEFAULT_FIELD_THRESHOLDS = (1.0, 0.7, 0.45, 0.25)
#: Location ladder without a family name: address nearly identical, postcode nearly identical,
#: address similar.
DEFAULT_ADDRESS_THRESHOLDS = (0.8, 0.5)
DEFAULT_POSTCODE_THRESHOLD = 0.9
#: Family-name levels within the household comparison (identical, then similar).
DEFAULT_FAMILY_THRESHOLDS = (1.0, 0.45)
#: Baseline assumed for a filter the run has not measured.
DEFAULT_BASELINE = 0.5


def raw_threshold(normalised: float, baseline: float, ceiling: float = 1.0) -> float:
    """The Dice threshold of a normalised one, given the filter's unrelated-pair baseline and
    what identical values score (1, unless the schema flips bits: see :func:`flip_ceiling`)."""
    if normalised >= 1.0:
        return round(min(ceiling, 1.0), 4)
    return round(baseline + normalised * (ceiling - baseline), 4)


def flipped_similarity(similarity: float, flip_probability: float) -> float:
    """The expected share of agreeing positions, after both filters' bits were flipped with
    ``flip_probability``, of two filters that agreed on ``similarity`` of them before."""
    agree = 1.0 - 2.0 * flip_probability * (1.0 - flip_probability)
    return (1.0 - agree) + similarity * (2.0 * agree - 1.0)


def flip_ceiling(flip_probability: float, stored_bits: int) -> float:
    """The Dice that two filters of one value nearly always reach when each stored bit of both
    was flipped with ``flip_probability`` (``[hardening] flip_probability``).

    A position agrees after flipping with probability ``a = 1 - 2p(1 - p)``, so two filters of
    one value agree on about ``a`` of their positions, with spread ``sqrt(a(1 - a) / L)``; the
    ceiling is three spreads below ``a``. When many positions are expected to disagree
    (``2p(1 - p)L >= 10``: every shipped filter size from p = 0.01) identical values reach it
    with probability at least 99.5%; with fewer the count of disagreements is skewed and the
    probability is lower, down to about 91% (one disagreement among a few hundred bits at p near
    0.0005), and those identical pairs fall to the next level. Both bounds are the exact
    binomial count over 64 to 4,096 bits, checked by ``tests/unit/linkage/test_model.py``. For
    balanced filters Dice is that share of agreeing positions; for unbalanced ones it is an
    approximation that EM's trained levels absorb."""
    if flip_probability <= 0.0:
        return 1.0
    agree = flipped_similarity(1.0, flip_probability)
    return agree - 3.0 * math.sqrt(agree * (1.0 - agree) / stored_bits)


#: How specific a transform leaves its field: ladders put more specific tokens first.
_TRANSFORM_RANK = {
    "none": 0,
    "first": 0,
    "dm_unordered": 1,
    "year": 2,
    "district": 2,
    "sector": 1,
    "initial": 3,
    "metaphone": 3,
    "area": 3,
}


@dataclass(frozen=True, slots=True)
class Agree:
    """The token in ``column`` agrees."""

    column: str


@dataclass(frozen=True, slots=True)
class Similar:
    """The Dice of filter ``column`` is at least ``threshold``."""

    column: str
    threshold: float


@dataclass(frozen=True, slots=True)
class AllOf:
    """Every part holds."""

    parts: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """At least one part holds."""

    parts: tuple[Condition, ...]


Condition = Agree | Similar | AllOf | AnyOf


def condition_columns(condition: Condition) -> tuple[str, ...]:
    """Input columns a condition reads that are NULL when its evidence is missing."""
    if isinstance(condition, Agree):
        return (condition.column,)
    if isinstance(condition, Similar):
        return (f"{condition.column}_n",)
    return tuple(dict.fromkeys(c for p in condition.parts for c in condition_columns(p)))


@dataclass(frozen=True, slots=True)
class Ladder:
    """One comparison: levels in order (a pair falls into the first that holds), then else."""

    name: str
    levels: tuple[Condition, ...]
    #: the record fields the comparison reads
    fields: frozenset[str] = frozenset()

    def columns(self) -> tuple[str, ...]:
        """Input columns that are NULL exactly when the ladder's evidence is missing."""
        return tuple(dict.fromkeys(c for lv in self.levels for c in condition_columns(lv)))

    @property
    def tokens(self) -> tuple[str, ...]:
        """The leading token-agreement levels' columns."""
        out = []
        for level in self.levels:
            if not isinstance(level, Agree):
                break
            out.append(level.column)
        return tuple(out)


@dataclass(frozen=True, slots=True)
class TrainingBlock:
    """An EM training session: pairs agreeing on ``token``; ``skips`` are the comparisons the
    token's fields make untrainable in it (named by a column of each, in the rule's SQL)."""

    token: str
    skips: tuple[str, ...]

    def sql(self) -> str:
        """The blocking rule: the token agrees, and the skipped columns are named (harmlessly:
        a record with the token has those fields, and a NULL column just falls to NULL)."""
        named = "".join(f" AND (l.{c} IS NULL OR l.{c} IS NOT NULL)" for c in self.skips)
        return f"l.{self.token} = r.{self.token}{named}"


@dataclass(frozen=True, slots=True)
class ModelPlan:
    """What the model compares, how candidate pairs are found, and how it is trained."""

    ladders: tuple[Ladder, ...]
    blocking_tokens: tuple[str, ...]
    training_blocks: tuple[TrainingBlock, ...]
    filter_columns: tuple[str, ...] = field(default=())
    name_filter_columns: tuple[str, ...] = field(default=())
    #: 64-bit words per filter column (balanced filters are twice their declared bits).
    filter_words: tuple[tuple[str, int], ...] = field(default=())
    #: the fields each token reads
    token_fields: tuple[tuple[str, frozenset[str]], ...] = field(default=())
    #: each filter's measured unrelated-pair Dice the thresholds were set from
    baselines: tuple[tuple[str, float], ...] = field(default=())
    #: the schema's ``[hardening] flip_probability`` (0: filters are not flipped)
    flip_probability: float = 0.0

    def words(self, column: str) -> int:
        """The length of filter ``column`` in 64-bit words."""
        for name, words in self.filter_words:
            if name == column:
                return words
        raise SettingsError(f"{column} is not a filter of this plan")


def _refs(token: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, transform) of each input; a landline counts as the field "landline"."""
    out = []
    for ref in token["inputs"]:
        name, _, transform = str(ref).partition(":")
        out.append(("landline" if transform == "landline" else name, transform or "none"))
    return out


def _rank(token: Mapping[str, Any]) -> tuple[int, str]:
    """Less specific tokens rank higher: transforms lose detail, reordering adds one step."""
    loss = sum(_TRANSFORM_RANK.get(t, 3) for _, t in _refs(token))
    return loss + (1 if token.get("unordered") else 0), str(token["name"])


def _filter_field(f: Mapping[str, Any]) -> str:
    return str(f["input"]).partition(":")[0]


def plan_from_schema(
    definition: Mapping[str, Any],
    *,
    field_thresholds: Sequence[float] = DEFAULT_FIELD_THRESHOLDS,
    address_thresholds: Sequence[float] = DEFAULT_ADDRESS_THRESHOLDS,
    postcode_threshold: float = DEFAULT_POSTCODE_THRESHOLD,
    family_thresholds: Sequence[float] = DEFAULT_FAMILY_THRESHOLDS,
    baselines: Mapping[str, float] | None = None,
) -> ModelPlan:
    """The model plan for an encoding schema definition (the ``schema.definition`` metadata).

    Thresholds are normalised (see :func:`raw_threshold`); ``baselines`` gives each filter
    column's unrelated-pair Dice (:data:`DEFAULT_BASELINE` where missing).
    """
    base = dict(baselines or {})
    tokens = list(definition.get("tokens", []))
    filters = list(definition.get("filters", []))
    hardening = definition.get("hardening", {})
    balanced = bool(hardening.get("balance", False))
    flip = float(hardening.get("flip_probability", 0.0))
    stored_bits = {f"bf_{f['name']}": int(f["bits"]) * (2 if balanced else 1) for f in filters}

    def sim(column: str, t: float) -> Similar:
        ceiling = flip_ceiling(flip, stored_bits[column])
        return Similar(column, raw_threshold(t, base.get(column, DEFAULT_BASELINE), ceiling))

    if not tokens and not filters:
        raise SettingsError("the encoding schema computes nothing to compare")
    extra_unique = {
        str(e["name"]) for e in definition.get("extra_fields", []) if e.get("unique", False)
    }
    unique_fields = UNIQUE_FIELDS | extra_unique
    filtered = {_filter_field(f) for f in filters}
    token_fields = {f"tok_{t['name']}": frozenset(f for f, _ in _refs(t)) for t in tokens}
    by_field = {_filter_field(f): f"bf_{f['name']}" for f in filters}

    ladders: list[Ladder] = []
    # unique identifiers without a filter: one token comparison each
    covered = set(filtered)
    for t in tokens:
        column = f"tok_{t['name']}"
        fields = token_fields[column]
        if len(fields) == 1 and fields <= unique_fields and not fields <= filtered:
            ladders.append(Ladder(str(t["name"]), (Agree(column),), fields))
            covered |= fields
    # tokens carrying evidence nothing else carries, grouped by what they are about
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for t in sorted(tokens, key=_rank):
        fields = token_fields[f"tok_{t['name']}"]
        if fields <= covered:
            continue
        if "sex" in fields and len(fields - {"sex"}) == 1 and fields - {"sex"} <= filtered:
            # the field with sex (date of birth and sex): tops that field's own ladder
            group = f"with:{next(iter(fields - {'sex'}))}"
        elif fields & LOCATION_FIELDS:
            group = "location"
        elif "phone" in fields:
            group = "phone_with"
        elif "date_of_birth" in fields and fields & NAME_FIELDS:
            group = "name_dob"
        else:
            group = str(t["name"])
        groups.setdefault(group, []).append(t)

    def agree_levels(group: str) -> tuple[tuple[Condition, ...], frozenset[str]]:
        members = groups.pop(group, [])
        columns = tuple(f"tok_{t['name']}" for t in members)
        fields = frozenset().union(*(token_fields[c] for c in columns))
        return tuple(Agree(c) for c in columns), fields

    levels, fields = agree_levels("name_dob")
    if levels:
        ladders.append(Ladder("name_dob", levels, fields))
    # where the person lives, with the family name when it is a filter: see household_ladder
    place, place_fields = agree_levels("location")
    address, postcode = by_field.get("address"), by_field.get("postcode")
    family = by_field.get("family_name")
    household = family is not None and (address is not None or postcode is not None)
    if household:
        assert family is not None
        ladders.append(
            household_ladder(
                place,
                family_levels=[sim(family, t) for t in sorted(family_thresholds, reverse=True)],
                same_address=sim(address, min(address_thresholds)) if address else None,
                same_postcode=sim(postcode, postcode_threshold) if postcode else None,
                fields=place_fields | {"family_name"} | _present(address, postcode),
            )
        )
    elif place or address or postcode:
        dice: list[Condition] = []
        address_levels = sorted(address_thresholds, reverse=True)
        if address:
            dice.append(sim(address, address_levels[0]))
        if postcode:
            dice.append(sim(postcode, postcode_threshold))
        if address:
            dice += [sim(address, t) for t in address_levels[1:]]
        ladders.append(
            Ladder("location", (*place, *dice), place_fields | _present(address, postcode))
        )
    for group in [g for g in groups if not g.startswith("with:")]:
        levels, fields = agree_levels(group)
        ladders.append(Ladder(group, levels, fields))
    # every other filter: one Dice comparison per field
    thresholds = sorted(field_thresholds, reverse=True)
    for f in filters:
        name = _filter_field(f)
        if name in LOCATION_FIELDS or (household and name == "family_name"):
            continue
        column = f"bf_{f['name']}"
        top, top_fields = agree_levels(f"with:{name}")
        ladders.append(
            Ladder(
                str(f["name"]),
                (*top, *(sim(column, t) for t in thresholds)),
                frozenset({name}) | top_fields,
            )
        )
    return ModelPlan(
        ladders=tuple(ladders),
        blocking_tokens=tuple(token_fields),
        training_blocks=_training_blocks(tokens, token_fields, ladders),
        filter_columns=tuple(f"bf_{f['name']}" for f in filters),
        name_filter_columns=tuple(
            f"bf_{f['name']}" for f in filters if _filter_field(f) in NAME_FIELDS
        ),
        filter_words=tuple((column, bits // 64) for column, bits in stored_bits.items()),
        token_fields=tuple(token_fields.items()),
        baselines=tuple(sorted(base.items())),
        flip_probability=flip,
    )


def _present(address: str | None, postcode: str | None) -> frozenset[str]:
    return frozenset(
        name for name, column in (("address", address), ("postcode", postcode)) if column
    )


def household_ladder(
    place_tokens: Sequence[Condition],
    *,
    family_levels: Sequence[Similar],
    same_address: Similar | None,
    same_postcode: Similar | None,
    fields: frozenset[str],
) -> Ladder:
    """Family name and place of residence as one comparison.

    Members of a household share family name, address, postcode and landline, so a model that
    multiplies the evidence of each (as if they were independent) sees two siblings, or a parent
    and a child of the same name, as the same person. Here the pair's family name and place are
    compared jointly, and EM learns how often non-matches agree on both (a household) apart from
    how often they agree on either. "Same place" is any of: an agreeing landline or other
    location token, a similar address, a similar postcode.
    """
    same_place_parts: list[Condition] = list(place_tokens)
    same_place_parts += [c for c in (same_address, same_postcode) if c is not None]
    same_place: Condition = (
        same_place_parts[0] if len(same_place_parts) == 1 else AnyOf(tuple(same_place_parts))
    )
    levels: list[Condition] = [AllOf((f, same_place)) for f in family_levels]
    levels.append(same_place)
    levels += family_levels
    return Ladder("household", tuple(levels), fields)


def _training_blocks(
    tokens: Sequence[Mapping[str, Any]],
    token_fields: Mapping[str, frozenset[str]],
    ladders: Sequence[Ladder],
) -> tuple[TrainingBlock, ...]:
    """The most specific name-and-date-of-birth token, then every token with no field in common
    with it (the run trains on the one with most agreeing pairs): every comparison is trained."""

    def block(token: str) -> TrainingBlock:
        # every comparison that reads one of the token's fields, or the token itself, is named
        # (by its first column) and so left out of the session
        fields = token_fields[token]
        skips = tuple(
            ladder.columns()[0]
            for ladder in ladders
            if ladder.fields & fields or token in ladder.columns()
        )
        return TrainingBlock(token, skips)

    names = [
        t
        for t in sorted(
            tokens,
            key=lambda t: (_rank(t)[0], -len(token_fields[f"tok_{t['name']}"]), str(t["name"])),
        )
        if "date_of_birth" in token_fields[f"tok_{t['name']}"]
        and token_fields[f"tok_{t['name']}"] & NAME_FIELDS
    ]
    first = f"tok_{names[0]['name']}" if names else (f"tok_{tokens[0]['name']}" if tokens else None)
    if first is None:
        return ()
    used = token_fields[first]
    disjoint = [
        f"tok_{t['name']}"
        for t in sorted(tokens, key=lambda t: (len(token_fields[f"tok_{t['name']}"]), _rank(t)))
        if not token_fields[f"tok_{t['name']}"] & used
    ]
    return tuple(block(t) for t in (first, *disjoint))


def _splink_level(plan: ModelPlan, condition: Condition) -> LadderLevel:
    if isinstance(condition, Agree):
        return TokenMatchLevel(condition.column)
    if isinstance(condition, Similar):
        return DiceLevel(condition.column, condition.threshold, plan.words(condition.column))
    parts = [_splink_level(plan, p) for p in condition.parts]
    return AndLevel(*parts) if isinstance(condition, AllOf) else OrLevel(*parts)


def splink_comparisons(plan: ModelPlan) -> list[EncodedComparison]:
    """The plan as Splink comparisons (engine-neutral: SQL is made per dialect by Splink)."""
    out: list[EncodedComparison] = []
    for ladder in plan.ladders:
        if len(ladder.levels) == 1 and isinstance(ladder.levels[0], Agree):
            out.append(token_comparison(ladder.levels[0].column, name=ladder.name))
        else:
            out.append(
                ladder_comparison(ladder.name, [_splink_level(plan, lv) for lv in ladder.levels])
            )
    return out
