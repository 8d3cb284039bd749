"""Robust scores: one number per candidate from its values over the shared sample (smaller is better).

``mean``; ``mean_std`` = mean + k * std; ``quantile`` = the ``level`` quantile; ``cvar`` = the mean of
the worst (1 - level) fraction (conditional value at risk, the tail expectation). The values are
already in minimization sense (the host applied directions), so "worst" is always "largest".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fmi_optimizer.errors import StudyError

SCORES = ("mean", "mean_std", "quantile", "cvar")


@dataclass(frozen=True)
class ScoreRule:
    kind: str = "mean"
    k: float = 2.0
    level: float = 0.9

    def __post_init__(self) -> None:
        if self.kind not in SCORES:
            raise StudyError(f"[uncertainty] score = {self.kind!r}; accepted: {', '.join(SCORES)}")
        if not 0.0 < self.level < 1.0:
            raise StudyError(f"[uncertainty] level = {self.level!r}: expected a number in (0, 1), e.g. 0.9")
        if not math.isfinite(self.k) or self.k < 0:
            raise StudyError(f"[uncertainty] k = {self.k!r}: expected a non-negative number, e.g. 2.0")

    def describe(self) -> str:
        return {"mean": "mean", "mean_std": f"mean + {self.k:g} std", "quantile": f"{self.level:g} quantile",
                "cvar": f"CVaR at {self.level:g} (mean of the worst {1 - self.level:.0%})"}[self.kind]

    def score(self, values: Sequence[float]) -> float:
        x = np.asarray(values, dtype=float)
        if x.size == 0:
            raise ValueError("a robust score needs at least one value")
        if self.kind == "mean":
            return float(x.mean())
        if self.kind == "mean_std":
            return float(x.mean() + self.k * (x.std(ddof=1) if x.size > 1 else 0.0))
        if self.kind == "quantile":
            return float(np.quantile(x, self.level, method="inverted_cdf"))
        return cvar(x, self.level)


def cvar(x: np.ndarray, level: float) -> float:
    """Mean of the largest (1 - level) fraction of ``x`` (Rockafellar-Uryasev with fractional weight on
    the boundary sample, so the value is continuous in ``level``)."""
    s = np.sort(np.asarray(x, dtype=float))[::-1]
    tail = (1.0 - level) * s.size
    whole = int(math.floor(tail))
    total = float(s[:whole].sum())
    frac = tail - whole
    if frac > 1e-12 and whole < s.size:
        total += frac * float(s[whole])
    return total / tail

