"""Issue 8: distributions, the shared sample (CRN), robust scores, chance constraints, and one robust study
end to end on the heat_sink sample twin."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ROOT
from scipy import stats

from fmi_optimizer import optimize
from fmi_optimizer.errors import StudyError
from fmi_optimizer.records import Candidate, Evaluation
from fmi_optimizer.study.config import load_study
from fmi_optimizer.uncertainty import (
    ScoreRule,
    clopper_pearson,
    cvar,
    draw,
    judge,
    parse_distribution,
    wilson,
)
from fmi_optimizer.uncertainty.aggregate import parse_tag, run_tag
from fmi_optimizer.uncertainty.chance import minimum_samples, required_successes
from fmi_optimizer.uncertainty.layer import RobustLayer
from fmi_optimizer.uncertainty.sampling import unit_sample
from fmi_optimizer.uncertainty.sections import _growth_text, regroup
from fmi_optimizer.uncertainty.sequential import decide, difference_interval, stages

N = 4096  # scrambled Sobol points: moments land far inside the tolerances below (deterministic seed)


def sample_of(spec: dict[str, Any], n: int = N, sampler: str = "sobol", seed: int = 5) -> np.ndarray:
    d = parse_distribution("p", spec, "test")
    return np.array([s["p"] for s in draw({"p": d}, n, sampler, seed).scenarios])


@pytest.mark.parametrize("sampler", ["sobol", "lhs", "random"])
def test_normal_and_uniform_moments(sampler: str) -> None:
    x = sample_of({"dist": "normal", "mean": 313.15, "std": 3.0}, sampler=sampler)
    assert abs(x.mean() - 313.15) < 0.15 and abs(x.std() - 3.0) < 0.15
    u = sample_of({"dist": "uniform", "min": 35.0, "max": 45.0}, sampler=sampler)
    assert u.min() >= 35.0 and u.max() <= 45.0 and abs(u.mean() - 40.0) < 0.2


def test_truncated_lognormal_triangular_discrete() -> None:
    t = sample_of({"dist": "truncnormal", "mean": 160.0, "std": 20.0, "min": 150.0, "max": 200.0})
    ref = stats.truncnorm((150 - 160) / 20, (200 - 160) / 20, loc=160, scale=20)
    assert t.min() >= 150.0 and t.max() <= 200.0 and abs(t.mean() - ref.mean()) < 0.3
    ln = sample_of({"dist": "lognormal", "median": 2.0, "sigma": 0.3})
    assert abs(np.median(ln) - 2.0) < 0.02 and abs(np.log(ln).std() - 0.3) < 0.01
    tri = sample_of({"dist": "triangular", "min": 1.0, "mode": 2.0, "max": 6.0})
    assert tri.min() >= 1.0 and tri.max() <= 6.0 and abs(tri.mean() - 3.0) < 0.05
    disc = sample_of({"dist": "discrete", "values": [1, 2, 3], "weights": [0.2, 0.3, 0.5]})
    freq = [float(np.mean(disc == v)) for v in (1, 2, 3)]
    assert np.allclose(freq, [0.2, 0.3, 0.5], atol=0.01)
    raw = draw({"p": parse_distribution("p", {"dist": "discrete", "values": [1, 2]}, "t")}, 8, "sobol", 1)
    assert all(type(s["p"]) is int for s in raw.scenarios)  # plain Python values go into the FMU


@pytest.mark.parametrize("spec, message", [
    ({"dist": "gauss", "mean": 1}, "accepted: normal, truncnormal"),
    ({"dist": "normal", "mean": 1}, "missing std"),
    ({"dist": "normal", "mean": 1, "std": -1}, "std = -1.0: must be > 0"),
    ({"dist": "uniform", "min": 2, "max": 1}, "min 2 must be < max 1"),
    ({"dist": "triangular", "min": 0, "mode": 5, "max": 1}, "mode 5 must lie in"),
    ({"dist": "normal", "mean": 1, "std": 1, "sd": 2}, "unknown key 'sd'"),
    ({"dist": "discrete", "values": [1, 2], "weights": [1]}, "expected a list of 2"),
    (3.0, "expected a table"),
])
def test_distribution_errors_are_one_line(spec: Any, message: str) -> None:
    with pytest.raises(StudyError) as info:
        parse_distribution("T_ambient", spec, "study.toml")
    text = str(info.value)
    assert message in text and "\n" not in text and "T_ambient" in text


def test_shared_sample_is_reproducible_and_prefix_stable() -> None:
    dists = {"a": parse_distribution("a", {"dist": "normal", "mean": 0, "std": 1}, "t"),
             "b": parse_distribution("b", {"dist": "uniform", "min": 0, "max": 1}, "t")}
    s1, s2 = draw(dists, 32, "sobol", 7, seeded=True), draw(dists, 32, "sobol", 7, seeded=True)
    assert s1 == s2  # same seed -> same sample, including the twin seeds
    assert draw(dists, 16, "sobol", 7).scenarios == s1.scenarios[:16]  # growth re-uses the prefix
    assert draw(dists, 32, "sobol", 8).scenarios != s1.scenarios
    assert len(set(s1.seeds)) == 32 and all(isinstance(s, int) for s in s1.seeds)
    u = unit_sample(64, 3, "sobol", 1)
    assert u.shape == (64, 3) and 0.0 < u.min() and u.max() < 1.0


def test_common_random_numbers_across_candidates(tmp_path: Path) -> None:
    """Scenario i gets the same parameter values and seed whatever the candidate."""
    study = _robust_study(tmp_path / "x.fmu", samples=8)
    study["constraints"] = {"t_junction_max": "<= 378.15"}
    study["replications"] = {"seed_parameter": "seed"}
    config = load_study(study, tmp_path)
    layer = RobustLayer(config)  # no twin: only the sample
    a, b = Candidate({"n_fins": 12}, tag=run_tag(3, 0)), Candidate({"n_fins": 20}, tag=run_tag(3, 7))
    assert layer.scenario_values(a) == layer.scenario_values(b) and layer.scenario_values(a)
    assert layer.seed(a) == layer.seed(b) is not None
    assert layer.scenario_values(Candidate({}, tag=run_tag(None, 0))) == {}  # nominal run: the twin's own values
    assert parse_tag("u:nominal:4") == (None, 4) and parse_tag("u:12:3") == (12, 3) and parse_tag("kn:1") is None


def test_robust_scores() -> None:
    x = np.arange(1.0, 11.0)
    assert ScoreRule("mean").score(x) == 5.5
    assert math.isclose(ScoreRule("mean_std", k=2.0).score(x), 5.5 + 2 * np.std(x, ddof=1))
    assert ScoreRule("quantile", level=0.9).score(x) == 9.0
    assert math.isclose(cvar(x, 0.8), 9.5) and math.isclose(cvar(x, 0.75), (10 + 9 + 0.5 * 8) / 2.5)
    assert math.isclose(ScoreRule("cvar", level=0.5).score(x), 8.0)
    big = np.random.default_rng(0).standard_normal(200_000)  # CVaR_0.95 of N(0,1) = pdf(z)/0.05
    assert abs(cvar(big, 0.95) - stats.norm.pdf(stats.norm.ppf(0.95)) / 0.05) < 0.02
    with pytest.raises(StudyError):
        ScoreRule("median")


def test_clopper_pearson_and_wilson_cover_a_known_probability() -> None:
    """P = 0.9 exactly; 2000 seeded experiments of 100 trials: the one-sided lower bounds at confidence 0.95
    must sit below 0.9 in at least ~95 % of them (Clopper-Pearson guarantees >= 95 %)."""
    p, n, reps = 0.9, 100, 2000
    ks = np.random.default_rng(12).binomial(n, p, size=reps)
    cp = np.mean([clopper_pearson(int(k), n, 0.95)[0] <= p for k in ks])
    wi = np.mean([wilson(int(k), n, 0.95)[0] <= p for k in ks])
    assert cp >= 0.95 and wi >= 0.92
    lo, hi = clopper_pearson(90, 100, 0.95)
    assert lo < 0.9 < hi and math.isclose(lo, stats.beta.ppf(0.05, 90, 11))
    assert clopper_pearson(0, 10, 0.95)[0] == 0.0 and clopper_pearson(10, 10, 0.95)[1] == 1.0


@pytest.mark.slow
def test_chance_value_agrees_with_the_bound() -> None:
    """The KPI-unit constraint value is <= 0 exactly when the lower confidence bound reaches the target."""
    rng = np.random.default_rng(3)
    for bound in ("clopper-pearson", "wilson"):
        for k_target in range(40, 101, 3):
            x = np.concatenate([rng.uniform(0, 1, k_target), rng.uniform(1.5, 3, 100 - k_target)])
            rng.shuffle(x)
            res = judge("t", "<=", 1.2, 0.9, x, 0.95, bound)
            assert res.satisfied == k_target and res.n == 100
            assert res.holds == (res.lower >= 0.9)
            flipped = judge("t", ">=", -1.2, 0.9, -x, 0.95, bound)  # the mirror constraint
            assert flipped.holds == res.holds and math.isclose(flipped.value, res.value)
    # Uniform(0,1) KPI, limit 0.9: P = 0.9 known; a large sample's interval contains it
    u = draw({"k": parse_distribution("k", {"dist": "uniform", "min": 0, "max": 1}, "t")}, 2048, "sobol", 2)
    res = judge("k", "<=", 0.9, 0.85, [s["k"] for s in u.scenarios], 0.95, "clopper-pearson")
    assert res.lower <= 0.9 <= res.upper and abs(res.probability - 0.9) < 0.005 and res.holds
    assert minimum_samples(0.95, 0.95, "clopper-pearson") == 59  # 0.05 ** (1/59) >= 0.95
    assert required_successes(58, 0.95, 0.95, "clopper-pearson") is None


def _robust_study(fmu: Path, samples: int = 64, **extra: Any) -> dict[str, Any]:
    study = tomllib.loads((ROOT / "fmus" / "heat_sink.toml").read_text())
    study["twin"]["fmu"] = str(fmu)
    study["constraints"] = {"t_junction_max": {"op": "<=", "limit": 378.15, "probability": 0.95}}
    study["uncertainty"] = {"samples": samples, "parameters": {
        "T_ambient": {"dist": "truncnormal", "mean": 313.15, "std": 3.0, "min": 303.15, "max": 323.15},
        "P_peak": {"dist": "normal", "mean": 160.0, "std": 10.0}}}
    study["method"] = {"name": "random", "budget": {"evaluations": 2 * (samples + 1)}, "seed": 4}
    study["evaluation"] = {"workers": 2}
    study.update(extra)
    return study


@pytest.mark.parametrize("change, message", [
    ({"uncertainty": {}}, "has a probability but the study has no [uncertainty]"),
    ({"samples": 40}, "needs [uncertainty] samples >= 59, got 40"),
    ({"clash": True}, "is also a design parameter"),
    ({"score": "median"}, "score = 'median'; accepted"),
])
def test_study_file_errors(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    study = _robust_study(tmp_path / "x.fmu")
    if "uncertainty" in change:
        del study["uncertainty"]
    if "samples" in change:
        study["uncertainty"]["samples"] = change["samples"]
    if "clash" in change:
        study["uncertainty"]["parameters"]["n_fins"] = {"dist": "uniform", "min": 12, "max": 20}
    if "score" in change:
        study["uncertainty"]["score"] = change["score"]
    with pytest.raises(StudyError, match=message.replace("[", r"\[").replace("(", r"\(")):
        load_study(study, tmp_path)


@pytest.mark.slow
def test_robust_study_end_to_end(sample_fmu: Any, tmp_path: Path) -> None:
    """One candidate asked by the method = 64 scenario runs + 1 nominal run, each stored; the method is told
    one aggregated evaluation whose objective is the mean over the scenarios and whose constraint is the
    chance-constraint bound; the budget counts runs; write-back verifies against the nominal run."""
    fmu = sample_fmu("heat_sink")
    study = _robust_study(fmu, samples=64)
    study["method"]["budget"] = {"evaluations": 3 * 65 + 10}  # 3 candidates; the 10 left cannot pay a fourth
    out = optimize(study, out=tmp_path, base_dir=tmp_path)
    r = out.result
    assert r.counts()["total"] == 3 * 65 and r.counts()["ok"] == 3 * 65
    assert len(r.aggregates) == 3 and "cannot pay for another candidate" in r.stopped_because
    tags = [parse_tag(e.candidate.tag) for e in r.evaluations]
    assert all(t is not None for t in tags)
    for cid, agg in enumerate(r.aggregates):
        runs = [e for e, t in zip(r.evaluations, tags, strict=True) if t and t[1] == cid and t[0] is not None]
        nominal = [e for e, t in zip(r.evaluations, tags, strict=True) if t and t[1] == cid and t[0] is None]
        assert len(runs) == 64 and len(nominal) == 1
        assert all(e.values == agg.values for e in runs)
        assert math.isclose(agg.objective, float(np.mean([e.objective for e in runs])))
        tj = np.array([e.kpis["t_junction_max"] for e in runs])
        assert tj.std() > 1.0  # the scenarios really changed T_ambient and P_peak
        res = judge("t_junction_max", "<=", 378.15, 0.95, tj, 0.95, "clopper-pearson")
        assert math.isclose(agg.constraints[0], res.value) and agg.kpis == nominal[0].kpis
    # CRN: scenario i of two different candidates moves the KPI the same way (same ambient and load)
    by_index = [{t[0]: e.kpis["t_junction_max"] for e, t in zip(r.evaluations, tags, strict=True)
                 if t and t[1] == cid and t[0] is not None} for cid in (0, 1)]
    tj0, tj1 = ([d[i] for i in range(64)] for d in by_index)  # runs finish in any order; align by scenario
    assert np.corrcoef(tj0, tj1)[0, 1] > 0.9
    assert r.best is not None and r.best in r.aggregates
    summary = r.diagnostics["uncertainty"]
    assert summary["candidates"] == 3 and summary["runs_per_candidate"] == 65 and len(summary["robust_trace"]) == 3
    assert out.verification is not None and out.verification["ok"]  # nominal KPIs reproduced by the written FMU
    report = Path(out.files["report"]).read_text()
    assert "Under uncertainty" in report and "3 candidates x 65 runs" in report and "confidence bounds" in report
    json.dumps(out.to_json())


@pytest.mark.slow
def test_plain_constraint_is_worst_case_and_resume_replays(sample_fmu: Any, tmp_path: Path) -> None:
    """Without `probability` a constraint must hold in every scenario (value = worst run); a finished robust
    study resumed from its database replays every run (same candidate ids, same cache keys) and simulates
    nothing."""
    study = _robust_study(sample_fmu("heat_sink"), samples=8)
    study["constraints"] = {"t_junction_max": "<= 378.15"}
    study["method"]["budget"] = {"evaluations": 2 * 9}
    out = optimize(study, out=tmp_path, base_dir=tmp_path, write_back=False)
    r = out.result
    for cid, agg in enumerate(r.aggregates):
        runs = [e for e in r.evaluations if (t := parse_tag(e.candidate.tag)) and t[1] == cid and t[0] is not None]
        assert len(runs) == 8
        assert agg.constraints[0] == max(e.kpis["t_junction_max"] - 378.15 for e in runs)
    proc = subprocess.run([sys.executable, "-m", "fmi_optimizer.cli.main", "resume", str(out.db), "--no-writeback", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert "18 stored evaluations will be replayed" in proc.stderr
    assert data["evaluations"]["total"] == 18 and data["best"]["values"] == r.best.values  # type: ignore[union-attr]
    assert data["diagnostics"]["uncertainty"]["robust_trace"] == r.diagnostics["uncertainty"]["robust_trace"]


def test_scenarios_outside_the_fmu_range_are_rejected_before_any_run(sample_fmu: Any, tmp_path: Path) -> None:
    study = _robust_study(sample_fmu("heat_sink"), samples=64)
    study["uncertainty"]["parameters"]["P_peak"] = {"dist": "normal", "mean": 480.0, "std": 30.0}  # FMU max 500 W
    with pytest.raises(StudyError, match=r"\[uncertainty.parameters\] scenario \d+ of the sample: 'P_peak'"):
        optimize(study, out=tmp_path, base_dir=tmp_path, write_back=False)
    assert not list(tmp_path.glob("*.fmu"))


def test_paired_difference_interval_uses_common_random_numbers() -> None:
    """Two designs share a large scenario effect (CRN): the paired interval is narrow and covers the true
    difference 0.1; without pairing (independent scenarios) the same data could not separate them."""
    rng = np.random.default_rng(1)
    scenario = rng.normal(0.0, 5.0, 64)
    a, b = 10.1 + scenario + rng.normal(0, 0.1, 64), 10.0 + scenario + rng.normal(0, 0.1, 64)
    lo, hi = difference_interval(ScoreRule("mean"), a, b, 0.95)
    assert 0.0 < lo < 0.1 < hi < 0.2  # separated thanks to the pairing
    assert abs(np.mean(a) - np.mean(b)) < 2 * np.std(a, ddof=1) / 8  # the unpaired means are far from separated
    for rule in (ScoreRule("quantile", level=0.9), ScoreRule("cvar", level=0.8), ScoreRule("mean_std")):
        lo, hi = difference_interval(rule, a, b, 0.95, seed=3)
        assert lo < 0.1 < hi and hi - lo < 1.0 and difference_interval(rule, a, b, 0.95, seed=3) == (lo, hi)
    assert stages(64, 256) == [64, 128, 256] and stages(64, 100) == [64, 100] and stages(8, 8) == [8]


def test_sequential_rule_decisions() -> None:
    rule, flat = ScoreRule("mean"), np.zeros(16)
    noisy = np.random.default_rng(0).normal(0.0, 1.0, 16)
    assert decide(rule, flat + 5, flat, 0.0, True, True, 0.02, 0.95).action == "worse"
    assert decide(rule, flat - 5, flat, 0.0, True, True, 0.02, 0.95).action == "better"
    assert decide(rule, flat - 5, flat, 0.0, True, False, 0.02, 0.95).action == "grow"  # better, not proven
    assert decide(rule, noisy, flat, 10.0, True, True, 0.02, 0.95).action == "grow"  # indistinguishable
    assert decide(rule, noisy * 0.01, flat, 10.0, True, True, 0.02, 0.95).action == "equivalent"  # within 2 %
    assert decide(rule, noisy, None, None, True, False, 0.02, 0.95).action == "grow"  # nothing to compare with
    assert decide(rule, noisy, None, None, True, True, 0.02, 0.95).action == "proven"
    assert decide(rule, noisy, flat, 0.0, False, False, 0.02, 0.95).action == "infeasible"


def _fake_runs(base: dict[int, float], own_sd: float) -> Any:
    """A twin stand-in: objective = base[design] + shared scenario effect (CRN) + the design's own noise."""
    shared = np.random.default_rng(11).normal(0.0, 3.0, 512)
    calls: list[list[str]] = []

    def run(cands: Any) -> list[Evaluation]:
        calls.append([c.tag for c in cands])
        out = []
        for c in cands:
            idx, _ = parse_tag(c.tag)  # type: ignore[misc]
            design = int(c.values["n_fins"])
            own = np.random.default_rng(1000 * design + (idx if idx is not None else 999)).normal(0.0, own_sd)
            y = base[design] + (0.0 if idx is None else float(shared[idx]) + own)
            out.append(Evaluation(c, "ok", {"cost": y, "t_junction_max": 300.0}, y, (y,), (-78.15,)))
        return out
    return run, calls


