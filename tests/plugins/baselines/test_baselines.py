"""The built-in baselines ``random``, ``de`` and ``ga`` on small analytic problems through a local ask/tell loop."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pluggy
import pytest
from conftest import ROOT
from fmio_baselines import DifferentialEvolution, GeneticAlgorithm, RandomSearch, fmio_register_methods
from fmio_baselines._common import Outcome, UnitCodec, deb_better_or_equal
from hypothesis import given, settings
from hypothesis import strategies as st

from fmi_optimizer import hookspecs, testing
from fmi_optimizer.errors import StudyError
from fmi_optimizer.method import Method, Problem
from fmi_optimizer.records import Candidate, Evaluation
from fmi_optimizer.registry import MethodRegistry
from fmi_optimizer.space import Boolean, Categorical, Continuous, DesignSpace, Integer

ALL: list[type[Method]] = [RandomSearch, DifferentialEvolution, GeneticAlgorithm]
LEARNERS: list[type[Method]] = [DifferentialEvolution, GeneticAlgorithm]

# An objective returns (objective, constraints) or None for a failed run.
Objective = Callable[[dict[str, Any]], "tuple[float, tuple[float, ...]] | None"]


def evaluate(c: Candidate, f: Objective) -> Evaluation:
    out = f(c.values)
    if out is None:
        return Evaluation(c, "failed", error="simulated failure")
    obj, cons = out
    return Evaluation(c, "ok", kpis={"f": obj}, objective=obj, constraints=cons)


def run(method: Method, f: Objective, budget: int, batch: int = 4) -> list[Evaluation]:
    """The host's loop in miniature: ask a batch, evaluate it, tell everything (failures included)."""
    done: list[Evaluation] = []
    idle = 0
    while len(done) < budget and not method.finished:
        cands = method.ask(min(batch, budget - len(done)))
        assert len(cands) <= batch
        if not cands:
            idle += 1
            assert idle < 3, "the method asked nothing although nothing was pending and it is not finished"
            continue
        idle = 0
        evs = [evaluate(c, f) for c in cands]
        done.extend(evs)
        method.tell(evs)
    return done


def make(cls: type[Method], space: DesignSpace, seed: int = 0, budget: int | None = None,
         constraints: tuple[str, ...] = (), **options: Any) -> Method:
    return cls(Problem(space, constraint_names=constraints, budget_evaluations=budget), options, seed)


def value_of(f: Objective, c: Candidate | None) -> float:
    assert c is not None
    out = f(c.values)
    assert out is not None
    return out[0]


# -- problems ----------------------------------------------------------------------------------
SPHERE_SPACE = DesignSpace([Continuous(f"x{i}", -5.0, 5.0) for i in range(3)])


def sphere(v: dict[str, Any]) -> tuple[float, tuple[float, ...]]:
    return float(sum(x * x for x in v.values())), ()


ROSEN_SPACE = DesignSpace([Continuous("x", -2.0, 2.0), Continuous("y", -1.0, 3.0)])


def rosenbrock(v: dict[str, Any]) -> tuple[float, tuple[float, ...]]:
    return float((1 - v["x"]) ** 2 + 100 * (v["y"] - v["x"] ** 2) ** 2), ()


MIXED_SPACE = DesignSpace([
    Integer("n", 0, 40),
    Integer("k", -10, 10),
    Categorical("material", (1, 2, 3, 4), ("steel", "aluminium", "copper", "brass")),
    Boolean("fan"),
    Continuous("h", 0.01, 0.06, levels=11),
])
COST = {1: 4.0, 2: 0.0, 3: 2.5, 4: 6.0}


def mixed(v: dict[str, Any]) -> tuple[float, tuple[float, ...]]:
    """Unique optimum 0 at n=27, k=-4, aluminium, fan on, h=0.045."""
    h_step = round((v["h"] - 0.01) / 0.005)
    return float((v["n"] - 27) ** 2 + (v["k"] + 4) ** 2 + COST[v["material"]] + (0 if v["fan"] else 3)
                 + abs(h_step - 7)), ()


