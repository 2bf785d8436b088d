"""Leaderboards: rows (models, merged over their runs) × columns (task and group metrics), ranked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from evalkit.report._model import (
    FAMILY_LABELS,
    Run,
    TaskResult,
    Value,
    headline_metric,
    lower_is_better,
    metric_names,
    slug,
)

__all__ = ["Cell", "Column", "Leaderboard", "Row", "build_leaderboard", "merge_rows", "overview_columns",
           "task_columns"]


@dataclass(frozen=True)
class Column:
    """One leaderboard column: a metric of a task, or of one group of a task."""

    task: str
    metric: str
    family: str
    group: str | None = None

    @property
    def id(self) -> str:
        """Stable identifier (used in HTML data attributes)."""
        parts = (self.task, self.metric) if self.group is None else (self.task, self.group, self.metric)
        return slug(".".join(parts))

    @property
    def label(self) -> str:
        """Header text."""
        return self.group if self.group is not None else self.task

    @property
    def lower_better(self) -> bool:
        """Whether smaller numbers win."""
        return lower_is_better(self.metric)


@dataclass(frozen=True)
class Cell:
    """A model's value in one column with its rank there."""

    value: Value
    run_id: str
    rank: int
    best: bool
    demo: bool = False  # scored on evalkit's demo set, not the real benchmark


@dataclass(frozen=True)
class Row:
    """A model: the latest result of each task over all its runs."""

    label: str
    source: str
    results: Mapping[str, tuple[Run, TaskResult]]
    cells: Mapping[str, Cell] = field(default_factory=dict)
    win_rate: float | None = None
    rank: int | None = None

    @property
    def runs(self) -> list[Run]:
        """The distinct runs behind this row, oldest first."""
        seen: dict[str, Run] = {}
        for run, _ in self.results.values():
            seen.setdefault(run.run_id, run)
        return sorted(seen.values(), key=lambda r: (r.created, r.run_id))


@dataclass(frozen=True)
class Leaderboard:
    """Rows (models) × columns (task and group metrics), ranked."""

    columns: tuple[Column, ...]
    rows: tuple[Row, ...]

    @property
    def families(self) -> list[str]:
        """Task families present, in a fixed order."""
        present = {c.family for c in self.columns}
        return [f for f in FAMILY_LABELS if f in present]


def merge_rows(runs: Sequence[Run]) -> list[Row]:
    """One row per model identity; for each task the newest run (by `created`, then run id) wins."""
    by_key: dict[tuple[str, str, str], dict[str, tuple[Run, TaskResult]]] = {}
    sources: dict[tuple[str, str, str], str] = {}
    for run in sorted((r for r in runs if r.listed), key=lambda r: (r.created, r.run_id)):
        results = by_key.setdefault(run.model_key, {})
        sources[run.model_key] = run.source
        for name, task in run.tasks.items():
            results[name] = (run, task)
    labels = [key[1] for key in by_key]
    rows = []
    for key, results in by_key.items():
        label = key[1]
        if labels.count(label) > 1:
            label = f"{label} ({'@' + key[2] if key[2] else key[0] or sources[key]})"
        rows.append(Row(label=label, source=sources[key], results=dict(sorted(results.items()))))
    return rows


def _competition_ranks(values: Sequence[float], lower_better: bool) -> list[int]:
    keyed = [(-v if not lower_better else v) for v in values]
    return [1 + sum(other < mine for other in keyed) for mine in keyed]


def _rank_column(rows: Sequence[Row], column: Column) -> dict[int, Cell]:
    found: list[tuple[int, Value, str, bool]] = []
    for index, row in enumerate(rows):
        pair = row.results.get(column.task)
        if pair is None:
            continue
        value = pair[1].value(column.metric, column.group)
        if value is not None:
            found.append((index, value, pair[0].page_id, bool(pair[1].info.get("demo_data"))))
    ranks = _competition_ranks([v.value for _, v, _, _ in found], column.lower_better)
    return {index: Cell(value, run_id, rank, best=rank == 1 and len(found) > 1, demo=demo)
            for (index, value, run_id, demo), rank in zip(found, ranks)}


def overview_columns(rows: Sequence[Row], *, groups: bool = True) -> list[Column]:
    """Headline metric of every task, then of each of its groups."""
    tasks: dict[str, TaskResult] = {}
    for row in rows:
        for name, (_, task) in row.results.items():
            tasks.setdefault(name, task)
    columns: list[Column] = []
    for name in sorted(tasks):
        task = tasks[name]
        if task.headline is not None:
            columns.append(Column(name, task.headline, task.family))
        if groups:
            group_names = dict.fromkeys(g for row in rows if name in row.results for g in row.results[name][1].groups)
            for group in group_names:
                metric = _group_metric(rows, name, group, task.headline)
                if metric is not None:
                    columns.append(Column(name, metric, task.family, group))
    return columns


def _group_metric(rows: Sequence[Row], task: str, group: str, preferred: str | None) -> str | None:
    for row in rows:
        if task in row.results and group in row.results[task][1].groups:
            values = row.results[task][1].groups[group]
            if preferred is not None and preferred in values:
                return preferred
            return headline_metric(values)
    return None


def task_columns(rows: Sequence[Row], task: str) -> list[Column]:
    """Every metric of one task (headline first), then the headline of each group."""
    names: dict[str, None] = {}
    family = "other"
    for row in rows:
        if task in row.results:
            result = row.results[task][1]
            family = result.family
            if result.headline:
                names.setdefault(result.headline)
            names.update(dict.fromkeys(metric_names(result.metrics)))
    columns = [Column(task, m, family) for m in names]
    return columns + [c for c in overview_columns([r for r in rows if task in r.results]) if c.group is not None
                      and c.task == task]


def build_leaderboard(rows: Sequence[Row], columns: Sequence[Column]) -> Leaderboard:
    """Rank every column, then order rows by mean win rate over the task (non-group) columns.

    A model's win rate in a column is the share of other models with a value there that it beats (ties
    count half); its mean over the columns it has a value in orders the board, so a missing task neither
    helps nor hurts. Rows without any comparable column go last, by name.
    """
    ranked = {c.id: _rank_column(rows, c) for c in columns}
    headline = [c for c in columns if c.group is None] or list(columns)
    rates: list[float | None] = []
    for index, row in enumerate(rows):
        shares = []
        for column in headline:
            cells = ranked[column.id]
            if index in cells and len(cells) > 1:
                mine = cells[index].value.value
                sign = -1.0 if column.lower_better else 1.0
                wins = sum((sign * (c.value.value - mine) < 0) + 0.5 * (c.value.value == mine)
                           for i, c in cells.items() if i != index)
                shares.append(wins / (len(cells) - 1))
        rates.append(sum(shares) / len(shares) if shares else None)
    order = sorted(range(len(rows)), key=lambda i: (rates[i] is None, -(rates[i] or 0.0), rows[i].label))
    known = [rate for rate in rates if rate is not None]
    result = []
    for i in order:
        rate = rates[i]
        rank = None if rate is None else 1 + sum(other > rate + 1e-12 for other in known)
        row_cells = {c.id: ranked[c.id][i] for c in columns if i in ranked[c.id]}
        result.append(Row(rows[i].label, rows[i].source, rows[i].results, row_cells, rate, rank))
    return Leaderboard(tuple(columns), tuple(result))
