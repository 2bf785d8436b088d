"""Means with standard errors, and micro/macro aggregation over subjects and groups.

Examples:
    >>> round(mean_stderr([1, 0, 1, 1])[1], 4)
    0.25
    >>> agg = aggregate_groups({"a": [1, 1, 0, 0], "b": [1, 1]}, {"all": ["a", "b"]})
    >>> round(agg["all"]["acc"], 4), round(agg["all"]["acc_macro"], 4)
    (0.6667, 0.75)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["aggregate_groups", "corpus_perplexity", "macro_mean_stderr", "mean_stderr"]


def mean_stderr(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample std with ddof=1, over sqrt(n)), as lm-eval reports."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    mean = math.fsum(values) / n
    if n < 2:
        return mean, math.nan
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def macro_mean_stderr(subject_values: Sequence[Sequence[float]]) -> tuple[float, float]:
    """Unweighted mean of subject means; its stderr treats subjects as independent: sqrt(Σ se_i²) / k."""
    stats = [mean_stderr(v) for v in subject_values if len(v) > 0]
    if not stats:
        return math.nan, math.nan
    k = len(stats)
    mean = math.fsum(m for m, _ in stats) / k
    ses = [se for _, se in stats]
    if any(math.isnan(se) for se in ses):
        return mean, math.nan
    return mean, math.sqrt(math.fsum(se * se for se in ses)) / k


def aggregate_groups(per_subject: Mapping[str, Sequence[float]], groups: Mapping[str, Sequence[str]],
                     metric: str = "acc") -> dict[str, dict[str, float]]:
    """Micro (`acc`, by question) and macro (`acc_macro`, by subject) averages per group, with stderr."""
    out: dict[str, dict[str, float]] = {}
    for group, members in groups.items():
        present = [s for s in members if s in per_subject and len(per_subject[s]) > 0]
        if not present:
            continue
        pooled = [v for s in present for v in per_subject[s]]
        micro, micro_se = mean_stderr(pooled)
        macro, macro_se = macro_mean_stderr([per_subject[s] for s in present])
        out[group] = {metric: micro, f"{metric}_stderr": micro_se, f"{metric}_macro": macro,
                      f"{metric}_macro_stderr": macro_se, "n": len(pooled), "subjects": len(present)}
    return out


def corpus_perplexity(total_logprob: float, units: int) -> float | None:
    """exp(-Σ log p / Σ units): token, word or byte perplexity of a corpus (units counted over the corpus).

    None when there is nothing to divide by, or when the result overflows a float (word perplexity of text
    without spaces, e.g. Chinese): the caller reports it as null with a note, never as an exception.

    Examples:
        >>> round(corpus_perplexity(-6.0, 3), 4)
        7.3891
        >>> corpus_perplexity(-5000.0, 1) is None
        True
    """
    if units <= 0:
        return None
    try:
        return math.exp(-total_logprob / units)
    except OverflowError:
        return None
