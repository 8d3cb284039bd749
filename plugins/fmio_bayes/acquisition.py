"""Acquisition functions: their definitions, and the compiled TensorFlow version (value and
gradient, one trace per study). For GPs the numpy twin in :mod:`fmio_bayes.acquisition_np` runs
instead (faster per call); this one is its reference and serves any other surrogate.

All functions are *maximized* and work in the objective GP's standardized units:

- ``logei``: log expected improvement, computed stably far into the tail (Ament et al. 2023),
  so flat regions still have a useful gradient;
- ``pi``: log probability of improvement;
- ``ucb``: ``-mu + beta * sigma`` (lower confidence bound of the minimized objective).

Constraints and failures enter as a log probability of feasibility: one GP per constraint
(feasible when <= 0) and, once a run has failed, a GP fitted to success(+1)/failure(-1) labels
whose positive part is the probability that a run succeeds, plus a linear barrier where that
GP's mean is negative (the classifier says "this run will fail"). ``w_obj = 0`` drops the objective
term (no feasible point yet: search for feasibility first).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from ._tf import load
from .acquisition_np import build_numpy
from .surrogate import GPSurrogate

AcquisitionKind = Literal["logei", "ucb", "pi"]
AcqFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_SQRT2 = math.sqrt(2.0)
FAILURE_BARRIER = 30.0  # log-acquisition units per unit of the failure model's mean below 0


def _log_phi(z: Any) -> Any:
    return -0.5 * z * z - _LOG_SQRT_2PI


def _series(z: Any, coefs: tuple[float, ...]) -> Any:
    """sum_k coefs[k] / z^(2k): the asymptotic expansions below, for z <= -10."""
    inv = 1.0 / (z * z)
    total, power = 0.0 * z, 1.0 + 0.0 * z
    for c in coefs:
        total += c * power
        power *= inv
    return total


def log_ndtr(z: Any) -> Any:
    """log Phi(z): ``log(erfc)/2`` above -10, the asymptotic series below (relative error < 1e-8).
    Plain erfc keeps the traced graph small (tfp's erfcx costs a second of tracing)."""
    tf, _, _ = load()
    z1 = tf.maximum(z, -10.0)
    z2 = tf.minimum(z, -10.0)
    tail = _log_phi(z2) - tf.math.log(-z2) + tf.math.log(_series(z2, (1.0, -1.0, 3.0, -15.0, 105.0)))
    return tf.where(z > -10.0, tf.math.log(0.5 * tf.math.erfc(-z1 / _SQRT2)), tail)


def log_h(z: Any) -> Any:
    """``log(phi(z) + z * Phi(z))`` (log EI for unit sigma) without overflow or cancellation: direct
    above -1, ``log phi + log1p(z Phi/phi)`` down to -10, the asymptotic series
    ``phi(z) (1/z^2 - 3/z^4 + ...)`` below. Each branch is clamped to its own domain so no
    branch feeds inf/nan gradients through ``tf.where``."""
    tf, _, _ = load()
    z1 = tf.maximum(z, -1.0)
    direct = tf.math.log(tf.exp(_log_phi(z1)) + z1 * 0.5 * tf.math.erfc(-z1 / _SQRT2))
    z2 = tf.clip_by_value(z, -10.0, -1.0)
    mills = 0.5 * tf.math.erfc(-z2 / _SQRT2) / tf.exp(_log_phi(z2))  # Phi(z) / phi(z)
    middle = _log_phi(z2) + tf.math.log1p(z2 * mills)
    z3 = tf.minimum(z, -10.0)
    tail = _log_phi(z3) + tf.math.log(_series(z3, (0.0, 1.0, -3.0, 15.0, -105.0, 945.0)))
    return tf.where(z > -1.0, direct, tf.where(z > -10.0, middle, tail))


def build(kind: AcquisitionKind, objective: Any, constraints: Sequence[Any],
          failure: Any | None) -> Callable[..., AcqFn]:
    """The acquisition over the given models: numpy (:mod:`fmio_bayes.acquisition_np`) when every
    model exposes a GP ``posterior()``, else the compiled TensorFlow version (any surrogate with a
    ``predict_tensor``, e.g. the deep ensemble)."""
    models = [objective, *constraints, *([failure] if failure is not None else [])]
    if all(hasattr(m, "posterior") for m in models):
        return build_numpy(kind, objective, constraints, failure, FAILURE_BARRIER)
    return build_tf(kind, objective, constraints, failure)


def build_tf(kind: AcquisitionKind, objective: GPSurrogate, constraints: Sequence[GPSurrogate],
             failure: GPSurrogate | None) -> Callable[..., AcqFn]:
    """Compile the acquisition over the given models; returns ``bind(best, beta, tau, w_obj)`` that
    yields a numpy ``f(Z) -> (values, gradients)``. ``tau`` are the constraint thresholds (0) in
    each constraint GP's standardized units."""
    tf, _, _ = load()
    f64 = tf.float64
    width = objective.width
    cons = list(constraints)

    def value(Z: Any, best: Any, beta: Any, tau: Any, w_obj: Any) -> Any:
        mean, var = objective.predict_tensor(Z)
        mu, sigma = mean[:, 0], tf.sqrt(tf.maximum(var[:, 0], 1e-12))
        if kind == "logei":
            obj = log_h((best - mu) / sigma) + tf.math.log(sigma)
        elif kind == "pi":
            obj = log_ndtr((best - mu) / sigma)
        else:
            obj = -mu + beta * sigma
        total = tf.where(w_obj > 0.0, obj, tf.zeros_like(obj))
        for i, c in enumerate(cons):
            cm, cv = c.predict_tensor(Z)
            total += log_ndtr((tau[i] - cm[:, 0]) / tf.sqrt(tf.maximum(cv[:, 0], 1e-12)))
        if failure is not None:
            fm, fv = failure.predict_tensor(Z)
            total += log_ndtr(fm[:, 0] / tf.sqrt(tf.maximum(fv[:, 0], 1e-12)))
            # barrier: where the classifier's mean says "fails" (< 0) the objective's extrapolated
            # uncertainty must not buy the point back (EI there can be e^10 times larger)
            total += FAILURE_BARRIER * tf.minimum(fm[:, 0], 0.0)
        return total

    @tf.function(autograph=False, input_signature=[tf.TensorSpec([None, width], f64), tf.TensorSpec([], f64),
                                  tf.TensorSpec([], f64), tf.TensorSpec([len(cons)], f64),
                                  tf.TensorSpec([], f64)])
    def value_and_grad(Z: Any, best: Any, beta: Any, tau: Any, w_obj: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(Z)
            v = value(Z, best, beta, tau, w_obj)
            total = tf.reduce_sum(v)  # inside the tape, or the gradient is disconnected
        return v, tape.gradient(total, Z)

    def bind(best: float, beta: float, tau: np.ndarray, w_obj: float) -> AcqFn:
        args = (tf.constant(best, f64), tf.constant(beta, f64), tf.constant(np.asarray(tau, float), f64),
                tf.constant(w_obj, f64))

        def f(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            v, g = value_and_grad(tf.constant(np.asarray(Z, dtype=float)), *args)
            return v.numpy(), g.numpy()

        return f

    return bind
