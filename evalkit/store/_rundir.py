"""The run directory: results.json, samples/<task>.jsonl, manifest.json.

    runs/<run_id>/results.json
        {"run_id", "created", "model": {...identity}, "config": {...flags},
         "tasks": {"<task>": {"metrics": {"acc": .41, "acc_stderr": .02, ...}, "groups": {...},
                              "subtasks": {...}, "n": 160, "info": {...}}},
         "versions": {"evalkit": ..., "torch": ..., ...}, "timing": {"<task>": seconds, "total": s}}
    runs/<run_id>/samples/<task>.jsonl   one JSON object per sample, appended as each batch finishes
    runs/<run_id>/manifest.json          hashes of task specs, templates, data files; versions; seed
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from evalkit.errors import DataError

__all__ = ["RunDir", "file_sha256", "new_run_id", "read_jsonl", "read_results"]


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


def _dumps(obj: Any, *, indent: bool = False) -> bytes:
    opts = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    if indent:
        opts |= orjson.OPT_INDENT_2
    return orjson.dumps(obj, option=opts)


class RunDir:
    """Writes one run's files. Samples are appended and flushed per batch, results written atomically."""

    def __init__(self, root: Path, run_id: str) -> None:
        self.run_id = run_id
        self.path = root / run_id
        (self.path / "samples").mkdir(parents=True, exist_ok=True)

    def sample_path(self, task: str) -> Path:
        return self.path / "samples" / f"{task}.jsonl"

    def append_samples(self, task: str, samples: Sequence[dict[str, Any]]) -> None:
        if not samples:
            return
        with self.sample_path(task).open("ab") as fh:
            for sample in samples:
                fh.write(_dumps(sample) + b"\n")
            fh.flush()

    def write_json(self, name: str, obj: Any) -> Path:
        target = self.path / name
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(_dumps(obj, indent=True) + b"\n")
        tmp.replace(target)
        return target


def read_results(path: Path) -> dict[str, Any]:
    """Read a results.json (or the one inside a run directory)."""
    if path.is_dir():
        path = path / "results.json"
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise DataError(f"{path}: no such results file; pass runs/<run_id>/results.json or its directory") from None
    except orjson.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); was the run interrupted while writing it?") from None
    if not isinstance(data, dict) or "tasks" not in data:
        raise DataError(f"{path}: not an evalkit results.json (no 'tasks' key)")
    return data


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError:
                    raise DataError(f"{path}:{lineno}: not valid JSON; the file may be truncated") from None
