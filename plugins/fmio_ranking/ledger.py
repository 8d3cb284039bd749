"""Bookkeeping of replications: which replication number a (scenario, slot, batch part) gets, what came
back, and how failures are retried.  Kept apart from the statistics so the method stays readable.

Replication numbers live in blocks of ``BLOCK``: block 0 holds the selection's replications, block
``a`` (1..5) the a-th retry of a failed one, block ``VALIDATION`` (+ a) the winner's validation runs.
With common random numbers, replication ``s*b + j`` (slot s, batch part j) is the same for every
scenario, so the host gives all scenarios the same seed for it; without, numbers are disjoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from fmi_optimizer.errors import StudyError
from fmi_optimizer.records import Evaluation

BLOCK = 10_000_000
VALIDATION = 10

Key = tuple[int, int, int]  # (scenario, slot, batch part); slot -1 = validation


@dataclass
class Job:
    """One replication to run: where its value goes and how often it has been tried."""

    key: Key
    replication: int
    attempt: int = 0


@dataclass
class Ledger:
    """Replication numbers, results and failures of one selection."""

    k: int
    batch: int
    crn: bool
    retries: int
    parts: dict[Key, float] = field(default_factory=dict)
    failures: list[dict[str, object]] = field(default_factory=list)
    inflight: dict[tuple[int, int], Job] = field(default_factory=dict)
    given_up: set[Key] = field(default_factory=set)

    def number(self, key: Key, attempt: int) -> int:
        """The replication number of ``key`` at retry ``attempt`` (0 = first try)."""
        i, slot, j = key
        if slot < 0:
            base = VALIDATION * BLOCK + j
            return base + attempt * BLOCK
        r = slot * self.batch + j
        main = r if self.crn else r * self.k + i
        if main >= BLOCK:
            raise StudyError(
                f"ranking: replication number {main} exceeds {BLOCK - 1}; lower max_observations or batch"
            )
        return main + attempt * BLOCK

    def job(self, key: Key, attempt: int = 0) -> Job:
        job = Job(key, self.number(key, attempt), attempt)
        self.inflight[(key[0], job.replication)] = job
        return job

    def settle(self, scenario: int, ev: Evaluation) -> tuple[Job | None, Job | None]:
        """Record an evaluation of ``scenario``: returns (the job it answered, a retry job or None).

        A non-ok status, or an ok one without a finite objective, is a failure: it is retried with the
        next block's replication number until ``retries`` is used up, then the key is given up.
        """
        job = self.inflight.pop((scenario, ev.candidate.replication), None)
        if job is None:
            return None, None
        value = ev.objective
        if ev.ok and value is not None and math.isfinite(value):
            self.parts[job.key] = float(value)
            return job, None
        retry = job.attempt < self.retries
        self.failures.append(
            {
                "scenario": scenario,
                "slot": job.key[1],
                "replication": ev.candidate.replication,
                "status": ev.status if not ev.ok else "ok-without-finite-objective",
                "error": ev.error[:200],
                "action": "retried with a fresh seed" if retry else "gave up",
            }
        )
        if retry:
            return job, self.job(job.key, job.attempt + 1)
        self.given_up.add(job.key)
        return job, None

    def observation(self, i: int, slot: int) -> float | None:
        """The mean of the ``batch`` parts of slot ``slot`` of scenario ``i`` (None until all are in)."""
        vals = [self.parts.get((i, slot, j)) for j in range(self.batch)]
        if any(v is None for v in vals):
            return None
        return float(sum(v for v in vals if v is not None) / self.batch)
