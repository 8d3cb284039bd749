"""Physics and packaging checks of the sample twins in fmus/ (built from source with cmake).

Each twin is packaged by ``fmus/build.py`` into a source-only FMU, compiled once per session with
fmpy's ``build_platform_binary`` and simulated with fmpy. The checks are hand calculations and
conservation laws, so a wrong equation fails them; timings are printed, never asserted.
"""

from __future__ import annotations

import json
import math
import shutil
import time
import tomllib
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ROOT, builder

FMUS = ROOT / "fmus"

fmpy = pytest.importorskip("fmpy")
from fmpy import read_model_description, simulate_fmu  # noqa: E402
from fmpy.fmi1 import FMICallException  # noqa: E402
from fmpy.validation import validate_fmu  # noqa: E402

if shutil.which("cmake") is None:
    pytest.skip("cmake is needed to compile the source FMUs of the sample twins", allow_module_level=True)

NAMES = builder.sample_names()
# The tests that simulate a compiled twin are marked slow: compiling the five twins with cmake costs more
# than the fast loop (-m "not slow") has; the packaging checks stay in it.


@pytest.fixture(scope="session")
def twins(sample_fmu: Callable[[str], Path],
          compiled_sample: Callable[[str], Path]) -> dict[str, tuple[Path, Path]]:
    """name -> (source-only .fmu, extracted folder with the binary fmpy compiled; both shared with other
    tests, so nothing here writes into them)."""
    return {name: (sample_fmu(name), compiled_sample(name)) for name in NAMES}


def sim(twins: dict[str, tuple[Path, Path]], name: str, **kwargs: Any) -> np.ndarray:
    return simulate_fmu(str(twins[name][1]), **kwargs)


def final(result: np.ndarray, name: str) -> float:
    return float(result[name][-1])


# ---------------------------------------------------------------- packaging


