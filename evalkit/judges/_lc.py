"""Length-controlled win rate against a baseline (AlpacaEval 2.0's length-controlled GLM), with a bootstrap CI.

A pairwise judge that likes long answers rewards a model for talking more. AlpacaEval 2.0 controls for this by
fitting, per model, a logistic regression of the judge's preference for the model over the baseline:

    logit P(model preferred on item i) = θ + φ · tanh(Δ_i / σ)

where Δ_i is the model's answer length minus the baseline's (characters of the graded turn) and σ the standard
deviation of Δ over the items. The length-controlled win rate is the prediction with the length term removed,
sigmoid(θ): the win rate the model would have if its answers were as long as the baseline's. It answers "how
often is it preferred at equal length?", and it controls only for length: not for style, formatting or the
judge's other biases. (AlpacaEval also fits an instruction-difficulty term shared by all models; with one
model against one baseline per fit that term is left out here.) Preferences may be soft (ties are 0.5,
probability-mode preferences in between); the fit maximises the Bernoulli likelihood with those targets and a
small L2 prior on φ that keeps the fit finite when a model wins or loses everything. The 95 % interval is a
percentile bootstrap over items.

Examples:
    >>> round(lc_win_rate([1, 1, 0, 0], [100, 100, -100, -100])["lc_win_rate"], 2)  # wins only when longer
    0.5
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["lc_win_rate"]


def _fit_theta(y: np.ndarray, x: np.ndarray, l2: float) -> float:
    from scipy.optimize import minimize

    def nll(params: np.ndarray) -> tuple[float, np.ndarray]:
        theta, phi = params
        z = theta + phi * x
        log_p, log_q = -np.logaddexp(0.0, -z), -np.logaddexp(0.0, z)
        p = np.exp(log_p)
        loss = -float(np.sum(y * log_p + (1 - y) * log_q)) + 0.5 * l2 * (theta ** 2 + phi ** 2)
        grad = np.array([-float(np.sum(y - p)) + l2 * theta, -float(np.sum((y - p) * x)) + l2 * phi])
        return loss, grad

    return float(minimize(nll, np.zeros(2), jac=True, method="L-BFGS-B").x[0])


def lc_win_rate(preferences: Sequence[float], length_diffs: Sequence[float], *, rounds: int = 200, seed: int = 0,
                l2: float = 0.01) -> dict[str, Any]:
    """Raw and length-controlled win rate of a model against the baseline.

    Args:
        preferences: per item, the judge's preference for the model (1 win, 0.5 tie, 0 loss, or soft).
        length_diffs: per item, the model's answer length minus the baseline's.
        rounds: bootstrap resamples of the items.
        seed: seed of the resampling.
        l2: strength of the Gaussian prior on θ and φ.

    Returns:
        `win_rate`, `lc_win_rate` with `lc_win_rate_ci_low`/`_ci_high`, and `n`.
    """
    y = np.clip(np.asarray(preferences, dtype=float), 0.0, 1.0)
    d = np.asarray(length_diffs, dtype=float)
    if len(y) == 0:
        return {"win_rate": None, "lc_win_rate": None, "lc_win_rate_ci_low": None, "lc_win_rate_ci_high": None, "n": 0}
    scale = float(d.std()) or 1.0
    x = np.tanh(d / scale)
    point = 1.0 / (1.0 + math.exp(-_fit_theta(y, x, l2)))
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(rounds):
        idx = rng.integers(0, len(y), len(y))
        boot.append(1.0 / (1.0 + math.exp(-_fit_theta(y[idx], x[idx], l2))))
    low, high = (np.percentile(boot, [2.5, 97.5]) if boot else (point, point))
    return {"win_rate": round(float(y.mean()), 4), "lc_win_rate": round(point, 4),
            "lc_win_rate_ci_low": round(float(low), 4), "lc_win_rate_ci_high": round(float(high), 4), "n": len(y)}
