"""Governed releases from linked data: disclosure control for count tables
(``hub.release.disclosure``) and generalisation of attribute columns
(``hub.release.generalise``). Pure, table-in/table-out: no I/O, database or HTTP."""

from hub.release.disclosure import (
    DisclosureActions,
    DisclosureError,
    DisclosureRules,
    ProtectedTable,
    protect,
)
from hub.release.generalise import FieldRule, GeneralisationError, parse_generalisation
from hub.release.generalise import apply as apply_generalisation

__all__ = [
    "DisclosureActions",
    "DisclosureError",
    "DisclosureRules",
    "FieldRule",
    "GeneralisationError",
    "ProtectedTable",
    "apply_generalisation",
    "parse_generalisation",
    "protect",
]
