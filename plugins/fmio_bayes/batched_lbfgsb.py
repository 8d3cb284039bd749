"""Several independent L-BFGS-B runs in lock-step, so each step costs one batched function call.

Each start runs scipy's own L-BFGS-B (its own line search and stopping test, unlike one joint
problem whose shared line search stalls the starts that are still improving) in a thread; the
threads post their next point and wait, and the caller's thread evaluates all posted points in
one call of ``fun``. Only one thread runs Python at a time, so nothing needs more locking than the
hand-over. scipy >= 1.15's L-BFGS-B (C, reverse communication) keeps all state per call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

BatchFun = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
"""``fun(X, starts)``: points ``X [m, n]`` posted by the runs numbered ``starts [m]`` -> (f [m], grad [m, n])."""


@dataclass(frozen=True)
class Result:
    x: np.ndarray  # [k, n] final points
    fun: np.ndarray  # [k] final values
    nit: np.ndarray  # [k] iterations per start


def batched_lbfgsb(fun: BatchFun, x0: np.ndarray, bounds: list[tuple[float, float]], maxiter: int = 200,
                   pgtol: float = 1e-5) -> Result:
    """Minimize ``fun`` from every row of ``x0`` independently (same bounds for every start)."""
    k = len(x0)
    cond = threading.Condition()
    posted: dict[int, np.ndarray] = {}
    answers: dict[int, tuple[float, np.ndarray]] = {}
    running = [k]
    errors: list[BaseException] = []
    xs, fs, nits = x0.astype(float).copy(), np.full(k, np.inf), np.zeros(k, dtype=int)

    def worker(i: int) -> None:
        def f(x: np.ndarray) -> tuple[float, np.ndarray]:
            with cond:
                posted[i] = x.copy()
                cond.notify_all()
                while i not in answers and not errors:
                    cond.wait()
                if errors:
                    raise _Abort
                return answers.pop(i)

        try:
            res = minimize(f, xs[i], jac=True, method="L-BFGS-B", bounds=bounds,
                           options={"maxiter": maxiter, "gtol": pgtol})
            xs[i], fs[i], nits[i] = res.x, float(res.fun), int(res.nit)
        except _Abort:
            pass
        except BaseException as exc:  # re-raised in the caller's thread below
            with cond:
                errors.append(exc)
        finally:
            with cond:
                running[0] -= 1
                cond.notify_all()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(k)]
    for t in threads:
        t.start()
    while True:
        with cond:
            while len(posted) < running[0]:
                cond.wait()
            if running[0] == 0 or errors:
                break
            batch = dict(posted)
            posted.clear()
        idx = sorted(batch)  # a fixed row order: batched float results can depend on a row's position
        try:
            vals, grads = fun(np.array([batch[i] for i in idx]), np.array(idx))
        except BaseException as exc:
            with cond:
                errors.append(exc)  # every waiting worker aborts
                cond.notify_all()
            break
        with cond:
            for j, i in enumerate(idx):
                answers[i] = (float(vals[j]), np.asarray(grads[j], dtype=float))
            cond.notify_all()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return Result(xs, fs, nits)


class _Abort(Exception):
    """Raised inside a worker's objective when the batch evaluation failed."""
