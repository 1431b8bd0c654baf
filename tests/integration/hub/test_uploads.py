"""Uploads on a real hub (SQLite and PostgreSQL): a multi-chunk upload of a real encoded
file, resumable and idempotent; every kind of bad input refused with nothing left behind;
erasure by crypto-shredding; and no plaintext identifier anywhere in the hub's state."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.cli import main as connector
from tests.conftest import encode_synthetic_ae
from tests.integration.hub.conftest import RunningHub, _init, start_hub, stop_hub

CHUNK = 16_384
AGENCY = "ae-cardiff"


@dataclass(frozen=True)
class Encoded:
    path: Path
    exports: Path
    meta: dict[str, Any]


@pytest.fixture(scope="module")
def encoded(tmp_path_factory: pytest.TempPathFactory) -> Encoded:
    root = tmp_path_factory.mktemp("upload-data")
    out = encode_synthetic_ae(root, 400, 9)
    meta = json.loads(pq.read_metadata(out).metadata[b"pprl"])
    assert out.stat().st_size > 2 * CHUNK
    return Encoded(out, root / "exports", meta)


@pytest.fixture
def project_hub(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path, encoded: Encoded
) -> Iterator[tuple[RunningHub, str]]:
    """A hub with small chunks (or the chunk size a test asks for with
    ``@pytest.mark.parametrize("project_hub", [SIZE], indirect=True)``), two agencies, an
    agreement in force and a project; yields the hub and an A&E data officer's token."""
    chunk = getattr(request, "param", CHUNK)
    data_dir = tmp_path / "hub"
    made = _init(data_dir, database_url if "://" in database_url else "sqlite")
    config = data_dir / "hub.toml"
    config.write_text(
        config.read_text().replace("max_chunk_bytes = 8388608", f"max_chunk_bytes = {chunk}")
    )
    hub = start_hub(data_dir, made)
    try:
        admin = hub.admin_token
        for agency in (AGENCY, "police-sw"):
            assert hub.call("POST", "/v1/agencies", admin, {"id": agency, "name": agency})[0] == 201
        fields = [a["name"] for a in encoded.meta["attributes"]]
        dsa = {
            "id": "dsa-1",
            "title": "A&E and police",
            "purpose": "violence reduction",
            "status": "active",
            "parties": [
                {"agency": AGENCY, "lawful_basis": "UK GDPR 6(1)(e)", "fields": fields},
                {"agency": "police-sw", "lawful_basis": "DPA 2018 Part 3", "fields": []},
            ],
            "retention_days": 365,
            "review_date": "2099-01-01",
        }
        assert hub.call("POST", "/v1/agreements", admin, dsa)[0] == 201
        project = {
            "id": "proj-1",
            "name": "Project 1",
            "agreement": "dsa-1",
            "schema_id": encoded.meta["schema"]["id"],
            "schema_hash": encoded.meta["schema"]["hash"],
            "key_check_value": encoded.meta["key_check_value"],
        }
        assert hub.call("POST", "/v1/projects", admin, project)[0] == 201
        officer = hub.token_for("Dee Officer", ["data_officer"], agency=AGENCY)
        yield hub, officer
    finally:
        stop_hub(hub)


def _put(
    hub: RunningHub, token: str, session: str, index: int, data: bytes, digest: str | None = None
) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{hub.url}/v1/uploads/{session}/chunks/{index}", data=data, method="PUT"
    )
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("X-Chunk-SHA256", digest or hashlib.sha256(data).hexdigest())
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _upload(hub: RunningHub, token: str, data: bytes) -> tuple[str, int, Any]:
    status, session = hub.call(
        "POST", "/v1/projects/proj-1/uploads", token,
        {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()},
    )  # fmt: skip
    assert status == 201, session
    size = session["chunk_size"]
    for i in range(session["chunk_count"]):
        status, _ = _put(hub, token, session["id"], i, data[i * size : (i + 1) * size])
        assert status == 200
    status, body = hub.call("POST", f"/v1/uploads/{session['id']}/commit", token)
    return session["id"], status, body