def test_close_candidates_grow_in_stages_and_clearly_worse_ones_do_not(tmp_path: Path) -> None:
    """Design 12 is the incumbent; design 13 differs by 0.05 with per-design noise 0.5: indistinguishable on
    8 common scenarios, so it grows in doubling stages (and the incumbent with it, CRN) for as long as its
    interval contains 0; design 20 is worse by 5 and stops after the base sample."""
    study = _robust_study(tmp_path / "x.fmu", samples=8)
    study["constraints"] = {"t_junction_max": "<= 378.15"}
    study["uncertainty"].update(max_samples=64, grow_within=0.0)
    layer = RobustLayer(load_study(study, tmp_path))
    run, calls = _fake_runs({12: 10.0, 13: 10.05, 20: 15.0}, own_sd=0.5)
    told = layer.evaluate([Candidate({"n_fins": 12})], run, None)
    assert len(layer.per_scenario[0]) == 8 and told[0].feasible  # first candidate: proven, nothing to compare
    told = layer.evaluate([Candidate({"n_fins": 20}), Candidate({"n_fins": 13})], run, None)
    logs = {log["candidate"]: log for log in layer.growth_log}
    assert len(layer.per_scenario[1]) == 8  # clearly worse: no extra scenario
    assert logs[1]["stopped"] == "worse" and logs[1]["scenarios"] == [8]
    grown = logs[2]["scenarios"]
    assert grown[:2] == [8, 16] and grown == [8, 16, 32, 64][:len(grown)]  # close: grown in doubling stages
    assert len(layer.per_scenario[2]) == len(layer.per_scenario[0]) == grown[-1]  # the incumbent got them too
    assert all(lo <= 0.0 <= hi for lo, hi in logs[2]["intervals"][:-1])  # grown only while indistinguishable
    assert logs[2]["stopped"] == "cap" or not logs[2]["intervals"][-1][0] <= 0.0 <= logs[2]["intervals"][-1][1]
    assert math.isclose(told[1].objective, float(np.mean(layer.per_scenario[2])))  # told over all its scenarios
    assert layer.aggregates[0].objective == float(np.mean(layer.per_scenario[0]))  # incumbent re-aggregated
    summary = layer.growth_summary()
    expected = {"proven": 1, "worse": 1}
    expected[logs[2]["stopped"]] = expected.get(logs[2]["stopped"], 0) + 1
    assert summary["stopped"] == expected
    assert summary["extra_runs"] == 2 * (grown[-1] - 8) and summary["incumbent_top_ups"] == len(grown) - 1
    assert sum(len(c) for c in calls) == 9 + 2 * 9 + summary["extra_runs"]  # every run paid once
    rows = [r for runs in layer.runs.values() for r in runs]  # the report regroups the stored rows
    text = _growth_text(layer.spec, regroup(layer.config, rows), len(rows))
    assert f"+ {summary['extra_runs']} runs of sequential growth (2 candidates" in text  # + incumbent
    # a budget that cannot pay the next stage stops the growth and is said so
    layer2 = RobustLayer(load_study(study, tmp_path))
    run2, _ = _fake_runs({12: 10.0, 13: 10.05}, own_sd=0.5)
    layer2.evaluate([Candidate({"n_fins": 12})], run2, None)
    layer2.evaluate([Candidate({"n_fins": 13})], run2, 9 + 20)
    assert layer2.growth_log[-1]["stopped"] == "budget" and len(layer2.per_scenario[1]) == 16


