"""The run, top to bottom: plan → build the backend → run the tasks → finalise.

    plan_run (evalkit._runplan)      options and task specs checked; model name resolved once; nothing loaded
    build_backend                    the model loaded once, wrapped in the response cache
    run_tasks (evalkit._runtasks)    each task kind: spec → requests → backend → TaskRecord + samples
    finalise                         backend and cache counters, warnings, manifest; status complete / failed

The run directory is written only through `evalkit.store.RunWriter`, as the `evalkit.records.RunRecord` schema.
"""

from __future__ import annotations

import hashlib
import platform
import random
import sys
from dataclasses import asdict, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from evalkit._options import RunOptions
from evalkit._runplan import RunPlan, plan_run
from evalkit._runtasks import run_tasks
from evalkit.backends._protocol import Backend, BackendBase
from evalkit.errors import EvalkitError
from evalkit.records import ModelRecord, RunRecord
from evalkit.store._rundir import file_sha256
from evalkit.store._writer import RunWriter

__all__ = ["RunOptions", "execute", "package_versions", "run_from_cli"]


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages that can change a number."""
    out = {"python": platform.python_version()}
    for dist in ("evalkit", "torch", "transformers", "tokenizers", "numpy", "datasets", "vllm", "openai", "httpx"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:
        pass
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


# ---- step 2: the backend --------------------------------------------------------------------------------------


def build_backend(plan: RunPlan, console: Any) -> BackendBase:
    """Load the model once (or take the backend object given), then wrap it in the response cache."""
    from evalkit.backends import as_base_backend

    options = plan.options
    backend: Backend | BackendBase
    if options.executor == "ray":  # workers each load the model; the driver runs tasks, cache and run dir
        from evalkit.executors import ray_backend

        backend = ray_backend(options.model, plan.model_args, workers=options.ray_workers,
                              address=options.ray_address, extra=options.extra, batch_size=options.batch_size)
    elif not isinstance(options.model, str):
        backend = options.model
    else:
        backend = _load_or_defer(plan, console)
    base = as_base_backend(backend)
    if options.batch_size:
        base.set_batch_size(options.batch_size)
    if plan.cache_path is None:
        return base
    from evalkit.store._cache import CachedBackend

    # local scorers share prefixes within one call: give them whole subjects, not small chunks
    return CachedBackend(base, plan.cache_path, chunk_size=base.cache_chunk_size)


def _load_or_defer(plan: RunPlan, console: Any) -> BackendBase:
    """A transformers model behind the response cache is loaded only when a request misses the cache (a fully
    cached rerun never loads it); any other backend is built now."""
    from contextlib import ExitStack

    from evalkit._quiet import quiet_libraries
    from evalkit.backends._registry import load_resolved

    assert plan.resolved is not None
    kind, model, args = plan.resolved

    def loading() -> ExitStack:
        stack = ExitStack()
        stack.enter_context(console.status(f"loading model {plan.options.model} ..."))
        stack.enter_context(quiet_libraries(capture_stderr=True))
        return stack

    if kind == "hf" and plan.cache_path is not None:
        from evalkit.backends._deferred import DeferredBackend, memo_path_for

        return DeferredBackend(kind, model, args, memo_path_for(plan.cache_path), load_resolved, loading)
    from evalkit.backends import as_base_backend

    with loading():
        return as_base_backend(load_resolved(kind, model, args))


# ---- step 4: finalise -----------------------------------------------------------------------------------------


def _data_key(path: str, data_dir: Path | None) -> str:
    """A data file's name in the manifest: relative to the data dir or the bundled tasks folder."""
    from evalkit.tasks._data import tasks_root

    p = Path(path).resolve()
    for root in ([data_dir.resolve()] if data_dir else []) + [tasks_root().resolve()]:
        try:
            return str(p.relative_to(root))
        except ValueError:
            continue
    return p.name


