"""The run record: one typed tree that the runner and `evalkit judge` write and every reader reads.

    RunRecord ─┬─ model: ModelRecord          what was evaluated (identity; never secrets)
               ├─ config                      the run's flags
               ├─ tasks: {name: TaskRecord}   kind, family, metrics / groups / subtasks (each a `Scores` table)
               ├─ failed_tasks: {name: error} tasks that stopped with an error; the others are kept
               └─ versions, timing, backend_stats, cache_stats, warnings, status

A `Scores` table keeps the wire shape of results.json (`{"acc": 0.41, "acc_stderr": 0.02, "n": 160}`) and gives
typed `Metric`s on demand, with direction, uncertainty and count filled in by the rules of `_rules`.

Examples:
    >>> task = TaskRecord(kind="multiple_choice", metrics=Scores({"acc": 0.4, "acc_stderr": 0.05, "n": 20}), n=20)
    >>> task.family, task.headline
    ('knowledge', 'acc')
    >>> task.metric("acc")
    Metric(name='acc', value=0.4, stderr=0.05, ci_low=None, ci_high=None, n=20, higher_is_better=True, note=None)
    >>> Scores({"word_perplexity": 31.4, "n": 6}).metric("word_perplexity").higher_is_better
    False
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator

from evalkit.records._rules import (
    METRIC_SUFFIXES,
    family_of_kind,
    headline_metric,
    higher_is_better,
    is_number,
    metric_names,
)

__all__ = ["SCHEMA_VERSION", "Metric", "ModelRecord", "RunRecord", "Scores", "TaskRecord"]

SCHEMA_VERSION = "2"
Status = Literal["running", "complete", "failed"]


class Metric(BaseModel):
    """One number with what a reader needs to compare it: uncertainty, count and direction."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: float | None
    stderr: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    higher_is_better: bool = True
    note: str | None = None  # why `value` is None (e.g. an overflow)


class Scores(RootModel[dict[str, float | int | None]]):
    """One metrics table (a task's headline, a group or a subtask) in the flat results.json shape.

    Keys are metric names, their uncertainties (`<m>_stderr`, `<m>_ci_low`, `<m>_ci_high`) and counts
    (`n`, `n_*`, `subjects`). A value of null is a metric that could not be computed.
    """

    root: dict[str, float | int | None] = Field(default_factory=dict)

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]
        return iter(self.root)

    def __getitem__(self, key: str) -> float | int | None:
        return self.root[key]

    def __contains__(self, key: object) -> bool:
        return key in self.root

    def __len__(self) -> int:
        return len(self.root)

    def get(self, key: str, default: Any = None) -> Any:
        """The raw value of a key, or `default`."""
        return self.root.get(key, default)

    def as_dict(self) -> dict[str, float | int | None]:
        """A plain copy of the table."""
        return dict(self.root)

    def names(self) -> list[str]:
        """Metric names (no uncertainties, no counts), in stored order."""
        return metric_names(self.root)

    @property
    def headline(self) -> str | None:
        """The metric a leaderboard shows for this table."""
        return headline_metric(self.root)

    @property
    def count(self) -> int | None:
        """The table's sample count `n`, when stored."""
        n = self.root.get("n")
        return int(n) if is_number(n) else None

    def metric(self, name: str, *, n: int | None = None, lower_is_better: frozenset[str] = frozenset(),
               note: str | None = None) -> Metric | None:
        """The typed `Metric` called `name`, or None when the table has no such key."""
        if name not in self.root:
            return None
        raw = self.root[name]
        extras = {suffix[1:]: self.root.get(f"{name}{suffix}") for suffix in METRIC_SUFFIXES}
        count = self.count if self.count is not None else n
        return Metric(name=name, value=float(raw) if is_number(raw) else None,
                      stderr=_float(extras["stderr"]), ci_low=_float(extras["ci_low"]), ci_high=_float(extras["ci_high"]),
                      n=count, higher_is_better=higher_is_better(name) and name not in lower_is_better, note=note)


