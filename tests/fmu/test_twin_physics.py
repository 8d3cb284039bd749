"""Physics a domain expert checks first, per sample twin: trends, balances, bounds, random streams.

Each test states a property the twin must have whatever its parameters, and would have caught a known
defect of an earlier version of the twin (listed in ``docs/bench/sample_twins.md``, "Expert review").
To run these tests on other twin sources (for example an older commit's ``fmus/`` folder, to see which
properties it breaks), point ``FMIO_TWIN_SOURCES`` at that folder: the twins are then built from there.
Every FMU is built from C at test time and simulated in plain fmpy.
"""

from __future__ import annotations

import math
import os
import shutil
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import load_script

ROOT = Path(__file__).resolve().parents[2]
SOURCES = Path(os.environ.get("FMIO_TWIN_SOURCES", ROOT / "fmus"))

fmpy = pytest.importorskip("fmpy")
from fmpy import simulate_fmu  # noqa: E402

if shutil.which("cmake") is None:
    pytest.skip("cmake is needed to compile the source FMUs of the sample twins", allow_module_level=True)


# compiles three sample twins with cmake: out of the fast loop, like the other compiled-twin checks
pytestmark = pytest.mark.slow

Twins = dict[str, Path]
PHYSICS = ("heat_sink", "servo_pid", "production_line")


