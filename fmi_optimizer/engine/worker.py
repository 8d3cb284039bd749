"""The evaluation worker process: owns one :class:`Simulator` and answers run requests on a pipe.

Kept apart from the pool so that a worker imports only this module, the simulator,
numpy and fmpy — never a method plugin or TensorFlow.

The worker's standard output and error (file descriptors 1 and 2, so C code in the FMU is caught too) go to
one log file that the pool names; what an FMU prints never reaches a protocol, and the part printed during a
failed run is quoted in its error.
"""

from __future__ import annotations

import os
import random
import sys
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection

from fmi_optimizer.engine.protocol import (
    CHECKING,
    DIFFERED,
    Context,
    RunReply,
    RunRequest,
    disagreement,
    encode_reply,
    unpack_runs,
)
from fmi_optimizer.fmu.fd_capture import flush_all, flush_c
from fmi_optimizer.fmu.simulator import FALLBACK, REUSING, Simulator

__all__ = ["RunReply", "RunRequest", "RunLog", "execute", "main", "worker_main"]

LOG_LIMIT = 1 << 20  # bytes of FMU output kept in the log file before it starts over
QUOTE_LIMIT = 300  # characters of a failed run's output quoted in its error


class RunLog:
    """What the FMU printed during one run, read back from the log file both output descriptors point to."""

    def __init__(self, path: str | None):
        self.path = path
        self._start = 0

    def begin(self) -> None:
        if self.path is None:
            return
        flush_c()  # what an earlier run left in C's buffers belongs before this run's start
        try:
            self._start = os.lseek(1, 0, os.SEEK_CUR)
            if self._start > LOG_LIMIT:  # bounded: start over (both descriptors share this offset)
                os.ftruncate(1, 0)
                self._start = os.lseek(1, 0, os.SEEK_SET)
        except OSError:
            self._start = 0

    def text(self) -> str:
        """The run's output, whitespace collapsed, its tail kept ('' when it printed nothing)."""
        if self.path is None:
            return ""
        flush_all()
        try:
            with open(self.path, "rb") as f:
                end = f.seek(0, os.SEEK_END)
                f.seek(max(self._start, end - 8 * QUOTE_LIMIT))  # the end of what the run printed
                data = f.read()
        except OSError:
            return ""
        said = " ".join(data.decode("utf-8", "replace").split())
        return said if len(said) <= QUOTE_LIMIT else "..." + said[-QUOTE_LIMIT:]


class Checker:
    """Which reused runs a worker compares against a fresh instance: the first, then a random ``share``."""

    def __init__(self, share: float, seed: str):
        self.share = share
        self._rng = random.Random(seed)
        self._checked = 0

    def due(self) -> bool:
        """Whether to check the reused run about to be returned (counts it when so)."""
        if self._checked == 0 or self._rng.random() < self.share:
            self._checked += 1
            return True
        return False


def _simulate(sim: Simulator, req: RunRequest, worker: str, log: RunLog, fresh: bool = False) -> RunReply:
    t0, c0 = time.perf_counter(), time.process_time()
    log.begin()
    try:
        traj = sim.run(req.start_values, req.settings, req.outputs, req.inputs, fresh=fresh)
        status, error = ("failed", traj.message) if traj.message else ("ok", "")
        times, outs = traj.time, traj.outputs
    except Exception as exc:  # the FMU's failure becomes a failed evaluation, with its message
        said = sim.last_messages()
        status, error, times, outs = "failed", _describe(exc) + (f" [FMU log: {said}]" if said else ""), None, {}
    if status != "ok":
        printed = log.text()
        if printed:
            error += f" [FMU output: {printed}]"
    return RunReply(req.task_id, status, times, outs, error,
                    time.perf_counter() - t0, time.process_time() - c0, worker)


def execute(sim: Simulator, req: RunRequest, worker: str, checker: Checker | None = None,
            log: RunLog | None = None, checking: Callable[[int], None] = lambda task_id: None) -> RunReply:
    """Run one request on a live simulator and classify the outcome.

    A run on a reused instance that ``checker`` picks is repeated on a fresh instance (under ``reinstantiate`` on a
    fresh copy of the library, as plain fmpy runs it); when the two differ the fresh numbers are returned
    (flagged ``differed``) and this simulator switches to fresh library copies for the rest of its life. ``checking`` is told before the repeat
    (the pool gives the repeat its own timeout).
    """
    log = log or RunLog(None)
    reused = sim.reuses
    reply = _simulate(sim, req, worker, log)
    if not reused:
        return reply
    if checker is None or not checker.due():
        reply.check = "unchecked"
        return reply
    checking(req.task_id)
    fresh = _simulate(sim, req, worker, log, fresh=True)
    differs = disagreement(reply, fresh)
    if not differs:
        reply.check = "agreed"
        return reply
    fresh.check = "differed"
    fresh.error += f"{DIFFERED}{sim.strategy} gave {differs}]"
    if sim.strategy in REUSING:
        sim.strategy = FALLBACK
    return fresh


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]


def main() -> None:
    """``python -c "from fmi_optimizer.engine.worker import main; main()" ADDRESS FMU INTERFACE NAME STRATEGY SHARE LOG``:
    connect back to the pool and serve.

    Workers are started as fresh interpreters (not multiprocessing children) so that a
    calling script without a ``__main__`` guard is never re-imported in a worker.
    """
    import signal
    from multiprocessing.connection import Client

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the study cleanly
    address, fmu_path, interface, worker, strategy, share, log_path = sys.argv[1:8]
    authkey = bytes.fromhex(os.environ.pop("FMIO_WORKER_AUTHKEY"))
    conn = Client(address, family="AF_UNIX", authkey=authkey)
    worker_main(conn, fmu_path, interface, worker, os.path.dirname(address), strategy=strategy,
                check_share=float(share), log_path=log_path)


def worker_main(conn: Connection, fmu_path: str, interface: str, worker: str, scratch: str | None = None,
                strategy: str = "reset", check_share: float = 0.0, log_path: str | None = None) -> None:
    """Entry point of a worker process: instantiate once, then serve requests until told to stop."""
    try:
        sim = Simulator(fmu_path, interface, scratch, strategy)
    except Exception as exc:
        conn.send(("init_error", _describe(exc), traceback.format_exc(limit=3)))
        conn.close()
        return
    conn.send(("ready", os.getpid()))
    contexts: dict[int, Context] = {}
    checker = Checker(check_share, worker) if check_share > 0 else None
    log = RunLog(log_path)
    try:
        while True:
            try:
                msg = conn.recv()
            except EOFError:
                break
            if msg is None:
                break
            for req in unpack_runs(msg, contexts):  # run in order: the pool times the oldest unanswered one
                conn.send(encode_reply(execute(sim, req, worker, checker, log,
                                               lambda task_id: conn.send((CHECKING, task_id)))))
    finally:
        sim.close()
        conn.close()