def _float(value: Any) -> float | None:
    return float(value) if is_number(value) else None


class TaskRecord(BaseModel):
    """One task of a run: what kind it is, its numbers, and facts about how they were obtained (`info`)."""

    model_config = ConfigDict(extra="forbid")

    kind: str = "other"
    family: str = ""
    metrics: Scores = Field(default_factory=Scores)
    groups: dict[str, Scores] = Field(default_factory=dict)
    subtasks: dict[str, Scores] = Field(default_factory=dict)
    n: int = 0
    info: dict[str, Any] = Field(default_factory=dict)
    lower_is_better: list[str] = Field(default_factory=list)  # declared by the task, beyond the shared rules
    demo_data: bool = False  # scored on evalkit's shipped demo set, not the real benchmark

    @model_validator(mode="after")
    def _fill_family(self) -> TaskRecord:
        self.family = family_of_kind(self.kind, self.family)
        return self

    @property
    def headline(self) -> str | None:
        """The metric the overview leaderboard shows for this task."""
        return self.metrics.headline

    def metric(self, name: str, group: str | None = None) -> Metric | None:
        """A typed metric of the task, or of one of its groups or subtasks (`group` names either)."""
        table = self.metrics if group is None else self.groups.get(group, self.subtasks.get(group))
        if table is None:
            return None
        notes = self.info.get("metric_notes")
        note = notes.get(name) if isinstance(notes, Mapping) and group is None else None
        return table.metric(name, n=self.n if group is None else None, lower_is_better=frozenset(self.lower_is_better),
                            note=note)

    def is_higher_better(self, name: str) -> bool:
        """The direction of a metric of this task (shared rules, then the task's own declaration)."""
        return higher_is_better(name) and name not in self.lower_is_better


class ModelRecord(BaseModel):
    """What was evaluated: the backend's identity (`backend`, `model`, `revision`, details) and the name the
    user typed (`name`). A judged-answers run lists its `models` instead."""

    model_config = ConfigDict(extra="allow")

    backend: str = ""
    model: str = ""
    revision: str = ""
    name: str | None = None
    models: list[str] | None = None

    @property
    def label(self) -> str:
        """The name people know: the one they typed, else the identity's model (a path shortened)."""
        text = self.name or self.model or "unknown"
        if text.startswith(("/", "./", "~")):
            return text.rstrip("/").rsplit("/", 1)[-1] or text
        return text

    @property
    def details(self) -> dict[str, Any]:
        """Identity details beyond backend/model/revision (file hashes, adapters, server versions)."""
        return dict(self.model_extra or {})


class RunRecord(BaseModel):
    """One results.json."""

    model_config = ConfigDict(extra="forbid")

    schema_version: str = SCHEMA_VERSION
    run_id: str
    created: str = ""
    status: Status = "complete"
    error: str | None = None
    source: str = "evalkit"  # "evalkit", "evalkit-judge" (judged answer files), "lm-eval" (imported)
    model: ModelRecord = Field(default_factory=ModelRecord)
    config: dict[str, Any] = Field(default_factory=dict)
    tasks: dict[str, TaskRecord] = Field(default_factory=dict)
    failed_tasks: dict[str, str] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    timing: dict[str, float] = Field(default_factory=dict)
    backend_stats: dict[str, Any] | None = None
    cache_stats: dict[str, Any] | None = None
    warnings: list[str] = Field(default_factory=list)
    # judged-answers runs (`evalkit judge`): the judge, per-model scores, votes, reliability and ranking
    judge: dict[str, Any] | None = None
    scores: dict[str, Any] | None = None
    votes: dict[str, Any] | None = None
    reliability: dict[str, Any] | None = None
    ranking: list[dict[str, Any]] | None = None

    @property
    def demo_data(self) -> bool:
        """True when any task was scored on the shipped demo set."""
        return any(task.demo_data for task in self.tasks.values())

    @property
    def is_judged_answers(self) -> bool:
        """True for an `evalkit judge` run over answer files (several models, one table per model)."""
        return self.model.models is not None and self.scores is not None
