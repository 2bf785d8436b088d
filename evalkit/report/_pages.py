"""What the task and run pages show, computed from the leaderboard (templates only lay it out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from evalkit.report._board import Leaderboard
from evalkit.report._charts import Bar, bar_chart, radar_chart
from evalkit.report._model import (
    Run,
    TaskResult,
    format_value,
    headline_metric,
    is_fraction_metric,
    lower_is_better,
    metric_names,
)

__all__ = ["breakdown", "run_context", "task_context"]

HEAT_LEVELS = 5
_RADAR_SERIES = 8


def _scale(metric: str) -> float:
    return 100.0 if is_fraction_metric(metric) else 1.0


def _heat(value: float, lo: float, hi: float, lower_better: bool) -> str:
    if hi - lo < 1e-12:
        return "h2"
    share = (value - lo) / (hi - lo)
    if lower_better:
        share = 1.0 - share
    return f"h{min(HEAT_LEVELS - 1, int(share * HEAT_LEVELS))}"


def breakdown(title: str, part_label: str, labels: Sequence[str], tables: Sequence[Mapping[str, Mapping[str, Any]]],
              metric: str | None = None, links: Sequence[str | None] = ()) -> dict[str, Any] | None:
    """A table of named parts (groups, subjects, buckets) × models, with heat classes per part.

    `tables[i]` maps part name → values for model `labels[i]`. Heat compares models within a part; with
    one model it compares the parts. `links[i]`, when given, is model i's sample browser: each cell links to
    it filtered to that part (`#subset=<part>`).
    """
    parts = list(dict.fromkeys(name for table in tables for name in table))
    if not parts:
        return None
    metric = metric or next((m for t in tables for v in t.values() if (m := headline_metric(v))), None)
    if metric is None:
        return None
    grid = [[_number(table.get(part, {}).get(metric)) for table in tables] for part in parts]
    flat = [v for line in grid for v in line if v is not None]
    rows = []
    for part, line in zip(parts, grid):
        present = [v for v in line if v is not None] if len(labels) > 1 else flat
        cells = []
        for i, (table, value) in enumerate(zip(tables, line)):
            if value is None:
                cells.append({"text": "", "heat": "", "title": "not run", "href": None})
                continue
            values = table[part]
            stderr = _number(values.get(f"{metric}_stderr"))
            note = f" ± {format_value(metric, 1.96 * stderr)} (95% CI)" if stderr is not None else ""
            count = values.get("n")
            cells.append({"text": format_value(metric, value),
                          "heat": _heat(value, min(present), max(present), lower_is_better(metric)),
                          "title": f"{metric} {format_value(metric, value)}{note}" + (f", n={count}" if count else ""),
                          "href": links[i] if i < len(links) else None})
        rows.append({"name": part, "cells": cells})
    return {"title": title, "part": part_label, "metric": metric, "models": list(labels), "rows": rows}


_JUDGE_TOTALS = ("judge_score", "judge_valid_rate")


def _aspects(metrics: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A rubric judge's per-aspect means (`judge_<aspect>` metrics; CMB-Clin's four aspects) as a breakdown."""
    return {key[len("judge_"):]: {"score": value} for key, value in metrics.items()
            if key.startswith("judge_") and not key.startswith(_JUDGE_TOTALS) and not key.endswith("_stderr")
            and _number(value) is not None}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _headline_chart(board: Leaderboard, task: str) -> Any:
    column = next((c for c in board.columns if c.group is None and c.task == task), None)
    if column is None:
        return ""
    scale = _scale(column.metric)
    bars = []
    for row in sorted(board.rows, key=lambda r: r.cells[column.id].rank if column.id in r.cells else 10**9):
        cell = row.cells.get(column.id)
        if cell is None:
            continue
        ci = cell.value.ci95
        if ci is not None and scale == 100:  # a normal-approximation interval of a rate stays in [0, 1]
            ci = (max(ci[0], 0.0), min(ci[1], 1.0))
        bars.append(Bar(row.label, cell.value.value * scale, ci[0] * scale if ci else None,
                        ci[1] * scale if ci else None))
    unit = " (%)" if scale == 100 else ""
    return bar_chart(bars, title=f"{task}: {column.metric}{unit} with 95% CI", zero=not column.lower_better,
                     fmt="{:.1f}" if scale == 100 else "{:.2f}")


