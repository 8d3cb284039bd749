"""The one acquisition implementation: values against the models' own predictions, gradients against finite
differences, for the GP (numpy posterior) and the deep ensemble (one compiled TensorFlow call)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fmio_bayes.acquisition import FAILURE_BARRIER, build, log_h_and_slope, log_ndtr_and_slope
from fmio_bayes.ensemble import EnsembleSurrogate
from fmio_bayes.surrogate import GPSurrogate
from scipy.special import log_ndtr, ndtr

pytestmark = pytest.mark.tf  # GPflow / TensorFlow models


def _toy(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    Z = rng.random((25, 3))
    y = np.sin(6 * Z[:, 0]) + (Z[:, 1] - 0.3) ** 2 + 0.5 * Z[:, 2]
    return Z, y, Z[:, 0] + Z[:, 1] - 1.1, Z[:, 2] < 0.8


@pytest.fixture(scope="module")
def gps() -> tuple[GPSurrogate, list[GPSurrogate], GPSurrogate]:
    """An objective GP, one constraint GP and a failure classifier fitted on a 3-D toy problem."""
    Z, y, c, ok = _toy(np.random.default_rng(3))
    obj = GPSurrogate(3, "fixed")
    obj.set_data(Z, y)
    obj.fit()
    con = GPSurrogate(3, "learned")
    con.set_data(Z, c)
    con.fit()
    fail = GPSurrogate(3, "learned", standardize=False, noise_floor=0.1)
    fail.set_data(Z, np.where(ok, 1.0, -1.0))
    fail.fit()
    return obj, [con], fail


@pytest.fixture(scope="module")
def ensembles() -> tuple[EnsembleSurrogate, list[EnsembleSurrogate]]:
    Z, y, c, _ = _toy(np.random.default_rng(3))
    obj, con = EnsembleSurrogate(3, "fixed", seed=1), EnsembleSurrogate(3, "learned", seed=2)
    obj.set_data(Z, y)
    obj.fit()
    con.set_data(Z, c)
    con.fit()
    return obj, [con]


def _reference(kind: str, obj, cons, failure, best: float, beta: float, tau: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """The acquisition from each model's own prediction (``predict_std``) and the textbook formulas."""
    mean, var = obj.predict_std(Z)
    sd = np.sqrt(np.maximum(var, 1e-12))
    u = (best - mean) / sd
    if kind == "logei":
        with np.errstate(divide="ignore"):  # -inf far in the tail: those points are not compared
            total = np.log(sd * (u * ndtr(u) + np.exp(-0.5 * u * u) / math.sqrt(2 * math.pi)))
    elif kind == "pi":
        total = log_ndtr(u)
    else:
        total = -mean + beta * sd
    for t, c in zip(tau, cons, strict=True):
        cm, cv = c.predict_std(Z)
        total = total + log_ndtr((t - cm) / np.sqrt(cv))
    if failure is not None:
        fm, fv = failure.predict_std(Z)
        total = total + log_ndtr(fm / np.sqrt(fv)) + FAILURE_BARRIER * np.minimum(fm, 0.0)
    return total


def _finite_differences(f, Z: np.ndarray, step: float) -> np.ndarray:
    """Central differences with one Richardson step (error O(step^4)): the log acquisition is steep far
    into its tail, where plain central differences are off by their curvature term."""
    def central(h: float) -> np.ndarray:
        grad = np.zeros_like(Z)
        for j in range(Z.shape[1]):
            e = np.zeros(Z.shape[1])
            e[j] = h
            grad[:, j] = (f(Z + e)[0] - f(Z - e)[0]) / (2 * h)
        return grad

    return (4.0 * central(step / 2) - central(step)) / 3.0


def _assert_gradient(grad: np.ndarray, fd: np.ndarray) -> None:
    """Each component within 1e-3 of itself or 1e-4 of its point's largest component. Far in the tail the
    log acquisition is ~-4e3 and steep (components ~1e4-1e5): there the differences' round-off (the GP
    variance is a difference of nearly equal numbers) reaches ~0.1, which a small component of the same
    point cannot be held to; a wrong term still shows as an error of order one."""
    scale = np.max(np.abs(grad), axis=1, keepdims=True)
    bad = np.abs(grad - fd) > 1e-3 * np.abs(fd) + 1e-4 * scale + 1e-5
    assert not np.any(bad), f"gradient off at {np.argwhere(bad).tolist()}: {grad[bad]} vs {fd[bad]}"


