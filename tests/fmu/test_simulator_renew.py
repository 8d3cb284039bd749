"""A new instance of a library the worker keeps loaded: what `reinstantiate` and the production checks run on.

It is instantiated again on the same fmpy wrapper (a new wrapper binds every FMI function again, which costs
more than a short run), and it must still behave as a new instance: no state of the instance before it, while
the library's globals survive (that is what `reload` is for)."""

from __future__ import annotations

from pathlib import Path

import fmpy.simulation
import numpy as np
import pytest

from fmi_optimizer.fmu.simulator import SimSettings, Simulator
from fmi_optimizer.fmu.twin import Twin

SETTINGS = SimSettings(stop_time=1.0, output_interval=0.05)
KEEPS_STATE_ACROSS_RESET, KEEPS_STATE_IN_LIBRARY = 1, 3


@pytest.fixture(scope="module")
def quirky(quirky_fmu: Path) -> Path:
    return Twin.open(quirky_fmu).fmu.runnable  # compiled for this machine


def _final_y(sim: Simulator, quirk: int, target: float) -> float:
    traj = sim.run({"quirk": quirk, "lag.target": target}, SETTINGS, ["y"])
    return float(traj.outputs["y"][-1])


def _a_b_a(quirky: Path, strategy: str, quirk: int) -> tuple[float, float]:
    sim = Simulator(quirky, strategy=strategy)
    try:
        first = _final_y(sim, quirk, 1.5)
        _final_y(sim, quirk, -1.5)
        return first, _final_y(sim, quirk, 1.5)
    finally:
        sim.close()


def test_a_new_instance_on_the_kept_wrapper_starts_from_nothing_the_last_one_did(quirky: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    made = []
    real = fmpy.simulation.instantiate_fmu
    monkeypatch.setattr(fmpy.simulation, "instantiate_fmu", lambda *a, **k: made.append(1) or real(*a, **k))
    first, again = _a_b_a(quirky, "reset", KEEPS_STATE_ACROSS_RESET)
    assert not np.isclose(first, again), "the twin must keep state across fmi2Reset for this test to mean anything"
    made.clear()
    first, again = _a_b_a(quirky, "reinstantiate", KEEPS_STATE_ACROSS_RESET)
    assert first == again
    assert len(made) == 1, "every later instance is instantiated on the wrapper made for the first one"


def test_a_new_instance_keeps_the_library_and_its_globals_a_reload_does_not(quirky: Path) -> None:
    first, again = _a_b_a(quirky, "reinstantiate", KEEPS_STATE_IN_LIBRARY)
    assert not np.isclose(first, again)
    first, again = _a_b_a(quirky, "reload", KEEPS_STATE_IN_LIBRARY)
    assert first == again


def test_a_production_check_on_the_kept_wrapper_catches_a_reset_that_keeps_state(quirky: Path) -> None:
    sim = Simulator(quirky, strategy="reset")
    try:
        _final_y(sim, KEEPS_STATE_ACROSS_RESET, -1.5)
        reused = sim.run({"quirk": KEEPS_STATE_ACROSS_RESET, "lag.target": 1.5}, SETTINGS, ["y"])
        fresh = sim.run({"quirk": KEEPS_STATE_ACROSS_RESET, "lag.target": 1.5}, SETTINGS, ["y"], fresh=True)
        fresh_again = sim.run({"quirk": KEEPS_STATE_ACROSS_RESET, "lag.target": 1.5}, SETTINGS, ["y"], fresh=True)
    finally:
        sim.close()
    assert not np.array_equal(reused.outputs["y"], fresh.outputs["y"])
    assert np.array_equal(fresh.outputs["y"], fresh_again.outputs["y"])
