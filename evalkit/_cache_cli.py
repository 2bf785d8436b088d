"""`evalkit cache list|prune`. Only typer and the standard library are imported at module level."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]

cache_app = typer.Typer(help="List and prune evalkit's model caches and response caches (with sizes).",
                        no_args_is_help=True, add_completion=False, rich_markup_mode=None)

_CacheOpt = Annotated[list[Path] | None, typer.Option("--cache", help="Response cache file (repeatable)")]
_RunsOpt = Annotated[Path, typer.Option("--runs", help="Runs folder whose .cache.sqlite is listed")]


def _response_paths(cache: list[Path] | None, runs: Path) -> list[Path]:
    return [runs / ".cache.sqlite", *(cache or [])]


def _age(timestamp: float) -> str:
    days = (time.time() - timestamp) / 86400
    return "today" if days < 1 else f"{days:.0f} days ago"


@cache_app.command("list")
def list_command(cache: _CacheOpt = None, runs: _RunsOpt = Path("runs")) -> None:
    """Model caches ($EVALKIT_CACHE_DIR or ~/.cache/evalkit) and response caches, with sizes."""
    from evalkit._table import print_table
    from evalkit.backends._hf_load import cache_root
    from evalkit.store._cache_admin import disk_usage, human_size, model_caches, response_caches

    root = cache_root()
    models = model_caches(root)
    typer.echo(f"model caches under {root}:")
    if models:
        print_table(("size", "kind", "last used", "folder"),
                    [(human_size(c.size), c.kind + (" (old key)" if c.legacy else ""), _age(c.modified), c.path.name)
                     for c in models])
    else:
        typer.echo("  (none)")
    responses = response_caches(_response_paths(cache, runs))
    typer.echo("\nresponse caches:")
    if responses:
        print_table(("size", "entries", "models", "newest", "file"),
                    [(human_size(r.size), f"{r.entries:,}", str(len(r.models)),
                      _age(r.newest) if r.newest else "-", str(r.path)) for r in responses])
    else:
        typer.echo(f"  (none at {', '.join(str(p) for p in _response_paths(cache, runs))})")
    total = disk_usage([c.path for c in models]) + sum(r.size for r in responses)
    typer.echo(f"\ntotal on disk: {human_size(total)} (hard-linked copies counted once)")


@cache_app.command("prune")
def prune_command(
    model: Annotated[str | None, typer.Option(help="Entries of this model (a part of its name or identity)")] = None,
    older_than: Annotated[float | None, typer.Option(help="Entries not used for this many days")] = None,
    everything: Annotated[bool, typer.Option("--all", help="Everything listed")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Delete (without it: show what would be deleted)")] = False,
    cache: _CacheOpt = None,
    runs: _RunsOpt = Path("runs"),
) -> None:
    """Delete model caches and cached responses by model, by age, or all (only with --yes)."""
    from evalkit.backends._hf_load import cache_root
    from evalkit.errors import ConfigError
    from evalkit.store import _cache_admin as admin

    if not (model or older_than is not None or everything):
        raise ConfigError("evalkit cache prune: say what to prune: --model NAME, --older-than DAYS or --all")
    selection = admin.PruneSelection(model, older_than, everything, yes)
    verb = "deleted" if yes else "would delete"
    for item in admin.prune_models(admin.model_caches(cache_root()), selection):
        typer.echo(f"{verb} {item.path} ({admin.human_size(item.size)})")
    for response_cache in admin.response_caches(_response_paths(cache, runs)):
        count = admin.prune_responses(response_cache, selection)
        if count:
            typer.echo(f"{verb} {count:,} cached responses from {response_cache.path}")
    if not yes:
        typer.echo("nothing deleted: add --yes to delete the above")


def register(app: typer.Typer) -> None:
    """Add the `cache` command group to the evalkit CLI."""
    app.add_typer(cache_app, name="cache")
