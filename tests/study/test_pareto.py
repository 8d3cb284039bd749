"""Issue 8: Pareto filtering against a brute-force reference, scalarized formulations, pick rules, --pick."""

from __future__ import annotations

import itertools
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

from fmi_optimizer.errors import StudyError
from fmi_optimizer.records import Candidate, Evaluation
from fmi_optimizer.study.pareto import (
    by_kpis,
    constrained_front,
    dominates,
    epsilon_constraint,
    front,
    non_dominated,
    parse_rule,
    pick,
    weighted,
)


def brute_front(p: np.ndarray) -> set[int]:
    return {i for i in range(len(p)) if not any(dominates(p[j], p[i]) for j in range(len(p)) if j != i)}


@pytest.mark.parametrize("seed, n, m, integer", [(s, n, m, integer) for s, (n, m), integer in
                                                itertools.product(range(4), [(1, 2), (30, 2), (200, 3), (80, 4)],
                                                                  [False, True])])
def test_non_dominated_matches_brute_force(seed: int, n: int, m: int, integer: bool) -> None:
    rng = np.random.default_rng(seed)
    p = rng.integers(0, 6, size=(n, m)).astype(float) if integer else rng.random((n, m))  # ties and duplicates
    assert set(np.flatnonzero(non_dominated(p))) == brute_front(p)


def test_constrained_front() -> None:
    p = np.array([[1.0, 5.0], [2.0, 2.0], [0.5, 0.5], [3.0, 1.0], [4.0, 4.0]])
    v = np.array([0.0, 0.0, 2.0, 0.0, 0.0])  # the best point is infeasible
    assert list(constrained_front(p, v)) == [0, 1, 3]
    v_all = np.array([3.0, 1.0, 1.0, 2.0, 5.0])  # nothing feasible: least violation first
    assert list(constrained_front(p, v_all)) == [2]


def ev(values: dict[str, Any], mass: float, energy: float, violation: float = 0.0, status: str = "ok") -> Evaluation:
    return Evaluation(Candidate(values), status, {"mass": mass, "energy": energy, "cost": mass * 3},  # type: ignore[arg-type]
                      mass + energy, (mass, energy), (violation,))


def sample_evaluations() -> list[Evaluation]:
    return [ev({"x": 0}, 1.0, 900.0), ev({"x": 1}, 2.0, 500.0), ev({"x": 2}, 3.0, 200.0), ev({"x": 3}, 2.5, 600.0),
            ev({"x": 4}, 0.5, 100.0, violation=3.0), ev({"x": 5}, 4.0, 150.0), ev({"x": 6}, 9, 9, status="failed"),
            ev({"x": 1}, 2.0, 500.0)]  # a cache hit of x=1 appears once on the front


def test_front_of_evaluations() -> None:
    f = front(sample_evaluations())
    assert [e.values["x"] for e in f] == [0, 1, 2, 5]


def test_front_by_kpis_with_senses() -> None:
    evs = sample_evaluations()
    same = front(evs, by_kpis([("mass", "minimize"), ("energy", "minimize")]))
    assert [e.values["x"] for e in same] == [0, 1, 2, 5]
    flipped = front(evs, by_kpis([("mass", "maximize"), ("energy", "minimize")]))  # heavy and frugal
    assert [e.values["x"] for e in flipped] == [5]  # heaviest and most frugal at once dominates the rest


def test_weighted_and_epsilon_constraint_against_brute_force() -> None:
    rng = np.random.default_rng(9)
    p = rng.random((300, 3))
    for w in ([1, 0, 0], [0.2, 0.5, 0.3], [0, 0, 1]):
        lo, span = p.min(0), p.max(0) - p.min(0)
        assert weighted(p, w) == int(np.argmin(((p - lo) / span) @ np.array(w)))
    for eps in (0.1, 0.3, 0.8):
        i = epsilon_constraint(p, 0, {1: eps, 2: eps})
        ok = [k for k in range(len(p)) if p[k, 1] <= eps and p[k, 2] <= eps]
        assert i == min(ok, key=lambda k: p[k, 0])
    assert epsilon_constraint(p, 0, {1: -1.0}) is None
    assert non_dominated(p)[weighted(p, [0.2, 0.5, 0.3])]  # a weighted optimum is Pareto optimal


def test_pick_rules() -> None:
    evs = sample_evaluations()
    names = ["mass", "energy", "cost"]
    assert pick(evs, "min mass where energy <= 550", names).values["x"] == 1
    assert pick(evs, "lowest mass with energy ≤ 200", names).values["x"] == 2  # infeasible x=4 never picked
    assert pick(evs, "max mass", names).values["x"] == 5
    assert pick(evs, "min energy where mass < 4 and cost <= 9", names).values["x"] == 2
    assert pick(evs, 0, names).values["x"] == 0 and pick(evs, "-1", names).values["x"] == 5
    assert parse_rule("minimize mass", names).conditions == ()
    with pytest.raises(StudyError, match="front has 4 points"):
        pick(evs, 7, names)
    with pytest.raises(StudyError, match="unknown KPI 'weight'"):
        pick(evs, "min weight", names)
    with pytest.raises(StudyError, match="cannot parse"):
        pick(evs, "smallest mass", names)
    with pytest.raises(StudyError, match="cannot parse the condition"):
        pick(evs, "min mass where energy about 3", names)
    with pytest.raises(StudyError, match="no feasible evaluated point meets"):
        pick(evs, "min mass where energy <= 50", names)


