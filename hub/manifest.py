"""Signed release manifests, and their offline verification.

Every extract is released with a manifest: the files (SHA-256, rows, bytes), the fields, the
run and model it came from, the threshold, the disclosure actions, the approvals, and the
index of its ``extract-build`` audit entry. The hub signs the manifest with its release key
(an Ed25519 signed note, the same format as the audit log's checkpoints, under the name
``<origin>/releases``) and ships it with the audit entry's canonical bytes and a
``tlog-proof`` bundle proving that entry is in the log.

``verify_release`` checks all of it offline, with only the hub's two public keys:

1. the manifest note's signature (release key);
2. each file's SHA-256, rows are not re-counted (the hash covers the bytes);
3. the files' digest (``files_digest``) against the manifest's ``output_hash`` and against
   the audit entry's ``output_hash``, and the entry names this extract;
4. the bundle: the entry is in the log the log key signs, at the manifest's index.

So a recipient can show that the files they hold are exactly what the hub released and that
the release is on the record auditors and witnesses see.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.bundle import parse_bundle, verify_bundle
from audit.entry import decode, leaf_data
from audit.errors import AuditError
from audit.note import SigningKey, VerifierKey, format_note, open_note, sign_note

__all__ = [
    "MANIFEST_VERSION",
    "ManifestError",
    "Release",
    "files_digest",
    "release_key_name",
    "sign_manifest",
    "verify_release",
]

MANIFEST_VERSION = 1


class ManifestError(Exception):
    """A release that does not verify; the message says which check failed."""


def release_key_name(origin: str) -> str:
    return f"{origin}/releases"


def files_digest(files: Sequence[Mapping[str, Any]]) -> str:
    """SHA-256 over the canonical list of files (name, sha256, rows, bytes), by name."""
    listed = sorted(
        ({k: f[k] for k in ("name", "sha256", "rows", "bytes")} for f in files),
        key=lambda f: str(f["name"]),
    )
    return hashlib.sha256(
        json.dumps(listed, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def sign_manifest(body: Mapping[str, Any], key: SigningKey) -> str:
    """The manifest ``body`` as a signed note (canonical JSON, one line)."""
    text = json.dumps(dict(body), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return format_note(sign_note(text + "\n", key))


@dataclass(frozen=True, slots=True)
class Release:
    """What ``GET /v1/extracts/{id}/manifest`` returns, as it is saved beside the files."""

    manifest: str
    entry: str
    bundle: str

    def to_json(self) -> dict[str, str]:
        return {"manifest": self.manifest, "entry": self.entry, "bundle": self.bundle}

    @classmethod
    def from_json(cls, doc: object) -> Release:
        if not isinstance(doc, dict) or set(doc) != {"manifest", "entry", "bundle"}:
            raise ManifestError("a release document is {manifest, entry, bundle}")
        if not all(isinstance(v, str) for v in doc.values()):
            raise ManifestError("a release document's values are strings")
        return cls(doc["manifest"], doc["entry"], doc["bundle"])


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_release(
    release: Release,
    *,
    release_key: VerifierKey,
    log_key: VerifierKey,
    origin: str,
    files_dir: Path | None = None,
) -> dict[str, Any]:
    """Check a release offline (see the module docstring); the manifest body."""
    if release_key.name != release_key_name(origin):
        raise ManifestError(f"the release key is {release_key.name!r}, not the hub's")
    try:
        note, _ = open_note(release.manifest, [release_key])
    except AuditError as exc:
        raise ManifestError(f"the manifest's signature does not verify: {exc}") from None
    try:
        body = json.loads(note.text)
    except ValueError:
        raise ManifestError("the signed manifest is not JSON") from None
    if not isinstance(body, dict) or body.get("manifest_version") != MANIFEST_VERSION:
        raise ManifestError("not a version 1 release manifest")
    files = body.get("files")
    if not isinstance(files, list) or not files:
        raise ManifestError("the manifest lists no files")
    if files_digest(files) != body.get("output_hash"):
        raise ManifestError("the manifest's output_hash does not match its list of files")
    if files_dir is not None:
        for f in files:
            path = files_dir / str(f["name"])
            if path.name != f["name"] or not path.is_file():
                raise ManifestError(f"{f['name']} is missing from {files_dir}")
            if _sha256_file(path) != f["sha256"]:
                raise ManifestError(f"{f['name']} is not the file the hub released (SHA-256)")
    try:
        entry = decode(release.entry.encode("ascii"))
        bundle = parse_bundle(release.bundle)
    except (AuditError, UnicodeEncodeError) as exc:
        raise ManifestError(f"the audit entry or proof bundle is malformed: {exc}") from None
    if bundle.index != body.get("release_entry") or entry.sequence != bundle.index:
        raise ManifestError("the proof bundle is not for the manifest's release entry")
    if entry.action != "extract-build" or entry.resource != f"extract/{body.get('extract')}":
        raise ManifestError("the audit entry does not record this extract's release")
    if entry.output_hash != body["output_hash"]:
        raise ManifestError("the audit entry records other files than the manifest lists")
    try:
        verify_bundle(bundle, leaf_data(entry), log_key, origin)
    except AuditError as exc:
        raise ManifestError(f"the release entry is not proven in the log: {exc}") from None
    return body
