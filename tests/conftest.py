"""Shared fixtures. Tests that need the real public data skip with a reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _data_dir() -> Path | None:
    env = os.environ.get("EVALKIT_DATA_DIR")
    path = Path(env) if env else _DEFAULT_DATA
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder laid out like ../shared/data (EVALKIT_DATA_DIR, else ../shared/data beside the repo)."""
    path = _data_dir()
    if path is None:
        pytest.skip("real data folder absent: set EVALKIT_DATA_DIR to a copy of ../shared/data")
    return path
