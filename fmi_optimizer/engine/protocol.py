"""The engine's protocol: what one run needs and gives back, and how that travels between pool and worker.

``RunRequest``/``RunReply`` are the records the rest of the package uses. The compact format below is
how they cross the pipe; only :class:`ContextTable`, :func:`encode_reply`, :func:`decode_reply` and
:func:`unpack_runs` know it, so a change to what a worker returns is made in this one module.

For runs of about a millisecond the cost of talking to a worker is a visible share of the run itself:
pickling a ``RunRequest`` and a ``RunReply`` dataclass (with a dict of small numpy arrays) costs several
times more than this format (docs/benchmarks.md has the measured figures). On the wire a run is
therefore a plain tuple, and what does not change from run to run (simulation settings, output names,
input signals) travels once per worker as a numbered *context*; outputs come back as one float64 block.
Several runs for one worker travel in one message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fmi_optimizer.fmu.simulator import SimSettings


@dataclass(frozen=True)
class RunRequest:
    """What a worker needs for one run (picklable)."""

    task_id: int
    start_values: dict[str, Any]
    settings: SimSettings
    outputs: tuple[str, ...]
    inputs: np.ndarray | None = None


@dataclass
class RunReply:
    """What comes back: ``status`` ok/failed, the sampled outputs, timings, the error text.

    ``check`` says what the worker knows of the run's instance: ``""`` it was fresh (a first run, or a
    strategy that never reuses), ``unchecked`` it reused an instance or library, ``agreed``/``differed`` it
    reused one and a fresh copy gave the same / other numbers (the reply then carries the fresh numbers).
    ``rerun`` marks a reply that replaces an earlier one for the same task (the pool re-ran it after a check
    failed).
    """

    task_id: int
    status: str
    time: np.ndarray | None
    outputs: dict[str, np.ndarray]
    error: str
    wall_seconds: float
    cpu_seconds: float
    worker: str
    check: str = ""
    rerun: bool = False


DIFFERED = " [fresh instance differed: "
"""Marks, at the end of a ``differed`` reply's error, how the reused instance's numbers differed (the
pool moves it into the pool's switch record, so the stored error is the fresh run's own)."""


def split_check_note(reply: RunReply) -> str:
    """Remove and return the disagreement note of a ``differed`` reply."""
    error, marker, note = reply.error.rpartition(DIFFERED)
    if not marker:
        return ""
    reply.error = error
    return note.rstrip("]")


def disagreement(a: RunReply, b: RunReply, rtol: float = 1e-9) -> str:
    """How two runs of the same request differ ('' when they agree): status, time grid, or an output's values.

    The same binary given the same values is deterministic, so the tolerance only absorbs the last bits (near
    zero, relative to the output's largest value); NaN must sit where NaN sits."""
    if a.status != b.status:
        return f"status {a.status} vs {b.status}" + (f" ({a.error or b.error})" if a.error or b.error else "")
    if a.status != "ok":
        return ""
    if a.time is None or b.time is None or a.time.shape != b.time.shape or not np.array_equal(a.time, b.time):
        return "different time grids"
    for name, x in a.outputs.items():
        y = b.outputs.get(name)
        x = np.asarray(x, dtype=float)
        if y is None or np.shape(y) != x.shape:
            return f"output {name!r} missing or of another shape"
        y = np.asarray(y, dtype=float)
        nan = np.isnan(x)
        if not np.array_equal(nan, np.isnan(y)):
            return f"output {name!r} is NaN in one run only"
        xs, ys = x[~nan], y[~nan]
        scale = float(np.max(np.abs(ys))) if ys.size else 0.0
        bad = np.abs(xs - ys) > rtol * np.maximum(np.maximum(np.abs(xs), np.abs(ys)), 1e-6 * scale)
        if bad.any():
            i = int(np.argmax(bad))
            return f"output {name!r}: {xs[i]:.10g} vs {ys[i]:.10g}"
    return ""


# parent -> worker:  ("runs", reset, [(ctx_no, settings, outputs, inputs), ...new contexts],
#                              [(task_id, values, ctx_no), ...])      reset: forget every context first
#                    None = stop
# worker -> parent:  ("ready", pid) | ("init_error", text, traceback) | reply tuple (see encode_reply)
#                    | (CHECKING, task_id): the run is being repeated on a fresh instance (restart its clock)
CHECKING = "checking"
REPLY_FIELDS = 10  # length of an encoded reply tuple
Context = tuple[SimSettings, tuple[str, ...], "np.ndarray | None"]
WireRun = tuple[int, dict[str, Any], int]
RunsMessage = tuple[str, bool, list[Any], list[WireRun]]


@dataclass
class KnownContexts:
    """What one worker has been sent: the table's generation and the context numbers of it."""

    generation: int = -1
    numbers: set[int] = field(default_factory=set)


class ContextTable:
    """Numbers the distinct (settings, outputs, inputs) of a pool's requests.

    At most ``LIMIT`` are kept (each holds its input table alive, and a study that made a new table per
    run must not grow without bound); past that the table starts a new generation and workers are told
    to forget theirs.
    """

    LIMIT = 32

    def __init__(self) -> None:
        self._numbers: dict[tuple[SimSettings, tuple[str, ...], int], int] = {}
        self._contexts: dict[int, Context] = {}
        self.generation = 0

    def _number(self, req: RunRequest) -> int:
        """The context number of ``req`` (input tables are told apart by identity: they are large)."""
        key = (req.settings, tuple(req.outputs), id(req.inputs) if req.inputs is not None else 0)
        no = self._numbers.get(key)
        if no is None:
            no = self._numbers[key] = len(self._contexts)
            # keeps inputs alive: ids stay unique
            self._contexts[no] = (req.settings, tuple(req.outputs), req.inputs)
        return no

    def message(self, requests: Sequence[RunRequest], known: KnownContexts) -> RunsMessage:
        """One message carrying ``requests`` plus the contexts the receiving worker lacks (``known`` is
        updated)."""
        if len(self._contexts) + len(requests) > self.LIMIT:
            self._numbers.clear()
            self._contexts.clear()
            self.generation += 1
        reset = known.generation != self.generation
        if reset:
            known.generation, known.numbers = self.generation, set()
        runs: list[WireRun] = []
        new: list[Any] = []
        for req in requests:
            no = self._number(req)
            if no not in known.numbers:
                known.numbers.add(no)
                new.append((no, *self._contexts[no]))
            runs.append((req.task_id, req.start_values, no))
        return ("runs", reset, new, runs)


def unpack_runs(message: RunsMessage, contexts: dict[int, Context]) -> list[RunRequest]:
    """Worker side: the requests of one ``runs`` message (new contexts are remembered in ``contexts``)."""
    _, reset, new, runs = message
    if reset:
        contexts.clear()
    for no, settings, outputs, inputs in new:
        contexts[no] = (settings, outputs, inputs)
    out = []
    for task_id, values, no in runs:
        settings, outputs, inputs = contexts[no]
        out.append(RunRequest(task_id, values, settings, outputs, inputs))
    return out


def encode_reply(reply: RunReply) -> tuple[Any, ...]:
    """A reply as a tuple of plain values: the output samples as one C-ordered float64 block."""
    block: bytes | dict[str, np.ndarray] | None = dict(reply.outputs) if reply.outputs else None
    times = None
    if reply.time is not None:
        times = np.ascontiguousarray(reply.time, dtype=np.float64).tobytes()
        arrays = [np.asarray(v, dtype=np.float64) for v in reply.outputs.values()]
        if all(a.shape == reply.time.shape for a in arrays):  # else the arrays travel as they are
            block = np.stack(arrays).tobytes() if arrays else b""
    return (reply.task_id, reply.status, times, tuple(reply.outputs), block, reply.error,
            reply.wall_seconds, reply.cpu_seconds, reply.worker, reply.check)


def decode_reply(msg: tuple[Any, ...]) -> RunReply:
    """The inverse of :func:`encode_reply` (arrays are writable copies)."""
    task_id, status, times, names, block, error, wall, cpu, worker, check = msg
    outputs: dict[str, np.ndarray] = {}
    time = None
    if isinstance(block, dict):
        outputs = block
    if times is not None:
        time = np.frombuffer(times, dtype=np.float64).copy()
        if isinstance(block, bytes) and names:
            rows = np.frombuffer(block, dtype=np.float64).reshape(len(names), time.size).copy()
            outputs = dict(zip(names, rows, strict=True))
    return RunReply(task_id, status, time, outputs, error, wall, cpu, worker, check)
