"""The `evalkit` command line. Heavy imports (torch, transformers) happen inside commands, never at import,
so `evalkit --help`, `evalkit tasks` and `evalkit models` answer fast.

Exit codes: 0 ok, 1 gate failed, 2 user error (one line on stderr, no traceback), 3 internal error.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer

from evalkit._table import print_table
from evalkit.errors import EvalkitError, GateFailed

app = typer.Typer(
    name="evalkit",
    help="Evaluate LLMs: perplexity, C-Eval/CMMLU, MT-Bench with voting judges, LongBench; HTML leaderboards.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: importing rich's markdown renderer costs more than the rest
)

# Modules that add commands (each has `register(app)`); they must import only typer/stdlib at module level.
_COMMAND_MODULES = (
    "evalkit.report._cli",
    "evalkit.judges._cli",
    "evalkit.server._cli",
    "evalkit.gate._cli",
    "evalkit.backends._probe_cli",
    "evalkit.data._cli",
    "evalkit._cache_cli",
    "evalkit.perf._cli",
)


@app.command()
def run(
    model: Annotated[str, typer.Option("--model", "-m", help="Model name (evalkit models) or hf:/vllm:/openai: spec")] = "smollm2",
    tasks: Annotated[str, typer.Option("--tasks", "-t", help="Comma list; task:subset,subset selects subsets")] = "ceval,cmmlu,wikitext",
    model_args: Annotated[str | None, typer.Option(help="Backend options key=value,...")] = None,
    task_args: Annotated[str | None, typer.Option(help="Task options key=value,... (e.g. prompt_style=lmeval)")] = None,
    num_fewshot: Annotated[int | None, typer.Option(help="Override the tasks' few-shot count")] = None,
    limit: Annotated[int | None, typer.Option(help="At most N samples per subset (per task if it has none)")] = None,
    batch_size: Annotated[str | None, typer.Option(help="N or auto")] = None,
    data_dir: Annotated[Path | None, typer.Option(envvar="EVALKIT_DATA_DIR", help="Local data, searched first")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Runs directory")] = Path("runs"),
    base_url: Annotated[str | None, typer.Option(help="Base URL for openai: models")] = None,
    judge: Annotated[str | None, typer.Option(help="Judge definition for judged tasks")] = None,
    judge_model: Annotated[list[str] | None, typer.Option(help="Judge model spec (repeat for a panel)")] = None,
    judge_args: Annotated[str | None, typer.Option(help="Judge backend options key=value,...")] = None,
    judge_votes: Annotated[int, typer.Option(help="Samples per judge")] = 1,
    judge_mode: Annotated[str | None, typer.Option(help="generate, probability, or generate,probability (both: compared in the reliability report); overrides the judge YAML")] = None,
    reducer: Annotated[str, typer.Option(help="Vote reducer: mean, median or majority")] = "mean",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Judged tasks: print how many judge calls would be made")] = False,
    seed: Annotated[int, typer.Option(help="Seed for sampling and shuffles")] = 0,
    repeats: Annotated[int | None, typer.Option(help="Generative tasks: sample K answers per question (maj@K, pass@K, mean@K)")] = None,
    cache: Annotated[Path | None, typer.Option(help="Response cache file (default runs/.cache.sqlite)")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not read or write the response cache")] = False,
    executor: Annotated[str, typer.Option(help="local or ray")] = "local",
    ray_workers: Annotated[int | None, typer.Option(help="--executor ray: number of model workers")] = None,
    ray_address: Annotated[str | None, typer.Option(help="--executor ray: cluster address (default: RAY_ADDRESS or local)")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Concurrent requests for API backends")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="Show other libraries' logs and progress bars (else they go to runs/<id>/log.txt)")] = False,
) -> None:
    """Evaluate a model on tasks and write runs/<run_id>/ (results.json, samples/, manifest.json)."""
    from evalkit.runner import RunOptions, run_from_cli

    options = RunOptions(
        model=model, tasks=tasks, model_args=model_args, task_args=task_args, num_fewshot=num_fewshot,
        limit=limit, batch_size=batch_size, data_dir=data_dir, output=output, base_url=base_url, judge=judge,
        judge_models=tuple(judge_model or ()), judge_args=judge_args, judge_votes=judge_votes,
        judge_mode=judge_mode, judge_reducer=reducer, dry_run=dry_run, seed=seed, repeats=repeats,
        cache=cache, no_cache=no_cache, executor=executor, concurrency=concurrency, ray_workers=ray_workers,
        ray_address=ray_address, verbose=verbose)
    run_from_cli(options)


@app.command("tasks")
def list_tasks() -> None:
    """List the task definitions evalkit knows (built-in and from EVALKIT_TASKS_PATH)."""
    from evalkit.tasks._registry import print_task_table

    print_task_table()


@app.command("schema")
def schema(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write it to this file instead")] = None,
) -> None:
    """Print the JSON Schema of results.json (the run record every writer and reader uses)."""
    from evalkit.records import schema_text

    text = schema_text()
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


@app.command("models")
def list_models() -> None:
    """List the model catalog (built-in names and the user's evalkit.yaml)."""
    from evalkit.backends._registry import catalog

    rows = [(e.name, e.spec, e.description) for e in catalog().values()]
    print_table(("name", "spec", "description"), rows)
    print("\nExplicit forms: hf:<path-or-hub-id>, vllm:<hub-id>, openai:<model> (+ --base-url)")


def _register_commands() -> None:
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(app)  # a broken command module is a bug: let it fail loudly


_register_commands()


def _click_exception_types() -> tuple[tuple[type[BaseException], ...], ...]:
    """(Exit, Abort, usage-error) classes of every click copy in play.

    typer >= 0.29 vendors its own click (`typer._click`) whose exceptions are not the installed click's, and
    keeps `Exit`/`Abort` in `typer.exceptions`: catch all of them, whichever exist.
    """
    found: dict[str, list[type[BaseException]]] = {"Exit": [], "Abort": [], "ClickException": []}
    for module_name in ("typer.exceptions", "typer._click.exceptions", "click.exceptions"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name, classes in found.items():
            cls = getattr(module, name, None)
            if isinstance(cls, type) and issubclass(cls, BaseException) and cls not in classes:
                classes.append(cls)
    return tuple(found["Exit"]), tuple(found["Abort"]), tuple(found["ClickException"])


def _usage_line(exc: BaseException) -> str:
    """One line for a usage error: what is wrong and where to read the command's options."""
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    message = " ".join(str(message).split())
    ctx = getattr(exc, "ctx", None)
    command = getattr(ctx, "command_path", None) or "evalkit"
    return f"error: {message} (see '{command} --help')"


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the app and maps exceptions to exit codes (0 ok, 1 gate failed, 2 user error, 3 bug)."""
    exits, aborts, usage_errors = _click_exception_types()
    try:
        app(args=argv, standalone_mode=False, prog_name="evalkit")
    except GateFailed:
        return 1
    except EvalkitError as exc:
        notes = "".join(f" ({note})" for note in getattr(exc, "__notes__", ()))
        print(f"error: {' '.join(str(exc).splitlines())}{notes}", file=sys.stderr)
        return 2
    except exits as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except usage_errors as exc:
        print(_usage_line(exc), file=sys.stderr)
        return 2
    except aborts:
        print("aborted", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted: completed samples are kept in the run directory and cache", file=sys.stderr)
        return 130
    except Exception:  # noqa: BLE001 - last resort: an internal error, with the traceback for a bug report
        traceback.print_exc()
        print("internal error: please report it with the traceback above", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    # run through the package module so GateFailed is the class `main` catches
    from evalkit.cli import main as _main

    sys.exit(_main())
