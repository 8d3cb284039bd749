"""Dask distributed engine: a real scheduler and real workers started with the `dask` command on loopback.

Nothing here waits for "long enough": every wait is on a condition (workers registered, evaluations stored, a
process gone) with a generous bound, and the runs that must still be going when a worker is killed hang
(the faulty twin's `hang` fault) so they cannot finish first.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import faulty_study

from fmi_optimizer.engine.dask_pool import DaskEvaluator
from fmi_optimizer.engine.pool import EngineOptions
from fmi_optimizer.engine.worker import RunRequest
from fmi_optimizer.errors import ExitCode, FmiOptimizerError
from fmi_optimizer.fmu.simulator import SimSettings
from fmi_optimizer.fmu.twin import Twin

DASK = shutil.which("dask") or str(Path(sys.executable).parent / "dask")
SETTINGS = SimSettings(stop_time=2.0, output_interval=0.1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], object], what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


class Cluster:
    """A `dask scheduler` and `dask worker` processes on 127.0.0.1, each worker in its own process group and
    scratch folder (so that a test can kill one and look at what it left behind)."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        # each process's temp folder, short: the pools' Unix sockets live there (AF_UNIX paths end at 107 bytes)
        self.tmp = Path(tempfile.mkdtemp(prefix="fmio-t-", dir="/tmp"))
        self.port = _free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.log = open(root / "dask.log", "ab")
        self.scheduler = self._popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                                      "--no-dashboard"], root / "scheduler")
        self.workers: list[subprocess.Popen[bytes]] = []

    def _popen(self, argv: list[str], cwd: Path) -> subprocess.Popen[bytes]:
        cwd.mkdir(parents=True, exist_ok=True)
        tmp = self.tmp / cwd.name
        tmp.mkdir(exist_ok=True)
        env = {**os.environ, "TMPDIR": str(tmp)}
        return subprocess.Popen(argv, stdout=self.log, stderr=self.log, cwd=cwd, env=env, start_new_session=True)

    def start_worker(self, nthreads: int) -> subprocess.Popen[bytes]:
        n = len(self.workers)
        proc = self._popen([DASK, "worker", self.address, "--nworkers", "1", "--nthreads", str(nthreads),
                            "--no-dashboard", "--host", "127.0.0.1", "--local-directory",
                            str(self.root / f"worker{n}" / "local")], self.root / f"worker{n}")
        self.workers.append(proc)
        return proc

    def worker_count(self) -> int:
        from distributed import Client

        try:
            with Client(self.address, timeout=5) as c:
                return len(c.scheduler_info()["workers"])
        except OSError:
            return -1

    def wait_workers(self, n: int) -> None:
        wait_for(lambda: self.worker_count() == n, f"{n} Dask workers; log: {self.root / 'dask.log'}")

    def kill_worker(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL the worker's whole process group: nanny, worker and the pool's worker processes."""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)

    def close(self) -> None:
        for p in [*self.workers, self.scheduler]:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in [*self.workers, self.scheduler]:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(20)
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path / "dask")
    try:
        wait_for(lambda: c.worker_count() == 0, "the Dask scheduler")
        yield c
    finally:
        c.close()


def _requests(n: int, **extra: object) -> list[RunRequest]:
    return [RunRequest(i, {"x": float(i % 7) / 2, **extra}, SETTINGS, ("y",)) for i in range(n)]


@pytest.mark.slow
@pytest.mark.dask
def test_batch_through_real_scheduler_and_worker_with_a_crash(cluster: Cluster, faulty_fmu: Path) -> None:
    cluster.start_worker(nthreads=1)
    cluster.wait_workers(1)
    twin = Twin.open(faulty_fmu)
    requests = [RunRequest(i, {"x": float(i) / 2}, SETTINGS, ("y",)) for i in range(5)]
    requests.append(RunRequest(99, {"x": 0.0, "fault": 1}, SETTINGS, ("y",)))  # segfaults inside the FMU
    requests.append(RunRequest(100, {"x": 2.0}, SETTINGS, ("y",)))
    ev = DaskEvaluator(twin.fmu.runnable, EngineOptions(workers=1, timeout=20), cluster.address)
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


@pytest.mark.slow
@pytest.mark.dask
def test_a_worker_with_several_threads_runs_concurrent_tasks_and_times_out_hangs(cluster: Cluster,
                                                                                  faulty_fmu: Path) -> None:
    """The default `dask worker` has one thread per core: its tasks call the worker-local pool concurrently."""
    cluster.start_worker(nthreads=4)
    cluster.wait_workers(1)
    twin = Twin.open(faulty_fmu)
    requests = _requests(24)
    requests += [RunRequest(100 + i, {"x": 1.0, "fault": 4}, SETTINGS, ("y",)) for i in range(2)]  # hang
    ev = DaskEvaluator(twin.fmu.runnable, EngineOptions(workers=4, timeout=5), cluster.address)
    try:
        replies = {r.task_id: r for r in ev.run(requests)}
    finally:
        ev.close()
    assert sorted(replies) == sorted(r.task_id for r in requests)
    for r in requests[:24]:
        got = replies[r.task_id]
        assert got.status == "ok", got.error
        x = r.start_values["x"]
        assert got.outputs["y"][-1] == pytest.approx((x - 1) ** 2, rel=1e-3, abs=1e-3)
    for i in range(2):
        assert replies[100 + i].status == "timeout", replies[100 + i].error
    pools = {r.worker.rsplit("/", 1)[0] for r in replies.values()}
    assert len(pools) == 1  # one Dask worker ...
    assert len({r.worker for r in replies.values() if r.status == "ok"}) > 1  # ... several pools in parallel


@pytest.mark.slow
@pytest.mark.dask
def test_pools_and_their_files_go_when_the_study_ends(cluster: Cluster, faulty_fmu: Path) -> None:
    worker = cluster.start_worker(nthreads=2)
    cluster.wait_workers(1)
    tmp = cluster.tmp / "worker0"
    ev = DaskEvaluator(Twin.open(faulty_fmu).fmu.runnable, EngineOptions(workers=2, timeout=20), cluster.address)
    try:
        assert all(r.status == "ok" for r in ev.run(_requests(8)))
        assert [p.name for p in tmp.iterdir() if p.name.startswith("fmio-")]  # pools and the FMU copy exist
    finally:
        ev.close()
    assert [p.name for p in tmp.iterdir() if p.name.startswith("fmio-")] == []
    assert worker.poll() is None  # the Dask worker itself stays for the next study

    ev = DaskEvaluator(Twin.open(faulty_fmu).fmu.runnable, EngineOptions(workers=2, timeout=20), cluster.address)
    try:
        assert all(r.status == "ok" for r in ev.run(_requests(4)))
        worker.terminate()  # a Dask worker shut down while it holds pools: its plugin cleans up
        worker.wait(60)
        cluster.wait_workers(0)
    finally:
        ev.close()
    assert [p.name for p in tmp.iterdir() if p.name.startswith("fmio-")] == []


@pytest.mark.dask
@pytest.mark.slow
def test_a_local_cluster_leaves_no_scratch_folders(tmp_path: Path, faulty_fmu: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    ev = DaskEvaluator(Twin.open(faulty_fmu).fmu.runnable, EngineOptions(workers=1, timeout=20), "local")
    try:
        assert all(r.status == "ok" for r in ev.run(_requests(3)))
    finally:
        ev.close()
    assert sorted(p.name for p in scratch.iterdir()) == []


# -- whole studies through the CLI ---------------------------------------------------------------------------

BUDGET = 16


def _study(path: Path, fmu: Path, cluster: str) -> Path:
    # ~0.5 s per run: after a few stored evaluations the study has seconds of work left, so a kill at that
    # condition always lands mid-study
    return faulty_study(path, fmu, budget=BUDGET, seed=5, stop_time=50000.0, output_interval=500.0, workers=2,
                        evaluation_lines=f'timeout = 120.0\ncluster = "{cluster}"\n')


def _stored(db: Path) -> list[str]:
    if not db.exists():
        return []
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return [r[0] for r in con.execute("SELECT status FROM evaluations")]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return []


def _optimize(study: Path, out: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "fmi_optimizer.cli.main", "optimize", str(study), "--out", str(out),
                             "--json", "--no-writeback"], env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_stored(proc: subprocess.Popen[str], db: Path, n: int) -> None:
    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the study ended early ({proc.returncode}): {proc.communicate()[1]}")
        return len(_stored(db)) >= n

    wait_for(ready, f"{n} stored evaluations", timeout=300)


@pytest.mark.slow
@pytest.mark.dask
def test_the_only_worker_killed_mid_study_is_replaced_and_the_study_completes(cluster: Cluster, faulty_fmu: Path,
                                                                              tmp_path: Path) -> None:
    first = cluster.start_worker(nthreads=2)
    cluster.wait_workers(1)
    out = tmp_path / "out"
    db = out / "fmi_optimizer.db"
    proc = _optimize(_study(tmp_path / "s.toml", faulty_fmu, cluster.address), out, FMIO_DASK_WORKER_WAIT="300")
    try:
        _wait_stored(proc, db, 3)
        cluster.kill_worker(first)  # the scattered FMU and the runs in progress go with it
        cluster.start_worker(nthreads=2)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert json.loads(stdout)["evaluations"]["total"] == BUDGET
    assert _stored(db) == ["ok"] * BUDGET  # the loss is nobody's evaluation


@pytest.mark.slow
@pytest.mark.dask
def test_all_workers_lost_stops_with_its_exit_code_and_resume_completes(cluster: Cluster, faulty_fmu: Path,
                                                                        tmp_path: Path) -> None:
    first = cluster.start_worker(nthreads=2)
    cluster.wait_workers(1)
    out = tmp_path / "out"
    db = out / "fmi_optimizer.db"
    proc = _optimize(_study(tmp_path / "s.toml", faulty_fmu, cluster.address), out, FMIO_DASK_WORKER_WAIT="3")
    try:
        _wait_stored(proc, db, 3)
        cluster.kill_worker(first)
        _, stderr = proc.communicate(timeout=120)  # bounded: 3 s for a worker, then the documented exit
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == ExitCode.CLUSTER_LOST == 16, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "resume" in errors[0] and "Traceback" not in stderr, stderr
    stored = _stored(db)
    assert 3 <= len(stored) < BUDGET and set(stored) == {"ok"}

    cluster.start_worker(nthreads=2)
    cluster.wait_workers(1)
    res = subprocess.run([sys.executable, "-m", "fmi_optimizer.cli.main", "resume", str(db), "--json", "--no-writeback"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["evaluations"]["total"] == BUDGET
    assert f"{len(stored)} stored evaluations will be replayed" in res.stderr
    con = sqlite3.connect(db)
    keys = [r[0] for r in con.execute("SELECT cache_key FROM evaluations WHERE study_id=1")]
    con.close()
    assert len(keys) == BUDGET and len(set(keys)) == BUDGET  # nothing simulated twice, nothing lost
    assert _stored(db) == ["ok"] * BUDGET


@pytest.mark.dask
@pytest.mark.slow
def test_an_unreachable_scheduler_fails_fast_with_its_exit_code(faulty_fmu: Path, tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    proc = _optimize(_study(tmp_path / "s.toml", faulty_fmu, address), tmp_path / "out",
                     FMIO_DASK_CONNECT_TIMEOUT="2")
    try:
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == ExitCode.CLUSTER_UNREACHABLE == 15, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "dask scheduler" in errors[0] and address in errors[0], stderr
    assert "within 2 s" in errors[0]


def test_connect_timeout_must_be_a_positive_number(monkeypatch: pytest.MonkeyPatch, faulty_fmu: Path) -> None:
    monkeypatch.setenv("FMIO_DASK_CONNECT_TIMEOUT", "soon")
    with pytest.raises(FmiOptimizerError, match="FMIO_DASK_CONNECT_TIMEOUT"):
        DaskEvaluator(faulty_fmu, EngineOptions(), "tcp://127.0.0.1:1")


def test_a_pool_given_back_after_its_study_ended_is_closed_and_the_fmu_copy_goes(
        tmp_path: Path, faulty_fmu: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two studies of one FMU on a shared cluster: the first one's end must not pull the FMU file from under a
    task of the second that is still running."""
    from fmi_optimizer.engine import dask_pool as d

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(d, "_POOLS", {})
    sha, opts = "ab" * 32, EngineOptions(timeout=5)
    pools = d._pools_for(sha, faulty_fmu.read_bytes(), opts)
    other = d._pools_for(sha, faulty_fmu.read_bytes(), EngineOptions(timeout=9))  # same FMU, other options
    assert other is not pools and other.path == pools.path
    n, pool = pools.acquire()
    assert d.release_pools(sha, opts) == 1
    pools.release(n, pool, healthy=True)  # closed, not kept: its study ended
    assert pools.free == [] and pools.path.exists()  # the other study still uses the copy
    assert d.release_pools() == 1
    assert not pools.path.exists() and not (tmp_path / f"fmio-dask-{os.getpid()}").exists()
