"""Shared fixtures and helpers for the whole suite."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

VECTORS = Path(__file__).parent / "vectors"
REPO = Path(__file__).resolve().parent.parent


def load_vectors(name: str) -> list[Any]:
    """The ``cases`` of a JSON test-vector file under tests/vectors/, as pytest params."""
    doc = json.loads((VECTORS / name).read_text())
    return [pytest.param(case, id=case["name"]) for case in doc["cases"]]


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A local[2] SparkSession (about 7-10 s to start), stopped at the end of the session.

    It has a checkpoint directory because Splink's SparkAPI checkpoints to break lineage.
    """
    sql = pytest.importorskip("pyspark.sql")
    if shutil.which("java") is None:
        pytest.skip("Spark needs a Java runtime on PATH")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # loopback only
    session = (
        sql.SparkSession.builder.master("local[2]")
        .appName("pprl-hub-linkage-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.memory", "3g")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    session.sparkContext.setCheckpointDir(str(tmp_path_factory.mktemp("spark-checkpoints")))
    yield session
    session.stop()


POSTGRES_ENV = "PPRL_TEST_POSTGRES_URL"


def _postgres_admin_url() -> str:
    url = os.environ.get(POSTGRES_ENV, "")
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{POSTGRES_ENV} is not set: .ci/run starts PostgreSQL and sets it")
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV} (run .ci/postgres to start one)")
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on loopback, dropped afterwards."""
    import uuid

    import psycopg

    admin = _postgres_admin_url()
    name = f"pprl_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The hub's two stores: a SQLite file path (the embedded default) and a fresh
    PostgreSQL database (production). Tests taking this run once on each."""
    if request.param == "sqlite":
        return str(tmp_path / "hub.sqlite")
    url: str = request.getfixturevalue("postgres_url")
    return url


def encode_synthetic_ae(root: Path, people: int, seed: int) -> Path:
    """The connector's real encoded output (schema v2) for a synthetic A&E export of about
    ``people`` people, written under ``root`` with fresh keys; returns the encoded file."""
    from connectors.cli import main as connector
    from connectors.synth import synthesise

    synthesise(people, seed, root / "exports")
    assert connector(["keygen", "--out", str(root / "project.key")]) == 0
    assert connector(["keygen", "--record-key", "--out", str(root / "ae-record.key")]) == 0
    out = root / "ae.parquet"
    assert connector(
        [
            "pseudonymise",
            "--mapping", str(REPO / "config" / "mappings" / "ae.toml"),
            "--schema", str(REPO / "config" / "encoding" / "v2.toml"),
            "--key", str(root / "project.key"),
            "--record-key", str(root / "ae-record.key"),
            "--input", str(root / "exports" / "ae_attendances.csv"),
            "--output", str(out),
            "--quiet",
        ]
    ) == 0  # fmt: skip
    return out
