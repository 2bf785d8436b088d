"""The CI gate: absolute thresholds on a run's scores, and regression checks against a baseline run.

Threshold checks: `task.metric >= VALUE` (`--min`) or `task.metric <= VALUE` (`--max`, for perplexities); the
task may be `"cmmlu"` or a group/subtask `"cmmlu/STEM"` (see `evalkit.api`).

Regression rule, per compared task. The two runs' samples are paired by (task, subset, id); on the paired
samples let drop = mean_base - mean_new (in the "better" direction: for lower-is-better scores the sign is
flipped), and p the two-sided p-value of "no difference" (exact McNemar when every per-sample value is a binary
`correct`, otherwise a paired bootstrap of the mean difference with a fixed seed). The check FAILS if and only if

    p < alpha  AND  drop > max_drop

so a drop within noise (p >= alpha) passes however large it looks, and a significant drop passes when it is
no larger than the tolerated `max_drop` (default 0: any significant drop fails). An improvement never fails.
The report gives both means, the difference (new - base) with its (1 - alpha) paired-bootstrap interval, and p.

Before comparing, the manifests (manifest.json) of both runs must agree for every compared task: a differing
task spec, prompt template or data-file hash is a `GateError` naming the hash, because such runs measure
different things. Runs without a manifest are compared with a note that hashes were not checked.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from evalkit.api import MissingResult, RunResult, metric_names
from evalkit.errors import DataError, GateError
from evalkit.gate._stats import DEFAULT_RESAMPLES, PairedComparison, compare_paired

__all__ = ["GateCheck", "GateReport", "Threshold", "check_manifests", "parse_threshold", "run_gate"]

_LOWER_BETTER = re.compile(r"perplexity|bits_per_byte|loss|error|(^|_)ppl$")
_THRESHOLD = re.compile(r"^(?P<task>[^=]+)\.(?P<metric>[^.=]+)=(?P<value>[^=]+)$")
_MACHINE_KEYS = frozenset({"path", "paths", "source_file", "data_dir", "created", "root", "cache", "output"})


@dataclass(frozen=True)
class Threshold:
    """One `--min`/`--max` argument: `task.metric=VALUE` (task may be `task/group`)."""

    task: str
    metric: str
    value: float
    kind: Literal["min", "max"] = "min"

    @property
    def target(self) -> str:
        """`task.metric` as written on the command line."""
        return f"{self.task}.{self.metric}"


def parse_threshold(text: str, kind: Literal["min", "max"] = "min") -> Threshold:
    """Parse `cmmlu.acc=0.30` or `cmmlu/STEM.acc=0.3`.

    Examples:
        >>> parse_threshold("cmmlu/STEM.acc=0.3")
        Threshold(task='cmmlu/STEM', metric='acc', value=0.3, kind='min')
    """
    match = _THRESHOLD.match(text.strip())
    value = _to_float(match.group("value")) if match else None
    if match is None or value is None:
        raise GateError(f"--{kind} {text!r}: expected TASK.METRIC=NUMBER, e.g. cmmlu.acc=0.30 or cmmlu/STEM.acc=0.3")
    return Threshold(match.group("task").strip(), match.group("metric").strip(), value, kind)


def _to_float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class GateCheck:
    """The outcome of one check (one row of the table, one JUnit testcase)."""

    kind: Literal["min", "max", "regression"]
    target: str
    passed: bool
    message: str
    observed: float | None = None
    threshold: float | None = None
    comparison: PairedComparison | None = None
    unpaired: int = 0

    @property
    def name(self) -> str:
        """A stable, readable test name: `cmmlu.acc >= 0.3`, `regression cmmlu.acc`."""
        if self.kind == "regression":
            return f"regression {self.target}"
        op = ">=" if self.kind == "min" else "<="
        return f"{self.target} {op} {self.threshold:g}"


@dataclass(frozen=True)
class GateReport:
    """All checks of one gate invocation."""

    checks: tuple[GateCheck, ...]
    notes: tuple[str, ...] = ()
    alpha: float = 0.05
    max_drop: float | None = None

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[GateCheck]:
        """The checks that failed."""
        return [c for c in self.checks if not c.passed]


def _threshold_check(result: RunResult, threshold: Threshold) -> GateCheck:
    try:
        observed = result.score(threshold.task, threshold.metric)
    except MissingResult as exc:
        raise GateError(f"--{threshold.kind} {threshold.target}: {exc}") from None
    passed = observed >= threshold.value if threshold.kind == "min" else observed <= threshold.value
    word = "at least" if threshold.kind == "min" else "at most"
    verdict = "ok" if passed else "FAILED"
    message = f"{threshold.target} = {observed:.4g}, required {word} {threshold.value:g}: {verdict}"
    return GateCheck(threshold.kind, threshold.target, passed, message, observed, threshold.value)


# ---- manifests ------------------------------------------------------------------------------------------------


def _key(key: Any) -> str:
    """Absolute data-file paths differ between machines: keep their last two parts (`test/agronomy.csv`)."""
    text = str(key)
    return "/".join(Path(text).parts[-2:]) if Path(text).is_absolute() else text


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if str(key) in _MACHINE_KEYS:
                continue
            name = _key(key)
            out.update(_flatten(item, f"{prefix}[{name!r}]" if "/" in name or "." in name else
                                f"{prefix}.{name}" if prefix else name))
        return out
    if isinstance(value, list):
        out = {}
        for i, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def _task_manifest(manifest: Mapping[str, Any], task: str) -> Any:
    tasks = manifest.get("tasks")
    return tasks.get(task) if isinstance(tasks, Mapping) else None


def _short(value: Any) -> str:
    text = str(value)
    return text[:12] + "…" if len(text) > 14 else text


def _what(key: str) -> str:
    head = re.split(r"[.\[]", key, maxsplit=1)[0].lower()
    for prefix, label in (("spec", "task spec hash"), ("prompt", "prompt hash"), ("template", "prompt hash"),
                          ("data", "data hash"), ("version", "task version")):
        if head.startswith(prefix):
            return label
    return f"'{head}' entry"


def check_manifests(base: RunResult, new: RunResult, tasks: Iterable[str]) -> list[str]:
    """Raise GateError when a compared task's manifest entries (spec, prompt, data hashes) differ.

    Reads manifest.json's `{"tasks": {"<task>": {"spec_sha256", "prompt_sha256", "version", "data_files":
    {file: sha256}, "data_sha256", ...}}}`; every leaf under a task's entry is compared, except
    machine-specific keys (paths, timestamps); absolute data-file paths are compared by their last two parts.
    Returns notes for tasks that cannot be checked (no manifest entry on one side).
    """
    notes: list[str] = []
    for task in tasks:
        base_entry, new_entry = _task_manifest(base.manifest, task), _task_manifest(new.manifest, task)
        if base_entry is None or new_entry is None:
            missing = "baseline" if base_entry is None else "new run"
            notes.append(f"{task}: no manifest entry in the {missing}; task spec/prompt/data hashes not checked")
            continue
        flat_base, flat_new = _flatten(base_entry), _flatten(new_entry)
        for key in sorted(set(flat_base) | set(flat_new)):
            old, cur = flat_base.get(key, "<absent>"), flat_new.get(key, "<absent>")
            if old != cur:
                raise GateError(
                    f"task '{task}': {_what(key)} differs between the runs ({key}: baseline {_short(old)} vs new "
                    f"{_short(cur)}); runs of different task versions, prompts or data cannot be compared: "
                    f"re-run the baseline with the same task definition and data")
    return notes


# ---- regression -----------------------------------------------------------------------------------------------


def _sample_values(result: RunResult, task: str, subset: str | None) -> tuple[dict[tuple[str, str], float], bool]:
    """{(subset, id): value} and whether the values are binary `correct` outcomes. Later duplicates win."""
    try:
        records = result.samples(f"{task}/{subset}" if subset else task)
    except DataError as exc:
        raise GateError(f"regression check needs per-sample records: {exc}") from None
    values: dict[tuple[str, str], float] = {}
    kinds: set[str] = set()
    for index, record in enumerate(records):
        if "id" not in record:
            raise GateError(f"{result.sample_file(task)}: sample {index} has no 'id'; cannot pair samples")
        key = (str(record.get("subset", "")), str(record["id"]))
        correct, score = record.get("correct"), record.get("score")
        if isinstance(correct, bool) or correct in (0, 1):
            values[key], kind = float(correct), "correct"
        elif isinstance(score, (int, float)) and not isinstance(score, bool) and math.isfinite(score):
            values[key], kind = float(score), "score"
        else:
            raise GateError(f"{result.sample_file(task)}: sample {record['id']!r} has neither a boolean "
                            f"'correct' nor a numeric 'score'")
        kinds.add(kind)
    if len(kinds) > 1:
        raise GateError(f"{result.sample_file(task)}: mixes 'correct' and 'score' samples; cannot compare")
    return values, kinds == {"correct"}


def _lower_is_better(result: RunResult, task: str) -> bool:
    scores = result.tasks[task]
    declared = scores.info.get("higher_is_better")
    if isinstance(declared, bool):
        return not declared
    names = metric_names(scores.metrics)
    return bool(names) and all(_LOWER_BETTER.search(m) for m in names)


def _regression_check(base: RunResult, new: RunResult, address: str, *, alpha: float, max_drop: float,
                      resamples: int, seed: int) -> GateCheck:
    task, _, subset = address.partition("/")
    base_values, base_binary = _sample_values(base, task, subset or None)
    new_values, new_binary = _sample_values(new, task, subset or None)
    keys = sorted(set(base_values) & set(new_values))
    if not keys:
        raise GateError(f"regression {address}: no sample ids in common between the baseline and the new run")
    unpaired = len(set(base_values) ^ set(new_values))
    binary = base_binary and new_binary
    comparison = compare_paired([base_values[k] for k in keys], [new_values[k] for k in keys], binary=binary,
                                alpha=alpha, resamples=resamples, seed=seed)
    sign = -1.0 if _lower_is_better(new, task) else 1.0
    drop = -sign * comparison.diff
    failed = comparison.p_value < alpha and drop > max_drop
    metric = "acc" if binary else "score"
    level = f"{100 * (1 - alpha):g}%"
    message = (f"{address}.{metric}: {comparison.mean_base:.4g} -> {comparison.mean_new:.4g} "
               f"(diff {comparison.diff:+.4g}, {level} CI [{comparison.ci_low:+.4g}, {comparison.ci_high:+.4g}], "
               f"p={comparison.p_value:.3g} {comparison.method}, n={comparison.n}): ")
    if failed:
        message += f"FAILED: significant drop of {drop:.4g} > max drop {max_drop:g}"
    elif comparison.p_value < alpha and drop > 0:
        message += f"ok: significant drop of {drop:.4g} within max drop {max_drop:g}"
    else:
        message += "ok" if drop <= 0 else f"ok: drop within noise (p >= {alpha:g})"
    return GateCheck("regression", f"{address}.{metric}", not failed, message, comparison.mean_new,
                     comparison.mean_base, comparison, unpaired)


def _compared_tasks(base: RunResult, new: RunResult, selected: Sequence[str]) -> list[str]:
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


def run_gate(result: RunResult, *, minimums: Sequence[Threshold] = (), maximums: Sequence[Threshold] = (),
             baseline: RunResult | None = None, max_drop: float | None = None, alpha: float = 0.05,
             tasks: Sequence[str] = (), resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> GateReport:
    """Run every check and return the report (the caller decides what failing means).

    Args:
        result: The run under test.
        minimums: `--min` thresholds (score must be >= value).
        maximums: `--max` thresholds (score must be <= value).
        baseline: A baseline run to check for regressions (needs both runs' samples/ folders).
        max_drop: Tolerated drop of the paired mean (absolute, e.g. 0.02 = 2 accuracy points); default 0.
        alpha: Significance level of the regression test, and 1 - level of its interval.
        tasks: Tasks (or `task/subset`) to compare with the baseline; default every baseline task.
        resamples: Bootstrap resamples.
        seed: Bootstrap seed.

    Raises:
        GateError: nothing to check, a missing task/metric, unpaired samples or differing manifests.
    """
    if not 0.0 < alpha < 1.0:
        raise GateError(f"--alpha {alpha}: must be between 0 and 1 (e.g. 0.05)")
    if max_drop is not None and (baseline is None or max_drop < 0 or not math.isfinite(max_drop)):
        raise GateError("--max-drop needs --baseline and a non-negative number, e.g. --baseline base/ --max-drop 0.02")
    if not minimums and not maximums and baseline is None:
        raise GateError("nothing to check: give --min TASK.METRIC=VALUE, --max ..., or --baseline RUN")
    checks = [_threshold_check(result, t) for t in (*minimums, *maximums)]
    notes: list[str] = []
    if baseline is not None:
        compared = _compared_tasks(baseline, result, tasks)
        notes += check_manifests(baseline, result, dict.fromkeys(a.partition("/")[0] for a in compared))
        for address in compared:
            check = _regression_check(baseline, result, address, alpha=alpha, max_drop=max_drop or 0.0,
                                      resamples=resamples, seed=seed)
            checks.append(check)
            if check.unpaired:
                notes.append(f"{address}: {check.unpaired} sample(s) present in only one run were left out")
    return GateReport(tuple(checks), tuple(notes), alpha, max_drop)
