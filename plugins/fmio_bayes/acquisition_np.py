"""The acquisition functions of :mod:`fmio_bayes.acquisition` in numpy, with analytic gradients.

Same definitions, same numerically stable branches (log EI far into the tail, log Phi), same
composition with constraint and failure models; used whenever every model is a GP (the default),
because a numpy call at these sizes costs a tenth of a TensorFlow dispatch (see
:mod:`fmio_bayes.posterior`). ``tests/plugins/bayes/test_bayes_acquisition_np.py`` checks values and gradients
against the TensorFlow version's autodiff.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from .posterior import Matern52Posterior

AcqFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_SQRT_HALF_PI = math.sqrt(0.5 * math.pi)
_SQRT2 = math.sqrt(2.0)
_VAR_FLOOR = 1e-12


class HasPosterior(Protocol):
    def posterior(self) -> Matern52Posterior: ...


def log_ndtr_and_slope(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``log Phi(z)`` and its derivative ``phi(z) / Phi(z)`` (stable for any z)."""
    from scipy.special import log_ndtr

    lp = log_ndtr(z)
    return lp, np.exp(-0.5 * z * z - _LOG_SQRT_2PI - lp)


def log_h_and_slope(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``log h(z) = log(phi(z) + z Phi(z))`` and its derivative ``Phi(z) / h(z)``.

    Above -1 directly; below, ``h = phi (1 + z m)`` with the Mills ratio ``m = Phi/phi`` from
    ``erfcx`` (no underflow), and below -10 ``1 + z m`` from its asymptotic series
    ``1/z^2 - 3/z^4 + 15/z^6 - ...`` (the subtraction would cancel)."""
    from scipy.special import erfcx, ndtr

    z = np.asarray(z, dtype=float)
    out, slope = np.empty_like(z), np.empty_like(z)
    hi = z > -1.0
    zh = z[hi]
    cdf = ndtr(zh)
    h = np.exp(-0.5 * zh * zh - _LOG_SQRT_2PI) + zh * cdf
    out[hi], slope[hi] = np.log(h), cdf / h
    lo = ~hi
    zl = z[lo]
    mills = _SQRT_HALF_PI * erfcx(-zl / _SQRT2)
    inv = 1.0 / (zl * zl)
    series = inv * (1.0 + inv * (-3.0 + inv * (15.0 + inv * (-105.0 + inv * 945.0))))
    ratio = np.where(zl > -10.0, 1.0 + zl * mills, series)  # h / phi
    out[lo] = -0.5 * zl * zl - _LOG_SQRT_2PI + np.log(ratio)
    slope[lo] = mills / ratio
    return out, slope


def _standardized(mean: np.ndarray, var: np.ndarray, dmean: np.ndarray, dvar: np.ndarray,
                  target: float | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``u = (target - mean) / sd`` with its gradient, and ``sd`` with its gradient."""
    floor = var <= _VAR_FLOOR
    sd = np.sqrt(np.where(floor, _VAR_FLOOR, var))
    dsd = np.where(floor[:, None], 0.0, dvar / (2.0 * sd[:, None]))
    u = (target - mean) / sd
    du = (-dmean - u[:, None] * dsd) / sd[:, None]
    return u, du, sd, dsd


def build_numpy(kind: str, objective: HasPosterior, constraints: Sequence[HasPosterior],
                failure: HasPosterior | None, barrier: float) -> Callable[[float, float, np.ndarray, float], AcqFn]:
    """``bind(best, beta, tau, w_obj) -> f(Z) -> (values, gradients)``, as ``acquisition.build``.
    Each bind snapshots the models' current posteriors (fantasies included)."""

    def bind(best: float, beta: float, tau: np.ndarray, w_obj: float) -> AcqFn:
        obj = objective.posterior()
        cons = [c.posterior() for c in constraints]
        fail = failure.posterior() if failure is not None else None
        taus = np.asarray(tau, dtype=float)

        def f(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            Z = np.asarray(Z, dtype=float)
            total, grad = np.zeros(len(Z)), np.zeros_like(Z)
            if w_obj > 0.0:
                mean, var, dmean, dvar = obj.predict_with_grad(Z)
                u, du, sd, dsd = _standardized(mean, var, dmean, dvar, best)
                if kind == "logei":
                    lh, slope = log_h_and_slope(u)
                    total += lh + np.log(sd)
                    grad += slope[:, None] * du + dsd / sd[:, None]
                elif kind == "pi":
                    lp, slope = log_ndtr_and_slope(u)
                    total += lp
                    grad += slope[:, None] * du
                else:
                    total += -mean + beta * sd
                    grad += -dmean + beta * dsd
            for t, c in zip(taus, cons, strict=True):
                u, du, _, _ = _standardized(*c.predict_with_grad(Z), t)
                lp, slope = log_ndtr_and_slope(u)
                total += lp
                grad += slope[:, None] * du
            if fail is not None:
                fm, fv, dfm, dfv = fail.predict_with_grad(Z)
                u, du, _, _ = _standardized(-fm, fv, -dfm, dfv, 0.0)  # u = fm / sd
                lp, slope = log_ndtr_and_slope(u)
                total += lp + barrier * np.minimum(fm, 0.0)
                grad += slope[:, None] * du + barrier * (fm < 0.0)[:, None] * dfm
            return total, grad

        return f

    return bind
