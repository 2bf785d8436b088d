"""The data behind the report pages: runs read from disk, their task results, and leaderboards.

Everything here is plain data (frozen dataclasses) computed from results.json files; templates only
format it. Nothing assumes a key exists: a task shows whatever metrics, groups and subtasks it has, and
the special sections (judge reliability, rankings, length buckets) appear only when their keys are present.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import orjson

from evalkit.errors import DataError

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
    "run_from_results",
    "slug",
    "task_result",
]

FAMILY_LABELS: dict[str, str] = {
    "multiple_choice": "Multiple choice",
    "perplexity": "Perplexity",
    "multiturn_judge": "Judged chat",
    "longcontext": "Long context",
    "other": "Other",
}
_FAMILY_ALIASES = {"mc": "multiple_choice", "judged": "multiturn_judge", "mt_bench": "multiturn_judge",
                   "longbench": "longcontext", "ppl": "perplexity"}
_HEADLINES = ("acc", "acc_norm", "score", "exact_match", "f1", "rouge", "word_perplexity",
              "char_perplexity", "token_perplexity", "byte_perplexity", "bits_per_byte")
_LOWER_BETTER = re.compile(r"perplexity|bits_per_byte|loss|(^|_)ece$|error|(^|_)ppl$")
_FRACTION = re.compile(r"(^|_)(acc|accuracy|exact_match|em|f1|rouge\w*|match|rate|kappa|consistency|win)"
                       r"($|_)|^acc")
_COUNT_KEYS = frozenset({"n", "subjects", "count", "total", "datasets", "items", "invalid", "battles", "truncated",
                         "retries", "rank"})
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


def slug(text: str) -> str:
    """A file-name-safe form of `text` (run ids, task names), stable for the same input.

    Examples:
        >>> slug("cmmlu:agronomy/é")
        'cmmlu-agronomy'
    """
    return _SLUG.sub("-", text).strip("-.") or "x"


def lower_is_better(metric: str) -> bool:
    """True for perplexities, bits per byte, losses and errors."""
    return bool(_LOWER_BETTER.search(metric))


def is_fraction_metric(metric: str) -> bool:
    """True for metrics stored as a fraction in [0, 1] (accuracy-like); shown as percentages."""
    return bool(_FRACTION.search(metric)) and not lower_is_better(metric)


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def metric_names(values: Mapping[str, Any]) -> list[str]:
    """The numeric metric keys of a metrics mapping, without stderrs and counts, in stored order."""
    return [k for k, v in values.items()
            if _is_number(v) and not k.endswith(("_stderr", "_ci_low", "_ci_high")) and k not in _COUNT_KEYS
            and not k.startswith("n_")]


def headline_metric(values: Mapping[str, Any]) -> str | None:
    """The metric a leaderboard shows for a task or group: acc, score, ... else the first numeric one."""
    names = metric_names(values)
    for name in _HEADLINES:
        if name in names:
            return name
    return names[0] if names else None


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

    @property
    def headline(self) -> str | None:
        """The metric the overview leaderboard shows for this task."""
        return headline_metric(self.metrics)

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


def _family(name: str, task: Mapping[str, Any]) -> str:
    info = _mapping(task.get("info"))
    declared = task.get("kind") or info.get("kind") or info.get("family")
    if isinstance(declared, str):
        declared = _FAMILY_ALIASES.get(declared, declared)
        return declared if declared in FAMILY_LABELS else "other"
    metrics = _mapping(task.get("metrics"))
    lowered = name.lower()
    if "reliability" in task or "ranking" in task or "reliability" in info or "mt_bench" in lowered:
        return "multiturn_judge"
    if "longbench" in lowered:
        return "longcontext"
    if any(lower_is_better(k) for k in metric_names(metrics)):
        return "perplexity"
    if "acc" in metrics or "acc_norm" in metrics:
        return "multiple_choice"
    return "other"


def task_result(name: str, task: Mapping[str, Any]) -> TaskResult:
    """Read one entry of results.json["tasks"], tolerating missing keys."""
    n = task.get("n")
    return TaskResult(name=name, family=_family(name, task), metrics=_mapping(task.get("metrics")),
                      groups=_nested(task.get("groups")), subtasks=_nested(task.get("subtasks")),
                      n=int(n) if _is_number(n) else None, info=_mapping(task.get("info")), raw=dict(task))


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

    @property
    def label(self) -> str:
        """The model name people know (a local path is shortened to its last part)."""
        name = str(self.model.get("name") or self.model.get("model") or self.run_id)
        return Path(name).name or name if name.startswith(("/", "./", "~")) else name

    @property
    def page_id(self) -> str:
        """The run whose page shows this result (a model of a judged-answers run links to that run)."""
        return self.parent or self.run_id

    @property
    def model_key(self) -> tuple[str, str, str]:
        """Identity used to merge runs of the same model into one leaderboard row."""
        return (str(self.model.get("backend", "")), self.label, str(self.model.get("revision") or ""))

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


def run_from_results(data: Mapping[str, Any], *, path: Path | None = None, source: str | None = None,
                     manifest: Mapping[str, Any] | None = None) -> Run:
    """Build a `Run` from a results dict (the shape of results.json)."""
    tasks = _mapping(data.get("tasks"))
    model = data.get("model")
    model_map = _mapping(model) if isinstance(model, Mapping) else {"model": str(model or "unknown")}
    if _is_answers_run(data) and "name" not in model_map:
        model_map["name"] = f"judged answers of {len(model_map['models'])} models"
    tasks = {k: v for k, v in tasks.items() if isinstance(v, Mapping)}
    if len(tasks) == 1:  # `evalkit judge` keeps reliability and ranking beside "tasks"
        (name, only), = tasks.items()
        tasks = {name: {**{k: data[k] for k in ("reliability", "ranking") if k in data}, **only}}
    return Run(run_id=str(data.get("run_id") or (path.name if path else "run")),
               created=str(data.get("created") or ""), model=model_map, config=_mapping(data.get("config")),
               tasks={str(k): task_result(str(k), v) for k, v in sorted(tasks.items())},
               versions=_mapping(data.get("versions")), timing=_mapping(data.get("timing")),
               usage={**_mapping(data.get("usage")), **_prefixed("backend", data.get("backend_stats")),
                      **_prefixed("judge", _mapping(data.get("judge")).get("cost"))},
               manifest=_mapping(manifest), source=str(source or data.get("source") or "evalkit"), path=path,
               listed=not _is_answers_run(data), extra={k: data[k] for k in ("judge", "warnings") if k in data})


def _prefixed(prefix: str, value: Any) -> dict[str, Any]:
    return {f"{prefix}.{k}": v for k, v in _mapping(value).items()}


def _is_answers_run(data: Mapping[str, Any]) -> bool:
    model = data.get("model")
    return isinstance(model, Mapping) and isinstance(model.get("models"), list) and isinstance(data.get("scores"),
                                                                                                  Mapping)


def judged_model_runs(parent: Run, data: Mapping[str, Any]) -> list[Run]:
    """One leaderboard row per model of a judged-answers run (`evalkit judge`: results["scores"][model]).

    Single grading gives {"mean", "ci_low", "ci_high", "n", "by_turn": {"turn1": ..}, "by_category": {..}}
    per model (→ metrics score, score_ci_low/high, turn1.., groups per category); pairwise gives
    {"score_rate", "n"}.
    """
    task = next(iter(parent.tasks), "judged")
    rows = []
    for model, entry in sorted(_mapping(data.get("scores")).items()):
        entry = _mapping(entry)
        metrics: dict[str, Any] = {}
        if _is_number(entry.get("mean")):
            metrics["score"] = entry["mean"]
            if _is_number(entry.get("ci_low")) and _is_number(entry.get("ci_high")):
                metrics.update(score_ci_low=entry["ci_low"], score_ci_high=entry["ci_high"])
        metrics.update({k: v for k, v in entry.items() if k == "score_rate" and _is_number(v)})
        metrics.update({k: v for k, v in _mapping(entry.get("by_turn")).items() if _is_number(v)})
        groups = {str(c): {"score": v} for c, v in _mapping(entry.get("by_category")).items() if _is_number(v)}
        result = {"metrics": metrics, "groups": groups, "n": entry.get("n"),
                  "info": {"kind": "multiturn_judge", "invalid": entry.get("invalid")}}
        rows.append(Run(run_id=f"{parent.run_id}#{model}", created=parent.created,
                        model={"backend": "answers", "model": str(model)}, config=parent.config,
                        tasks={task: task_result(task, result)}, source=parent.source, parent=parent.run_id))
    return rows


def load_runs(path: Path) -> list[Run]:
    """Read runs/<run_id>/ (or its results.json); a judged-answers run also yields one run per judged model."""
    from evalkit.store._rundir import read_results

    results_file = path / "results.json" if path.is_dir() else path
    run = load_run(results_file)
    if run.listed:
        return [run]
    return [run, *judged_model_runs(run, read_results(results_file))]


def load_run(path: Path) -> Run:
    """Read runs/<run_id>/ (or its results.json) with its manifest.json when present."""
    from evalkit.store._rundir import read_results

    results_file = path / "results.json" if path.is_dir() else path
    data = read_results(results_file)
    manifest_file = results_file.parent / "manifest.json"
    manifest: dict[str, Any] = {}
    if manifest_file.is_file():
        try:
            manifest = _mapping(orjson.loads(manifest_file.read_bytes()))
        except orjson.JSONDecodeError:
            raise DataError(f"{manifest_file}: not valid JSON; delete or rewrite it") from None
    return run_from_results(data, path=results_file.parent, manifest=manifest)


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
