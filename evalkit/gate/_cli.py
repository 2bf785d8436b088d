"""`evalkit gate`: check a run against thresholds and a baseline; exit 0 pass, 1 fail, 2 usage error.

Only typer, the standard library and evalkit.errors are imported at module level (the CLI loads this module
on every start); numpy, scipy and rich are imported inside the command.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from evalkit.errors import GateError

if TYPE_CHECKING:
    from evalkit.api import RunResult
    from evalkit.gate._records import GateReport

__all__ = ["gate", "register", "render_report"]


def render_report(report: GateReport) -> None:
    """Print the checks as a table on stdout, then notes and a one-line verdict."""
    from rich.console import Console
    from rich.table import Table

    # CI logs are not terminals; rich would fall back to 80 columns and cut the check names.
    console = Console(width=None if sys.stdout.isatty() else 140)
    level = f"{100 * (1 - report.alpha):g}% CI"
    table = Table(title="evalkit gate")
    table.add_column("")
    table.add_column("check", overflow="fold")
    for header in ("value", "required / baseline", f"diff [{level}]", "p", "n"):
        table.add_column(header, justify="left" if header == "p" else "right", no_wrap=header != "value")
    for check in report.checks:
        status = "[green]PASS[/]" if check.passed else "[bold red]FAIL[/]"
        value = "" if check.observed is None else f"{check.observed:.4g}"
        cmp = check.comparison
        if cmp is None:
            op = ">=" if check.kind == "min" else "<="
            table.add_row(status, check.target, value, f"{op} {check.threshold:g}", "", "", "")
            continue
        diff = f"{cmp.diff:+.4f} [{cmp.ci_low:+.4f}, {cmp.ci_high:+.4f}]"
        table.add_row(status, f"{check.target} vs baseline", value, f"{cmp.mean_base:.4g}", diff,
                      f"{cmp.p_value:.3g} ({cmp.method})", str(cmp.n))
    console.print(table)
    rules: dict[float, list[str]] = {}
    for check in report.checks:
        if check.kind == "regression" and check.allowed_drop is not None:
            rules.setdefault(check.allowed_drop, []).append(check.target)
    for allowed, targets in rules.items():
        scope = "" if len(rules) == 1 else f" ({', '.join(targets)})"
        console.print(f"regression rule{scope}: fail when p < {report.alpha:g} and the drop (in the value column's "
                      f"units) > {allowed:g}", markup=False)
    for note in report.notes:
        console.print(f"note: {note}", markup=False)
    for check in report.failures:
        console.print(f"FAILED {check.message}", markup=False)
    total, failed = len(report.checks), len(report.failures)
    console.print(f"gate {'passed' if not failed else 'FAILED'}: {total - failed} of {total} checks passed")


def gate(
    results: Annotated[Path, typer.Argument(help="runs/<run_id>/ or its results.json")],
    minimum: Annotated[list[str] | None, typer.Option(
        "--min", help="TASK.METRIC=VALUE the score must reach, e.g. cmmlu.acc=0.30 or cmmlu/STEM.acc=0.3")] = None,
    maximum: Annotated[list[str] | None, typer.Option(
        "--max", help="TASK.METRIC=VALUE the score must not exceed, e.g. wikitext.word_perplexity=40")] = None,
    baseline: Annotated[Path | None, typer.Option(help="Baseline run directory (with samples/) to compare")] = None,
    max_drop: Annotated[list[str] | None, typer.Option(
        help="Tolerated drop in the metric's units: 0.02 (= 2 accuracy points, every task) or TASK=D (one task, "
             "e.g. wikitext=0.5 perplexity points); fail only if the drop is significant and larger")] = None,
    alpha: Annotated[float, typer.Option(help="Significance level of the regression test")] = 0.05,
    task: Annotated[list[str] | None, typer.Option(
        "--task", help="Compare only this task (or task/subset) with the baseline; repeatable")] = None,
    junit: Annotated[Path | None, typer.Option(help="Write JUnit XML here (one testcase per check)")] = None,
    seed: Annotated[int, typer.Option(help="Bootstrap seed")] = 0,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples")] = 10_000,
    allow_demo: Annotated[bool, typer.Option(
        "--allow-demo", help="Gate a run scored on evalkit's demo set (refused otherwise: its numbers mean nothing)")] = False,
) -> None:
    """Check a run against thresholds and/or a baseline run. Exit 0 pass, 1 fail, 2 usage error."""
    from evalkit.api import RunResult
    from evalkit.errors import GateFailed
    from evalkit.gate._gate import run_gate
    from evalkit.gate._junit import write_junit
    from evalkit.gate._records import parse_max_drops, parse_threshold

    if resamples < 100:
        raise GateError(f"--resamples {resamples}: use at least 100 (default 10000)")
    minimums = [parse_threshold(t, "min") for t in minimum or ()]
    maximums = [parse_threshold(t, "max") for t in maximum or ()]
    run = RunResult.load(results)
    base = RunResult.load(baseline) if baseline is not None else None
    _refuse_demo(run, "the run", allow_demo)
    if base is not None:
        _refuse_demo(base, "the baseline", allow_demo)
    drops = parse_max_drops(tuple(max_drop or ())) if max_drop else None
    report = run_gate(run, minimums=minimums, maximums=maximums, baseline=base, max_drop=drops, alpha=alpha,
                      tasks=tuple(task or ()), resamples=resamples, seed=seed)
    render_report(report)
    if junit is not None:
        write_junit(report, junit)
    if not report.passed:
        raise GateFailed(f"{len(report.failures)} gate check(s) failed")


def _refuse_demo(run: RunResult, what: str, allowed: bool) -> None:
    demo = [name for name, task in run.tasks.items() if task.record.demo_data]
    if not demo:
        return
    if not allowed:
        raise GateError(f"{what} ({run.run_id}) scored {', '.join(demo)} on evalkit's demo set, not the real "
                        f"benchmark: rerun with --data-dir (or evalkit data pull), or pass --allow-demo to gate it anyway")
    print(f"note: {what} scored {', '.join(demo)} on the DEMO set (--allow-demo): these numbers are not benchmark "
          f"results", file=sys.stderr)


def register(app: typer.Typer) -> None:
    """Add `evalkit gate` to the CLI."""
    app.command("gate")(gate)
