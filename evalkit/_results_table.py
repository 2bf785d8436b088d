"""The results table `evalkit run` prints at the end, read back through the run record."""

from __future__ import annotations

from pathlib import Path

from evalkit.records import Scores, load_record

__all__ = ["print_results"]

_GROUP_METRICS = ("acc", "acc_macro", "score", "acc_norm", "exact_match", "char_perplexity", "word_perplexity")


def _cell(value: float | None) -> str:
    return "null" if value is None else f"{value:.4f}"


def print_results(path: Path) -> None:
    """Print one row per headline metric, group and (for tasks without a headline) subtask."""
    from rich.console import Console
    from rich.table import Table

    record = load_record(path)
    table = Table("task", "group / subset", "metric", "value", "± stderr", "n", title=record.run_id)
    for name, task in record.tasks.items():
        demo = " (demo data)" if task.demo_data else ""
        for metric_name in task.metrics.names() + [k for k, v in task.metrics.root.items() if v is None]:
            metric = task.metric(metric_name)
            if metric is None:
                continue
            table.add_row(f"{name}{demo}", "", metric_name, _cell(metric.value),
                          "" if metric.stderr is None else f"{metric.stderr:.4f}", str(task.n))
        rows: list[tuple[str, Scores]] = list(task.groups.items())
        if not task.metrics.names():  # no headline (several lm-eval tasks): show the subtasks
            rows += list(task.subtasks.items())
        for group, scores in rows:
            for metric_name in _GROUP_METRICS:
                metric = scores.metric(metric_name)
                if metric is not None and metric.value is not None:
                    table.add_row(name, group, metric_name, _cell(metric.value),
                                  "" if metric.stderr is None else f"{metric.stderr:.4f}", str(scores.count or ""))
    for name, error in record.failed_tasks.items():
        table.add_row(name, "", "failed", "", "", error[:120])
    import sys

    console = Console(width=None if sys.stdout.isatty() else 160)  # piped output: no 80-column wrapping
    console.print(table)
    console.print(f"run directory: {path}", soft_wrap=True)
