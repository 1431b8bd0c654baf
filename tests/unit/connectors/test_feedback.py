"""Feedback files: schema, validation in the builder, atomic writing, and refusal on reading."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.encode import PSEUDONYM_BYTES
from connectors.errors import ConnectorError, FeedbackError
from connectors.feedback import (
    FEEDBACK_FORMAT,
    FEEDBACK_FORMAT_VERSION,
    Feedback,
    FeedbackRow,
    feedback_bytes,
    feedback_schema,
    feedback_table,
    read_feedback,
    write_feedback,
)
from connectors.pipeline import METADATA_KEY

META: dict[str, str] = {
    "agency": "ae-cardiff",
    "project": "cardiff-2026",
    "run": "run-0001",
    "created": "2026-11-22T21:00:00Z",
}
ROWS: list[FeedbackRow] = [
    (b"\x02" * PSEUDONYM_BYTES, "police-south-wales", 1),
    (b"\x01" * PSEUDONYM_BYTES, "police-south-wales", 3),
    (b"\x01" * PSEUDONYM_BYTES, "council-cardiff", 2),
]


def _raw_parquet(path: Path, table: pa.Table, meta: dict[str, Any] | None) -> Path:
    """A Parquet file holding ``table`` and, unless None, ``meta`` as its pprl metadata."""
    if meta is not None:
        table = table.replace_schema_metadata({METADATA_KEY: json.dumps(meta)})
    pq.write_table(table, path)
    return path


def _good_arrays() -> dict[str, pa.Array]:
    return {
        "record_pseudonym": pa.array([r[0] for r in ROWS], pa.binary(PSEUDONYM_BYTES)),
        "linked_agency": pa.array([r[1] for r in ROWS], pa.string()),
        "linked_records": pa.array([r[2] for r in ROWS], pa.int32()),
    }


def _meta_doc(**change: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"format": FEEDBACK_FORMAT, "format_version": 1, **META}
    doc.update(change)
    return {k: v for k, v in doc.items() if v is not None}


def test_schema_columns_types_and_canonical_metadata() -> None:
    """The schema has the three typed, non-null columns and canonical JSON metadata."""
    schema = feedback_schema(**META)
    assert schema.names == ["record_pseudonym", "linked_agency", "linked_records"]
    assert schema.field("record_pseudonym").type == pa.binary(PSEUDONYM_BYTES)
    assert schema.field("linked_agency").type == pa.string()
    assert schema.field("linked_records").type == pa.int32()
    assert not any(f.nullable for f in schema)
    raw = schema.metadata[METADATA_KEY]
    doc = json.loads(raw)
    assert doc == {"format": FEEDBACK_FORMAT, "format_version": FEEDBACK_FORMAT_VERSION, **META}
    assert raw == json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def test_table_is_sorted_by_pseudonym_then_agency() -> None:
    """The builder sorts rows, so the same links always give the same file."""
    table = feedback_table(ROWS, **META)
    assert table.schema == feedback_schema(**META)
    rows = [tuple(r.values()) for r in table.to_pylist()]
    assert rows == [
        (b"\x01" * 16, "council-cardiff", 2),
        (b"\x01" * 16, "police-south-wales", 3),
        (b"\x02" * 16, "police-south-wales", 1),
    ]
    assert feedback_table(reversed(ROWS), **META).equals(table, check_metadata=True)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        pytest.param([(b"\x01" * 15, "police-x", 1)], "16 bytes", id="short-pseudonym"),
        pytest.param([("01" * 16, "police-x", 1)], "16 bytes", id="hex-not-bytes"),
        pytest.param([(b"\x01" * 16, "ae-cardiff", 1)], "another agency", id="own-agency"),
        pytest.param([(b"\x01" * 16, "Police X", 1)], "not an agency id", id="bad-agency-id"),
        pytest.param([(b"\x01" * 16, None, 1)], "string", id="null-agency"),
        pytest.param([(b"\x01" * 16, "police-x", 0)], ">= 1", id="zero-count"),
        pytest.param([(b"\x01" * 16, "police-x", 2**31)], ">= 1", id="count-over-int32"),
        pytest.param([(b"\x01" * 16, "police-x", True)], ">= 1", id="bool-count"),
        pytest.param([(b"\x01" * 16, "police-x")], "expected", id="two-fields"),
        pytest.param([(b"\x01" * 16, "police-x", 1)] * 2, "repeated", id="repeated-pair"),
    ],
)
def test_builder_refuses_bad_rows(rows: list[Any], message: str) -> None:
    """Each kind of bad row is a FeedbackError naming the problem."""
    with pytest.raises(FeedbackError, match=message):
        feedback_table(rows, **META)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"agency": "AE Cardiff"}, "agency", id="bad-agency"),
        pytest.param({"project": ""}, "project", id="empty-project"),
        pytest.param({"run": "run 1"}, "run", id="run-with-space"),
        pytest.param({"created": "2026-11-22 21:00:00"}, "created", id="created-not-iso"),
        pytest.param({"created": "2026-02-30T21:00:00Z"}, "valid time", id="created-impossible"),
    ],
)
def test_builder_refuses_bad_metadata(change: dict[str, str], message: str) -> None:
    """Metadata is checked once, at the edge, by the builder and the schema alike."""
    with pytest.raises(FeedbackError, match=message):
        feedback_table(ROWS, **{**META, **change})
    with pytest.raises(FeedbackError, match=message):
        feedback_schema(**{**META, **change})


def test_feedback_error_is_a_connector_error() -> None:
    """The CLI maps FeedbackError, like every ConnectorError, to exit code 2."""
    assert issubclass(FeedbackError, ConnectorError)
    assert FeedbackError.exit_code == 2


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    """A written feedback file reads back with the same metadata and table."""
    table = feedback_table(ROWS, **META)
    path = tmp_path / "feedback.parquet"
    write_feedback(table, path)
    back = read_feedback(path)
    assert isinstance(back, Feedback)
    assert back.metadata.agency == "ae-cardiff" and back.metadata.run == "run-0001"
    assert back.metadata.format_version == 1
    assert back.table.equals(table, check_metadata=True)
    assert os.listdir(tmp_path) == ["feedback.parquet"]  # no temporary file left behind


def test_bytes_are_a_readable_feedback_file(tmp_path: Path) -> None:
    """feedback_bytes gives the same file the writer writes (for an HTTP response)."""
    table = feedback_table(ROWS, **META)
    path = tmp_path / "download.parquet"
    path.write_bytes(feedback_bytes(table))
    assert read_feedback(path).table.equals(table, check_metadata=True)


def test_empty_feedback_round_trips(tmp_path: Path) -> None:
    """A run that linked none of the agency's records gives an empty, valid file."""
    path = tmp_path / "none.parquet"
    write_feedback(feedback_table([], **META), path)
    assert read_feedback(path).table.num_rows == 0


