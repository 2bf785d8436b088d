"""The rules every reader of a run record shares: which keys are counts, which metrics are better lower,
which are fractions, and which family a task kind belongs to. They live here and nowhere else.

Examples:
    >>> higher_is_better("acc"), higher_is_better("word_perplexity"), higher_is_better("unextractable_rate")
    (True, False, False)
    >>> is_count_key("n"), is_count_key("n_skipped"), is_count_key("acc")
    (True, True, False)
    >>> metric_names({"acc": 0.4, "acc_stderr": 0.02, "n": 10, "acc_ci_low": 0.3, "acc_norm": 0.5})
    ['acc', 'acc_norm']
    >>> family_of_kind("multiturn_judge")
    'judged'
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, TypeGuard

__all__ = [
    "COUNT_KEYS",
    "FAMILY_LABELS",
    "HEADLINE_METRICS",
    "METRIC_SUFFIXES",
    "family_of_kind",
    "headline_metric",
    "higher_is_better",
    "is_count_key",
    "is_fraction_metric",
    "is_number",
    "metric_names",
]

# Keys of a metrics table that count things rather than measure them.
COUNT_KEYS = frozenset({"n", "subjects", "count", "total", "datasets", "items", "invalid", "battles", "truncated",
                        "retries", "rank"})
# Suffixes that attach an uncertainty to the metric named before them.
METRIC_SUFFIXES = ("_stderr", "_ci_low", "_ci_high")
# The metric a leaderboard shows for a task or group, in order of preference.
HEADLINE_METRICS = ("acc", "acc_norm", "score", "exact_match", "f1", "rouge", "win_rate", "char_perplexity",
                    "word_perplexity", "token_perplexity", "byte_perplexity", "bits_per_byte")
_LOWER_BETTER = re.compile(r"perplexity|bits_per_byte|loss|(^|_)ece$|(^|_)brier$|error|(^|_)ppl$|"
                           r"unextractable_rate|invalid_rate|(^|_)mean_rank$|(^|_)flip_rate$|(^|_)sd@\d+$")
_FRACTION = re.compile(r"(^|_)(acc|accuracy|exact_match|em|f1|rouge\w*|match|rate|kappa|consistency|win|pass|maj|"
                       r"mean_at)($|_|@)|^acc")
# K-sample metrics (`--repeats K`): `<stat>@K` over accuracy (multiple choice), `<metric>_<stat>@K` over a task's
# per-sample metric, on that metric's scale (`score_mean@3` of a 1-10 judge score, `rouge_l_best@3`).
_K_SAMPLE = re.compile(r"^(?:(?P<base>.+)_)?(?:mean|best|pass|maj|sd)@\d+$")

# Task kind -> the family the report groups it under (and its label).
_KIND_FAMILY = {"multiple_choice": "knowledge", "perplexity": "perplexity", "multiturn_judge": "judged",
                "longcontext": "longcontext", "lmeval": "other", "judged_answers": "judged"}
FAMILY_LABELS: dict[str, str] = {
    "knowledge": "Multiple choice",
    "perplexity": "Perplexity",
    "judged": "Judged chat",
    "longcontext": "Long context",
    "other": "Other",
}
_FAMILY_ALIASES = {"multiple_choice": "knowledge", "mc": "knowledge", "multiturn_judge": "judged",
                   "judge": "judged", "mt_bench": "judged", "longbench": "longcontext", "ppl": "perplexity",
                   "classification": "knowledge", "domain": "knowledge"}


def is_number(value: Any) -> TypeGuard[int | float]:
    """A finite int or float (bools are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_count_key(key: str) -> bool:
    """True for keys that count samples, subjects, battles, ... (`n`, `n_*`, `subjects`, ...)."""
    return key in COUNT_KEYS or key.startswith("n_")


def higher_is_better(metric: str) -> bool:
    """False for perplexities, bits per byte, losses, errors, calibration error, unextractable rates."""
    return not _LOWER_BETTER.search(metric)


def is_fraction_metric(metric: str) -> bool:
    """True for metrics stored as a fraction in [0, 1] (accuracy-like); reports show them as percentages.

    Examples:
        >>> [is_fraction_metric(m) for m in ("acc", "maj@4", "acc_pass@3", "score_mean@3", "rouge_l_sd@3")]
        [True, True, True, False, True]
    """
    k_sample = _K_SAMPLE.match(metric)
    if k_sample:
        base = k_sample.group("base")
        return base is None or bool(_FRACTION.search(base)) and higher_is_better(base)
    return bool(_FRACTION.search(metric)) and higher_is_better(metric)


def metric_names(values: Mapping[str, Any]) -> list[str]:
    """The numeric metric keys of a metrics table, without uncertainties and counts, in stored order."""
    return [k for k, v in values.items()
            if is_number(v) and not k.endswith(METRIC_SUFFIXES) and not is_count_key(k)]


def headline_metric(values: Mapping[str, Any]) -> str | None:
    """The metric a leaderboard shows: acc, acc_norm, score, ... else the first numeric one."""
    names = metric_names(values)
    for name in HEADLINE_METRICS:
        if name in names:
            return name
    return names[0] if names else None


def family_of_kind(kind: str, declared: str = "") -> str:
    """The report family of a task: its declared `family` when known, else the one of its kind."""
    for candidate in (declared, kind):
        if candidate in FAMILY_LABELS:
            return candidate
        if candidate in _FAMILY_ALIASES:
            return _FAMILY_ALIASES[candidate]
    return _KIND_FAMILY.get(kind, "other")
