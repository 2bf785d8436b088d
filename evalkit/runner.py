"""The run: resolve tasks and model, run each task kind, and write the run directory.

One arrow: TaskSpec → (task kind builds requests) → Backend (optionally cached) → TaskOutcome → RunDir.
"""

from __future__ import annotations

import hashlib
import platform
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from evalkit.backends._protocol import Backend
from evalkit.backends._registry import load_backend, parse_kv, resolve
from evalkit.errors import ConfigError, EvalkitError
from evalkit.store._rundir import RunDir, file_sha256, new_run_id
from evalkit.tasks import _data
from evalkit.tasks._kind import RunContext, TaskOutcome
from evalkit.tasks._registry import TaskSelection, find_task_files, load_task, parse_task_list
from evalkit.tasks._spec import KIND_RUNNERS, TaskSpecBase, import_target

__all__ = ["RunOptions", "execute", "run_from_cli"]

_SECRET_HINTS = ("key", "token", "secret", "password")


@dataclass
class RunOptions:
    """Everything `evalkit run` (and `evalkit.evaluate`) accepts."""

    model: str | Backend = "smollm2"
    tasks: str | Sequence[str] = "ceval,cmmlu,wikitext"
    model_args: str | dict[str, str] | None = None
    task_args: str | dict[str, str] | None = None
    num_fewshot: int | None = None
    limit: int | None = None
    batch_size: str | None = None
    data_dir: Path | None = None
    output: Path = Path("runs")
    base_url: str | None = None
    judge: str | None = None
    judge_models: tuple[str, ...] = ()
    judge_args: str | None = None
    judge_votes: int = 1
    judge_mode: str | None = None
    judge_reducer: str = "mean"
    dry_run: bool = False
    seed: int = 0
    cache: Path | None = None
    no_cache: bool = False
    executor: str = "local"
    concurrency: int | None = None
    quiet: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    ray_workers: int | None = None  # --executor ray: actors (default: one per GPU, else 2; EVALKIT_RAY_WORKERS)
    ray_address: str | None = None  # --executor ray: cluster to join (default RAY_ADDRESS, else a local one)