MIXED_OPTIMUM = {"n": 27, "k": -4, "material": 2, "fan": True}

CONSTRAINED_SPACE = DesignSpace([Continuous("x", -2.0, 2.0), Continuous("y", -2.0, 2.0)])


def constrained(v: dict[str, Any]) -> tuple[float, tuple[float, ...]]:
    """min (x-1)^2 + (y-1)^2 s.t. x + y <= 1: unconstrained optimum (1, 1) infeasible, constrained 0.5."""
    return float((v["x"] - 1) ** 2 + (v["y"] - 1) ** 2), (v["x"] + v["y"] - 1.0,)


SMALL_SPACE = DesignSpace([Integer("a", 0, 4), Boolean("b"), Categorical("c", ("x", "y", "z"))])  # 30 configs


def small(v: dict[str, Any]) -> tuple[float, tuple[float, ...]]:
    return float(abs(v["a"] - 3) + (0 if v["b"] else 1) + "xyz".index(v["c"])), ()


# -- registration, options, routing ------------------------------------------------------------
def test_registers_three_methods_through_the_hook() -> None:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    import fmio_baselines

    pm.register(fmio_baselines)
    registry = MethodRegistry()
    pm.hook.fmio_register_methods(registry=registry)
    assert registry.names() == ["de", "ga", "random"]
    assert registry.get("de") is DifferentialEvolution
    with pytest.raises(Exception, match="already registered"):
        fmio_register_methods(registry)


@pytest.mark.parametrize("cls", ALL)
def test_unknown_option_is_rejected_with_the_accepted_list(cls: type[Method]) -> None:
    with pytest.raises(StudyError, match="unknown option.*'bogus'.*accepted: ") as err:
        make(cls, SPHERE_SPACE, bogus=1)
    import dataclasses

    for f in dataclasses.fields(cls.Options):
        assert f.name in str(err.value)


@pytest.mark.parametrize(("cls", "bad"), [
    (RandomSearch, {"initial": -1}), (RandomSearch, {"sampler": "halton"}),
    (DifferentialEvolution, {"recombination": 1.5}), (DifferentialEvolution, {"mutation": [1.0, 0.5]}),
    (DifferentialEvolution, {"strategy": "best3bin"}), (DifferentialEvolution, {"popsize": 0}),
    (GeneticAlgorithm, {"mutation_rate": 2.0}), (GeneticAlgorithm, {"population": 2}),
    (GeneticAlgorithm, {"tournament_size": 0}), (GeneticAlgorithm, {"population": 10, "elitism": 10}),
])
def test_invalid_option_values_are_study_errors(cls: type[Method], bad: dict[str, Any]) -> None:
    with pytest.raises(StudyError, match=f"method {cls.name!r}"):
        make(cls, SPHERE_SPACE, **bad)


def test_options_accept_toml_shapes() -> None:
    m = make(DifferentialEvolution, SPHERE_SPACE, mutation=[0.4, 0.9], popsize=5, init="sobol", strategy="rand2exp")
    assert m.options.mutation == (0.4, 0.9)
    assert m.diagnostics()["population"] == 16  # 5 * 3 = 15 rounded up to a power of two for Sobol
    assert make(DifferentialEvolution, SPHERE_SPACE, mutation=1).options.mutation == 1.0


def test_fit_scores() -> None:
    p = Problem(SPHERE_SPACE)
    assert RandomSearch.fit(p).score == pytest.approx(0.05)
    assert 0 < DifferentialEvolution.fit(p).score <= 0.1
    assert GeneticAlgorithm.fit(Problem(MIXED_SPACE)).score == pytest.approx(0.1)
    two = Problem(SPHERE_SPACE, objective_names=("a", "b"))
    for cls in ALL:
        assert cls.fit(two).score == 0.0
        assert cls.fit(p).reason


