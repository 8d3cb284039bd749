"""Maximize an acquisition over the mixed encoded space: raw samples, discrete local search,
then one joint multi-start L-BFGS-B over the continuous columns (all starts in one problem, so
each step is a single batched TensorFlow call)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from .acquisition import AcqFn
from .transform import Encoder


@dataclass(frozen=True)
class Settings:
    n_raw: int = 1024
    n_restarts: int = 8
    local_rounds: int = 8
    maxiter: int = 50


def maximize(f: AcqFn, enc: Encoder, rng: np.random.Generator, anchors: np.ndarray,
             frozen: dict[int, float], settings: Settings,
             is_taken: Callable[[np.ndarray], bool]) -> tuple[np.ndarray | None, float]:
    """Best admissible point not ``is_taken`` and its acquisition value (``None`` if every
    optimized start is taken). ``frozen`` pins columns (screened-out dimensions)."""
    raw = enc.from_unit(rng.random((settings.n_raw, len(enc.blocks))))
    if len(anchors):
        raw = np.vstack([raw, enc.perturb(anchors, settings.n_raw // 4, 0.05, rng)])
    raw = _pin(raw, frozen)
    vals, _ = f(raw)
    order = np.argsort(-np.nan_to_num(vals, nan=-np.inf))
    starts = _distinct(raw[order], settings.n_restarts)
    if enc.has_discrete:
        starts = _local_search(f, enc, starts, frozen, settings.local_rounds)
    free = np.array([c for c in enc.continuous_columns if c not in frozen], dtype=int)
    if len(free):
        starts = _lbfgsb(f, starts, free, settings.maxiter)
    vals, _ = f(starts)
    for i in np.argsort(-np.nan_to_num(vals, nan=-np.inf)):
        if not is_taken(starts[i]):
            return starts[i], float(vals[i])
    for i in order:  # all optimized starts taken (small discrete spaces): best raw sample instead
        if not is_taken(raw[i]):
            return raw[i], float(np.nan_to_num(f(raw[i:i + 1])[0][0]))
    return None, float("-inf")


def _pin(Z: np.ndarray, frozen: dict[int, float]) -> np.ndarray:
    for col, v in frozen.items():
        Z[:, col] = v
    return Z


def _distinct(Z: np.ndarray, k: int) -> np.ndarray:
    out: list[np.ndarray] = []
    for z in Z:
        if all(np.max(np.abs(z - o)) > 1e-9 for o in out):
            out.append(z)
            if len(out) == k:
                break
    return np.array(out)


def _local_search(f: AcqFn, enc: Encoder, starts: np.ndarray, frozen: dict[int, float],
                  rounds: int) -> np.ndarray:
    """Greedy best-neighbour moves on the discrete dimensions, all starts batched per round."""
    cur = starts.copy()
    cur_v, _ = f(cur)
    for _ in range(rounds):
        neigh = [_pin(enc.neighbours(z), frozen) for z in cur]
        sizes = [len(n) for n in neigh]
        if not sum(sizes):
            break
        allv, _ = f(np.vstack(neigh))
        moved, pos = False, 0
        for i, n in enumerate(sizes):
            if n:
                j = int(np.argmax(allv[pos:pos + n]))
                if allv[pos + j] > cur_v[i] + 1e-12:
                    cur[i], cur_v[i], moved = neigh[i][j], allv[pos + j], True
            pos += n
        if not moved:
            break
    return cur


def _lbfgsb(f: AcqFn, starts: np.ndarray, free: np.ndarray, maxiter: int) -> np.ndarray:
    """Joint L-BFGS-B on the free continuous columns of every start (sum of independent terms)."""
    base = starts.copy()
    k = len(base)

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        base[:, free] = x.reshape(k, len(free))
        v, g = f(base)
        v = np.where(np.isfinite(v), v, -1e10)
        g = np.where(np.isfinite(g), g, 0.0)
        return -float(np.sum(v)), -g[:, free].ravel()

    x0 = starts[:, free].ravel()
    res = minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * len(x0),
                   options={"maxiter": maxiter})
    out = starts.copy()
    out[:, free] = np.clip(res.x.reshape(k, len(free)), 0.0, 1.0)
    # keep a start's original position if the joint run made it worse (shared line search)
    v_new, _ = f(out)
    v_old, _ = f(starts)
    worse = np.nan_to_num(v_new, nan=-np.inf) < np.nan_to_num(v_old, nan=-np.inf)
    out[worse] = starts[worse]
    return out
