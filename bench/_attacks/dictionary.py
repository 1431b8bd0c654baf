"""The dictionary attack of an adversary who also holds the project's linkage secret.

With the secret, the attacker runs the connector's own encoder over its reference population
and looks every token and filter the hub holds up among the results: an exact match names the
value (the token's inputs, the filter's field) without doubt. Expected to succeed; it is here to
show what the secret protects, and why it must never reach the hub.

When the schema flips bits (``[hardening] flip_probability``), the stored filters carry noise
keyed by each agency's record-key secret, which this attacker does not hold, so no filter
matches exactly: filter columns are then left out (no value-level row) rather than reported as
not re-identified, and the record-level result rests on the tokens, which flipping leaves alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bench._attacks.data import Column, HubView, World
from bench._attacks.frequency import ColumnGuess
from connectors.encode import Encoder

Codes = np.ndarray[Any, np.dtype[np.int64]]


def encode_population(view: HubView, world: World) -> dict[str, list[bytes | None]]:
    """Every person's tokens and filters under the stolen secret (``tok_*``, ``bf_*``).

    Two passes: the reference holds a mobile and a landline per person, the schema's phone
    tokens keep one kind each, so the landline token comes from a pass with the landline.
    """
    encoder = Encoder(view.schema, view.stolen_secret, bytes(32))
    fields = view.schema.fields_used()
    ids = [str(i) for i in range(world.people)]
    out: dict[str, list[bytes | None]] = {}
    for phone in ("mobile", "landline"):
        columns = {f: world.person_fields[phone if f == "phone" else f] for f in fields}
        batch = encoder.encode(columns, ids)
        for name, arr in batch.tokens.items():
            if (name == "landline") == (phone == "landline"):
                out[f"tok_{name}"] = arr.to_pylist()
        if phone == "mobile":
            for name, arr in batch.filters.items():
                out[f"bf_{name}"] = arr.to_pylist()
    return out


def attack(
    view: HubView,
    columns: Mapping[str, Column],
    reference: Codes,
    population: Mapping[str, list[bytes | None]],
) -> dict[str, ColumnGuess]:
    """Look the hub's values up among the reference people's encodings."""
    ref = reference.tolist()
    out: dict[str, ColumnGuess] = {}
    flipped = view.schema.hardening.flip_probability > 0
    for name, col in columns.items():
        if flipped and name.startswith("bf_"):
            continue
        encoded = population[name]
        table = {
            encoded[i]: int(col.person_code[i])
            for i in ref
            if encoded[i] is not None and col.person_code[i] >= 0
        }
        if name.startswith("tok_"):
            held, null = view.tokens[name[4:]], view.token_null[name[4:]]
        else:
            held, null = view.filters[name[3:]], view.filter_null[name[3:]]
        guess = np.full(view.records, -1, dtype=np.int64)
        for r in np.flatnonzero(~null).tolist():
            guess[r] = table.get(held[r].tobytes(), -1)
        out[name] = ColumnGuess(guess, guess >= 0)
    return out
