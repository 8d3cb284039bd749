"""Maximize an acquisition over the mixed encoded space: raw samples, roulette-picked starts plus
the incumbent, discrete local search, then independent L-BFGS-B runs over the continuous columns
advanced in lock-step (each step is a single batched acquisition call)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .batched_lbfgsb import batched_lbfgsb
from .transform import Encoder

if TYPE_CHECKING:
    from .acquisition import AcqFn


@dataclass(frozen=True)
class Settings:
    n_raw: int = 2048
    n_restarts: int = 10
    local_rounds: int = 8
    maxiter: int = 200
    pgtol: float = 1e-2  # on the gradient w.r.t. lengthscale-scaled coordinates


def maximize(f: AcqFn, enc: Encoder, rng: np.random.Generator, anchors: np.ndarray,
             frozen: dict[int, float], settings: Settings,
             is_taken: Callable[[np.ndarray], bool], scales: np.ndarray | None = None) -> tuple[np.ndarray | None, float]:
    """Best admissible point not ``is_taken`` and its acquisition value (``None`` if every
    optimized start is taken). ``frozen`` pins columns (screened-out dimensions); ``scales`` (the
    objective's lengthscales per encoded column) precondition the continuous search.

    Starts, as Optuna's GPSampler picks them: the best of ``n_raw`` random points, more raw points
    drawn with probability proportional to their acquisition value (roulette on exp(log-acq)),
    and the incumbent(s) ``anchors``; each start is then improved on its own."""
    raw = _pin(enc.from_unit(rng.random((settings.n_raw, len(enc.blocks)))), frozen)
    vals, _ = f(raw)
    vals = np.nan_to_num(vals, nan=-np.inf)
    order = np.argsort(-vals)
    starts = _pin(np.vstack([raw[_roulette(vals, settings.n_restarts - len(anchors), rng)], anchors]), frozen)
    starts = _distinct(starts, len(starts))
    if enc.has_discrete:
        starts = _local_search(f, enc, starts, frozen, settings.local_rounds)
    free = np.array([c for c in enc.continuous_columns if c not in frozen], dtype=int)
    if len(free):
        scale = np.ones(len(free)) if scales is None else np.clip(np.asarray(scales, float)[free], 1e-3, 1e3)
        starts = _lbfgsb(f, starts, free, scale, settings)
    vals_s, _ = f(starts)
    for i in np.argsort(-np.nan_to_num(vals_s, nan=-np.inf)):
        if not is_taken(starts[i]):
            return starts[i], float(vals_s[i])
    for i in order:  # all optimized starts taken (small discrete spaces): best raw sample instead
        if not is_taken(raw[i]):
            return raw[i], float(vals[i])
    return None, float("-inf")


def _roulette(vals: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Index of the best value plus up to ``k - 1`` others drawn without replacement with
    probability proportional to ``exp(vals - max)`` (fewer when the mass is concentrated)."""
    best = int(np.argmax(vals))
    p = np.exp(vals - vals[best]) if np.isfinite(vals[best]) else np.ones(len(vals))
    p[best] = 0.0
    p = np.where(np.isfinite(p), p, 0.0)
    n = min(max(0, k - 1), int(np.count_nonzero(p > 0)))
    if n == 0:
        return np.array([best])
    return np.append(best, rng.choice(len(vals), size=n, replace=False, p=p / p.sum()))


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


def _lbfgsb(f: AcqFn, starts: np.ndarray, free: np.ndarray, scale: np.ndarray, settings: Settings) -> np.ndarray:
    """Independent L-BFGS-B runs (batched per step) on the free continuous columns, in coordinates
    divided by the lengthscales so every direction is equally curved; a start is only moved if
    that improved it."""
    def fun(U: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Z = starts[rows].copy()
        Z[:, free] = U * scale
        v, g = f(Z)
        ok = np.isfinite(v)
        return np.where(ok, -v, 1e10), np.where(ok[:, None] & np.isfinite(g[:, free]), -g[:, free] * scale, 0.0)

    res = batched_lbfgsb(fun, starts[:, free] / scale, [(0.0, 1.0 / s) for s in scale], settings.maxiter,
                         settings.pgtol)
    out = starts.copy()
    out[:, free] = np.clip(res.x * scale, 0.0, 1.0)
    v_new, _ = f(out)
    v_old, _ = f(starts)
    worse = ~(np.nan_to_num(v_new, nan=-np.inf) >= np.nan_to_num(v_old, nan=-np.inf))
    out[worse] = starts[worse]
    return out
