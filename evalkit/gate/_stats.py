"""Paired tests for comparing two runs sample by sample: paired bootstrap and the exact McNemar test.

Both runs scored the same samples, so the comparison is paired: the per-sample differences d_i = new_i - base_i
carry the signal, and the variation between samples that both runs share cancels out. This is what makes a
1-point drop on 1,000 questions detectable when two independent 1,000-question means could not tell it apart.

- `mcnemar_exact`: for binary outcomes (correct / wrong). Only discordant pairs carry information:
  b = base right & new wrong, c = base wrong & new right. Under H0 (no difference) b ~ Binomial(b + c, 1/2);
  the two-sided exact p-value is min(1, 2 * P(X <= min(b, c))), the same as `scipy.stats.binomtest(b, b + c)`.
- `paired_bootstrap`: for any per-sample scores. Resample the n pairs with replacement (fixed seed), giving the
  distribution of the mean difference. CI: percentile interval at level 1 - alpha. Two-sided p-value: the share
  of resampled means at least as far from the observed mean as the observed mean is from 0 (the bootstrap
  distribution shifted to H0), (1 + count) / (1 + resamples); identical runs give p = 1.
- `compare_perplexity`: corpus perplexity exp(-sum log p / sum units) is a ratio over the corpus, not a mean of
  per-document values, so the same resampled documents are summed for both runs and the two corpus perplexities
  recomputed; CI and p-value as for `paired_bootstrap`, on the difference of perplexities.

Examples:
    >>> mcnemar_exact([True, True, False, False], [True, True, False, False])
    1.0
    >>> cmp = compare_paired([1.0, 1.0, 0.0, 1.0], [1.0, 0.0, 0.0, 1.0], binary=True)
    >>> cmp.mean_base, cmp.mean_new, cmp.diff, cmp.discordant
    (0.75, 0.5, -0.25, (1, 0))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["PairedComparison", "bootstrap_mean_diffs", "compare_paired", "compare_perplexity", "mcnemar_exact",
           "paired_bootstrap"]

DEFAULT_RESAMPLES = 10_000
_CHUNK_CELLS = 4_000_000  # draws per chunk when resampling indices (bounds memory at ~32 MB)


@dataclass(frozen=True)
class PairedComparison:
    """The paired comparison of one task between a baseline run and a new run.

    Attributes:
        n: Number of paired samples.
        mean_base: Mean per-sample score of the baseline on the paired samples.
        mean_new: Mean per-sample score of the new run on the same samples.
        diff: mean_new - mean_base.
        ci_low: Lower end of the (1 - alpha) paired-bootstrap interval of `diff`.
        ci_high: Upper end of that interval.
        p_value: Two-sided p-value of H0 "no difference" (exact McNemar when binary, else paired bootstrap).
        method: "mcnemar" or "bootstrap" (the method of `p_value`; the CI is always the paired bootstrap).
            For `compare_perplexity` the means are the corpus perplexities.
        discordant: (b, c) = (base right & new wrong, base wrong & new right) for binary data, else None.
    """

    n: int
    mean_base: float
    mean_new: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    method: str
    discordant: tuple[int, int] | None = None


def _as_pair(base: ArrayLike, new: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    a = np.asarray(base, dtype=np.float64).ravel()
    b = np.asarray(new, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired samples must have the same length ({a.size} vs {b.size})")
    if a.size == 0:
        raise ValueError("no paired samples to compare")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("per-sample scores must be finite numbers")
    return a, b


def mcnemar_exact(base: Sequence[bool] | ArrayLike, new: Sequence[bool] | ArrayLike) -> float:
    """Two-sided exact McNemar p-value for paired binary outcomes (1/True = correct).

    Examples:
        >>> round(mcnemar_exact([1] * 10 + [0] * 2, [0] * 10 + [0] * 2), 6)  # 10 vs 0 discordant
        0.001953
    """
    from scipy.stats import binom

    a, b = _as_pair(base, new)
    if not np.isin(a, (0.0, 1.0)).all() or not np.isin(b, (0.0, 1.0)).all():
        raise ValueError("McNemar's test needs binary outcomes (0/1 or False/True)")
    worse = int(np.sum((a == 1) & (b == 0)))
    better = int(np.sum((a == 0) & (b == 1)))
    discordant = worse + better
    if discordant == 0:
        return 1.0
    return float(min(1.0, 2.0 * binom.cdf(min(worse, better), discordant, 0.5)))


def bootstrap_mean_diffs(diffs: ArrayLike, *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> NDArray[np.float64]:
    """Means of `resamples` bootstrap resamples (with replacement, same size) of the per-sample differences.

    With few distinct values (accuracy: -1, 0, 1) resampling is done as one multinomial draw over the distinct
    values, which has exactly the distribution of resampling indices and is much faster.
    """
    d = np.asarray(diffs, dtype=np.float64).ravel()
    n = d.size
    rng = np.random.default_rng(seed)
    values, counts = np.unique(d, return_counts=True)
    if values.size <= 256:
        draws = rng.multinomial(n, counts / n, size=resamples)
        return np.asarray(draws @ values / n, dtype=np.float64)
    out = np.empty(resamples, dtype=np.float64)
    step = max(1, _CHUNK_CELLS // n)
    for start in range(0, resamples, step):
        stop = min(resamples, start + step)
        out[start:stop] = d[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    return out


def paired_bootstrap(base: ArrayLike, new: ArrayLike, *, alpha: float = 0.05, resamples: int = DEFAULT_RESAMPLES,
                     seed: int = 0) -> tuple[float, float, float]:
    """Paired bootstrap of mean(new - base): (ci_low, ci_high, two-sided p-value).

    Examples:
        >>> paired_bootstrap([0.5, 0.7, 0.9], [0.5, 0.7, 0.9])
        (0.0, 0.0, 1.0)
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    a, b = _as_pair(base, new)
    d = b - a
    observed = float(d.mean())
    means = bootstrap_mean_diffs(d, resamples=resamples, seed=seed)
    return _interval_and_p(means, observed, alpha, resamples)


