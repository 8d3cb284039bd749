"""KPI reducers against hand-computed values, design-space encodings, study-file validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fmi_optimizer.errors import StudyError, ValueValidationError
from fmi_optimizer.host.kpi import builtin_registry, compute_kpis, parse_kpi
from fmi_optimizer.space import Boolean, Categorical, Continuous, DesignSpace, Integer
from fmi_optimizer.study.config import load_study

REG = builtin_registry()


def test_reducers_match_hand_computation() -> None:
    t = np.array([0.0, 1.0, 2.0, 4.0])
    y = np.array([0.0, 2.0, 2.0, 0.0])
    specs = [parse_kpi(n, e, REG, ["y"]) for n, e in {
        "f": "final(y)", "m": "mean(y)", "hi": "max(y)", "lo": "min(y)", "i": "integral(y)", "r": "rms(y)",
        "above": "time_above(y, 1.0)"}.items()]
    k = compute_kpis(specs, t, {"y": y}, REG)
    assert k["f"] == 0.0 and k["hi"] == 2.0 and k["lo"] == 0.0
    assert k["i"] == pytest.approx(1.0 + 2.0 + 2.0)  # trapezoids: 1 + 2 + 2
    assert k["m"] == pytest.approx(5.0 / 4.0)
    assert k["r"] == pytest.approx(np.sqrt(np.trapezoid(y * y, t) / 4.0))
    assert k["above"] == pytest.approx(0.5 + 1.0 + 1.0)  # crosses 1.0 at t=0.5 and t=3.0


def test_step_response_kpis() -> None:
    t = np.linspace(0, 10, 1001)
    y = 1 - np.exp(-t) * np.cos(3 * t)  # overshooting step response towards 1
    spec_os = parse_kpi("os", "overshoot(y)", REG, ["y"])
    spec_ts = parse_kpi("ts", "settling_time(y, 0.02)", REG, ["y"])
    k = compute_kpis([spec_os, spec_ts], t, {"y": y}, REG)
    peak = (y.max() - y[-1]) / (y[-1] - y[0]) * 100
    assert k["os"] == pytest.approx(peak)
    outside = np.nonzero(np.abs(y - y[-1]) > 0.02 * abs(y[-1] - y[0]))[0][-1]
    assert k["ts"] == pytest.approx(t[outside + 1])


@pytest.mark.parametrize("expr, message", [
    ("max(T_junctoin)", "no variable 'T_junctoin'"),
    ("maximum(y)", "unknown reducer 'maximum'; known: final, integral"),
    ("max y", "not of the form"),
    ("time_above(y, hot)", "argument 'hot' must be a number"),
])
def test_kpi_errors_name_the_part(expr: str, message: str) -> None:
    with pytest.raises(StudyError, match=message):
        parse_kpi("k", expr, REG, ["y"])


def test_a_misspelt_output_gets_a_suggestion_and_a_bounded_list() -> None:
    names = ["RAT", "der(RAT)", *(f"room.v{i}" for i in range(40))]
    with pytest.raises(StudyError, match=r"^s.toml: \[kpis\] k = 'mean\(RATT\)': the FMU has no variable 'RATT' \(did you mean "
                                         r"'RAT'\?\); recordable variables, outputs first: RAT, 'der\(RAT\)', room.v0, "
                                         r".*, \.\.\. \(22 more: see 'fmi-optimizer inspect'\)"):
        parse_kpi("k", "mean(RATT)", REG, names, "s.toml")


SPACE = DesignSpace([Continuous("a", -1.0, 2.0), Continuous("b", 0.01, 100.0, log=True),
                     Continuous("c", 0.0, 1.0, levels=5), Integer("n", 2, 9),
                     Categorical("m", (1, 2, 4), ("al", "cu", "steel")), Boolean("d")])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=6, max_size=6))
def test_unit_cube_round_trip(u: list[float]) -> None:
    values = SPACE.from_unit(u)
    assert SPACE.validate(values) == values
    again = SPACE.from_unit(SPACE.to_unit(values))
    assert again["n"] == values["n"] and again["m"] == values["m"] and again["d"] == values["d"]
    assert again["c"] == values["c"]
    assert again["a"] == pytest.approx(values["a"]) and again["b"] == pytest.approx(values["b"])


def test_indices_json_and_validation() -> None:
    disc = DesignSpace([Continuous("c", 0.0, 1.0, levels=5), Integer("n", 2, 9),
                        Categorical("m", (1, 2, 4), ("al", "cu", "steel")), Boolean("d")])
    values = disc.from_indices([4, 7, 2, 1])
    assert values == {"c": 1.0, "n": 9, "m": 4, "d": True}
    assert disc.to_indices(values) == [4, 7, 2, 1]
    assert disc.cardinality() == 5 * 8 * 3 * 2
    assert DesignSpace.from_json(SPACE.to_json()).to_json() == SPACE.to_json()
    with pytest.raises(ValueValidationError, match=r"'n': 10 is outside \[2, 9\]"):
        SPACE.validate({**SPACE.from_unit([0.5] * 6), "n": 10})
    with pytest.raises(ValueValidationError, match="not one of"):
        SPACE.validate({**SPACE.from_unit([0.5] * 6), "m": 3})
    assert SPACE.validate({**SPACE.from_unit([0.5] * 6), "m": "steel"})["m"] == 4


def _study(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "s.toml"
    p.write_text('[twin]\nfmu = "x.fmu"\n' + body)
    return p


@pytest.mark.parametrize("body, message", [
    ("[kpis]\nk = \"max(y)\"\n[objective]\nminimize = { k = 1 }\n[method]\nbudgett = 3\n",
     r"\[method\] budgett|unknown option"),
    ("[kpis]\nk = \"max(y)\"\n[objective]\nminimize = { q = 1 }\n", r"\[objective\] minimize: unknown KPI 'q'"),
    ("[kpis]\nk = \"max(y)\"\n[objective]\nminimize = { k = -1 }\n", "expected a positive weight"),
    ("[kpis]\nk = \"max(y)\"\n[objective]\nminimize = \"k\"\n[constraints]\nk = \"< 3\"\n", "must start with <= or >="),
    ("[kpis]\nk = \"max(y)\"\n[objective]\nminimize = \"k\"\n[evaluation]\nworkers = \"two\"\n",
     r"\[evaluation\] workers = 'two': expected an integer"),
    ("[kpis]\nk = \"max(y)\"\n[objective]\nminimize = \"k\"\n[method]\nbudget = { evaluations = 0 }\n",
     "expected an integer >= 1"),
    ("[kpis]\nk = \"max(y)\"\n[objective]\nminimize = \"k\"\n[twim]\n", "unknown section or key 'twim'"),
    ("[kpis]\nk = 3\n", r"\[kpis\] k = 3: expected a string"),
    ("x = [", "not valid TOML"),
])
def test_study_file_errors_name_file_key_and_remedy(tmp_path: Path, body: str, message: str) -> None:
    path = _study(tmp_path, body)
    if "budgett" in body:  # unknown method options are checked by the method itself
        cfg = load_study(path)
        assert cfg.method_options == {"budgett": 3}
        return
    with pytest.raises(StudyError, match=message) as info:
        load_study(path)
    assert str(path) in str(info.value) or "TOML" in str(info.value)


def test_budget_overrides_and_defaults(tmp_path: Path) -> None:
    cfg = load_study(_study(tmp_path, "[kpis]\nk = \"max(y)\"\n[objective]\nminimize = \"k\"\n"
                                       "[method]\nbudget = { evaluations = 50, seconds = 10 }\n"))
    assert cfg.budget.evaluations == 50 and cfg.budget.seconds == 10.0
    assert cfg.fmu == (tmp_path / "x.fmu").resolve()
    over = cfg.with_overrides(budget_evaluations=7, seed=3, method="ga")
    assert over.budget.evaluations == 7 and over.budget.seconds == 10.0 and over.seed == 3 and over.method == "ga"
