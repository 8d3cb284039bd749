"""Probing inward from a box face the model keeps to (fmio_bayes.face_probe): when a probe is due,
how it enters a proposal, and a Hartmann6 run it rescues."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import load_benchmark
from fmio_bayes import BayesMethod
from fmio_bayes.face_probe import PROBE_STEP, face_probe

from fmi_optimizer.method import Problem
from fmi_optimizer.records import Candidate, Evaluation
from fmi_optimizer.space import Continuous, DesignSpace, Integer

pytestmark = pytest.mark.tf  # GPflow / TensorFlow models

peers = load_benchmark("bayes_vs_peers")  # the benchmark's Hartmann6 and its optimum

ELL = np.array([0.3, 0.3, 0.3])
ALL = np.array([0, 1, 2])


def test_a_proposal_on_the_incumbents_face_with_nothing_inside_is_replaced_by_a_step_inward() -> None:
    incumbent = np.array([0.4, 1.0, 0.2])
    Z = np.array([incumbent, [0.1, 0.2, 0.9], [0.9, 0.9, 0.9]])
    due = face_probe(np.array([0.45, 1.0, 0.25]), incumbent, Z, ELL, ALL)
    assert due is not None and np.allclose(due[0], [0.4, 1.0 - PROBE_STEP, 0.2]) and due[1] == 1
    lower = np.array([0.0, 0.5, 0.5])  # the lower face: the step goes up
    due = face_probe(np.array([0.0, 0.55, 0.5]), lower, lower[None, :], ELL, ALL)
    assert due is not None and np.allclose(due[0], [PROBE_STEP, 0.5, 0.5]) and due[1] == 0


def test_no_probe_when_a_point_inside_near_the_incumbent_already_shows_the_slope() -> None:
    incumbent = np.array([0.4, 1.0, 0.2])
    inside_near = np.array([0.42, 0.85, 0.2])
    assert face_probe(np.array([0.45, 1.0, 0.25]), incumbent, np.array([incumbent, inside_near]), ELL, ALL) is None
    inside_far = np.array([0.9, 0.85, 0.9])  # inside, but far away in the other dimensions: no information
    assert face_probe(np.array([0.45, 1.0, 0.25]), incumbent, np.array([incumbent, inside_far]), ELL, ALL) is not None


def test_no_probe_off_the_face_or_on_a_column_that_is_not_continuous() -> None:
    incumbent = np.array([0.4, 1.0, 0.2])
    Z = incumbent[None, :]
    assert face_probe(np.array([0.45, 0.9, 0.25]), incumbent, Z, ELL, ALL) is None  # the model leaves the face
    assert face_probe(np.array([0.45, 1.0, 0.25]), np.array([0.4, 0.9, 0.2]), Z, ELL, ALL) is None  # incumbent inside
    assert face_probe(np.array([0.45, 1.0, 0.25]), incumbent, Z, ELL, np.array([0, 2])) is None  # column 1 discrete


def _face_hugging(monkeypatch: pytest.MonkeyPatch, method: BayesMethod, target: dict[str, float]) -> None:
    """Make the GP's proposal ``target`` whatever the data (the proposal machinery is tested elsewhere)."""
    from fmio_bayes.engine import Engine, Proposal

    def propose(self: Engine, q: int, data: Any, *args: Any, **kwargs: Any) -> Proposal:
        self.fit(data)
        return Proposal([method.enc.encode(target)], [-3.0], {}, 0.0, 0.0)

    monkeypatch.setattr(Engine, "propose", propose)


def test_the_method_probes_once_records_it_and_does_not_probe_again_once_the_slope_is_known(
        monkeypatch: pytest.MonkeyPatch) -> None:
    space = DesignSpace([Continuous("x", 0.0, 1.0), Continuous("gain", 1.0, 100.0, log=True), Integer("n", 1, 5)])
    method = BayesMethod(Problem(space, budget_evaluations=40), {"n_initial": 1, "face_probe": True}, seed=0)
    method._design = []
    told = [({"x": 0.3, "gain": 100.0, "n": 2}, -1.0), ({"x": 0.7, "gain": 100.0, "n": 4}, -0.5),
            ({"x": 0.5, "gain": 2.0, "n": 3}, 1.0), ({"x": 0.1, "gain": 10.0, "n": 1}, 0.5)]
    method.tell([Evaluation(Candidate(v), "ok", objective=f) for v, f in told])
    _face_hugging(monkeypatch, method, {"x": 0.32, "gain": 100.0, "n": 2})
    probe = method.ask(1)[0].values
    assert probe["x"] == pytest.approx(0.3) and probe["n"] == 2
    assert probe["gain"] == pytest.approx(10 ** (2 - 2 * PROBE_STEP))  # a step inward on the log scale
    assert method.diagnostics()["face_probes"] == [{"after_evaluations": 4, "dimension": "gain", "face": "upper"}]
    assert method.diagnostics()["iterations"][-1]["face_probe"] == "gain"
    from fmio_bayes import fmio_report_sections

    report = "".join(fmio_report_sections(study={"method": "bayes"}, result={"diagnostics": method.diagnostics()}) or [])
    assert "Probes inward from a bound" in report and "after 4 evaluations: gain from its upper bound" in report
    method.tell([Evaluation(Candidate(probe), "ok", objective=-0.8)])  # the face is better: the slope is known
    assert method.ask(1)[0].values == {"x": 0.32, "gain": pytest.approx(100.0), "n": 2}
    assert len(method.diagnostics()["face_probes"]) == 1


def test_the_option_turns_probing_off(monkeypatch: pytest.MonkeyPatch) -> None:
    space = DesignSpace([Continuous("x", 0.0, 1.0), Continuous("y", 0.0, 1.0)])
    method = BayesMethod(Problem(space, budget_evaluations=40), {"n_initial": 1, "face_probe": False}, seed=0)
    method._design = []
    method.tell([Evaluation(Candidate({"x": x, "y": y}), "ok", objective=x - y)
                 for x, y in ((0.3, 1.0), (0.8, 1.0), (0.5, 0.2))])
    _face_hugging(monkeypatch, method, {"x": 0.35, "y": 1.0})
    assert method.ask(1)[0].values == {"x": pytest.approx(0.35), "y": pytest.approx(1.0)}
    assert method.diagnostics()["face_probes"] == []


@pytest.mark.slow
def test_hartmann6_seed_50_reaches_the_global_basin_by_probing_the_face_it_would_have_resolved() -> None:
    """Without probes this run (escape on, 60 evaluations) resolves a "basin" on the face x6 = 1 at
    -1.70, from which L-BFGS-B walks straight down to the global minimum, and ends at regret 0.127
    (docs/bench/bayes.md). With them it finds the global basin."""
    hartmann6 = peers.TASKS["hartmann6"]  # the benchmark's function and optimum
    space = DesignSpace([Continuous(f"x{i}", 0.0, 1.0) for i in range(6)])
    method = BayesMethod(Problem(space, budget_evaluations=60), {"escape": True, "face_probe": True}, seed=50)
    best = np.inf
    for _ in range(60):
        c = method.ask(1)[0]
        f = hartmann6.f(np.array([c.values[f"x{i}"] for i in range(6)]))
        method.tell([Evaluation(Candidate(c.values), "ok", objective=f)])
        best = min(best, f)
    assert method.diagnostics()["face_probes"]
    assert best - hartmann6.optimum < 0.05
