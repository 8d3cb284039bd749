"""Chance constraints P(KPI <= limit) >= 1 - alpha, judged on a confidence bound, not the raw frequency.

The constraint value handed to the method is in KPI units: ``X_(j) - limit`` where ``X_(j)`` is the
j-th smallest KPI value of the sample and ``j`` the smallest number of satisfied scenarios whose
lower confidence bound on the probability reaches the target. So the value is <= 0 exactly when the
bound says P >= 1 - alpha, and it still tells a method how far off an infeasible candidate is
(with Clopper-Pearson this is the classical distribution-free upper confidence bound of a quantile).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fmi_optimizer.errors import StudyError

BOUNDS = ("clopper-pearson", "wilson")


def clopper_pearson(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Exact one-sided bounds: P >= lo and P <= hi, each with probability ``confidence``."""
    from scipy import stats

    a = 1.0 - confidence
    lo = 0.0 if k == 0 else float(stats.beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1.0 - a, k + 1, n - k))
    return lo, hi


def wilson(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score one-sided bounds (less conservative than Clopper-Pearson, approximate)."""
    from scipy import stats

    z = float(stats.norm.ppf(confidence))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def bounds(k: int, n: int, confidence: float, method: str) -> tuple[float, float]:
    if method == "clopper-pearson":
        return clopper_pearson(k, n, confidence)
    if method == "wilson":
        return wilson(k, n, confidence)
    raise StudyError(f"[uncertainty] bound = {method!r}; accepted: {', '.join(BOUNDS)}")


def required_successes(n: int, target: float, confidence: float, method: str) -> int | None:
    """Smallest k whose lower bound reaches ``target`` (None: n scenarios can never prove it)."""
    for k in range(n + 1):
        if bounds(k, n, confidence, method)[0] >= target:
            return k
    return None


def minimum_samples(target: float, confidence: float, method: str, limit: int = 100_000) -> int:
    """Smallest sample size at which even zero violations can prove P >= target."""
    n = 1
    while n <= limit:
        if bounds(n, n, confidence, method)[0] >= target:
            return n
        n = n + 1 if n < 64 else int(n * 1.05) + 1
    return limit


@dataclass(frozen=True)
class ChanceResult:
    """A chance constraint judged on one candidate's sample."""

    kpi: str
    op: str
    limit: float
    target: float
    satisfied: int
    n: int
    lower: float
    upper: float
    value: float  # <= 0 feasible, KPI units

    @property
    def probability(self) -> float:
        return self.satisfied / self.n

    @property
    def holds(self) -> bool:
        return self.value <= 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"kpi": self.kpi, "op": self.op, "limit": self.limit, "target": self.target,
                "probability": self.probability, "lower": self.lower, "upper": self.upper,
                "satisfied": self.satisfied,
                "n": self.n, "value": self.value, "holds": self.holds}


def judge(kpi: str, op: str, limit: float, target: float, values: Sequence[float], confidence: float,
          method: str) -> ChanceResult:
    """Estimate P(KPI op limit) from ``values`` with bounds, and the constraint value for the method."""
    x = np.asarray(values, dtype=float)
    n = int(x.size)
    ok = x <= limit if op == "<=" else x >= limit
    k = int(ok.sum())
    lo, hi = bounds(k, n, confidence, method)
    j = required_successes(n, target, confidence, method)
    if j is None:
        raise StudyError(f"[uncertainty] {n} scenarios can never prove P({kpi} {op} {limit:g}) >= {target:g} "
                         f"at confidence {confidence:g}; use samples >= "
                         f"{minimum_samples(target, confidence, method)}")
    s = np.sort(x)
    j = max(1, j)  # target > 0, so at least one satisfied scenario is always needed
    if op == "<=":
        value = float(s[j - 1] - limit)  # j-th smallest must be <= limit
    else:
        value = float(limit - s[n - j])  # j-th largest must be >= limit
    return ChanceResult(kpi, op, limit, target, k, n, lo, hi, value)
