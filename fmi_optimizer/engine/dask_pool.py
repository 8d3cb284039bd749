"""Dask distributed as the evaluation engine for more than one machine.

The same :class:`Evaluator` API over a ``distributed.Client``: ``"local"`` starts a
LocalCluster, ``"tcp://host:port"`` connects to a running scheduler. The FMU's bytes
are scattered to the workers once; on each Dask worker the runs go through the same
isolated worker pool as on one machine, so a segfault or a hang in the FMU becomes a
``crashed``/``timeout`` evaluation there too and never kills the Dask worker.

A Dask worker runs as many tasks at once as it has threads; a :class:`LocalPool` is driven by one caller at
a time, so each task borrows a single-process pool of its own from the worker's free list (see
:class:`_PoolSet`). A lost Dask worker is the cluster's fault, not the FMU's: its runs are submitted again
(after re-scattering the FMU if every copy was lost) and nothing is reported for them until they ran; when no
worker is left for ``worker_wait`` seconds the run stops with :class:`ClusterLostError` (exit code 16) and the
study can be resumed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from fmi_optimizer.engine.pool import EngineOptions, LocalPool
from fmi_optimizer.engine.worker import RunReply, RunRequest
from fmi_optimizer.errors import ClusterError, ClusterLostError, ClusterUnreachableError, FmiOptimizerError

CONNECT_TIMEOUT = 10.0  # seconds to reach the scheduler; FMIO_DASK_CONNECT_TIMEOUT overrides
WORKER_WAIT = 120.0  # seconds to wait for a worker when none is left; FMIO_DASK_WORKER_WAIT overrides
MAX_LOSSES = 5  # times one run may be lost with its Dask worker before the cluster is declared unusable


def _seconds(env: str, default: float) -> float:
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise FmiOptimizerError(f"{env}={raw!r} is not a number of seconds; set e.g. "
                                f"{env}={default:g}") from None
    if value <= 0:
        raise FmiOptimizerError(f"{env}={raw!r} must be a positive number of seconds")
    return value


# -- worker side ---------------------------------------------------------------------------------------------

class _PoolSet:
    """The single-process pools of one FMU (with one set of options) on one Dask worker: one per task running
    at the same time.

    A task borrows a free pool (or makes one) and gives it back when its run is answered, so the number of
    pools never exceeds the worker's threads, each pool is driven by one thread at a time, and an idle pool
    keeps its warm worker process for the next task. A pool that failed in a way it could not turn into a
    reply is closed, not given back; so is a pool given back to a set closed meanwhile (its study ended while
    another study's task of the same FMU still ran)."""

    def __init__(self, path: Path, options: EngineOptions):
        self.path = path
        self.options = replace(options, workers=1)
        self.lock = threading.Lock()
        self.free: list[tuple[int, LocalPool]] = []
        self.made = 0
        self.busy: set[int] = set()
        self.closed = False

    def acquire(self) -> tuple[int, LocalPool]:
        with self.lock:
            if self.free:
                n, pool = self.free.pop()
            else:
                self.made += 1
                n, pool = self.made, LocalPool(self.path, self.options)
            self.busy.add(n)
            return n, pool

    def release(self, n: int, pool: LocalPool, healthy: bool) -> None:
        with self.lock:
            self.busy.discard(n)
            if healthy and not self.closed:
                self.free.append((n, pool))
                return
            last = self.closed and not self.busy
        pool.close()
        if last:
            _drop_file(self.path)

    def close(self) -> bool:
        """Close the idle pools; True when none is busy (the FMU file may go)."""
        with self.lock:
            self.closed = True
            free, self.free = self.free, []
            idle = not self.busy
        for _, pool in free:
            pool.close()
        return idle


_POOLS: dict[tuple[str, EngineOptions], _PoolSet] = {}
_LOCK = threading.Lock()


def _scratch() -> Path:
    """This Dask worker process's folder for FMU files (removed when the pools are released)."""
    return Path(tempfile.gettempdir()) / f"fmio-dask-{os.getpid()}"


def _pools_for(sha: str, fmu_bytes: bytes, options: EngineOptions) -> _PoolSet:
    with _LOCK:
        pools = _POOLS.get((sha, options))
        if pools is None:
            folder = _scratch()
            folder.mkdir(exist_ok=True)
            path = folder / f"{sha[:16]}.fmu"
            if not path.exists():
                part = path.with_suffix(f".{threading.get_ident()}.part")
                part.write_bytes(fmu_bytes)
                part.replace(path)
            pools = _PoolSet(path, options)
            _POOLS[(sha, options)] = pools
        return pools


def _drop_file(path: Path) -> None:
    """Remove an FMU copy no pool set uses any more (and the scratch folder once it is empty)."""
    with _LOCK:
        if any(p.path == path for p in _POOLS.values()):
            return
        path.unlink(missing_ok=True)
        try:
            path.parent.rmdir()  # only when empty: a closed set's task may still run on another FMU's copy
        except OSError:
            pass


def release_pools(sha: str | None = None, options: EngineOptions | None = None) -> int:
    """Close the pools of one FMU run with ``options`` (every FMU / all options when None) on this Dask
    worker; the FMU file and, when nothing is left, the worker's scratch folder go with them (once no task of
    theirs still runs). Returns how many pool sets were closed."""
    with _LOCK:
        chosen = [k for k in _POOLS if (sha is None or k[0] == sha) and (options is None or k[1] == options)]
        sets = [_POOLS.pop(k) for k in chosen]
    for pools in sets:
        if pools.close():
            _drop_file(pools.path)
    return len(sets)


# dask[distributed] is a dependency; the guard makes `import fmi_optimizer.engine.dask_pool` fail clearly
try:
    from distributed.diagnostics.plugin import WorkerPlugin as _WorkerPlugin
except ImportError:  # pragma: no cover
    _WorkerPlugin = object  # type: ignore[assignment,misc]


class PoolCleanup(_WorkerPlugin):
    """Worker plugin: closes this worker's pools and removes its scratch folder when the Dask worker
    closes."""

    name = "fmi-optimizer-pools"

    def setup(self, worker: Any) -> None:
        pass

    def teardown(self, worker: Any) -> None:
        release_pools()


def run_on_dask_worker(sha: str, fmu_bytes: bytes, request: RunRequest, options: EngineOptions) -> RunReply:
    """The task shipped to Dask workers: one run through a pool of its own on this worker.

    Whatever happens in the pool comes back as a reply (the run was tried here); only the loss of the Dask
    worker itself shows on the client as a failed task."""
    from distributed import get_worker

    pools = _pools_for(sha, fmu_bytes, options)
    n, pool = pools.acquire()
    healthy = False
    try:
        # a failed production check re-runs earlier suspects of this pool too; their tasks were answered long
        # ago on this cluster, so only this request's own reply goes back
        reply = next(r for r in pool.run([request]) if r.task_id == request.task_id and not r.rerun)
        healthy = True
    except FmiOptimizerError as exc:  # e.g. the FMU crashed while instantiating
        reply = RunReply(request.task_id, "crashed", None, {}, str(exc), 0.0, 0.0, "dask")
    except Exception as exc:  # a broken pool is closed and answered for, never reused
        reply = RunReply(request.task_id, "crashed", None, {},
                         f"the evaluation pool on the Dask worker failed: {type(exc).__name__}: {exc}", 0.0,
                         0.0,
                         "dask")
    finally:
        pools.release(n, pool, healthy)
    try:
        reply.worker = f"dask:{get_worker().address}/p{n}.{reply.worker}"
    except ValueError:
        pass
    return reply


# -- client side ---------------------------------------------------------------------------------------------

class DaskEvaluator:
    """Evaluate over a Dask cluster; results are yielded as they finish, like the local pool."""

    def __init__(self, fmu_path: str | Path, options: EngineOptions, address: str,
                 connect_timeout: float | None = None, worker_wait: float | None = None):
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise FmiOptimizerError("cluster evaluation needs dask.distributed; pip install "
                                    "'dask[distributed]'") from exc
        self.options = options
        self.address = address
        self.connect_timeout = connect_timeout or _seconds("FMIO_DASK_CONNECT_TIMEOUT", CONNECT_TIMEOUT)
        self.worker_wait = worker_wait or _seconds("FMIO_DASK_WORKER_WAIT", WORKER_WAIT)
        self.lost = 0  # runs submitted again because their Dask worker was lost
        self._cluster: Any = None
        self._scratch: str | None = None
        self.client: Any = None
        try:
            if address == "local":
                # a private Dask folder (Dask would make a shared dask-scratch-space/ in the temp folder and
                # leave it)
                import dask

                self._scratch = tempfile.mkdtemp(prefix="fmio-dask-local-")
                with dask.config.set({"temporary-directory": self._scratch}):  # the scheduler's folder too
                    self._cluster = LocalCluster(n_workers=options.worker_count(), threads_per_worker=1,
                                                 processes=True, dashboard_address=None,
                                                 local_directory=self._scratch)
                self.client = Client(self._cluster)
            else:
                self.client = Client(address, timeout=self.connect_timeout)
        except OSError as exc:
            self.close()
            raise ClusterUnreachableError(
                f"cannot reach the Dask scheduler at {address!r} within {self.connect_timeout:g} s "
                f"({' '.join(str(exc).split())[:200]}); start it with 'dask scheduler' and workers with "
                f"'dask worker {address}', or use cluster = \"local\"") from exc
        self._data = Path(fmu_path).read_bytes()
        self.sha = hashlib.sha256(self._data).hexdigest()
        self.strategy = options.strategy
        self.switches: list[str] = []  # production checks that failed on a Dask worker (that pool switched)
        self.reruns = 0
        self._fmu: Any = None
        try:
            self.client.register_plugin(PoolCleanup(), name=PoolCleanup.name)
            self._scatter()
        # the caller gets no evaluator to close: do not leave the client (or cluster) open
        except BaseException:
            self.close()
            raise

    def _scatter(self) -> None:
        """Put the FMU's bytes on every worker (again, when every copy was lost with its workers)."""
        self._wait_for_workers("to receive the FMU")
        try:
            self._fmu = self.client.scatter(self._data, broadcast=True, hash=False)
        except (OSError, TimeoutError) as exc:
            raise self._lost_error(f"scattering the FMU failed ({type(exc).__name__}: {exc})") from exc

    def _worker_count(self) -> int:
        try:
            return len(self.client.nthreads())
        except (OSError, TimeoutError) as exc:
            raise self._lost_error(f"the scheduler stopped answering ({type(exc).__name__})") from exc

    def _wait_for_workers(self, why: str) -> None:
        deadline = time.monotonic() + self.worker_wait
        while self._worker_count() == 0:
            if time.monotonic() > deadline:
                raise self._lost_error(f"no Dask worker {why} within {self.worker_wait:g} s")
            time.sleep(0.2)

    def _lost_error(self, why: str) -> ClusterLostError:
        return ClusterLostError(
            f"the Dask cluster at {self.address!r} has no usable worker: {why}; every finished evaluation is "
            f"stored - start workers ('dask worker {self.address}') and continue with 'fmi-optimizer resume "
            "<out>/fmi_optimizer.db'")

    def _submit(self, request: RunRequest) -> Any:
        return self.client.submit(run_on_dask_worker, self.sha, self._fmu, request, self.options, pure=False)

    def run(self, requests: Sequence[RunRequest]) -> Iterator[RunReply]:
        futures = {self._submit(r): r for r in requests}
        try:
            yield from self._collect(futures)
        finally:  # the caller stopped early (an error, Ctrl-C): runs nobody waits for are not left queued
            if futures and self.client is not None:
                try:
                    self.client.cancel(list(futures))
                except Exception:  # a client that lost its scheduler has nothing to cancel
                    pass

    def _collect(self, futures: dict[Any, RunRequest]) -> Iterator[RunReply]:
        from distributed import wait
        from distributed.client import FuturesCancelledError

        losses: dict[int, int] = {}
        idle_since: float | None = None
        while futures:
            try:
                done = wait(list(futures), timeout=1.0, return_when="FIRST_COMPLETED").done
            except TimeoutError:
                done = set()
            except FuturesCancelledError:  # a future was cancelled (its worker and data lost): handled below
                done = {f for f in futures if f.done()}
            if not done:  # nothing finished: runs are going, or no worker is left to run them
                if self._worker_count() > 0:
                    idle_since = None
                elif idle_since is None:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > self.worker_wait:
                    raise self._lost_error(f"none came back within {self.worker_wait:g} s; "
                                           f"{len(futures)} runs were not done")
                continue
            idle_since = None
            lost = []
            for fut in done:
                req = futures.pop(fut)
                if fut.status == "finished":
                    try:
                        reply = fut.result()  # fetched from the worker that holds it
                    except Exception:  # that worker died after the run: its result is lost with it
                        lost.append((req, fut))
                        continue
                    if reply.check == "differed":
                        self.switches.append(f"task {reply.task_id} on {reply.worker}: a fresh instance gave "
                                             "other numbers than the reused one; that Dask worker's pool "
                                             "switched to reload")
                    yield reply
                elif fut.status == "error" and not _lost_with_worker(fut):
                    raise ClusterError(f"a Dask worker could not run task {req.task_id} ({_why(fut)}); "
                                       "install the same fmi-optimizer on every worker") from None
                else:  # the task never ran to its end: its worker (or the FMU's scattered bytes) was lost
                    lost.append((req, fut))
            if lost:
                self._resubmit(lost, losses, futures)

    def _resubmit(self, lost: list[tuple[RunRequest, Any]], losses: dict[int, int],
                  futures: dict[Any, RunRequest]) -> None:
        for req, fut in lost:
            losses[req.task_id] = losses.get(req.task_id, 0) + 1
            if losses[req.task_id] > MAX_LOSSES:
                raise self._lost_error(f"task {req.task_id} was lost {MAX_LOSSES} times "
                                       f"(last: {_why(fut)})")
        self._wait_for_workers("came back")
        if self._fmu is None or self._fmu.status != "finished":
            self._scatter()
        for req, _ in lost:
            self.lost += 1
            futures[self._submit(req)] = req

    def close(self) -> None:
        try:
            if self.client is not None and getattr(self, "sha", None):
                try:  # the pools (and their FMU files) on the workers end with the study
                    self.client.run(release_pools, self.sha, self.options, wait=True)
                except Exception:  # a worker already gone has nothing to release
                    pass
            if self.client is not None:
                self.client.close()
        finally:
            try:
                if self._cluster is not None:
                    self._cluster.close()
            finally:
                self._cluster = None
                self.client = None
                if self._scratch is not None:
                    shutil.rmtree(self._scratch, ignore_errors=True)
                    self._scratch = None


def _why(fut: Any) -> str:
    try:
        exc = fut.exception(timeout=1)
    except Exception as e:  # a cancelled future raises here
        exc = e
    return f"{type(exc).__name__}: {exc}" if exc is not None else str(fut.status)


def _lost_with_worker(fut: Any) -> bool:
    """A task that failed because its worker died (rather than because the worker could not run it at all)."""
    from distributed.scheduler import KilledWorker

    try:
        exc = fut.exception(timeout=1)
    except Exception:  # cancelled meanwhile: lost
        return True
    return isinstance(exc, KilledWorker | OSError)
