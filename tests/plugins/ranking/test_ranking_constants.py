"""Constants of the ranking procedures against published values, limits and independent Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fmio_ranking import constants
from scipy import stats


def test_rinott_h_published_value() -> None:
    # Rinott's h for k = 10, 1 - alpha = 0.975, 50 degrees of freedom: 4.045 in the published tables
    assert constants.rinott_h(10, 0.975, 50) == pytest.approx(4.045, abs=5e-4)


def test_rinott_h_large_dof_limit_is_product_of_normals() -> None:
    # as nu -> infinity Rinott's condition becomes Phi(h / sqrt(2))^(k-1) = 1 - alpha
    for k, p in ((2, 0.95), (10, 0.95), (25, 0.99)):
        limit = math.sqrt(2.0) * stats.norm.ppf(p ** (1.0 / (k - 1)))
        assert constants.rinott_h(k, p, 200_000) == pytest.approx(limit, rel=2e-3)


def test_rinott_h_solves_its_integral_by_monte_carlo() -> None:
    # an independent estimate of Rinott's probability at the computed h (given Y the k-1 events are independent)
    k, p, nu = 5, 0.95, 9
    h = constants.rinott_h(k, p, nu)
    rng = np.random.default_rng(7)
    n = 400_000
    y = rng.chisquare(nu, (n, 1))
    x = rng.chisquare(nu, (n, k - 1))
    z = rng.standard_normal((n, k - 1))
    hit = np.all(z <= h / np.sqrt(nu * (1 / x + 1 / y)), axis=1)
    assert abs(hit.mean() - p) < 4 * math.sqrt(p * (1 - p) / n)


def test_rinott_h_grows_with_k_and_confidence() -> None:
    assert constants.rinott_h(10, 0.95, 9) < constants.rinott_h(25, 0.95, 9) < constants.rinott_h(100, 0.95, 9)
    assert constants.rinott_h(10, 0.95, 9) < constants.rinott_h(10, 0.99, 9)
    assert constants.rinott_h(10, 0.95, 9) > constants.rinott_h(10, 0.95, 50)


def test_kn_eta_closed_form_values() -> None:
    # Kim & Nelson (2001): eta = ((2 alpha/(k-1))^(-2/(n0-1)) - 1)/2; k=2, alpha=0.05, n0=10 -> 0.3341
    assert constants.kn_eta(2, 0.05, 10) == pytest.approx(0.33408, abs=1e-4)
    # k=10: (0.1/9)^(-2/9) = 90^(2/9) = 2.71813 -> eta = 0.85908, h^2 = 2 eta 9 = 15.4635
    assert constants.kn_eta(10, 0.05, 10) == pytest.approx(0.85908, abs=1e-5)
    assert constants.kn_h2(10, 0.05, 10) == pytest.approx(15.4635, abs=1e-3)


def test_screening_t_quantiles() -> None:
    assert constants.screening_t(2, 0.05, 9) == pytest.approx(1.8331, abs=1e-4)  # t_{0.95, 9}
    assert constants.screening_t(11, 0.05, 9, paired=True) == pytest.approx(stats.t.ppf(0.995, 9))


def test_izf_constant_matches_robbins_crossing_probability() -> None:
    c = constants.izf_c(10, 0.05)
    assert constants.robbins_crossing(math.sqrt(c)) == pytest.approx(0.05 / 9, rel=1e-9)


def test_robbins_crossing_bounds_a_simulated_random_walk() -> None:
    # Gaussian random walk observed at integer times (a Wiener process sampled) must cross no more often
    a = 1.0
    bound = constants.robbins_crossing(a)
    rng = np.random.default_rng(3)
    n, steps = 20_000, 2_000
    crossed = np.zeros(n, dtype=bool)
    w = np.zeros(n)
    t = np.arange(1, steps + 1, dtype=float)
    g = constants.izf_boundary(t, a * a)
    for j in range(steps):
        w += rng.standard_normal(n)
        crossed |= w >= g[j]
    se = math.sqrt(bound * (1 - bound) / n)
    assert crossed.mean() <= bound + 4 * se
    assert crossed.mean() >= 0.5 * bound  # the bound is not vacuous: most of it is reached


def test_constants_reject_bad_arguments() -> None:
    with pytest.raises(ValueError):
        constants.rinott_h(10, 1.5, 9)
    with pytest.raises(ValueError):
        constants.kn_eta(10, 0.05, 1)
