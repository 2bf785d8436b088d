"""The library entry point: `evaluate(...)` runs tasks in-process and returns a `RunResult`.

`RunResult` is the typed view of one run directory (results.json, samples/<task>.jsonl, manifest.json), used by
CI gates, notebooks and the report. It is read-only: its mappings are immutable views.

Addressing results: a task is addressed by its name in results.json (`"cmmlu"`), and a group or subtask of it
as `"<task>/<name>"` (`"cmmlu/STEM"`, `"ceval/computer_network"`). For `"task/name"`, groups are looked up
before subtasks; a name that exists as a whole task wins over the split form.

Examples:
    >>> result = RunResult.from_dict({"run_id": "r1", "tasks": {"cmmlu": {
    ...     "metrics": {"acc": 0.41, "acc_stderr": 0.02}, "n": 160,
    ...     "groups": {"STEM": {"acc": 0.35, "n": 60}}}}})
    >>> result.score("cmmlu", "acc"), result.score("cmmlu/STEM", "acc"), result.stderr("cmmlu", "acc")
    (0.41, 0.35, 0.02)
    >>> result.groups("cmmlu")
    {'STEM': {'acc': 0.35, 'n': 60}}
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import orjson

from evalkit.errors import ConfigError, DataError
from evalkit.records import Metric, RunRecord, TaskRecord, dump_record, is_number, metric_names, parse_record

if TYPE_CHECKING:
    import pandas

__all__ = ["MissingResult", "RunResult", "TaskScores", "evaluate", "metric_names"]

Level = Literal["task", "group", "subtask"]


class MissingResult(DataError, KeyError):
    """A task, group, subtask or metric that the run does not contain (also a KeyError)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def _frozen(value: Any) -> Mapping[str, Any]:
    return MappingProxyType(dict(value)) if isinstance(value, Mapping) else MappingProxyType({})


@dataclass(frozen=True)
class TaskScores:
    """One task of a run, as immutable mappings: metrics, groups and subtasks (each a metrics mapping), n, info.

    `record` is the typed `evalkit.records.TaskRecord` it was read from (kind, family, typed metrics).
    """

    name: str
    metrics: Mapping[str, Any]
    groups: Mapping[str, Mapping[str, Any]]
    subtasks: Mapping[str, Mapping[str, Any]]
    n: int | None
    info: Mapping[str, Any]
    record: TaskRecord = field(default_factory=TaskRecord, repr=False, compare=False)

    @classmethod
    def from_record(cls, name: str, task: TaskRecord) -> TaskScores:
        """The read-only view of one `TaskRecord`."""
        return cls(name=name, metrics=_frozen(task.metrics.as_dict()),
                   groups=MappingProxyType({k: _frozen(v.as_dict()) for k, v in task.groups.items()}),
                   subtasks=MappingProxyType({k: _frozen(v.as_dict()) for k, v in task.subtasks.items()}),
                   n=task.n, info=_frozen(task.info), record=task)

    @property
    def kind(self) -> str:
        """The task kind (multiple_choice, perplexity, ...)."""
        return self.record.kind


