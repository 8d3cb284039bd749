"""Evaluation engine on real FMUs: crash isolation, timeouts, recycling, clean-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fmi_optimizer.engine.pool import EngineOptions, LocalPool
from fmi_optimizer.engine.worker import RunRequest
from fmi_optimizer.errors import FmuError
from fmi_optimizer.fmu.simulator import SimSettings
from fmi_optimizer.fmu.twin import Twin

SETTINGS = SimSettings(stop_time=2.0, output_interval=0.05)


def _req(i: int, **values: object) -> RunRequest:
    return RunRequest(i, {"x": 3.0, **values}, SETTINGS, ("y", "z"))


@pytest.fixture(scope="module")
def faulty(faulty_fmu: Path) -> Twin:
    return Twin.open(faulty_fmu)


@pytest.mark.slow
def test_every_failure_becomes_a_status_and_the_batch_goes_on(faulty: Twin) -> None:
    faults = {"none": "ok", "segfault": "crashed", "abort": "crashed", "exit": "crashed", "hang": "timeout",
              "nan": "failed", "step_error": "failed"}
    requests = []
    for i, fault in enumerate(faults):
        requests.append(_req(2 * i, fault={"none": 0, "segfault": 1, "abort": 2, "exit": 3, "hang": 4, "nan": 5,
                                           "step_error": 6}[fault]))
        requests.append(_req(2 * i + 1))  # a healthy run after every faulty one
    with LocalPool(faulty.fmu.runnable, EngineOptions(workers=2, timeout=3.0)) as pool:
        replies = {r.task_id: r for r in pool.run(requests)}
        assert pool.replaced >= 4  # segfault, abort, exit, hang each cost a worker
    assert len(replies) == len(requests)
    for i, (fault, status) in enumerate(faults.items()):
        bad, good = replies[2 * i], replies[2 * i + 1]
        assert bad.status == status, (fault, bad.error)
        assert good.status == "ok" and good.outputs["y"][-1] == pytest.approx(4.0, rel=1e-3)
    assert "SIGSEGV" in replies[2].error
    assert "SIGABRT" in replies[4].error
    assert "exit code 3" in replies[6].error
    assert "no result within 3" in replies[8].error
    assert "NaN" in replies[10].error
    assert "injected step failure" in replies[12].error


def test_workers_are_recycled_and_scratch_is_removed(faulty: Twin) -> None:
    pool = LocalPool(faulty.fmu.runnable, EngineOptions(workers=1, recycle_every=3))
    replies = list(pool.run([_req(i, x=float(i) / 4) for i in range(7)]))
    pids_seen = {r.worker for r in replies}
    assert [r.status for r in replies] == ["ok"] * 7
    assert len(pids_seen) == 3  # 3 + 3 + 1 runs: two recycles
    scratch = Path(pool._tmp)
    assert scratch.exists()
    pool.close()
    assert not scratch.exists()


def test_results_match_in_process_simulation(faulty: Twin) -> None:
    direct = faulty.simulate({"x": -1.5, "n": 6}, SETTINGS, ["y", "z"])
    with LocalPool(faulty.fmu.runnable, EngineOptions(workers=1)) as pool:
        (reply,) = list(pool.run([RunRequest(1, {"x": -1.5, "n": 6}, SETTINGS, ("y", "z"))]))
    assert reply.status == "ok"
    assert reply.outputs["z"].tolist() == direct.outputs["z"].tolist()
    assert reply.wall_seconds > 0 and reply.cpu_seconds >= 0


def test_fmu_failing_in_instantiate_is_an_fmu_error(faulty_fmu: Path, tmp_path: Path) -> None:
    import zipfile

    broken = tmp_path / "wrong_guid.fmu"
    runnable = Twin.open(faulty_fmu).fmu.runnable
    with zipfile.ZipFile(runnable) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "modelDescription.xml":
                data = data.replace(b"fa0170000001", b"fa0170000999")
            dst.writestr(item, data)
    with pytest.raises(FmuError, match="instantiat"):
        with LocalPool(broken, EngineOptions(workers=1)) as pool:
            list(pool.run([_req(1)]))


def test_worker_does_not_import_plugins_or_tensorflow(faulty: Twin) -> None:
    probe = RunRequest(1, {"x": 1.0}, SETTINGS, ("y",))
    with LocalPool(faulty.fmu.runnable, EngineOptions(workers=1)) as pool:
        list(pool.run([probe]))
        pid = pool.pids[0]
        maps = Path(f"/proc/{pid}/maps").read_text() if os.path.exists(f"/proc/{pid}/maps") else ""
    assert "tensorflow" not in maps and "_pywrap_tensorflow" not in maps


@pytest.mark.parametrize("name, interface", [("servo_pid", "cs"), ("servo_pid", "me"), ("servo_pid_fmi3", "auto"),
                                             ("servo_pid_fmi3", "me")])
@pytest.mark.slow
def test_fmi3_and_model_exchange_through_the_pool(sample_fmu, name: str, interface: str) -> None:
    twin = Twin.open(sample_fmu(name))
    settings = SimSettings(interface=interface)
    with LocalPool(twin.fmu.runnable, EngineOptions(workers=1, interface=interface)) as pool:
        (reply,) = list(pool.run([RunRequest(1, {"Kp": 12.0}, settings, ("theta",))]))
    assert reply.status == "ok", reply.error
    reference = Twin.open(sample_fmu("servo_pid")).simulate({"Kp": 12.0}, SimSettings(interface="cs"), ["theta"])
    assert reply.outputs["theta"][-1] == pytest.approx(reference.outputs["theta"][-1], rel=1e-3, abs=1e-4)


def test_a_later_fmu_logging_in_the_same_process_does_not_crash(faulty_fmu: Path, sample_fmu) -> None:
    """fmpy's logger proxy keeps one process-wide pointer to the last wrapped logger; a freed one segfaulted."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import gc, tempfile, zipfile
        from fmpy import read_model_description
        from fmpy.fmi1 import FMICallException
        from fmpy.fmi2 import FMU2Slave
        from fmi_optimizer.fmu.twin import Twin
        try:
            Twin.open({str(faulty_fmu)!r}).simulate({{"fault": "step_error"}})
        except Exception:
            pass
        gc.collect()
        runnable = Twin.open({str(sample_fmu("heat_sink"))!r}).fmu.runnable
        d = tempfile.mkdtemp()
        zipfile.ZipFile(runnable).extractall(d)
        md = read_model_description(d)
        fmu = FMU2Slave(guid=md.guid, unzipDirectory=d, modelIdentifier="heat_sink", instanceName="t")
        fmu.instantiate()
        vr = {{v.name: v.valueReference for v in md.modelVariables}}
        try:
            fmu.setReal([vr["T_junction"]], [300.0])  # makes the FMU log an error through fmpy's default logger
        except FMICallException:
            print("survived")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "survived" in out.stdout, (out.returncode, out.stderr[-500:])