class _Sink:
    def __init__(self, rundir: RunDir, task: str) -> None:
        self.rundir, self.task, self.count = rundir, task, 0

    def write(self, samples: Sequence[dict[str, Any]]) -> None:
        self.rundir.append_samples(self.task, samples)
        self.count += len(samples)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("evalkit", "torch", "transformers", "tokenizers", "numpy", "datasets", "vllm", "openai", "httpx"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def _public_args(args: dict[str, str]) -> dict[str, str]:
    return {k: ("***" if any(h in k.lower() for h in _SECRET_HINTS) else v) for k, v in args.items()}


def _model_args(options: RunOptions) -> dict[str, str]:
    args = dict(options.model_args) if isinstance(options.model_args, dict) else parse_kv(options.model_args)
    if options.base_url:
        args.setdefault("base_url", options.base_url)
    if options.concurrency:
        args.setdefault("concurrency", str(options.concurrency))
    return args


def _selections(options: RunOptions) -> list[tuple[TaskSelection, TaskSpecBase]]:
    text = options.tasks if isinstance(options.tasks, str) else ",".join(options.tasks)
    selections = parse_task_list(text, set(find_task_files()))
    if not selections:
        raise ConfigError("--tasks is empty; name at least one task (evalkit tasks lists them)")
    return [(sel, load_task(sel.name)) for sel in selections]


def _build_backend(options: RunOptions, console: Any) -> tuple[Backend, dict[str, str]]:
    if not isinstance(options.model, str):
        return options.model, {}
    args = _model_args(options)
    resolve(options.model, args)  # fail fast on a bad name before any loading
    with console.status(f"loading model {options.model} ..."):
        backend = load_backend(options.model, args)
    if options.batch_size and hasattr(backend, "set_batch_size"):
        backend.set_batch_size(options.batch_size)
    return backend, args


def _wrap_cache(backend: Backend, options: RunOptions, warn: Any) -> Backend:
    if options.no_cache:
        return backend
    try:
        from evalkit.store._cache import CachedBackend
    except ImportError:
        return backend
    path = options.cache or (Path(options.output) / ".cache.sqlite")
    # local scorers share prefixes within one call: give them whole subjects, not small chunks
    wrapped: Backend = CachedBackend(backend, path, chunk_size=getattr(backend, "cache_chunk_size", None))
    return wrapped


def _judge_config(options: RunOptions) -> Any:
    if not options.judge and not options.judge_models:
        return None
    try:
        from evalkit.judges import JudgeConfig
    except ImportError:
        raise ConfigError("judged tasks are not available in this build (evalkit.judges is missing)") from None
    cache = None if options.no_cache else str(options.cache or Path(options.output) / ".cache.sqlite")
    return JudgeConfig.from_cli(definition=options.judge, models=options.judge_models,
                                args=parse_kv(options.judge_args, what="--judge-args"), votes=options.judge_votes,
                                reducer=options.judge_reducer, mode=options.judge_mode, dry_run=options.dry_run,
                                cache=cache)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:
        pass
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def _data_key(path: str, data_dir: Path | None) -> str:
    """A data file's name in the manifest: relative to the data dir or the bundled demo folder."""
    p = Path(path).resolve()
    for root in ([Path(data_dir).resolve()] if data_dir else []) + [_data.tasks_root().resolve()]:
        try:
            return str(p.relative_to(root))
        except ValueError:
            continue
    return p.name


def _manifest(specs: list[TaskSpecBase], data_files: dict[str, list[str]], options: RunOptions,
              versions: dict[str, str]) -> dict[str, Any]:
    tasks: dict[str, Any] = {}
    for spec in specs:
        source = Path(spec.source_file)
        entry: dict[str, Any] = {"spec_sha256": file_sha256(source) if source.is_file() else "",
                                 "spec_file": source.name, "version": spec.version,
                                 "prompt_sha256": hashlib.sha256(spec.model_dump_json(
                                     include={"prompt_styles", "prompts"}).encode()).hexdigest()}
        entry["data_files"] = {_data_key(p, options.data_dir): file_sha256(Path(p))
                               for p in data_files.get(spec.name, []) if Path(p).is_file()}
        entry["data_sha256"] = hashlib.sha256("".join(sorted(entry["data_files"].values())).encode()).hexdigest()
        tasks[spec.name] = entry
    return {"tasks": tasks, "versions": versions, "seed": options.seed}


def _truncated(backend: Backend) -> int:
    stats = getattr(backend, "stats", None)
    if not callable(stats):
        return 0
    values = stats()
    values = values.as_dict() if hasattr(values, "as_dict") else values
    return int(values.get("truncated_requests", 0)) if isinstance(values, dict) else 0


def execute(options: RunOptions) -> Path:
    """Run every selected task; return the run directory. Partial results are written even on failure."""
    from rich.console import Console

    console = Console(stderr=True, quiet=options.quiet)
    if options.executor not in ("local", "ray"):
        raise ConfigError(f"--executor {options.executor}: use local or ray")
    selections = _selections(options)  # validate every task before any model is loaded
    task_args = dict(options.task_args) if isinstance(options.task_args, dict) else parse_kv(options.task_args, what="--task-args")
    judge = _judge_config(options)
    requested = (options.model if isinstance(options.model, str) else None, _model_args(options))
    if options.executor == "ray":  # workers each load the model; the driver runs tasks, cache and run dir
        from dataclasses import replace

        from evalkit.executors import ray_backend

        options = replace(options, model=ray_backend(options.model, requested[1], workers=options.ray_workers,
                                                     address=options.ray_address, extra=options.extra,
                                                     batch_size=options.batch_size))
    _seed_everything(options.seed)
    backend, model_args = _build_backend(options, console)
    model_args = model_args or requested[1]
    warnings: list[str] = []

    def warn(message: str) -> None:
        warnings.append(message)
        console.print(f"[yellow]warning:[/yellow] {message}", markup=True, highlight=False)

    backend = _wrap_cache(backend, options, warn)
    identity = backend.identity
    rundir = RunDir(Path(options.output), new_run_id(identity.model))
    results: dict[str, Any] = {
        "run_id": rundir.run_id, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": identity.as_dict(),
        "config": {"model": requested[0] or identity.model, "executor": options.executor,
                   "tasks": [f"{s.name}{':' + ','.join(s.subsets) if s.subsets else ''}" for s, _ in selections],
                   "model_args": _public_args(model_args), "task_args": task_args, "num_fewshot": options.num_fewshot,
                   "limit": options.limit, "batch_size": options.batch_size, "seed": options.seed,
                   "data_dir": str(options.data_dir) if options.data_dir else None, "judge": options.judge,
                   "judge_models": list(options.judge_models), "judge_votes": options.judge_votes},
        "tasks": {}, "versions": _versions(), "timing": {}}
    data_files: dict[str, list[str]] = {}
    started = time.perf_counter()
    failure: EvalkitError | None = None
    try:
        for selection, spec in selections:
            truncated_before = _truncated(backend)
            outcome, seconds, files = _run_task(spec, selection, backend, options, task_args, judge, warn,
                                                rundir, console)
            truncated = _truncated(backend) - truncated_before
            if truncated:
                outcome.info["truncated_requests"] = truncated
                warn(f"{spec.name}: {truncated} request(s) were longer than the model's context and were "
                     f"left-truncated (counted in results.json info.truncated_requests)")
            results["tasks"][spec.name] = {"metrics": outcome.metrics, "groups": outcome.groups,
                                           "subtasks": outcome.subtasks, "n": outcome.n, "info": outcome.info}
            results["timing"][spec.name] = round(seconds, 3)
            data_files[spec.name] = files
            rundir.write_json("results.json", results)  # after every task: nothing computed is lost
    except EvalkitError as exc:
        failure = exc
    finally:
        results["timing"]["total"] = round(time.perf_counter() - started, 3)
        stats = getattr(backend, "stats", None)
        if callable(stats):
            values = stats()
            results["backend_stats"] = values.as_dict() if hasattr(values, "as_dict") else values
        cache_stats = getattr(backend, "cache_stats", None)
        if cache_stats is not None and hasattr(cache_stats, "as_dict"):
            results["cache_stats"] = cache_stats.as_dict()
        results["warnings"] = warnings[:200]
        rundir.write_json("results.json", results)
        done_specs = [spec for _, spec in selections if spec.name in results["tasks"]]
        rundir.write_json("manifest.json", _manifest(done_specs, data_files, options, results["versions"]))
    if failure is not None:
        raise type(failure)(f"{failure} (results so far: {rundir.path / 'results.json'})")
    return rundir.path


def _run_task(spec: TaskSpecBase, selection: TaskSelection, backend: Backend, options: RunOptions,
              task_args: dict[str, str], judge: Any, warn: Any, rundir: RunDir, console: Any
              ) -> tuple[TaskOutcome, float, list[str]]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    runner = import_target(KIND_RUNNERS[spec.kind])
    _data.FILES_READ.clear()
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False,
                        disable=options.quiet)
    with progress:
        bar = progress.add_task(spec.name, total=None)
        ctx = RunContext(data_dir=Path(options.data_dir) if options.data_dir else None, limit=options.limit,
                         num_fewshot=options.num_fewshot, seed=options.seed, subsets=selection.subsets,
                         task_args=dict(task_args), batch_size=options.batch_size,
                         set_total=lambda n: progress.update(bar, total=n),
                         advance=lambda n: progress.advance(bar, n), warn=warn, judge=judge)
        started = time.perf_counter()
        outcome: TaskOutcome = runner(spec, backend, ctx, _Sink(rundir, spec.name))
    return outcome, time.perf_counter() - started, sorted(_data.FILES_READ)


