"""The ``bayes`` method's deep-ensemble surrogate (option ``surrogate = "ensemble"``).

Unit behaviour of :class:`fmio_bayes.ensemble.EnsembleSurrogate` (fit quality, uncertainty away from
the data, Kriging-believer conditioning, out-of-fold check, graphs traced once) and the method with
it (conformance, Branin against random search, batches). Seeds are fixed; no timing is asserted
(see benchmarks/bayes_ensemble.py).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from fmio_bayes import BayesMethod
from test_bayes import BRANIN_MIN, BRANIN_SPACE, branin, branin_twin, run

from fmi_optimizer.errors import StudyError
from fmi_optimizer.method import Problem
from fmi_optimizer.space import Continuous, DesignSpace

pytestmark = pytest.mark.tf  # GPflow / TensorFlow models

ENSEMBLE = {"surrogate": "ensemble"}


def _ensemble(width: int, **kw: Any) -> Any:
    from fmio_bayes.ensemble import EnsembleSurrogate

    return EnsembleSurrogate(width, "fixed", **kw)


def _traces(surrogate: Any) -> dict[str, int]:
    return {name: fn.experimental_get_tracing_count() for name, fn in
            (("train", surrogate._train), ("predict", surrogate._predict), ("members", surrogate._members_fn),
             ("mean_gradient", surrogate._mean_gradient), ("posterior", surrogate._with_grad))}


@pytest.mark.slow
def test_fits_a_1d_function_and_is_uncertain_away_from_the_data() -> None:
    def f(z: np.ndarray) -> np.ndarray:
        return np.asarray(np.sin(6.0 * z[:, 0]) + 0.5 * z[:, 0])

    Z = np.random.default_rng(0).uniform(0.0, 0.6, (30, 1))
    s = _ensemble(1)
    y = 10.0 + 3.0 * f(Z)
    s.set_data(Z, y)  # raw units: standardized inside
    assert math.isfinite(s.fit())
    inside = np.linspace(0.05, 0.55, 11)[:, None]
    mean, sd = s.predict(inside)
    assert np.max(np.abs(mean - (10.0 + 3.0 * f(inside)))) < 0.1  # the data span ~3.6 units
    _, sd_far = s.predict(np.array([[0.95], [1.0]]))
    assert np.min(sd_far) > 10.0 * np.max(sd)  # disagreement grows off the data
    assert s.n == 30 and s.lengthscales.shape == (1,) and s.noise_variance > 0 and s.signal_variance > 0
    assert s.y_mean == pytest.approx(np.mean(y)) and s.y_std == pytest.approx(np.std(y))


@pytest.mark.slow
def test_fits_a_2d_function_on_held_out_points() -> None:
    def f(z: np.ndarray) -> np.ndarray:
        return np.asarray(np.sin(3.0 * z[:, 0]) * np.cos(2.0 * z[:, 1]) + z[:, 1] ** 2)

    rng = np.random.default_rng(1)
    Z, T = rng.random((150, 2)), rng.random((200, 2))
    s = _ensemble(2, seed=3)
    s.set_data(Z, f(Z))
    s.fit()
    mean, sd = s.predict(T)
    rmse = float(np.sqrt(np.mean((mean - f(T)) ** 2)))
    assert rmse < 0.1 * float(np.std(f(T)))
    assert np.all(sd > 0)
    # out-of-fold check: every point predicted by the member that did not train on it
    oof_mean, oof_sd = s.loo()
    assert oof_mean.shape == (150,) and np.all(oof_sd > 0)
    err = s.loo_standardized_errors()
    assert np.allclose(err, (f(Z) - oof_mean) / oof_sd)
    assert float(np.sqrt(np.mean((oof_mean - f(Z)) ** 2))) < 0.2 * float(np.std(f(Z)))
    assert "holdout" in s.loo_kind


@pytest.mark.slow
def test_fantasize_shrinks_variance_at_believed_points_and_restore_undoes_it() -> None:
    rng = np.random.default_rng(2)
    Z = rng.random((40, 2))
    s = _ensemble(2, seed=1)
    s.set_data(Z, np.sum(np.sin(4 * Z), axis=1))
    s.fit()
    Q = np.array([[0.3, 0.7], [0.9, 0.1], [0.05, 0.95]])
    m0, v0 = s.predict_std(Q)
    s.fantasize(Q[:1])
    m1, v1 = s.predict_std(Q)
    assert np.allclose(m1, m0)  # a believed observation equals the mean: the mean does not move
    assert v1[0] < 1e-6 * v0[0] and np.all(v1[1:] <= v0[1:]) and v1[2] > 0.5 * v0[2]
    s.fantasize(Q[1:2])
    assert s.predict_std(Q)[1][1] < 1e-6 * v0[1]
    s.restore()
    assert np.allclose(s.predict_std(Q)[1], v0)


def test_options_reject_an_unknown_surrogate() -> None:
    with pytest.raises(StudyError, match="surrogate"):
        BayesMethod(Problem(BRANIN_SPACE), {"surrogate": "nn"})


@pytest.mark.slow
def test_conformance_suite_with_the_ensemble() -> None:
    from fmi_optimizer.testing import check_method

    report = check_method(BayesMethod, options=ENSEMBLE, budget=12)
    assert "deterministic for a seed" in report.checks


@pytest.mark.slow
def test_branin_beats_random_search_and_traces_once() -> None:
    budget = 30
    methods, regrets = [], []
    for seed in range(3):  # one seed's regret depends on TensorFlow's numerics (0.35 for seed 0 in one release)
        m = BayesMethod(Problem(BRANIN_SPACE, budget_evaluations=budget), ENSEMBLE, seed=seed)
        history = run(m, branin_twin, budget)
        methods.append(m)
        regrets.append(min(e.objective for e in history if e.objective is not None) - BRANIN_MIN)
    rng = np.random.default_rng(0)
    random_regrets = [min(branin(-5.0 + 15.0 * u, 15.0 * v) for u, v in rng.random((budget, 2))) - BRANIN_MIN
                      for _ in range(200)]
    # random search's regret at 30 evaluations: median ~1.0, 10th percentile ~0.22
    assert float(np.median(regrets)) < float(np.quantile(random_regrets, 0.1)), regrets
    m = methods[0]
    engine = m._engine
    assert engine is not None and engine.objective.n == budget - 1
    traces = _traces(engine.objective)  # "predict" stays 0 here: a deterministic twin needs no predict_std
    # the acquisition's one compiled call (mean, variance, gradients) is traced once, believed points or not
    assert traces["train"] == 1 and traces["posterior"] == 1 and max(traces.values()) == 1, traces
    diag = m.diagnostics()
    assert "out-of-fold" in diag["surrogate"]
    loo = diag["loo"]
    assert len(loo["observed"]) == budget - 1 and all(sd > 0 for sd in loo["predicted_sd"])
    it = diag["iterations"][-1]
    assert set(it["lengthscales"]) == {"x1", "x2"} and math.isfinite(it["loo_std"])


@pytest.mark.slow
def test_batches_are_distinct_and_track_pending_points() -> None:
    m = BayesMethod(Problem(BRANIN_SPACE, budget_evaluations=30, batch_size=5), {**ENSEMBLE, "n_initial": 6}, seed=4)
    run(m, branin_twin, 6, batch=6)
    first = m.ask(5)
    second = m.ask(5)  # before any tell: pending points are believed, never proposed again
    keys = {tuple(sorted(c.values.items())) for c in first + second}
    assert len(first) == 5 and len(second) == 5 and len(keys) == 10
    m.tell([branin_twin(c) for c in first + second])
    assert not m._pending
    history = run(m, branin_twin, 14, batch=5)
    assert len(history) == 14 and all(e.objective is not None for e in history)


@pytest.mark.slow
def test_constraint_models_are_ensembles_and_steer_to_the_feasible_optimum() -> None:
    """min x1^2 + x2^2 subject to x1 + x2 >= 1: optimum 0.5 at (0.5, 0.5) on the boundary."""
    from fmi_optimizer.records import Candidate, Evaluation
    from fmi_optimizer.space import Continuous, DesignSpace

    space = DesignSpace([Continuous("x1", -2.0, 2.0), Continuous("x2", -2.0, 2.0)])
    m = BayesMethod(Problem(space, constraint_names=("g",), budget_evaluations=20), ENSEMBLE, seed=2)

    def twin(c: Candidate) -> Evaluation:
        x1, x2 = float(c.values["x1"]), float(c.values["x2"])
        return Evaluation(c, "ok", objective=x1**2 + x2**2, constraints=(1.0 - x1 - x2,))

    history = run(m, twin, 20)
    assert m._engine is not None and type(m._engine.constraints[0]).__name__ == "EnsembleSurrogate"
    rec = m.recommend()
    assert rec is not None
    x1, x2 = float(rec.values["x1"]), float(rec.values["x2"])
    assert x1 + x2 >= 1.0 - 1e-9 and x1**2 + x2**2 < 0.56
    after_design = history[m.n_initial:]
    assert sum(1 for e in after_design if not e.feasible) / len(after_design) < 0.5  # half the box is infeasible


@pytest.mark.slow
def test_initialization_seeds_follow_the_study_seed() -> None:
    """Studies with different seeds start their ensembles differently; within a study every model
    (objective, each constraint) has its own seed, and the seed reaches the members' initial weights."""
    space = DesignSpace([Continuous("x", 0.0, 1.0), Continuous("y", 0.0, 1.0)])
    seeds, weights = [], []
    for study_seed in (0, 1, 2**40):
        method = BayesMethod(Problem(space, budget_evaluations=20, constraint_names=("c1", "c2")), ENSEMBLE,
                             seed=study_seed)
        engine = method._get_engine()
        seeds.append([m._seed for m in (engine.objective, *engine.constraints)])
        member = engine.objective
        member.set_data(np.array([[0.1, 0.2], [0.5, 0.5], [0.9, 0.3]]), np.array([1.0, 0.0, 2.0]))
        member.fit()
        weights.append(float(np.sum(member.predict(np.array([[0.3, 0.7]]))[0])))
    for per_study in seeds:
        assert len(set(per_study)) == 3 and all(0 <= s < 2**31 for s in per_study)
    assert len({tuple(s) for s in seeds}) == 3
    assert len(set(weights)) == 3  # the fitted ensembles differ, not just the recorded seeds