@dataclass(frozen=True)
class RunResult:
    """One evaluation run: identity, configuration and per-task scores, plus where its files live.

    Attributes:
        run_id: The run directory's name (`20261122-161500-smollm2-3f2a`).
        created: ISO timestamp of the run.
        model: Model identity (backend, name, revision, ...).
        config: The run's flags.
        tasks: Task name -> `TaskScores`.
        versions: Package versions.
        manifest: manifest.json (hashes of task specs, prompts and data), empty when absent.
        path: The run directory, or None for a result built in memory.
    """

    run_id: str
    created: str
    model: Mapping[str, Any]
    config: Mapping[str, Any]
    tasks: Mapping[str, TaskScores]
    versions: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    manifest: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    path: Path | None = None
    record: RunRecord = field(default_factory=lambda: RunRecord(run_id="run"), repr=False, compare=False)

    # ---- construction -------------------------------------------------------------------------------------

    @classmethod
    def from_record(cls, record: RunRecord, *, path: Path | None = None,
                    manifest: Mapping[str, Any] | None = None) -> RunResult:
        """The read-only view of a `RunRecord` (and its manifest)."""
        model = record.model.model_dump(exclude_none=True)
        return cls(run_id=record.run_id, created=record.created, model=_frozen(model), config=_frozen(record.config),
                   tasks=MappingProxyType({k: TaskScores.from_record(k, v) for k, v in record.tasks.items()}),
                   versions=_frozen(record.versions), manifest=_frozen(manifest), path=path, record=record)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, path: Path | None = None,
                  manifest: Mapping[str, Any] | None = None) -> RunResult:
        """Build from a dict shaped like results.json (any schema version, or one converted from another harness)."""
        return cls.from_record(parse_record(data, where=str(path or "results")), path=path, manifest=manifest)

    @classmethod
    def load(cls, path: str | Path) -> RunResult:
        """Read a run directory, or its results.json (manifest.json beside it is read when present).

        An lm-eval results file (`results_<date>.json`, or a folder holding such files: the newest is read) is
        converted with `evalkit.store.convert_lmeval_results`; its `source` is then "lm-eval".

        Raises:
            DataError: the file is missing, not JSON, or neither an evalkit nor an lm-eval results file.
        """
        results_file = _results_file(Path(path))
        record = _read_any_record(results_file)
        manifest_file = results_file.parent / "manifest.json"
        manifest: dict[str, Any] = {}
        if manifest_file.is_file():
            try:
                manifest = orjson.loads(manifest_file.read_bytes())
            except orjson.JSONDecodeError:
                raise DataError(f"{manifest_file}: not valid JSON; rewrite it or delete it") from None
        return cls.from_record(record, path=results_file.parent, manifest=manifest)

    @property
    def demo_data(self) -> bool:
        """True when a task was scored on evalkit's shipped demo set rather than the real benchmark."""
        return self.record.demo_data

    # ---- lookups ------------------------------------------------------------------------------------------

    def resolve(self, address: str) -> tuple[TaskScores, Level, str | None, Mapping[str, Any]]:
        """Find `"task"` or `"task/group-or-subtask"`: (task scores, level, sub-name, metrics mapping).

        Raises:
            MissingResult: no such task, group or subtask; the message lists what exists.
        """
        if address in self.tasks:
            scores = self.tasks[address]
            return scores, "task", None, scores.metrics
        task, sep, sub = address.partition("/")
        if task not in self.tasks:
            raise MissingResult(f"run {self.run_id} has no task '{task}' (tasks: {', '.join(self.tasks) or 'none'})")
        scores = self.tasks[task]
        if not sep:
            raise MissingResult(f"run {self.run_id} has no task '{address}'")
        if sub in scores.groups:
            return scores, "group", sub, scores.groups[sub]
        if sub in scores.subtasks:
            return scores, "subtask", sub, scores.subtasks[sub]
        known = [*scores.groups, *scores.subtasks]
        raise MissingResult(f"task '{task}' of run {self.run_id} has no group or subtask '{sub}' "
                            f"(known: {', '.join(known) or 'none'})")

    def metrics(self, task: str) -> dict[str, float]:
        """All numeric metrics of a task, group or subtask (stderrs and counts included)."""
        values = self.resolve(task)[3]
        return {k: float(v) for k, v in values.items() if is_number(v)}

    def score(self, task: str, metric: str) -> float:
        """One metric of a task (`"cmmlu"`) or of one of its groups/subtasks (`"cmmlu/STEM"`).

        Raises:
            MissingResult: the task, group/subtask or metric is absent.
        """
        values = self.resolve(task)[3]
        value = values.get(metric)
        if not is_number(value):
            raise MissingResult(f"'{task}' in run {self.run_id} has no metric '{metric}' "
                                f"(metrics: {', '.join(metric_names(values)) or 'none'})")
        return float(value)

    def stderr(self, task: str, metric: str) -> float | None:
        """The standard error stored as `<metric>_stderr`, or None."""
        value = self.resolve(task)[3].get(f"{metric}_stderr")
        return float(value) if is_number(value) else None

    def metric(self, task: str, metric: str) -> Metric:
        """The typed `Metric` (value, stderr, CI, n, direction) of a task, group or subtask.

        Raises:
            MissingResult: the task, group/subtask or metric is absent.
        """
        scores, _, sub, _ = self.resolve(task)
        found = scores.record.metric(metric, sub)
        if found is None:
            raise MissingResult(f"'{task}' in run {self.run_id} has no metric '{metric}'")
        return found

    def groups(self, task: str) -> dict[str, dict[str, Any]]:
        """The groups of a task (e.g. C-Eval/CMMLU categories) as {group: metrics}."""
        return {k: dict(v) for k, v in self.resolve(task)[0].groups.items()}

    def subtasks(self, task: str) -> dict[str, dict[str, Any]]:
        """The subtasks (subjects, datasets) of a task as {subtask: metrics}."""
        return {k: dict(v) for k, v in self.resolve(task)[0].subtasks.items()}

    def sample_file(self, task: str) -> Path:
        """Path of samples/<task>.jsonl for a task name (without a /subtask part)."""
        if self.path is None:
            raise DataError(f"run {self.run_id} was built in memory; per-sample records need its run directory")
        return self.path / "samples" / f"{task}.jsonl"

    def samples(self, task: str) -> list[dict[str, Any]]:
        """Per-sample records of a task, in file order; `"task/subset"` keeps the samples of one subset.

        Raises:
            DataError: the run has no samples file for the task.
        """
        from evalkit.store import read_jsonl

        name, _, subset = task.partition("/") if task not in self.tasks else (task, "", "")
        path = self.sample_file(name)
        if not path.is_file():
            raise DataError(f"{path}: no samples for task '{name}' in this run")
        records = list(read_jsonl(path))
        if subset:
            records = [r for r in records if str(r.get("subset")) == subset]
        return records

    # ---- export -------------------------------------------------------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        """One dict per (task or group/subtask, metric): task, level, name, metric, value, stderr, n."""
        out: list[dict[str, Any]] = []
        for task, scores in self.tasks.items():
            scopes: list[tuple[Level, str | None, Mapping[str, Any]]] = [("task", None, scores.metrics)]
            scopes += [("group", g, v) for g, v in scores.groups.items()]
            scopes += [("subtask", s, v) for s, v in scores.subtasks.items()]
            for level, name, values in scopes:
                n = values.get("n", scores.n if level == "task" else None)
                for metric in metric_names(values):
                    stderr = values.get(f"{metric}_stderr")
                    out.append({"task": task, "level": level, "name": name, "metric": metric,
                                "value": float(values[metric]),
                                "stderr": float(stderr) if is_number(stderr) else None,
                                "n": int(n) if is_number(n) else None})
        return out

    def to_pandas(self) -> pandas.DataFrame:
        """A DataFrame with one row per task (and group/subtask) and metric, with a `stderr` column.

        Columns: task, level ("task", "group", "subtask"), name (group/subtask or None), metric, value, stderr, n.
        Filter `df[df.level == "task"]` for the headline rows.
        """
        try:
            import pandas as pd
        except ModuleNotFoundError:
            from evalkit.errors import MissingDependency

            raise MissingDependency("RunResult.to_pandas()", "data", "pandas") from None
        columns = ["task", "level", "name", "metric", "value", "stderr", "n"]
        return pd.DataFrame(self.rows(), columns=columns)

    def save(self, directory: str | Path) -> Path:
        """Write results.json (and manifest.json, and the samples when this run has them) into `directory`.

        Returns:
            The directory, which `RunResult.load` reads back.
        """
        target = Path(directory)
        (target / "samples").mkdir(parents=True, exist_ok=True)
        opts = orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
        (target / "results.json").write_bytes(dump_record(self.record))
        if self.manifest:
            (target / "manifest.json").write_bytes(orjson.dumps(dict(self.manifest), option=opts, default=dict)
                                                   + b"\n")
        source = self.path / "samples" if self.path else None
        if source is not None and source.is_dir() and source.resolve() != (target / "samples").resolve():
            for file in source.glob("*.jsonl"):
                shutil.copyfile(file, target / "samples" / file.name)
        return target