def print_results(path: Path) -> None:
    """The results table printed at the end of `evalkit run`."""
    from rich.console import Console
    from rich.table import Table

    from evalkit.store._rundir import read_results

    results = read_results(path)
    table = Table("task", "group / subset", "metric", "value", "± stderr", "n", title=f"{results['run_id']}")
    for task, body in results["tasks"].items():
        metrics = body.get("metrics", {})
        for name, value in metrics.items():
            if name.endswith("_stderr") or not isinstance(value, (int, float)):
                continue
            se = metrics.get(f"{name}_stderr")
            table.add_row(task, "", name, f"{value:.4f}", f"{se:.4f}" if isinstance(se, float) else "",
                          str(body.get("n", "")))
        rows = list(body.get("groups", {}).items())
        if not any(not k.endswith("_stderr") for k in metrics):  # no headline (several lm-eval tasks): subtasks
            rows += list(body.get("subtasks", {}).items())
        for group, gm in rows:
            for name in ("acc", "acc_macro", "score", "acc_norm", "exact_match", "word_perplexity"):
                if name in gm and isinstance(gm[name], (int, float)):
                    se = gm.get(f"{name}_stderr")
                    table.add_row(task, group, name, f"{gm[name]:.4f}", f"{se:.4f}" if isinstance(se, float) else "",
                                  str(gm.get("n", "")))
    Console().print(table)
    Console().print(f"run directory: {path}")


def run_from_cli(options: RunOptions) -> None:
    """`evalkit run`: execute, then print the results table."""
    path = execute(options)
    print_results(path)


def options_dict(options: RunOptions) -> dict[str, Any]:
    return asdict(options)
