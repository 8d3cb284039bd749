"""The ``ranking`` method through ask/tell: CRN seeds, parallel rounds, failures, diagnostics, API."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from typing import Any

import fmio_ranking
import numpy as np
import pytest
from fmio_ranking import RankingMethod, select_best
from fmio_ranking.ledger import BLOCK

from fmi_optimizer.errors import StudyError
from fmi_optimizer.method import Problem
from fmi_optimizer.records import Candidate, Evaluation
from fmi_optimizer.registry import MethodRegistry
from fmi_optimizer.space import DesignSpace, Integer

DELTA = 1 / math.sqrt(10)
SPACE = DesignSpace([Integer("policy", 0, 9)])


def problem(k: int = 5, noisy: bool = True) -> Problem:
    return Problem(SPACE, noisy=noisy, scenarios=tuple((f"p{i}", {"policy": i}) for i in range(k)))


def toy(mu: list[float], seed: int = 0, rho: float = 0.0) -> Callable[[dict[str, Any], int], float]:
    """An instant stochastic twin: replication r of every scenario shares the common part (CRN)."""

    def sample(values: dict[str, Any], r: int) -> float:
        i = int(values["policy"])
        common = np.random.default_rng([seed, r]).standard_normal()
        own = np.random.default_rng([seed, r, i + 1]).standard_normal()
        return float(mu[i] + math.sqrt(rho) * common + math.sqrt(1 - rho) * own)

    return sample


def evaluate(sample: Callable[[dict[str, Any], int], float], c: Candidate) -> Evaluation:
    y = sample(c.values, c.replication)
    return Evaluation(c, "ok", kpis={"y": y}, objective=y)


def drive(method: RankingMethod, sample: Callable[[dict[str, Any], int], float], n: int, shuffle: int | None = None) -> None:
    """The host loop: ask up to n, evaluate, tell (optionally in a shuffled order)."""
    while not method.finished:
        cands = method.ask(n)
        assert cands, "the method stalled"
        evs = [evaluate(sample, c) for c in cands]
        if shuffle is not None:
            random.Random(shuffle).shuffle(evs)
        method.tell(evs)


def test_plugin_registers_the_method() -> None:
    reg = MethodRegistry()
    fmio_ranking.fmio_register_methods(reg)
    assert reg.get("ranking") is RankingMethod
    caps = RankingMethod.capabilities
    assert caps.noisy and caps.needs_scenarios and caps.batch


def test_fit_scores() -> None:
    assert RankingMethod.fit(problem()).score == pytest.approx(0.9)
    assert RankingMethod.fit(Problem(SPACE, noisy=True)).score == 0.0
    assert 0.0 < RankingMethod.fit(problem(noisy=False)).score < 0.9


def test_options_are_validated() -> None:
    with pytest.raises(StudyError, match="unknown option"):
        RankingMethod(problem(), {"procedure": "kn", "indifference_zone": 0.3, "bogus": 1})
    with pytest.raises(StudyError, match="indifference_zone"):
        RankingMethod(problem(), {"procedure": "kn"})
    assert RankingMethod(problem(), {}).options.procedure == "izfree"  # no delta: the IZ-free default
    assert RankingMethod(problem(), {"indifference_zone": 0.2}).options.procedure == "kn"
    with pytest.raises(StudyError, match="accepted"):
        RankingMethod(problem(), {"procedure": "magic"})
    with pytest.raises(StudyError, match="budget"):
        RankingMethod(problem(), {"procedure": "ocba"})
    with pytest.raises(StudyError, match="at least 2"):
        RankingMethod(problem(1), {"procedure": "izfree"})


def test_common_random_numbers_share_replications_across_scenarios() -> None:
    m = RankingMethod(problem(5), {"procedure": "kn", "indifference_zone": DELTA})
    first = m.ask(1000)
    assert len(first) == 5 * 10
    by_rep: dict[int, set[str]] = {}
    for c in first:
        by_rep.setdefault(c.replication, set()).add(c.tag)
        assert c.values == {"policy": int(c.tag[1:])}
    assert sorted(by_rep) == list(range(10))
    assert all(tags == {f"p{i}" for i in range(5)} for tags in by_rep.values())


def test_independent_sampling_for_rinott_uses_disjoint_replications() -> None:
    m = RankingMethod(problem(5), {"procedure": "rinott", "indifference_zone": DELTA})
    reps = [c.replication for c in m.ask(1000)]
    assert len(reps) == len(set(reps)) == 50


def test_stages_ask_equal_increments_per_survivor() -> None:
    m = RankingMethod(problem(5), {"procedure": "kn", "indifference_zone": DELTA, "increment": 3})
    sample = toy([0, DELTA, DELTA, DELTA, DELTA], seed=1)
    m.tell([evaluate(sample, c) for c in m.ask(1000)])
    while not m.machine.done:
        stage = m.ask(1000)
        counts = {c.tag: 0 for c in stage}
        for c in stage:
            counts[c.tag] += 1
        assert set(counts.values()) == {3}
        assert set(counts) == {m.names[i] for i in np.flatnonzero(m.machine.alive)}
        m.tell([evaluate(sample, c) for c in stage])


def test_kn_with_crn_eliminates_at_the_first_look_with_paired_variances() -> None:
    """Under CRN the first look (r = n0) already uses the paired first-stage variances: strongly correlated
    outputs (sd 3, rho 0.99) separate a gap of 1 at once; with independent seeds the same gap cannot."""
    base = toy([0.0, 1 / 3, 1 / 3], seed=5, rho=0.99)

    def sample(values: dict[str, Any], r: int) -> float:
        return 3.0 * base(values, r)

    firsts = {}
    for crn in (True, False):
        m = RankingMethod(problem(3), {"procedure": "kn", "indifference_zone": 0.5, "crn": crn})
        drive(m, sample, 1000)
        d = m.diagnostics()
        assert d["selected"] == "p0"
        firsts[crn] = d["eliminations"][0]["observations"]
    assert firsts[True] == 10
    assert firsts[False] > 10


@pytest.mark.parametrize("procedure", ["kn", "nsgs", "rinott", "izfree", "ocba", "subset"])
def test_parallel_rounds_select_like_sequential(procedure: str) -> None:
    opts = {"procedure": procedure, "indifference_zone": DELTA, "budget": 400, "validation": 4, "max_observations": 300}
    sample = toy([0.1, 0.0, DELTA, 0.05, 2 * DELTA, 0.2], seed=11, rho=0.3)
    runs = []
    for n, shuffle in ((1, None), (7, 1), (10_000, 2)):
        m = RankingMethod(problem(6), opts)
        drive(m, sample, n, shuffle)
        d = m.diagnostics()
        runs.append((d["selected"], d["eliminations"], {k: v["mean"] for k, v in d["scenarios"].items()},
                     d["replications_total"], d["validation"]["mean"]))
    assert runs[0] == runs[1] == runs[2]


def test_finished_after_validation_and_recommendation() -> None:
    m = RankingMethod(problem(4), {"procedure": "kn", "indifference_zone": 0.5, "validation": 6})
    sample = toy([0.0, 2.0, 2.0, 2.0], seed=5)
    while not m.machine.done:
        m.tell([evaluate(sample, c) for c in m.ask(100)])
    assert not m.finished
    val = m.ask(100)
    assert len(val) == 6 and {c.tag for c in val} == {"p0"}
    assert all(c.replication >= BLOCK for c in val)  # fresh seeds, never used in the selection
    m.tell([evaluate(sample, c) for c in val])
    assert m.finished and m.ask(10) == []
    rec = m.recommend()
    assert rec is not None and rec.tag == "p0" and rec.values == {"policy": 0}
    d = m.diagnostics()
    json.dumps(d)
    assert d["validation"]["replications"] == 6
    assert d["selected"] == "p0" and d["possibly_best"] == ["p0"]
    assert "PCS >= 0.95" in d["guarantee"]
    assert d["scenarios"]["p0"]["status"] == "selected"
    assert all("eliminated" in d["scenarios"][f"p{i}"]["status"] for i in (1, 2, 3))


def test_failed_replication_is_retried_with_a_fresh_seed_and_reported() -> None:
    base = toy([0.0, 1.0, 1.0], seed=2)
    calls: list[tuple[int, int]] = []

    def flaky(values: dict[str, Any], r: int) -> float:
        calls.append((int(values["policy"]), r))
        if int(values["policy"]) == 1 and r == 3:
            raise RuntimeError("solver diverged")
        return base(values, r)

    sel = select_best(flaky, {f"p{i}": {"policy": i} for i in range(3)}, {"indifference_zone": 0.5})
    assert (1, 3) in calls and (1, 3 + BLOCK) in calls
    d = sel.diagnostics
    assert d["failures"] == [
        {"scenario": "p1", "slot": 3, "replication": 3, "status": "failed",
         "error": "RuntimeError: solver diverged", "action": "retried with a fresh seed"}
    ]
    assert d["scenarios"]["p1"]["failed_replications"] == 1
    assert sel.name == "p0"


def test_scenario_failing_every_time_is_dropped_never_selected() -> None:
    base = toy([1.0, 0.0, 1.0], seed=3)

    def broken(values: dict[str, Any], r: int) -> float:
        if int(values["policy"]) == 1:
            raise RuntimeError("crash")
        return base(values, r)

    sel = select_best(broken, {f"p{i}": {"policy": i} for i in range(3)}, {"indifference_zone": 0.5})
    assert sel.name == "p0"
    d = sel.diagnostics
    assert "dropped" in d["scenarios"]["p1"]["status"]
    assert "dropped for failures" in d["guarantee"]
    assert all(f["scenario"] == "p1" for f in d["failures"])
    with pytest.raises(RuntimeError, match="crash"):
        select_best(broken, {f"p{i}": {"policy": i} for i in range(3)}, {"indifference_zone": 0.5}, on_error="raise")


def test_status_ok_without_objective_is_a_failure_not_a_value() -> None:
    m = RankingMethod(problem(2), {"procedure": "kn", "indifference_zone": 1.0, "retries": 0})
    first = m.ask(100)
    bad = first[0]
    evs = [Evaluation(bad, "ok", objective=None)] + [evaluate(toy([0, 1]), c) for c in first[1:]]
    m.tell(evs)
    d = m.diagnostics()
    assert d["failures"][0]["status"] == "ok-without-finite-objective"
    assert d["selected"] == ("p1" if bad.tag == "p0" else "p0")


def test_unknown_evaluations_are_counted_not_used() -> None:
    m = RankingMethod(problem(2), {"procedure": "kn", "indifference_zone": 1.0})
    m.tell([Evaluation(Candidate({"policy": 0}, 999, "p0"), "ok", objective=1.0)])
    assert m.diagnostics()["ignored_evaluations"] == 1


def test_normality_check_warns_on_skewed_outputs() -> None:
    rng_mu = [0.0, 0.5, 0.5, 0.5]

    def skewed(values: dict[str, Any], r: int) -> float:
        z = np.random.default_rng([9, r, int(values["policy"])]).standard_normal()
        return float(rng_mu[int(values["policy"])] + math.exp(2.5 * z))

    opts = {"procedure": "subset", "n0": 30}
    systems = {f"p{i}": {"policy": i} for i in range(4)}
    assert select_best(skewed, systems, opts).diagnostics["normality"]["warning"] is not None
    assert select_best(toy(rng_mu, seed=4), systems, opts).diagnostics["normality"]["warning"] is None


def test_select_best_maximize_and_batching() -> None:
    sample = toy([0.0, 0.0, 1.5, 0.0], seed=8)
    sel = select_best(sample, {f"p{i}": {"policy": i} for i in range(4)},
                      {"procedure": "kn", "indifference_zone": 0.5, "batch": 3}, maximize=True, parallel=16)
    assert sel.name == "p2"
    d = sel.diagnostics
    assert d["batch"] == 3
    assert all(s["replications"] == 3 * s["observations"] for s in d["scenarios"].values())


def test_ocba_spends_exactly_its_budget() -> None:
    sel = select_best(toy([0.3, 0.0, 0.6, 0.9], seed=6), {f"p{i}": {"policy": i} for i in range(4)},
                      {"procedure": "ocba", "budget": 200, "validation": 0})
    d = sel.diagnostics
    assert sum(s["observations"] for s in d["scenarios"].values()) == 200
    assert "no guarantee" in d["guarantee"]


def test_rinott_and_nsgs_report_simultaneous_mcb_intervals() -> None:
    sel = select_best(toy([0.0, 1.0, 0.2], seed=12), {f"p{i}": {"policy": i} for i in range(3)},
                      {"procedure": "nsgs", "indifference_zone": 0.5})
    d = sel.diagnostics
    assert d["mcb_simultaneous"] is True
    lo, hi = d["mcb_intervals"][d["selected"]]
    assert lo <= 0.0 <= hi
    assert "independent sampling" in d["guarantee"]


def test_conformance_suite_when_available() -> None:
    testing = pytest.importorskip("fmi_optimizer.testing")
    testing.check_method(RankingMethod, {"procedure": "kn", "indifference_zone": 0.5})
