"""Local least-squares refinement (scipy ``least_squares``, trust-region reflective) from a start point,
and the Jacobian at a point; finite differences are simulated as one parallel batch."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from fmi_optimizer.calibration.runner import Runner
from fmi_optimizer.errors import StudyFailedError
from fmi_optimizer.records import Evaluation
from fmi_optimizer.space import Continuous


@dataclass
class Refined:
    values: dict[str, Any]
    evaluation: Evaluation | None
    reply: Any
    jac: np.ndarray | None  # d(residual)/d(theta), physical units
    residuals: np.ndarray | None
    evaluations: int
    message: str


class Scaled:
    """The continuous dimensions of a space mapped to [0, 1]; the others stay at their start values."""

    def __init__(self, problem: Any, start: Mapping[str, Any]):
        self.problem = problem
        self.dims = [d for d in problem.space.dimensions if isinstance(d, Continuous) and d.levels is None]
        self.names = [d.name for d in self.dims]
        self.lo = np.array([d.lo for d in self.dims])
        self.hi = np.array([d.hi for d in self.dims])
        self.start = dict(start)

    def values(self, x: np.ndarray) -> dict[str, Any]:
        theta = self.lo + np.clip(x, 0.0, 1.0) * (self.hi - self.lo)
        return {**self.start, **{n: float(v) for n, v in zip(self.names, theta, strict=True)}}

    def x(self, values: Mapping[str, Any]) -> np.ndarray:
        theta = np.array([float(values[n]) for n in self.names])
        return np.clip((theta - self.lo) / (self.hi - self.lo), 0.0, 1.0)


class Residuals:
    """Residual function and Jacobian for scipy; every simulation goes through the runner."""

    def __init__(self, runner: Runner, scaled: Scaled, window: tuple[float, float], step: float = 1e-4):
        self.runner, self.scaled, self.window, self.step = runner, scaled, window, step
        self.loss = runner.problem.calibration
        self._last: tuple[bytes, np.ndarray, Evaluation, Any] | None = None
        self.best: tuple[float, Evaluation, Any, dict[str, Any]] | None = None

    def _residual(self, ev: Evaluation, reply: Any) -> np.ndarray:
        if not ev.ok or reply.time is None:
            raise StudyFailedError(f"refinement: the simulation failed at {ev.values} ({ev.error})")
        r = self.loss.residuals(reply.time, reply.outputs, self.window)
        if not np.all(np.isfinite(r)):
            raise StudyFailedError(f"refinement: non-finite residuals at {ev.values}")
        return np.asarray(r)

    def _note(self, ev: Evaluation, reply: Any) -> None:
        if ev.ok and ev.objective is not None and (self.best is None or ev.objective < self.best[0]):
            self.best = (ev.objective, ev, reply, dict(ev.values))

    def fun(self, x: np.ndarray) -> np.ndarray:
        key = np.asarray(x, dtype=float).tobytes()
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        ((ev, reply),) = self.runner.run([self.scaled.values(x)])
        self._note(ev, reply)
        r = self._residual(ev, reply)
        self._last = (key, r, ev, reply)
        return r

    def jac(self, x: np.ndarray) -> np.ndarray:
        """Forward differences in the scaled space, stepping inward at the upper bound (one parallel
        batch)."""
        r0 = self.fun(x)
        steps = np.where(x + self.step <= 1.0, self.step, -self.step)
        points = []
        for i in range(x.size):
            xi = np.array(x, dtype=float)
            xi[i] += steps[i]
            points.append(self.scaled.values(xi))
        cols = []
        for i, (ev, reply) in enumerate(self.runner.run(points)):
            self._note(ev, reply)
            cols.append((self._residual(ev, reply) - r0) / steps[i])
        return np.column_stack(cols) if cols else np.zeros((r0.size, 0))


def refine(runner: Runner, start: Mapping[str, Any], window: tuple[float, float],
           max_evaluations: int) -> Refined:
    """Trust-region least squares from ``start``; returns the best point seen and the Jacobian there."""
    from scipy.optimize import least_squares

    scaled = Scaled(runner.problem, start)
    res = Residuals(runner, scaled, window)
    before = runner.count
    p = len(scaled.names)
    max_nfev = max(1, (max_evaluations - 1) // (p + 1))  # each iteration: 1 point + a p-point Jacobian batch
    try:
        result = least_squares(res.fun, scaled.x(start), jac=res.jac, bounds=(0.0, 1.0), x_scale="jac",
                               max_nfev=max_nfev, method="trf")
    except StudyFailedError as exc:  # one failed simulation ends the refinement, not the calibration
        if res.best is None:
            raise
        fallback = jacobian_at(runner, res.best[3], window)
        fallback.evaluations = runner.count - before
        fallback.message = f"stopped early, best point kept: {exc}"
        return fallback
    values = scaled.values(result.x)
    r = res.fun(result.x)
    assert res._last is not None
    ev, reply = res._last[2], res._last[3]
    jac = np.asarray(result.jac) / (scaled.hi - scaled.lo)  # least_squares' Jacobian at its solution
    final = ev.objective if ev.objective is not None else math.inf
    # a clearly better point was seen on the way
    if res.best is not None and res.best[0] < final * (1 - 1e-3):
        values, ev, reply = res.best[3], res.best[1], res.best[2]
        x = scaled.x(values)
        jac, r = jacobian(res, x, scaled), res.fun(x)
    return Refined(values, ev, reply, jac, r, runner.count - before, str(result.message))


def jacobian(res: Residuals, x: np.ndarray, scaled: Scaled) -> np.ndarray:
    """d(residual)/d(theta) in physical units at ``x``."""
    return res.jac(x) / (scaled.hi - scaled.lo)


def jacobian_at(runner: Runner, values: Mapping[str, Any], window: tuple[float, float]) -> Refined:
    """The Jacobian (physical units) and residuals at ``values``, without moving."""
    scaled = Scaled(runner.problem, values)
    res = Residuals(runner, scaled, window)
    before = runner.count
    x = scaled.x(values)
    jac = jacobian(res, x, scaled)
    assert res._last is not None
    return Refined(dict(values), res._last[2], res._last[3], jac, res._last[1], runner.count - before, "")
