"""The paired statistics of the gate, on constructed per-sample data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest, norm

from evalkit.gate import (
    bootstrap_mean_diffs,
    compare_paired,
    compare_perplexity,
    mcnemar_exact,
    paired_bootstrap,
)


def _pairs(both: int, worse: int, better: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    """Binary outcomes with the given cell counts (base right & new wrong = worse, ...), shuffled."""
    base = np.array([1] * both + [1] * worse + [0] * better + [0] * neither)
    new = np.array([1] * both + [0] * worse + [1] * better + [0] * neither)
    order = np.random.default_rng(both * 7 + worse).permutation(base.size)
    return base[order], new[order]


@pytest.mark.parametrize("worse,better", [(0, 1), (1, 0), (3, 3), (5, 1), (1, 9), (12, 4), (30, 2), (40, 55),
                                          (137, 101), (0, 25), (500, 460)])
def test_mcnemar_matches_scipy_binomtest_on_discordant_pairs(worse: int, better: int) -> None:
    base, new = _pairs(50, worse, better, 20)
    expected = binomtest(worse, worse + better, 0.5, alternative="two-sided").pvalue
    assert mcnemar_exact(base, new) == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_mcnemar_ignores_concordant_pairs() -> None:
    few = mcnemar_exact(*_pairs(0, 8, 2, 0))
    many = mcnemar_exact(*_pairs(900, 8, 2, 700))
    assert few == pytest.approx(many) == pytest.approx(binomtest(8, 10).pvalue)


def test_mcnemar_rejects_non_binary_and_mismatched_input() -> None:
    with pytest.raises(ValueError, match="binary"):
        mcnemar_exact([0.5, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="same length"):
        mcnemar_exact([1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="no paired samples"):
        mcnemar_exact([], [])


def test_identical_runs_give_p_one_and_zero_interval() -> None:
    base, _ = _pairs(40, 10, 10, 40)
    scores = np.random.default_rng(1).normal(size=300)
    for a, b in ((base, base.copy()), (scores, scores.copy())):
        cmp = compare_paired(a, b)
        assert cmp.p_value == 1.0
        assert cmp.diff == 0.0 and cmp.ci_low == 0.0 and cmp.ci_high == 0.0
    assert compare_paired(base, base.copy()).method == "mcnemar"
    assert compare_paired(scores, scores.copy()).method == "bootstrap"


def test_drop_within_noise_is_not_significant_and_real_drop_is() -> None:
    noise = compare_paired(*_pairs(300, 9, 6, 185))  # 0.6 % drop on 500 questions
    real = compare_paired(*_pairs(300, 45, 10, 145))  # 7 % drop
    assert noise.diff == pytest.approx(-3 / 500) and noise.p_value > 0.3
    assert noise.ci_low < 0 < noise.ci_high
    assert real.diff == pytest.approx(-35 / 500) and real.p_value < 1e-5
    assert real.ci_high < 0
    assert real.discordant == (45, 10)


def test_bootstrap_interval_matches_the_paired_normal_approximation_for_binary_data() -> None:
    base, new = _pairs(600, 60, 40, 300)
    n = base.size
    pb, pc = 60 / n, 40 / n
    se = math.sqrt((pb + pc - (pc - pb) ** 2) / n)
    cmp = compare_paired(base, new, alpha=0.05, resamples=20_000)
    assert cmp.ci_high - cmp.ci_low == pytest.approx(2 * 1.959964 * se, rel=0.05)
    assert (cmp.ci_low + cmp.ci_high) / 2 == pytest.approx(cmp.diff, abs=0.2 * se)


def test_bootstrap_on_continuous_scores_matches_normal_theory() -> None:
    rng = np.random.default_rng(7)
    base = rng.normal(50, 10, size=3_000)  # many distinct values: the index-resampling path
    new = base + rng.normal(-0.3, 2.0, size=base.size)
    d = new - base
    se = d.std(ddof=1) / math.sqrt(d.size)
    low, high, p = paired_bootstrap(base, new, resamples=4_000, seed=3)
    assert high - low == pytest.approx(2 * 1.959964 * se, rel=0.08)
    z = abs(d.mean()) / se
    expected_p = 2 * norm.sf(z)
    assert p == pytest.approx(expected_p, rel=0.5, abs=2e-3)


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    d = np.random.default_rng(0).normal(size=200)
    first = bootstrap_mean_diffs(d, resamples=500, seed=11)
    assert np.array_equal(first, bootstrap_mean_diffs(d, resamples=500, seed=11))
    assert not np.array_equal(first, bootstrap_mean_diffs(d, resamples=500, seed=12))
    assert first.mean() == pytest.approx(d.mean(), abs=4 * d.std() / math.sqrt(d.size * 500) + 1e-3)


def test_bootstrap_p_value_is_small_only_for_a_clear_shift() -> None:
    rng = np.random.default_rng(5)
    base = rng.normal(0, 1, size=400)
    noise = base + rng.normal(0, 0.5, size=400)
    shifted = base + rng.normal(-0.25, 0.5, size=400)  # ~10 standard errors
    assert paired_bootstrap(base, noise, seed=0)[2] > 0.01
    assert paired_bootstrap(base, shifted, seed=0)[2] < 1e-3


def test_bootstrap_rejects_bad_alpha() -> None:
    with pytest.raises(ValueError, match="alpha"):
        paired_bootstrap([1.0, 2.0], [1.0, 2.0], alpha=1.5)


def test_perplexity_comparison_uses_corpus_perplexity() -> None:
    rng = np.random.default_rng(9)
    words = rng.integers(50, 500, size=60).astype(float)
    nll = rng.uniform(3.0, 4.0, size=60)
    base_lp = -nll * words
    same = compare_perplexity(base_lp, words, base_lp.copy(), words.copy())
    assert same.mean_base == pytest.approx(math.exp(nll @ words / words.sum()))
    assert (same.diff, same.ci_low, same.ci_high, same.p_value) == (0.0, 0.0, 0.0, 1.0)
    noisy = compare_perplexity(base_lp, words, base_lp * (1 + rng.normal(0, 0.002, size=60)), words, seed=1)
    worse = compare_perplexity(base_lp, words, base_lp * 1.02, words, seed=1)
    assert noisy.p_value > 0.05 and noisy.ci_low < 0 < noisy.ci_high
    expected = math.exp(1.02 * nll @ words / words.sum()) - same.mean_base
    assert worse.diff == pytest.approx(expected) and worse.p_value < 1e-3 and worse.ci_low > 0
