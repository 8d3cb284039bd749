"""Every stored number equals what a fresh instance in plain fmpy gives, on FMUs whose instance life cycle
misbehaves the way FMUs from real tools do (the `quirky` test twin, built from C in this test run)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fmpy import simulate_fmu

import fmi_optimizer
from fmi_optimizer.engine.instance_strategy import prove
from fmi_optimizer.engine.protocol import RunRequest
from fmi_optimizer.fmu.simulator import SimSettings
from fmi_optimizer.fmu.twin import Twin
from fmi_optimizer.host.kpi import compute_kpis
from fmi_optimizer.study.storage import Store

QUIRKS = {"none": 0, "reset_keeps_state": 1, "reset_ignores_parameters": 2, "global_state": 3,
          "crash_on_reuse": 4, "assert_on_stdout": 5, "process_state": 6, "reset_degrades": 7,
          "crash_on_new_instance": 8}


def _study(tmp_path: Path, fmu: Path, quirk: str, *, instances: str = "auto", extra: str = "", budget: int = 8,
           evaluation: str = "") -> Path:
    study = tmp_path / "quirky.toml"
    study.write_text(f"""
[twin]
fmu = "{fmu}"
stop_time = 1.0
output_interval = 0.05

[parameters]
"lag.k" = {{ min = 0.2, max = 5.0 }}
"lag.target" = {{ min = -2.0, max = 2.0 }}

[fixed]
quirk = {QUIRKS[quirk]}
{extra}

[kpis]
y_final = "final(y)"
y_mean = "mean(y)"

[objective]
minimize = {{ y_mean = 1.0 }}

[method]
name = "random"
budget = {{ evaluations = {budget} }}

[evaluation]
workers = 1
instances = "{instances}"
{evaluation}
""")
    return study


FRESH_PROCESS = """
import json, sys
from fmpy import simulate_fmu
a = json.loads(sys.argv[1])
r = simulate_fmu(a["fmu"], start_values=a["values"], stop_time=1.0, output_interval=0.05, output=["y"])
print(json.dumps({"time": r["time"].tolist(), "y": r["y"].tolist()}))
"""


def _fresh(fmu: Path, values: dict[str, object], quirk: str) -> tuple[np.ndarray, np.ndarray]:
    """The truth: a fresh instance in plain fmpy; in a fresh process for an FMU that keeps state in the process
    itself (run in this one, it would inherit the state of the runs before)."""
    if quirk != "process_state":
        fresh = simulate_fmu(str(fmu), start_values=values, stop_time=1.0, output_interval=0.05, output=["y"])
        return fresh["time"], fresh["y"]
    proc = subprocess.run([sys.executable, "-c", FRESH_PROCESS, json.dumps({"fmu": str(fmu), "values": values})],
                          capture_output=True, text=True, timeout=600, check=True)
    reply = json.loads(proc.stdout)
    return np.asarray(reply["time"]), np.asarray(reply["y"])


def _assert_stored_numbers_are_fresh(outcome: fmi_optimizer.runner.run.Outcome, quirk: str) -> None:
    """Every stored KPI equals the study's own KPI expressions applied to the truth."""
    problem = outcome.problem
    checked = 0
    for ev in outcome.result.evaluations:
        assert ev.status == "ok", ev.error
        t, y = _fresh(problem.twin.fmu.runnable, {**ev.values, "quirk": QUIRKS[quirk]}, quirk)
        kpis = compute_kpis(problem.kpis, t, {"y": y}, problem.reducers)
        assert ev.kpis == pytest.approx(kpis, rel=1e-9, abs=1e-12), (quirk, ev.values)
        checked += 1
    assert checked == len(outcome.result.evaluations) > 0


QUIRKY_CASES = [("reset_keeps_state", "reinstantiate"), ("reset_ignores_parameters", "reinstantiate"),
                ("global_state", "reload"), ("crash_on_reuse", "reinstantiate"), ("process_state", "process"),
                ("crash_on_new_instance", "reload")]


# the fast loop (-m "not slow") keeps the plain case; the full suite runs every quirk
@pytest.mark.parametrize("quirk, strategy", [("none", "reset"),
                                             *[pytest.param(*c, marks=pytest.mark.slow) for c in QUIRKY_CASES]])
def test_a_study_stores_only_numbers_a_fresh_instance_gives(tmp_path: Path, quirky_fmu: Path, quirk: str,
                                                            strategy: str) -> None:
    outcome = fmi_optimizer.optimize(_study(tmp_path, quirky_fmu, quirk), out=tmp_path / "out", write_back=False)
    _assert_stored_numbers_are_fresh(outcome, quirk)
    record = outcome.to_json()["instances"]
    assert record["strategy"] == strategy, record
    assert record["final"] == strategy and not record["switches"]
    if strategy not in ("reset", "process"):
        assert any(why in record["trials"]["reset"] for why in ("differs from a fresh run", "crashed",
                                                                "a fresh instance gave other numbers"))
    if quirk == "crash_on_new_instance":  # reset itself works; the production check's new instance crashes
        assert "the check of a run on a reused (reset) instance, on a new instance" in record["trials"]["reset"]
        assert "crashed" in record["trials"]["reinstantiate"]
    if quirk == "crash_on_reuse":  # the reused instance itself crashes, before any check
        assert "a run on a reused (reset) instance crashed" in record["trials"]["reset"]
    if strategy == "process":
        assert "a fresh library copy in a process that ran before differs" in record["reason"]


