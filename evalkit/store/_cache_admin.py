"""What evalkit keeps on disk between runs, and pruning it: `evalkit cache list|prune`.

Two kinds of cache:
- model caches under `$EVALKIT_CACHE_DIR` (default `~/.cache/evalkit`): `models/<name>-<revision>/` (the
  converted safetensors copy of the embedded GGUF, ~0.5 GB each) and `tokenizers/<name>/`;
- response caches: SQLite files (`runs/.cache.sqlite` by default, or what `--cache` named), one row per
  request with the model identity it was answered by and when.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from evalkit.errors import CacheError

__all__ = ["ModelCache", "PruneSelection", "ResponseCache", "disk_usage", "human_size", "model_caches", "prune_models",
           "prune_responses", "response_caches"]

_LEGACY = re.compile(r"-gguf-\d+-\d+$")  # the old size+mtime key of converted GGUF copies
_DAY = 86400.0


@dataclass(frozen=True)
class ModelCache:
    """One folder under the model cache."""

    path: Path
    kind: str        # "model" or "tokenizer"
    size: int
    modified: float  # newest file's mtime
    legacy: bool     # keyed by the old size+mtime name: a later run uses (or links) the content-keyed copy


@dataclass(frozen=True)
class ResponseCache:
    """One SQLite response cache."""

    path: Path
    size: int              # database + WAL + shared-memory files
    entries: int
    models: dict[str, int]  # model identity -> entries
    newest: float


@dataclass(frozen=True)
class PruneSelection:
    """What to prune: by model (a part of its folder name or identity), by age, or everything; `apply` deletes."""

    model: str | None = None
    older_than_days: float | None = None
    everything: bool = False
    apply: bool = False

    def cutoff(self) -> float | None:
        """The time before which an entry counts as old (None: no age given)."""
        return time.time() - self.older_than_days * _DAY if self.older_than_days is not None else None


def human_size(n: int) -> str:
    """Bytes in the largest unit that keeps the number below 1024.

    Examples:
        >>> human_size(538_000_000)
        '513.1 MB'
    """
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def _folder_stats(folder: Path) -> tuple[int, float]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    stats = [p.stat() for p in files]
    return sum(s.st_size for s in stats), max((s.st_mtime for s in stats), default=folder.stat().st_mtime)


def model_caches(root: Path) -> list[ModelCache]:
    """The converted models and tokenizers under the model cache root, largest first."""
    found = []
    for kind, sub in (("model", "models"), ("tokenizer", "tokenizers")):
        folder = root / sub
        if not folder.is_dir():
            continue
        for item in sorted(folder.iterdir()):
            if item.is_dir() and ".tmp" not in item.name:
                size, modified = _folder_stats(item)
                found.append(ModelCache(item, kind, size, modified, bool(_LEGACY.search(item.name))))
    return sorted(found, key=lambda c: -c.size)


def disk_usage(paths: Sequence[Path]) -> int:
    """Bytes the files under `paths` take on disk, a hard-linked file counted once."""
    seen: dict[tuple[int, int], int] = {}
    for path in paths:
        for item in [path] if path.is_file() else path.rglob("*"):
            if item.is_file():
                stat = item.stat()
                seen[(stat.st_dev, stat.st_ino)] = stat.st_size
    return sum(seen.values())


def _files_of(db: Path) -> list[Path]:
    return [p for p in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")) if p.is_file()]


def response_caches(paths: Sequence[Path]) -> list[ResponseCache]:
    """The response caches among `paths` that exist (read-only: a running evaluation is not disturbed)."""
    found = []
    for path in dict.fromkeys(paths):
        if not path.is_file():
            continue
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                rows = db.execute("SELECT model, COUNT(*), MAX(created) FROM responses GROUP BY model").fetchall()
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise CacheError(f"{path}: not a readable evalkit response cache ({exc}); delete it or name "
                             f"another with --cache") from None
        models = {str(m): int(n) for m, n, _ in rows}
        found.append(ResponseCache(path, sum(p.stat().st_size for p in _files_of(path)), sum(models.values()),
                                   models, max((float(t) for *_, t in rows if t is not None), default=0.0)))
    return found


def prune_models(caches: Sequence[ModelCache], selection: PruneSelection) -> list[ModelCache]:
    """The model caches selected by name (a substring of the folder name), age or everything; deleted if `apply`."""
    cutoff = selection.cutoff()
    chosen = [c for c in caches if selection.everything
              or (selection.model is not None and selection.model in c.path.name)
              or (cutoff is not None and c.modified < cutoff)]
    if selection.apply:
        for cache in chosen:
            shutil.rmtree(cache.path, ignore_errors=True)
    return chosen


def prune_responses(cache: ResponseCache, selection: PruneSelection) -> int:
    """Entries of one response cache selected by model identity (substring), age or everything; deleted if `apply`."""
    clauses: list[str] = []
    params: list[object] = []
    cutoff = selection.cutoff()
    if not selection.everything:
        if selection.model is not None:
            clauses.append("instr(model, ?) > 0")
            params.append(selection.model)
        if cutoff is not None:
            clauses.append("created < ?")
            params.append(cutoff)
        if not clauses:
            return 0
    where = f" WHERE {' OR '.join(clauses)}" if clauses else ""
    try:
        db = sqlite3.connect(str(cache.path), timeout=10, isolation_level=None)
        try:
            count = int(db.execute(f"SELECT COUNT(*) FROM responses{where}", params).fetchone()[0])
            if selection.apply and count:
                db.execute(f"DELETE FROM responses{where}", params)
                db.execute("VACUUM")
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise CacheError(f"{cache.path}: cannot prune ({exc}); stop the evaluation that uses it and retry") from None
    return count
