"""Hyperparameter samples (fmio_bayes.hypersample) and the acquisition averaged over them.

The numpy log posterior must be GPflow's marginal likelihood (same model, so the samples describe
the model the MAP fit trained); the slice sampler must sample its target; the averaged acquisition
must be the log of the mean expected improvement with the matching gradient.
"""

from __future__ import annotations

import math

import numpy as np
from fmio_bayes.acquisition_np import _averaged
from fmio_bayes.hypersample import (
    HyperparameterChain,
    LengthscalePriorSpec,
    LogPosterior,
    posterior_from,
    slice_sweep,
)


class _FlatLengthscales(LengthscalePriorSpec):
    def log_density_in_log_space(self, u: np.ndarray) -> float:
        return 0.0


def test_log_posterior_is_gpflows_marginal_likelihood_plus_the_priors() -> None:
    from fmio_bayes.surrogate import GPSurrogate

    rng = np.random.default_rng(0)
    X = rng.random((25, 3))
    y = np.sin(5 * X[:, 0]) + X[:, 1] ** 2
    gp = GPSurrogate(3, "fixed")
    gp.set_data(X, y)
    gp.fit()
    ls, var, noise, c = gp._hyper_values()
    log_p = LogPosterior(gp._Z, gp._ys, noise, _FlatLengthscales())
    model = gp.model
    for scale in (0.6, 1.0, 1.7):
        model.kernel.lengthscales.assign(ls * scale)
        model.kernel.variance.assign(var * scale)
        model.mean_function.c.assign([c + 0.2 * (scale - 1.0)])
        theta = np.concatenate([np.log(ls * scale), [math.log(var * scale), c + 0.2 * (scale - 1.0)]])
        gamma_and_jacobian = 2.0 * math.log(var * scale) - var * scale
        ours = log_p(theta) - gamma_and_jacobian - 0.5 * len(y) * math.log(2.0 * math.pi)
        assert abs(ours - float(model.log_marginal_likelihood().numpy())) < 1e-8


class _Gaussian:
    """A correlated 2-D Gaussian target with the attribute the sampler reads."""

    learn_mean = True

    def __call__(self, theta: np.ndarray) -> float:
        a, b = theta
        return -0.5 * (a * a - 1.6 * a * b + b * b) / (1 - 0.64)


def test_slice_sampler_reproduces_a_known_target() -> None:
    rng = np.random.default_rng(1)
    target = _Gaussian()
    theta, current = np.zeros(2), 0.0
    draws = []
    for _ in range(4000):
        theta, current = slice_sweep(target, theta, current, rng)  # type: ignore[arg-type]
        draws.append(theta)
    D = np.array(draws[200:])
    assert np.allclose(D.mean(0), 0.0, atol=0.1)
    assert np.allclose(D.std(0), 1.0, atol=0.1)
    assert abs(np.corrcoef(D.T)[0, 1] - 0.8) < 0.05


def test_chain_keeps_its_state_and_returns_finite_samples() -> None:
    rng = np.random.default_rng(2)
    X = rng.random((20, 2))
    y = np.cos(4 * X[:, 0]) * X[:, 1]
    y = (y - y.mean()) / y.std()
    log_p = LogPosterior(X, y, 1e-6, LengthscalePriorSpec(0.1))
    chain = HyperparameterChain(n_samples=6)
    start = np.array([math.log(0.5), math.log(0.5), 0.0, 0.0])
    samples = chain.run(log_p, start, rng)
    assert len(samples) == 6 and all(math.isfinite(log_p(s)) for s in samples)
    assert len({tuple(s) for s in samples}) == 6  # the chain moves
    again = chain.run(log_p, start, rng)  # continues from its last state, not from ``start``
    assert not np.allclose(again[0], start)


def test_averaged_acquisition_is_log_mean_ei_with_its_gradient() -> None:
    rng = np.random.default_rng(3)
    X = rng.random((15, 2))
    y = np.sin(6 * X[:, 0]) + X[:, 1]
    y = (y - y.mean()) / y.std()
    posts = [posterior_from(X, y, 1e-6, np.array([math.log(a), math.log(b), math.log(v), m]))
             for a, b, v, m in [(0.2, 0.4, 1.0, 0.0), (0.5, 0.3, 2.0, 0.3), (1.5, 0.8, 0.7, -0.2)]]
    Z = rng.random((6, 2))
    best = float(y.min())
    value, grad = _averaged("logei", posts, Z, best, 2.0)
    singles = np.array([_averaged("logei", [p], Z, best, 2.0)[0] for p in posts])
    assert np.allclose(value, np.log(np.mean(np.exp(singles), axis=0)))
    h = 1e-6
    for j in range(2):
        dz = np.zeros_like(Z)
        dz[:, j] = h
        numeric = (_averaged("logei", posts, Z + dz, best, 2.0)[0] - _averaged("logei", posts, Z - dz, best, 2.0)[0]) / (2 * h)
        assert np.allclose(grad[:, j], numeric, rtol=1e-4, atol=1e-6)
