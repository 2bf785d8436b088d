"""The data behind the report pages: runs read from disk, their task results, and leaderboards.

Everything here is plain data (frozen dataclasses) computed from results.json files; templates only
format it. Nothing assumes a key exists: a task shows whatever metrics, groups and subtasks it has, and
the special sections (judge reliability, rankings, length buckets) appear only when their keys are present.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from evalkit.errors import DataError
from evalkit.records import (
    FAMILY_LABELS,
    RunRecord,
    TaskRecord,
    headline_metric,
    is_fraction_metric,
    is_number,
    load_record,
    metric_names,
    parse_record,
)
from evalkit.records import higher_is_better as _higher_is_better

__all__ = [
    "FAMILY_LABELS",
    "Run",
    "TaskResult",
    "Value",
    "discover_results",
    "format_value",
    "headline_metric",
    "is_fraction_metric",
    "judged_model_runs",
    "load_run",
    "load_runs",
    "lower_is_better",
    "metric_names",
    "run_from_record",
    "run_from_results",
    "slug",
    "task_result",
]

_SLUG = re.compile(r"[^A-Za-z0-9._-]+")
_is_number = is_number


def slug(text: str) -> str:
    """A file-name-safe form of `text` (run ids, task names), stable for the same input.

    Examples:
        >>> slug("cmmlu:agronomy/é")
        'cmmlu-agronomy'
    """
    return _SLUG.sub("-", text).strip("-.") or "x"


def lower_is_better(metric: str) -> bool:
    """True for perplexities, bits per byte, losses and errors (the shared rule of `evalkit.records`)."""
    return not _higher_is_better(metric)


def format_value(metric: str, value: float | None) -> str:
    """How a number is printed: accuracies as percentages (41.2), perplexities with 2 decimals.

    Examples:
        >>> format_value("acc", 0.4125), format_value("word_perplexity", 31.4159), format_value("acc", None)
        ('41.2', '31.42', '')
    """
    if value is None:
        return ""
    if is_fraction_metric(metric) and 0.0 <= value <= 1.0:
        return f"{100 * value:.1f}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.2f}" if abs(value) >= 1 or value == 0 else f"{value:.3f}"


@dataclass(frozen=True)
class Value:
    """One number with its standard error and sample count, when known."""

    value: float
    stderr: float | None = None
    n: int | None = None
    low: float | None = None
    high: float | None = None

    @property
    def ci95(self) -> tuple[float, float] | None:
        """The stored 95 % interval (e.g. bootstrap `_ci_low`/`_ci_high`), else value ± 1.96 stderr."""
        if self.low is not None and self.high is not None:
            return (self.low, self.high)
        if self.stderr is None:
            return None
        return (self.value - 1.96 * self.stderr, self.value + 1.96 * self.stderr)

    @property
    def half_width(self) -> float | None:
        """Half the width of the 95 % interval."""
        ci = self.ci95
        return None if ci is None else (ci[1] - ci[0]) / 2


def _value_of(values: Mapping[str, Any], metric: str, n: Any = None) -> Value | None:
    raw = values.get(metric)
    if not _is_number(raw):
        return None
    stderr = values.get(f"{metric}_stderr")
    count = values.get("n", n)
    low, high = values.get(f"{metric}_ci_low"), values.get(f"{metric}_ci_high")
    ci = (float(low), float(high)) if _is_number(low) and _is_number(high) else (None, None)
    return Value(float(raw), float(stderr) if _is_number(stderr) else None,
                 int(count) if _is_number(count) else None, *ci)


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _nested(values: Any) -> dict[str, dict[str, Any]]:
    return {str(k): dict(v) for k, v in _mapping(values).items() if isinstance(v, Mapping)}


_BUCKET = re.compile(r"^(\d+(\.\d+)?k?\s*[-–+]\s*(\d+(\.\d+)?k?)?|[<>]=?\s*\d+k?|\d+k?\+)$", re.IGNORECASE)


@dataclass(frozen=True)
class TaskResult:
    """One task of one run: metrics, groups, subtasks and the optional special sections."""

    name: str
    family: str
    metrics: Mapping[str, Any]
    groups: Mapping[str, Mapping[str, Any]]
    subtasks: Mapping[str, Mapping[str, Any]]
    n: int | None
    info: Mapping[str, Any]
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)
    lower: tuple[str, ...] = ()  # metrics this task declares lower-is-better beyond the shared rules

    @property
    def headline(self) -> str | None:
        """The metric the overview leaderboard shows for this task."""
        return headline_metric(self.metrics)

    def lower_is_better(self, metric: str) -> bool:
        """The direction of one of this task's metrics."""
        return lower_is_better(metric) or metric in self.lower

    def value(self, metric: str, group: str | None = None) -> Value | None:
        """A metric of the task, or of one of its groups."""
        if group is None:
            return _value_of(self.metrics, metric, self.n)
        return _value_of(self.groups.get(group, {}), metric)

    def _special(self, key: str) -> Any:
        for where in (self.raw, self.info, self.metrics):
            if key in where:
                return where[key]
        return None

    @property
    def reliability(self) -> dict[str, Any]:
        """Judge reliability (valid_rate, cohen_kappa, fleiss_kappa, position_consistency, ...), if any."""
        return _mapping(self._special("reliability"))

    @property
    def ranking(self) -> list[dict[str, Any]]:
        """Bradley-Terry style ranking rows {model, rating (or elo), ci_low, ci_high}, best first.

        Each returned row has `rating` set (copied from `elo` when only that is present).
        """
        rows = self._special("ranking")
        if not isinstance(rows, list):
            return []
        good = []
        for row in rows:
            if isinstance(row, Mapping):
                rating = row.get("rating", row.get("elo"))
                if _is_number(rating):
                    good.append({**row, "rating": float(rating)})
        return sorted(good, key=lambda r: (-r["rating"], str(r.get("model", ""))))

    @property
    def turns(self) -> dict[str, float]:
        """Per-turn means ({"turn 1": 6.1, "turn 2": 5.3}) from metrics like turn_1 / turn1_score."""
        found: dict[str, float] = {}
        for key, value in self.metrics.items():
            match = re.fullmatch(r"(?:score_)?turn_?(\d+)(?:_score)?", key)
            if match and _is_number(value):
                found[f"turn {match.group(1)}"] = float(value)
        return dict(sorted(found.items()))

    @property
    def buckets(self) -> dict[str, dict[str, Any]]:
        """Per length bucket results ({"0-4k": {"score": ..}}): from a `length_buckets`/`buckets` key, from
        metrics named `<metric>_<bucket>` (LongBench-E: `score_0-4k`), or from bucket-named groups."""
        for key in ("length_buckets", "buckets", "by_length"):
            found = _nested(self._special(key))
            if found:
                return found
        from_metrics: dict[str, dict[str, Any]] = {}
        for key, value in self.metrics.items():
            metric, _, bucket = key.rpartition("_")
            if metric and _BUCKET.match(bucket) and _is_number(value):
                from_metrics.setdefault(bucket, {})[metric] = value
        if from_metrics:
            return from_metrics
        return {k: dict(v) for k, v in self.groups.items() if _BUCKET.match(k.strip())}

    @property
    def categories(self) -> dict[str, dict[str, Any]]:
        """Groups that are not length buckets (C-Eval categories, MT-Bench categories, LongBench types)."""
        buckets = set(self.buckets) if not any(k in self.raw for k in ("length_buckets", "buckets")) else set()
        return {k: dict(v) for k, v in self.groups.items() if k not in buckets}


