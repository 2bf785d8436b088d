"""Regression checks: pair two runs' samples of a task and test the difference (see `evalkit.gate._gate`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeGuard

from evalkit.api import RunResult, metric_names
from evalkit.errors import DataError, GateError
from evalkit.gate._records import GateCheck
from evalkit.gate._stats import PairedComparison, compare_paired, compare_perplexity

__all__ = ["compared_tasks", "regression_check"]

Kind = Literal["correct", "score", "perplexity"]
Key = tuple[str, str]

# headline perplexity metric -> the per-sample unit count it divides by
_PERPLEXITY_UNITS = (("word_perplexity", "words"), ("char_perplexity", "chars"), ("byte_perplexity", "bytes"),
                     ("bits_per_byte", "bytes"), ("token_perplexity", "tokens"))


@dataclass(frozen=True)
class _TaskSamples:
    kind: Kind
    values: dict[Key, tuple[float, float]]  # (value, units): units is 1 except for perplexity records
    invalid: int  # samples without a usable value (a null judge score)


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _perplexity_unit(result: RunResult, task: str) -> tuple[str, str]:
    metrics = result.tasks[task].metrics
    for metric, unit in _PERPLEXITY_UNITS:
        if metric in metrics:
            return ("byte_perplexity" if metric == "bits_per_byte" else metric), unit
    return "token_perplexity", "tokens"


def _classify(record: dict[str, Any], unit: str) -> tuple[Kind, tuple[float, float]] | None:
    correct, score = record.get("correct"), record.get("score")
    if isinstance(correct, bool) or (_is_number(correct) and correct in (0, 1)):
        return "correct", (float(correct), 1.0)
    if _is_number(score):
        return "score", (float(score), 1.0)
    if _is_number(record.get("logprob")) and _is_number(record.get(unit)):
        return "perplexity", (float(record["logprob"]), float(record[unit]))
    return None


def _read_samples(result: RunResult, task: str, subset: str, unit: str) -> _TaskSamples:
    """Later duplicates of an id win (a resumed run may have re-written a batch)."""
    try:
        records = result.samples(f"{task}/{subset}" if subset else task)
    except DataError as exc:
        raise GateError(f"regression check needs per-sample records: {exc}") from None
    where = result.sample_file(task)
    values: dict[Key, tuple[float, float]] = {}
    kinds: set[Kind] = set()
    invalid = 0
    for index, record in enumerate(records):
        if "id" not in record:
            raise GateError(f"{where}: sample {index} has no 'id'; cannot pair samples")
        found = _classify(record, unit)
        if found is None:
            if "score" in record and record["score"] is None:
                invalid += 1
                continue
            raise GateError(f"{where}: sample {record['id']!r} has neither a boolean 'correct', a numeric 'score' "
                            f"nor 'logprob' with '{unit}'; cannot compare it")
        kinds.add(found[0])
        values[(str(record.get("subset", "")), str(record["id"]))] = found[1]
    if len(kinds) != 1:
        detail = "mixes " + " and ".join(sorted(kinds)) if kinds else "has no usable samples"
        raise GateError(f"{where}: {detail}; cannot compare")
    return _TaskSamples(kinds.pop(), values, invalid)


def _lower_is_better(result: RunResult, task: str, kind: Kind) -> bool:
    """Per-sample scores are lower-is-better when every metric of the task is (the run record's rule)."""
    if kind == "perplexity":
        return True
    record = result.tasks[task].record
    names = metric_names(result.tasks[task].metrics)
    return kind == "score" and bool(names) and not any(record.is_higher_better(m) for m in names)


def _compare(base: _TaskSamples, new: _TaskSamples, keys: Sequence[Key], *, alpha: float, resamples: int,
             seed: int) -> PairedComparison:
    if new.kind == "perplexity":
        return compare_perplexity([base.values[k][0] for k in keys], [base.values[k][1] for k in keys],
                                  [new.values[k][0] for k in keys], [new.values[k][1] for k in keys],
                                  alpha=alpha, resamples=resamples, seed=seed)
    return compare_paired([base.values[k][0] for k in keys], [new.values[k][0] for k in keys],
                          binary=new.kind == "correct", alpha=alpha, resamples=resamples, seed=seed)


def _verdict(cmp: PairedComparison, drop: float, alpha: float, max_drop: float) -> tuple[bool, str]:
    if cmp.p_value < alpha and drop > max_drop:
        return False, f"FAILED: significant drop of {drop:.4g} > max drop {max_drop:g}"
    if cmp.p_value < alpha and drop > 0:
        return True, f"ok: significant drop of {drop:.4g} within max drop {max_drop:g}"
    return True, "ok" if drop <= 0 else f"ok: drop within noise (p >= {alpha:g})"


def regression_check(base: RunResult, new: RunResult, address: str, *, alpha: float, max_drop: float,
                     resamples: int, seed: int) -> tuple[GateCheck, list[str]]:
    """Compare one task (or `task/subset`) of `new` against `base`: the check and notes about left-out samples."""
    task, _, subset = address.partition("/")
    metric, unit = _perplexity_unit(new, task)
    base_samples = _read_samples(base, task, subset, unit)
    new_samples = _read_samples(new, task, subset, unit)
    if base_samples.kind != new_samples.kind:
        raise GateError(f"regression {address}: the baseline's samples are '{base_samples.kind}' records but the "
                        f"new run's are '{new_samples.kind}'; cannot compare")
    keys = sorted(set(base_samples.values) & set(new_samples.values))
    if not keys:
        raise GateError(f"regression {address}: no sample ids in common between the baseline and the new run")
    cmp = _compare(base_samples, new_samples, keys, alpha=alpha, resamples=resamples, seed=seed)
    drop = cmp.diff if _lower_is_better(new, task, new_samples.kind) else -cmp.diff
    passed, verdict = _verdict(cmp, drop, alpha, max_drop)
    metric = {"correct": "acc", "score": "score", "perplexity": metric}[new_samples.kind]
    level = f"{100 * (1 - alpha):g}%"
    message = (f"{address}.{metric}: {cmp.mean_base:.4g} -> {cmp.mean_new:.4g} (diff {cmp.diff:+.4g}, {level} CI "
               f"[{cmp.ci_low:+.4g}, {cmp.ci_high:+.4g}], p={cmp.p_value:.3g} {cmp.method}, n={cmp.n}): {verdict}")
    unpaired = len(set(base_samples.values) ^ set(new_samples.values))
    notes = [f"{address}: {unpaired} sample(s) present in only one run were left out"] if unpaired else []
    if base_samples.invalid or new_samples.invalid:
        notes.append(f"{address}: samples without a score were left out (baseline {base_samples.invalid}, "
                     f"new run {new_samples.invalid})")
    check = GateCheck("regression", f"{address}.{metric}", passed, message, cmp.mean_new, cmp.mean_base, cmp,
                      unpaired, max_drop)
    return check, notes


def compared_tasks(base: RunResult, new: RunResult, selected: Sequence[str]) -> list[str]:
    """The tasks to compare: `selected` (checked to exist in both runs), else every task of the baseline."""
    if selected:
        for address in selected:
            task = address.partition("/")[0]
            for run, label in ((base, "baseline"), (new, "new run")):
                if task not in run.tasks:
                    raise GateError(f"--task {address}: the {label} has no task '{task}' "
                                    f"(tasks: {', '.join(run.tasks) or 'none'})")
        return list(selected)
    missing = [t for t in base.tasks if t not in new.tasks]
    if missing:
        raise GateError(f"the new run lacks baseline task(s) {', '.join(missing)}; run them, or choose the "
                        f"compared tasks with --task")
    return list(base.tasks)
