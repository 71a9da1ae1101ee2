"""Shared fixtures: paths to the repo, the shipped example and ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "reddit_humor"
SHARED_DATA = Path(os.environ.get("LLM2EDGE_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture(scope="session")
def example_dir() -> Path:
    """The shipped example dataset (reddit_humor, MIT)."""
    return EXAMPLE


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared benchmark data not found at {SHARED_DATA}")
    return SHARED_DATA