def _results_file(target: Path) -> Path:
    """results.json of a run directory; else the newest lm-eval results_*.json in (or below) a folder."""
    if not target.is_dir() or (target / "results.json").is_file():
        return target / "results.json" if target.is_dir() else target
    found = sorted(target.glob("results_*.json")) or sorted(target.glob("*/results_*.json"))
    return found[-1] if found else target / "results.json"


def _read_any_record(path: Path) -> RunRecord:
    """An evalkit results.json, or an lm-eval results file converted to the run record."""
    from evalkit.records import load_record
    from evalkit.store import convert_lmeval_results

    try:
        raw = orjson.loads(path.read_bytes())
    except (FileNotFoundError, IsADirectoryError, orjson.JSONDecodeError):
        return load_record(path)  # its errors name the fix
    if isinstance(raw, dict) and "tasks" not in raw and isinstance(raw.get("results"), Mapping):
        return parse_record(convert_lmeval_results(raw, name=path.stem), where=str(path))
    return parse_record(raw, where=str(path))


_PATH_OPTIONS = ("output", "data_dir", "cache")


def evaluate(model: Any = "smollm2", tasks: str | Sequence[str] = "ceval,cmmlu,wikitext",
             **options: Any) -> RunResult:
    """Run an evaluation in this process (the same machinery as `evalkit run`) and return its result.

    Args:
        model: A model name or spec (`"smollm2"`, `"hf:<path>"`, `"openai:<model>"`), or a backend object that
            is already loaded (passed through to the runner unchanged).
        tasks: Comma-separated string or a list of task selections (`["cmmlu:agronomy", "ceval"]`).
        **options: Any other `evalkit run` option, by its Python name: `limit`, `num_fewshot`, `data_dir`,
            `output`, `seed`, `task_args`, `model_args`, `batch_size`, `judge_models`, ...

    Returns:
        The run, read back from the run directory it wrote.

    Raises:
        ConfigError: an option name the runner does not know.

    Examples:
        >>> result = evaluate("smollm2", ["cmmlu:agronomy"], limit=20)  # doctest: +SKIP
        >>> result.score("cmmlu", "acc") > 0.25  # doctest: +SKIP
        True
    """
    from evalkit.runner import RunOptions, execute

    task_arg = tasks if isinstance(tasks, str) else ",".join(tasks)
    for key in _PATH_OPTIONS:
        if isinstance(options.get(key), str):
            options[key] = Path(options[key])
    if isinstance(options.get("judge_models"), (list, str)):
        value = options["judge_models"]
        options["judge_models"] = (value,) if isinstance(value, str) else tuple(value)
    try:
        run_options = RunOptions(model=model, tasks=task_arg, **options)
    except TypeError as exc:
        raise ConfigError(f"evaluate(): {exc}; options are the Python names of `evalkit run` flags") from None
    return RunResult.load(execute(run_options))
