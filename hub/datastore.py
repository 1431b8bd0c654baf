"""The data directory's files: upload chunks and dataset versions, all encrypted at rest.

Layout under the data directory::

    uploads/<session>/<index>.chunk     one received chunk, encrypted with the session's key
    datasets/<version>.pprl-enc         one dataset version, encrypted with its own key
    outputs/<owner>/<name>.pprl-enc     a linkage run's links and entities, an extract's
                                        files: each encrypted with its own key
    scratch/<job>/                      an engine's working files for one job (Spark)
    tmp/                                plaintext only while a commit validates it (0600)

Every file is written to a temporary name, fsynced and renamed, so a crash leaves either the
whole file or nothing under the final name. The data keys are wrapped by the master key and
live in the database (``upload_sessions.wrapped_key``, ``dataset_versions.wrapped_key``);
erasing a dataset version deletes its file and its wrapped key (crypto-shredding: any copy of
the file left in a backup can no longer be decrypted once the database forgets the key).
``sweep`` removes whatever a crash left behind: temporary files, and dataset files that no
committed dataset version names.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hub import cipher
from hub.cipher import MasterKey

__all__ = ["Assembled", "DataStore"]

_ENC = ".pprl-enc"


@dataclass(frozen=True, slots=True)
class Assembled:
    """An upload's chunks decrypted into one plaintext temporary file."""

    path: Path
    size: int
    sha256: str


class DataStore:
    """Encrypted files under one data directory."""

    def __init__(self, root: Path, master: MasterKey) -> None:
        self.root = root
        self.master = master
        for sub in ("uploads", "datasets", "outputs", "scratch", "tmp"):
            (root / sub).mkdir(mode=0o700, exist_ok=True)

    # -- keys -----------------------------------------------------------------------

    def new_wrapped_key(self, context: str) -> bytes:
        return cipher.wrap_data_key(self.master, cipher.new_data_key(), context=context.encode())

    def data_key(self, wrapped: bytes, context: str) -> bytes:
        return cipher.unwrap_data_key(self.master, wrapped, context=context.encode())

    # -- upload chunks ----------------------------------------------------------------

    def chunk_path(self, session: str, index: int) -> Path:
        return self.root / "uploads" / session / f"{index}.chunk"

    def write_chunk(self, session: str, index: int, data: bytes, data_key: bytes) -> None:
        """Store one chunk (replacing any earlier copy of the same index atomically)."""
        folder = self.root / "uploads" / session
        folder.mkdir(mode=0o700, exist_ok=True)
        cipher.encrypt_bytes(
            data_key, data, self.chunk_path(session, index), context=f"{session}/{index}".encode()
        )

    def drop_session(self, session: str) -> None:
        shutil.rmtree(self.root / "uploads" / session, ignore_errors=True)

    @contextmanager
    def assembled(self, session: str, count: int, data_key: bytes) -> Iterator[Assembled]:
        """The session's chunks 0..count-1, decrypted in order into a temporary plaintext
        file that is removed when the block ends."""
        tmp = self.root / "tmp" / f"{session}.assembled"
        digest = hashlib.sha256()
        size = 0
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                for index in range(count):
                    context = f"{session}/{index}".encode()
                    for piece in cipher.iter_decrypted(
                        data_key, self.chunk_path(session, index), context=context
                    ):
                        out.write(piece)
                        digest.update(piece)
                        size += len(piece)
            yield Assembled(tmp, size, digest.hexdigest())
        finally:
            tmp.unlink(missing_ok=True)

    # -- dataset versions -------------------------------------------------------------

    def dataset_path(self, version: str) -> Path:
        return self.root / "datasets" / f"{version}{_ENC}"

    def publish(self, plaintext: Path, version: str, data_key: bytes) -> None:
        """Encrypt ``plaintext`` as dataset ``version`` (atomically, fsynced)."""
        cipher.encrypt_file(
            data_key, plaintext, self.dataset_path(version), context=version.encode()
        )

    def read_dataset(self, version: str, data_key: bytes) -> bytes:
        """A dataset version's plaintext, decrypted into memory (never to disk)."""
        return cipher.open_decrypted(data_key, self.dataset_path(version), context=version.encode())

    # -- job outputs ------------------------------------------------------------------

    def output_path(self, owner: str, name: str) -> Path:
        return self.root / "outputs" / owner / f"{name}{_ENC}"

    def write_output(self, owner: str, name: str, data: bytes, data_key: bytes) -> None:
        """Store one output file of a run or extract (atomically, fsynced)."""
        folder = self.root / "outputs" / owner
        folder.mkdir(mode=0o700, exist_ok=True)
        cipher.encrypt_bytes(
            data_key, data, self.output_path(owner, name), context=f"{owner}/{name}".encode()
        )

    def read_output(self, owner: str, name: str, data_key: bytes) -> bytes:
        return cipher.open_decrypted(
            data_key, self.output_path(owner, name), context=f"{owner}/{name}".encode()
        )

    def scratch_dir(self, job: str) -> Path:
        folder = self.root / "scratch" / job
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return folder

    def sweep_outputs(self, live_owners: Collection[str]) -> list[Path]:
        """Remove output folders no stored run or extract (or running job) owns, and
        scratch folders of jobs no longer running; returns what was removed."""
        removed: list[Path] = []
        for sub in ("outputs", "scratch"):
            for path in (self.root / sub).iterdir():
                if path.name not in live_owners:
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
        return removed

    def shred(self, version: str) -> None:
        """Delete a dataset version's file (its wrapped key is deleted by the caller)."""
        self.dataset_path(version).unlink(missing_ok=True)

    def sweep(self, live_versions: Collection[str], open_sessions: Collection[str]) -> list[Path]:
        """Remove temporary files, dataset files no committed version names and chunk
        folders of sessions no longer open; returns what was removed."""
        removed: list[Path] = []
        for path in (self.root / "tmp").iterdir():
            path.unlink(missing_ok=True)
            removed.append(path)
        for path in (self.root / "datasets").iterdir():
            if path.name.removesuffix(_ENC) not in live_versions:
                path.unlink(missing_ok=True)
                removed.append(path)
        for path in (self.root / "uploads").iterdir():
            if path.name not in open_sessions:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        return removed