# -- optimization quality ----------------------------------------------------------------------
@pytest.mark.parametrize("cls", LEARNERS)
def test_learners_solve_sphere_and_beat_random(cls: type[Method]) -> None:
    rand = [best_after(RandomSearch, sphere, SPHERE_SPACE, s, 600) for s in range(3)]
    ours = [best_after(cls, sphere, SPHERE_SPACE, s, 600) for s in range(3)]
    assert max(ours) < 0.05, ours
    assert max(ours) < min(rand), (ours, rand)


def best_after(cls: type[Method], f: Objective, space: DesignSpace, seed: int, budget: int) -> float:
    m = make(cls, space, seed, budget=budget)
    run(m, f, budget)
    return value_of(f, m.recommend())


def test_random_search_improves_on_sphere_with_space_filling_first() -> None:
    m = make(RandomSearch, SPHERE_SPACE, 0, budget=300)
    evs = run(m, sphere, 300)
    d = m.diagnostics()
    assert d["space_filling_points"] == 256 and d["uniform_points"] == 44
    assert value_of(sphere, m.recommend()) < 1.5
    assert value_of(sphere, m.recommend()) == min(e.objective for e in evs if e.objective is not None)


def test_de_solves_rosenbrock() -> None:
    m = make(DifferentialEvolution, ROSEN_SPACE, 1, budget=2000)
    run(m, rosenbrock, 2000, batch=8)
    assert value_of(rosenbrock, m.recommend()) < 1e-2


@pytest.mark.parametrize("cls", LEARNERS)
def test_mixed_integer_categorical_boolean_optimum_is_found(cls: type[Method]) -> None:
    for seed in range(2):
        m = make(cls, MIXED_SPACE, seed, budget=1500)
        evs = run(m, mixed, 1500)
        assert all(MIXED_SPACE.validate(e.values) == e.values for e in evs)
        best = m.recommend()
        assert best is not None
        assert value_of(mixed, best) == 0.0, (seed, best.values)
        assert {k: best.values[k] for k in MIXED_OPTIMUM} == MIXED_OPTIMUM
        assert best.values["h"] == pytest.approx(0.045)


def test_random_on_mixed_space_gets_close() -> None:
    m = make(RandomSearch, MIXED_SPACE, 0, budget=500)
    run(m, mixed, 500)
    assert value_of(mixed, m.recommend()) <= 12.0


@pytest.mark.parametrize("cls", ALL)
def test_constrained_problem_recommends_the_best_feasible(cls: type[Method]) -> None:
    m = make(cls, CONSTRAINED_SPACE, 3, budget=800, constraints=("x_plus_y",))
    evs = run(m, constrained, 800)
    assert any(e.constraints[0] > 0 for e in evs), "the unconstrained optimum's region was never sampled"
    best = m.recommend()
    assert best is not None
    obj, (g,) = constrained(best.values)
    assert g <= 0.0
    tol = {RandomSearch: 0.25, GeneticAlgorithm: 0.05, DifferentialEvolution: 0.01}[cls]
    assert 0.5 - 1e-9 <= obj < 0.5 + tol, (obj, best.values)
    if cls is not RandomSearch:  # Deb's rules: the member the method ranks first is feasible, near the optimum
        assert m.diagnostics()["best_rank"][0] == 0
        if isinstance(m, GeneticAlgorithm):
            first = min(m.population, key=m._rank).values
        else:
            assert isinstance(m, DifferentialEvolution)
            first = m.pop_values[min(range(m.size), key=lambda i: m.pop_outcomes[i].rank())]
        obj, (g,) = constrained(first)
        assert g <= 0.0 and obj < 0.5 + tol, first


# -- failures ----------------------------------------------------------------------------------
def failing_sphere(v: dict[str, Any]) -> tuple[float, tuple[float, ...]] | None:
    """Fails (no number at all) in a third of the box, including a region better than the true optimum would
    be if failures were read as values."""
    if v["x0"] > 1.5:
        return None
    return sphere(v)


