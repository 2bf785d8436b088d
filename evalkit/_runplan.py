"""Step 1 of a run: check every option and task before anything is loaded, and say what will run.

Everything a user can get wrong on the command line fails here, with one line naming the flag and the fix, before
a model is loaded or a directory is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.backends._registry import parse_kv, resolve
from evalkit.errors import ConfigError
from evalkit.store._rundir import new_run_id
from evalkit.store._writer import ensure_output_dir

if TYPE_CHECKING:
    from evalkit._options import RunOptions
    from evalkit.tasks._registry import TaskSelection
    from evalkit.tasks._spec import TaskSpecBase

__all__ = ["RunPlan", "plan_run"]

@dataclass(frozen=True)
class RunPlan:
    """A checked run: the options, the tasks with their specs, and the model resolved once."""

    options: RunOptions
    selections: tuple[tuple[TaskSelection, TaskSpecBase], ...]
    task_args: dict[str, str]
    model_args: dict[str, str]
    model_name: str | None  # the name the user typed (None for a backend object)
    resolved: tuple[str, str, dict[str, str]] | None  # (kind, model, args) from the catalog
    judge: Any
    data_dir: Path | None
    cache_path: Path | None
    run_id: str

    @property
    def run_dir(self) -> Path:
        """runs/<run_id>/ (created when the run starts)."""
        return Path(self.options.output) / self.run_id

    @property
    def task_labels(self) -> list[str]:
        """`task` or `task:subset,...` as selected."""
        return [f"{s.name}{':' + ','.join(s.subsets) if s.subsets else ''}" for s, _ in self.selections]

    def public_model_args(self) -> dict[str, str]:
        """Model args as results.json may show them: secrets masked, URL credentials removed."""
        from evalkit._redact import redact_args

        return redact_args(self.model_args)


def _check_numbers(options: RunOptions) -> None:
    if options.num_fewshot is not None and options.num_fewshot < 0:
        raise ConfigError(f"--num-fewshot {options.num_fewshot}: must be 0 or more (0 = zero-shot)")
    if options.limit is not None and options.limit < 1:
        raise ConfigError(f"--limit {options.limit}: must be 1 or more (leave it out to run every sample)")
    if options.batch_size is not None:
        text = str(options.batch_size).strip()
        if text != "auto" and not (text.isdigit() and int(text) >= 1):
            raise ConfigError(f"--batch-size {options.batch_size}: use a whole number of 1 or more, or auto")
    if options.judge_votes < 1:
        raise ConfigError(f"--judge-votes {options.judge_votes}: must be 1 or more")
    if options.repeats is not None and options.repeats < 1:
        raise ConfigError(f"--repeats {options.repeats}: samples per question must be at least 1")
    if options.concurrency is not None and options.concurrency < 1:
        raise ConfigError(f"--concurrency {options.concurrency}: must be 1 or more")
    if options.cache is not None and options.no_cache:
        raise ConfigError(f"--cache {options.cache} and --no-cache contradict each other; pass only one")
    if options.executor not in ("local", "ray"):
        raise ConfigError(f"--executor {options.executor}: use local or ray")


def _selections(tasks: str | Sequence[str]) -> tuple[tuple[TaskSelection, TaskSpecBase], ...]:
    from evalkit.tasks._registry import find_task_files, load_task, parse_task_list

    text = tasks if isinstance(tasks, str) else ",".join(tasks)
    selections = parse_task_list(text, set(find_task_files()))
    if not selections:
        raise ConfigError("--tasks is empty; name at least one task (evalkit tasks lists them)")
    return tuple((sel, load_task(sel.name)) for sel in selections)


def _model_args(options: RunOptions) -> dict[str, str]:
    args = dict(options.model_args) if isinstance(options.model_args, dict) else parse_kv(options.model_args)
    if options.base_url:
        args.setdefault("base_url", options.base_url)
    if options.concurrency:
        args.setdefault("concurrency", str(options.concurrency))
    return args


def _judge_config(options: RunOptions, cache_path: Path | None) -> Any:
    if not options.judge and not options.judge_models:
        return None
    from evalkit.judges import JudgeConfig

    return JudgeConfig.from_cli(definition=options.judge, models=options.judge_models,
                                args=parse_kv(options.judge_args, what="--judge-args"), votes=options.judge_votes,
                                reducer=options.judge_reducer, mode=options.judge_mode, dry_run=options.dry_run,
                                cache=str(cache_path) if cache_path else None)


def _data_dir(options: RunOptions) -> Path | None:
    if options.data_dir is None:
        return None
    from evalkit.tasks._data import check_data_dir

    return check_data_dir(options.data_dir)


def _check_repeats(options: RunOptions, selections: Sequence[tuple[TaskSelection, TaskSpecBase]]) -> None:
    """Refuse --repeats K > 1 for kinds with nothing to sample (perplexity, the lm-eval bridge) rather than ignore it."""
    from evalkit.tasks._spec import kind_samples_repeats

    if not options.repeats or options.repeats == 1:
        return
    others = [f"{spec.name} ({spec.kind})" for _, spec in selections if not kind_samples_repeats(spec.kind)]
    if others:
        raise ConfigError(f"--repeats {options.repeats}: {', '.join(others)} does not generate answers to sample; "
                          f"run those tasks without --repeats")


def plan_run(options: RunOptions) -> RunPlan:
    """Check the options and load every task spec; resolve the model name once (nothing is loaded)."""
    _check_numbers(options)
    selections = _selections(options.tasks)  # every task validates before any model loads
    _check_repeats(options, selections)
    task_args = (dict(options.task_args) if isinstance(options.task_args, dict)
                 else parse_kv(options.task_args, what="--task-args"))
    model_args = _model_args(options)
    resolved = resolve(options.model, model_args) if isinstance(options.model, str) else None
    cache_path = None if options.no_cache else Path(options.cache or Path(options.output) / ".cache.sqlite")
    ensure_output_dir(Path(options.output))
    if isinstance(options.model, str):
        model_id = resolved[1] if resolved else options.model
    else:
        model_id = options.model.identity.model
    return RunPlan(run_id=new_run_id(model_id), options=options, selections=selections, task_args=task_args, model_args=model_args,
                   model_name=options.model if isinstance(options.model, str) else None, resolved=resolved,
                   judge=_judge_config(options, cache_path), data_dir=_data_dir(options), cache_path=cache_path)
