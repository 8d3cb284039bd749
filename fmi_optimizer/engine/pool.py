"""Evaluation engine: run batches of simulations in isolated worker processes.

A worker that segfaults, aborts, exits or hangs becomes a ``crashed``/``timeout``
result and is replaced; the rest of the batch goes on. Results are yielded as they
finish so the caller can store each one before anything else can go wrong.

Workers prepare each run by the FMU's proven instance strategy
(:mod:`fmi_optimizer.engine.instance_strategy`) and compare a share of the runs on reused instances against
a fresh one.  When one differs, the pool switches every worker to fresh library copies per run (``reload``)
and runs again every reused run that no check has vouched for; those replies come back flagged ``rerun``
and replace the earlier ones.
"""

from __future__ import annotations

import math
import os
import secrets
import select
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, Listener, wait
from pathlib import Path
from typing import Any, Protocol

from fmi_optimizer.engine.protocol import (
    CHECKING,
    REPLY_FIELDS,
    ContextTable,
    KnownContexts,
    RunReply,
    RunRequest,
    decode_reply,
    split_check_note,
)
from fmi_optimizer.errors import FmuError
from fmi_optimizer.fmu.simulator import FALLBACK, REUSING, STRATEGIES

UNVERIFIED_LIMIT = 100_000  # reused, unchecked runs remembered for a re-run should a later check fail


@dataclass(frozen=True)
class EngineOptions:
    """Worker pool settings: how many workers, the per-run wall-clock limit, recycling."""

    workers: int = 0  # 0 = number of cores
    timeout: float | None = 60.0
    recycle_every: int | None = 1000
    interface: str = "auto"
    start_timeout: float = 120.0
    strategy: str = "reset"  # how a worker prepares a fresh instance per run (see simulator.STRATEGIES)
    check_share: float = 0.02  # share of reused runs repeated on a fresh instance (the first always is)

    def worker_count(self) -> int:
        return self.workers if self.workers > 0 else max(1, os.cpu_count() or 1)


class Evaluator(Protocol):
    """Anything that runs requests and yields replies as they finish (local pool, Dask, ...)."""

    def run(self, requests: Sequence[RunRequest]) -> Iterator[RunReply]: ...

    def close(self) -> None: ...


@dataclass(eq=False)  # identity semantics: workers are selector keys
class _Worker:
    ident: str
    process: subprocess.Popen[bytes]
    conn: Connection
    stderr_path: Path
    runs: int = 0
    inflight: deque[RunRequest] = field(default_factory=deque)  # sent, not yet answered; the head is running
    deadline: float = float("inf")
    started: float = 0.0
    contexts: KnownContexts = field(default_factory=KnownContexts)  # what this worker has been sent
    # answered on a reused instance, not yet vouched for
    unverified: list[RunRequest] = field(default_factory=list)
    checking: int | None = None  # the task whose run is being repeated on a new instance


SCRATCH_PREFIX = "fmio-pool-"


def sweep_scratch(root: str | None = None) -> list[str]:
    """Remove the scratch folders of pools whose process is gone: a pool removes its own on close and by a
    finalizer, but a SIGKILLed study runs neither. A folder is named after its process id; one whose process
    still runs (or whose id was reused) is left alone, as is another user's. Returns what it removed."""
    removed = []
    base = Path(root or tempfile.gettempdir())
    for folder in base.glob(f"{SCRATCH_PREFIX}*-*"):
        pid_text = folder.name[len(SCRATCH_PREFIX):].split("-", 1)[0]
        if not pid_text.isdigit():
            continue
        try:
            if folder.stat().st_uid != os.getuid():
                continue
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(str(folder))
        except OSError:  # not ours to signal, or gone meanwhile: leave it
            continue
    return removed


