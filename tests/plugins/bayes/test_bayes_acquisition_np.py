"""The numpy acquisition (used for GPs) agrees with the TensorFlow one (autodiff) it replaces."""

from __future__ import annotations

import numpy as np
import pytest
from fmio_bayes.acquisition import FAILURE_BARRIER, build_tf
from fmio_bayes.acquisition_np import build_numpy, log_h_and_slope, log_ndtr_and_slope
from fmio_bayes.surrogate import GPSurrogate

pytestmark = pytest.mark.tf  # GPflow / TensorFlow models


@pytest.fixture(scope="module")
def models() -> tuple[GPSurrogate, list[GPSurrogate], GPSurrogate]:
    """An objective GP, one constraint GP and a failure classifier fitted on a 3-D toy problem."""
    rng = np.random.default_rng(3)
    Z = rng.random((25, 3))
    y = np.sin(6 * Z[:, 0]) + (Z[:, 1] - 0.3) ** 2 + 0.5 * Z[:, 2]
    c = Z[:, 0] + Z[:, 1] - 1.1
    ok = Z[:, 2] < 0.8
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


@pytest.mark.parametrize("kind", ["logei", "pi", "ucb"])
@pytest.mark.slow
def test_numpy_acquisition_matches_tensorflow_values_and_gradients(models, kind: str) -> None:
    obj, cons, fail = models
    rng = np.random.default_rng(7)
    Z = np.vstack([rng.random((200, 3)), obj.posterior().X[:3]])  # include training points (sd ~ 0)
    tau = np.array([-cons[0].y_mean / cons[0].y_std])
    best = float(np.min(obj.predict_std(obj.posterior().X)[0]))  # about the incumbent, standardized
    for failure in (None, fail):
        args = (best, 2.0, tau, 1.0)
        v_tf, g_tf = build_tf(kind, obj, cons, failure)(*args)(Z)  # type: ignore[arg-type]
        v_np, g_np = build_numpy(kind, obj, cons, failure, FAILURE_BARRIER)(*args)(Z)
        np.testing.assert_allclose(v_np, v_tf, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(g_np, g_tf, rtol=1e-4, atol=1e-5)


def test_numpy_acquisition_without_feasible_point_scores_feasibility_only(models) -> None:
    obj, cons, _ = models
    tau = np.array([-cons[0].y_mean / cons[0].y_std])
    Z = np.random.default_rng(1).random((50, 3))
    v_tf, g_tf = build_tf("logei", obj, cons, None)(0.0, 2.0, tau, 0.0)(Z)  # type: ignore[arg-type]
    v_np, g_np = build_numpy("logei", obj, cons, None, FAILURE_BARRIER)(0.0, 2.0, tau, 0.0)(Z)
    np.testing.assert_allclose(v_np, v_tf, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(g_np, g_tf, rtol=1e-4, atol=1e-5)


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
