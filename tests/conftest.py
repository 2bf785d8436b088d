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


# ---- every results.json the suite writes is validated against the shipped JSON Schema ----------------------
# RunWriter appends the path of each results.json it writes to EVALKIT_RECORD_LOG (CLI subprocesses inherit it).
_RECORD_LOG = Path(os.environ.get("EVALKIT_RECORD_LOG") or
                   Path(os.environ.get("TMPDIR", "/tmp")) / f"evalkit-records-{os.getpid()}.log")
os.environ["EVALKIT_RECORD_LOG"] = str(_RECORD_LOG)
_RECORD_LOG.unlink(missing_ok=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the session when any results.json written during it does not validate against the schema."""
    import json

    import jsonschema

    if not _RECORD_LOG.is_file():
        return
    schema = json.loads((Path(__file__).resolve().parents[1] / "evalkit" / "records" / "results.schema.json")
                        .read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    paths = sorted(set(_RECORD_LOG.read_text(encoding="utf-8").split()))
    bad = []
    for path in map(Path, paths):
        if path.is_file():  # a test may have removed its own run directory
            errors = sorted(validator.iter_errors(json.loads(path.read_text(encoding="utf-8"))), key=str)
            bad += [f"{path}: {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:3]]
    print(f"\nrun record schema: {len(paths)} results.json file(s) written by the suite checked, {len(bad)} problem(s)")
    for line in bad:
        print(f"  {line}")
    if bad:
        session.exitstatus = 1
    _RECORD_LOG.unlink(missing_ok=True)