class LocalPool:
    """Persistent worker processes on this machine (no server), started on first use.

    Workers are fresh interpreters (``python -m fmi_optimizer.engine.worker``) connected over a
    Unix socket: they import only fmpy and the simulator, never plugins or TensorFlow,
    and never re-import the caller's script.
    """

    def __init__(self, fmu_path: str | Path, options: EngineOptions | None = None):
        self.fmu_path = str(fmu_path)
        self.options = options or EngineOptions()
        self._workers: list[_Worker] = []
        self._serial = 0
        self.replaced = 0
        sweep_scratch()
        self._tmp = tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-")
        self._authkey = secrets.token_bytes(16)
        self._address = os.path.join(self._tmp, "pool.sock")
        self._listener: Listener | None = None
        self._contexts = ContextTable()
        self._run_seconds: float | None = None  # moving mean of a run's wall time in the worker
        self._selector = selectors.DefaultSelector()  # one for the pool's life: cheaper than wait() per reply
        # the scratch folder goes even if close() is not called
        self._finalizer = weakref.finalize(self, shutil.rmtree, self._tmp, True)
        if self.options.strategy not in STRATEGIES:
            raise FmuError(f"unknown instance strategy {self.options.strategy!r}; "
                           f"use one of {', '.join(STRATEGIES)}")
        self.strategy = self.options.strategy
        self.switches: list[str] = []  # why the strategy changed during this pool's life
        self.reruns = 0
        self._retired_unverified: list[RunRequest] = []
        self._rerunning: set[int] = set()  # task ids queued again after a failed check

    # -- lifecycle ----------------------------------------------------------------------
    def _spawn(self) -> _Worker:
        if self._listener is None:
            self._listener = Listener(self._address, family="AF_UNIX", authkey=self._authkey)
        self._serial += 1
        ident = f"local-{self._serial}"
        stderr_path = Path(self._tmp) / f"{ident}.stderr"
        env = {**os.environ, "FMIO_WORKER_AUTHKEY": self._authkey.hex()}
        with open(stderr_path, "wb") as err:  # fds 1 and 2 share one file (and one offset): the FMU's chatter
            proc = subprocess.Popen(
                [sys.executable, "-c", "from fmi_optimizer.engine.worker import main; main()", self._address,
                 self.fmu_path, self.options.interface, ident, self.strategy, repr(self.options.check_share),
                 str(stderr_path)],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=env)
        conn = self._accept(proc, ident)
        w = _Worker(ident, proc, conn, stderr_path)
        self._await_ready(w)
        self._selector.register(conn, selectors.EVENT_READ, w)
        return w

    def _accept(self, proc: subprocess.Popen[bytes], ident: str) -> Connection:
        """Wait for the new worker to connect (or die)."""
        assert self._listener is not None
        deadline = time.monotonic() + self.options.start_timeout
        sock = self._listener._listener._socket  # type: ignore[attr-defined]
        while time.monotonic() < deadline:
            if select.select([sock], [], [], 0.05)[0]:
                return self._listener.accept()
            if proc.poll() is not None:
                raise FmuError(f"{self.fmu_path}: worker {ident} exited before connecting "
                               f"({exit_text(proc.returncode)})")
        proc.kill()
        raise FmuError(f"{self.fmu_path}: worker {ident} did not start within "
                       f"{self.options.start_timeout:g} s")

    def _await_ready(self, w: _Worker) -> None:
        ready = wait([w.conn], timeout=self.options.start_timeout)
        if not ready:
            self._kill(w)
            raise FmuError(f"{self.fmu_path}: the FMU did not instantiate within "
                           f"{self.options.start_timeout:g} s; "
                           "check it with 'fmi-optimizer inspect' or raise the start timeout")
        try:
            msg: Any = w.conn.recv()
        except (EOFError, OSError):
            msg = None
        if msg is None:
            code = self._exit_code(w)
            self._kill(w)
            raise FmuError(f"{self.fmu_path}: the FMU crashed while instantiating "
                           f"({exit_text(code)}{self._stderr_tail(w)}); "
                           "the FMU binary is broken or incompatible with this machine")
        if msg[0] == "init_error":
            self._kill(w)
            raise FmuError(f"{self.fmu_path}: instantiating the FMU failed ({msg[1]}); "
                           "check the GUID/instantiation token and the binary")

    def _exit_code(self, w: _Worker) -> int | None:
        try:
            return w.process.wait(2)
        except subprocess.TimeoutExpired:
            return None

    def _stderr_tail(self, w: _Worker) -> str:
        try:
            lines = w.stderr_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return f"; last output: {lines[-1][:200]}" if lines else ""

    def _ensure_workers(self, n: int) -> None:
        while len(self._workers) < n:
            self._workers.append(self._spawn())

    def _remember(self, w: _Worker, req: RunRequest) -> None:
        """Keep a reused, unchecked run for a re-run should a later check fail (a check that agrees
        vouches only for its own run), at most UNVERIFIED_LIMIT per pool."""
        if len(w.unverified) + len(self._retired_unverified) < UNVERIFIED_LIMIT:
            w.unverified.append(req)

    def _remember_unverified(self, w: _Worker) -> None:
        room = UNVERIFIED_LIMIT - len(self._retired_unverified)
        self._retired_unverified.extend(w.unverified[:max(0, room)])
        w.unverified = []

    def _kill(self, w: _Worker) -> None:
        self._remember_unverified(w)
        if w.conn in self._selector.get_map():
            self._selector.unregister(w.conn)
        if w.process.poll() is None:
            w.process.kill()
        self._exit_code(w)
        w.conn.close()
        w.stderr_path.unlink(missing_ok=True)

    def _retire(self, w: _Worker) -> None:
        self._remember_unverified(w)
        try:
            w.conn.send(None)
            w.process.wait(2)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self._kill(w)

    def close(self) -> None:
        for w in self._workers:
            self._retire(w)
        self._workers.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._selector.close()
        self._selector = selectors.DefaultSelector()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running ------------------------------------------------------------------------
    # Requests queued in each worker's pipe, so that it never waits for the parent to be scheduled between
    # runs: about PIPELINE_SECONDS of work (several scheduler time slices on a loaded machine), within the
    # depth bounds.
    PIPELINE_SECONDS = 0.05
    PIPELINE_DEPTH = (2, 64)
    INITIAL_DEPTH = 6  # until the first runs have been timed
    NAP_BELOW = 0.005  # mean run time (s) under which the parent polls the pipes on a timer

    def run(self, requests: Sequence[RunRequest]) -> Iterator[RunReply]:
        """Run ``requests`` over the pool; yield each reply as soon as it exists."""
        if not requests:
            return
        self._ensure_workers(min(self.options.worker_count(), len(requests)))
        queue = deque(requests)
        while queue or any(w.inflight for w in self._workers):
            self._feed_all(queue)
            busy = [w for w in self._workers if w.inflight]
            if not busy:  # every send found a dead idle worker, now replaced: deal the queue again
                continue
            timeout = max(0.0, min(w.deadline for w in busy) - time.monotonic())
            ready = self._wait(busy, timeout)
            now = time.monotonic()
            switches = len(self.switches)
            for w in busy:
                if len(self.switches) != switches:  # a switch replaced every worker: deal the queue again
                    break
                if w in ready:
                    yield from self._receive(w, now, queue)
                elif now >= w.deadline:
                    yield self._failure(w, w.inflight[0], "timeout",
                                        f"no result within {self.options.timeout:g} s; the worker was killed")
                    self._replace(w, graceful=False, queue=queue)

    def _wait(self, busy: list[_Worker], timeout: float) -> set[_Worker]:
        """Workers with replies to read.  While every busy worker holds work for at least two naps of short
        runs, the parent naps instead of sleeping on the pipes: a reply then wakes no one, which on a busy
        machine would hand the worker's CPU to the parent once per run.  Otherwise (small batches, the tail
        of a batch, long runs) it wakes on the first reply."""
        avg = self._run_seconds
        if avg is not None and avg < self.NAP_BELOW:
            nap = self.PIPELINE_SECONDS / 5
            if min(len(w.inflight) for w in busy) * avg >= 2 * nap:
                time.sleep(min(timeout, nap))
                timeout = 0.0
        return {key.data for key, _ in self._selector.select(min(timeout, 3600))}

    def _feed_all(self, queue: deque[RunRequest]) -> None:
        """Deal requests round-robin, one per worker per pass (a small batch is spread over all workers),
        then send each worker its share in one message."""
        shares: dict[int, list[RunRequest]] = {}
        room = {i: self._limit(w) - len(w.inflight) for i, w in enumerate(self._workers)}
        while queue and any(r > 0 for r in room.values()):
            for i in room:
                if queue and room[i] > 0:
                    shares.setdefault(i, []).append(queue.popleft())
                    room[i] -= 1
        for i in sorted(shares, reverse=True):  # a refused share goes back to the queue front, in order
            self._send(self._workers[i], shares[i], queue)

    @property
    def _recycle_every(self) -> int | None:
        return 1 if self.strategy == "process" else self.options.recycle_every

    def _limit(self, w: _Worker) -> int:
        """How many requests ``w`` may hold (fewer just before it is recycled)."""
        depth = self.pipeline_depth
        if self._recycle_every:
            return min(depth, self._recycle_every - w.runs)
        return depth

    @property
    def pipeline_depth(self) -> int:
        """Requests per worker pipe: PIPELINE_SECONDS of work at the recent mean run time."""
        if self._run_seconds is None:
            return self.INITIAL_DEPTH
        lo, hi = self.PIPELINE_DEPTH
        return max(lo, min(hi, math.ceil(self.PIPELINE_SECONDS / max(self._run_seconds, 1e-6))))

    def _send(self, w: _Worker, share: list[RunRequest], queue: deque[RunRequest]) -> None:
        """Send ``share`` to ``w`` in one message; if the worker turned out to be dead, requeue it."""
        known = KnownContexts(w.contexts.generation, set(w.contexts.numbers))
        try:
            w.conn.send(self._contexts.message(share, known))
        except OSError:  # the worker died; its running request is reported when its pipe shows EOF
            queue.extendleft(reversed(share))
            if not w.inflight:  # it died idle (killed from outside): replace it quietly
                self._replace(w, graceful=False, queue=queue)
            return
        w.contexts = known
        if not w.inflight:
            self._start_clock(w, time.monotonic())
        w.inflight.extend(share)

    def _start_clock(self, w: _Worker, now: float) -> None:
        w.started = now
        w.deadline = now + self.options.timeout if self.options.timeout else float("inf")

    def _receive(self, w: _Worker, now: float, queue: deque[RunRequest]) -> Iterator[RunReply]:
        """Every reply waiting in ``w``'s pipe (one wake-up, several replies); if the worker died, its running
        request becomes ``crashed`` and the worker is replaced."""
        while w.inflight:
            try:
                msg: Any = w.conn.recv()
            except (EOFError, OSError):
                msg = None
            if isinstance(msg, tuple) and msg[:1] == (CHECKING,):  # a repeat: it gets its own timeout
                w.checking = msg[1]
                self._start_clock(w, time.monotonic())
                if not w.conn.poll(0):
                    return
                continue
            if not isinstance(msg, tuple) or len(msg) != REPLY_FIELDS:
                code = self._exit_code(w)
                why = f"the worker process died ({exit_text(code)}{self._stderr_tail(w)})"
                if w.runs > 0 and self.strategy in REUSING:  # not the FMU's verdict yet: rerun, fresh
                    task = w.inflight[0].task_id
                    reused = f"a run on a reused ({self.strategy}) instance"
                    what = (f"the check of {reused}, on a new instance of the loaded library,"
                            if w.checking == task else reused)
                    self._switch(queue, f"task {task}: {what} crashed: {why}")
                    return
                failed = self._failure(w, w.inflight[0], "crashed", why)
                self._replace(w, graceful=False, queue=queue)
                yield failed
                return
            reply = decode_reply(msg)
            avg = self._run_seconds
            self._run_seconds = reply.wall_seconds if avg is None else 0.9 * avg + 0.1 * reply.wall_seconds
            assert reply.task_id == w.inflight[0].task_id, "worker replies arrive in request order"
            req = w.inflight.popleft()
            w.runs += 1
            w.checking = None
            self._mark_rerun(reply)
            if reply.check == "unchecked":
                self._remember(w, req)
            elif reply.check == "differed":  # its reply already carries a fresh instance's numbers
                note = split_check_note(reply)
                # switch before the yield: a consumer may stop at this reply
                self._switch(queue, f"task {req.task_id}: a fresh instance gave other numbers than the "
                             f"reused one ({note})")
                yield reply
                return
            if w.inflight:
                self._start_clock(w, now)
            elif self._recycle_every and w.runs >= self._recycle_every:
                self._replace(w, graceful=True, queue=queue)
            yield reply
            if not w.inflight or not w.conn.poll(0):
                return

    def _switch(self, queue: deque[RunRequest], why: str) -> None:
        """Stop reusing instances: every worker restarts on fresh instances, and every reused run no check
        vouched for is run again (its reply comes back flagged ``rerun``)."""
        self.strategy = FALLBACK
        self.switches.append(why)
        for i, w in enumerate(self._workers):
            queue.extendleft(reversed(list(w.inflight)))  # not answered yet: runs again on the new workers
            w.inflight.clear()
            self._kill(w)  # its unverified runs join the retired workers'
            self._workers[i] = self._spawn()
        suspects, self._retired_unverified = self._retired_unverified, []
        seen = {r.task_id for r in queue}
        for req in suspects:
            if req.task_id not in seen:
                seen.add(req.task_id)
                self._rerunning.add(req.task_id)
                queue.append(req)
                self.reruns += 1

    def _failure(self, w: _Worker, req: RunRequest, status: str, error: str) -> RunReply:
        reply = RunReply(req.task_id, status, None, {}, error, time.monotonic() - w.started, 0.0, w.ident)
        self._mark_rerun(reply)
        return reply

    def _mark_rerun(self, reply: RunReply) -> None:
        """A reply to a task queued again after a failed check replaces the earlier one: flag it."""
        reply.rerun = reply.task_id in self._rerunning
        self._rerunning.discard(reply.task_id)

    def _replace(self, w: _Worker, graceful: bool, queue: deque[RunRequest]) -> None:
        """Swap a worker for a fresh one; requests it had queued but not started go back to the queue
        front."""
        waiting = list(w.inflight)[1:] if not graceful else list(w.inflight)
        for req in reversed(waiting):
            queue.appendleft(req)
        w.inflight.clear()
        i = self._workers.index(w)
        if graceful:
            self._retire(w)
        else:
            self._kill(w)
        self.replaced += 1
        self._workers[i] = self._spawn()

    @property
    def pids(self) -> list[int]:
        return [int(w.process.pid) for w in self._workers]

    @property
    def size(self) -> int:
        return len(self._workers)


def exit_text(code: int | None) -> str:
    """Describe a process exit code: 'signal SIGSEGV', 'exit code 3', ..."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"
