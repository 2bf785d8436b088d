"""Bradley-Terry ranking from pairwise outcomes, Elo-scaled, with bootstrap confidence intervals.

Model: P(i beats j) = 1 / (1 + 10^((R_j - R_i) / 400)). A battle is `(model_a, model_b, score_a)` with
score_a = 1 (a won), 0 (b won), 0.5 (tie: half a win each) or any preference in [0, 1]. The ratings
maximise the likelihood (scipy Newton-CG, exact Hessian) with a small Gaussian prior (`l2`) that keeps them finite when a
model wins or loses everything. Scale: 400 points per factor 10 of odds; anchored so that `anchor` model
(or the mean, when no anchor is named) sits at 1000. The 95 % interval comes from refitting on battles
resampled with replacement (percentile bootstrap).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Battle", "RankedModel", "bradley_terry", "fit_bradley_terry"]

Battle = tuple[str, str, float]
_SCALE = 400.0 / math.log(10.0)
_BASE = 1000.0


@dataclass(frozen=True)
class RankedModel:
    """One row of a ranking."""

    model: str
    rank: int
    elo: float
    ci_low: float
    ci_high: float
    battles: int
    score_rate: float  # mean score in its battles (wins + half ties)

    def as_dict(self) -> dict[str, float | int | str]:
        return {"model": self.model, "rank": self.rank, "elo": round(self.elo, 2),
                "ci_low": round(self.ci_low, 2), "ci_high": round(self.ci_high, 2),
                "battles": self.battles, "score_rate": round(self.score_rate, 4)}


def _aggregate(idx_a: np.ndarray, idx_b: np.ndarray, score: np.ndarray, weight: np.ndarray,
               n: int) -> tuple[np.ndarray, np.ndarray]:
    """Wins matrix W[i, j] = (weighted) score of i against j."""
    wins = np.zeros((n, n))
    np.add.at(wins, (idx_a, idx_b), weight * score)
    np.add.at(wins, (idx_b, idx_a), weight * (1.0 - score))
    return wins, wins + wins.T


def _fit(wins: np.ndarray, games: np.ndarray, l2: float) -> np.ndarray:
    from scipy.optimize import minimize

    n = wins.shape[0]

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        diff = theta[:, None] - theta[None, :]
        log_p = -np.logaddexp(0.0, -diff)  # log sigmoid(theta_i - theta_j)
        nll = -float(np.sum(wins * log_p)) + 0.5 * l2 * float(theta @ theta)
        p = np.exp(log_p)
        grad_matrix = wins - games * p  # d/dtheta_i of the log-likelihood, per opponent j
        grad = -grad_matrix.sum(axis=1) + l2 * theta
        return nll, grad

    def hessian(theta: np.ndarray) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-(theta[:, None] - theta[None, :])))
        w = games * p * (1.0 - p)
        h = -w
        h[np.diag_indices(n)] = w.sum(axis=1) - np.diag(w) + l2
        return h

    # Newton-CG with the exact Hessian: the likelihood is convex, and this is ~10x faster than L-BFGS-B here
    result = minimize(objective, np.zeros(n), jac=True, hess=hessian, method="Newton-CG",
                      options={"xtol": 1e-10})
    return np.asarray(result.x)


def _to_elo(theta: np.ndarray, anchor_index: int | None) -> np.ndarray:
    centre = theta[anchor_index] if anchor_index is not None else theta.mean()
    return _BASE + _SCALE * (theta - centre)


def fit_bradley_terry(battles: Sequence[Battle], *, anchor: str | None = None, l2: float = 1e-3) -> dict[str, float]:
    """Elo-scaled Bradley-Terry ratings of the models in `battles` (no intervals).

    Examples:
        >>> r = fit_bradley_terry([("x", "y", 1.0)] * 30 + [("x", "y", 0.0)] * 10)
        >>> round(r["x"] - r["y"])  # 3:1 odds -> 400 * log10(3)
        191
    """
    models = sorted({m for a, b, _ in battles for m in (a, b)})
    index = {m: i for i, m in enumerate(models)}
    a = np.array([index[x] for x, _, _ in battles])
    b = np.array([index[y] for _, y, _ in battles])
    s = np.array([float(v) for _, _, v in battles])
    wins, games = _aggregate(a, b, s, np.ones(len(battles)), len(models))
    elo = _to_elo(_fit(wins, games, l2), index.get(anchor) if anchor else None)
    return {m: float(elo[i]) for m, i in index.items()}


def bradley_terry(battles: Sequence[Battle], *, anchor: str | None = None, rounds: int = 200,
                  seed: int = 0, l2: float = 1e-3, confidence: float = 0.95) -> list[RankedModel]:
    """Rank models by Bradley-Terry with percentile-bootstrap confidence intervals.

    Args:
        battles: (model_a, model_b, score of a in [0, 1]); ties are 0.5.
        anchor: the model placed at 1000 (default: the mean rating is 1000).
        rounds: bootstrap resamples of the battles.
        seed: seed of the resampling.
        l2: strength of the Gaussian prior on the log-strengths.
        confidence: the interval's coverage.

    Returns:
        Models sorted by rating, best first.
    """
    if not battles:
        return []
    models = sorted({m for x, y, _ in battles for m in (x, y)})
    index = {m: i for i, m in enumerate(models)}
    a = np.array([index[x] for x, _, _ in battles])
    b = np.array([index[y] for _, y, _ in battles])
    s = np.clip(np.array([float(v) for _, _, v in battles]), 0.0, 1.0)
    anchor_index = index.get(anchor) if anchor else None
    wins, games = _aggregate(a, b, s, np.ones(len(battles)), len(models))
    elo = _to_elo(_fit(wins, games, l2), anchor_index)
    rng = np.random.default_rng(seed)
    samples = np.empty((rounds, len(models)))
    for r in range(rounds):
        weight = rng.multinomial(len(battles), np.full(len(battles), 1.0 / len(battles))).astype(float)
        w, g = _aggregate(a, b, s, weight, len(models))
        samples[r] = _to_elo(_fit(w, g, l2), anchor_index)
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail], axis=0) if rounds else (elo, elo)
    counts = games.sum(axis=1)
    rates = wins.sum(axis=1) / np.maximum(counts, 1)
    order = sorted(range(len(models)), key=lambda i: -elo[i])
    return [RankedModel(models[i], rank, float(elo[i]), float(low[i]), float(high[i]), int(counts[i]),
                        float(rates[i])) for rank, i in enumerate(order, 1)]
