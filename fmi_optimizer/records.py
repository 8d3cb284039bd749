"""The two records every part shares: a Candidate to simulate and the Evaluation it produced."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from fmi_optimizer.space import Value

Status = Literal["ok", "failed", "timeout", "crashed", "invalid"]
STATUSES: tuple[Status, ...] = ("ok", "failed", "timeout", "crashed", "invalid")


@dataclass(frozen=True)
class Candidate:
    """Parameter values to simulate, and which replication (seed slot) of them.

    ``replication`` matters only for stochastic twins: replication ``r`` of every
    candidate gets the same seed when common random numbers are on.  ``tag`` is free
    for a method's bookkeeping (e.g. a scenario name) and is stored with the evaluation.
    """

    values: dict[str, Value]
    replication: int = 0
    tag: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"values": dict(self.values), "replication": self.replication, "tag": self.tag}


OUTCOME_FIELDS = ("status", "kpis", "objective", "objectives", "constraints", "error", "wall_seconds",
                  "cpu_seconds", "worker", "finished")  # what a repeated run replaces
TIMING_FIELDS = ("wall_seconds", "cpu_seconds", "worker", "finished")


@dataclass
class Evaluation:
    """One simulation of one candidate: its KPIs and what the problem made of them.

    ``objective`` is the scalar to *minimize* (the host has applied directions and
    weights); ``objectives`` the vector for multi-objective studies; ``constraints``
    holds one value per constraint, feasible when <= 0 (in the KPI's units). They are
    ``None``/empty when the status is not ``ok``.

    ``seq`` numbers the study's runs in the order the host handed them out (the method's proposal
    order, batch by batch), so two runs of a study with the same seed number their evaluations alike
    whichever worker finished first; ``id`` is the database row, numbered as runs finish.
    """

    candidate: Candidate
    status: Status
    kpis: dict[str, float] = field(default_factory=dict)
    objective: float | None = None
    objectives: tuple[float, ...] = ()
    constraints: tuple[float, ...] = ()
    error: str = ""
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    worker: str = ""
    seed: int | None = None
    started: float = 0.0
    finished: float = 0.0
    cached: bool = False
    id: int | None = None
    seq: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def simulated(self) -> bool:
        """A run of the twin charged to the study: neither a cache hit nor an invalid proposal."""
        return not self.cached and self.status != "invalid"

    def take_outcome(self, fresh: Evaluation, keep_timing: bool = False) -> None:
        """Take ``fresh``'s outcome in place (a run repeated on a fresh instance), so every holder of this
        record sees the fresh numbers; what it is (candidate, id, seq, start) stays. ``keep_timing``: a cache
        hit keeps its own (zero) timings. These are the fields the store's ``replace_evaluation`` writes."""
        for name in OUTCOME_FIELDS:
            if not (keep_timing and name in TIMING_FIELDS):
                setattr(self, name, getattr(fresh, name))

    @property
    def feasible(self) -> bool:
        """True when the run succeeded and every constraint holds."""
        return self.ok and all(c <= 0.0 for c in self.constraints)

    @property
    def values(self) -> dict[str, Value]:
        return self.candidate.values

    def violation(self) -> float:
        """Total constraint violation (0 when feasible, ``inf`` when the run failed)."""
        if not self.ok:
            return math.inf
        return float(sum(max(0.0, c) for c in self.constraints))
