"""Shared fixtures and helpers for the whole suite."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

VECTORS = Path(__file__).parent / "vectors"
REPO = Path(__file__).resolve().parent.parent


def load_vectors(name: str) -> list[Any]:
    """The ``cases`` of a JSON test-vector file under tests/vectors/, as pytest params."""
    doc = json.loads((VECTORS / name).read_text())
    return [pytest.param(case, id=case["name"]) for case in doc["cases"]]
