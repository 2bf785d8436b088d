"""The `lmeval` task kind: lm-eval task definitions evaluated through an evalkit backend.

`evalkit run --model M --tasks lmeval:arc_easy,hellaswag` hands the named lm-eval tasks to
`lm_eval.simple_evaluate` with an `LM` that serves every request from the run's (cached) backend, then turns
lm-eval's results into a `TaskOutcome`: one subtask per lm-eval leaf task, lm-eval groups as groups, metrics
with their stderr (filters other than "none" suffixed as the lm-eval import does), and one sample record per
document.

Options (`--task-args`): `include_path=DIR` (extra lm-eval task YAMLs, e.g. local copies that read JSONL
offline), `include_defaults=false` (index only include_path: skips lm-eval's ~20 s scan of its own ~15k tasks),
`bootstrap_iters=N` (stderr of non-mean metrics; 0 = none), `apply_chat_template=true`,
`system_instruction=TEXT`, `generation=raw|chat` (generate_until as raw continuation, the default where the
backend can, or as one user message through the chat template / chat API).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from evalkit.backends._protocol import Backend
from evalkit.errors import ConfigError, DataError, MissingDependency
from evalkit.tasks._kind import RunContext, SampleSink, TaskOutcome

__all__ = ["TASK_ARGS", "outcome_from_lmeval", "run_bridge", "sample_records"]

TASK_ARGS = frozenset({"include_path", "include_defaults", "bootstrap_iters", "apply_chat_template",
                       "system_instruction", "generation"})
_TRUE = ("1", "true", "yes", "on")


@functools.lru_cache(maxsize=4)
def _task_manager(include_path: str | None, include_defaults: bool) -> Any:
    # indexing lm-eval's own tasks takes ~20 s: do it once per process
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=include_path, include_defaults=include_defaults)


def _flag(args: Mapping[str, str], key: str, default: bool) -> bool:
    return args[key].lower() in _TRUE if key in args else default


def _int_arg(args: Mapping[str, str], key: str, default: int) -> int:
    try:
        return int(args.get(key, default))
    except ValueError:
        raise ConfigError(f"--task-args {key}={args[key]}: use a whole number") from None


def run_bridge(tasks: Sequence[str], backend: Backend, ctx: RunContext, sink: SampleSink, *,
               include_path: str | None = None, bootstrap_iters: int = 1000) -> TaskOutcome:
    """Evaluate lm-eval `tasks` with `backend`; write sample records to `sink`.

    Raises:
        ConfigError: no task named, an unknown --task-args key, or a task lm-eval does not know.
        MissingDependency: lm-eval is not installed.
    """
    unknown = set(ctx.task_args) - TASK_ARGS
    if unknown:
        raise ConfigError(f"--task-args {', '.join(sorted(unknown))}: not an option of the lm-eval bridge; "
                          f"known: {', '.join(sorted(TASK_ARGS))}")
    if not tasks:
        raise ConfigError("lmeval: name the lm-eval tasks to run, e.g. --tasks lmeval:arc_easy,hellaswag")
    try:
        import lm_eval
    except ImportError:
        raise MissingDependency("the lm-eval bridge", "lmeval", "lm_eval") from None
    from evalkit.lmeval._adapter import backend_lm

    args = ctx.task_args
    manager = _task_manager(args.get("include_path", include_path), _flag(args, "include_defaults", True))
    missing = [t for t in tasks if t not in manager.all_tasks]
    if missing:
        raise ConfigError(f"lmeval: lm-eval does not know task(s) {', '.join(missing)}; list them with "
                          f"`lm-eval ls tasks`, or add local YAMLs with --task-args include_path=DIR")
    total = [0]

    def add_total(n: int) -> None:
        total[0] += n
        ctx.set_total(total[0])

    generation = args.get("generation", "raw")
    if generation not in ("raw", "chat"):
        raise ConfigError(f"--task-args generation={generation}: use raw (continue the prompt text) or chat "
                          f"(send it as one user message)")
    lm = backend_lm(backend, advance=ctx.advance, add_total=add_total, chat=generation == "chat")
    out = lm_eval.simple_evaluate(
        model=lm, tasks=list(tasks), num_fewshot=ctx.num_fewshot, limit=ctx.limit, log_samples=True,
        task_manager=manager, bootstrap_iters=_int_arg(args, "bootstrap_iters", bootstrap_iters),
        apply_chat_template=_flag(args, "apply_chat_template", False),
        system_instruction=args.get("system_instruction"))
    if not out:
        raise DataError("lmeval: lm-eval returned no results")
    for name, records in (out.get("samples") or {}).items():
        sink.write(sample_records(name, records))
    outcome = outcome_from_lmeval(out, list(tasks))
    outcome.info["lm_eval_config_sha256"] = _record_configs(out.get("configs") or {}, ctx.record_file)
    return outcome


def _record_configs(configs: Mapping[str, Any], record_file: Callable[[Path], None]) -> dict[str, str]:
    """Hash each task's resolved lm-eval config (prompt, metrics, dataset); pass its local data files to
    `record_file` (the run manifest lists them), so runs of different task versions or data are told apart."""
    hashes = {}
    for name, config in configs.items():
        text = json.dumps(_plain(config), sort_keys=True, ensure_ascii=False)
        hashes[name] = hashlib.sha256(text.encode()).hexdigest()
        files = ((config.get("dataset_kwargs") or {}).get("data_files") if isinstance(config, Mapping) else None)
        values = files.values() if isinstance(files, Mapping) else [files] if files else []
        for value in values:
            for path in [value] if isinstance(value, str) else list(value or []):
                if isinstance(path, str) and Path(path).is_file():
                    record_file(Path(path))
    return hashes


def _lm_metrics(entry: Mapping[str, Any]) -> dict[str, float]:
    from evalkit.store._lmeval_import import _metrics

    return _metrics(entry)


def outcome_from_lmeval(out: Mapping[str, Any], tasks: Sequence[str]) -> TaskOutcome:
    """lm-eval's results dict as a TaskOutcome: leaf tasks → subtasks, groups → groups.

    With one requested task its metrics are the headline; with several, each is a subtask (or group) and the
    headline stays empty (lm-eval defines no aggregate over an arbitrary task list).
    """
    results: Mapping[str, Any] = out["results"]
    tree: Mapping[str, Sequence[str]] = out.get("group_subtasks") or {}
    counts = out.get("n-samples") or {}

    def n_of(name: str) -> int:
        if tree.get(name):
            return sum(n_of(child) for child in tree[name])
        entry = counts.get(name) or {}
        return int(entry.get("effective", entry.get("original", 0)))

    groups = {g: {**_lm_metrics(results.get(g, {})), "n": n_of(g)} for g, children in tree.items() if children}
    subtasks = {t: {**_lm_metrics(entry), "n": n_of(t)} for t, entry in results.items() if not tree.get(t)}
    single = tasks[0] if len(tasks) == 1 else None
    metrics = _lm_metrics(results.get(single, {})) if single else {}
    tops = [t for t in tasks if t in results]
    info: dict[str, Any] = {"source": "lm-eval", "lm_eval_tasks": list(tasks),
                            "lm_eval_version": out.get("lm_eval_version"),
                            "n_shot": dict(out.get("n-shot") or {}), "task_versions": dict(out.get("versions") or {}),
                            "higher_is_better": dict(out.get("higher_is_better") or {})}
    return TaskOutcome(metrics=metrics, n=sum(n_of(t) for t in tops), groups=groups, subtasks=subtasks, info=info)


def _plain(value: Any) -> Any:
    """JSON-safe copy of an lm-eval value (tuples → lists, non-finite floats → None)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def sample_records(task: str, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """evalkit sample lines (id, subset, doc_index, prompt, target, prediction, correct/score) of one lm-eval task."""
    return [_sample(task, r) for r in records]


def _arguments(raw: Any) -> list[tuple[Any, ...]]:
    """Request arguments of a sample: a list of tuples in memory, {"gen_args_0": {"arg_0": ..}} in lm-eval's files."""
    if isinstance(raw, Mapping):
        return [tuple(v.values()) if isinstance(v, Mapping) else (v,) for v in raw.values()]
    return [tuple(a) if isinstance(a, (list, tuple)) else (a,) for a in raw or []]


def _sample(task: str, record: Mapping[str, Any]) -> dict[str, Any]:
    doc_id = int(record.get("doc_id", 0))
    arguments = _arguments(record.get("arguments"))
    responses = list(record.get("filtered_resps") or [])
    metric_names = [str(m) for m in record.get("metrics") or []]
    metrics = {m: _plain(record[m]) for m in metric_names if m in record}
    sample: dict[str, Any] = {"id": f"{task}/{doc_id}", "subset": task, "doc_index": doc_id,
                              "prompt": str(arguments[0][0]) if arguments else "",
                              "target": _plain(record.get("target")), "metrics": metrics}
    pairs = [r for r in responses if isinstance(r, (list, tuple)) and len(r) == 2 and isinstance(r[1], bool)]
    if len(arguments) > 1 and len(pairs) == len(arguments):  # multiple choice: one loglikelihood per choice
        choices = [str(a[1]) for a in arguments]
        lls = [float(p[0]) for p in pairs]
        best = max(range(len(lls)), key=lambda i: (lls[i], -i))
        sample["prediction"] = choices[best].strip()
        sample["choice_logprobs"] = {c.strip() or c: ll for c, ll in zip(choices, lls)}
        target = record.get("target")
        if isinstance(target, int) and not isinstance(target, bool) and 0 <= target < len(choices):
            sample["target"] = choices[target].strip()
    elif responses and isinstance(responses[0], str):
        sample["prediction"] = responses[0]
    elif responses:
        sample["prediction"] = _plain(responses[0])
    headline = next((m for m in ("acc", "exact_match") if m in metrics), None)
    if headline is not None and metrics[headline] in (0, 1, 0.0, 1.0, True, False):
        sample["correct"] = bool(metrics[headline])
    elif metric_names and isinstance(metrics.get(metric_names[0]), (int, float)):
        sample["score"] = metrics[metric_names[0]]
    return sample
