"""The CI gate: absolute thresholds on a run's scores, and regression checks against a baseline run.

Threshold checks: `task.metric >= VALUE` (`--min`) or `task.metric <= VALUE` (`--max`, for perplexities); the
task may be `"cmmlu"` or a group/subtask `"cmmlu/STEM"` (see `evalkit.api`).

Regression rule, per compared task. The two runs' samples (samples/<task>.jsonl) are paired by
(task, subset, id); samples present in one run only are left out (and counted in a note). On the paired samples:

- binary `correct` (multiple choice): value = accuracy; p = exact McNemar test on the discordant pairs;
- numeric `score` (LongBench, judges; samples whose score is null, e.g. an unparseable judgement, are left out):
  value = mean score; p = paired bootstrap of the mean difference;
- perplexity records (`logprob` + unit counts): value = corpus perplexity exp(-sum logprob / sum units) in the
  task's headline unit (words, characters, bytes, tokens); p = paired bootstrap over documents.

drop = value_base - value_new for higher-is-better values, value_new - value_base for lower-is-better ones
(perplexity; a score task whose results info says `"higher_is_better": false`). The check FAILS if and only if

    p < alpha  AND  drop > max_drop

so a drop within noise (p >= alpha) passes however large it looks, and a significant drop passes when it is no
larger than the tolerated `max_drop` (default 0: any significant drop fails); an improvement never fails. p is
two-sided; bootstraps use a fixed seed, so the verdict is reproducible. The report gives both values, the
difference (new - base) with its (1 - alpha) paired-bootstrap interval, and p.

Before comparing, the manifests (manifest.json) of both runs must agree for every compared task: a differing
task spec, prompt template or data-file hash is a `GateError` naming the hash, because such runs measure
different things. Runs without a manifest are compared with a note that hashes were not checked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from evalkit.api import MissingResult, RunResult
from evalkit.errors import GateError
from evalkit.gate._manifest import check_manifests
from evalkit.gate._records import GateCheck, GateReport, Threshold
from evalkit.gate._regression import compared_tasks, regression_check
from evalkit.gate._stats import DEFAULT_RESAMPLES

__all__ = ["run_gate"]


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


def run_gate(result: RunResult, *, minimums: Sequence[Threshold] = (), maximums: Sequence[Threshold] = (),
             baseline: RunResult | None = None, max_drop: float | Mapping[str, float] | None = None,
             alpha: float = 0.05, tasks: Sequence[str] = (), resamples: int = DEFAULT_RESAMPLES,
             seed: int = 0) -> GateReport:
    """Run every check and return the report (the caller decides what failing means).

    Args:
        result: The run under test.
        minimums: `--min` thresholds (score must be >= value).
        maximums: `--max` thresholds (score must be <= value).
        baseline: A baseline run to check for regressions (needs both runs' samples/ folders).
        max_drop: Tolerated drop, in the compared metric's own units (0.02 = 2 accuracy points; perplexity
            points for perplexity tasks); a number for every task, or {task: drop} with "*" as the default.
            Default 0: any significant drop fails.
        alpha: Significance level of the regression test, and 1 - level of its interval.
        tasks: Tasks (or `task/subset`) to compare with the baseline; default every baseline task.
        resamples: Bootstrap resamples.
        seed: Bootstrap seed.

    Raises:
        GateError: nothing to check, a missing task/metric, unpaired samples or differing manifests.
    """
    drops = dict(max_drop) if isinstance(max_drop, Mapping) else ({} if max_drop is None else {"*": max_drop})
    if not 0.0 < alpha < 1.0:
        raise GateError(f"--alpha {alpha}: must be between 0 and 1 (e.g. 0.05)")
    if drops and (baseline is None or any(not 0 <= d < float("inf") for d in drops.values())):
        raise GateError("--max-drop needs --baseline and a non-negative number, e.g. --baseline base/ --max-drop 0.02")
    if not minimums and not maximums and baseline is None:
        raise GateError("nothing to check: give --min TASK.METRIC=VALUE, --max ..., or --baseline RUN")
    checks = [_threshold_check(result, t) for t in (*minimums, *maximums)]
    notes: list[str] = []
    if baseline is not None:
        compared = compared_tasks(baseline, result, tasks)
        unknown = sorted(set(drops) - {"*"} - {a.partition("/")[0] for a in compared} - set(compared))
        if unknown:
            raise GateError(f"--max-drop for {', '.join(unknown)}: not a compared task ({', '.join(compared)})")
        notes += check_manifests(baseline, result, dict.fromkeys(a.partition("/")[0] for a in compared))
        for address in compared:
            allowed = drops.get(address, drops.get(address.partition("/")[0], drops.get("*", 0.0)))
            check, more = regression_check(baseline, result, address, alpha=alpha, max_drop=allowed,
                                           resamples=resamples, seed=seed)
            checks.append(check)
            notes += more
    return GateReport(tuple(checks), tuple(notes), alpha, drops)
