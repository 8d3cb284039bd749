"""The evaluation worker process: owns one :class:`Simulator` and answers run requests on a pipe.

Kept apart from the pool so that a worker imports only this module, the simulator,
numpy and fmpy — never a method plugin or TensorFlow.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from multiprocessing.connection import Connection

from .runs import RunReply, RunRequest
from .simulator import Simulator
from .wire import Context, encode_reply, unpack_runs

__all__ = ["RunReply", "RunRequest", "execute", "main", "worker_main"]


def execute(sim: Simulator, req: RunRequest, worker: str) -> RunReply:
    """Run one request on a live simulator and classify the outcome."""
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        traj = sim.run(req.start_values, req.settings, req.outputs, req.inputs)
        status, error = ("failed", traj.message) if traj.message else ("ok", "")
        times, outs = traj.time, traj.outputs
    except Exception as exc:  # the FMU's failure becomes a failed evaluation, with its message
        said = sim.last_messages()
        status, error, times, outs = "failed", _describe(exc) + (f" [FMU log: {said}]" if said else ""), None, {}
    return RunReply(req.task_id, status, times, outs, error,
                    time.perf_counter() - t0, time.process_time() - c0, worker)


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]


def main() -> None:
    """``python -c "from fmi_optimizer.worker import main; main()" ADDRESS FMU INTERFACE NAME``: connect back to the pool and serve.

    Workers are started as fresh interpreters (not multiprocessing children) so that a
    calling script without a ``__main__`` guard is never re-imported in a worker.
    """
    import signal
    from multiprocessing.connection import Client

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the study cleanly
    address, fmu_path, interface, worker = sys.argv[1:5]
    authkey = bytes.fromhex(os.environ.pop("FMIO_WORKER_AUTHKEY"))
    conn = Client(address, family="AF_UNIX", authkey=authkey)
    worker_main(conn, fmu_path, interface, worker, os.path.dirname(address))


def worker_main(conn: Connection, fmu_path: str, interface: str, worker: str, scratch: str | None = None) -> None:
    """Entry point of a worker process: instantiate once, then serve requests until told to stop."""
    try:
        sim = Simulator(fmu_path, interface, scratch)
    except Exception as exc:
        conn.send(("init_error", _describe(exc), traceback.format_exc(limit=3)))
        conn.close()
        return
    conn.send(("ready", os.getpid()))
    contexts: dict[int, Context] = {}
    try:
        while True:
            try:
                msg = conn.recv()
            except EOFError:
                break
            if msg is None:
                break
            for req in unpack_runs(msg, contexts):  # run in order: the pool times the oldest unanswered one
                conn.send(encode_reply(execute(sim, req, worker)))
    finally:
        sim.close()
        conn.close()
