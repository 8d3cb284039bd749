"""Procedure constants, computed numerically with scipy (no look-up tables).

* :func:`rinott_h` — Rinott's (1978) two-stage constant from his double integral over chi-square laws;
* :func:`kn_eta` / :func:`kn_h2` — Kim & Nelson's (2001) fully sequential constants;
* :func:`screening_t` — the t quantile of Nelson et al.'s (2001) subset-selection screen;
* :func:`izf_c` — the boundary constant of the indifference-zone-free procedure, from Robbins' (1970)
  exact crossing probability of a Wiener process over a mixture boundary.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

_NODES = 200


def _chi2_nodes(nu: int, n: int = _NODES) -> tuple[np.ndarray, np.ndarray]:
    """Nodes/weights integrating against the chi-square(nu) law: trapezoid in log x (exponential convergence)."""
    from scipy import stats

    lo = math.log(stats.chi2.ppf(1e-15, nu))
    hi = math.log(stats.chi2.isf(1e-15, nu))
    t = np.linspace(lo, hi, n)
    x = np.exp(t)
    w = stats.chi2.pdf(x, nu) * x * (t[1] - t[0])
    return x, w / w.sum()


def rinott_pcs(h: float, k: int, nu: int) -> float:
    """Rinott's lower bound on PCS for constant ``h``, ``k`` systems and ``nu`` first-stage d.o.f."""
    from scipy import stats

    x, w = _chi2_nodes(nu)
    z = h / np.sqrt(nu * (1.0 / x[:, None] + 1.0 / x[None, :]))
    inner = stats.norm.cdf(z).T @ w  # integrate over x for every y
    return float(w @ inner ** (k - 1))


@lru_cache(maxsize=256)
def rinott_h(k: int, pcs: float, nu: int) -> float:
    """Rinott's h: the root of ``rinott_pcs(h, k, nu) = pcs`` (e.g. 4.045 for k=10, 0.975, nu=50)."""
    from scipy import optimize

    _check(k, pcs, nu)
    if k == 1:
        return 0.0
    return float(optimize.brentq(lambda h: rinott_pcs(h, k, nu) - pcs, 1e-6, 100.0, xtol=1e-10))


def kn_eta(k: int, alpha: float, n0: int) -> float:
    """Kim & Nelson's eta = ((2 alpha/(k-1))^(-2/(n0-1)) - 1) / 2 (with c = 1)."""
    _check(k, 1.0 - alpha, n0 - 1)
    if k == 1:
        return 0.0
    return 0.5 * ((2.0 * alpha / (k - 1)) ** (-2.0 / (n0 - 1)) - 1.0)


def kn_h2(k: int, alpha: float, n0: int) -> float:
    """KN's h^2 = 2 c eta (n0 - 1) with c = 1."""
    return 2.0 * kn_eta(k, alpha, n0) * (n0 - 1)


def screening_t(k: int, alpha: float, nu: int, paired: bool = False) -> float:
    """t quantile of the subset screen: t_{(1-alpha)^(1/(k-1)), nu}; Bonferroni t_{1-alpha/(k-1), nu} when
    ``paired`` (paired variances, valid under common random numbers)."""
    from scipy import stats

    _check(k, 1.0 - alpha, nu)
    if k == 1:
        return 0.0
    q = 1.0 - alpha / (k - 1) if paired else (1.0 - alpha) ** (1.0 / (k - 1))
    return float(stats.t.ppf(q, nu))


def robbins_crossing(a: float) -> float:
    """P(W(t) >= sqrt((t+1)(a^2 + log(t+1))) for some t >= 0) = 1 - Phi(a) + a phi(a) (Robbins 1970)."""
    from scipy import stats

    return float(stats.norm.sf(a) + a * stats.norm.pdf(a))


@lru_cache(maxsize=256)
def izf_c(k: int, alpha: float) -> float:
    """c = a^2 with ``robbins_crossing(a) = alpha/(k-1)``: Bonferroni over the k-1 rivals of the best."""
    from scipy import optimize

    _check(k, 1.0 - alpha, 1)
    if k == 1:
        return 0.0
    target = alpha / (k - 1)
    a = optimize.brentq(lambda v: robbins_crossing(v) - target, 0.0, 60.0, xtol=1e-12)
    return float(a * a)


def izf_boundary(t: np.ndarray | float, c: float) -> np.ndarray:
    """The indifference-zone-free continuation boundary g_c(t) = sqrt((c + log(t+1)) (t+1))."""
    tt = np.asarray(t, dtype=float)
    return np.asarray(np.sqrt((c + np.log1p(tt)) * (tt + 1.0)))


def _check(k: int, pcs: float, nu: int) -> None:
    if k < 1:
        raise ValueError(f"number of systems must be >= 1, got {k}")
    if not 0.0 < pcs < 1.0:
        raise ValueError(f"1 - alpha must be in (0, 1), got {pcs}")
    if nu < 1:
        raise ValueError(f"degrees of freedom must be >= 1 (n0 >= 2), got {nu}")
