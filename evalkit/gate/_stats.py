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

__all__ = ["PairedComparison", "bootstrap_mean_diffs", "compare_paired", "mcnemar_exact", "paired_bootstrap"]

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
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    tolerance = 1e-12 * max(1.0, abs(observed))
    extreme = int(np.sum(np.abs(means - observed) >= abs(observed) - tolerance))
    return float(low), float(high), (1 + extreme) / (1 + resamples)


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
