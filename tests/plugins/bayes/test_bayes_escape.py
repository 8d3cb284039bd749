"""Leaving resolved basins (fmio_bayes.escape): the barrier and its gradient, the convergence rule,
and a run on a two-basin function where the search must leave the basin it met first."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from fmio_bayes import BayesMethod
from fmio_bayes.escape import RHO_BASIN, RHO_REFINE, ResolvedBasins, confine, converged, in_depth_units

from fmi_optimizer.method import Problem
from fmi_optimizer.records import Candidate, Evaluation
from fmi_optimizer.space import Continuous, DesignSpace

pytestmark = pytest.mark.tf  # GPflow / TensorFlow models


def _matern52_correlation(z: np.ndarray, c: np.ndarray, ell: np.ndarray) -> float:
    r = math.sqrt(float(np.sum(((z - c) / ell) ** 2)))
    return (1 + math.sqrt(5) * r + 5 / 3 * r * r) * math.exp(-math.sqrt(5) * r)


def test_barrier_is_the_kernel_correlation_with_its_gradient() -> None:
    basins = ResolvedBasins()
    basins.add(np.array([0.3, 0.6]), np.array([0.2, 0.5]), -1.0)
    basins.add(np.array([0.9, 0.1]), np.array([0.1, 0.1]), -0.5)
    rng = np.random.default_rng(0)
    Z = rng.random((50, 2))
    rho, grad = basins.correlation(Z)
    expected = [max(_matern52_correlation(z, np.array([0.3, 0.6]), np.array([0.2, 0.5])),
                    _matern52_correlation(z, np.array([0.9, 0.1]), np.array([0.1, 0.1]))) for z in Z]
    assert np.allclose(rho, expected)
    assert np.array_equal(basins.outside(Z), rho < RHO_BASIN)

    def flat(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(len(Z)), np.zeros_like(Z)

    wrapped = basins.wrap(flat)
    v, g = wrapped(Z)
    assert np.all(v[rho <= RHO_BASIN] == 0.0) and np.all(v[rho > RHO_BASIN] < 0.0)
    h = 1e-6
    for j in range(2):
        dz = np.zeros_like(Z)
        dz[:, j] = h
        numeric = (wrapped(Z + dz)[0] - wrapped(Z - dz)[0]) / (2 * h)
        away = np.abs(rho - RHO_BASIN) > 1e-3  # the barrier's kink
        assert np.allclose(g[away, j], numeric[away], rtol=1e-4, atol=1e-6)


def test_confine_penalizes_only_points_away_from_the_centre() -> None:
    centre, ell = np.array([0.5, 0.5]), np.array([0.3, 0.3])

    def flat(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(len(Z)), np.zeros_like(Z)

    confined = confine(flat, centre, ell)
    Z = np.random.default_rng(1).random((60, 2))
    rho = np.array([_matern52_correlation(z, centre, ell) for z in Z])
    v, g = confined(Z)
    assert np.all(v[rho >= RHO_REFINE] == 0.0) and np.all(v[rho < RHO_REFINE] < 0.0)
    h = 1e-6
    away = np.abs(rho - RHO_REFINE) > 1e-3
    for j in range(2):
        dz = np.zeros_like(Z)
        dz[:, j] = h
        numeric = (confined(Z + dz)[0] - confined(Z - dz)[0]) / (2 * h)
        assert np.allclose(g[away, j], numeric[away], rtol=1e-4, atol=1e-4)


def test_converged_needs_a_full_streak_below_the_tolerance() -> None:
    low, high = math.log(1e-4), math.log(1e-1)
    assert converged([high, low, low, low], 1e-3, 3)
    assert not converged([low, low, high], 1e-3, 3)
    assert not converged([low, low], 1e-3, 3)


def test_depth_units_are_stricter_only_when_a_few_huge_values_inflate_the_sd() -> None:
    even = np.linspace(-3.0, 0.0, 31)  # median - min = 1.5 > sd = 0.9: the sd is the yardstick
    yes = np.ones(31, dtype=bool)
    assert in_depth_units(-5.0, even, yes) == -5.0
    tailed = np.array([0.4, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 150.0, 250.0, 300.0])  # Branin-like
    depth, sd = float(np.median(tailed) - tailed.min()), float(np.std(tailed))
    assert depth < sd
    assert math.isclose(in_depth_units(-5.0, tailed, yes[:10]), -5.0 + math.log(sd / depth))
    assert in_depth_units(-5.0, np.ones(4), yes[:4]) == -5.0  # no spread yet: unchanged
    # infeasible values far below the feasible ones are no depth: the yardstick stays strict
    feasible = np.array([True] * 10 + [False, False])
    with_infeasible = np.append(np.arange(1.0, 11.0), [-40.0, -50.0])
    depth = float(np.median(with_infeasible) - 1.0)
    assert math.isclose(in_depth_units(-5.0, with_infeasible, feasible),
                        -5.0 + math.log(float(np.std(with_infeasible)) / depth))
    assert in_depth_units(-5.0, with_infeasible, np.zeros(12, dtype=bool)) == -5.0  # nothing feasible yet


class _FittedModel:
    """What _note_convergence reads of an engine: the objective GP's lengthscales."""

    def __init__(self) -> None:
        self.objective = type("Objective", (), {"lengthscales": np.array([0.2, 0.2])})()


