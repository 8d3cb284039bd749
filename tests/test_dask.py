"""Dask distributed engine: a real scheduler and worker started with the `dask` command on loopback."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fmi_optimizer.distributed import DaskEvaluator
from fmi_optimizer.evaluation import EngineOptions
from fmi_optimizer.simulator import SimSettings
from fmi_optimizer.twin import Twin
from fmi_optimizer.worker import RunRequest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def dask_cluster(tmp_path: Path):
    dask = shutil.which("dask") or str(Path(sys.executable).parent / "dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    log = open(tmp_path / "dask.log", "wb")
    scheduler = subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--no-dashboard"], stdout=log, stderr=log)
    worker = subprocess.Popen([dask, "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                               "--host", "127.0.0.1"], stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    from distributed import Client

    try:
        while True:
            try:
                with Client(address, timeout=5) as c:
                    if c.scheduler_info()["workers"]:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("dask scheduler/worker did not come up: " + (tmp_path / "dask.log").read_text())
            time.sleep(0.5)
        yield address
    finally:
        for p in (worker, scheduler):
            p.terminate()
        for p in (worker, scheduler):
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        log.close()


def test_batch_through_real_scheduler_and_worker_with_a_crash(dask_cluster: str, faulty_fmu: Path) -> None:
    twin = Twin.open(faulty_fmu)
    settings = SimSettings(stop_time=2.0, output_interval=0.1)
    requests = [RunRequest(i, {"x": float(i) / 2}, settings, ("y",)) for i in range(5)]
    requests.append(RunRequest(99, {"x": 0.0, "fault": 1}, settings, ("y",)))  # segfaults inside the FMU
    requests.append(RunRequest(100, {"x": 2.0}, settings, ("y",)))
    ev = DaskEvaluator(twin.fmu.runnable, EngineOptions(workers=1, timeout=20), dask_cluster)
    try:
        replies = {r.task_id: r for r in ev.run(requests)}
    finally:
        ev.close()
    assert replies[99].status == "crashed" and "SIGSEGV" in replies[99].error
    for i in range(5):
        assert replies[i].status == "ok"
        assert replies[i].outputs["y"][-1] == pytest.approx((i / 2 - 1) ** 2, rel=1e-3, abs=1e-3)
        assert replies[i].worker.startswith("dask:tcp://127.0.0.1")
    assert replies[100].status == "ok"  # the Dask worker survived the crash