def test_writer_refuses_an_unvalidated_table(tmp_path: Path) -> None:
    """The writer checks what it writes: a table without pprl metadata is refused."""
    with pytest.raises(FeedbackError, match="no pprl metadata"):
        write_feedback(pa.table(_good_arrays()), tmp_path / "f.parquet")
    assert not list(tmp_path.iterdir())


def test_writer_into_missing_directory_fails_cleanly(tmp_path: Path) -> None:
    """A destination directory that does not exist is a FeedbackError, not an OSError."""
    with pytest.raises(FeedbackError, match="cannot write"):
        write_feedback(feedback_table(ROWS, **META), tmp_path / "nope" / "f.parquet")


def test_overwrite_is_atomic_replacement(tmp_path: Path) -> None:
    """Writing over an existing feedback file replaces it whole."""
    path = tmp_path / "f.parquet"
    write_feedback(feedback_table(ROWS, **META), path)
    write_feedback(feedback_table(ROWS[:1], **{**META, "run": "run-0002"}), path)
    back = read_feedback(path)
    assert back.metadata.run == "run-0002" and back.table.num_rows == 1


def _truncated(tmp_path: Path) -> Path:
    path = tmp_path / "f.parquet"
    write_feedback(feedback_table(ROWS, **META), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _bit_flipped_footer_length(tmp_path: Path) -> Path:
    path = tmp_path / "f.parquet"
    write_feedback(feedback_table(ROWS, **META), path)
    data = bytearray(path.read_bytes())
    data[-8] ^= 0x40  # footer length, just before the trailing PAR1 magic
    path.write_bytes(bytes(data))
    return path


def _text(tmp_path: Path) -> Path:
    path = tmp_path / "f.parquet"
    path.write_text("record_pseudonym,linked_agency,linked_records\n", encoding="utf-8")
    return path


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "f.parquet"
    path.write_bytes(b"")
    return path


def _raw(meta: dict[str, Any] | None, **arrays: pa.Array | None) -> Callable[[Path], Path]:
    def make(tmp_path: Path) -> Path:
        columns = {**_good_arrays(), **arrays}
        table = pa.table({k: v for k, v in columns.items() if v is not None})
        return _raw_parquet(tmp_path / "f.parquet", table, meta)

    return make


_BAD_FILES: list[Any] = [
    pytest.param(_text, "not a readable Parquet", id="text-file"),
    pytest.param(_empty, "not a readable Parquet", id="empty-file"),
    pytest.param(_truncated, "not a readable Parquet", id="truncated-half"),
    pytest.param(_bit_flipped_footer_length, "Parquet", id="modified-footer-length"),
    pytest.param(_raw(None), "no pprl metadata", id="plain-parquet"),
    pytest.param(
        _raw({"format": "pprl-hub/encoded", "format_version": 1}), "encoded file", id="encoded-file"
    ),
    pytest.param(_raw(_meta_doc(format="pprl-hub/keymap")), "not a pprl", id="keymap-file"),
    pytest.param(_raw(_meta_doc(format_version=2)), "version 2", id="version-2"),
    pytest.param(_raw(_meta_doc(format_version="1")), "version '1'", id="version-as-string"),
    pytest.param(_raw(_meta_doc(format_version=True)), "version True", id="version-as-bool"),
    pytest.param(_raw(_meta_doc(agency=None)), "exactly", id="metadata-without-agency"),
    pytest.param(_raw(_meta_doc(record_ids="yes")), "exactly", id="metadata-extra-key"),
    pytest.param(_raw(_meta_doc(created="yesterday")), "created", id="metadata-bad-created"),
    pytest.param(
        _raw(_meta_doc(), linked_records=pa.array([1, 3, 2], pa.int64())),
        "linked_records is int64",
        id="count-int64",
    ),
    pytest.param(
        _raw(_meta_doc(), record_pseudonym=pa.array([b"\x01" * 16] * 3, pa.binary())),
        "record_pseudonym is binary",
        id="pseudonym-variable-width",
    ),
    pytest.param(
        _raw(_meta_doc(), record_pseudonym=pa.array([b"\x01" * 32] * 3, pa.binary(32))),
        "fixed_size_binary",
        id="pseudonym-32-bytes",
    ),
    pytest.param(
        _raw(_meta_doc(), linked_records=None), "columns must be exactly", id="missing-column"
    ),
    pytest.param(
        _raw(_meta_doc(), record_id=pa.array(["a", "b", "c"])),
        "columns must be exactly",
        id="extra-record-id-column",
    ),
    pytest.param(
        _raw(_meta_doc(), linked_agency=pa.array(["police-x", None, "police-y"])),
        "missing values",
        id="null-agency",
    ),
    pytest.param(
        _raw(_meta_doc(), linked_records=pa.array([1, 0, 2], pa.int32())),
        "at least 1",
        id="zero-count",
    ),
    pytest.param(
        _raw(_meta_doc(), linked_agency=pa.array(["ae-cardiff"] * 3)),
        "another agency",
        id="links-to-itself",
    ),
    pytest.param(
        _raw(
            _meta_doc(),
            record_pseudonym=pa.array([b"\x01" * 16] * 3, pa.binary(16)),
            linked_agency=pa.array(["police-x"] * 3),
        ),
        "repeated",
        id="repeated-pair",
    ),
]


@pytest.mark.parametrize(("make", "message"), _BAD_FILES)
def test_reader_refuses_malformed_files(
    tmp_path: Path, make: Callable[[Path], Path], message: str
) -> None:
    """Anything but a valid v1 feedback file is a FeedbackError saying what is wrong."""
    with pytest.raises(FeedbackError, match=message):
        read_feedback(make(tmp_path))


def test_reader_refuses_missing_file(tmp_path: Path) -> None:
    """A path that is not a file is refused by name."""
    with pytest.raises(FeedbackError, match="no such feedback file"):
        read_feedback(tmp_path / "absent.parquet")
    with pytest.raises(FeedbackError, match="no such feedback file"):
        read_feedback(tmp_path)


def test_reader_accepts_large_string_agencies(tmp_path: Path) -> None:
    """Another writer's large_string agency column is read as the canonical string type."""
    path = _raw(_meta_doc(), linked_agency=pa.array([r[1] for r in ROWS], pa.large_string()))(
        tmp_path
    )
    assert read_feedback(path).table.schema == feedback_schema(**META)


_SLUGS = st.from_regex(r"[a-z0-9][a-z0-9-]{1,20}", fullmatch=True)
_ROWS = st.lists(
    st.tuples(
        st.binary(min_size=PSEUDONYM_BYTES, max_size=PSEUDONYM_BYTES),
        st.sampled_from(["police-south-wales", "council-cardiff", "probation-1"]),
        st.integers(min_value=1, max_value=2**31 - 1),
    ),
    max_size=40,
    unique_by=lambda r: (r[0], r[1]),
)


@settings(max_examples=60, deadline=None)
@given(
    rows=_ROWS,
    project=_SLUGS,
    run=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,30}", fullmatch=True),
    created=st.datetimes(datetime(1970, 1, 1), datetime(2999, 12, 31)).map(
        lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")
    ),
)
def test_round_trip_property(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[FeedbackRow],
    project: str,
    run: str,
    created: str,
) -> None:
    """For any valid rows and metadata, read(write(feedback_table(...))) gives them back."""
    meta = {"agency": "ae-cardiff", "project": project, "run": run, "created": created}
    table = feedback_table(rows, **meta)
    path = tmp_path_factory.getbasetemp() / "property.parquet"
    write_feedback(table, path)
    back = read_feedback(path)
    assert back.table.equals(table, check_metadata=True)
    assert back.metadata.project == project and back.metadata.run == run
    assert back.metadata.created == created
    assert sorted(rows) == sorted(
        (r["record_pseudonym"], r["linked_agency"], r["linked_records"])
        for r in back.table.to_pylist()
    )