def _ranking(results: Sequence[tuple[str, Run, TaskResult]]) -> dict[str, Any] | None:
    for _, run, result in sorted(results, key=lambda r: (r[1].created, r[1].run_id), reverse=True):
        rows = result.ranking
        if rows:
            bars = [Bar(str(r.get("model", "?")), float(r["rating"]),
                        _number(r.get("ci_low")), _number(r.get("ci_high"))) for r in rows]
            return {"run": run, "rows": rows,
                    "chart": bar_chart(bars, title="Bradley-Terry rating with 95% CI", zero=False, fmt="{:.0f}")}
    return None


def _radar(results: Sequence[tuple[str, Run, TaskResult]]) -> Any:
    tables = [(label, r.categories) for label, _, r in results if r.categories]
    if not tables:
        return ""
    metric = next((m for _, t in tables for v in t.values() if (m := headline_metric(v))), None)
    if metric is None:
        return ""
    # one polygon per model over the categories of the best-covered model; a model that lacks one of them
    # is left out rather than drawn with a fake zero
    axes = max((list(t) for _, t in tables), key=len)
    complete = [(label, t) for label, t in tables
                if all(_number(t.get(a, {}).get(metric)) is not None for a in axes)]
    if len(axes) < 3 or not complete:
        return ""
    series = [(label, {a: float(t[a][metric]) for a in axes}) for label, t in complete[:_RADAR_SERIES]]
    top = 10.0 if all(v <= 10 for _, vals in series for v in vals.values()) else None
    return radar_chart(axes, series, title=f"{metric} per category", max_value=top)