@pytest.mark.parametrize("kind", ["logei", "pi", "ucb"])
def test_gp_acquisition_values_and_gradients(gps, kind: str) -> None:
    obj, cons, fail = gps
    rng = np.random.default_rng(7)
    Z = rng.uniform(0.05, 0.95, (60, 3))
    tau = np.array([-cons[0].y_mean / cons[0].y_std])
    best = float(np.min(obj.predict_std(obj.posterior().X)[0]))  # about the incumbent, standardized
    for failure in (None, fail):
        f = build(kind, obj, cons, failure)(best, 2.0, tau, 1.0)
        value, grad = f(Z)
        ref = _reference(kind, obj, cons, failure, best, 2.0, tau, Z)
        keep = ref > -30.0  # where the textbook log EI still has digits
        np.testing.assert_allclose(value[keep], ref[keep], rtol=1e-6, atol=1e-6)
        _assert_gradient(grad, _finite_differences(f, Z, 1e-5))


def test_acquisition_without_feasible_point_scores_feasibility_only(gps) -> None:
    obj, cons, _ = gps
    tau = np.array([-cons[0].y_mean / cons[0].y_std])
    Z = np.random.default_rng(1).random((50, 3))
    value, _ = build("logei", obj, cons, None)(0.0, 2.0, tau, 0.0)(Z)
    cm, cv = cons[0].predict_std(Z)
    np.testing.assert_allclose(value, log_ndtr((tau[0] - cm) / np.sqrt(cv)), rtol=1e-6, atol=1e-6)


def test_ensemble_posterior_is_its_prediction_with_believed_points_and_exact_gradients(ensembles) -> None:
    obj, _ = ensembles
    Z = np.random.default_rng(5).uniform(0.05, 0.95, (40, 3))
    obj.fantasize(Z[:2])
    try:
        mean, var, dmean, dvar = obj.posterior().predict_with_grad(Z)
        ref_mean, ref_var = obj.predict_std(Z)
        np.testing.assert_allclose(mean, ref_mean, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(var, ref_var, rtol=1e-9, atol=1e-12)
        assert np.all(var[:2] < 1e-6)  # believed points: no variance left there
        step = 1e-3  # the members compute in float32: a step well above its rounding
        for got, which in ((dmean, 0), (dvar, 1)):
            fd = _finite_differences(lambda X, w=which: (obj.posterior().predict_with_grad(X)[w],), Z[2:], step)
            np.testing.assert_allclose(got[2:], fd, rtol=2e-2, atol=2e-3)
    finally:
        obj.restore()


def test_ensemble_acquisition_uses_the_same_formulas(ensembles) -> None:
    obj, cons = ensembles
    Z = np.random.default_rng(6).uniform(0.05, 0.95, (40, 3))
    tau = np.array([-cons[0].y_mean / cons[0].y_std])
    best = float(np.min(obj.predict_std(Z)[0]))
    for kind in ("logei", "ucb"):
        value, _ = build(kind, obj, cons, None)(best, 2.0, tau, 1.0)(Z)
        ref = _reference(kind, obj, cons, None, best, 2.0, tau, Z)
        keep = ref > -30.0
        np.testing.assert_allclose(value[keep], ref[keep], rtol=1e-6, atol=1e-6)


def test_log_h_and_log_ndtr_slopes_match_finite_differences_far_into_the_tail() -> None:
    z = np.concatenate([-np.logspace(3, -2, 60), np.linspace(-0.9, 6.0, 30)])
    step = 1e-6 * np.maximum(1.0, np.abs(z))
    for fn in (log_h_and_slope, log_ndtr_and_slope):
        value, slope = fn(z)
        fd = (fn(z + step)[0] - fn(z - step)[0]) / (2 * step)
        assert np.all(np.isfinite(value)) and np.all(np.isfinite(slope))
        np.testing.assert_allclose(slope, fd, rtol=1e-4, atol=1e-8)
    # log h at -1e3 ~ log phi(z) - 2 log|z| (EI decays like phi(z) / z^2): no cancellation to -inf
    lh, _ = log_h_and_slope(np.array([-1e3]))
    assert abs(lh[0] - (-0.5e6 - 0.5 * np.log(2 * np.pi) - 2 * np.log(1e3))) < 1e-3
    # where the direct formula still has its digits, the branches agree with it
    zz = np.linspace(-30.0, 5.0, 400)
    direct = np.log(np.exp(-0.5 * zz * zz) / math.sqrt(2 * math.pi) + zz * ndtr(zz))
    np.testing.assert_allclose(log_h_and_slope(zz)[0], direct, rtol=1e-9, atol=1e-9)
