"""Noise check for stochastic twins: is the spread between replications large against the improvements?

A failure mode of stochastic twins: on a noisy twin the loop "improves" by chasing lucky replications. We
re-evaluate the incumbent with other replications and compare the pooled replication standard deviation with
the typical improvement step of the best-so-far trace.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fmi_optimizer.records import Evaluation


def pooled_noise_sd(groups: Mapping[bytes, Sequence[Evaluation]]) -> tuple[float | None, int]:
    """Pooled within-point standard deviation of the objective over points with >= 2 ok replications."""
    ss, dof, points = 0.0, 0, 0
    for evs in groups.values():
        ys = [e.objective for e in evs if e.ok and e.objective is not None]
        if len(ys) >= 2:
            arr = np.asarray(ys, dtype=float)
            ss += float(((arr - arr.mean()) ** 2).sum())
            dof += len(arr) - 1
            points += 1
    return (float(np.sqrt(ss / dof)) if dof else None), points


def typical_improvement(trace: Sequence[float]) -> float | None:
    """Median size of the strict improvements of the best-so-far of ``trace`` (objective, minimized)."""
    best = np.inf
    steps = []
    for y in trace:
        if y < best:
            if np.isfinite(best):
                steps.append(best - y)
            best = y
    return float(np.median(steps)) if steps else None


def noise_report(groups: Mapping[bytes, Sequence[Evaluation]], trace: Sequence[float], warn_ratio: float) -> dict[str, Any]:
    """Facts plus a warning when noise sd > ``warn_ratio`` x the typical improvement."""
    sd, points = pooled_noise_sd(groups)
    imp = typical_improvement(trace)
    out: dict[str, Any] = {"replicated_points": points, "noise_sd": sd, "typical_improvement": imp, "warning": ""}
    if sd is not None and imp is not None and sd > warn_ratio * imp:
        out["warning"] = (
            f"objective noise (sd {sd:.4g} between replications) is larger than the typical improvement "
            f"({imp:.4g}): improvements of that size may be luck; add replications or use method 'ranking'")
    return out