def test_a_crash_deep_in_a_fast_pipeline_blames_the_run_that_crashed(faulty: Twin) -> None:
    """Short runs get a deep pipeline and a napping parent; replies must still pair with their requests."""
    with LocalPool(faulty.fmu.runnable, EngineOptions(workers=1, timeout=10.0, recycle_every=None)) as pool:
        reference = {r.task_id: r for r in pool.run([_req(i, x=i / 10) for i in range(40)])}
        assert pool.pipeline_depth > LocalPool.INITIAL_DEPTH  # fast runs were timed: the pipe is deeper now
        batch = [_req(i, x=i / 10, fault=1 if i == 25 else 0) for i in range(40)]
        replies = {r.task_id: r for r in pool.run(batch)}
        assert pool.replaced == 1
    assert replies[25].status == "crashed" and "SIGSEGV" in replies[25].error
    for i in set(range(40)) - {25}:
        assert replies[i].status == "ok", replies[i].error
        for name in ("y", "z"):
            assert (replies[i].outputs[name] == reference[i].outputs[name]).all(), (i, name)


def test_a_worker_killed_while_idle_is_replaced_quietly(faulty: Twin) -> None:
    import signal

    with LocalPool(faulty.fmu.runnable, EngineOptions(workers=1, timeout=10.0)) as pool:
        assert [r.status for r in pool.run([_req(0)])] == ["ok"]
        os.kill(pool.pids[0], signal.SIGKILL)
        pool._workers[0].process.wait(5)  # dead before the next batch is dealt
        replies = list(pool.run([_req(i, x=i / 4) for i in range(1, 4)]))
        assert [r.status for r in replies] == ["ok"] * 3, [r.error for r in replies]
        assert pool.replaced == 1


def test_a_pool_removes_the_scratch_of_pools_whose_process_is_gone(tmp_path: Path) -> None:
    """A SIGKILLed study leaves its pool's scratch folder (no finalizer runs); the next pool removes those whose
    process no longer exists and leaves a live process's folder alone."""
    from fmi_optimizer.engine.pool import SCRATCH_PREFIX, sweep_scratch

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead = tmp_path / f"{SCRATCH_PREFIX}{int(gone.stdout)}-abc"
    alive = tmp_path / f"{SCRATCH_PREFIX}{os.getpid()}-def"
    unnamed = tmp_path / f"{SCRATCH_PREFIX}xyz"  # an older pool's name, without a process id: not ours to judge
    for folder in (dead, alive, unnamed):
        (folder / "fmio-worker-1").mkdir(parents=True)
    assert sweep_scratch(str(tmp_path)) == [str(dead)]
    assert not dead.exists() and alive.exists() and unnamed.exists()
