"""The connector's one error root and its subclasses.

Every failure a data officer can cause (a bad mapping, a bad key, a malformed input file) is a
:class:`ConnectorError` whose message says what is wrong and where, without echoing identifier
values. The CLI prints the message and exits non-zero.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Root of every error the connector reports to its user."""

    exit_code = 2


class MappingError(ConnectorError):
    """The column mapping file is invalid or does not fit the input."""


class SchemaError(ConnectorError):
    """The encoding schema file is invalid."""


class KeyFileError(ConnectorError):
    """A key file is missing, malformed, of the wrong kind or too widely readable."""


class InputFileError(ConnectorError):
    """The input export cannot be read as the declared format."""


class OutputError(ConnectorError):
    """The output cannot be written."""


class FeedbackError(ConnectorError):
    """A feedback file is malformed, of an unsupported version, or does not fit the export."""