def _cluster_data() -> Any:
    from fmio_bayes.engine import Dataset

    Z = np.array([[0.5, 0.5], [0.52, 0.5], [0.5, 0.53], [0.47, 0.49], [0.9, 0.1]])
    y = np.array([-1.0, -0.9, -0.8, -0.85, 0.0])
    return Dataset(Z, y, np.zeros((5, 0)), Z, np.ones(5, dtype=bool))


def _fresh_method() -> BayesMethod:
    space = DesignSpace([Continuous("x", 0.0, 1.0), Continuous("y", 0.0, 1.0)])
    return BayesMethod(Problem(space, budget_evaluations=100), {"escape": True}, seed=0)


def test_a_resolved_basin_is_not_resolved_again() -> None:
    """When the main GP proposes again (e.g. too few points outside), its converged incumbent is the
    resolved centre itself: that must not add the same basin a second time."""
    method, model = _fresh_method(), _FittedModel()
    for _ in range(9):  # three full streaks of "nothing to expect"
        method._note_convergence([-30.0], _cluster_data(), model)  # type: ignore[arg-type]
    assert len(method._basins.values) == 1 and len(method.diagnostics()["resolved_basins"]) == 1


def test_a_streak_counts_one_models_proposals_only() -> None:
    """Two low values from one GP and one from another are no streak of three."""
    method, main, outside = _fresh_method(), _FittedModel(), _FittedModel()
    for model in (main, main, outside, main, outside):
        method._note_convergence([-30.0], _cluster_data(), model)  # type: ignore[arg-type]
    assert method._basins.values == []
    method._note_convergence([-30.0], _cluster_data(), outside)  # type: ignore[arg-type]
    method._note_convergence([-30.0], _cluster_data(), outside)  # type: ignore[arg-type]
    assert len(method._basins.values) == 1


def test_room_is_measured_outside_every_resolved_basin() -> None:
    """A new basin must leave room outside the union of all resolved basins, not only outside itself."""
    method = _fresh_method()
    method._basins.add(np.array([0.25, 0.5]), np.array([0.25, 1.0]), -2.0)  # x < ~0.63
    box = method._box_sample()
    left = 1.0 - float(np.mean(method._basins.outside(box)))
    assert 0.5 < left < 0.8
    model = _FittedModel()
    model.objective.lengthscales = np.array([0.25, 1.0])  # alone: x > ~0.37
    from fmio_bayes.engine import Dataset

    Z = np.array([[0.75, 0.5], [0.77, 0.5], [0.75, 0.53], [0.72, 0.49], [0.9, 0.1]])  # the right half
    data = Dataset(Z, np.array([-1.0, -0.9, -0.8, -0.85, 0.0]), np.zeros((5, 0)), Z, np.ones(5, dtype=bool))
    for _ in range(3):
        method._note_convergence([-30.0], data, model)  # type: ignore[arg-type]
    assert len(method._basins.values) == 1  # alone it would leave room; together they fill the box


