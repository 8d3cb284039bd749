"""Behaviour tests of the ``bayes`` method (GPflow Bayesian optimization) on instant analytic twins.

Budgets and seeds are fixed; thresholds sit far from what random search reaches at the same
budget, so a broken surrogate or acquisition fails them. No timing is asserted here (see
benchmarks/bayes_vs_peers.py).
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fmio_bayes import BayesMethod

from fmi_optimizer.errors import StudyError
from fmi_optimizer.method import Problem
from fmi_optimizer.records import Candidate, Evaluation
from fmi_optimizer.space import Boolean, Categorical, Continuous, DesignSpace, Integer

pytestmark = pytest.mark.tf  # GPflow / TensorFlow models

BRANIN_MIN = 0.397887357729738


def branin(x1: float, x2: float) -> float:
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


BRANIN_SPACE = DesignSpace([Continuous("x1", -5.0, 10.0), Continuous("x2", 0.0, 15.0)])
Twin = Callable[[Candidate], Evaluation]


def run(method: BayesMethod, twin: Twin, budget: int, batch: int = 1) -> list[Evaluation]:
    history: list[Evaluation] = []
    while len(history) < budget:
        asked = method.ask(min(batch, budget - len(history)))
        assert asked, "ask() returned nothing before the budget"
        told = [twin(c) for c in asked]
        method.tell(told)
        history += told
    return history


def branin_twin(c: Candidate) -> Evaluation:
    return Evaluation(c, "ok", objective=branin(float(c.values["x1"]), float(c.values["x2"])))


@pytest.mark.slow
def test_tensorflow_not_imported_by_core_or_plugin_import(tmp_path: Path) -> None:
    """The host loads every plugin through its entry point: that must not pull TF in, nor may
    building the method and asking for its initial design. (Run outside the checkout so a stale
    ``*.egg-info`` in the working directory cannot shadow the installed entry points.)"""
    code = (
        "import sys\n"
        "from fmi_optimizer.host.loader import load_host\n"
        "host = load_host()\n"
        "cls = host.methods.get('bayes')\n"
        "from fmi_optimizer.method import Problem\n"
        "from fmi_optimizer.space import DesignSpace, Continuous\n"
        "m = cls(Problem(DesignSpace([Continuous('x', 0.0, 1.0)])), {}, 0)\n"
        "m.ask(2)\n"
        "bad = [k for k in sys.modules if k.split('.')[0] in ('tensorflow', 'gpflow', 'tensorflow_probability')]\n"
        "assert not bad, bad[:5]\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# The conformance suite runs on bayes in tests/host/test_conformance.py (budget 24, with every built-in).


@pytest.mark.slow
def test_branin_regret_within_budget() -> None:
    m = BayesMethod(Problem(BRANIN_SPACE, budget_evaluations=30), {}, seed=0)
    history = run(m, branin_twin, 30)
    best = min(e.objective for e in history if e.objective is not None)
    # random search at 30 evaluations has a median regret around 1; BO reaches ~1e-4 here
    assert best - BRANIN_MIN < 0.01
    rec = m.recommend()
    assert rec is not None and abs(branin(float(rec.values["x1"]), float(rec.values["x2"])) - best) < 1e-12
    diag = m.diagnostics()
    it = diag["iterations"][-1]
    assert set(it["lengthscales"]) == {"x1", "x2"} and math.isfinite(it["loo_std"])
    loo = diag["loo"]
    n = len(loo["observed"])
    assert n == 29 and all(len(loo[k]) == n for k in ("predicted", "predicted_sd", "standardized_error"))
    assert all(sd > 0 for sd in loo["predicted_sd"])
    assert all(abs((o - p) / sd - e) < 1e-6 * max(1.0, abs(e)) for o, p, sd, e in
               zip(loo["observed"], loo["predicted"], loo["predicted_sd"], loo["standardized_error"], strict=True))


def test_batched_lbfgsb_runs_each_start_independently() -> None:
    """Lock-step runs give what separate scipy L-BFGS-B runs give from each start; a failing batch
    evaluation surfaces as the caller's exception."""
    from fmio_bayes.batched_lbfgsb import batched_lbfgsb
    from scipy.optimize import minimize

    def fun(X: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = X[:, 0]
        return np.cos(3 * x) + 0.1 * x + 0.05 * rows, (-3 * np.sin(3 * x) + 0.1)[:, None]

    x0 = np.array([[0.5], [2.5], [4.5], [5.9]])
    res = batched_lbfgsb(fun, x0, [(0.0, 6.0)], pgtol=1e-8)
    for i, start in enumerate(x0):
        alone = minimize(lambda x, i=i: (float(fun(x[None, :], np.array([i]))[0][0]), fun(x[None, :], np.array([i]))[1][0]),
                         start, jac=True, method="L-BFGS-B", bounds=[(0.0, 6.0)], options={"gtol": 1e-8})
        assert abs(res.x[i, 0] - alone.x[0]) < 1e-9 and abs(res.fun[i] - alone.fun) < 1e-12
    assert np.all(res.nit > 0) and np.all(np.abs(-3 * np.sin(3 * res.x[:, 0]) + 0.1) < 1e-4)  # stationary

    def broken(X: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise ZeroDivisionError("boom")

    with pytest.raises(ZeroDivisionError):
        batched_lbfgsb(broken, x0, [(0.0, 6.0)])


def test_batched_lbfgsb_surfaces_an_error_inside_one_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """One run's L-BFGS-B raises after a few steps: the caller gets its exception (the call returns
    instead of hanging on runs still waiting for an answer)."""
    import fmio_bayes.batched_lbfgsb as module
    import scipy.optimize

    real_minimize = scipy.optimize.minimize  # batched_lbfgsb imports it when called: patch it where it lives

    def minimize(f: Any, x0: np.ndarray, **kwargs: Any) -> Any:
        steps = [0]

        def g(x: np.ndarray) -> Any:
            steps[0] += 1
            if x0[0] == 4.5 and steps[0] > 3:
                raise ValueError("run from 4.5 breaks")
            return f(x)

        return real_minimize(g, x0, **kwargs)

    monkeypatch.setattr(scipy.optimize, "minimize", minimize)

    def fun(X: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.cos(3 * X[:, 0]), (-3 * np.sin(3 * X[:, 0]))[:, None]

    with pytest.raises(ValueError, match="run from 4.5 breaks"):
        module.batched_lbfgsb(fun, np.array([[0.5], [2.5], [4.5], [5.9]]), [(0.0, 6.0)], pgtol=1e-12)


@pytest.mark.slow
def test_constraint_respected() -> None:
    """min x1^2 + x2^2 subject to x1 + x2 >= 1: optimum 0.5 at (0.5, 0.5) on the boundary."""
    space = DesignSpace([Continuous("x1", -2.0, 2.0), Continuous("x2", -2.0, 2.0)])
    m = BayesMethod(Problem(space, constraint_names=("g",), budget_evaluations=30), {}, seed=1)

    def twin(c: Candidate) -> Evaluation:
        x1, x2 = float(c.values["x1"]), float(c.values["x2"])
        return Evaluation(c, "ok", objective=x1**2 + x2**2, constraints=(1.0 - x1 - x2,))

    history = run(m, twin, 30)
    rec = m.recommend()
    assert rec is not None
    x1, x2 = float(rec.values["x1"]), float(rec.values["x2"])
    assert x1 + x2 >= 1.0 - 1e-9
    assert x1**2 + x2**2 < 0.56
    after_design = history[m.n_initial:]
    infeasible = sum(1 for e in after_design if not e.feasible) / len(after_design)
    assert infeasible < 0.5  # half the box is infeasible: the PoF term must steer away from it


@pytest.mark.slow
def test_crash_region_avoided() -> None:
    """Branin whose runs crash for x1 > 2.5 (half of the box, holding two of its three minima)."""
    m = BayesMethod(Problem(BRANIN_SPACE, budget_evaluations=36), {}, seed=2)

    def twin(c: Candidate) -> Evaluation:
        if float(c.values["x1"]) > 2.5:
            return Evaluation(c, "crashed", error="solver diverged")
        return branin_twin(c)

    history = run(m, twin, 36)
    after_design = history[m.n_initial:]
    crashed = sum(1 for e in after_design if e.status == "crashed") / len(after_design)
    assert crashed < 0.25  # uniform sampling would crash half the time
    best = min(e.objective for e in history if e.objective is not None)
    assert best - BRANIN_MIN < 0.05  # the minimum at x1 = -pi lies in the safe half
    assert m.diagnostics()["iterations"][-1]["n_failed"] >= 1


@pytest.mark.slow
def test_mixed_space_finds_discrete_optimum() -> None:
    space = DesignSpace([Continuous("x", 0.0, 1.0), Integer("n", 0, 10),
                         Categorical("c", (10, 20, 30), ("a", "b", "c")), Boolean("flag")])
    offsets = {10: 0.0, 20: 1.0, 30: 2.0}

    def twin(c: Candidate) -> Evaluation:
        v = space.validate(c.values)  # raises on an invalid candidate
        f = (float(v["x"]) - 0.3) ** 2 + 0.1 * (int(v["n"]) - 3) ** 2 + offsets[int(v["c"])] + (0.5 if v["flag"] else 0)
        return Evaluation(c, "ok", objective=f)

    m = BayesMethod(Problem(space, budget_evaluations=30), {}, seed=3)
    run(m, twin, 30)
    rec = m.recommend()
    assert rec is not None
    assert rec.values["n"] == 3 and rec.values["c"] == 10 and rec.values["flag"] is False
    assert abs(float(rec.values["x"]) - 0.3) < 0.1
    assert "c=a" in m.diagnostics()["encoding"]


@pytest.mark.slow
def test_batch_asks_distinct_points_and_tracks_pending() -> None:
    m = BayesMethod(Problem(BRANIN_SPACE, budget_evaluations=30, batch_size=4), {"n_initial": 6}, seed=4)
    run(m, branin_twin, 8, batch=4)  # initial design and one model-based batch
    first = m.ask(4)
    second = m.ask(4)  # before any tell: pending points must not be proposed again
    keys = {tuple(sorted(c.values.items())) for c in first + second}
    assert len(first) == 4 and len(second) == 4 and len(keys) == 8
    m.tell([branin_twin(c) for c in first + second])
    assert not m._pending


def test_a_first_batch_larger_than_the_initial_design_is_filled_before_anything_is_told() -> None:
    m = BayesMethod(Problem(BRANIN_SPACE, budget_evaluations=30, batch_size=10), {"n_initial": 4}, seed=2)
    first = m.ask(10)  # used to fail: the empty data set could not be reshaped
    assert len({tuple(sorted(c.values.items())) for c in first}) == 10
    m.tell([branin_twin(c) for c in first])
    assert len(m.ask(3)) == 3


def test_multi_objective_parego_front() -> None:
    space = DesignSpace([Continuous("x", 0.0, 1.0), Continuous("y", 0.0, 1.0)])
    m = BayesMethod(Problem(space, objective_names=("f1", "f2"), budget_evaluations=20), {}, seed=5)

    def twin(c: Candidate) -> Evaluation:
        x, y = float(c.values["x"]), float(c.values["y"])
        f1, f2 = x**2 + y**2, (x - 1) ** 2 + y**2  # front: y = 0, x in [0, 1]
        return Evaluation(c, "ok", objective=None, objectives=(f1, f2))

    run(m, twin, 20)
    assert m.diagnostics()["pareto_front_size"] >= 3
    rec = m.recommend()
    assert rec is not None and float(rec.values["y"]) < 0.2


def test_options_validated_and_fit_scores() -> None:
    with pytest.raises(StudyError, match="accepted"):
        BayesMethod(Problem(BRANIN_SPACE), {"kernel": "rbf"})
    with pytest.raises(StudyError):
        BayesMethod(Problem(BRANIN_SPACE), {"acquisition": "ei"})
    assert BayesMethod.fit(Problem(BRANIN_SPACE, budget_evaluations=40)).score == 1.0
    cat = DesignSpace([Categorical("a", (1, 2, 3)), Boolean("b")])
    assert BayesMethod.fit(Problem(cat)).score < 0.5
    wide = DesignSpace([Continuous(f"x{i}", 0.0, 1.0) for i in range(20)])
    m = BayesMethod(Problem(wide), {"screening": True}, seed=0)
    assert any("dimensions" in w for w in m.diagnostics()["warnings"])


def test_fit_steps_back_when_the_model_would_starve_a_fast_twin_of_evaluations() -> None:
    space = DesignSpace([Continuous("a", 0.0, 1.0), Continuous("b", 0.0, 1.0)])
    fast = Problem(space, budget_evaluations=500, budget_seconds=30.0, seconds_per_evaluation=0.002, batch_size=2)
    fit = BayesMethod.fit(fast)
    assert fit.score < 0.1 and "model-free method evaluates 500" in fit.reason
    expensive = Problem(space, budget_evaluations=40, budget_seconds=600.0, seconds_per_evaluation=5.0, batch_size=2)
    assert BayesMethod.fit(expensive).score >= 0.9


def test_report_section_shows_the_leave_one_out_check() -> None:
    from fmio_bayes import fmio_report_sections

    errors = [-1.2, 0.3, 0.8, -0.4, 5.5, 0.1]
    loo = {"observed": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "predicted": [1.1, 1.9, 2.8, 4.2, 3.0, 6.0],
           "predicted_sd": [0.1, 0.3, 0.2, 0.5, 0.4, 0.2], "standardized_error": errors}
    its = [{"n_data": 5 + i, "loo_std": 1.0 + 0.1 * i, "loo_fraction_above_3": 0.0} for i in range(4)]
    result = {"diagnostics": {"loo": loo, "iterations": its}}
    assert fmio_report_sections(study={"method": "de"}, result=result) is None  # another method's study
    sections = "".join(fmio_report_sections(study={"method": "bayes"}, result=result) or [])
    assert "Surrogate check (leave-one-out)" in sections and 'alt="leave-one-out check' in sections
    assert "6 points" in sections and "1 beyond ±3" in sections and "suspect" in sections
    calm = {"diagnostics": {"loo": {**loo, "standardized_error": [e for e in errors if abs(e) < 3] + [0.2]}}}
    assert "consistent with N(0, 1)" in "".join(fmio_report_sections(study={"method": "bayes"}, result=calm) or [])


def test_report_section_reports_underconfidence_without_flagging_it() -> None:
    """Errors well inside the error bars come from a search that clustered its points (a converged run as much
    as a trapped one): said as such, not shown as a red "suspect"; overconfidence still is."""
    from fmio_bayes import fmio_report_sections

    def verdict(errors: list[float]) -> str:
        loo = {"observed": [float(i) for i in range(len(errors))], "predicted": [float(i) for i in range(len(errors))],
               "predicted_sd": [1.0] * len(errors), "standardized_error": errors}
        return "".join(fmio_report_sections(study={"method": "bayes"}, result={"diagnostics": {"loo": loo}}) or [])

    clustered = verdict([0.2, -0.3, 0.1, 0.25, -0.2, 0.3, -0.1, 0.15])
    assert "underconfident" in clustered and "suspect" not in clustered and "class=bad" not in clustered
    wild = verdict([2.5, -2.8, 2.2, -2.6, 2.9, -2.4, 2.7, -2.3])
    assert "overconfident" in wild and "class=bad" in wild
    tails = verdict([0.1, -0.2, 3.4, 0.3, -3.2, 0.2, -0.1, 0.2] + [0.0] * 12)  # RMS 1.05, 2 of 20 beyond ±3
    assert "overconfident" in tails and "class=bad" in tails


def _stall_run(values: Callable[[int], float], budget: int = 20) -> BayesMethod:
    space = DesignSpace([Continuous("x", 0.0, 1.0), Continuous("y", 0.0, 1.0)])
    m = BayesMethod(Problem(space, budget_evaluations=budget), {"stall_patience": 6}, seed=0)
    for i in range(budget):
        c = m.ask(1)[0]
        m.tell([Evaluation(c, "ok", objective=values(i))])
    return m


@pytest.mark.slow
def test_a_search_without_improvement_is_reported_stalled_with_advice() -> None:
    # the first value is never beaten: after 6 evaluations without improvement the search is stalled
    flat = _stall_run(lambda i: 0.0 if i == 0 else 1.0 + 0.1 * math.sin(i))
    d = flat.diagnostics()
    assert d["stalled"] and d["evaluations_since_improvement"] == 19
    stall = [w for w in d["warnings"] if w.startswith("search stalled")]
    assert len(stall) == 1 and "no improvement in the last 6 evaluations" in stall[0]
    assert "another seed or a larger budget" in stall[0]
    # every value a new best: never stalled, no warning
    improving = _stall_run(lambda i: -float(i)).diagnostics()
    assert not improving["stalled"] and not any(w.startswith("search stalled") for w in improving["warnings"])


def test_a_stall_around_the_best_point_is_called_convergence() -> None:
    """A Dymola pump study converged at its constraint boundary (h = 2.0002) and spent its last ten evaluations
    within 3e-5 of it; the warning said "search stalled ... possibly a local optimum". When the stalled
    evaluations all lie within 1e-3 (share of each range) of the best point, the warning says converged."""
    def told(points: list[tuple[float, float, float]], batch: int = 1) -> list[str]:
        space = DesignSpace([Continuous("x", 0.0, 10.0), Continuous("y", 0.0, 1.0)])
        m = BayesMethod(Problem(space, budget_evaluations=60), {"stall_patience": 6}, seed=0)
        evs = [Evaluation(Candidate({"x": x, "y": y}), "ok", objective=f) for x, y, f in points]
        for k in range(0, len(evs), batch):
            m.tell(evs[k:k + batch])
        return m.diagnostics()["warnings"]

    start = [(10.0 * (i % 5) / 4, i / 20, 25.0 - i) for i in range(20)] + [(5.0, 0.5, 0.0)]  # each one better
    near = told(start + [(5.0 + 0.001 * k, 0.5 - 0.0001 * k, 0.1) for k in range(1, 7)])
    assert len(near) == 1 and near[0].startswith("converged: the last 6 evaluations lie within 0.0006 of the best")
    far = told(start + [(5.0 + 0.5 * k, 0.5, 0.1) for k in range(1, 7)])
    assert len(far) == 1 and far[0].startswith("search stalled: no improvement in the last 6 evaluations")
    # told in one batch, the stall is judged on the six that made it, not on the batch's last six
    near_then_far = [(5.0 + 0.001 * k, 0.5, 0.1) for k in range(1, 7)] + [(0.0, 0.0, 0.2), (10.0, 1.0, 0.2)]
    batched = told(start + near_then_far, batch=len(start) + len(near_then_far))
    assert batched[0].startswith("converged: the last 6 evaluations lie within 0.0006")


def test_the_removed_basin_escape_options_are_refused_with_the_option_list() -> None:
    """escape, face_probe and escape_tolerance were removed (docs/methods/bayes.md): a study file that still
    sets one is refused by name, not silently run without it."""
    space = DesignSpace([Continuous("x", 0.0, 1.0)])
    for name, value in (("escape", True), ("face_probe", True), ("escape_tolerance", 0.01)):
        with pytest.raises(StudyError, match=f"unknown option.*{name}"):
            BayesMethod(Problem(space, budget_evaluations=40), {name: value}, seed=0)


def test_a_pareto_search_stalls_on_its_front_not_on_an_infinite_best() -> None:
    """With several objectives there is no scalar best: a stall is 'nothing entered the front', and a search
    whose every point extends the front never stalls (it once warned 'search stalled ... (best inf)')."""
    space = DesignSpace([Continuous("x", 0.0, 1.0), Continuous("y", 0.0, 1.0)])

    def run(objectives: Callable[[int], tuple[float, float]]) -> dict[str, Any]:
        m = BayesMethod(Problem(space, objective_names=("a", "b"), budget_evaluations=30), {"stall_patience": 6},
                        seed=0)
        rng = np.random.default_rng(0)
        for i in range(30):  # told directly: the test is about the bookkeeping, not the surrogate
            o = objectives(i)
            m.tell([Evaluation(Candidate(space.from_unit(rng.random(2))), "ok", objective=sum(o), objectives=o)])
        return m.diagnostics()

    trade_off = run(lambda i: (float(i), -float(i)))  # every point a new front member
    assert not trade_off["stalled"] and not any("stalled" in w for w in trade_off["warnings"])
    dominated = run(lambda i: (0.0, 0.0) if i == 0 else (1.0 + i, 1.0))  # the first point dominates the rest
    stall = [w for w in dominated["warnings"] if w.startswith("search stalled")]
    assert dominated["stalled"] and len(stall) == 1, dominated["warnings"]
    assert "entered the Pareto front (front size 1)" in stall[0] and "inf" not in stall[0]
