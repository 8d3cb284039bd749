"""The acquisition functions of :mod:`fmio_bayes.acquisition` in numpy, with analytic gradients.

Same definitions, same numerically stable branches (log EI far into the tail, log Phi), same
composition with constraint and failure models; used whenever every model is a GP (the default),
because a numpy call at these sizes costs a tenth of a TensorFlow dispatch (see
:mod:`fmio_bayes.posterior`). ``tests/test_bayes_acquisition_np.py`` checks values and gradients
against the TensorFlow version's autodiff.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
from scipy.special import erfcx, log_ndtr, ndtr

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
    lp = log_ndtr(z)
    return lp, np.exp(-0.5 * z * z - _LOG_SQRT_2PI - lp)


def log_h_and_slope(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``log h(z) = log(phi(z) + z Phi(z))`` and its derivative ``Phi(z) / h(z)``.

    Above -1 directly; below, ``h = phi (1 + z m)`` with the Mills ratio ``m = Phi/phi`` from
    ``erfcx`` (no underflow), and below -10 ``1 + z m`` from its asymptotic series
    ``1/z^2 - 3/z^4 + 15/z^6 - ...`` (the subtraction would cancel)."""
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


def _posteriors(model: HasPosterior) -> list[Matern52Posterior]:
    """The posteriors to average the objective term over: one per hyperparameter sample when the
    model keeps samples (:mod:`fmio_bayes.hypersample`), else the MAP one."""
    many = getattr(model, "posteriors", None)
    return list(many()) if many is not None else [model.posterior()]


def _objective_term(kind: str, post: Matern52Posterior, Z: np.ndarray, best: float,
                    beta: float) -> tuple[np.ndarray, np.ndarray]:
    """Value and gradient of the objective part of the acquisition under one posterior."""
    mean, var, dmean, dvar = post.predict_with_grad(Z)
    u, du, sd, dsd = _standardized(mean, var, dmean, dvar, best)
    if kind == "logei":
        lh, slope = log_h_and_slope(u)
        return lh + np.log(sd), slope[:, None] * du + dsd / sd[:, None]
    if kind == "pi":
        lp, slope = log_ndtr_and_slope(u)
        return lp, slope[:, None] * du
    return -mean + beta * sd, -dmean + beta * dsd


def _averaged(kind: str, posts: Sequence[Matern52Posterior], Z: np.ndarray, best: float,
              beta: float) -> tuple[np.ndarray, np.ndarray]:
    """The objective term averaged over hyperparameter samples: the log of the mean EI / PI
    (log-sum-exp, gradients weighted by each sample's share), the mean for UCB."""
    if len(posts) == 1:
        return _objective_term(kind, posts[0], Z, best, beta)
    terms = [_objective_term(kind, p, Z, best, beta) for p in posts]
    vals = np.stack([t[0] for t in terms])  # [k, m]
    grads = np.stack([t[1] for t in terms])  # [k, m, d]
    if kind == "ucb":
        return vals.mean(0), grads.mean(0)
    top = vals.max(0)
    w = np.exp(vals - top)
    total = w.sum(0)
    return top + np.log(total / len(posts)), np.einsum("km,kmd->md", w / total, grads)


def build_numpy(kind: str, objective: HasPosterior, constraints: Sequence[HasPosterior],
                failure: HasPosterior | None, barrier: float) -> Callable[[float, float, np.ndarray, float], AcqFn]:
    """``bind(best, beta, tau, w_obj) -> f(Z) -> (values, gradients)``, as ``acquisition.build``.
    Each bind snapshots the models' current posteriors (fantasies included)."""

    def bind(best: float, beta: float, tau: np.ndarray, w_obj: float) -> AcqFn:
        objs = _posteriors(objective)
        cons = [c.posterior() for c in constraints]
        fail = failure.posterior() if failure is not None else None
        taus = np.asarray(tau, dtype=float)

        def f(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            Z = np.asarray(Z, dtype=float)
            total, grad = np.zeros(len(Z)), np.zeros_like(Z)
            if w_obj > 0.0:
                value, gradient = _averaged(kind, objs, Z, best, beta)
                total += value
                grad += gradient
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