@pytest.mark.slow
def test_the_proof_tries_strategies_fastest_first_and_is_cached(quirky_fmu: Path) -> None:
    runnable = Twin.open(quirky_fmu).fmu.runnable
    requests = [RunRequest(i, {"lag.k": k, "quirk": 2}, SimSettings(), ("y",)) for i, k in enumerate((1.0, 2.0, 3.0))]
    first = prove(runnable, requests)
    assert first.strategy == "reinstantiate" and not first.cached
    assert list(first.trials) == ["reset", "snapshot", "reinstantiate"]
    assert "canGetAndSetFMUstate" in first.trials["snapshot"]
    again = prove(runnable, requests)
    assert again.cached and again.strategy == "reinstantiate"
    other_fixed = [RunRequest(r.task_id, {**r.start_values, "quirk": 0}, r.settings, r.outputs) for r in requests]
    assert prove(runnable, other_fixed).strategy == "reset"  # the shared values are part of the cache key


@pytest.mark.parametrize("quirk", ["reset_keeps_state", "reset_ignores_parameters", "crash_on_reuse"])
def test_production_checks_catch_a_strategy_the_fmu_does_not_honour(tmp_path: Path, quirky_fmu: Path,
                                                                    quirk: str) -> None:
    """Forced onto `reset` (no proof), the workers' check of the first reused run (or the crash of one) switches
    to fresh instances, and every reused run no check vouched for is run again and replaced."""
    study = _study(tmp_path, quirky_fmu, quirk, instances="reset")
    outcome = fmi_optimizer.optimize(study, out=tmp_path / "out", write_back=False)
    _assert_stored_numbers_are_fresh(outcome, quirk)
    record = outcome.to_json()["instances"]
    assert record["strategy"] == "reset" and record["final"] == "reload"
    assert len(record["switches"]) == 1
    assert "fresh instance gave other numbers" in record["switches"][0] or "crashed" in record["switches"][0]
    stored = Store(outcome.db).evaluations(outcome.result.study_id)
    assert [e.kpis for e in stored] == [e.kpis for e in outcome.result.evaluations]  # the store was corrected


def test_a_failed_check_reruns_every_unchecked_reused_run_and_corrects_what_was_stored(tmp_path: Path,
                                                                                      quirky_fmu: Path) -> None:
    """The FMU's reset works twice, then keeps state: the always-checked first reuse agrees, later unchecked runs
    are wrong, and a later random check catches it. Every reused run no check compared is run again and the
    stored evaluations it got wrong are replaced (the worker's check draws are seeded: this is deterministic)."""
    study = _study(tmp_path, quirky_fmu, "reset_degrades", instances="reset", budget=16, evaluation="check_share = 0.25")
    outcome = fmi_optimizer.optimize(study, out=tmp_path / "out", write_back=False)
    _assert_stored_numbers_are_fresh(outcome, "reset_degrades")
    record = outcome.to_json()["instances"]
    assert record["final"] == "reload" and len(record["switches"]) == 1
    assert record["reruns"] >= 2 and record["corrected"], record
    stored = {e.id: e.kpis for e in Store(outcome.db).evaluations(outcome.result.study_id)}
    assert stored == {e.id: e.kpis for e in outcome.result.evaluations}


