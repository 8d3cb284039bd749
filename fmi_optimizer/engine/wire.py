"""The compact pool <-> worker message format.

For runs of about a millisecond the cost of talking to a worker is a visible share of the
run itself: pickling a ``RunRequest`` and a ``RunReply`` dataclass (with a dict of small numpy
arrays) costs several times more than this format (docs/benchmarks.md has the measured figures).
On the wire a run is therefore a plain tuple, and what
does not change from run to run (simulation settings, output names, input signals) travels
once per worker as a numbered *context*; outputs come back as one float64 block.  Several
runs for one worker travel in one message.  ``RunRequest``/``RunReply`` stay the public API:
only :class:`ContextTable`, :func:`encode_reply` and :func:`decode_reply` know this format.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fmi_optimizer.engine.protocol import RunReply, RunRequest
from fmi_optimizer.fmu.simulator import SimSettings

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
            self._contexts[no] = (req.settings, tuple(req.outputs), req.inputs)  # keeps inputs alive: ids stay unique
        return no

    def message(self, requests: Sequence[RunRequest], known: KnownContexts) -> RunsMessage:
        """One message carrying ``requests`` plus the contexts the receiving worker lacks (``known`` is updated)."""
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