def _reliability_items(values: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a reliability mapping ("valid_rate", "between_judges cohen_kappa", ...)."""
    out: dict[str, float] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            out[name] = float(value)
        elif isinstance(value, Mapping) and key not in ("rules", "judges", "pairs", "bias") and prefix.count(" ") < 2:
            out.update(_reliability_items(value, f"{name} "))
    return out


def _reliability(runs: Sequence[Run], task: str) -> dict[str, Any] | None:
    columns = [(run, _reliability_items(run.tasks[task].reliability)) for run in runs
               if task in run.tasks and run.tasks[task].reliability]
    columns = [(run, items) for run, items in columns if items]
    if not columns:
        return None
    keys = list(dict.fromkeys(k for _, items in columns for k in items))

    def shown(key: str, value: float | None) -> str:
        if value is None:
            return ""
        counts = key.split(" ")[-1] in ("items", "retries", "low_confidence", "battles", "invalid")
        return str(int(value)) if counts and value == int(value) else f"{value:.3f}"

    return {"runs": [run for run, _ in columns],
            "rows": [(k, [shown(k, items.get(k)) for _, items in columns]) for k in keys]}


def _bias_of(result: TaskResult) -> Mapping[str, Any]:
    bias = result.info.get("bias") or result.reliability.get("bias")
    return bias if isinstance(bias, Mapping) else {}


def _bias(runs: Sequence[Run], task: str) -> dict[str, Any] | None:
    """The judge-bias report of each judged run of the task: one row per figure, one column per run."""
    columns = []
    for run in runs:
        if task in run.tasks:
            bias = _bias_of(run.tasks[task])
            items = {k: v for k, v in _flatten(bias) if k and v != ""}
            if items:
                columns.append((run, items))
    if not columns:
        return None
    keys = list(dict.fromkeys(k for _, items in columns for k in items))
    return {"runs": [run for run, _ in columns],
            "rows": [(k.replace("_", " ").replace(".", " · "), [items.get(k, "") for _, items in columns])
                     for k in keys]}


def task_context(board: Leaderboard, task: str, runs: Sequence[Run],
                 samples: Mapping[tuple[str, str], Mapping[str, Any]]) -> dict[str, Any]:
    """Everything task.html.j2 shows beyond the leaderboard itself (`runs`: every run with a page)."""
    results = [(row.label, *row.results[task]) for row in board.rows if task in row.results]
    with_task = [(run.label, run, run.tasks[task]) for run in runs if task in run.tasks]
    labels = [label for label, _, _ in results]
    family = results[0][2].family if results else "other"
    turns = [(label, r.turns) for label, _, r in results if r.turns]
    return {
        "family": family,
        "headline_chart": _headline_chart(board, task),
        "categories": breakdown("Categories", "Category", labels, [r.categories for _, _, r in results]),
        "subtasks": breakdown("Subtasks", "Subtask", labels, [r.subtasks for _, _, r in results],
                              links=[samples[(run.run_id, task)]["href"] if (run.run_id, task) in samples else None
                                     for _, run, _ in results]),
        "buckets": breakdown("By input length", "Length", labels, [r.buckets for _, _, r in results]),
        "aspects": breakdown("Judge aspects", "Aspect", labels, [_aspects(r.metrics) for _, _, r in results],
                             metric="score"),
        "radar": _radar(results) if family == "judged" else "",
        "turns": turns,
        "turn_names": list(dict.fromkeys(k for _, t in turns for k in t)),
        "reliability": _reliability(runs, task),
        "bias": _bias(runs, task),
        "ranking": _ranking(with_task),
        "sample_links": [(label, run, samples[(run.run_id, task)]) for label, run, _ in with_task
                         if (run.run_id, task) in samples],
    }


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, Mapping):
        out: list[tuple[str, str]] = []
        for key in sorted(value, key=str):
            out.extend(_flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and all(not isinstance(v, (Mapping, list)) for v in value):
        return [(prefix, ", ".join(str(v) for v in value))]
    if isinstance(value, list):
        return [item for i, v in enumerate(value) for item in _flatten(v, f"{prefix}[{i}]")]
    return [(prefix, "" if value is None else str(value))]


def _judge(run: Run) -> Mapping[str, Any]:
    judge = run.extra.get("judge")
    return judge if isinstance(judge, Mapping) else {}


_SCORING_KEYS = ("mode", "max_tokens", "temperature", "repeats", "circular", "extractor", "apply_chat_template",
                 "fewshot_as_multiturn", "unextractable", "prompt_style", "num_fewshot")


def _scoring(info: Mapping[str, Any]) -> list[tuple[str, str]]:
    """How a task was scored (mode, sampling, extraction stages), for the run page."""
    rows = [(key, str(info[key])) for key in _SCORING_KEYS if info.get(key) not in (None, False, "")]
    stages = info.get("extraction_stages")
    if isinstance(stages, Mapping):
        rows.append(("extraction stages", ", ".join(f"{k} {v}" for k, v in stages.items())))
    thinking = info.get("thinking")
    if isinstance(thinking, Mapping):
        summary = (f"{thinking.get('answers_with_thinking', 0)} answers, "
                   f"{thinking.get('truncated_in_thought', 0)} cut off inside the thought")
        rows.append(("thinking", summary))
    return rows


def run_context(run: Run, samples: Mapping[tuple[str, str], Mapping[str, Any]]) -> dict[str, Any]:
    """Everything run.html.j2 shows: task headlines, config, manifest, versions, timing, usage."""
    tasks = []
    for name, result in run.tasks.items():
        metrics = [(m, result.value(m)) for m in metric_names(result.metrics)]
        usage = result.info.get("usage") if isinstance(result.info.get("usage"), Mapping) else None
        tasks.append({"name": name, "result": result, "metrics": metrics, "usage": _flatten(usage or {}),
                      "samples": samples.get((run.run_id, name)), "timing": run.timing.get(name),
                      "scoring": _scoring(result.info)})
    return {
        "tasks": tasks,
        "model_items": _flatten(run.model),
        "config_items": _flatten(run.config),
        "manifest_items": _flatten(run.manifest),
        "version_items": _flatten(run.versions),
        "timing_items": _flatten(run.timing),
        "usage_items": _flatten(run.usage),
        "judge_items": _flatten({k: v for k, v in _judge(run).items() if k not in ("cost", "plan")}),
        "warnings": [str(w) for w in run.extra.get("warnings") or []],
    }