@pytest.mark.slow
def test_pick_on_a_pareto_study_writes_back_the_picked_point(sample_fmu: Any, tmp_path: Path) -> None:
    study = tomllib.loads((ROOT / "fmus" / "heat_sink.toml").read_text())
    study["twin"]["fmu"] = str(sample_fmu("heat_sink"))
    study["objective"] = {"minimize": {"mass": 10.0, "fan_energy": 0.002}}  # weighted: random sees one number
    study["method"] = {"name": "random", "budget": {"evaluations": 60}, "seed": 2}
    study["evaluation"] = {"workers": 2}
    path = tmp_path / "pareto.toml"
    path.write_text(_toml(study))
    out = subprocess.run([sys.executable, "-m", "fmi_optimizer.cli.main", "optimize", str(path), "--out",
                          str(tmp_path / "out"), "--pick", "min mass where fan_energy <= 800", "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    picked = data["diagnostics"]["pick"]
    assert picked["kpis"]["fan_energy"] <= 800 and picked["on_front"]
    assert data["best"]["values"] == picked["values"] and data["verification"]["ok"]
    written = json.loads(Path(data["outputs"]["json"]).read_text())
    assert {k: written["values"][k] for k in picked["values"]} == picked["values"]  # the picked point was written
    report = Path(data["outputs"]["report"]).read_text()
    assert "Pareto front (" in report


def _toml(d: dict[str, Any], prefix: str = "") -> str:
    """Minimal TOML writer for the study dict above (tables of scalars, inline tables, lists)."""
    def val(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {val(x)}" for k, x in v.items()) + " }"
        return repr(v)

    lines = [f"{k} = {val(v)}" for k, v in d.items() if not isinstance(v, dict)]
    for k, v in d.items():
        if isinstance(v, dict):
            lines.append(f"\n[{prefix}{k}]")
            lines += [f"{kk} = {val(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"


def test_heat_sink_pwm_duty_defaults_to_the_speed_step_and_scales_the_fan(compiled_sample: Any) -> None:
    """fan_duty (heat_sink's Pareto study): default 1 reproduces the twin bit for bit; speed ratio =
    (0.40 + 0.15 fan_speed) x duty, so speed step 3 equals step 4 at 85 % duty, and fan energy ~ duty^3."""
    from fmpy import simulate_fmu

    unzip = compiled_sample("heat_sink")  # compiled by fmpy, not by the host
    names = ["mass", "E_fan", "T_junction_max", "V_flow"]

    def kpis(**start: Any) -> dict[str, float]:
        r = simulate_fmu(unzip, start_values=start, stop_time=600.0, output_interval=600.0, output=names)
        return {n: float(r[n][-1]) for n in names}

    default = kpis()
    assert kpis(fan_duty=1.0) == default  # bit for bit: x * 1.0 is exact
    step3, step4_85 = kpis(fan_speed=3), kpis(fan_speed=4, fan_duty=0.85)
    assert all(math.isclose(step3[n], step4_85[n], rel_tol=1e-9) for n in names)
    half = kpis(fan_duty=0.5)
    assert math.isclose(half["E_fan"], default["E_fan"] * 0.125, rel_tol=1e-9) and half["mass"] == default["mass"]
    assert half["V_flow"] < default["V_flow"] and half["T_junction_max"] > default["T_junction_max"]
    with pytest.raises(Exception, match="failed with status 3"):  # below 0.2: the twin reports an error
        kpis(fan_duty=0.1)


MO_RANDOM = '''
from fmi_optimizer import Candidate, Capabilities, Method, hookimpl


class MoRandom(Method):
    name = "mo_random"
    summary = "uniform random search that accepts several objectives (test method)"
    capabilities = Capabilities(multi_objective=True)

    def ask(self, n):
        return [Candidate(self.problem.space.from_unit(self.rng.random(len(self.problem.space)))) for _ in range(n)]


@hookimpl
def fmio_register_methods(registry):
    registry.add(MoRandom)
'''


@pytest.mark.slow
def test_a_pareto_study_puts_its_front_into_the_json(faulty_fmu: Path, tmp_path: Path) -> None:
    """`pareto = true`: the JSON carries the front itself (index = what --pick takes), not only a size."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "mo_random.py").write_text(MO_RANDOM)
    study = {"twin": {"fmu": str(faulty_fmu), "stop_time": 2.0, "output_interval": 0.1},
             "parameters": {"x": {}, "n": {}}, "kpis": {"z_end": "final(z)", "y_peak": "max(y)"},
             "objective": {"minimize": {"z_end": 1.0}, "maximize": {"y_peak": 1.0}, "pareto": True},
             "method": {"name": "mo_random", "budget": {"evaluations": 12}, "seed": 1},
             "evaluation": {"workers": 1}}
    path = tmp_path / "mo.toml"
    path.write_text(_toml(study))
    out = subprocess.run([sys.executable, "-m", "fmi_optimizer.cli.main", "optimize", str(path), "--plugins-dir",
                          str(plugins), "--out", str(tmp_path / "out"), "--no-writeback", "--pick", "1", "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "best inf" not in out.stderr
    data = json.loads(out.stdout)
    pts = data["pareto_front"]
    assert len(pts) >= 2 and [p["index"] for p in pts] == list(range(len(pts)))
    for p in pts:
        assert set(p) >= {"values", "objectives", "kpis", "feasible", "constraints"} and p["feasible"]
        assert p["objectives"] == [p["kpis"]["z_end"], -p["kpis"]["y_peak"]]  # minimization sense
        assert not any(dominates(q["objectives"], p["objectives"]) for q in pts)
    assert data["best"]["values"] == pts[1]["values"]  # --pick 1 took the front's index 1
