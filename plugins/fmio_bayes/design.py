"""Seeded space-filling initial designs (scrambled Sobol, Latin hypercube, or plain random)."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

DesignKind = Literal["sobol", "lhs", "random"]


def default_size(n_dimensions: int, budget: int | None) -> int:
    """``max(5, d + 1)`` points, but never more than a third of a small evaluation budget (at least 2).

    Smaller than the customary 2·d + 1 so more of a small budget is model-guided; together with the
    other changes of that session it took Ackley5's median regret from 2.27 to 0.83 (on Hartmann6 a
    5-seed dev run looked better, the 10-seed run did not: docs/bench/bayes.md)."""
    n = max(5, n_dimensions + 1)
    if budget is not None:
        n = min(n, max(2, budget // 3))
    return n


def unit_design(kind: DesignKind, n: int, d: int, seed: int) -> np.ndarray:
    """``n`` points in [0, 1)^d. Sobol draws the next power of two and keeps the first ``n``
    (its balance holds for the full power-of-two set; the prefix is still well spread)."""
    from scipy.stats import qmc

    if n <= 0:
        return np.zeros((0, d))
    if kind == "sobol":
        m = max(0, math.ceil(math.log2(n)))
        return qmc.Sobol(d, scramble=True, seed=seed).random_base2(m)[:n]
    if kind == "lhs":
        return qmc.LatinHypercube(d, seed=seed).random(n)
    return np.random.default_rng(seed).random((n, d))
