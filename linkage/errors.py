"""The linkage package's one error root and its subclasses.

Messages name columns, settings and shapes, never values: a filter or a token is as sensitive as
the identifiers it encodes.
"""

from __future__ import annotations


class LinkageError(Exception):
    """Root of every error the linkage package raises on purpose."""


class SettingsError(LinkageError):
    """A linkage setting is invalid (a threshold, an LSH scheme, an unsupported engine)."""


class InputMismatchError(LinkageError):
    """Inputs cannot be linked as given: a column of the wrong type or shape, or datasets
    encoded with different schemas or linkage secrets."""