@pytest.mark.parametrize("cls", ALL)
def test_failed_evaluations_are_told_and_never_recommended(cls: type[Method]) -> None:
    m = make(cls, SPHERE_SPACE, 0, budget=600)
    evs = run(m, failing_sphere, 600)
    failed = [e for e in evs if not e.ok]
    assert failed, "the failure region was never sampled"
    best = m.recommend()
    assert best is not None and float(best.values["x0"]) <= 1.5
    assert m.diagnostics()["statuses"]["failed"] == len(failed)
    json.dumps(m.diagnostics())
    if cls is not RandomSearch:
        assert value_of(sphere, best) < 0.1


def test_de_failed_trials_lose_selection() -> None:
    m = make(DifferentialEvolution, SPHERE_SPACE, 0)
    assert isinstance(m, DifferentialEvolution)
    failed_members: list[int] = []
    while m.generation < 8:
        cands = m.ask(50)
        m.tell([evaluate(c, failing_sphere) for c in cands])
        if m.pop_outcomes:
            failed_members.append(sum(not o.ok for o in m.pop_outcomes))
    assert m.diagnostics()["failed_trials_rejected"] > 0
    # failed members are leftovers of the initial population: a failed trial never entered it
    assert failed_members[0] > 0
    assert all(b <= a for a, b in zip(failed_members, failed_members[1:], strict=False))
    assert failed_members[-1] < failed_members[0]


def test_de_matches_scipy_quality_on_the_same_evaluations() -> None:
    """A loose oracle for faithfulness: scipy's own DE with the same settings and number of evaluations."""
    from scipy.optimize import differential_evolution, rosen

    def ours(seed: int, budget: int) -> float:
        return best_after(DifferentialEvolution, rosenbrock, ROSEN_SPACE, seed, budget)

    theirs, mine = [], []
    for seed in range(5):
        r = differential_evolution(rosen, [(-2.0, 2.0), (-1.0, 3.0)], maxiter=20, polish=False, tol=0.0,
                                   updating="deferred", rng=seed)
        theirs.append(r.fun)
        mine.append(ours(seed, r.nfev))
    ratio = float(np.median(mine) / np.median(theirs))
    assert 0.2 < ratio < 5.0, (mine, theirs)


def test_ga_failures_lose_every_tournament() -> None:
    m = make(GeneticAlgorithm, SPHERE_SPACE, 0, population=20, tournament_size=20)  # every member competes
    assert isinstance(m, GeneticAlgorithm)
    run(m, failing_sphere, 20, batch=20)  # generation 0 told
    assert m.generation == 1
    failed = [x for x in m.population if x.outcome is not None and not x.outcome.ok]
    ok = [x.outcome.objective for x in m.population if x.outcome is not None and x.outcome.ok]
    assert failed and ok
    for _ in range(20):
        winner = m._tournament().outcome
        assert winner is not None and winner.ok and winner.objective == min(ok)


def test_deb_rules() -> None:
    fail, bad, worse, good = Outcome(False), Outcome(True, -100.0, 2.0), Outcome(True, 5.0, 0.0), Outcome(True, 1.0)
    assert not deb_better_or_equal(fail, fail) and not deb_better_or_equal(fail, bad)
    assert deb_better_or_equal(bad, fail) and deb_better_or_equal(worse, bad) and deb_better_or_equal(good, worse)
    assert not deb_better_or_equal(bad, good) and deb_better_or_equal(good, good)


def test_de_population_does_not_move_when_every_trial_fails() -> None:
    m = make(DifferentialEvolution, SPHERE_SPACE, 0)
    assert isinstance(m, DifferentialEvolution)
    m.tell([evaluate(c, sphere) for c in m.ask(1000)])  # the initial population runs
    initial = m.population.copy()
    for _ in range(3):
        m.tell([evaluate(c, lambda v: None) for c in m.ask(1000)])
    assert m.generation == 4
    assert np.array_equal(m.population, initial)
    assert m.diagnostics()["replacements"] == 0 and m.diagnostics()["failed_trials_rejected"] == 3 * m.size


