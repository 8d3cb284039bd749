"""Compass (pattern) search in the unit cube: an example fmi_optimizer method plugin.

From the incumbent, poll one step up and one step down along every dimension; move to the best poll that
improves, otherwise halve the step; when the step is below ``min_step`` the method asks for nothing, which
ends the study. It works in unit-cube coordinates (``space.to_unit`` / ``space.from_unit``), so it handles
continuous, log-scaled, discrete-level and integer parameters alike. See docs/writing-a-method.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fmi_optimizer import Candidate, Capabilities, Evaluation, Fit, Method, Problem, hookimpl


@dataclass(frozen=True)
class PatternOptions:
    step: float = 0.25  # first step, in unit-cube coordinates (1 = a parameter's whole range)
    min_step: float = 0.02  # the search ends when the step falls below this


class PatternSearch(Method):
    name = "pattern"
    summary = "compass search: poll +-step along each parameter, move on improvement, else halve the step"
    capabilities = Capabilities(kinds=frozenset({"continuous", "integer"}), noisy=False, batch=True)
    Options = PatternOptions

    def __init__(self, problem: Problem, options: dict | None = None, seed: int = 0):
        super().__init__(problem, options, seed)  # parses options, seeds self.rng, keeps self.history
        self.step: float = self.options.step
        self.centre: np.ndarray | None = None  # the incumbent, in unit coordinates
        self.centre_score = (math.inf, math.inf)  # (constraint violation, objective) of the incumbent
        self.round = 0
        self.queue: list[Candidate] = []  # this round's polls not handed out yet
        self.improved = False

    # -- ask: up to n candidates; [] ends the study -----------------------------------------------
    def ask(self, n: int) -> list[Candidate]:
        if self.centre is None:  # first call: one random start (the same for the same seed)
            self.centre = self.rng.random(len(self.problem.space))
            return [Candidate(self.problem.space.from_unit(self.centre), tag="start")]
        if not self.queue:
            if self.step < self.options.min_step:
                return []  # the host ends the study ("the method has nothing more to ask")
            self.queue = self._polls()
        out, self.queue = self.queue[:n], self.queue[n:]  # never more than n
        return out

    def _polls(self) -> list[Candidate]:
        assert self.centre is not None
        space = self.problem.space
        here = space.key(space.from_unit(self.centre))  # a hashable identity of a candidate
        self.round += 1
        polls, seen = [], {here}
        for i, dim in enumerate(space):  # the dimensions, in order: dim.name, dim.kind, ...
            for sign in (+1, -1):
                u = self.centre.copy()
                u[i] = min(1.0, max(0.0, u[i] + sign * self.step))
                values = space.from_unit(u)  # rounds integers, snaps levels: always a valid candidate
                if space.key(values) in seen:
                    continue  # an integer step too small to move, or the bound: not worth a candidate
                seen.add(space.key(values))
                direction = "+" if sign > 0 else "-"
                polls.append(Candidate(values, tag=f"round {self.round} {dim.name}{direction}"))
        if not polls:  # the step rounds to nothing in every direction: shrink and end
            self.step = 0.0
        return polls

    # -- tell: the whole batch, every status ------------------------------------------------------
    def tell(self, evaluations: Sequence[Evaluation]) -> None:
        super().tell(evaluations)  # recommend() reads self.history
        for e in evaluations:
            score = (e.violation(), e.objective) if e.ok and e.objective is not None else (math.inf, math.inf)
            if score < self.centre_score:  # failed runs (status != "ok") score inf: never an incumbent
                if e.candidate.tag != "start":
                    self.improved = True
                self.centre, self.centre_score = self.problem.space.to_unit(e.values), score
        if not self.queue and self.round:  # the round is complete (its last polls were just told)
            if not self.improved:
                self.step /= 2.0
            self.improved = False

    @property
    def finished(self) -> bool:
        return self.step < self.options.min_step and not self.queue

    def diagnostics(self) -> dict:
        return {"rounds": self.round, "final_step": self.step}

    @classmethod
    def fit(cls, problem: Problem) -> Fit:
        base = super().fit(problem)
        if base.score == 0.0:
            return base
        return Fit(0.04, "a local compass search: an example, below every built-in in auto routing")


@hookimpl
def fmio_register_methods(registry):
    registry.add(PatternSearch)