def test_all_four_twins_and_the_fmi3_package_exist() -> None:
    assert {"heat_sink", "servo_pid", "servo_pid_fmi3", "production_line", "building_zone"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.slow
def test_validate_fmu_passes_on_source_and_compiled(twins: dict[str, tuple[Path, Path]], name: str) -> None:
    fmu, unzipped = twins[name]
    assert validate_fmu(str(fmu)) == []
    assert validate_fmu(str(unzipped)) == []


@pytest.mark.parametrize("name", NAMES)
def test_fmu_is_source_only_and_reproducible(sample_fmu: Callable[[str], Path], name: str, tmp_path: Path) -> None:
    fmu = sample_fmu(name)
    with zipfile.ZipFile(fmu) as zf:
        names = zf.namelist()
    assert not any(n.startswith("binaries/") for n in names)
    assert "sources/model.c" in names and "sources/fmio_core.c" in names and "sources/model_vars.c" in names
    again = builder.build_sample(name, tmp_path)
    assert again.read_bytes() == fmu.read_bytes(), "same sources must give the same bytes (content hash)"


def test_unknown_twin_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(builder.BuildError, match="no sample twin 'nope'"):
        builder.build_sample("nope", tmp_path)


@pytest.mark.parametrize("name", [n for n in NAMES if (FMUS / f"{n}.toml").exists()])
@pytest.mark.slow
def test_study_file_matches_its_twin(twins: dict[str, tuple[Path, Path]], name: str) -> None:
    study = tomllib.loads((FMUS / f"{name}.toml").read_text())
    md = read_model_description(str(twins[name][1]))
    variables = {v.name: v for v in md.modelVariables}
    assert study["twin"]["fmu"] == f"{name}.fmu"
    for param in study.get("parameters", {}):
        assert variables[param].causality == "parameter", param
    for kpi, expr in study["kpis"].items():
        output = expr.split("(", 1)[1].split(",")[0].rstrip(")").strip()
        assert variables[output].causality == "output", (kpi, output)
    objective = study["objective"].get("minimize") or study["objective"].get("maximize")
    assert set(objective) <= set(study["kpis"])
    for scenario in study.get("scenarios", {}).values():
        assert set(scenario) <= set(variables)


@pytest.mark.slow
def test_heat_sink_study_is_large_and_exhaustively_searchable(twins: dict[str, tuple[Path, Path]]) -> None:
    study = tomllib.loads((FMUS / "heat_sink.toml").read_text())
    md = read_model_description(str(twins["heat_sink"][1]))
    variables = {v.name: v for v in md.modelVariables}
    sizes = []
    for name, spec in study["parameters"].items():
        v = variables[name]
        if v.type == "Real":
            sizes.append(int(spec["levels"]))
        elif v.type == "Integer":
            sizes.append(int(v.max) - int(v.min) + 1)
        elif v.type == "Enumeration":
            sizes.append(len(v.declaredType.items))
        else:
            sizes.append(2)
    one_hot_bits = sum(s if s > 2 else 1 for s in sizes)
    assert one_hot_bits >= 40
    assert 5e5 <= math.prod(sizes) <= 2e6


# ---------------------------------------------------------------- the shared runtime


def _slave(twins: dict[str, tuple[Path, Path]], name: str, guid: str | None = None) -> Any:
    from fmpy.fmi2 import FMU2Slave

    unzipped = str(twins[name][1])
    md = read_model_description(unzipped)
    fmu = FMU2Slave(guid=guid or md.guid, unzipDirectory=unzipped, modelIdentifier=name, instanceName="t")
    return fmu, {v.name: v.valueReference for v in md.modelVariables}


@pytest.mark.slow
def test_runtime_enforces_the_setting_rules(twins: dict[str, tuple[Path, Path]]) -> None:
    fmu, vr = _slave(twins, "heat_sink")
    fmu.instantiate()
    with pytest.raises(FMICallException):
        fmu.setReal([vr["T_junction"]], [300.0])  # an output is never set
    fmu.reset()
    fmu.setReal([vr["fin_height"]], [0.02])  # a fixed parameter before initialization
    fmu.setupExperiment(startTime=0.0)
    fmu.enterInitializationMode()
    fmu.exitInitializationMode()
    with pytest.raises(FMICallException):
        fmu.setReal([vr["fin_height"]], [0.03])  # ... but not after it
    fmu.reset()
    fmu.setupExperiment(startTime=0.0)
    fmu.enterInitializationMode()
    fmu.exitInitializationMode()
    with pytest.raises(FMICallException):
        fmu.doStep(5.0, 1.0)  # must continue from t = 0
    fmu.reset()
    fmu.setReal([vr["base_width"]], [0.01])  # no room for the fins: the model fails ...
    fmu.setupExperiment(startTime=0.0)
    fmu.enterInitializationMode()
    with pytest.raises(FMICallException):
        fmu.exitInitializationMode()
    with pytest.raises(FMICallException):
        fmu.doStep(0.0, 1.0)  # ... and the failed instance answers errors until it is reset
    fmu.reset()  # then it recovers with the start values
    fmu.setupExperiment(startTime=0.0)
    fmu.enterInitializationMode()
    fmu.exitInitializationMode()
    fmu.doStep(0.0, 600.0)
    assert fmu.getReal([vr["E_in"]])[0] == pytest.approx(57600.0)
    fmu.terminate()
    fmu.freeInstance()


@pytest.mark.slow
def test_runtime_refuses_a_wrong_guid(twins: dict[str, tuple[Path, Path]]) -> None:
    fmu, _ = _slave(twins, "heat_sink", guid="{not-this-model}")
    with pytest.raises(Exception, match="instantiate"):
        fmu.instantiate()


def test_generated_tables_follow_the_xml() -> None:
    xml = """<fmiModelDescription fmiVersion="2.0" modelName="m" guid="{g}"><ModelVariables>
      <ScalarVariable name="a" valueReference="7" causality="parameter" variability="fixed"><Real start="1.5"/></ScalarVariable>
      <ScalarVariable name="n" valueReference="3" causality="parameter" variability="fixed"><Integer start="4"/></ScalarVariable>
      <ScalarVariable name="s" valueReference="9" causality="parameter" variability="fixed"><String start='say "hi"'/></ScalarVariable>
      <ScalarVariable name="der(x)" valueReference="1" causality="local"><Real/></ScalarVariable>
      </ModelVariables></fmiModelDescription>"""
    tables = builder.generate_tables(xml)
    assert "#define R_a 0" in tables["model_vars.h"] and "#define R_der_x 1" in tables["model_vars.h"]
    assert "#define VR_n 3u" in tables["model_vars.h"]
    assert "FMIO_REAL_START[] = {1.5, 0.0}" in tables["model_vars.c"]
    assert 'FMIO_STRING_START[] = {"say \\"hi\\""}' in tables["model_vars.c"]
    assert 'FMIO_TOKEN = "{g}"' in tables["model_vars.c"]
    structured = builder.generate_tables(xml.replace('name="a"', 'name="lag.a[1]"'))  # as tools name them
    assert "#define R_lag_a_1_ 0" in structured["model_vars.h"] and '"lag.a[1]"' in structured["model_vars.c"]
    with pytest.raises(builder.BuildError, match="must start with a letter"):
        builder.generate_tables(xml.replace('name="a"', 'name="1a"'))


# ---------------------------------------------------------------- heat_sink


@pytest.mark.slow
def test_heat_sink_energy_balance_closes(twins: dict[str, tuple[Path, Path]]) -> None:
    r = sim(twins, "heat_sink")
    e_in, e_conv, e_stored = final(r, "E_in"), final(r, "E_conv"), final(r, "E_stored")
    assert e_in > 1e4
    assert abs(e_in - e_conv - e_stored) < 1e-6 * e_in
    # the load profile: 40 W idle, 160 W for 240 s, 200 W for 30 s over 600 s
    assert e_in == pytest.approx(40 * 330 + 160 * 240 + 200 * 30, rel=1e-9)


@pytest.mark.slow
def test_heat_sink_steady_state_matches_hand_calculation(twins: dict[str, tuple[Path, Path]]) -> None:
    """Constant 100 W: T_j - T_amb = P (R_jc + R_tim + R_spread + R_convection + R_air)."""
    p, ta = 100.0, 313.15
    start = {"P_idle": p, "P_peak": p, "material": 4, "tim": 1, "n_fins": 20, "duct": True}
    r = sim(twins, "heat_sink", start_values=start, stop_time=20000.0, output_interval=1000.0)
    h, eta, q = final(r, "h_conv"), final(r, "fin_efficiency"), final(r, "V_flow")
    n, H, t, L, W, tb = 20, 0.03, 0.001, 0.15, 0.1, 0.006
    k = 388.0  # copper
    gap = (W - n * t) / (n - 1)
    # fin efficiency of a straight fin with corrected length
    m_fin = math.sqrt(2 * h / (k * t))
    assert eta == pytest.approx(math.tanh(m_fin * (H + t / 2)) / (m_fin * (H + t / 2)), rel=1e-9)
    a_fins, a_base = n * (2 * H + t) * L, (n - 1) * gap * L
    g_surface = eta * h * a_fins + h * a_base
    rho = 101325.0 / (287.05 * ta)
    g_total = 1.0 / (1.0 / g_surface + 1.0 / (2 * rho * q * 1007.0))
    # spreading resistance (Lee et al. 1995) from a 40 mm square source into the base
    a_s, b_p = math.sqrt(1.6e-3 / math.pi), math.sqrt(W * L / math.pi)
    eps, tau = a_s / b_p, tb / b_p
    bi = g_total / (math.pi * k * b_p)
    lam = math.pi + 1 / (math.sqrt(math.pi) * eps)
    phi = (math.tanh(lam * tau) + lam / bi) / (1 + lam / bi * math.tanh(lam * tau))
    psi = eps * tau / math.sqrt(math.pi) + (1 - eps) * phi / math.sqrt(math.pi)
    r_spread = psi / (k * a_s * math.sqrt(math.pi))
    r_tim = 1.0e-4 / 1.6e-3  # gap pad
    expected = ta + p * (0.12 + r_tim + r_spread + 1.0 / g_total)
    assert final(r, "T_junction") == pytest.approx(expected, abs=1e-3)
    assert final(r, "Q_conv") == pytest.approx(p, rel=1e-6)


@pytest.mark.slow
def test_heat_sink_fan_operating_point_is_on_the_fan_curve(twins: dict[str, tuple[Path, Path]]) -> None:
    for fan, (p0, q0) in enumerate([(60, 0.012), (75, 0.022), (150, 0.030), (400, 0.012)], start=1):
        for speed in (1, 4):
            r = sim(twins, "heat_sink", start_values={"fan_model": fan, "fan_speed": speed}, stop_time=10.0)
            ratio = 0.40 + 0.15 * speed  # 55 .. 100 % of rated speed
            q_total = final(r, "V_flow") + final(r, "V_bypass")
            assert final(r, "dp") == pytest.approx(
                p0 * ratio**2 * (1 - (q_total / (q0 * ratio)) ** 2), rel=1e-6
            )


@pytest.mark.slow
def test_heat_sink_choices_interact(twins: dict[str, tuple[Path, Path]]) -> None:
    """The duct's benefit depends on the fin count (pairwise term): a narrow-gap sink gains more."""

    def tj(n_fins: int, duct: bool) -> float:
        r = sim(twins, "heat_sink", start_values={"n_fins": n_fins, "duct": duct})
        return final(r, "T_junction_max")

    gain_sparse = tj(12, False) - tj(12, True)
    gain_dense = tj(27, False) - tj(27, True)
    assert gain_sparse > 0 and gain_dense > 0
    assert abs(gain_dense - gain_sparse) > 0.2


@pytest.mark.slow
def test_heat_sink_reports_impossible_geometry_as_error(twins: dict[str, tuple[Path, Path]]) -> None:
    with pytest.raises(FMICallException, match="fmi2ExitInitializationMode"):
        sim(twins, "heat_sink", start_values={"base_width": 0.03, "n_fins": 27, "fin_thickness": 0.0015})


# ---------------------------------------------------------------- servo_pid


@pytest.mark.slow
def test_servo_cosimulation_and_model_exchange_agree(twins: dict[str, tuple[Path, Path]]) -> None:
    cs = sim(twins, "servo_pid", fmi_type="CoSimulation", output_interval=0.01)
    me = sim(twins, "servo_pid", fmi_type="ModelExchange", output_interval=0.01)
    n = min(len(cs), len(me))
    grid = cs["time"][:n]
    theta_me = np.interp(grid, me["time"], me["theta"])
    assert np.max(np.abs(cs["theta"][:n] - theta_me)) < 1e-3
    assert final(cs, "ITAE") == pytest.approx(final(me, "ITAE"), rel=1e-3)
    assert final(cs, "overshoot") == pytest.approx(final(me, "overshoot"), abs=1e-3)


@pytest.mark.slow
def test_servo_fmi3_package_matches_fmi2(twins: dict[str, tuple[Path, Path]]) -> None:
    assert read_model_description(str(twins["servo_pid_fmi3"][1])).fmiVersion == "3.0"
    for fmi_type, tol in (("CoSimulation", 1e-12), ("ModelExchange", 1e-3)):
        a = sim(twins, "servo_pid", fmi_type=fmi_type, output_interval=0.01)
        b = sim(twins, "servo_pid_fmi3", fmi_type=fmi_type, output_interval=0.01)
        assert final(b, "theta") == pytest.approx(final(a, "theta"), abs=tol)
        assert final(b, "ITAE") == pytest.approx(final(a, "ITAE"), rel=max(tol, 1e-12))
        assert final(b, "overshoot") == pytest.approx(final(a, "overshoot"), abs=tol)
        assert final(b, "overshoot") > 0.0


@pytest.mark.slow
def test_servo_steady_state_matches_hand_calculation(twins: dict[str, tuple[Path, Path]]) -> None:
    """PD control (Ki = 0) against a constant load torque: theta = b r - R_a T_d / (K_m Kp)."""
    kp, td = 20.0, 0.05
    start = {"Kp": kp, "Ki": 0.0, "Kd": 0.3, "b_sp": 1.0, "T_disturbance": td}
    r = sim(twins, "servo_pid", start_values=start, stop_time=6.0, output_interval=0.01)
    assert final(r, "theta") == pytest.approx(1.0 - 1.2 * td / (0.05 * kp), abs=2e-4)
    assert final(r, "current") == pytest.approx(td / 0.05, rel=1e-3)
    # with integral action the error vanishes
    r = sim(twins, "servo_pid", start_values={"Ki": 20.0}, stop_time=6.0, output_interval=0.01)
    assert abs(final(r, "error")) < 1e-3


@pytest.mark.slow
def test_servo_saturation_and_antiwindup_limit_voltage(twins: dict[str, tuple[Path, Path]]) -> None:
    r = sim(twins, "servo_pid", start_values={"Kp": 100.0, "Ki": 400.0}, output_interval=0.001)
    assert np.max(np.abs(r["u"])) <= 12.0 + 1e-9
    assert np.max(np.abs(r["u_unsaturated"])) > 12.0


# ---------------------------------------------------------------- production_line


def line(twins: dict[str, tuple[Path, Path]], stop: float = 432000.0, **start: Any) -> np.ndarray:
    return sim(twins, "production_line", start_values=start, stop_time=stop, output_interval=stop / 4)


@pytest.mark.slow
def test_line_seeds_reproduce_exactly_and_differ(twins: dict[str, tuple[Path, Path]]) -> None:
    a, b, c = line(twins, seed=7), line(twins, seed=7), line(twins, seed=8)
    for out in ("throughput", "wip", "oee", "cycle_time", "downtime"):
        assert final(a, out) == final(b, out)
    assert final(a, "throughput") != final(c, "throughput")
    assert final(a, "parts_good") != final(c, "parts_good")


def bottleneck_bound() -> float:
    """Good parts per hour of an unblocked, unstarved line with a crew always free."""
    p = [52.0, 55.0, 58.0, 50.0, 54.0]
    mtbf = [6.0, 10.0, 5.0, 8.0, 12.0]
    mttr = [1200.0, 1800.0, 900.0, 2400.0, 1500.0]
    q = [0.005, 0.010, 0.005, 0.020, 0.005]
    cap = [3600.0 / (p[i] * (1 + mttr[i] / (mtbf[i] * 3600.0))) for i in range(5)]
    reach = np.cumprod([1.0] + [1 - x for x in q[:-1]])  # fraction of started parts reaching station i
    start_rate = min(cap[i] / reach[i] for i in range(5))
    return float(start_rate * np.prod([1 - x for x in q]))


@pytest.mark.slow
def test_line_long_run_throughput_matches_bottleneck_bound(twins: dict[str, tuple[Path, Path]]) -> None:
    bound = bottleneck_bound()
    big = {f"buffer_{i}": 64 for i in range(1, 5)}
    rates = [final(line(twins, 60 * 86400.0, seed=s, n_crews=5, **big), "throughput") for s in (1, 2, 3)]
    mean = float(np.mean(rates))
    print(f"bottleneck bound {bound:.2f}/h, long-run throughput {mean:.2f}/h ({rates})")
    assert 0.97 * bound < mean < 1.01 * bound
    small = {f"buffer_{i}": 1 for i in range(1, 5)}
    tight = final(line(twins, 60 * 86400.0, seed=1, n_crews=1, **small), "throughput")
    assert tight < 0.9 * bound


@pytest.mark.slow
def test_line_oee_is_product_of_its_factors(twins: dict[str, tuple[Path, Path]]) -> None:
    r = line(twins, seed=3)
    assert final(r, "oee") == pytest.approx(
        final(r, "availability") * final(r, "performance") * final(r, "quality"), rel=1e-12
    )
    assert 0.9 < final(r, "quality") < 1.0
    assert final(r, "oee") == pytest.approx(final(r, "throughput") * 58.0 / 3600.0, rel=1e-12)


@pytest.mark.slow
def test_line_study_scenarios_are_close_calls(twins: dict[str, tuple[Path, Path]]) -> None:
    """>= 20 scenarios; the leaders' profit differs by about one replication standard deviation, while
    run-to-failure layouts are clearly worse (seeds fixed: deterministic)."""
    study = tomllib.loads((FMUS / "production_line.toml").read_text())
    scenarios = study["scenarios"]
    assert len(scenarios) >= 20

    def reps(name: str) -> np.ndarray:
        return np.array([final(line(twins, seed=s, **scenarios[name]), "profit") for s in range(8)])

    best, second, poor = reps("opp_crew1_around_bn"), reps("opp_crew1_even"), reps("rtf_crew2_even")
    sd = float(np.sqrt((best.var(ddof=1) + second.var(ddof=1)) / 2))
    print(f"leaders {best.mean():.2f} vs {second.mean():.2f} USD/h (sd {sd:.2f}); run-to-failure {poor.mean():.2f}")
    assert 0.1 * sd < abs(best.mean() - second.mean()) < 2.5 * sd
    assert poor.mean() < best.mean() - 3 * sd


@pytest.mark.slow
def test_line_rejects_invalid_buffer(twins: dict[str, tuple[Path, Path]]) -> None:
    with pytest.raises(FMICallException, match="fmi2ExitInitializationMode"):
        line(twins, buffer_1=0)


# ---------------------------------------------------------------- building_zone


@pytest.mark.slow
def test_zone_true_parameters_fit_to_noise_level(twins: dict[str, tuple[Path, Path]]) -> None:
    info = json.loads((FMUS / "building_zone" / "true_parameters.json").read_text())
    assert info["synthetic"] is True
    r = sim(twins, "building_zone", start_values=info["true_parameters"], output_interval=86400.0)
    noise = info["noise_std_K"]
    assert noise * 0.8 < final(r, "rmse") < noise * 1.3
    assert abs(final(r, "mean_residual")) < 0.05
    gap_hours = sum(b - a for a, b in info["gaps_hours"])
    assert int(final(r, "n_fit")) == 56 * 24 + 1 - 7 * 24 - gap_hours
    default = sim(twins, "building_zone", output_interval=86400.0)
    assert final(default, "rmse") > 5 * final(r, "rmse")


@pytest.mark.slow
def test_zone_follows_its_input_signals(twins: dict[str, tuple[Path, Path]]) -> None:
    rows = np.genfromtxt(FMUS / "building_zone" / "resources" / "inputs.csv", delimiter=",", names=True)
    r = sim(twins, "building_zone", stop_time=48 * 3600.0, output_interval=3600.0)
    assert np.allclose(r["T_out"], rows["T_out_C"][:49] + 273.15)
    assert np.allclose(r["I_sol"], rows["I_sol_W_m2"][:49])


@pytest.mark.slow
def test_zone_matches_an_independent_ode_solution(twins: dict[str, tuple[Path, Path]]) -> None:
    """scipy integrates the README's two-node equations with the CSV inputs (weather linear,
    schedules and HVAC command held per hour); the FMU's fixed-step RK4 must agree."""
    from scipy.integrate import solve_ivp

    p = json.loads((FMUS / "building_zone" / "true_parameters.json").read_text())["true_parameters"]
    days = 10
    r = sim(twins, "building_zone", start_values=p, stop_time=days * 86400.0, output_interval=3600.0)
    rows = np.genfromtxt(FMUS / "building_zone" / "resources" / "inputs.csv", delimiter=",", names=True)
    g_inf = 1206.0 * 300.0 * p["ACH"] / 3600.0
    t_air, t_mass = [293.15], [293.15]
    x = np.array([293.15, 293.15])
    for k in range(days * 24):

        def rhs(t: float, y: np.ndarray, k: int = k) -> list[float]:
            f = t / 3600.0 - k
            t_out = 273.15 + rows["T_out_C"][k] * (1 - f) + rows["T_out_C"][k + 1] * f
            q_sol = p["A_sol"] * (rows["I_sol_W_m2"][k] * (1 - f) + rows["I_sol_W_m2"][k + 1] * f)
            q_air = 200.0 + 1500.0 * rows["occupancy"][k] + p["eta_hvac"] * rows["P_hvac_W"][k]
            q_im = (y[1] - y[0]) / p["R_im"]
            return [
                (q_im + (t_out - y[0]) * (1 / p["R_win"] + g_inf) + 0.4 * q_sol + q_air) / p["C_air"],
                (-q_im + (t_out - y[1]) / p["R_wall"] + 0.6 * q_sol) / p["C_mass"],
            ]

        x = solve_ivp(rhs, (k * 3600.0, (k + 1) * 3600.0), x, rtol=1e-10, atol=1e-8).y[:, -1]
        t_air.append(x[0])
        t_mass.append(x[1])
    assert np.max(np.abs(r["T_air"] - np.array(t_air))) < 0.01
    assert np.max(np.abs(r["T_mass"] - np.array(t_mass))) < 0.01


@pytest.mark.slow
def test_zone_reports_missing_data_as_error(twins: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    broken = tmp_path / "bz"
    shutil.copytree(twins["building_zone"][1], broken)
    (broken / "resources" / "measured.csv").unlink()
    with pytest.raises(FMICallException, match="fmi2ExitInitializationMode"):
        simulate_fmu(str(broken), stop_time=3600.0)


# ---------------------------------------------------------------- timing (printed, not asserted)


@pytest.mark.slow
def test_print_simulation_times(twins: dict[str, tuple[Path, Path]]) -> None:
    from fmpy import instantiate_fmu

    for name in NAMES:
        unzipped = str(twins[name][1])
        md = read_model_description(unzipped)
        fmu = instantiate_fmu(unzipped, md, fmi_type="CoSimulation")
        study_file = FMUS / f"{name}.toml"
        twin = tomllib.loads(study_file.read_text())["twin"] if study_file.exists() else {}
        kwargs = {"stop_time": twin.get("stop_time"), "output_interval": twin.get("output_interval")}
        times = []
        for _ in range(5):
            fmu.reset()
            t0 = time.perf_counter()
            r = simulate_fmu(
                unzipped, model_description=md, fmu_instance=fmu, fmi_type="CoSimulation", **kwargs
            )
            times.append(time.perf_counter() - t0)
        fmu.freeInstance()
        assert len(r) > 1
        print(f"{name}: {1e3 * min(times):.2f} ms per simulation (best of 5, reused instance)")