def test_de_failed_initial_members_are_replaced_by_any_trial_that_ran() -> None:
    m = make(DifferentialEvolution, SPHERE_SPACE, 0)
    assert isinstance(m, DifferentialEvolution)
    m.tell([evaluate(c, lambda v: None) for c in m.ask(1000)])  # the whole initial population fails
    initial = m.population.copy()
    m.tell([evaluate(c, lambda v: None) for c in m.ask(1000)])  # a failed trial does not replace a failed parent
    assert np.array_equal(m.population, initial) and m.diagnostics()["replacements"] == 0
    m.tell([evaluate(c, sphere) for c in m.ask(1000)])
    assert all(o.ok for o in m.pop_outcomes) and m.diagnostics()["replacements"] == m.size


@pytest.mark.parametrize("cls", ALL)
def test_everything_failing_keeps_asking_and_recommends_nothing(cls: type[Method]) -> None:
    m = make(cls, SPHERE_SPACE, 0, budget=200)
    evs = run(m, lambda v: None, 200)
    assert len(evs) == 200 and m.recommend() is None


# -- determinism, batches ----------------------------------------------------------------------
def asked_sequence(cls: type[Method], seed: int, batch: int, space: DesignSpace = MIXED_SPACE,
                   budget: int = 120) -> list[tuple[Any, ...]]:
    m = make(cls, space, seed, budget=budget)
    return [space.key(e.values) for e in run(m, mixed if space is MIXED_SPACE else small, budget, batch)]


@pytest.mark.parametrize("cls", ALL)
def test_deterministic_for_a_fixed_seed_and_independent_of_batch_size(cls: type[Method]) -> None:
    a = asked_sequence(cls, 7, 4)
    assert a == asked_sequence(cls, 7, 4)
    assert a == asked_sequence(cls, 7, 1)
    assert a == asked_sequence(cls, 7, 13)
    assert a != asked_sequence(cls, 8, 4)


@pytest.mark.parametrize("cls", LEARNERS)
def test_ask_returns_fewer_while_a_generation_is_pending(cls: type[Method]) -> None:
    m = make(cls, SPHERE_SPACE, 0)
    size = int(m.diagnostics()["population"])
    first = m.ask(10 * size)
    assert len(first) == size
    assert m.ask(5) == []
    m.tell([evaluate(c, sphere) for c in first])
    assert 0 < len(m.ask(5)) <= 5


# -- discrete spaces: duplicates and exhaustion ------------------------------------------------
@pytest.mark.parametrize("cls", ALL)
def test_never_asks_a_configuration_twice_and_finishes_when_exhausted(cls: type[Method]) -> None:
    m = make(cls, SMALL_SPACE, 0, budget=1000)
    evs = run(m, small, 1000, batch=3)
    keys = [SMALL_SPACE.key(e.values) for e in evs]
    assert len(keys) == len(set(keys))
    if cls is DifferentialEvolution:
        assert m.finished  # exhausted, or stalled on evaluated configurations only
        assert m.diagnostics()["cache_hits"] > 0
    else:
        assert len(keys) == 30 and m.finished
        assert m.ask(5) == []
    assert m.recommend() == Candidate({"a": 3, "b": True, "c": "x"})


def test_random_and_ga_report_duplicates_avoided() -> None:
    r = make(RandomSearch, SMALL_SPACE, 0, initial=32)
    run(r, small, 30)
    assert r.diagnostics()["duplicates_avoided"] > 0  # Sobol points map onto the same configurations
    g = make(GeneticAlgorithm, SMALL_SPACE, 0, population=8)
    run(g, small, 30)
    assert g.diagnostics()["duplicates_avoided"] > 0
    assert g.finished and g.diagnostics()["space_exhausted"]


def test_random_supports_every_dimension_kind() -> None:
    space = DesignSpace([
        Continuous("c", 0.0, 1.0), Continuous("l", 1e-3, 1e2, log=True), Continuous("g", 0.0, 1.0, levels=5),
        Integer("i", -3, 3), Categorical("k", ("a", "b")), Boolean("b"),
    ])
    m = make(RandomSearch, space, 0, initial=16, sampler="lhs")
    cands = m.ask(40)
    assert len(cands) == 40
    for c in cands:
        assert space.validate(c.values) == c.values
    logs = np.log10([c.values["l"] for c in cands])
    assert logs.min() < -1.0 and logs.max() > 1.0  # log-uniform: both decades ends are reached