def test_separated_candidate_stops_growing_early(tmp_path: Path) -> None:
    """A candidate better by 0.5 with small own noise separates from the incumbent after a stage or two."""
    study = _robust_study(tmp_path / "x.fmu", samples=8)
    study["constraints"] = {"t_junction_max": "<= 378.15"}
    study["uncertainty"].update(max_samples=256, grow_within=0.0)
    layer = RobustLayer(load_study(study, tmp_path))
    run, _ = _fake_runs({12: 10.0, 13: 9.7}, own_sd=0.3)
    layer.evaluate([Candidate({"n_fins": 12})], run, None)
    layer.evaluate([Candidate({"n_fins": 13})], run, None)
    log = layer.growth_log[-1]
    assert log["stopped"] == "better" and 8 < log["scenarios"][-1] < 256


def test_report_section_reads_a_study_that_also_uses_another_plugins_section(tmp_path: Path) -> None:
    """A study file may carry the section of a plugin that is not loaded where the report is written; the
    uncertainty section re-reads the study without it instead of giving up on the whole section."""
    from fmi_optimizer.uncertainty.sections import extra_sections

    raw = _robust_study(tmp_path / "x.fmu")
    raw["my_feature"] = {"level": 1}
    html = "".join(extra_sections({"raw": raw, "base_dir": str(tmp_path)}, {}, []))
    assert "<h2>Under uncertainty</h2>" in html and "cannot re-read" not in html
