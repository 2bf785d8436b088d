"""`evalkit data pull|check|list`. Only typer and the standard library are imported at module level."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]

data_app = typer.Typer(help="Get and check benchmark data: pull from the HF hub, check a data folder, list sources.",
                       no_args_is_help=True, add_completion=False, rich_markup_mode=None)


def _selections(tasks: list[str]) -> list[tuple[str, list[str]]]:
    from evalkit.tasks._registry import find_task_files, parse_task_list

    return [(s.name, list(s.subsets)) for s in parse_task_list(",".join(tasks), set(find_task_files()))]


@data_app.command("pull")
def pull_command(
    tasks: Annotated[list[str], typer.Argument(help="Tasks to pull (task:subject,... for some subjects)")],
    to: Annotated[Path, typer.Option("--to", help="Data folder to write (the --data-dir layout)")],
    source: Annotated[Path | None, typer.Option(
        envvar="EVALKIT_DATA_SOURCE",
        help="Read DIR/<hub id> (a local folder in the hub's format) instead of the hub")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="Show the datasets library's own output")] = False,
) -> None:
    """Download official datasets from the HF hub into DIR in the layout `evalkit run --data-dir DIR` reads."""
    from evalkit._quiet import quiet_libraries
    from evalkit.data._pull import pull

    with quiet_libraries(None, verbose):
        count = pull(_selections(tasks), to, source=source, echo=typer.echo)
    typer.echo(f"wrote {count} files under {to}; use it with: evalkit run --data-dir {to}")


@data_app.command("check")
def check_command(
    folder: Annotated[Path, typer.Argument(help="Data folder (the --data-dir layout)")],
    tasks: Annotated[list[str] | None, typer.Argument(help="Tasks to check (default: every built-in task)")] = None,
    task_list: Annotated[str | None, typer.Option(
        "--tasks", help="Tasks to check, comma-separated (as `evalkit run --tasks`); added to those named above")] = None,
) -> None:
    """List per task what DIR holds and what is missing or malformed; exit 2 when something is wrong."""
    from evalkit._table import print_table
    from evalkit.data._check import check_data_dir
    from evalkit.errors import DataError

    if not folder.is_dir():
        raise DataError(f"evalkit data check: {folder} is not a folder; pass the folder you give --data-dir")
    named = [*(tasks or []), *([task_list] if task_list else [])]
    results = check_data_dir(folder, [name for name, _ in _selections(named)])
    print_table(("task", "status", "found"), [(r.task, r.status, "; ".join(r.found) or "-") for r in results])
    for result in results:
        if result.missing and result.present:
            shown = ", ".join(Path(p).name for p in result.missing[:8])
            more = f" and {len(result.missing) - 8} more" if len(result.missing) > 8 else ""
            typer.echo(f"{result.task}: not present (optional): {shown}{more}")
    problems = [p for r in results for p in r.problems]
    for problem in problems:
        typer.echo(f"problem: {problem}")
    if problems:
        raise DataError(f"evalkit data check: {len(problems)} problem(s) in {folder} (listed above)")


@data_app.command("list")
def list_command() -> None:
    """Each task's data sources (local layout, hub id, demo set), licence and homepage."""
    from evalkit._table import print_table
    from evalkit.data._catalog import DATASETS

    rows = [(d.task, d.local, d.hub or "-", f"tasks/{d.demo}" if d.demo else "-", d.licence, d.homepage or "-")
            for d in DATASETS]
    print_table(("task", "local layout (under --data-dir)", "hub id", "demo set", "licence", "homepage"), rows)
    typer.echo("\nThe demo sets are small samples written for evalkit (not the benchmarks); scores on them mean "
               "nothing. Licences as stated by the dataset authors; CC BY-NC-SA data is for non-commercial use.")


def register(app: typer.Typer) -> None:
    """Add the `data` command group to the evalkit CLI."""
    app.add_typer(data_app, name="data")