def test_the_final_refinement_of_a_later_basin_uses_the_gp_that_found_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The best point lies in the second resolved basin (found by the outside GP): the last evaluations
    refine it with the outside GP trained without the first basin's points, not with the main GP."""
    from fmio_bayes.engine import Dataset

    method = _fresh_method()
    method._basins.add(np.array([0.2, 0.2]), np.array([0.1, 0.1]), -1.0)
    method._basins.add(np.array([0.8, 0.8]), np.array([0.1, 0.1]), -2.0)
    Z = np.array([[0.2, 0.2], [0.22, 0.2], [0.8, 0.8], [0.82, 0.8], [0.5, 0.1], [0.1, 0.9], [0.5, 0.5]])
    y = np.array([-1.0, -0.9, -2.0, -1.9, 0.0, 0.1, 0.2])
    data = Dataset(Z, y, np.zeros((7, 0)), Z, np.ones(7, dtype=bool))
    monkeypatch.setattr(method, "_evaluations_left", lambda: 3)
    main = method._get_engine()
    model, train, wrap = method._search_plan(data, main)
    assert model is method._explorer and model is not main and wrap is not None
    assert {tuple(z) for z in train.Z_ok} == {(0.8, 0.8), (0.82, 0.8), (0.5, 0.1), (0.1, 0.9), (0.5, 0.5)}
    monkeypatch.setattr(method, "_evaluations_left", lambda: 30)  # before the final evaluations: outside only
    model, train, _ = method._search_plan(data, main)
    assert model is method._explorer and {tuple(z) for z in train.Z_ok} == {(0.5, 0.1), (0.1, 0.9), (0.5, 0.5)}


def _two_basins(x: float, y: float) -> float:
    """A broad shallow basin (depth 1) and a narrower, deeper one (depth 1.4) in the opposite corner."""
    return -math.exp(-((x - 0.3) ** 2 + (y - 0.3) ** 2) / 0.05) - 1.4 * math.exp(-((x - 0.8) ** 2 + (y - 0.8) ** 2) / 0.01)


@pytest.mark.slow
def test_a_resolved_basin_is_left_and_never_re_entered() -> None:
    space = DesignSpace([Continuous("x", 0.0, 1.0), Continuous("y", 0.0, 1.0)])
    method = BayesMethod(Problem(space, budget_evaluations=60), {"escape": True}, seed=0)
    seen: list[np.ndarray] = []
    resolved_at = None
    while len(seen) < 60:
        resolved = ResolvedBasins(list(method._basins.centres), list(method._basins.values))
        c = method.ask(1)[0]  # (may resolve a basin after proposing: checked from the next one on)
        z = np.array([c.values["x"], c.values["y"]])
        if resolved.values and method._evaluations_left() >= 5:
            # every proposal after a basin is resolved lies outside every resolved basin (until the
            # final refinement, which may return to the best one)
            # (up to the barrier's edge, where its penalty starts at zero)
            assert resolved.correlation(z[None, :])[0][0] < RHO_BASIN + 0.01, (len(seen), z)
        method.tell([Evaluation(Candidate(c.values), "ok", objective=_two_basins(*z))])
        seen.append(z)
        if resolved_at is None and method._basins.values:
            resolved_at = len(seen)
    assert resolved_at is not None and resolved_at < 60, "the first basin was never declared resolved"
    diagnostics = method.diagnostics()
    # from the resolution on, the GP trained outside the resolved basins proposes - also after it has
    # found the deeper basin - until the final refinement
    after = [it["model"] for it in diagnostics["iterations"]][-(60 - resolved_at):-5]
    assert after and all(m.startswith("explorer") for m in after), after
    assert [b["after_evaluations"] for b in diagnostics["resolved_basins"]] == sorted(
        b["after_evaluations"] for b in diagnostics["resolved_basins"])
    from fmio_bayes import fmio_report_sections

    report = "".join(fmio_report_sections(study={"method": "bayes"}, result={"diagnostics": diagnostics}) or [])
    first = diagnostics["resolved_basins"][0]
    assert "Basins resolved and left" in report and f"after {first['after_evaluations']} evaluations" in report
    assert first["after_evaluations"] == resolved_at - 1  # resolved while proposing evaluation ``resolved_at``
    best = min(_two_basins(*z) for z in seen)
    assert best <= min(method._basins.values) + 1e-12  # leaving a basin loses nothing already found
    assert best < -1.39  # the deeper, narrower basin was found and refined (the first one met is -1.0)


