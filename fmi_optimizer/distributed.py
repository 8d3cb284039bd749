"""Dask distributed as the evaluation engine for more than one machine.

The same :class:`Evaluator` API over a ``distributed.Client``: ``"local"`` starts a
LocalCluster, ``"tcp://host:port"`` connects to a running scheduler. The FMU's bytes
are scattered to the workers once; on each Dask worker the runs go through the same
isolated worker pool as on one machine, so a segfault or a hang in the FMU becomes a
``crashed``/``timeout`` evaluation there too and never kills the Dask worker.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .errors import FmiOptimizerError
from .evaluation import EngineOptions, LocalPool
from .worker import RunReply, RunRequest

_POOLS: dict[str, LocalPool] = {}
_LOCK = threading.Lock()


def _pool_for(sha: str, fmu_bytes: bytes, options: EngineOptions) -> LocalPool:
    """One persistent single-process pool per FMU per Dask worker process."""
    with _LOCK:
        pool = _POOLS.get(sha)
        if pool is None:
            folder = Path(tempfile.gettempdir()) / f"fmio-dask-{os.getpid()}"
            folder.mkdir(exist_ok=True)
            path = folder / f"{sha[:16]}.fmu"
            if not path.exists():
                path.write_bytes(fmu_bytes)
            pool = LocalPool(path, replace(options, workers=1))
            _POOLS[sha] = pool
        return pool


def run_on_dask_worker(sha: str, fmu_bytes: bytes, request: RunRequest, options: EngineOptions) -> RunReply:
    """The task shipped to Dask workers: one run through the worker-local isolated pool."""
    from distributed import get_worker

    pool = _pool_for(sha, fmu_bytes, options)
    # a failed production check re-runs earlier suspects of this worker-local pool too; their tasks were
    # answered long ago on this cluster, so only this request's own reply goes back
    reply = next(r for r in pool.run([request]) if r.task_id == request.task_id and not r.rerun)
    try:
        reply.worker = f"dask:{get_worker().address}/{reply.worker}"
    except ValueError:
        pass
    return reply


class DaskEvaluator:
    """Evaluate over a Dask cluster; results are yielded as they finish, like the local pool."""

    def __init__(self, fmu_path: str | Path, options: EngineOptions, address: str):
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise FmiOptimizerError("cluster evaluation needs dask.distributed; pip install 'dask[distributed]'") from exc
        self.options = options
        self._cluster: Any = None
        try:
            if address == "local":
                self._cluster = LocalCluster(n_workers=options.worker_count(), threads_per_worker=1,
                                             processes=True, dashboard_address=None)
                self.client = Client(self._cluster)
            else:
                self.client = Client(address, timeout=30)
        except OSError as exc:
            raise FmiOptimizerError(f"cannot reach the Dask scheduler at {address!r} ({exc}); "
                                    "start it with 'dask scheduler' or use cluster = \"local\"") from exc
        data = Path(fmu_path).read_bytes()
        self.sha = hashlib.sha256(data).hexdigest()
        self.strategy = options.strategy
        self.switches: list[str] = []  # production checks that failed on a Dask worker (that worker switched)
        self.reruns = 0
        self._fmu = self.client.scatter(data, broadcast=True)

    def run(self, requests: Sequence[RunRequest]) -> Iterator[RunReply]:
        from distributed import as_completed

        futures = {self.client.submit(run_on_dask_worker, self.sha, self._fmu, r, self.options, pure=False): r
                   for r in requests}
        for fut in as_completed(futures):
            req = futures[fut]
            try:
                reply = fut.result()
                if reply.check == "differed":
                    self.switches.append(f"task {reply.task_id} on {reply.worker}: a fresh instance gave other "
                                         "numbers than the reused one; that Dask worker's pool switched to reload")
                yield reply
            except Exception as exc:  # a lost Dask worker: report the run as crashed, keep the study going
                yield RunReply(req.task_id, "crashed", None, {}, f"Dask task failed: {type(exc).__name__}: {exc}",
                               0.0, 0.0, "dask")

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            if self._cluster is not None:
                self._cluster.close()
