"""Decision kernels of the selection procedures: pure numpy, minimization, vectorized over leading axes.

Every function takes per-system statistics with the systems on the last axis (``[..., k]``, or
``[..., k, k]`` for pairs) so the same code serves one selection (the method) and thousands of
macro-replications at once (the benchmark).  ``alive`` marks systems still in contention.
"""

from __future__ import annotations

import numpy as np

FloatArray = np.ndarray
BoolArray = np.ndarray


def variances(obs: FloatArray) -> FloatArray:
    """Sample variances (ddof 1) of ``obs[..., n, k]`` per system -> ``[..., k]``."""
    return np.asarray(np.var(obs, axis=-2, ddof=1))


def paired_variances(obs: FloatArray) -> FloatArray:
    """Sample variances of the paired differences X_i - X_l of ``obs[..., n, k]`` -> ``[..., k, k]``.

    Pairs are formed replication by replication, so common random numbers reduce them.
    """
    d = obs[..., :, :, None] - obs[..., :, None, :]
    return np.asarray(np.var(d, axis=-3, ddof=1))


def paired_variances_from_moments(n: int, sums: FloatArray, cross: FloatArray) -> FloatArray:
    """Paired-difference variances from ``n`` slot-aligned observations given sums ``[..., k]`` and
    cross-products ``[..., k, k]`` (sum over slots of X_i X_l)."""
    diag = np.diagonal(cross, axis1=-2, axis2=-1)
    ssd = diag[..., :, None] + diag[..., None, :] - 2.0 * cross
    sd = sums[..., :, None] - sums[..., None, :]
    return np.asarray(np.maximum(ssd - sd * sd / n, 0.0) / (n - 1))


def _pair_alive(alive: BoolArray) -> BoolArray:
    return np.asarray(alive[..., :, None] & alive[..., None, :])


def kn_keep(means: FloatArray, r: int, s2: FloatArray, alive: BoolArray, h2: float, delta: float) -> BoolArray:
    """One KN screening step at stage ``r`` (c = 1): system i leaves when some rival l has
    ``mean_i - mean_l > W_il(r)``, ``W_il(r) = max(0, delta/(2r) (h2 S2_il/delta^2 - r))``."""
    w = np.maximum(0.0, delta / (2.0 * r) * (h2 * s2 / delta**2 - r))
    diff = means[..., :, None] - means[..., None, :]
    beaten = (diff > w) & _pair_alive(alive)
    return np.asarray(alive & ~beaten.any(axis=-1))


def kn_last_stage(s2: FloatArray, alive: BoolArray, h2: float, delta: float) -> FloatArray:
    """The stage from which KN's continuation region is empty for every surviving pair: max_l h2 S2_il/delta^2."""
    n = np.where(_pair_alive(alive), h2 * s2 / delta**2, 0.0)
    return np.asarray(np.floor(n.max(axis=(-2, -1))) + 1)


def izf_keep(means: FloatArray, r: int, s2: FloatArray, alive: BoolArray, c: float) -> BoolArray:
    """Indifference-zone-free step: with t_il = r/S2_il, system i leaves when some rival l has
    ``t_il (mean_i - mean_l) >= sqrt((c + log(t_il+1)) (t_il+1))``."""
    eye = np.eye(means.shape[-1], dtype=bool)
    s2 = np.where(eye | ~_pair_alive(alive), 1.0, np.maximum(s2, 1e-300))
    with np.errstate(over="ignore"):
        t = r / s2
        g = np.sqrt((c + np.log1p(t)) * (t + 1.0))
    diff = means[..., :, None] - means[..., None, :]
    beaten = (t * diff >= g) & _pair_alive(alive) & ~eye
    return np.asarray(alive & ~beaten.any(axis=-1))