@pytest.mark.slow
def test_what_an_fmu_prints_to_stdout_is_quoted_in_its_failed_run(tmp_path: Path, quirky_fmu: Path) -> None:
    study = _study(tmp_path, quirky_fmu, "assert_on_stdout", extra="\"lag.x0\" = 0.5")
    proc = subprocess.run([sys.executable, "-m", "fmi_optimizer.cli.main", "optimize", str(study), "--json",
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=600)
    reply = json.loads(proc.stdout)  # pure JSON, whatever the FMU printed
    assert reply["evaluations"]["failed"] >= 1
    stored = Store(Path(reply["outputs"]["db"])).evaluations(reply["study_id"])
    failed = [e for e in stored if e.status == "failed"]
    assert failed and all("lag.x0 = 0.5 must not exceed lag.target" in e.error for e in failed), failed[0].error


@pytest.mark.slow
def test_chatter_on_stdout_and_stderr_never_reaches_the_json_reply(tmp_path: Path, quirky_fmu: Path) -> None:
    study = _study(tmp_path, quirky_fmu, "none", extra="chatter = true")
    proc = subprocess.run([sys.executable, "-m", "fmi_optimizer.cli.main", "optimize", str(study), "--json",
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    reply = json.loads(proc.stdout)
    assert reply["evaluations"]["ok"] == 8
    assert reply["outputs"]["fmu"] and Path(reply["outputs"]["fmu"]).is_file()
    assert "quirky:" not in proc.stdout


@pytest.mark.slow
def test_check_probes_an_fmu_and_says_what_the_optimizer_will_do(quirky_fmu: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "fmi_optimizer.cli.main", "check", str(quirky_fmu), "--json"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    probes = {p["name"]: p for p in report["probes"]}
    assert report["generation_tool"] == "fmi_optimizer tests (hand written)"
    assert report["parameters"] == ["lag.k", "lag.target"]
    assert probes["moves"]["ok"] and probes["instances"]["ok"]
    assert report["strategy"]["strategy"] == "reset"
    assert set(report["seconds_per_run"]) == {"reset", "reload", "process"}
    assert probes["chatter"]["detail"] == "prints nothing"
    assert probes["setup order"]["detail"] == "a value set before fmi2SetupExperiment takes effect"
    assert probes["write-back"]["ok"], probes["write-back"]
    assert report["verdict"] == "usable" and report["plan"][0].startswith("runs each evaluation on a reset instance")
    human = subprocess.run([sys.executable, "-m", "fmi_optimizer.cli.main", "check", str(quirky_fmu), "--no-writeback"],
                           capture_output=True, text=True, timeout=600)
    assert "verdict: usable" in human.stdout and "write-back" not in human.stdout


@pytest.mark.slow
def test_check_of_a_study_file_still_means_the_drift_check_and_asks_for_its_data(tmp_path: Path,
                                                                                  quirky_fmu: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "fmi_optimizer.cli.main", "check",
                           str(_study(tmp_path, quirky_fmu, "none"))], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 5 and "a drift check needs --data" in proc.stderr


@pytest.mark.slow
def test_a_study_whose_fmu_write_back_cannot_deliver_is_refused_before_any_run(tmp_path: Path,
                                                                               sample_fmu) -> None:
    """A model-exchange-only FMU: write-back needs co-simulation, so the study stops with exit 4 and the
    remedy before a single simulation; without write-back it runs."""
    import re
    import zipfile

    source = sample_fmu("servo_pid")
    me_only = tmp_path / "servo_me.fmu"
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(me_only, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "modelDescription.xml":
                data = re.sub(rb"<CoSimulation.*?</CoSimulation>", b"", data, flags=re.S)
            zout.writestr(item, data)
    study = tmp_path / "me.toml"
    study.write_text(f"""
[twin]
fmu = "{me_only}"
stop_time = 0.5
[parameters]
Kp = {{ min = 0.5, max = 100.0 }}
[kpis]
itae = "final(ITAE)"
[objective]
minimize = {{ itae = 1.0 }}
[method]
name = "random"
budget = {{ evaluations = 3 }}
""")
    proc = subprocess.run([sys.executable, "-m", "fmi_optimizer.cli.main", "optimize", str(study), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 4, proc.stderr[-2000:]
    assert "model-exchange only" in proc.stderr and "--no-writeback" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "fmi_optimizer.db").exists()  # refused before anything was run or stored
    ran = subprocess.run([sys.executable, "-m", "fmi_optimizer.cli.main", "optimize", str(study), "--out",
                          str(tmp_path / "out"), "--no-writeback", "--json"], capture_output=True, text=True,
                         timeout=600)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert json.loads(ran.stdout)["evaluations"]["ok"] == 3


def test_the_terminal_line_keeps_the_headline_of_a_long_verdict() -> None:
    """A Dymola pump's verdict (crash messages of three failed trials) made a 600-character line printed for
    every study; the terminal gets the headline and the trials' names, the JSON keeps the whole."""
    from fmi_optimizer.engine.instance_strategy import PROVEN, StrategyVerdict

    details = "; ".join(f"{s}: task 1: a worker crashed (SIGSEGV) " + "x" * 150 for s in ("reset", "snapshot"))
    verdict = StrategyVerdict("reload", "only a fresh copy of the library per run (as plain fmpy loads it) "
                              "reproduces fresh runs: " + details,
                              {"reset": "crashed", "snapshot": "crashed", "reinstantiate": PROVEN}, "0" * 64, 1.0)
    line = verdict.summary()
    assert line == ("instance strategy reload: only a fresh copy of the library per run (as plain fmpy loads it) "
                    "reproduces fresh runs (tried reset, snapshot; the report's 'Simulation instances' says why "
                    "each failed)")
    assert verdict.to_json()["reason"].endswith("x" * 150)
    short = StrategyVerdict("reset", "reset reproduces plain fmpy's fresh runs of 3 value sets", {}, "0" * 64, 1.0,
                            cached=True)
    assert short.summary() == ("instance strategy reset: reset reproduces plain fmpy's fresh runs of 3 value sets "
                               "(cached proof)")
