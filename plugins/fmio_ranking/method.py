"""The ``ranking`` method: pick the best of the study's scenarios with a statistical guarantee.

The method turns a procedure's stages (see :mod:`.machines`) into replications for the host: each
stage asks for equal increments of every surviving scenario, so a host can run a whole stage in
parallel; the decisions depend only on the replication values (their seeds are fixed by their
numbers, see :mod:`.ledger`), never on the order results arrive in.  Once a scenario is selected,
``validation`` fresh replications of it are run before the method reports ``finished``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fmi_optimizer.errors import StudyError
from fmi_optimizer.method import ALL_KINDS, Capabilities, Fit, Method, Problem
from fmi_optimizer.records import Candidate, Evaluation

from . import report
from .ledger import Job, Ledger
from .machines import MACHINES, Config, Machine
from .options import RankingOptions


class RankingMethod(Method):
    """Ranking & selection among named scenarios (KN, NSGS, Rinott, subset, OCBA, IZ-free)."""

    name = "ranking"
    summary = "ranking & selection: the best scenario of a stochastic twin with PCS >= 1 - alpha"
    capabilities = Capabilities(kinds=ALL_KINDS, noisy=True, batch=True, needs_scenarios=True, constraints=False)
    Options = RankingOptions

    def __init__(self, problem: Problem, options: Mapping[str, Any] | None = None, seed: int = 0):
        super().__init__(problem, options, seed)
        if len(problem.scenarios) < 2:
            raise StudyError(
                f"ranking: needs at least 2 [scenarios] to select from, got {len(problem.scenarios)}; "
                "list named scenarios, a scenarios_csv or a full_factorial"
            )
        opts: RankingOptions = self.options
        self.names = [str(n) for n, _ in problem.scenarios]
        if len(set(self.names)) != len(self.names):
            raise StudyError(f"ranking: scenario names must be unique, got {self.names}")
        self.values = [dict(v) for _, v in problem.scenarios]
        self.index = {n: i for i, n in enumerate(self.names)}
        k = len(self.names)
        self.machine: Machine = MACHINES[str(opts.procedure)](k, _config(opts, problem, k))
        self.ledger = Ledger(k, opts.batch, opts.common_random_numbers, opts.retries)
        self.queue: deque[Job] = deque()
        self.queued = np.zeros(k, dtype=np.int64)
        self.complete = np.zeros(k, dtype=np.int64)
        self.series: list[list[float]] = [[] for _ in range(k)]
        self.phase = "select"
        self.ignored = 0
        self._refill()

    # -- protocol --------------------------------------------------------------------------
    def ask(self, n: int) -> list[Candidate]:
        self._advance()
        out: list[Candidate] = []
        while self.queue and len(out) < n:
            job = self.queue.popleft()
            i = job.key[0]
            out.append(Candidate(dict(self.values[i]), job.replication, self.names[i]))
        return out

    def tell(self, evaluations: Sequence[Evaluation]) -> None:
        super().tell(evaluations)
        for ev in evaluations:
            i = self.index.get(ev.candidate.tag)
            job, retry = (None, None) if i is None else self.ledger.settle(i, ev)
            if job is None or i is None:
                self.ignored += 1
                continue
            if retry is not None:
                self.queue.appendleft(retry)
            elif job.key in self.ledger.given_up and self.phase == "select" and job.key[1] >= 0:
                self.machine.drop(i, f"replication failed {self.options.retries + 1} time(s): dropped")
                self._purge()
        self._advance()

    def recommend(self) -> Candidate | None:
        i = self.machine.selected
        if i is None:
            means = report.scenario_means(self)
            live = [j for j in np.flatnonzero(self.machine.alive) if np.isfinite(means[j])]
            if not live:
                return None
            i = int(min(live, key=lambda j: means[j]))
        return Candidate(dict(self.values[i]), 0, self.names[i])

    @property
    def finished(self) -> bool:
        return self.phase == "done"

    def diagnostics(self) -> dict[str, Any]:
        return report.diagnostics(self)

    @classmethod
    def fit(cls, problem: Problem) -> Fit:
        base = super().fit(problem)
        if base.score == 0.0:
            return base
        if len(problem.scenarios) < 2:
            return Fit(0.0, "the study lists fewer than 2 scenarios to select from")
        if problem.noisy:
            return Fit(0.9, f"{len(problem.scenarios)} scenarios of a stochastic twin: select the best with a guarantee")
        return Fit(0.2, "scenarios of a deterministic twin: one run each would rank them")

    # -- stages ----------------------------------------------------------------------------
    def _refill(self) -> None:
        """Queue the replications the machine's current stage needs (slot-major, CRN-friendly)."""
        m = self.machine
        need = np.where(m.alive, m.need, self.queued)
        todo = [int(i) for i in np.flatnonzero(need > self.queued)]
        if todo:
            lo, hi = int(self.queued[todo].min()), int(need[todo].max())
            for s in range(lo, hi):
                for i in todo:
                    if self.queued[i] <= s < need[i]:
                        self.queue.extend(self.ledger.job((i, s, j)) for j in range(self.ledger.batch))
        self.queued = np.maximum(self.queued, need)

    def _purge(self) -> None:
        """Forget queued selection jobs of scenarios no longer in contention."""
        keep: deque[Job] = deque()
        for j in self.queue:
            if j.key[1] < 0 or (self.machine.alive[j.key[0]] and not self.machine.done):
                keep.append(j)
            else:
                self.ledger.inflight.pop((j.key[0], j.replication), None)
        self.queue = keep

    def _advance(self) -> None:
        """Step the machine while its stage is complete; then validate the winner."""
        m = self.machine
        while self.phase == "select":
            if m.done:
                self._purge()
                self._start_validation()
                break
            short = False
            for i in np.flatnonzero(m.alive & (self.complete < m.need)):
                c = int(self.complete[i])
                while (v := self.ledger.observation(int(i), c)) is not None:
                    self.series[i].append(v)
                    c += 1
                self.complete[i] = c
                short = short or c < m.need[i]
            if short:
                break
            data = [np.asarray(self.series[i], dtype=float) for i in range(m.k)]
            m.step(data)
            self._purge()
            self._refill()
        if self.phase == "validate" and self._validation_settled():
            self.phase = "done"

    def _start_validation(self) -> None:
        sel = self.machine.selected
        n = int(self.options.validation)
        if sel is None or n == 0:
            self.phase = "done"
            return
        self.phase = "validate"
        self.queue.extend(self.ledger.job((sel, -1, j)) for j in range(n))

    def _validation_settled(self) -> bool:
        sel = self.machine.selected
        keys = [(sel, -1, j) for j in range(int(self.options.validation))]
        return all(k in self.ledger.parts or k in self.ledger.given_up for k in keys)

    def validation_values(self) -> list[float]:
        sel = self.machine.selected
        if sel is None:
            return []
        keys = [(sel, -1, j) for j in range(int(self.options.validation))]
        return [self.ledger.parts[k] for k in keys if k in self.ledger.parts]


def _config(opts: RankingOptions, problem: Problem, k: int) -> Config:
    """Machine configuration from the options (OCBA's budget defaults to the study's evaluation budget)."""
    budget = opts.budget
    if budget is None and problem.budget_evaluations:
        budget = max(1, problem.budget_evaluations // opts.batch - opts.validation)
    if opts.procedure == "ocba":
        if budget is None:
            raise StudyError("ranking: procedure 'ocba' needs budget = total observations (or a study budget)")
        if budget < 2 * k:
            raise StudyError(f"ranking: ocba budget {budget} is below 2 observations per scenario ({2 * k})")
    ocba_n0 = opts.ocba_n0 or max(opts.n0, (budget or 0) // (4 * k))
    ocba_n0 = min(ocba_n0, max(2, (budget or 0) // k))
    return Config(
        alpha=opts.alpha,
        delta=opts.delta,
        n0=opts.n0,
        increment=opts.increment,
        paired=opts.common_random_numbers,
        max_observations=opts.max_observations,
        budget=budget or 0,
        ocba_n0=ocba_n0,
        ocba_step=opts.ocba_step or k * opts.increment,
    )
