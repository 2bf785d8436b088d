"""Step 3 of a run: run each task kind against the backend and turn its outcome into a `TaskRecord`.

A task that stops on bad data (DataError, TaskSpecError) is recorded in `failed_tasks` and the run goes on with
the others; any other error stops the run. Either way, what finished is already in results.json.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.backends._protocol import BackendBase
from evalkit.errors import DataError, EvalkitError, TaskSpecError
from evalkit.records import Scores, TaskRecord
from evalkit.store._writer import RunWriter
from evalkit.tasks._kind import RunContext, TaskOutcome

if TYPE_CHECKING:
    from evalkit._runplan import RunPlan
    from evalkit.tasks._registry import TaskSelection
    from evalkit.tasks._spec import TaskSpecBase

__all__ = ["outcome_record", "run_task", "run_tasks"]

# A task whose data is bad stops alone; other errors (backend, cache, configuration) stop the run.
_TASK_LOCAL_ERRORS = (DataError, TaskSpecError)


def _clean_table(values: dict[str, Any], notes: dict[str, str], moved: dict[str, Any],
                 where: str) -> dict[str, float | int | None]:
    table: dict[str, float | int | None] = {}
    for key, value in values.items():
        if value is None:
            table[key] = None
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            moved[f"{where}{key}"] = value
        elif isinstance(value, float) and not math.isfinite(value):
            table[key] = None
            notes.setdefault(key, f"{key} is not a finite number ({value}); reported as null")
        else:
            table[key] = value
    return table


def outcome_record(spec: TaskSpecBase, outcome: TaskOutcome, *, demo_data: bool) -> TaskRecord:
    """The `TaskRecord` of a task kind's outcome: non-finite numbers become null with a note, non-numbers
    move to `info` (a metrics table holds numbers only)."""
    info = dict(outcome.info)
    notes: dict[str, str] = dict(info.pop("metric_notes", {}) or {})
    moved: dict[str, Any] = {}
    metrics = _clean_table(dict(outcome.metrics), notes, moved, "")
    groups = {g: Scores(_clean_table(dict(v), {}, moved, f"{g}.")) for g, v in outcome.groups.items()}
    subtasks = {s: Scores(_clean_table(dict(v), {}, moved, f"{s}.")) for s, v in outcome.subtasks.items()}
    if notes:
        info["metric_notes"] = notes
    if moved:
        info["non_numeric_metrics"] = moved
    lower = [str(m) for m in info.pop("lower_is_better", []) or []]
    if info.get("higher_is_better") is False:
        lower += [m for m in metrics if m not in lower]
    return TaskRecord(kind=spec.kind, family=spec.family, metrics=Scores(metrics), groups=groups,
                      subtasks=subtasks, n=int(outcome.n), info=info, lower_is_better=lower, demo_data=demo_data)


def _progress(console: Any, quiet: bool) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console, transient=False, disable=quiet)


def _context(plan: RunPlan, selection: TaskSelection, progress: Any, bar: Any, warn: Any) -> RunContext:
    options = plan.options
    return RunContext(data_dir=plan.data_dir, limit=options.limit, num_fewshot=options.num_fewshot,
                      seed=options.seed, subsets=selection.subsets, task_args=dict(plan.task_args),
                      batch_size=options.batch_size, set_total=lambda n: progress.update(bar, total=n),
                      advance=lambda n: progress.advance(bar, n), warn=warn, judge=plan.judge,
                      repeats=options.repeats, cache_path=plan.cache_path)


def _uses_demo(files: set[str]) -> bool:
    from evalkit.tasks._data import tasks_root

    demo = (tasks_root() / "demo").resolve()
    return any(Path(f).resolve().is_relative_to(demo) for f in files)


def run_task(plan: RunPlan, selection: TaskSelection, spec: TaskSpecBase, backend: BackendBase, writer: RunWriter,
             console: Any, warn: Any) -> tuple[TaskRecord, set[str]]:
    """Run one task; its samples stream to the run directory. Returns its record and the data files it read."""
    from evalkit.tasks._spec import task_kind

    run = task_kind(spec.kind).run
    progress = _progress(console, plan.options.quiet)
    with progress:
        bar = progress.add_task(spec.name, total=None)
        ctx = _context(plan, selection, progress, bar, warn)
        started = time.perf_counter()
        truncated_before = _truncated(backend)
        outcome: TaskOutcome = run(spec, backend, ctx, writer.samples(spec.name, spec.kind))
    truncated = _truncated(backend) - truncated_before
    if truncated:
        outcome.info["truncated_requests"] = truncated
        warn(f"{spec.name}: {truncated} request(s) were longer than the model's context and were left-truncated "
             f"(counted in results.json info.truncated_requests)")
    record = outcome_record(spec, outcome, demo_data=_uses_demo(ctx.files_read))
    writer.add_task(spec.name, record, time.perf_counter() - started)
    return record, ctx.files_read


def _truncated(backend: BackendBase) -> int:
    value = backend.stats_dict().get("truncated_requests", 0)
    return int(value) if isinstance(value, (int, float)) else 0


def run_tasks(plan: RunPlan, backend: BackendBase, writer: RunWriter, console: Any,
              warn: Any) -> tuple[dict[str, set[str]], list[EvalkitError]]:
    """Run every selected task in order. Returns the data files each finished task read, and the errors of
    tasks that stopped on bad data while the others went on (any other error propagates)."""
    files: dict[str, set[str]] = {}
    failures: list[EvalkitError] = []
    for selection, spec in plan.selections:
        try:
            _, files[spec.name] = run_task(plan, selection, spec, backend, writer, console, warn)
        except _TASK_LOCAL_ERRORS as exc:
            writer.fail_task(spec.name, str(exc))
            warn(f"{spec.name} stopped: {exc}")
            failures.append(exc)
    return files, failures
