"""Turning observed objectives into the one series the objective GP models.

ParEGO (Knowles 2006): each iteration draws weights on the simplex, normalizes every objective
to [0, 1] over the observed points and scalarizes with the augmented Chebyshev function, so
successive iterations aim at different parts of the Pareto front. Optional output warping
tames heavy-tailed KPIs before standardization.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Warping = Literal["none", "log", "rank"]
RHO = 0.05


def normalize(F: np.ndarray) -> np.ndarray:
    lo, hi = F.min(axis=0), F.max(axis=0)
    return (F - lo) / np.where(hi - lo > 0, hi - lo, 1.0)


def parego(F: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Augmented Chebyshev scalarization of the normalized objectives (smaller is better)."""
    W = normalize(F) * weights
    return np.asarray(W.max(axis=1) + RHO * W.sum(axis=1))


def warp(y: np.ndarray, kind: Warping) -> np.ndarray:
    """Monotone transforms: ``log`` of the offset values, or normal scores of the ranks."""
    from scipy.stats import norm

    if kind == "none" or len(y) < 2:
        return y
    if kind == "log":
        span = float(np.ptp(y)) or 1.0
        return np.asarray(np.log(y - y.min() + 0.01 * span))
    ranks = np.argsort(np.argsort(y, kind="stable"), kind="stable")
    return np.asarray(norm.ppf((ranks + 0.5) / len(y)))


def pareto_mask(F: np.ndarray) -> np.ndarray:
    """True for rows not dominated by any other row (minimization)."""
    n = len(F)
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        if keep[i]:
            dominated = np.all(F[i] <= F, axis=1) & np.any(F[i] < F, axis=1)
            keep &= ~dominated
    return keep
