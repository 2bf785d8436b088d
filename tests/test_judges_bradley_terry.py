"""Bradley-Terry recovers known strengths from synthetic battles; Elo scale and anchor; CIs cover."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evalkit.judges import bradley_terry, fit_bradley_terry

TRUE = {"a": 1250.0, "b": 1100.0, "c": 1000.0, "d": 900.0, "e": 750.0}


def _battles(n: int, seed: int, tie_rate: float = 0.0) -> list[tuple[str, str, float]]:
    rng = np.random.default_rng(seed)
    names = list(TRUE)
    out = []
    for _ in range(n):
        i, j = rng.choice(len(names), 2, replace=False)
        a, b = names[i], names[j]
        if rng.random() < tie_rate:
            out.append((a, b, 0.5))
            continue
        p = 1.0 / (1.0 + 10 ** ((TRUE[b] - TRUE[a]) / 400))
        out.append((a, b, float(rng.random() < p)))
    return out


def test_recovers_known_strengths() -> None:
    ratings = fit_bradley_terry(_battles(6000, 0), anchor="c")
    assert ratings["c"] == pytest.approx(1000.0)
    for m, r in TRUE.items():
        assert ratings[m] == pytest.approx(r, abs=30), m


def test_ranking_order_and_intervals_cover_truth() -> None:
    ranked = bradley_terry(_battles(3000, 1), anchor="c", rounds=100, seed=3)
    assert [r.model for r in ranked] == ["a", "b", "c", "d", "e"]
    assert [r.rank for r in ranked] == [1, 2, 3, 4, 5]
    for r in ranked:
        assert r.ci_low <= r.elo <= r.ci_high
        if r.model != "c":
            assert r.ci_low - 20 <= TRUE[r.model] <= r.ci_high + 20
    assert sum(r.battles for r in ranked) == 2 * 3000


def test_elo_scale_is_400_base_10() -> None:
    # a beats b 3 times out of 4 -> odds 3 -> 400 * log10(3) Elo points (the prior shifts it by < 1 point)
    ratings = fit_bradley_terry([("a", "b", 1.0)] * 300 + [("a", "b", 0.0)] * 100)
    assert ratings["a"] - ratings["b"] == pytest.approx(400 * math.log10(3), abs=1.0)
    assert (ratings["a"] + ratings["b"]) / 2 == pytest.approx(1000.0)  # mean anchored at 1000 without anchor


def test_ties_count_as_half_wins() -> None:
    only_ties = fit_bradley_terry([("a", "b", 0.5)] * 50)
    assert only_ties["a"] == pytest.approx(only_ties["b"])
    with_ties = fit_bradley_terry([("a", "b", 1.0)] * 30 + [("a", "b", 0.5)] * 20 + [("a", "b", 0.0)] * 10)
    # equivalent to 40 wins and 20 losses: odds 2
    assert with_ties["a"] - with_ties["b"] == pytest.approx(400 * math.log10(2), abs=1.0)


def test_undefeated_model_stays_finite() -> None:
    ratings = fit_bradley_terry([("a", "b", 1.0)] * 20)
    assert math.isfinite(ratings["a"]) and ratings["a"] > ratings["b"]