def _manifest(plan: RunPlan, data_files: dict[str, set[str]], versions: dict[str, str]) -> dict[str, Any]:
    tasks: dict[str, Any] = {}
    for _, spec in plan.selections:
        if spec.name not in data_files:
            continue
        source = Path(spec.source_file)
        files = {_data_key(p, plan.data_dir): file_sha256(Path(p)) for p in sorted(data_files[spec.name])
                 if Path(p).is_file()}
        tasks[spec.name] = {
            "spec_sha256": file_sha256(source) if source.is_file() else "", "spec_file": source.name,
            "version": spec.version,
            "prompt_sha256": hashlib.sha256(spec.model_dump_json(include={"prompt_styles", "prompts"}).encode()
                                            ).hexdigest(),
            "data_files": files,
            "data_sha256": hashlib.sha256("".join(sorted(files.values())).encode()).hexdigest()}
    return {"tasks": tasks, "versions": versions, "seed": plan.options.seed}


def _new_record(plan: RunPlan, backend: BackendBase) -> RunRecord:
    options = plan.options
    identity = backend.identity
    config = {"model": plan.model_name or identity.model, "executor": options.executor, "tasks": plan.task_labels,
              "model_args": plan.public_model_args(), "task_args": plan.task_args,
              "num_fewshot": options.num_fewshot, "limit": options.limit, "batch_size": options.batch_size,
              "seed": options.seed, "data_dir": str(plan.data_dir) if plan.data_dir else None,
              "judge": options.judge, "judge_models": list(options.judge_models),
              "judge_votes": options.judge_votes}
    return RunRecord(run_id=plan.run_id, created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     model=ModelRecord.model_validate({**identity.as_dict(), "name": plan.model_name}), config=config,
                     versions=package_versions())


def _finalise(plan: RunPlan, backend: BackendBase, writer: RunWriter, data_files: dict[str, set[str]],
              warnings: list[str], error: str | None, seconds: float) -> None:
    from evalkit.store._cache import CachedBackend

    cache_stats = backend.cache_stats if isinstance(backend, CachedBackend) else None
    stats = backend.stats_dict()
    writer.write_manifest(_manifest(plan, data_files, writer.record.versions))
    writer.finish(error, timing={**writer.record.timing, "total": round(seconds, 3)},
                  backend_stats=stats or None,
                  cache_stats=cache_stats.as_dict() if cache_stats is not None else None,
                  warnings=warnings[:200])


def execute(options: RunOptions) -> Path:
    """Run every selected task; return the run directory. Everything finished is kept, even on failure.

    Raises:
        EvalkitError: a bad option or task (before anything runs), or the first task that stopped; its
            message notes where the results so far are.
    """
    from rich.console import Console

    from evalkit._quiet import quiet_libraries

    console = Console(stderr=True, quiet=options.quiet, soft_wrap=True)
    plan = plan_run(options)
    with quiet_libraries(plan.run_dir / "log.txt", verbose=options.verbose or None):
        return _execute(plan, console)


def _execute(plan: RunPlan, console: Any) -> Path:
    import time

    _seed_everything(plan.options.seed)
    backend = build_backend(plan, console)
    writer = RunWriter(Path(plan.options.output), _new_record(plan, backend))
    warnings: list[str] = []

    def warn(message: str) -> None:
        warnings.append(message)
        console.print(f"[yellow]warning:[/yellow] {message}", markup=True, highlight=False, soft_wrap=True)

    started = time.perf_counter()
    data_files: dict[str, set[str]] = {}
    first: BaseException | None = None
    try:
        data_files, failures = run_tasks(plan, backend, writer, console, warn)
        first = failures[0] if failures else None
    except BaseException as exc:  # record why the run stopped, then let it propagate
        first = exc
        raise
    finally:
        error = None if first is None else (str(first) or type(first).__name__)
        _finalise(plan, backend, writer, data_files, warnings, error, time.perf_counter() - started)
        if isinstance(first, EvalkitError):
            first.add_note(f"results so far: {writer.path / 'results.json'}")
    if first is not None:
        raise first
    return writer.path


def run_from_cli(options: RunOptions) -> None:
    """`evalkit run`: execute, then print the results table."""
    from evalkit._results_table import print_results

    path = execute(options)
    print_results(path)


def options_dict(options: RunOptions) -> dict[str, Any]:
    """The options as a plain dict."""
    return asdict(replace(options))