def task_result(name: str, task: TaskRecord | Mapping[str, Any]) -> TaskResult:
    """The report's view of one task record (a results.json task mapping of any schema is read through it)."""
    if not isinstance(task, TaskRecord):
        task = parse_record({"run_id": "task", "tasks": {name: dict(task)}}).tasks[name]
    info = dict(task.info)
    if task.demo_data:
        info.setdefault("demo_data", True)
    return TaskResult(name=name, family=task.family, metrics=task.metrics.as_dict(),
                      groups={k: v.as_dict() for k, v in task.groups.items()},
                      subtasks={k: v.as_dict() for k, v in task.subtasks.items()}, n=task.n, info=info,
                      raw=info, lower=tuple(task.lower_is_better))


@dataclass(frozen=True)
class Run:
    """One results.json (an evalkit run or an imported lm-eval file)."""

    run_id: str
    created: str
    model: Mapping[str, Any]
    config: Mapping[str, Any]
    tasks: Mapping[str, TaskResult]
    versions: Mapping[str, Any] = field(default_factory=dict)
    timing: Mapping[str, Any] = field(default_factory=dict)
    usage: Mapping[str, Any] = field(default_factory=dict)
    manifest: Mapping[str, Any] = field(default_factory=dict)
    source: str = "evalkit"
    path: Path | None = None
    parent: str | None = None
    listed: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)
    status: str = "complete"
    error: str | None = None
    failed_tasks: Mapping[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The model name people know: the name they typed (a local path is shortened to its last part)."""
        name = str(self.model.get("name") or self.model.get("model") or self.run_id)
        label = Path(name).name or name if name.startswith(("/", "./", "~")) else name
        adapter = self.model.get("peft")
        if adapter:  # a fine-tune is its own row, next to its base model
            label += f" + {Path(str(adapter)).name or adapter}"
        return label

    @property
    def demo_data(self) -> bool:
        """True when any task of this run was scored on evalkit's demo set, not the real benchmark."""
        return any(bool(t.info.get("demo_data")) for t in self.tasks.values())

    @property
    def page_id(self) -> str:
        """The run whose page shows this result (a model of a judged-answers run links to that run)."""
        return self.parent or self.run_id

    @property
    def model_key(self) -> tuple[str, str, str]:
        """Identity used to merge runs of the same model into one leaderboard row."""
        return (str(self.model.get("backend", "")), self.label,
                f"{self.model.get('revision') or ''}{'|' + str(self.model['peft_sha256']) if self.model.get('peft_sha256') else ''}")

    @property
    def slug(self) -> str:
        """File-name-safe run id."""
        return slug(self.run_id)

    def sample_file(self, task: str) -> Path | None:
        """samples/<task>.jsonl of this run, when it exists."""
        if self.path is None:
            return None
        path = self.path / "samples" / f"{task}.jsonl"
        return path if path.is_file() else None


def run_from_record(record: RunRecord, *, path: Path | None = None, source: str | None = None,
                    manifest: Mapping[str, Any] | None = None) -> Run:
    """Build a `Run` from a `RunRecord`."""
    model = record.model.model_dump(exclude_none=True)
    if record.is_judged_answers and not model.get("name"):
        model["name"] = f"judged answers of {len(record.model.models or [])} models"
    tasks = dict(record.tasks)
    if len(tasks) == 1 and (record.reliability or record.ranking):  # `evalkit judge` keeps them beside "tasks"
        (name, only), = tasks.items()
        extra_info = {k: v for k, v in (("reliability", record.reliability), ("ranking", record.ranking)) if v}
        tasks = {name: only.model_copy(update={"info": {**extra_info, **only.info}})}
    judge = record.judge or {}
    return Run(run_id=record.run_id, created=record.created, model=model, config=dict(record.config),
               tasks={k: task_result(k, v) for k, v in sorted(tasks.items())}, versions=dict(record.versions),
               timing=dict(record.timing),
               usage={**_prefixed("backend", record.backend_stats), **_prefixed("judge", _mapping(judge).get("cost"))},
               manifest=_mapping(manifest), source=str(source or record.source), path=path,
               listed=not record.is_judged_answers,
               extra={k: v for k, v in (("judge", record.judge), ("warnings", record.warnings),
                                        ("scores", record.scores)) if v},
               status=record.status, error=record.error, failed_tasks=dict(record.failed_tasks))


def run_from_results(data: Mapping[str, Any], *, path: Path | None = None, source: str | None = None,
                     manifest: Mapping[str, Any] | None = None) -> Run:
    """Build a `Run` from a results dict (the shape of results.json, any schema version)."""
    return run_from_record(parse_record(data, where=str(path or "results")), path=path, source=source,
                           manifest=manifest)


def _prefixed(prefix: str, value: Any) -> dict[str, Any]:
    return {f"{prefix}.{k}": v for k, v in _mapping(value).items()}


def judged_model_runs(parent: Run, data: Mapping[str, Any] | None = None) -> list[Run]:
    """One leaderboard row per model of a judged-answers run (`evalkit judge`: results["scores"][model]).

    Single grading gives {"mean", "ci_low", "ci_high", "n", "by_turn": {"turn1": ..}, "by_category": {..}}
    per model (→ metrics score, score_ci_low/high, turn1.., groups per category); pairwise gives
    {"score_rate", "n"}.
    """
    task = next(iter(parent.tasks), "judged")
    scores = _mapping((data or {}).get("scores")) if data is not None else _mapping(parent.extra.get("scores"))
    rows = []
    for model, entry in sorted(scores.items()):
        entry = _mapping(entry)
        metrics: dict[str, Any] = {}
        if _is_number(entry.get("mean")):
            metrics["score"] = entry["mean"]
            if _is_number(entry.get("ci_low")) and _is_number(entry.get("ci_high")):
                metrics.update(score_ci_low=entry["ci_low"], score_ci_high=entry["ci_high"])
        metrics.update({k: v for k, v in entry.items()  # pairwise, listwise and rubric headline figures
                        if k in ("score_rate", "mean_rank", "first_place_rate", "overall", "lc_win_rate",
                                 "lc_win_rate_ci_low", "lc_win_rate_ci_high") and _is_number(v)})
        metrics.update({k: v for k, v in _mapping(entry.get("by_turn")).items() if _is_number(v)})
        groups = {str(c): {"score": v} for c, v in _mapping(entry.get("by_category")).items() if _is_number(v)}
        invalid = entry.get("invalid")
        result = TaskRecord.model_validate({"kind": "judged_answers", "family": "judged", "metrics": metrics,
                                            "groups": groups, "n": int(entry["n"]) if _is_number(entry.get("n")) else 0,
                                            "info": {"invalid": invalid} if invalid is not None else {}})
        rows.append(Run(run_id=f"{parent.run_id}#{model}", created=parent.created,
                        model={"backend": "answers", "model": str(model)}, config=parent.config,
                        tasks={task: task_result(task, result)}, source=parent.source, parent=parent.run_id))
    return rows


def load_runs(path: Path) -> list[Run]:
    """Read runs/<run_id>/ (or its results.json); a judged-answers run also yields one run per judged model.

    A run that failed before any task finished yields nothing (it has no numbers to show).
    """
    run = load_run(path)
    if run.status == "failed" and not run.tasks:
        return []
    if run.listed:
        return [run]
    return [run, *judged_model_runs(run)]


def load_run(path: Path) -> Run:
    """Read runs/<run_id>/ (or its results.json) with its manifest.json when present."""
    results_file = path / "results.json" if path.is_dir() else path
    record = load_record(results_file)
    manifest_file = results_file.parent / "manifest.json"
    manifest: dict[str, Any] = {}
    if manifest_file.is_file():
        try:
            manifest = _mapping(orjson.loads(manifest_file.read_bytes()))
        except orjson.JSONDecodeError:
            raise DataError(f"{manifest_file}: not valid JSON; delete or rewrite it") from None
    return run_from_record(record, path=results_file.parent, manifest=manifest)


def discover_results(paths: Iterable[Path]) -> list[Path]:
    """results.json files named by `paths`: files, run directories, or folders of run directories."""
    found: list[Path] = []
    for path in paths:
        if path.is_file():
            found.append(path)
        elif (path / "results.json").is_file():
            found.append(path / "results.json")
        elif path.is_dir():
            found.extend(sorted(p / "results.json" for p in path.iterdir() if (p / "results.json").is_file()))
        else:
            raise DataError(f"{path}: no such file or directory; pass runs/, runs/<run_id>/ or a results.json")
    return list(dict.fromkeys(found))
