"""Samples of a GP's hyperparameters from their posterior, so the acquisition can average over them.

Why: a MAP fit picks one set of lengthscales. After a few dozen points clustered in one basin it
often stretches the lengthscales of the dimensions that are flat *there* (Hartmann6: 3-4 unit-cube
sides), the model then calls the rest of the box confidently poor, and expected improvement never
leaves the basin. Averaging EI over hyperparameters drawn from their posterior (Snoek et al. 2012,
"integrated acquisition") keeps the shorter-lengthscale explanations of the same data alive.

The log posterior is computed in numpy (at <= a few hundred points a 60x60 Cholesky costs
microseconds, a TensorFlow call milliseconds). Parameters, in the order of ``theta``: log
lengthscales, log signal variance, constant mean; the noise variance stays at its fitted value.
Priors are those of the MAP fit (:mod:`fmio_bayes.surrogate`): the two-sided lengthscale penalty
(or a log-normal), Gamma(2, 1) on the signal variance, a flat prior on the constant mean.
Sampling: univariate slice sampling with stepping out (Neal 2003), one coordinate at a time; the
chain carries over from one fit to the next, so each fit only needs a few sweeps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import cholesky, solve_triangular

from .posterior import Matern52Posterior

_SQRT5 = math.sqrt(5.0)
MIN_LOG_LENGTHSCALE = math.log(1e-3)  # the MAP fit's lower bound


@dataclass(frozen=True)
class LengthscalePriorSpec:
    """``two_sided_weight`` w > 0: density ``exp(-w (l^2 + 1/l^2))``; else log-normal(loc, scale)."""

    two_sided_weight: float = 0.1
    loc: float = 0.0
    scale: float = 1.0

    def log_density_in_log_space(self, u: np.ndarray) -> float:
        if self.two_sided_weight > 0.0:
            ell2 = np.exp(2.0 * u)
            return float(-self.two_sided_weight * np.sum(ell2 + 1.0 / ell2) + np.sum(u))  # + Jacobian
        return float(-0.5 * np.sum(((u - self.loc) / self.scale) ** 2))


def matern52(r: np.ndarray, variance: float) -> np.ndarray:
    return variance * (1.0 + _SQRT5 * r + (5.0 / 3.0) * r * r) * np.exp(-_SQRT5 * r)


class LogPosterior:
    """Unnormalized log posterior of ``theta`` given standardized data ``(X, y)``."""

    def __init__(self, X: np.ndarray, y: np.ndarray, noise: float, prior: LengthscalePriorSpec,
                 learn_mean: bool = True):
        self.X, self.y, self.noise, self.prior, self.learn_mean = X, y, noise, prior, learn_mean
        diff = X[:, None, :] - X[None, :, :]
        self._sq = np.moveaxis(diff * diff, 2, 0)  # [d, n, n]
        self.d = X.shape[1]

    def __call__(self, theta: np.ndarray) -> float:
        u, log_var, c = theta[:self.d], float(theta[self.d]), float(theta[self.d + 1])
        if np.any(u < MIN_LOG_LENGTHSCALE) or not -20.0 < log_var < 20.0:
            return -math.inf
        if not self.learn_mean:
            c = 0.0
        var = math.exp(log_var)
        r = np.sqrt(np.tensordot(np.exp(-2.0 * u), self._sq, axes=1))
        K = matern52(r, var)
        K[np.diag_indices_from(K)] += self.noise
        try:
            L = np.linalg.cholesky(K)  # numpy's: a third of scipy's call overhead at these sizes
        except np.linalg.LinAlgError:
            return -math.inf
        v = solve_triangular(L, self.y - c, lower=True, check_finite=False)
        loglik = -0.5 * float(v @ v) - float(np.sum(np.log(np.diag(L))))
        return loglik + self.prior.log_density_in_log_space(u) + 2.0 * log_var - var  # Gamma(2,1) + Jacobian


def slice_sweep(log_p: LogPosterior, theta: np.ndarray, current: float, rng: np.random.Generator,
                width: float = 1.0, max_steps: int = 8) -> tuple[np.ndarray, float]:
    """One pass of univariate slice sampling (stepping out, then shrinking) over every coordinate."""
    theta = theta.copy()
    dims = range(len(theta)) if log_p.learn_mean else range(len(theta) - 1)
    for i in dims:
        level = current + math.log(rng.random())
        lo = theta[i] - width * rng.random()
        hi = lo + width
        for _ in range(max_steps):
            t = theta.copy()
            t[i] = lo
            if log_p(t) <= level:
                break
            lo -= width
        for _ in range(max_steps):
            t = theta.copy()
            t[i] = hi
            if log_p(t) <= level:
                break
            hi += width
        x0 = theta[i]
        for _ in range(60):
            t = theta.copy()
            t[i] = lo + (hi - lo) * rng.random()
            value = log_p(t)
            if value > level:
                theta, current = t, value
                break
            if t[i] < x0:
                lo = t[i]
            else:
                hi = t[i]
        # 60 shrinks without acceptance only happens on a numerically flat slice: keep the old value
    return theta, current


def posterior_from(X: np.ndarray, y: np.ndarray, noise: float, theta: np.ndarray,
                   learn_mean: bool = True) -> Matern52Posterior:
    """The GP posterior (as the acquisition reads it) for one hyperparameter sample."""
    d = X.shape[1]
    ell, var = np.exp(theta[:d]), math.exp(float(theta[d]))
    c = float(theta[d + 1]) if learn_mean else 0.0
    Xs = X / ell
    r2 = (Xs * Xs).sum(1)[:, None] + (Xs * Xs).sum(1)[None, :] - 2.0 * Xs @ Xs.T
    K = matern52(np.sqrt(np.maximum(r2, 0.0)), var)
    K[np.diag_indices_from(K)] += noise
    jitter = 0.0
    for _ in range(8):
        try:
            L = cholesky(K + jitter * np.eye(len(K)), lower=True, check_finite=False)
            break
        except np.linalg.LinAlgError:
            jitter = max(1e-9, jitter * 10.0)
    else:
        L = cholesky(K + jitter * np.eye(len(K)), lower=True, check_finite=False)  # let it raise
    Linv = solve_triangular(L, np.eye(len(K)), lower=True, check_finite=False)
    alpha = Linv.T @ (Linv @ (y - c))
    return Matern52Posterior(X, ell, var, c, Linv, alpha)


class HyperparameterChain:
    """A slice-sampling chain over one GP's hyperparameters that persists across refits."""

    def __init__(self, n_samples: int, thin: int = 2, burn_in: int = 20, warm_sweeps: int = 3):
        self.n_samples, self.thin, self.burn_in, self.warm_sweeps = n_samples, thin, burn_in, warm_sweeps
        self._state: np.ndarray | None = None
        self.samples: list[np.ndarray] = []

    def run(self, log_p: LogPosterior, map_theta: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        """Continue the chain (or start it at the MAP) on the current data; keep ``n_samples``."""
        theta = map_theta.copy() if self._state is None else self._state
        current = log_p(theta)
        sweeps = self.burn_in
        if not math.isfinite(current) or self._state is None:
            theta, current = map_theta.copy(), log_p(map_theta)
        else:
            sweeps = self.warm_sweeps
        for _ in range(sweeps):
            theta, current = slice_sweep(log_p, theta, current, rng)
        samples = []
        for _ in range(self.n_samples):
            for _ in range(self.thin):
                theta, current = slice_sweep(log_p, theta, current, rng)
            samples.append(theta.copy())
        self._state = theta
        self.samples = samples
        return samples
