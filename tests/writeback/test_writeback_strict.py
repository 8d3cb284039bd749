"""Write-back on an FMU that behaves like the ones real tools export (tests/twins/strict, built here from C).

The strict twin resets its parameters in fmi2SetupExperiment (20-sim), calls the logger and memory
callbacks unchecked and wants calloc'ed memory, needs a resource location although it has no resources/
folder (OSP), prints to stdout and stderr, has a String output and a 1000 s default experiment without a
stepSize. Each of these broke write-back through fmpy's container runtime. The truth for every number is
the original simulated by plain fmpy with the values as start values; the written FMU must reproduce it in
fmpy and in libcosim.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fmpy import simulate_fmu

from fmi_optimizer.errors import FmuUnsupportedError, VerificationError
from fmi_optimizer.writeback.write import CheckSettings, apply_values, write_back

VALUES = {"k": 0.03, "gain": 3.0, "label": "abcd"}
RUN_LIBCOSIM = Path(__file__).resolve().parent / "run_libcosim.py"  # the FMU in libcosim, rows as JSON


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))), 1e-300)
    return float(np.max(np.abs(a - b))) / scale


def _libcosim(fmu: Path, outputs: str, step: float, steps: int, tmp_path: Path) -> np.ndarray:
    rows = tmp_path / "rows.json"
    subprocess.run([sys.executable, str(RUN_LIBCOSIM), str(fmu), outputs, str(step), str(steps), str(rows)],
                   check=True, capture_output=True, timeout=300)
    return np.asarray(json.loads(rows.read_text()))


@pytest.mark.slow
def test_written_fmu_reproduces_the_truth_in_fmpy_and_libcosim(strict_fmu: Path, tmp_path: Path) -> None:
    result = write_back(strict_fmu, VALUES, tmp_path / "out", check=CheckSettings(["y", "count"], 100.0, 1.0))
    assert result.ok, result.verification["problems"]
    assert result.trajectories.verified_by == ["fmpy", "libcosim"]
    assert result.verification["importers"] == {"fmpy": "ok", "libcosim": "ok"}
    assert result.fmu is not None and result.fmu.name == "strict.optimized.fmu"
    # the truth: plain fmpy on the original with the values as start values
    truth = simulate_fmu(str(strict_fmu), start_values=VALUES, output=["y"], stop_time=100.0, output_interval=1.0)
    default = simulate_fmu(str(strict_fmu), output=["y"], stop_time=100.0, output_interval=1.0)
    new = simulate_fmu(str(result.fmu), output=["y"], stop_time=100.0, output_interval=1.0)  # no start values
    assert _rel(new["y"], truth["y"]) < 1e-12 and _rel(new["y"], default["y"]) > 0.1
    libcosim = _libcosim(result.fmu, "y", 1.0, 100, tmp_path)
    assert libcosim.shape == (100, 1) and _rel(libcosim[:, 0], truth["y"][1:]) < 1e-12


def test_importer_values_win_even_when_set_before_setup_experiment(strict_fmu: Path, tmp_path: Path) -> None:
    """An importer that sets a value before fmi2SetupExperiment (the strict twin would reset it there)
    still gets its value: the proxy replays it after the baked values. Also: a reset re-applies them."""
    from fmpy import extract, read_model_description
    from fmpy.fmi2 import FMU2Slave

    result = write_back(strict_fmu, VALUES, tmp_path / "out", check=CheckSettings(["y"], 10.0, 1.0))
    assert result.fmu is not None
    md = read_model_description(str(result.fmu))
    vr = {v.name: v.valueReference for v in md.modelVariables}
    slave = FMU2Slave(guid=md.guid, unzipDirectory=extract(str(result.fmu)),
                      modelIdentifier=md.coSimulation.modelIdentifier, instanceName="early")
    slave.instantiate()

    def run(early: dict[str, float]) -> list[float]:
        for name, value in early.items():
            slave.setReal([vr[name]], [value])  # before setupExperiment
        slave.setupExperiment(startTime=0.0)
        slave.enterInitializationMode()
        slave.exitInitializationMode()
        ys = []
        for i in range(10):
            slave.doStep(float(i), 1.0)
            ys.append(slave.getReal([vr["y"]])[0])
        return ys

    mine = run({"k": 0.05})
    slave.reset()
    baked_again = run({})
    slave.terminate()
    slave.freeInstance()
    truth = simulate_fmu(str(strict_fmu), start_values={**VALUES, "k": 0.05}, output=["y"], stop_time=10.0,
                         output_interval=1.0)
    baked = simulate_fmu(str(strict_fmu), start_values=VALUES, output=["y"], stop_time=10.0, output_interval=1.0)
    assert _rel(np.array(mine), truth["y"][1:]) < 1e-12
    assert _rel(np.array(baked_again), baked["y"][1:]) < 1e-12


def test_apply_keeps_the_time_grid_and_skips_string_outputs(strict_fmu: Path, tmp_path: Path) -> None:
    """1000 s default experiment without stepSize, and a String output: apply verifies and says what it
    skipped; the written FMU's default run has the original's time grid."""
    source = tmp_path / "result.json"
    source.write_text(json.dumps({"values": VALUES}))
    result = apply_values(source, strict_fmu, tmp_path / "applied")
    assert result.ok, result.verification["problems"]
    assert result.verification["skipped_outputs"] == ["status"]
    assert set(result.trajectories.per_output) == {"y", "count"}
    assert result.fmu is not None
    new = simulate_fmu(str(result.fmu), output=["y", "count"])  # default settings
    truth = simulate_fmu(str(strict_fmu), output=["y", "count"], start_values=VALUES)
    assert new.shape == truth.shape and np.array_equal(new["time"], truth["time"])
    assert new["time"][-1] == 1000.0 and _rel(new["y"], truth["y"]) < 1e-12


@pytest.mark.slow
def test_failed_verification_leaves_no_fmu_and_says_so(strict_fmu: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import fmi_optimizer.writeback.write as wb

    real = wb.write_proxy_fmu

    def drops_gain(original: Path, values: dict[str, object], out_fmu: Path, **kwargs: object) -> object:
        info = real(original, {k: v for k, v in values.items() if k != "gain"}, out_fmu, **kwargs)
        return info.__class__(**{**info.__dict__, "written": dict(values)})

    monkeypatch.setattr(wb, "write_proxy_fmu", drops_gain)
    out = tmp_path / "out"
    (out).mkdir()
    (out / "strict.optimized.fmu").write_bytes(b"an FMU from an earlier run")
    result = write_back(strict_fmu, VALUES, out, check=CheckSettings(["y"], 20.0, 1.0), strict=False)
    assert not result.ok and result.fmu is None and result.files["fmu"] is None
    assert sorted(p.name for p in out.iterdir()) == ["strict.optimized.json", "strict.optimized.ssv"]
    record = json.loads((out / "strict.optimized.json").read_text())
    assert record["files"]["fmu"] is None and record["verification"]["ok"] is False
    assert record["verification"]["importers"] == {"fmpy": "failed", "libcosim": "failed"}
    with pytest.raises(VerificationError, match="no FMU was written"):
        write_back(strict_fmu, VALUES, out, check=CheckSettings(["y"], 20.0, 1.0))


def _study(fmu: Path) -> str:
    return f"""