@pytest.mark.slow
def test_with_a_constraint_basins_are_resolved_around_feasible_points_and_the_constrained_optimum_is_found() -> None:
    """The deeper basin's floor (0.8, 0.8) is infeasible (g = y - 0.75 <= 0): the escape must leave the
    shallow basin at a feasible centre and end on the constrained optimum (0.8, 0.75), -1.0904."""
    space = DesignSpace([Continuous("x", 0.0, 1.0), Continuous("y", 0.0, 1.0)])
    method = BayesMethod(Problem(space, constraint_names=("g",), budget_evaluations=60), {"escape": True}, seed=0)
    feasible_values = []
    for _ in range(60):
        c = method.ask(1)[0]
        x, y = c.values["x"], c.values["y"]
        method.tell([Evaluation(Candidate(c.values), "ok", objective=_two_basins(x, y), constraints=(y - 0.75,))])
        if y <= 0.75:
            feasible_values.append(_two_basins(x, y))
    resolved = method.diagnostics()["resolved_basins"]
    assert resolved, "the shallow basin was never left"
    assert all(b["centre"]["y"] <= 0.75 for b in resolved)
    first = resolved[0]["centre"]
    assert math.hypot(first["x"] - 0.3, first["y"] - 0.3) < 0.05  # the shallow basin is met first here
    assert min(feasible_values) < -1.08  # the constrained optimum -1.0904 (the shallow basin: -1.0)
    best = method.recommend()
    assert best is not None and best.values["y"] <= 0.75 and _two_basins(best.values["x"], best.values["y"]) < -1.08


@pytest.mark.slow
def test_a_noisy_twin_never_escapes() -> None:
    """With noise, the incumbent and the basin around it would follow the noise: escape stays off."""
    space = DesignSpace([Continuous("x", 0.0, 1.0), Continuous("y", 0.0, 1.0)])
    method = BayesMethod(Problem(space, budget_evaluations=40, noisy=True), {"escape": True}, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(40):
        c = method.ask(1)[0]
        value = _two_basins(c.values["x"], c.values["y"]) + 0.01 * rng.standard_normal()
        method.tell([Evaluation(Candidate(c.values), "ok", objective=value)])
    diagnostics = method.diagnostics()
    assert diagnostics["noise"] == "learned" and diagnostics["resolved_basins"] == []
    assert all(it["model"] == "main" for it in diagnostics["iterations"])


def _bowl_run(budget: int) -> dict:
    space = DesignSpace([Continuous("x", 0.0, 1.0), Continuous("y", 0.0, 1.0)])
    method = BayesMethod(Problem(space, budget_evaluations=budget), {"escape": True}, seed=0)
    for _ in range(budget):
        c = method.ask(1)[0]
        value = (c.values["x"] - 0.45) ** 2 + 0.5 * (c.values["y"] - 0.6) ** 2
        method.tell([Evaluation(Candidate(c.values), "ok", objective=value)])
    return method.diagnostics()


@pytest.mark.slow
def test_a_basin_filling_the_design_space_is_not_left(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a single smooth bowl the model soon expects nothing more, but its basin covers the whole box:
    there is nowhere to go, so the search keeps refining (it escaped to nowhere before the room rule)."""
    import fmio_bayes.method as bayes_method

    monkeypatch.setattr(bayes_method, "ESCAPE_MIN_ROOM", 0.0)
    without_rule = _bowl_run(40)["resolved_basins"]
    assert without_rule and without_rule[0]["box_share"] > 0.8  # the rule below has something to stop
    monkeypatch.setattr(bayes_method, "ESCAPE_MIN_ROOM", 0.2)
    assert _bowl_run(40)["resolved_basins"] == []
