"""Metrics over K samples per question: maj@K, pass@K (Chen et al. 2021), mean@K, with standard errors.

- ``maj@K``: the majority letter of the K samples is correct. Unextractable samples (`None`) do not vote;
  a question whose samples are all unextractable counts as wrong. Ties are broken by the EARLIEST sample:
  among the tied letters, the one that some sample gave first (lowest sample index) wins, so the result
  never depends on letter order and equals sample 0's letter whenever sample 0 is among the tied.
- ``pass@k``: the unbiased estimator of Chen et al. (2021), "Evaluating Large Language Models Trained on
  Code", with n samples of which c are correct: 1 - C(n-c, k) / C(n, k), computed in the numerically stable
  product form 1 - prod_{i=n-c+1}^{n} (1 - k / i). pass@1 equals c / n.
- ``mean@K``: the mean correctness of the K samples (the expected single-sample accuracy).

Each is a per-question value in [0, 1]; the task value is the mean over questions and its standard error
the sample standard deviation over questions / sqrt(questions), as for accuracy.

Tasks whose samples get a score rather than a right/wrong letter (LongBench's F1 and ROUGE, a judge's 1-10,
CMB-Clin's ROUGE-L) use `score_sampling_metrics`:

- ``mean@K``: the mean of a question's K scores (the expected single-sample score).
- ``best@K``: the best of a question's K scores (what an oracle picking one sample would get); when every
  score is 0 or 1 it is reported as ``pass@K`` (the unbiased estimator with n = K, then equal to "any sample
  correct") together with ``pass@1``.
- ``maj@K``: the score of the most frequent answer, when the task names what an answer votes for (a label, a
  normalised string); ties go to the earliest sample, and a question where nothing voted scores 0.
- ``sd@K``: the mean over questions of the standard deviation of a question's K scores (how much one answer's
  score depends on the draw); no standard error.

Examples:
    >>> round(pass_at_k(10, 3, 1), 4), round(pass_at_k(10, 3, 5), 4), pass_at_k(4, 0, 2), pass_at_k(4, 3, 2)
    (0.3, 0.9167, 0.0, 1.0)
    >>> majority_letter(["B", "A", "A", "B", None])
    'B'
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence

from evalkit.metrics._aggregate import mean_stderr

__all__ = ["maj_at_k", "majority_letter", "majority_vote", "mean_at_k", "pass_at_k", "sampling_metrics",
           "score_sampling_metrics"]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one question: n samples, c correct (Chen et al. 2021, stable product form).

    Args:
        n: samples drawn (n >= 1).
        c: correct samples (0 <= c <= n).
        k: the k of pass@k (1 <= k <= n).
    """
    if not (n >= 1 and 0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"pass@k needs n >= 1, 0 <= c <= n and 1 <= k <= n; got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def majority_letter(letters: Sequence[str | None]) -> str | None:
    """The most frequent non-None letter; ties go to the tied letter that appears first in `letters`."""
    index = majority_vote(letters)
    return None if index is None else letters[index]


def majority_vote(answers: Sequence[Hashable | None]) -> int | None:
    """The index of the first sample giving the most frequent non-None answer (ties: the earliest), or None."""
    votes = Counter(x for x in answers if x is not None)
    if not votes:
        return None
    top = max(votes.values())
    return next(i for i, x in enumerate(answers) if x is not None and votes[x] == top)


def maj_at_k(samples: Sequence[Sequence[str | None]], targets: Sequence[str]) -> tuple[float, float]:
    """maj@K over questions: mean and standard error of [majority letter == target]."""
    _check(samples, targets)
    return mean_stderr([1.0 if majority_letter(s) == t else 0.0 for s, t in zip(samples, targets)])


def mean_at_k(samples: Sequence[Sequence[str | None]], targets: Sequence[str]) -> tuple[float, float]:
    """mean@K over questions: mean and standard error of each question's fraction of correct samples."""
    _check(samples, targets)
    return mean_stderr([sum(x == t for x in s) / len(s) for s, t in zip(samples, targets)])


def _check(samples: Sequence[Sequence[str | None]], targets: Sequence[str]) -> None:
    if len(samples) != len(targets):
        raise ValueError(f"{len(samples)} questions of samples but {len(targets)} targets")
    if any(len(s) == 0 for s in samples):
        raise ValueError("every question needs at least one sample")


def sampling_metrics(samples: Sequence[Sequence[str | None]], targets: Sequence[str]) -> dict[str, float]:
    """maj@K, pass@K, pass@1 and mean@K (K = samples per question, the smallest if they differ) with stderr.

    Args:
        samples: per question, the extracted letter of each sample (None = unextractable).
        targets: per question, the correct letter.

    Returns:
        {"maj@K", "maj@K_stderr", "pass@K", "pass@K_stderr", "pass@1", "pass@1_stderr", "mean@K",
        "mean@K_stderr"}; empty when there are no questions.

    Examples:
        >>> m = sampling_metrics([["A", "B", "A"], ["C", "C", "D"]], ["A", "D"])
        >>> round(m["maj@3"], 3), round(m["pass@3"], 3), round(m["mean@3"], 3)
        (0.5, 1.0, 0.5)
    """
    if not samples:
        return {}
    _check(samples, targets)
    k = min(len(s) for s in samples)
    values = score_sampling_metrics([[1.0 if x == t else 0.0 for x in s[:k]] for s, t in zip(samples, targets)],
                                    [list(s[:k]) for s in samples], k=k)
    return {name: values[name] for metric in (f"maj@{k}", f"pass@{k}", "pass@1", f"mean@{k}")
            for name in (metric, f"{metric}_stderr")}


def score_sampling_metrics(scores: Sequence[Sequence[float]],
                           answers: Sequence[Sequence[Hashable | None]] | None = None, *,
                           k: int | None = None, prefix: str = "") -> dict[str, float]:
    """mean@K, best@K (pass@K and pass@1 for 0/1 scores), maj@K (with `answers`) and sd@K over K scored samples.

    Args:
        scores: per question, the score of each sample.
        answers: per question, what each sample votes for (None = no vote), aligned with `scores`.
        k: the K the metrics are named after (default: the most samples any question has). A question with
            more keeps its first K; one with fewer (a sample its judge could not grade) contributes the samples
            it has: their mean, best, majority and spread, and pass@min(K, n).
        prefix: names the metric the scores are of: `rouge_l` gives `rouge_l_mean@3`, ...

    Returns:
        The metrics with `_stderr` for each but sd@K; empty when there are no questions.

    Examples:
        >>> m = score_sampling_metrics([[0.2, 0.6, 0.4], [1.0, 0.0, 1.0]], [["x", "y", "y"], ["a", "b", "a"]])
        >>> round(m["mean@3"], 3), round(m["best@3"], 3), round(m["maj@3"], 3), "pass@3" in m
        (0.533, 0.8, 0.8, False)
        >>> sorted(k for k in score_sampling_metrics([[1, 0], [0]], prefix="acc") if not k.endswith("_stderr"))
        ['acc_mean@2', 'acc_pass@1', 'acc_pass@2', 'acc_sd@2']
    """
    if not scores:
        return {}
    if any(len(s) == 0 for s in scores):
        raise ValueError("every question needs at least one sample")
    if answers is not None and len(answers) != len(scores):
        raise ValueError(f"{len(scores)} questions of scores but {len(answers)} of answers")
    k = k or max(len(s) for s in scores)
    rows = [[float(x) for x in s[:k]] for s in scores]
    binary = all(x in (0.0, 1.0) for row in rows for x in row)
    values: dict[str, list[float]] = {f"mean@{k}": [sum(row) / len(row) for row in rows]}
    if binary:
        values[f"pass@{k}"] = [pass_at_k(len(row), int(sum(row)), min(k, len(row))) for row in rows]
        values["pass@1"] = [pass_at_k(len(row), int(sum(row)), 1) for row in rows]
    else:
        values[f"best@{k}"] = [max(row) for row in rows]
    if answers is not None:
        values[f"maj@{k}"] = [0.0 if (i := majority_vote(list(a[:len(row)]))) is None else row[i]
                              for row, a in zip(rows, answers)]
    name = (lambda metric: f"{prefix}_{metric}") if prefix else (lambda metric: metric)
    out: dict[str, float] = {}
    for metric, per_question in values.items():
        out[name(metric)], out[name(f"{metric}_stderr")] = mean_stderr(per_question)
    out[name(f"sd@{k}")] = sum(_sd(row) for row in rows) / len(rows)
    return out


def _sd(row: Sequence[float]) -> float:
    if len(row) < 2:
        return 0.0
    mean = sum(row) / len(row)
    return math.sqrt(sum((x - mean) ** 2 for x in row) / (len(row) - 1))
