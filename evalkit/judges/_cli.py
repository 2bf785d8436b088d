"""The `evalkit judge` command. Imports only typer/stdlib/evalkit.errors at module level (fast --help)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from evalkit.errors import ConfigError

__all__ = ["register"]


def _csv(text: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (text or "").split(",") if p.strip())


def judge(
    answers: Annotated[Path, typer.Option(help="Folder of FastChat model_answer/*.jsonl files (or one file)")],
    judge: Annotated[str, typer.Option("--judge", help="Judge definition name (judges/*.yaml) or path")],
    judge_model: Annotated[list[str] | None, typer.Option(help="Judge model spec (repeat for a panel)")] = None,
    judge_args: Annotated[str | None, typer.Option(help="Judge backend options key=value,...")] = None,
    judge_votes: Annotated[int, typer.Option(help="Samples per judge")] = 1,
    judge_mode: Annotated[str | None, typer.Option(help="generate, probability, or generate,probability (both: compared in the reliability report); overrides the YAML")] = None,
    reducer: Annotated[str, typer.Option(help="Vote reducer: mean, median or majority")] = "mean",
    baseline: Annotated[str | None, typer.Option(help="Pairwise: judge every model against this one")] = None,
    models: Annotated[str | None, typer.Option(help="Comma list of answer files (stems) to judge")] = None,
    data_dir: Annotated[Path | None, typer.Option(envvar="EVALKIT_DATA_DIR", help="Local data, searched first")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Runs directory")] = Path("runs"),
    limit: Annotated[int | None, typer.Option(help="Judge only the first N questions")] = None,
    turns: Annotated[str, typer.Option(help="Turns to judge: 1, 2 or 1,2")] = "1,2",
    categories: Annotated[str | None, typer.Option(help="Comma list of MT-Bench categories")] = None,
    labels: Annotated[Path | None, typer.Option(help="Human labels JSONL, for agreement with the judge")] = None,
    seed: Annotated[int, typer.Option(help="Seed of votes and bootstrap")] = 0,
    cache: Annotated[Path | None, typer.Option(help="Response cache file (default <output>/.cache.sqlite)")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not read or write the response cache")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print how many judge calls the run would make")] = False,
) -> None:
    """Judge existing answer files (FastChat format) and write runs/<run_id>/ with scores, votes,
    reliability statistics and a Bradley-Terry ranking."""
    from evalkit.backends._registry import parse_kv
    from evalkit.judges._command import JudgeRunOptions, run_judge
    from evalkit.judges._spec import JudgeConfig

    try:
        turn_list = tuple(int(t) for t in _csv(turns))
    except ValueError:
        raise ConfigError(f"--turns '{turns}': use 1, 2 or 1,2") from None
    if not turn_list or any(t < 1 for t in turn_list):
        raise ConfigError(f"--turns '{turns}': use 1, 2 or 1,2")
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be at least 1 (got {limit})")
    config = JudgeConfig(definition=judge, models=tuple(judge_model or ()),
                         args=parse_kv(judge_args, what="--judge-args"), votes=judge_votes, reducer=reducer,
                         mode=judge_mode, dry_run=dry_run, baseline=baseline,
                         labels=str(labels) if labels else None)
    options = JudgeRunOptions(answers=answers, judge=config, data_dir=data_dir, output=output,
                              models=_csv(models), limit=limit, turns=turn_list, categories=_csv(categories), seed=seed,
                              cache=None if no_cache else (cache or output / ".cache.sqlite"))
    path = run_judge(options)
    if path is not None:
        typer.echo(str(path))


def register(app: typer.Typer) -> None:
    """Add `evalkit judge` to the app."""
    app.command("judge")(judge)
