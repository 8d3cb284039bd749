"""The ``qio`` method through its ask/tell loop on small analytic black boxes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dimod
import numpy as np
import pytest
from conftest import ROOT
from fmio_qio import QioMethod

from fmi_optimizer.errors import StudyError
from fmi_optimizer.method import Method, Problem
from fmi_optimizer.records import Candidate, Evaluation
from fmi_optimizer.space import Boolean, Categorical, Continuous, DesignSpace, Integer

Objective = Callable[[dict[str, Any], int], "tuple[float, tuple[float, ...]] | None"]


def run(method: Method, f: Objective, budget: int, batch: int = 1) -> list[Evaluation]:
    """The host loop in miniature: ask, evaluate (``None`` = failed run), tell everything."""
    done: list[Evaluation] = []
    while len(done) < budget and not method.finished:
        cands = method.ask(min(batch, budget - len(done)))
        if not cands:
            break
        evs = []
        for c in cands:
            out = f(c.values, c.replication)
            if out is None:
                evs.append(Evaluation(c, "failed", error="simulated failure"))
            else:
                evs.append(Evaluation(c, "ok", objective=out[0], constraints=out[1], wall_seconds=0.01))
        method.tell(evs)
        done += evs
    return done


def bocs_quadratic(n: int, seed: int) -> tuple[DesignSpace, Callable[[np.ndarray], float], float]:
    """The BOCS binary quadratic benchmark (Baptista & Poloczek 2018, quad_mat with alpha = 1, lambda = 1e-4)."""
    rng = np.random.default_rng(seed)
    i = np.arange(1, n + 1)
    q = rng.standard_normal((n, n)) * np.exp(-((i[:, None] - i[None, :]) ** 2) / 1.0)

    def f(x: np.ndarray) -> float:
        return float(x @ q @ x + 1e-4 * x.sum())

    allx = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
    fstar = float((np.einsum("ri,ij,rj->r", allx, q, allx) + 1e-4 * allx.sum(1)).min())
    return DesignSpace([Boolean(f"x{j}") for j in range(n)]), f, fstar


def as_bits(values: dict[str, Any], n: int) -> np.ndarray:
    return np.array([int(values[f"x{j}"]) for j in range(n)])


def best_ok(evs: list[Evaluation]) -> float:
    return min(e.objective for e in evs if e.ok and e.objective is not None)


def keys(evs: list[Evaluation]) -> list[tuple[Any, ...]]:
    return [tuple(sorted(e.candidate.values.items())) for e in evs if e.candidate.replication == 0]


# -- contract --------------------------------------------------------------------------------------
def test_registered_through_the_plugin_hook() -> None:
    from fmio_qio import fmio_register_methods

    from fmi_optimizer.registry import MethodRegistry

    reg = MethodRegistry()
    fmio_register_methods(reg)
    assert reg.get("qio") is QioMethod


def test_conformance_suite() -> None:
    testing = pytest.importorskip("fmi_optimizer.testing")
    testing.check_method(QioMethod)


def test_fit_scores_discrete_spaces_high_and_refuses_continuous() -> None:
    discrete = DesignSpace([Integer("n", 1, 20), Categorical("m", ("al", "cu", "steel")),
                            Continuous("h", 0.01, 0.06, levels=16), Boolean("fan")])
    fit = QioMethod.fit(Problem(discrete, budget_evaluations=200))
    assert fit.score >= 0.9 and "configurations" in fit.reason
    mixed = DesignSpace([Integer("n", 1, 20), Continuous("h", 0.01, 0.06)])
    fit = QioMethod.fit(Problem(mixed))
    assert fit.score == 0.0 and "'h' is continuous" in fit.reason
    with pytest.raises(StudyError, match="cannot run"):
        QioMethod(Problem(mixed))
    small = DesignSpace([Boolean("a"), Boolean("b")])
    assert QioMethod.fit(Problem(small, budget_evaluations=50)).score < 0.5


def test_fit_steps_back_when_the_model_would_starve_a_fast_twin_of_evaluations() -> None:
    space = DesignSpace([Integer("n", 1, 100), Categorical("m", ("al", "cu", "steel")), Boolean("fan"),
                         Continuous("h", 0.01, 0.06, levels=16)])
    fast = Problem(space, budget_evaluations=2000, budget_seconds=30.0, seconds_per_evaluation=0.002)
    fit = QioMethod.fit(fast)
    assert fit.score < 0.1 and "model-free method evaluates 2000" in fit.reason
    slow_twin = Problem(space, budget_evaluations=2000, budget_seconds=30.0, seconds_per_evaluation=1.0)
    assert QioMethod.fit(slow_twin).score >= 0.9


def test_unknown_and_invalid_options_are_rejected() -> None:
    p = Problem(DesignSpace([Boolean("a"), Boolean("b")]))
    with pytest.raises(StudyError, match="unknown option"):
        QioMethod(p, {"num_reeds": 3})
    with pytest.raises(StudyError, match="num_sweeps"):
        QioMethod(p, {"num_sweeps": 0})
    with pytest.raises(StudyError, match="accepted"):
        QioMethod(p, {"postprocess": "magic"})


# -- the loop ---------------------------------------------------------------------------------------
def evaluations_to_target(evs: list[Evaluation], target: float) -> int:
    for i, e in enumerate(evs):
        if e.ok and e.objective is not None and e.objective <= target:
            return i + 1
    return 10**6


@pytest.mark.slow
def test_loop_beats_random_search_on_bocs_quadratic() -> None:
    """Evaluations to come within 1 % of the optimum (unique evaluations), three fixed seeds."""
    from fmio_baselines import RandomSearch

    n = 10
    totals = {"qio": 0, "random": 0}
    for seed in range(3):
        space, f, fstar = bocs_quadratic(n, seed)

        def obj(v: dict[str, Any], r: int, f: Callable[[np.ndarray], float] = f) -> tuple[float, tuple[float, ...]]:
            return f(as_bits(v, n)), ()

        target = fstar + 0.01 * abs(fstar)
        qio = run(QioMethod(Problem(space, budget_evaluations=60), seed=seed), obj, 60)
        rnd = run(RandomSearch(Problem(space, budget_evaluations=300), seed=seed), obj, 300)
        assert len(set(keys(qio))) == len(qio) == 60  # unique evaluations only
        totals["qio"] += evaluations_to_target(qio, target)
        totals["random"] += evaluations_to_target(rnd, target)
        assert evaluations_to_target(qio, target) <= 60  # qio reaches the target within 60 of 1024 configs
    assert totals["qio"] < totals["random"]


def test_batches_are_distinct_and_exhaust_a_tiny_space_without_duplicates() -> None:
    space = DesignSpace([Boolean("a"), Boolean("b"), Categorical("c", ("x", "y"))])
    m = QioMethod(Problem(space), {"n_initial": 3}, seed=4)
    evs = run(m, lambda v, r: (float(v["a"]) + 2 * float(v["b"]) + (v["c"] == "y"), ()), budget=20, batch=2)
    assert len(evs) == 8 and len(set(keys(evs))) == 8
    assert m.finished and m.ask(2) == []
    d = m.diagnostics()
    counts = d["duplicates"]
    assert counts["annealer_duplicates"] > 0  # the annealer kept re-proposing known points ...
    assert counts["next_best_fills"] + counts["local_moves"] + counts["random_fills"] > 0  # ... and the rule filled in
    json.dumps(d)


def test_mixed_space_with_onehot_and_domain_wall_stays_valid_and_reports() -> None:
    space = DesignSpace([Categorical("mat", ("al", "cu", "steel", "ti")), Integer("n", 2, 9),
                         Continuous("h", 0.01, 0.05, levels=6), Boolean("fan")])
    target = {"mat": "cu", "n": 7, "h": 0.034, "fan": True}

    def obj(v: dict[str, Any], r: int) -> tuple[float, tuple[float, ...]]:
        return (float(v["mat"] != "cu") * 3 + abs(v["n"] - 7) + abs(v["h"] - 0.034) * 100 + (not v["fan"]), ())

    m = QioMethod(Problem(space), {"encodings": {"n": "domain_wall", "h": "onehot"}}, seed=0)
    evs = run(m, obj, budget=40, batch=4)
    for e in evs:
        space.validate(e.candidate.values)
    best = m.recommend()
    assert best is not None and obj(best.values, 0)[0] <= obj(target, 0)[0] + 1.01
    d = m.diagnostics()
    assert d["encoding"]["n_bits"] == 4 + 7 + 6 + 1
    it = d["iterations"][-1]
    for key in ("train_rmse", "validation_rmse_last20", "penalty_weights", "infeasible_sample_share",
                "anneal_seconds", "twin_seconds_since_last", "seconds_per_proposed_point"):
        assert key in it
    assert "encoding_max" in it["penalty_weights"]
    json.dumps(d)


def test_factorization_machine_surrogate_runs_the_loop() -> None:
    n = 8
    space, f, fstar = bocs_quadratic(n, 5)
    m = QioMethod(Problem(space), {"surrogate": "fm", "fm_epochs": 200}, seed=1)
    evs = run(m, lambda v, r: (f(as_bits(v, n)), ()), budget=30, batch=3)
    assert len(set(keys(evs))) == 30
    assert m.diagnostics()["surrogate"] == "fm"
    assert best_ok(evs) - fstar <= 0.05 * abs(fstar)


def test_constraints_get_their_own_surrogate_and_the_best_is_feasible() -> None:
    n = 12
    space = DesignSpace([Boolean(f"x{j}") for j in range(n)])
    w = np.linspace(1.0, 2.0, n)

    def obj(v: dict[str, Any], r: int) -> tuple[float, tuple[float, ...]]:
        x = as_bits(v, n)
        return -float(w @ x), (float(x.sum() - 4),)  # wants every bit on, may only use 4

    m = QioMethod(Problem(space, constraint_names=("count",)), seed=2)
    evs = run(m, obj, budget=60, batch=2)
    best = m.recommend()
    assert best is not None
    assert obj(best.values, 0)[1][0] <= 0
    assert obj(best.values, 0)[0] <= -(w[-4:].sum()) + 0.5  # close to the best 4-bit choice
    d = m.diagnostics()
    weights = [it["penalty_weights"] for it in d["iterations"]]
    assert any("count" in wt for wt in weights)
    shares = [b["violated_share_by_constraint"]["count"] for b in d["model_batches_on_twin"]]
    assert shares and 0.0 < max(shares)  # recorded for every batch the annealer proposed
    late = [e for e in evs[-20:] if e.ok]
    assert sum(e.feasible for e in late) >= len(late) // 2  # the penalty steers proposals to feasibility


def test_failed_evaluations_are_learnt_as_infeasible_never_as_objective_values() -> None:
    n = 10
    space, f, _ = bocs_quadratic(n, 7)

    def obj(v: dict[str, Any], r: int) -> tuple[float, tuple[float, ...]] | None:
        x = as_bits(v, n)
        if x[0] == 1 and x[1] == 1:
            return None  # the "twin" crashes in this corner
        return f(x), ()

    m = QioMethod(Problem(space), seed=3)
    evs = run(m, obj, budget=50, batch=2)
    failed = [e for e in evs if not e.ok]
    assert failed, "the test needs some failures to mean anything"
    assert len(set(keys(evs))) == len(evs)  # a failed pattern is never proposed again
    d = m.diagnostics()
    assert d["evaluations"]["failed"] == len(failed)
    m.ask(1)  # refits on everything told so far
    last = m.diagnostics()["iterations"][-1]
    assert last["n_failed"] == len(failed)
    assert last["n_train"] == len(evs) - len(failed)  # only runs that produced a number train the objective
    assert any("failure" in it["penalty_weights"] for it in d["iterations"])
    best = m.recommend()
    assert best is not None and not (best.values["x0"] and best.values["x1"])
    model_phase = [e for e in evs if e.candidate.tag == "model"]
    assert sum(not e.ok for e in model_phase) / len(model_phase) < 0.25  # random would fail 25 %


# -- direct mode -------------------------------------------------------------------------------------
def _direct_space() -> DesignSpace:
    return DesignSpace([Categorical("mat", ("al", "cu", "steel")), Integer("n", 0, 3), Boolean("fan")])


def _user_bqm(enc_labels: list[str]) -> dimod.BinaryQuadraticModel:
    """A user model preferring mat=steel (bits mat[2]), n as large as possible, fan off."""
    lin = {lab: 0.0 for lab in enc_labels}
    lin["mat[2]"] = -3.0
    lin["mat[0]"] = -1.0
    for i in range(3):
        lin[f"n[{i}]"] = -1.0
    lin["fan[0]"] = 0.5
    return dimod.BinaryQuadraticModel(lin, {("mat[0]", "n[0]"): 0.2}, 0.0, dimod.BINARY)


def twin_direct(v: dict[str, Any], r: int) -> tuple[float, tuple[float, ...]]:
    return float({"al": 1, "cu": 2, "steel": 0}[v["mat"]] - v["n"] + 0.5 * v["fan"]), ()


def test_direct_mode_anneals_a_bqm_file_and_validates_the_top_candidates(tmp_path: Path) -> None:
    from fmio_qio.encoding import Encoding

    enc = Encoding(_direct_space())
    path = tmp_path / "model.json"
    path.write_text(json.dumps(_user_bqm(enc.labels()).to_serializable()))
    m = QioMethod(Problem(_direct_space()), {"bqm_file": str(path), "direct_top": 5}, seed=0)
    first = m.ask(1)
    assert first[0].values == {"mat": "steel", "n": 3, "fan": False}
    m.tell([Evaluation(first[0], "ok", objective=twin_direct(first[0].values, 0)[0])])
    evs = run(m, twin_direct, budget=20, batch=2)
    assert len(evs) == 4 and m.finished  # five validated in total, then done
    d = m.diagnostics()
    assert d["mode"] == "direct" and d["direct"]["validated"] == 5
    assert d["direct"]["spearman_model_vs_twin"] is not None
    assert m.recommend() == Candidate({"mat": "steel", "n": 3, "fan": False}, 0, "direct")


def test_direct_mode_with_a_builder_callable_and_bad_inputs(tmp_path: Path) -> None:
    calls: list[int] = []

    def builder(enc: Any, history: Any) -> dimod.BinaryQuadraticModel:
        calls.append(len(history))
        return _user_bqm(enc.labels())

    m = QioMethod(Problem(_direct_space()), {"bqm_builder": builder, "direct_top": 4}, seed=0)
    evs = run(m, twin_direct, budget=10, batch=2)
    assert len(evs) == 4 and calls == [0, 2]
    with pytest.raises(StudyError, match="does not exist"):
        QioMethod(Problem(_direct_space()), {"bqm_file": str(tmp_path / "nope.json")})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(dimod.BinaryQuadraticModel({"zz": 1.0}, {}, 0.0, "BINARY").to_serializable()))
    m = QioMethod(Problem(_direct_space()), {"bqm_file": str(bad)})
    with pytest.raises(StudyError, match="'zz' is not a bit"):
        m.ask(1)


# -- noise ------------------------------------------------------------------------------------------
def _noisy_run(noise_sd: float) -> dict[str, Any]:
    n = 8
    space, f, _ = bocs_quadratic(n, 11)

    def obj(v: dict[str, Any], r: int) -> tuple[float, tuple[float, ...]]:
        rng = np.random.default_rng(hash((tuple(as_bits(v, n)), r)) % 2**32)
        return f(as_bits(v, n)) + noise_sd * float(rng.standard_normal()), ()

    m = QioMethod(Problem(space, noisy=True), seed=0)
    evs = run(m, obj, budget=40, batch=2)
    assert any(e.candidate.replication > 0 for e in evs)  # the incumbent was re-evaluated
    return m.diagnostics()


def test_noisy_twin_warns_when_noise_dwarfs_improvements() -> None:
    loud = _noisy_run(5.0)
    assert loud["noise"]["replicated_points"] >= 1
    assert "noise" in loud["noise"]["warning"] and loud["noise"]["warning"] in loud["warnings"]
    quiet = _noisy_run(1e-4)
    assert quiet["noise"]["noise_sd"] is not None and quiet["noise"]["warning"] == ""


# -- a real FMU through the host's study loop ---------------------------------------------------------
@pytest.mark.slow
def test_runs_on_the_heat_sink_twin_through_the_study_loop(sample_fmu: Callable[[str], Path]) -> None:
    import tomllib

    testing = pytest.importorskip("fmi_optimizer.testing")
    fmu = sample_fmu("heat_sink")
    study = tomllib.loads((ROOT / "fmus" / "heat_sink.toml").read_text())
    study["twin"]["fmu"] = str(fmu)
    result = testing.check_method_on_fmu(QioMethod, study, fmu.parent, budget=30)
    assert result.best is not None and result.best.feasible
    d = result.diagnostics
    assert d["encoding"]["n_bits"] >= 40 and d["iterations"]


@pytest.mark.parametrize("opts", [{}, {"constraint_select": "mean", "thompson_neighbours": False}])
def test_both_constraint_selection_rules_end_feasible_and_report_neighbour_picks(opts: dict[str, Any]) -> None:
    """Default: constrained Thompson sampling over the annealed samples plus the incumbent's neighbourhood;
    ``"mean"``: the lowest-energy sample the posterior means call feasible (the earlier rule)."""
    n = 12
    space = DesignSpace([Boolean(f"x{j}") for j in range(n)])
    w = np.linspace(1.0, 2.0, n)

    def obj(v: dict[str, Any], r: int) -> tuple[float, tuple[float, ...]]:
        x = as_bits(v, n)
        return -float(w @ x), (float(x.sum() - 4),)

    m = QioMethod(Problem(space, constraint_names=("count",)), opts, seed=5)
    run(m, obj, budget=50)
    best = m.recommend()
    assert best is not None and obj(best.values, 0)[1][0] <= 0
    picks = m.diagnostics()["duplicates"]["neighbour_picks"]
    assert (picks > 0) if not opts else (picks == 0)


def _two_basins(n: int) -> tuple[DesignSpace, Objective]:
    """Integers 0..4: a wide local basin around all-zeros (value = variables changed) and a narrow global
    one at all-fours (-1 there): all-zeros is a local optimum for every change of up to n - 1 variables."""
    space = DesignSpace([Integer(f"k{j}", 0, 4) for j in range(n)])

    def obj(v: dict[str, Any], r: int) -> tuple[float, tuple[float, ...]]:
        x = np.array([v[f"k{j}"] for j in range(n)])
        return (-1.0 if (x == 4).all() else float((x != 0).sum())), ()

    return space, obj


def test_a_stalled_run_restarts_with_a_model_of_the_fresh_designs_only() -> None:
    """With ``restart_after`` = 15, once 15 evaluations pass without a better incumbent a fresh search starts:
    a new space-filling design (tagged ``restart``), then model steps fitted on the fresh search's designs
    alone; off (``restart_after = 0``), no restart and every fit learns from all designs seen."""
    n = 6
    space, obj = _two_basins(n)

    def trace(opts: dict[str, Any]) -> tuple[QioMethod, list[str], list[tuple[int, int]]]:
        m = QioMethod(Problem(space), opts, seed=3)
        tags: list[str] = []
        fits: list[tuple[int, int]] = []  # (designs fitted on, distinct successful designs told)
        while len(m.history) < 90:
            before = len(m.log.records)
            (c,) = m.ask(1)
            if len(m.log.records) > before:
                fits.append((m.log.records[-1]["n_train"], m.book.distinct_ok()))
            tags.append(c.tag)
            m.tell([Evaluation(c, "ok", objective=obj(c.values, 0)[0], constraints=())])
        return m, tags, fits

    on, tags_on, fits_on = trace({"restart_after": 15})
    off, tags_off, fits_off = trace({"restart_after": 0})
    report = on.diagnostics()["restarts"]
    assert report["started"] >= 1 and off.diagnostics()["restarts"]["started"] == 0
    first = tags_on.index("restart")
    assert tags_on[first:first + on.n_initial] == ["restart"] * on.n_initial and "restart" not in tags_off
    assert all(used == told for used, told in fits_off)
    assert any(used < told for used, told in fits_on)  # fitted on the fresh search's designs only
    # the incumbent is never lost: the run recommends its overall best
    assert obj(on.recommend().values, 0)[0] <= min(e.objective for e in on.history)  # type: ignore[union-attr,type-var]


def test_restart_after_is_checked() -> None:
    space, _ = _two_basins(3)
    with pytest.raises(StudyError, match="restart_after"):
        QioMethod(Problem(space), {"restart_after": -1})
