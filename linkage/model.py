"""The linkage model derived from a project's encoding schema (no hand-written SQL per project).

Fellegi-Sunter multiplies the evidence of its comparisons as if they were independent. Encoded
records break that in known ways, so comparisons are grouped by what evidence they carry, each
kind counted once:

* **unique identifiers** (a token on one unique field: NHS number, PNC id, phone, email): one
  comparison each;
* **name and date of birth**: every token that combines names with the date of birth and nothing
  about where the person lives, as one ladder, most exact first (exact, then with day and month
  swapped or names reversed, then phonetic). Dates of birth separate twins and parent/child pairs
  with the same name, so name evidence without the date never reaches these levels;
* **location**: every token that involves the postcode or address, then the address filter, as
  one ladder: members of one household share surname, address, postcode and landline, so
  location must count once or the model learns "same household" instead of "same person";
* **phone with other fields** (phone + date of birth): one ladder;
* **name filters** (given and family name): one Dice comparison each.

A :class:`ModelPlan` is plain data (column names and thresholds); :func:`splink_comparisons`
turns it into Splink comparisons for any engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from linkage.comparisons import (
    DiceLevel,
    EncodedComparison,
    LadderLevel,
    TokenMatchLevel,
    filter_comparison,
    ladder_comparison,
    token_comparison,
)
from linkage.errors import SettingsError

UNIQUE_FIELDS = frozenset({"nhs_number", "pnc_id", "phone", "email"})
NAME_FIELDS = frozenset({"given_name", "family_name", "other_names"})
LOCATION_FIELDS = frozenset({"postcode", "address"})
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
class Ladder:
    """One comparison: ordered levels, each a token column or a Dice condition on a filter."""

    name: str
    tokens: tuple[str, ...] = ()
    dice: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class ModelPlan:
    """What the model compares and how candidate pairs are found."""

    ladders: tuple[Ladder, ...]
    blocking_tokens: tuple[str, ...]
    training_blocks: tuple[str, ...]
    filter_columns: tuple[str, ...] = field(default=())
    name_filter_columns: tuple[str, ...] = field(default=())


def _refs(token: Mapping[str, Any]) -> list[tuple[str, str]]:
    out = []
    for ref in token["inputs"]:
        name, _, transform = str(ref).partition(":")
        out.append((name, transform or "none"))
    return out


def _rank(token: Mapping[str, Any]) -> tuple[int, str]:
    """Less specific tokens rank higher: transforms lose detail, reordering adds one step."""
    loss = sum(_TRANSFORM_RANK.get(t, 3) for _, t in _refs(token))
    return loss + (1 if token.get("unordered") else 0), str(token["name"])


def plan_from_schema(
    definition: Mapping[str, Any],
    *,
    name_thresholds: Sequence[float] = (0.95, 0.85, 0.7),
    address_thresholds: Sequence[float] = (0.9, 0.75),
) -> ModelPlan:
    """The model plan for an encoding schema definition (the ``schema.definition`` metadata)."""
    tokens = list(definition.get("tokens", []))
    filters = list(definition.get("filters", []))
    if not tokens and not filters:
        raise SettingsError("the encoding schema computes nothing to compare")
    unique: list[str] = []
    name_dob: list[Mapping[str, Any]] = []
    location: list[Mapping[str, Any]] = []
    phone: list[Mapping[str, Any]] = []
    other: list[str] = []
    for token in tokens:
        fields = {f for f, _ in _refs(token)}
        column = f"tok_{token['name']}"
        if len(fields) == 1 and fields <= UNIQUE_FIELDS:
            unique.append(column)
        elif fields & LOCATION_FIELDS:
            location.append(token)
        elif "phone" in fields:
            phone.append(token)
        elif "date_of_birth" in fields and fields & NAME_FIELDS:
            name_dob.append(token)
        else:
            other.append(column)
    ladders = [Ladder(c.removeprefix("tok_"), tokens=(c,)) for c in unique]
    if name_dob:
        ordered = sorted(name_dob, key=_rank)
        ladders.append(Ladder("name_dob", tokens=tuple(f"tok_{t['name']}" for t in ordered)))
    address_filters = [f for f in filters if str(f["input"]).partition(":")[0] == "address"]
    if location or address_filters:
        ordered = sorted(location, key=_rank)
        dice = tuple(
            (f"bf_{f['name']}", t)
            for f in address_filters
            for t in sorted(address_thresholds, reverse=True)
        )
        ladders.append(
            Ladder("location", tokens=tuple(f"tok_{t['name']}" for t in ordered), dice=dice)
        )
    if phone:
        ladders.append(
            Ladder("phone_with", tokens=tuple(f"tok_{t['name']}" for t in sorted(phone, key=_rank)))
        )
    ladders += [Ladder(c.removeprefix("tok_"), tokens=(c,)) for c in other]
    for f in filters:
        if f in address_filters:
            continue
        column = f"bf_{f['name']}"
        ladders.append(
            Ladder(
                str(f["name"]),
                dice=tuple((column, t) for t in sorted(name_thresholds, reverse=True)),
            )
        )
    all_tokens = tuple(f"tok_{t['name']}" for t in tokens)
    training = tuple(
        c for c in (f"tok_{name_dob[0]['name']}" if name_dob else None, *unique[:1]) if c
    )
    return ModelPlan(
        ladders=tuple(ladders),
        blocking_tokens=all_tokens,
        training_blocks=training or all_tokens[:1],
        filter_columns=tuple(f"bf_{f['name']}" for f in filters),
        name_filter_columns=tuple(
            f"bf_{f['name']}" for f in filters if str(f["input"]).partition(":")[0] in NAME_FIELDS
        ),
    )


def splink_comparisons(plan: ModelPlan) -> list[EncodedComparison]:
    """The plan as Splink comparisons (engine-neutral: SQL is made per dialect by Splink)."""
    out: list[EncodedComparison] = []
    for ladder in plan.ladders:
        if len(ladder.tokens) == 1 and not ladder.dice:
            out.append(token_comparison(ladder.tokens[0], name=ladder.name))
        elif not ladder.tokens and len({c for c, _ in ladder.dice}) == 1:
            column = ladder.dice[0][0]
            out.append(filter_comparison(column, [t for _, t in ladder.dice], name=ladder.name))
        else:
            levels: list[LadderLevel] = [TokenMatchLevel(c) for c in ladder.tokens]
            levels += [DiceLevel(c, t) for c, t in ladder.dice]
            out.append(ladder_comparison(ladder.name, levels))
    return out