def _dataset_files(hub: RunningHub) -> list[Path]:
    return sorted((hub.data_dir / "datasets").iterdir())


def test_chunked_upload_commit_is_idempotent_and_encrypted(
    project_hub: tuple[RunningHub, str], encoded: Encoded
) -> None:
    hub, officer = project_hub
    data = encoded.path.read_bytes()
    status, session = hub.call(
        "POST", "/v1/projects/proj-1/uploads", officer,
        {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()},
    )  # fmt: skip
    assert status == 201 and session["chunk_count"] == -(-len(data) // CHUNK)
    sid = session["id"]
    for i in reversed(range(session["chunk_count"])):  # any order, and one chunk sent twice
        assert _put(hub, officer, sid, i, data[i * CHUNK : (i + 1) * CHUNK])[0] == 200
    status, again = _put(hub, officer, sid, 0, data[:CHUNK])
    assert status == 200 and again["stored"] is False
    assert _put(hub, officer, sid, 0, b"x" * CHUNK)[0] == 409
    status, state = hub.call("GET", f"/v1/uploads/{sid}", officer)
    assert state["received"] == list(range(session["chunk_count"]))
    status, version = hub.call("POST", f"/v1/uploads/{sid}/commit", officer)
    assert status == 201 and version["rows"] == encoded.meta["row_count"]
    assert isinstance(version["audit_entry"], int)
    status, same = hub.call("POST", f"/v1/uploads/{sid}/commit", officer)
    assert status == 200 and same["id"] == version["id"]
    files = _dataset_files(hub)
    assert len(files) == 1 and not files[0].read_bytes().startswith(b"PAR1")
    assert not (hub.data_dir / "uploads" / sid).exists()
    status, listed = hub.call("GET", "/v1/projects/proj-1/datasets", officer)
    assert [d["id"] for d in listed["datasets"]] == [version["id"]]


def _variant(encoded: Encoded, tmp: Path, table_fn: Any = None, meta_fn: Any = None) -> bytes:
    table = pq.read_table(encoded.path)
    meta = dict(encoded.meta)
    if table_fn:
        table = table_fn(table)
    if meta_fn:
        meta_fn(meta)
    out = tmp / "variant.parquet"
    with pq.ParquetWriter(out, table.schema) as writer:
        writer.add_key_value_metadata({"pprl": json.dumps(meta)})
        writer.write_table(table)
    return out.read_bytes()


@pytest.mark.parametrize(
    "case",
    ["truncated", "key_check_value", "schema_hash", "plaintext_column"],
)
def test_bad_files_are_refused_and_leave_nothing(
    project_hub: tuple[RunningHub, str], encoded: Encoded, tmp_path: Path, case: str
) -> None:
    hub, officer = project_hub
    if case == "truncated":
        data = encoded.path.read_bytes()[: -3 * CHUNK // 2]
    elif case == "plaintext_column":
        data = _variant(
            encoded,
            tmp_path,
            table_fn=lambda t: t.append_column("surname", pa.array(["X"] * t.num_rows)),
        )
    else:
        data = _variant(
            encoded,
            tmp_path,
            meta_fn=lambda m: m.update(
                {case: "0" * 16}
                if case == "key_check_value"
                else {"schema": {**m["schema"], "hash": "0" * 64}}
            ),
        )
    sid, status, err = _upload(hub, officer, data)
    assert status == 422, err
    assert _dataset_files(hub) == []
    assert not (hub.data_dir / "uploads" / sid).exists()
    assert list((hub.data_dir / "tmp").iterdir()) == []
    status, listed = hub.call("GET", "/v1/projects/proj-1/datasets", officer)
    assert listed["datasets"] == []
    status, state = hub.call("GET", f"/v1/uploads/{sid}", officer)
    assert state["status"] == "rejected"


def test_bad_requests_get_clear_errors(project_hub: tuple[RunningHub, str]) -> None:
    hub, officer = project_hub
    assert hub.call("POST", "/v1/projects/proj-1/uploads", officer, raw=b"{nope")[0] == 400
    assert hub.call("POST", "/v1/projects/proj-1/uploads", officer, {"size": 10})[0] == 400
    assert (
        hub.call(
            "POST", "/v1/projects/proj-1/uploads", officer, {"size": 10, "sha256": "0" * 64, "x": 1}
        )[0]
        == 400
    )
    assert (
        hub.call(
            "POST", "/v1/projects/proj-1/uploads", officer, {"size": 2**50, "sha256": "0" * 64}
        )[0]
        == 413
    )
    _, session = hub.call(
        "POST", "/v1/projects/proj-1/uploads", officer, {"size": 10, "sha256": "0" * 64}
    )
    sid = session["id"]
    assert _put(hub, officer, sid, 0, b"0123456789", "f" * 64)[0] == 400  # wrong hash
    assert _put(hub, officer, sid, 0, b"012345678")[0] == 400  # wrong length
    assert _put(hub, officer, sid, 5, b"0123456789")[0] == 400  # no such chunk
    assert hub.call("POST", f"/v1/uploads/{sid}/commit", officer)[0] == 409  # incomplete
    analyst = hub.token_for("Ana", ["analyst"])
    assert (
        hub.call("POST", "/v1/projects/proj-1/uploads", analyst, {"size": 10, "sha256": "0" * 64})[
            0
        ]
        == 403
    )
    police = hub.token_for("Pat", ["data_officer"], agency="police-sw")
    assert hub.call("GET", f"/v1/uploads/{sid}", police)[0] == 404  # not theirs


def test_erasure_crypto_shreds(project_hub: tuple[RunningHub, str], encoded: Encoded) -> None:
    hub, officer = project_hub
    _, status, version = _upload(hub, officer, encoded.path.read_bytes())
    assert status == 201
    police = hub.token_for("Pat", ["data_officer"], agency="police-sw")
    assert hub.call("DELETE", f"/v1/datasets/{version['id']}", police)[0] == 404
    status, body = hub.call("DELETE", f"/v1/datasets/{version['id']}", officer)
    assert status == 200 and body["erased"]
    assert _dataset_files(hub) == []
    assert hub.call("DELETE", f"/v1/datasets/{version['id']}", officer)[0] == 410
    status, listed = hub.call("GET", "/v1/projects/proj-1/datasets", officer)
    assert listed["datasets"][0]["erased"] is True


def _plaintext_identifiers(exports: Path) -> set[bytes]:
    values: set[bytes] = set()
    with (exports / "ae_attendances.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            for column in (
                "forename",
                "surname",
                "nhs_no",
                "postcode",
                "address_line",
                "tel",
                "email",
                "dob",
            ):
                value = (row.get(column) or "").strip()
                if len(value) >= 7:
                    values.add(value.encode())
    return values


def test_hub_state_holds_no_plaintext_identifier(
    project_hub: tuple[RunningHub, str], encoded: Encoded
) -> None:
    """After an upload, nothing in the hub's data directory (database, dataset files,
    logs; the key files aside) holds any of the export's identifiers (values of 7 or more
    characters, as raw bytes), and nothing at all holds the project's linkage secret in any
    spelling."""
    import base64

    hub, officer = project_hub
    _, status, _ = _upload(hub, officer, encoded.path.read_bytes())
    assert status == 201
    identifiers = _plaintext_identifiers(encoded.exports)
    assert len(identifiers) > 100
    files = [p for p in hub.data_dir.rglob("*") if p.is_file()]
    data = [p.read_bytes() for p in files if "keys" not in p.relative_to(hub.data_dir).parts]
    assert [v for v in identifiers if any(v in blob for blob in data)] == []
    key = json.loads((encoded.path.parent / "project.key").read_text())
    secret = base64.b64decode(key["secret"])
    spellings = [secret, secret.hex().encode(), key["secret"].encode()]
    assert not any(s in p.read_bytes() for p in files for s in spellings)


def test_connector_upload_resumes_after_an_interruption(
    project_hub: tuple[RunningHub, str], encoded: Encoded, tmp_path: Path
) -> None:
    """`connector upload` sends the file in chunks; interrupted after two chunks, running
    it again sends only the rest and commits one dataset version."""
    from connectors.upload import HubClient, UploadError, upload

    hub, officer = project_hub
    file = tmp_path / "ae.parquet"
    file.write_bytes(encoded.path.read_bytes())

    class Flaky(HubClient):
        puts = 0

        def call(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
            if method == "PUT":
                Flaky.puts += 1
                if Flaky.puts > 2:
                    raise UploadError("network went away")
            return super().call(method, path, **kw)

    with pytest.raises(UploadError, match="network went away"):
        upload(Flaky(hub.url, officer), "proj-1", file)
    assert file.with_name("ae.parquet.upload.json").exists()
    result = upload(HubClient(hub.url, officer), "proj-1", file)
    assert result.chunks_total == -(-file.stat().st_size // CHUNK)
    assert result.chunks_sent == result.chunks_total - 2
    assert not file.with_name("ae.parquet.upload.json").exists()
    _, listed = hub.call("GET", "/v1/projects/proj-1/datasets", officer)
    assert [d["id"] for d in listed["datasets"]] == [result.dataset_version]

    token = tmp_path / "token"
    token.write_text(officer)
    code = connector(
        ["upload", "--hub", hub.url, "--token-file", str(token), "--project", "proj-1", str(file)]
    )
    assert code == 0
    _, listed = hub.call("GET", "/v1/projects/proj-1/datasets", officer)
    assert [d["version"] for d in listed["datasets"]] == [1, 2]


def test_connector_upload_reports_refusals_and_unreachable_hubs(
    project_hub: tuple[RunningHub, str], encoded: Encoded, tmp_path: Path
) -> None:
    from connectors.upload import HubClient, UploadError, upload

    hub, officer = project_hub
    with pytest.raises(UploadError, match="refused the upload \\(404\\)"):
        upload(HubClient(hub.url, officer), "no-such-project", encoded.path)
    sleeps: list[float] = []
    client = HubClient("http://127.0.0.1:9", officer, retries=3, sleep=sleeps.append)
    with pytest.raises(UploadError, match="cannot reach the hub"):
        upload(client, "proj-1", encoded.path)
    assert len(sleeps) == 3 and sleeps[0] < sleeps[-1]


def _verify_log(hub: RunningHub) -> None:
    from audit.db import open_engine
    from audit.logcheck import check_log
    from audit.note import parse_vkey
    from audit.sources import DatabaseSource
    from hub.config import load_config

    key = parse_vkey(hub.log_vkey)
    engine = open_engine(load_config(hub.data_dir).database_url())
    try:
        report = check_log(DatabaseSource(engine), key, key.name)
    finally:
        engine.dispose()
    assert report.ok, report.problem


def test_sigkill_during_commit_and_audit_appends(
    project_hub: tuple[RunningHub, str], encoded: Encoded, tmp_path: Path
) -> None:
    """The hub is killed with SIGKILL while it commits uploads and appends audit entries;
    after each restart no partial dataset is visible, every dataset version listed has a
    file that decrypts to the uploaded bytes, the interrupted upload resumes, every
    acknowledged request's audit entry is there and the log verifies."""
    import random
    import signal
    import threading

    from connectors.upload import HubClient, UploadError, upload

    hub, officer = project_hub
    made = {"admin": {"token": hub.admin_token}, "log_public_key": hub.log_vkey}
    rng = random.Random(7)
    data = encoded.path.read_bytes()
    for round_ in range(4):
        file = tmp_path / f"round{round_}.parquet"
        file.write_bytes(data)
        acknowledged = 0

        def hammer(url: str) -> None:
            nonlocal acknowledged
            while True:
                try:
                    req = urllib.request.Request(
                        url + "/v1/me", headers={"Authorization": f"Bearer {officer}"}
                    )
                    with urllib.request.urlopen(req, timeout=5) as response:
                        if response.status == 200:
                            acknowledged += 1
                except OSError:
                    return

        threads = [threading.Thread(target=hammer, args=(hub.url,)) for _ in range(4)]
        for t in threads:
            t.start()
        killer = threading.Timer(rng.uniform(0.05, 0.6), hub.process.send_signal, (signal.SIGKILL,))
        killer.start()
        with contextlib.suppress(UploadError):  # the kill may interrupt it: that is the test
            upload(HubClient(hub.url, officer, retries=0), "proj-1", file)
        killer.join()
        hub.process.wait()
        for t in threads:
            t.join()
        entries_before = _audit_count(hub)
        hub = start_hub(hub.data_dir, made)
        try:
            assert _audit_count(hub) >= entries_before >= acknowledged
            _verify_log(hub)
            result = upload(HubClient(hub.url, officer), "proj-1", file)  # resumes or starts over
            assert result.rows == encoded.meta["row_count"]
            _, listed = hub.call("GET", "/v1/projects/proj-1/datasets", officer)
            assert {p.name.removesuffix(".pprl-enc") for p in _dataset_files(hub)} == {
                d["id"] for d in listed["datasets"]
            }
            assert _decrypted_digests(hub) == {hashlib.sha256(data).hexdigest()}
        finally:
            if round_ == 3:
                stop_hub(hub)
    _verify_log(hub)


def _decrypted_digests(hub: RunningHub) -> set[str]:
    """SHA-256 of every stored dataset version's file, decrypted with its wrapped key."""
    from sqlalchemy import select

    from audit.db import open_engine
    from hub.cipher import MasterKey
    from hub.config import load_config
    from hub.datastore import DataStore
    from hub.store.schema import dataset_versions

    store = DataStore(hub.data_dir, MasterKey.load(hub.data_dir / "keys" / "master.key"))
    engine = open_engine(load_config(hub.data_dir).database_url())
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(dataset_versions.c.id, dataset_versions.c.wrapped_key)).all()
    finally:
        engine.dispose()
    digests = set()
    for version, wrapped in rows:
        key = store.data_key(bytes(wrapped), version)
        plain = cipher_open(key, store.dataset_path(version), version)
        digests.add(hashlib.sha256(plain).hexdigest())
    return digests


def cipher_open(key: bytes, path: Path, version: str) -> bytes:
    from hub.cipher import open_decrypted

    return open_decrypted(key, path, context=version.encode())


def _audit_count(hub: RunningHub) -> int:
    from audit import store as audit_store
    from audit.db import open_engine
    from hub.config import load_config

    engine = open_engine(load_config(hub.data_dir).database_url())
    try:
        with engine.connect() as conn:
            return audit_store.entry_count(conn)
    finally:
        engine.dispose()


@pytest.mark.parametrize("project_hub", [4 << 20], indirect=True)
def test_large_chunks_arrive_whole(project_hub: tuple[RunningHub, str]) -> None:
    """A 4 MiB chunk reaches the hub in many network reads; it is read whole (regression:
    a single read returned only what had arrived)."""
    hub, officer = project_hub
    data = os.urandom(5 << 20)
    status, session = hub.call(
        "POST", "/v1/projects/proj-1/uploads", officer,
        {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()},
    )  # fmt: skip
    assert status == 201 and session["chunk_size"] == 4 << 20
    size = session["chunk_size"]
    for i in range(session["chunk_count"]):
        status, body = _put(hub, officer, session["id"], i, data[i * size : (i + 1) * size])
        assert status == 200, body
    status, err = hub.call("POST", f"/v1/uploads/{session['id']}/commit", officer)
    assert status == 422 and "Parquet" in err["error"]["message"]