def compare_paired(base: ArrayLike, new: ArrayLike, *, binary: bool | None = None, alpha: float = 0.05,
                   resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> PairedComparison:
    """Compare paired per-sample scores: mean difference, its bootstrap CI, and a p-value.

    Args:
        base: Baseline per-sample scores (1/0 for correct/wrong).
        new: New run's scores for the same samples, in the same order.
        binary: Use exact McNemar for the p-value; None decides from the data (all values 0 or 1).
        alpha: 1 - confidence level of the interval.
        resamples: Bootstrap resamples.
        seed: Bootstrap seed (fixed, so a gate gives the same answer every time).
    """
    a, b = _as_pair(base, new)
    if binary is None:
        binary = bool(np.isin(a, (0.0, 1.0)).all() and np.isin(b, (0.0, 1.0)).all())
    low, high, p_boot = paired_bootstrap(a, b, alpha=alpha, resamples=resamples, seed=seed)
    discordant = None
    p_value, method = p_boot, "bootstrap"
    if binary:
        p_value, method = mcnemar_exact(a, b), "mcnemar"
        discordant = (int(np.sum((a == 1) & (b == 0))), int(np.sum((a == 0) & (b == 1))))
    return PairedComparison(n=int(a.size), mean_base=float(a.mean()), mean_new=float(b.mean()),
                            diff=float(b.mean() - a.mean()), ci_low=low, ci_high=high, p_value=p_value,
                            method=method, discordant=discordant)


def _interval_and_p(stats: NDArray[np.float64], observed: float, alpha: float, resamples: int) -> tuple[float, float, float]:
    low, high = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    tolerance = 1e-12 * max(1.0, abs(observed))
    extreme = int(np.sum(np.abs(stats - observed) >= abs(observed) - tolerance))
    return float(low), float(high), (1 + extreme) / (1 + resamples)


def compare_perplexity(base_logprob: ArrayLike, base_units: ArrayLike, new_logprob: ArrayLike,
                       new_units: ArrayLike, *, alpha: float = 0.05, resamples: int = DEFAULT_RESAMPLES,
                       seed: int = 0) -> PairedComparison:
    """Paired bootstrap over documents of the difference of corpus perplexities exp(-sum(logprob) / sum(units)).

    Args:
        base_logprob: Per-document total log-probability in the baseline.
        base_units: Per-document unit counts (words, characters, bytes or tokens) in the baseline.
        new_logprob: The same documents' log-probabilities in the new run, in the same order.
        new_units: The same documents' unit counts in the new run.
        alpha: 1 - confidence level of the interval.
        resamples: Bootstrap resamples.
        seed: Bootstrap seed.

    Examples:
        >>> cmp = compare_perplexity([-10.0, -20.0], [5, 10], [-10.0, -20.0], [5, 10])
        >>> round(cmp.mean_base, 4), cmp.diff, cmp.p_value
        (7.3891, 0.0, 1.0)
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    lp_a, lp_b = _as_pair(base_logprob, new_logprob)
    units_a, units_b = _as_pair(base_units, new_units)
    if lp_a.size != units_a.size or units_a.sum() <= 0 or units_b.sum() <= 0:
        raise ValueError("perplexity needs one positive unit count per document")
    n = lp_a.size
    ppl_a = float(np.exp(-lp_a.sum() / units_a.sum()))
    ppl_b = float(np.exp(-lp_b.sum() / units_b.sum()))
    rng = np.random.default_rng(seed)
    diffs = np.empty(resamples, dtype=np.float64)
    step = max(1, _CHUNK_CELLS // n)
    for start in range(0, resamples, step):
        stop = min(resamples, start + step)
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=stop - start).astype(np.float64)
        boot_a = np.exp(-(weights @ lp_a) / np.maximum(weights @ units_a, 1e-300))
        boot_b = np.exp(-(weights @ lp_b) / np.maximum(weights @ units_b, 1e-300))
        diffs[start:stop] = boot_b - boot_a
    low, high, p_value = _interval_and_p(diffs, ppl_b - ppl_a, alpha, resamples)
    return PairedComparison(n=n, mean_base=ppl_a, mean_new=ppl_b, diff=ppl_b - ppl_a, ci_low=low, ci_high=high,
                            p_value=p_value, method="bootstrap")