def screen_keep(
    means: FloatArray, spread: FloatArray, n0: int, t: float, delta: float, alive: BoolArray
) -> BoolArray:
    """Nelson et al.'s (2001) subset screen: i stays when ``mean_i <= mean_j + (W_ij - delta)^+`` for all j.

    ``spread`` is either per-system variances ``[..., k]`` (W_ij = t sqrt((S_i^2 + S_j^2)/n0), independent
    sampling) or paired variances ``[..., k, k]`` (W_ij = t sqrt(S_ij^2/n0), valid under common random numbers).
    """
    if spread.ndim == means.ndim:
        pair = spread[..., :, None] + spread[..., None, :]
    else:
        pair = spread
    w = t * np.sqrt(pair / n0)
    diff = means[..., :, None] - means[..., None, :]
    beaten = (diff > np.maximum(w - delta, 0.0)) & _pair_alive(alive)
    return np.asarray(alive & ~beaten.any(axis=-1))


def rinott_sizes(var: FloatArray, n0: int, h: float, delta: float) -> FloatArray:
    """Rinott's total sample sizes N_i = max(n0, ceil((h S_i / delta)^2))."""
    return np.asarray(np.maximum(n0, np.ceil(h * h * var / delta**2 - 1e-12)).astype(np.int64))


def ocba_ratios(means: FloatArray, var: FloatArray, alive: BoolArray) -> FloatArray:
    """OCBA allocation fractions (Chen et al. 2000) for minimization, summing to 1 over ``alive``.

    N_i ∝ (S_i / (mean_i - mean_b))^2 for i != b and N_b = S_b sqrt(sum_{i != b} N_i^2 / S_i^2).
    """
    big = np.where(alive, means, np.inf)
    b = np.argmin(big, axis=-1)
    mb = np.take_along_axis(means, b[..., None], axis=-1)
    gap = np.maximum(np.abs(means - mb), 1e-12)
    sd2 = np.maximum(var, 1e-300)
    raw = sd2 / gap**2
    is_b = np.arange(means.shape[-1]) == b[..., None]
    others = np.where(alive & ~is_b, raw, 0.0)
    nb = np.sqrt(sd2 * np.sum(others**2 / sd2, axis=-1, keepdims=True))
    ratio = np.where(is_b, nb, others)
    total = ratio.sum(axis=-1, keepdims=True)
    even = alive / np.maximum(alive.sum(axis=-1, keepdims=True), 1)
    return np.asarray(np.where(total > 0, ratio / np.where(total > 0, total, 1.0), even))


def ocba_increments(ratios: FloatArray, counts: FloatArray, add: int) -> FloatArray:
    """Integer increments summing to ``add`` that move ``counts`` toward ``ratios * (sum(counts) + add)``.

    Systems already above their target get none; the deficit is shared by largest remainder.
    """
    target = ratios * (counts.sum(axis=-1, keepdims=True) + add)
    deficit = np.maximum(target - counts, 0.0)
    tot = deficit.sum(axis=-1, keepdims=True)
    share = np.where(tot > 0, deficit / np.where(tot > 0, tot, 1.0), ratios) * add
    inc = np.floor(share)
    left = (add - inc.sum(axis=-1)).astype(np.int64)
    order = np.argsort(-(share - inc), axis=-1, kind="stable")
    rank = np.argsort(order, axis=-1, kind="stable")
    inc = inc + (rank < left[..., None])
    return np.asarray(inc.astype(np.int64))


def mcb_intervals(means: FloatArray, delta: float) -> tuple[FloatArray, FloatArray]:
    """Multiple-comparisons-with-the-best intervals for mu_i - min_{j != i} mu_j (Nelson & Matejcik 1995):
    ``[min(0, D_i - delta), max(0, D_i + delta)]`` with ``D_i = mean_i - min_{j != i} mean_j``."""
    k = means.shape[-1]
    if k < 2:
        z = np.zeros_like(means)
        return z, z
    masked = np.where(np.eye(k, dtype=bool), np.inf, means[..., None, :])
    with np.errstate(invalid="ignore"):  # systems without data (inf) give nan, callers drop them
        d = means - masked.min(axis=-1)
    return np.asarray(np.minimum(0.0, d - delta)), np.asarray(np.maximum(0.0, d + delta))
