"""Run-directory helpers: run ids, file hashes, and reading sample lines.

Writing a run directory is `evalkit.store.RunWriter`'s job; its results.json is the `evalkit.records.RunRecord`.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from evalkit.errors import DataError

__all__ = ["file_sha256", "new_run_id", "read_jsonl", "read_results"]


def new_run_id(model: str, now: datetime | None = None) -> str:
    """`20261122-161500-smollm2-3f2a` — sortable, readable, unique enough for one machine."""
    now = now or datetime.now(timezone.utc)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model.split("/")[-1]).strip("-")[:40] or "model"
    salt = hashlib.sha256(f"{time.time_ns()}-{os.getpid()}".encode()).hexdigest()[:4]
    return f"{now:%Y%m%d-%H%M%S}-{slug}-{salt}"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_results(path: Path) -> dict[str, Any]:
    """A results.json (or the one inside a run directory) as a plain dict, read through the run record schema
    (older files come back upgraded to the current schema)."""
    from evalkit.records import load_record

    return load_record(path).model_dump(mode="json")


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError:
                    raise DataError(f"{path}:{lineno}: not valid JSON; the file may be truncated") from None
