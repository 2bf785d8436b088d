"""Calibration of multiple-choice answers from option probabilities (loglikelihood mode).

The probability of each option is the softmax of the options' loglikelihoods (renormalised over the options,
as lm-eval and HELM do). The model's answer is the most probable option; its confidence is that probability.

- ``ece``: expected calibration error with 10 EQUAL-MASS bins: questions sorted by confidence (stable, so
  ties keep their input order) and split into 10 bins whose sizes differ by at most one (numpy's
  `array_split`); ECE = sum_b (|b| / n) * |accuracy(b) - mean confidence(b)|. With fewer than 10 questions
  each question is its own bin.
- ``brier``: the multi-class Brier score, mean over questions of sum_j (p_j - y_j)^2 where y is the one-hot
  correct option; 0 is perfect, 2 the worst (confidently wrong).

Examples:
    >>> [round(p, 4) for p in option_probabilities([0.0, 0.0, math.log(2.0)])]
    [0.25, 0.25, 0.5]
    >>> round(brier_score([[0.5, 0.5]], [0]), 4)
    0.5
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["brier_score", "calibration_metrics", "expected_calibration_error", "option_probabilities"]


def option_probabilities(loglikelihoods: Sequence[float]) -> list[float]:
    """Softmax of the options' loglikelihoods (stable: the maximum is subtracted first)."""
    if not loglikelihoods:
        raise ValueError("no options to normalise")
    top = max(loglikelihoods)
    weights = [math.exp(v - top) for v in loglikelihoods]
    total = math.fsum(weights)
    return [w / total for w in weights]


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """ECE with `bins` equal-mass bins (module docstring); NaN for no questions.

    Examples:
        >>> round(expected_calibration_error([0.9, 0.9, 0.6, 0.6], [True, False, True, True], bins=2), 4)
        0.4
    """
    if len(confidences) != len(correct):
        raise ValueError(f"{len(confidences)} confidences but {len(correct)} correctness values")
    n = len(confidences)
    if n == 0:
        return math.nan
    order = np.argsort(np.asarray(confidences, dtype=float), kind="stable")
    conf = np.asarray(confidences, dtype=float)[order]
    hits = np.asarray(correct, dtype=float)[order]
    total = 0.0
    for idx in np.array_split(np.arange(n), min(bins, n)):
        total += len(idx) / n * abs(float(hits[idx].mean()) - float(conf[idx].mean()))
    return total


def brier_score(probabilities: Sequence[Sequence[float]], targets: Sequence[int]) -> float:
    """Mean multi-class Brier score; `targets[i]` is the index of question i's correct option."""
    if len(probabilities) != len(targets):
        raise ValueError(f"{len(probabilities)} probability rows but {len(targets)} targets")
    if not probabilities:
        return math.nan
    scores = [math.fsum((p - (1.0 if j == t else 0.0)) ** 2 for j, p in enumerate(row))
              for row, t in zip(probabilities, targets)]
    return math.fsum(scores) / len(scores)


def calibration_metrics(choice_logprobs: Sequence[Mapping[str, float]], targets: Sequence[str],
                        bins: int = 10) -> dict[str, float]:
    """`ece` and `brier` from the samples' `choice_logprobs` (letter -> loglikelihood) and target letters.

    The predicted option is the most probable one, ties going to the first letter (as loglikelihood mode
    picks its prediction).

    Examples:
        >>> m = calibration_metrics([{"A": 0.0, "B": -50.0}, {"A": 0.0, "B": -50.0}], ["A", "B"])
        >>> round(m["ece"], 4), round(m["brier"], 4)
        (0.5, 1.0)
    """
    confidences, correct, rows, indices = [], [], [], []
    for lls, target in zip(choice_logprobs, targets, strict=True):
        letters = list(lls)
        if target not in lls:
            raise ValueError(f"target {target!r} is not one of the options {letters}")
        probs = option_probabilities([lls[x] for x in letters])
        best = max(range(len(probs)), key=lambda i: (probs[i], -i))
        confidences.append(probs[best])
        correct.append(letters[best] == target)
        rows.append(probs)
        indices.append(letters.index(target))
    return {"ece": expected_calibration_error(confidences, correct, bins), "brier": brier_score(rows, indices)}