[twin]
fmu = "{fmu}"
stop_time = 50.0
output_interval = 1.0

[parameters]
k = {{ min = 0.005, max = 0.1 }}
gain = {{ min = 1.0, max = 4.0 }}

[kpis]
y_end = "final(y)"

[objective]
minimize = {{ y_end = 1.0 }}

[method]
name = "random"
seed = 3
budget = {{ evaluations = 4 }}

[evaluation]
workers = 1
timeout = 60.0
"""


@pytest.mark.slow
def test_optimize_on_a_chatty_fmu_writes_a_verified_fmu(strict_fmu: Path, tmp_path: Path) -> None:
    """The CLI end to end: FMU chatter on stdout must not break verification (it used to end in exit 1
    and a JSONDecodeError), the JSON names the written FMU and says which importers verified it."""
    study = tmp_path / "strict.toml"
    study.write_text(_study(strict_fmu))
    done = subprocess.run([sys.executable, "-m", "fmi_optimizer.cli.main", "optimize", str(study), "--json",
                           "--out", str(tmp_path / "results")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    reply = json.loads(done.stdout)
    assert reply["verification"]["ok"] is True and reply["verification"]["verified_by"] == ["fmpy", "libcosim"]
    written = Path(reply["outputs"]["fmu"])
    assert written.is_file()
    assert not [p for p in written.parent.iterdir() if "unverified" in p.name]
    # the written FMU's default experiment is the study's: default settings reproduce the optimized run
    y_end = simulate_fmu(str(written), output=["y"])["y"][-1]
    assert abs(y_end - reply["best"]["kpis"]["y_end"]) <= 1e-9 * max(1.0, abs(y_end))
    assert "verified in fmpy, libcosim" in done.stderr and "FAILED" not in done.stderr
    report = Path(reply["outputs"]["report"]).read_text()
    assert "verified</span> in fmpy, libcosim" in report


def test_writeback_support_refuses_early(strict_fmu: Path, tmp_path: Path) -> None:
    import zipfile

    from fmi_optimizer.writeback.write import require_writeback_support, writeback_support

    assert writeback_support(strict_fmu) is None
    me_only = tmp_path / "me.fmu"
    with zipfile.ZipFile(strict_fmu) as zin, zipfile.ZipFile(me_only, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "modelDescription.xml":
                data = data.replace(b"<CoSimulation", b"<ModelExchange")
            zout.writestr(item, data)
    message = writeback_support(me_only)
    assert message is not None and "model-exchange only" in message
    require_writeback_support(strict_fmu)
    with pytest.raises(FmuUnsupportedError, match="model-exchange only"):
        require_writeback_support(me_only)
    with pytest.raises(FmuUnsupportedError, match="model-exchange only"):
        write_back(me_only, VALUES, tmp_path / "x", check=CheckSettings(["y"], 1.0, 0.1))


def test_fmi1_cosimulation_write_back(lag1_fmu: Path, tmp_path: Path) -> None:
    """FMI 1.0 co-simulation (functions prefixed with the model identifier) goes through the proxy too."""
    from fmpy import read_model_description

    values = {"k": 0.8, "gain": 3.0, "n": 2}
    result = write_back(lag1_fmu, values, tmp_path / "out", check=CheckSettings(["y"], 10.0, 0.1))
    assert result.ok and result.trajectories.verified_by == ["fmpy", "libcosim"]
    assert result.fmu is not None
    md = read_model_description(str(result.fmu))
    assert md.fmiVersion == "1.0" and md.coSimulation.modelIdentifier == "fmio_proxy"
    assert {v.name: v.start for v in md.modelVariables}["gain"] == "3.0"
    truth = simulate_fmu(str(lag1_fmu), start_values=values, output=["y"], stop_time=10.0, output_interval=0.1)
    new = simulate_fmu(str(result.fmu), output=["y"], stop_time=10.0, output_interval=0.1)
    assert _rel(new["y"], truth["y"]) < 1e-12
    assert _rel(new["y"], simulate_fmu(str(lag1_fmu), output=["y"], stop_time=10.0, output_interval=0.1)["y"]) > 0.05


@pytest.mark.slow
def test_a_study_whose_written_fmu_fails_verification_reports_no_fmu(strict_fmu: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The study path: JSON outputs.fmu null, no FMU on disk, the log says FAILED and never 'verified'."""
    import tomllib

    import fmi_optimizer.writeback.write as wb
    from fmi_optimizer.host.loader import load_host
    from fmi_optimizer.runner.run import run_study
    from fmi_optimizer.study.config import load_study

    real = wb.write_proxy_fmu

    def drops_gain(original: Path, values: dict[str, object], out_fmu: Path, **kwargs: object) -> object:
        info = real(original, {k: v for k, v in values.items() if k != "gain"}, out_fmu, **kwargs)
        return info.__class__(**{**info.__dict__, "written": dict(values)})

    monkeypatch.setattr(wb, "write_proxy_fmu", drops_gain)
    config = load_study(tomllib.loads(_study(strict_fmu)), tmp_path).with_overrides(out_dir=tmp_path / "results")
    messages: list[str] = []
    outcome = run_study(config, load_host(config.plugins_dir), log=messages.append)
    data = outcome.to_json()
    assert data["outputs"]["fmu"] is None and data["verification"]["ok"] is False
    assert not list((tmp_path / "results").glob("*.fmu"))
    text = "\n".join(messages)
    assert "FAILED verification, no optimized FMU was written" in text and "verified" not in text.replace(
        "FAILED verification", "")
    report = Path(outcome.files["report"]).read_text()
    section = report.split("<h2>Write-back</h2>", 1)[1].split("<h2>", 1)[0]  # other sections may say "reproduces"
    assert "VERIFICATION FAILED</span>: no optimized FMU was written" in section and "reproduces" not in section
