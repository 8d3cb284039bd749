"""What one simulation run needs and what it gives back: the engine's request/reply records."""

from __future__ import annotations

from dataclasses import dataclass
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

    ``check`` says what the worker knows of the run's instance: ``""`` it was fresh (a first run, or a strategy
    that never reuses), ``unchecked`` it reused an instance or library, ``agreed``/``differed`` it reused one
    and a fresh copy gave the same / other numbers (the reply then carries the fresh numbers). ``rerun``
    marks a reply that replaces an earlier one for the same task (the pool re-ran it after a check failed).
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
"""Marks, at the end of a ``differed`` reply's error, how the reused instance's numbers differed (the pool moves
it into the pool's switch record, so the stored error is the fresh run's own)."""


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
