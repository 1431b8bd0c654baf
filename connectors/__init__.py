"""Agency-side connector: normalise, check and pseudonymise exports at source.

Public surface: the pipeline entry point and the objects a caller needs to build a job.
"""

from connectors.encoding_schema import EncodingSchema, load_encoding_schema
from connectors.errors import ConnectorError
from connectors.keys import Key, generate_key, key_check_value, read_key, write_key
from connectors.mapping import ColumnMapping, load_mapping
from connectors.pipeline import PseudonymiseJob, pseudonymise, read_metadata

__all__ = [
    "ColumnMapping",
    "ConnectorError",
    "EncodingSchema",
    "Key",
    "PseudonymiseJob",
    "generate_key",
    "key_check_value",
    "load_encoding_schema",
    "load_mapping",
    "pseudonymise",
    "read_key",
    "read_metadata",
    "write_key",
]
