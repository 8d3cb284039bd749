"""``random``: space-filling random search (scrambled Sobol or Latin hypercube first, then uniform).

The baseline every other method must beat. Points are drawn in the unit cube and mapped with
:meth:`DesignSpace.from_unit`, so every dimension kind works. In a discrete space no configuration is
asked twice; once every configuration has been asked the method reports ``finished``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from fmi_optimizer.method import Fit, Problem
from fmi_optimizer.records import Candidate
from fmi_optimizer.space import Value

from ._common import BaselineMethod, UnseenSampler, count_statuses, key_of

AUTO_INITIAL_CAP = 1024


@dataclass(frozen=True)
class RandomOptions:
    """``initial``: how many space-filling points come first (default: the largest power of two <= the
    evaluation budget, at most 1024, or 256 without a budget); ``sampler``: "sobol" or "lhs"."""

    initial: int | None = None
    sampler: Literal["sobol", "lhs"] = "sobol"

    def __post_init__(self) -> None:
        if self.initial is not None and self.initial < 0:
            raise ValueError(f"initial must be >= 0, got {self.initial}")


def _auto_initial(problem: Problem) -> int:
    b = problem.budget_evaluations
    if b is None:
        return 256
    return 0 if b < 1 else min(AUTO_INITIAL_CAP, 2 ** int(math.floor(math.log2(b))))


class RandomSearch(BaselineMethod):
    """Space-filling random search; seeded, duplicate-free in discrete spaces."""

    name = "random"
    summary = "space-filling random search (scrambled Sobol/LHS, then uniform): the baseline to beat"
    Options: ClassVar[type] = RandomOptions

    def __init__(self, problem: Problem, options: Mapping[str, Any] | None = None, seed: int = 0):
        super().__init__(problem, options, seed)
        self.n_initial = self.options.initial if self.options.initial is not None else _auto_initial(problem)
        self._space_filling = self._make_space_filling()
        self._next_sf = 0
        self.discrete = self.space.all_discrete
        self._seen: set[tuple[Any, ...]] = set()
        self._unseen = UnseenSampler(self.space, self.rng) if self.discrete else None
        self.asked_space_filling = 0
        self.asked_uniform = 0
        self.duplicates_avoided = 0

    def _make_space_filling(self) -> np.ndarray:
        from scipy.stats import qmc

        d = len(self.space)
        if self.n_initial == 0:
            return np.empty((0, d))
        if self.options.sampler == "lhs":
            return qmc.LatinHypercube(d=d, rng=self.rng).random(self.n_initial)
        m = int(math.ceil(math.log2(self.n_initial)))  # Sobol's balance needs 2**m points; use the first ones
        return qmc.Sobol(d=d, scramble=True, rng=self.rng).random_base2(m)[: self.n_initial]

    # -- protocol --------------------------------------------------------------------------
    def ask(self, n: int) -> list[Candidate]:
        out: list[Candidate] = []
        while len(out) < n:
            values = self._next_values()
            if values is None:
                break
            out.append(Candidate(values))
        return out

    def _next_values(self) -> dict[str, Value] | None:
        while self._next_sf < len(self._space_filling):
            values = self.space.from_unit(self._space_filling[self._next_sf])
            self._next_sf += 1
            if self._accept(values):
                self.asked_space_filling += 1
                return values
        if self._unseen is not None:
            values_or_none = self._unseen.draw(self._seen)
            if values_or_none is None:
                return None
            values = values_or_none
        else:
            values = self.space.from_unit(self.rng.random(len(self.space)))
        if not self._accept(values):  # only reachable for a continuous draw repeating exactly
            return self._next_values()
        self.asked_uniform += 1
        return values

    def _accept(self, values: dict[str, Value]) -> bool:
        key = key_of(self.space, values)
        if key in self._seen:
            self.duplicates_avoided += 1
            return False
        self._seen.add(key)
        return True

    @property
    def finished(self) -> bool:
        return self._unseen is not None and self._unseen.exhausted(self._seen)

    def diagnostics(self) -> dict[str, Any]:
        return {
            "sampler": self.options.sampler,
            "space_filling_points": self.asked_space_filling,
            "uniform_points": self.asked_uniform,
            "duplicates_avoided": self.duplicates_avoided,
            "space_exhausted": self.finished,
            "statuses": count_statuses(self.history),
        }

    @classmethod
    def fit(cls, problem: Problem) -> Fit:
        base = super().fit(problem)
        if base.score == 0.0:
            return base
        return Fit(0.05, "generic baseline: space-filling random search works on any space but learns nothing")
