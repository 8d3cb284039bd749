"""Several independent L-BFGS-B runs in lock-step, so each step costs one batched function call.

Each start runs scipy's own L-BFGS-B (its own line search and stopping test, unlike one joint
problem whose shared line search stalls the starts that are still improving) in a greenlet: the
run's objective switches back to the caller with its next point, and once every live run has
posted one, the caller evaluates them all in one call of ``fun`` and switches each run back in with
its answer. One OS thread, no locks: the first version ran the starts in threads handing over
through a condition variable, and those hand-overs cost more CPU than the acquisition arithmetic
(Optuna's GPSampler batches its L-BFGS-B with greenlets too; measured: docs/bench/bayes.md). scipy >= 1.15's
L-BFGS-B (C, reverse communication) keeps all state per call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from greenlet import greenlet

BatchFun = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
"""``fun(X, starts)``: points ``X [m, n]`` posted by the runs numbered ``starts [m]`` -> (f [m], grad [m, n])."""


@dataclass(frozen=True)
class Result:
    x: np.ndarray  # [k, n] final points
    fun: np.ndarray  # [k] final values
    nit: np.ndarray  # [k] iterations per start


def batched_lbfgsb(fun: BatchFun, x0: np.ndarray, bounds: list[tuple[float, float]], maxiter: int = 200,
                   pgtol: float = 1e-5) -> Result:
    """Minimize ``fun`` from every row of ``x0`` independently (same bounds for every start).
    An exception in ``fun`` or in one run's L-BFGS-B is raised here (the other runs are abandoned)."""
    from scipy.optimize import minimize

    k = len(x0)
    xs, fs, nits = x0.astype(float).copy(), np.full(k, np.inf), np.zeros(k, dtype=int)
    caller = greenlet.getcurrent()

    def run(i: int) -> None:
        def f(x: np.ndarray) -> tuple[float, np.ndarray]:
            answer: tuple[float, np.ndarray] = caller.switch(x.copy())
            return answer

        res = minimize(f, xs[i], jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": maxiter, "gtol": pgtol})
        xs[i], fs[i], nits[i] = res.x, float(res.fun), int(res.nit)

    runs = [greenlet(run) for _ in range(k)]
    posted = {i: p for i, g in enumerate(runs) if (p := g.switch(i)) is not None}  # None: the run ended
    while posted:
        idx = sorted(posted)  # a fixed row order: batched float results can depend on a row's position
        vals, grads = fun(np.array([posted[i] for i in idx]), np.array(idx))
        posted = {}
        for j, i in enumerate(idx):
            point = runs[i].switch((float(vals[j]), np.asarray(grads[j], dtype=float)))
            if point is not None:
                posted[i] = point
    return Result(xs, fs, nits)
