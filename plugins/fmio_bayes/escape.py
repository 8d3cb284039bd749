"""Leave a resolved basin: search outside the regions the model has already converged in.

A GP search spends nearly all of its budget in the first basin it meets (Hartmann6: 45-53 of 60
evaluations, ``benchmarks/hartmann6_basins.py``): once there, a MAP model stretches the lengthscales of
the dimensions that are flat around its incumbent, calls the rest of the box confidently poor, and
re-samples the same minimum to the fourth digit. When the best expected improvement has stayed below
a tolerance for a few proposals (in units of :func:`in_depth_units`), the basin around the incumbent
(points whose kernel correlation with it exceeds ``RHO_BASIN`` under the lengthscales of that moment)
is declared resolved. From then on a second surrogate, trained only on the data outside every
resolved basin, proposes with a steep barrier on that correlation: it looks for another basin from
the broad structure it sees there, and refines the one it finds with lengthscales learned there
rather than the old basin's. :func:`confine` turns the barrier inside out for the final refinement of
the best point. The rules that decide when (tolerance, budget left, final evaluations) live in
:mod:`fmio_bayes.method`; measurements in docs/bench/bayes.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .posterior import Matern52Posterior

if TYPE_CHECKING:
    from .acquisition import AcqFn

RHO_BASIN = 0.25  # kernel correlation with a resolved centre above which a point belongs to its basin
RHO_REFINE = 0.8  # the final refinement stays where the correlation with the best point exceeds this
BARRIER = 1000.0  # log-acquisition units across the correlation range (RHO_BASIN, 1]


@dataclass
class ResolvedBasins:
    """Centres of resolved basins with the lengthscales that described them."""

    centres: list[Matern52Posterior] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def add(self, centre: np.ndarray, lengthscales: np.ndarray, value: float) -> None:
        # a one-point "posterior" with alpha = 1 and unit variance: its mean is the correlation
        self.centres.append(Matern52Posterior(np.asarray(centre, float)[None, :], np.asarray(lengthscales, float),
                                              1.0, 0.0, np.zeros((1, 1)), np.ones(1)))
        self.values.append(float(value))

    def correlation(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Largest correlation to any centre, and its gradient."""
        if not self.centres:
            return np.zeros(len(Z)), np.zeros_like(Z)
        rho, drho = self._per_centre(Z)
        k, rows = rho.argmax(axis=1), np.arange(len(Z))
        return rho[rows, k], drho[rows, k]

    def outside(self, Z: np.ndarray, keep: int | None = None) -> np.ndarray:
        """Points outside every basin (those inside basin ``keep`` count as outside)."""
        member = self.member(Z)
        return (member < 0) | (member == keep) if keep is not None else member < 0

    def member(self, Z: np.ndarray) -> np.ndarray:
        """Index of the basin each point lies in (its most correlated centre above ``RHO_BASIN``), -1 if none."""
        if not self.centres:
            return np.full(len(Z), -1)
        rho = self._per_centre(Z)[0]
        return np.where(rho.max(axis=1) > RHO_BASIN, rho.argmax(axis=1), -1)

    def _per_centre(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Correlation with each centre ``[n, K]`` and its gradient ``[n, K, d]``."""
        pairs = [c.predict_with_grad(Z) for c in self.centres]
        return np.stack([p[0] for p in pairs], axis=1), np.stack([p[2] for p in pairs], axis=1)

    def wrap(self, f: AcqFn) -> AcqFn:
        """``f`` with a linear barrier on the correlation above ``RHO_BASIN``."""
        return _barrier(f, self, RHO_BASIN, penalize_above=True)


def confine(f: AcqFn, centre: np.ndarray, lengthscales: np.ndarray) -> AcqFn:
    """``f`` with the barrier turned inside out: points whose correlation with ``centre`` is below
    ``RHO_REFINE`` are penalized, so the search refines the neighbourhood of ``centre``."""
    basin = ResolvedBasins()
    basin.add(centre, lengthscales, 0.0)
    return _barrier(f, basin, RHO_REFINE, penalize_above=False)


def _barrier(f: AcqFn, basins: ResolvedBasins, threshold: float, penalize_above: bool) -> AcqFn:
    """``f`` minus a linear penalty on the correlation beyond ``threshold`` (above or below it),
    ``BARRIER`` log-acquisition units across the penalized range."""
    sign = 1.0 if penalize_above else -1.0
    slope = BARRIER / ((1.0 - threshold) if penalize_above else threshold)

    def g(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v, dv = f(Z)
        rho, drho = basins.correlation(np.asarray(Z, dtype=float))
        excess = sign * (rho - threshold)
        return v - slope * np.maximum(excess, 0.0), dv - slope * sign * (excess > 0.0)[:, None] * drho

    return g


def converged(log_acquisition_history: list[float], tolerance: float, streak: int) -> bool:
    """The last ``streak`` proposals all expected less than ``tolerance`` (log values, in the units
    the caller chose: :func:`in_depth_units`)."""
    recent = log_acquisition_history[-streak:]
    return len(recent) == streak and all(v < math.log(tolerance) for v in recent)


def in_depth_units(log_ei: float, y: np.ndarray, feasible: np.ndarray) -> float:
    """Log EI from the model's units (standard deviations of ``y``) to units of the smaller of that
    sd and the depth explored so far, ``median(y) - best feasible y``. A few huge values (Branin: up to
    300 around an optimum of 0.4) inflate the sd, and an improvement that is small against them is not
    small against the landscape the search is in: there the depth is the stricter yardstick.
    (Infeasible values do not count as depth: they may lie far below anything the search may keep.)"""
    if not np.any(feasible):
        return log_ei
    sd, depth = float(np.std(y)), float(np.median(y) - np.min(y[feasible]))
    if not (sd > 0.0 and depth > 0.0):
        return log_ei
    return log_ei - min(0.0, math.log(depth / sd))