@pytest.fixture(scope="module")
def twins(compiled_sample: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Twins:
    """name -> extracted folder with the compiled binary; ``FMIO_TWIN_SOURCES=<folder>`` runs these tests on
    other twin sources (e.g. a checkout of the previous twins, to see the tests fail there)."""
    if SOURCES.resolve() == (ROOT / "fmus").resolve():
        return {name: compiled_sample(name) for name in PHYSICS}
    other = load_script(SOURCES / "build.py", "fmus_build_other_sources")
    out = tmp_path_factory.mktemp("physics_twins")
    return {name: other.compile_fmu(other.build_sample(name, out), out / f"{name}_unzipped") for name in PHYSICS}


def sim(twins: Twins, name: str, **kwargs: Any) -> np.ndarray:
    return simulate_fmu(str(twins[name]), **kwargs)


def final(result: np.ndarray, name: str) -> float:
    return float(result[name][-1])


# ---------------------------------------------------------------- production_line


def line(twins: Twins, stop: float = 432000.0, **start: Any) -> np.ndarray:
    return sim(twins, "production_line", start_values=start, stop_time=stop, output_interval=stop / 4)


def test_line_keeps_its_throughput_past_2_to_the_24_seconds(twins: Twins) -> None:
    """Throughput over each quarter of a 400-day run stays at the level of the first quarter: the event
    logic must not depend on an absolute time tolerance (float spacing exceeds 1e-9 s past 2^24 s)."""
    stop = 400 * 86400.0  # > 2^24 s = 194 days
    r = line(twins, stop, seed=5, n_crews=2, warmup=0.0)
    good = np.asarray(r["parts_good"], dtype=float)
    per_quarter = np.diff(good) / (stop / 4 / 3600.0)
    print(f"parts/h per 100-day quarter: {np.round(per_quarter, 2)}")
    assert min(per_quarter) > 0.97 * max(per_quarter)
    assert per_quarter[-1] > 40.0


def _reps(twins: Twins, scenario: dict[str, Any], seeds: range, out: str = "throughput") -> np.ndarray:
    return np.array([final(line(twins, seed=s, **scenario), out) for s in seeds])


def test_line_common_random_numbers_correlate_across_policies(twins: Twins) -> None:
    """With separate random streams per source, the same seed gives the same processing, failure, repair and
    scrap draws under another maintenance policy, so replications of the two maintenance policies (the close
    call of the study) are positively correlated: the variance reduction that ranking with common random
    numbers relies on. (Run-to-failure against a maintenance policy stays weakly correlated: maintenance
    replaces most failures, so the two share processing and scrap draws but not the failure history.)"""
    base = {"n_crews": 2, "buffer_1": 3, "buffer_2": 3, "buffer_3": 3, "buffer_4": 3}
    seeds = range(16)
    prev = _reps(twins, {**base, "policy": 2}, seeds)
    opp = _reps(twins, {**base, "policy": 3}, seeds)
    rho = float(np.corrcoef(prev, opp)[0, 1])
    print(f"correlation of preventive and opportunistic replications: {rho:.2f}")
    assert rho > 0.4


def test_line_larger_buffers_raise_throughput_with_diminishing_returns(twins: Twins) -> None:
    """Throughput grows with buffer size and the gain per added place shrinks (same seeds everywhere)."""
    seeds = range(6)
    rates = []
    for size in (1, 2, 4, 8, 16):
        bufs = {f"buffer_{i}": size for i in range(1, 5)}
        rates.append(float(_reps(twins, {"policy": 1, "n_crews": 2, **bufs}, seeds).mean()))
    gains = np.diff(rates) / np.diff([1, 2, 4, 8, 16])  # parts/h per added place and buffer
    print(f"throughput by buffer size 1, 2, 4, 8, 16: {np.round(rates, 2)}; gain per place {np.round(gains, 3)}")
    assert all(np.diff(rates) > 0)
    assert all(np.diff(gains) < 0)


def test_line_study_compares_layouts_of_equal_capacity_and_prices_crews(twins: Twins) -> None:
    """The study's buffer layouts hold the same number of places, so a layout wins by where its places are,
    not by having more; the objective charges crews and buffer places, so a second crew must pay for itself."""
    study = tomllib.loads((SOURCES / "production_line.toml").read_text())
    scenarios = study["scenarios"]
    totals = {sum(v for k, v in s.items() if k.startswith("buffer_")) for s in scenarios.values()}
    assert len(totals) == 1, f"buffer layouts hold different totals: {sorted(totals)}"
    objective = study["objective"]
    assert "profit" in str(objective), "the objective must price crews and buffers (profit), not raw throughput"
    r = line(twins, seed=1, n_crews=2, buffer_1=3, buffer_2=3, buffer_3=3, buffer_4=3)
    expected = 25.0 * final(r, "throughput") - 2 * 45.0 - 12 * 0.25
    assert final(r, "profit") == pytest.approx(expected, rel=1e-12)


def test_line_longer_planned_maintenance_costs_throughput(twins: Twins) -> None:
    """A longer planned stop takes more station time: preventive throughput falls as pm_duration grows, while
    run-to-failure does not use it at all (same seeds: common random numbers)."""
    base = {"policy": 2, "n_crews": 2, "buffer_1": 3, "buffer_2": 3, "buffer_3": 3, "buffer_4": 3}
    seeds = range(6)
    short = _reps(twins, {**base, "pm_duration": 300.0}, seeds).mean()
    long = _reps(twins, {**base, "pm_duration": 1800.0}, seeds).mean()
    rtf_a = _reps(twins, {**base, "policy": 1, "pm_duration": 300.0}, seeds)
    rtf_b = _reps(twins, {**base, "policy": 1, "pm_duration": 1800.0}, seeds)
    assert long < short - 1.0
    assert np.array_equal(rtf_a, rtf_b)


def capacity_bound(failures: bool) -> float:
    """Good parts per hour of an unblocked, unstarved line with a crew always free; with failures as under
    run-to-failure (busy-time MTBF, mean repair time), or without any failure (the limit of maintenance)."""
    p = [52.0, 55.0, 58.0, 50.0, 54.0]
    mtbf = [6.0, 10.0, 5.0, 8.0, 12.0]
    mttr = [1200.0, 1800.0, 900.0, 2400.0, 1500.0]
    q = [0.005, 0.010, 0.005, 0.020, 0.005]
    cap = [3600.0 / (p[i] * (1 + (mttr[i] / (mtbf[i] * 3600.0) if failures else 0.0))) for i in range(5)]
    reach = np.cumprod([1.0] + [1 - x for x in q[:-1]])
    return float(min(cap[i] / reach[i] for i in range(5)) * np.prod([1 - x for x in q]))


def test_line_capacity_bound_holds_for_every_policy(twins: Twins) -> None:
    """Run-to-failure stays below the bottleneck bound with failures (57.35 parts/h); no maintenance policy
    beats a line without any failure (60.2 parts/h)."""
    assert capacity_bound(True) == pytest.approx(57.35, abs=0.01)
    big = {f"buffer_{i}": 64 for i in range(1, 5)}
    for policy in (1, 2, 3):
        bound = capacity_bound(policy == 1)
        for seed in range(3):
            r = line(twins, 20 * 86400.0, seed=seed, policy=policy, n_crews=5, **big)
            assert final(r, "throughput") < bound * 1.01
            assert 0.0 < final(r, "availability") <= 1.0


# ---------------------------------------------------------------- heat_sink

RATED_FAN_POWER = {1: 1.5, 2: 2.5, 3: 6.0, 4: 7.0}  # W at rated speed: axial_60, axial_80, axial_92hp, blower_97


def hs(twins: Twins, **start: Any) -> np.ndarray:
    return sim(twins, "heat_sink", start_values=start, stop_time=600.0, output_interval=600.0)


def test_heat_sink_fan_never_runs_above_its_rating(twins: Twins) -> None:
    """Every speed step stays within the fan's rated power (power ~ speed^3), the top step is the rating."""
    for fan, rated in RATED_FAN_POWER.items():
        powers = [final(hs(twins, fan_model=fan, fan_speed=step), "P_fan") for step in (1, 2, 3, 4)]
        assert max(powers) <= rated * (1 + 1e-12), f"fan {fan}: {powers} W above its rated {rated} W"
        assert powers[-1] == pytest.approx(rated, rel=1e-12)
        assert all(np.diff(powers) > 0)


def test_heat_sink_more_fins_are_cooler_and_heavier(twins: Twins) -> None:
    """With a fan strong enough for dense fins, every added fin lowers the sink resistance and the peak
    junction temperature and adds mass (and the die tongue ratio grows as the gaps shrink)."""
    rows = [hs(twins, n_fins=n, fan_model=3) for n in (12, 16, 20, 24, 27)]
    r_sink = [final(r, "R_sink") for r in rows]
    tj = [final(r, "T_junction_max") for r in rows]
    mass = [final(r, "mass") for r in rows]
    ratio = [final(r, "fin_aspect_ratio") for r in rows]
    assert all(np.diff(r_sink) < 0) and all(np.diff(tj) < 0)
    assert all(np.diff(mass) > 0) and all(np.diff(ratio) > 0)


def test_heat_sink_reports_the_extrusion_ratio_and_the_study_limits_it(twins: Twins) -> None:
    """fin_aspect_ratio = fin height / gap between fins, by hand; the study constrains it to an extrusion limit."""
    r = hs(twins, n_fins=20, fin_height=0.04, fin_thickness=0.001)
    gap = (0.1 - 20 * 0.001) / 19
    assert final(r, "fin_aspect_ratio") == pytest.approx(0.04 / gap, rel=1e-12)
    study = tomllib.loads((SOURCES / "heat_sink.toml").read_text())
    limit = study["constraints"]["fin_aspect_ratio"]
    assert limit.replace(" ", "").startswith("<=") and float(limit.split("=")[1]) <= 20.0


# ---------------------------------------------------------------- servo_pid


def servo(twins: Twins, **start: Any) -> np.ndarray:
    return sim(twins, "servo_pid", start_values=start, stop_time=2.0, output_interval=0.001)


def rise_time(r: np.ndarray, t_step: float = 0.1, level: float = 0.9) -> float:
    t, theta = r["time"], r["theta"]
    reached = np.where((t >= t_step) & (t < 1.0) & (theta >= level))[0]
    return float(t[reached[0]] - t_step) if len(reached) else math.inf


def test_servo_higher_kp_rises_faster_with_integral_action(twins: Twins) -> None:
    """With Ki = 100 V/(rad s), raising Kp must not slow the set-point response: the anti-windup tracking
    time must not fight the derivative action (a fixed 0.01 s did: 0.06 s at Kp 20, never at Kp 80)."""
    rises = [rise_time(servo(twins, Kp=kp, Ki=100.0)) for kp in (10.0, 20.0, 40.0, 80.0)]
    print(f"rise times (10-90 %) at Kp 10, 20, 40, 80: {rises}")
    assert all(math.isfinite(x) for x in rises)
    assert all(np.diff(rises) <= 1e-9)


def test_servo_itae_is_continuous_in_ki(twins: Twins) -> None:
    """A tiny integral gain changes the response a little, so ITAE may change only a little."""
    off = final(servo(twins, Kp=20.0, Ki=0.0), "ITAE")
    tiny = final(servo(twins, Kp=20.0, Ki=1.0), "ITAE")
    assert tiny == pytest.approx(off, rel=0.2)


def test_servo_itae_times_each_segment_from_its_own_event(twins: Twins) -> None:
    """ITAE = integral of (t - t_step)|e| up to the load step plus (t - t_disturbance)|e| after it, checked
    against the sampled error (trapezoid rule on 1 ms samples)."""
    r = servo(twins, Kp=20.0, Ki=20.0)
    t, e = r["time"], np.abs(r["error"])
    w = np.where(t < 1.0, t - 0.1, t - 1.0)
    w[t < 0.1] = 0.0
    by_hand = float(np.trapezoid(w * e, t))
    assert final(r, "ITAE") == pytest.approx(by_hand, rel=0.02)