def test_unit_codec_bins_like_scipy_integrality() -> None:
    codec = UnitCodec(DesignSpace([Integer("i", 0, 3), Boolean("b"), Continuous("g", 0.0, 1.0, levels=3)]))
    assert codec.decode(np.array([0.0, 0.49, 0.34])) == {"i": 0, "b": False, "g": 0.5}
    assert codec.decode(np.array([0.99, 0.5, 1.0])) == {"i": 3, "b": True, "g": 1.0}
    values = {"i": 2, "b": True, "g": 0.5}
    assert codec.decode(codec.encode(values)) == values


# -- conformance -----------------------------------------------------------------------------
@pytest.mark.parametrize("cls", ALL)
def test_conformance_suite(cls: type[Method]) -> None:
    report = testing.check_method(cls)
    assert report.evaluations == 24 and report.best_objective is not None
    assert "deterministic for a seed" in report.checks


@pytest.fixture(scope="module")
def heat_sink_study(sample_fmu: Callable[[str], Path]) -> tuple[dict[str, Any], Path]:
    """The shipped heat_sink study on the sample twin packaged by fmus/build.py (the host compiles its
    sources on demand)."""
    fmu = sample_fmu("heat_sink")
    study = tomllib.loads((ROOT / "fmus" / "heat_sink.toml").read_text())
    study["twin"]["fmu"] = str(fmu)
    return study, fmu.parent


@pytest.mark.parametrize("cls", ALL)
def test_conformance_on_the_heat_sink_fmu(cls: type[Method], heat_sink_study: tuple[dict[str, Any], Path]) -> None:
    study, root = heat_sink_study
    result = testing.check_method_on_fmu(cls, study, root, budget=12)
    assert result.counts()["total"] == 12
    assert result.best is not None and result.best.ok


# -- properties on random small discrete spaces ------------------------------------------------
@st.composite
def discrete_spaces(draw: st.DrawFn) -> DesignSpace:
    dims: list[Any] = []
    for i in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["integer", "categorical", "boolean", "levels"]))
        if kind == "integer":
            lo = draw(st.integers(-3, 3))
            dims.append(Integer(f"d{i}", lo, lo + draw(st.integers(1, 4))))
        elif kind == "categorical":
            dims.append(Categorical(f"d{i}", tuple(range(draw(st.integers(2, 4))))))
        elif kind == "boolean":
            dims.append(Boolean(f"d{i}"))
        else:
            dims.append(Continuous(f"d{i}", 0.0, 1.0, levels=draw(st.integers(2, 4))))
    return DesignSpace(dims)


@settings(max_examples=25, deadline=None)
@given(space=discrete_spaces(), seed=st.integers(0, 1000), batch=st.integers(1, 6), fail_every=st.integers(2, 5))
def test_every_method_asks_valid_unique_configurations_until_exhausted(space: DesignSpace, seed: int, batch: int,
                                                                       fail_every: int) -> None:
    def f(v: dict[str, Any]) -> tuple[float, tuple[float, ...]] | None:
        idx = space.to_indices(v)
        if sum(idx) % fail_every == 0:
            return None
        return float(sum((i - 1) ** 2 for i in idx)), ()

    card = int(space.cardinality())
    for cls in ALL:
        m = make(cls, space, seed)
        evs = run(m, f, 10 * card + 50, batch)
        keys = [space.key(e.values) for e in evs]
        assert all(space.validate(e.values) == e.values for e in evs)
        assert len(keys) == len(set(keys)), cls.name
        assert m.finished, cls.name
        if cls is not DifferentialEvolution:  # de may stop when its population only proposes evaluated points
            assert len(keys) == card, cls.name
        assert m.ask(batch) == []
