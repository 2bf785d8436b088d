"""`RunWriter`: the one place that writes a run directory.

    runs/<run_id>/results.json          the `RunRecord` (evalkit.records), rewritten after every task
    runs/<run_id>/samples/<task>.jsonl  one `SampleRecord` per line, appended as each batch finishes
    runs/<run_id>/manifest.json         hashes of task specs, prompts, data files; versions; seed

results.json is written atomically (temporary file, then rename) and carries `status`: "running" while the run
goes on, "complete" at the end, "failed" with the error when it stopped; the report skips runs that failed before
any task finished. Set EVALKIT_RECORD_LOG to a file path to have every results.json written appended to it (the
test suite validates each one against the JSON Schema).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from evalkit.errors import ConfigError
from evalkit.records import RunRecord, TaskRecord, dump_record, sample_type

__all__ = ["RunWriter", "SampleWriter", "ensure_output_dir"]


def ensure_output_dir(root: Path, *, flag: str = "--output") -> Path:
    """Create `root` (and parents) or fail with one line that names it; checks it is writable."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(f"{flag} {root}: a parent of this path is a file, not a directory; "
                          f"pass a directory path") from None
    except OSError as exc:
        raise ConfigError(f"{flag} {root}: cannot create it ({exc.strerror}); pass a writable directory") from None
    if not root.is_dir():
        raise ConfigError(f"{flag} {root}: is a file, not a directory; pass a directory path")
    if not os.access(root, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {root}: is not writable; pass a writable directory")
    return root


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


class SampleWriter:
    """The sink a task kind writes its samples to: each row is checked against its kind's `SampleRecord` and
    appended (and flushed) at once, so nothing computed is lost if the run dies."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path, self.model, self.count = path, sample_type(kind), 0

    def write(self, samples: Sequence[dict[str, Any]]) -> None:
        """Append one batch of sample rows."""
        if not samples:
            return
        lines = [_dumps(self.model.model_validate(row).model_dump(exclude_unset=True)) for row in samples]
        with self.path.open("ab") as fh:
            fh.write(b"\n".join(lines) + b"\n")
            fh.flush()
        self.count += len(samples)


class RunWriter:
    """Owns one run directory: the record, the sample files and the manifest."""

    def __init__(self, root: Path, record: RunRecord, *, flag: str = "--output") -> None:
        ensure_output_dir(root, flag=flag)
        self.path = root / record.run_id
        try:
            (self.path / "samples").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{flag} {root}: cannot create the run directory {self.path} ({exc.strerror}); "
                              f"pass a writable directory") from None
        self.record = record.model_copy(update={"status": "running"})
        self.write_results()

    @property
    def run_id(self) -> str:
        """The run directory's name."""
        return self.record.run_id

    def sample_path(self, task: str) -> Path:
        """samples/<task>.jsonl."""
        return self.path / "samples" / f"{task}.jsonl"

    def samples(self, task: str, kind: str) -> SampleWriter:
        """The sink for one task's samples."""
        return SampleWriter(self.sample_path(task), kind)

    def add_task(self, name: str, task: TaskRecord, seconds: float | None = None) -> None:
        """Record a finished task and rewrite results.json at once."""
        timing = dict(self.record.timing)
        if seconds is not None:
            timing[name] = round(seconds, 3)
        failed = {k: v for k, v in self.record.failed_tasks.items() if k != name}
        self.update(tasks={**self.record.tasks, name: task}, timing=timing, failed_tasks=failed)

    def fail_task(self, name: str, error: str) -> None:
        """Record a task that stopped with an error; the tasks already done stay."""
        from evalkit._redact import redact_text

        self.update(failed_tasks={**self.record.failed_tasks, name: redact_text(error)})

    def update(self, **fields: Any) -> None:
        """Change top-level fields of the record and rewrite results.json."""
        self.record = self.record.model_copy(update=fields)
        self.write_results()

    def finish(self, error: str | None = None, **fields: Any) -> Path:
        """Mark the run complete (or failed, with the error) and write results.json a last time."""
        from evalkit._redact import redact_text

        status = "failed" if error is not None else "complete"
        self.update(status=status, error=None if error is None else redact_text(error), **fields)
        return self.path

    def write_results(self) -> Path:
        """Write results.json atomically (validated: the record is re-read through its schema)."""
        data = dump_record(RunRecord.model_validate(self.record.model_dump()))
        target = self._write("results.json", data)
        log = os.environ.get("EVALKIT_RECORD_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(f"{target.resolve()}\n")
        return target

    def write_manifest(self, manifest: dict[str, Any]) -> Path:
        """Write manifest.json (hashes and versions; never secrets)."""
        return self._write("manifest.json", orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")

    def _write(self, name: str, data: bytes) -> Path:
        target = self.path / name
        tmp = target.with_name(f".{name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
        return target
