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
