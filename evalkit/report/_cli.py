"""`evalkit report RUNS... -o site/ [--import-lm-eval FILE ...]` (heavy imports happen inside the command)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]


def report(
    runs: Annotated[list[Path] | None, typer.Argument(
        help="runs/ folders, run directories or results.json files", show_default=False)] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the site (index.html)")] = Path("site"),
    import_lm_eval: Annotated[list[Path] | None, typer.Option(
        "--import-lm-eval", help="An lm-eval results_*.json to show as a leaderboard row (repeatable)")] = None,
    perf: Annotated[list[Path] | None, typer.Option(
        "--perf", help="An `evalkit perf --output` JSON to show on a Load test page (repeatable)")] = None,
    title: Annotated[str, typer.Option(help="Site title")] = "evalkit leaderboard",
) -> None:
    """Build a static HTML leaderboard (index, task, run and sample pages) that opens from disk."""
    import time

    from evalkit.errors import DataError
    from evalkit.report._build import build_site
    from evalkit.report._model import discover_results, load_runs, run_from_record
    from evalkit.report._perf import load_perf
    from evalkit.store._lmeval_import import lmeval_record

    if not runs and not import_lm_eval and not perf:
        raise DataError("nothing to report: pass runs/ (or run directories / results.json files), "
                        "--import-lm-eval results_*.json or --perf perf.json")
    from evalkit.store._writer import ensure_output_dir

    ensure_output_dir(output, flag="report -o")
    perf_reports = [load_perf(path) for path in perf or []]
    started = time.perf_counter()
    loaded = [run for path in discover_results(runs or []) for run in load_runs(path)]
    for path in import_lm_eval or []:
        loaded.append(run_from_record(lmeval_record(path), path=None, source="lm-eval"))
    if not loaded and (runs or not perf_reports):
        raise DataError(f"no results.json found under {', '.join(str(p) for p in runs or [])}; "
                        "run `evalkit run` first or point at runs/<run_id>/")
    summary = build_site(loaded, output, title=title, perf=perf_reports)
    elapsed = time.perf_counter() - started
    typer.echo(f"wrote {_count(summary.pages, 'page')} ({_count(summary.models, 'model')}, "
               f"{_count(summary.tasks, 'task')}, {_count(summary.sample_pages, 'sample browser')}) in "
               f"{elapsed:.1f}s: {output / 'index.html'}")


def _count(n: int, noun: str) -> str:
    """`1 model`, `2 models`."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def register(app: typer.Typer) -> None:
    """Add the `report` command to the evalkit CLI."""
    app.command("report")(report)
