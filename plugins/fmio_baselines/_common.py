"""Pieces the three baselines share: their base class, unit-cube decoding with integrality, Deb ranking,
unseen sampling."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fmi_optimizer.method import Capabilities, Method, Problem
from fmi_optimizer.records import Evaluation
from fmi_optimizer.space import Continuous, DesignSpace, Value, Values

# Enumerate the unseen rest of a discrete space only below this many configurations.
ENUMERATION_LIMIT = 2_000_000


class BaselineMethod(Method):
    """What the baselines share: one objective, constraints by Deb's rules, batches of any size."""

    capabilities = Capabilities(batch=True, constraints=True, noisy=False, multi_objective=False)

    def __init__(self, problem: Problem, options: Mapping[str, Any] | None = None, seed: int = 0):
        super().__init__(problem, options, seed)
        self.space = problem.space


def is_truly_continuous(d: Any) -> bool:
    """A continuous dimension without ``levels`` (every other kind has a finite index range)."""
    return isinstance(d, Continuous) and not d.discrete


def value_tables(space: DesignSpace) -> list[list[Value]]:
    """Every value of each discrete dimension by index (empty for truly continuous ones), computed once:
    ``Continuous.value_at`` rebuilds its whole grid on every call."""
    return [[] if is_truly_continuous(d) else [d.value_at(i) for i in range(int(d.size() or 0))] for d in space]


class UnitCodec:
    """Unit cube <-> values, with scipy's integrality rule for discrete dimensions.

    A discrete dimension with ``k`` values owns ``k`` equal bins of [0, 1] (index ``floor(u*k)``), which is
    what scipy's ``differential_evolution`` does with ``integrality`` (bounds widened by 0.5, then rounded).
    Truly continuous dimensions use :meth:`DesignSpace.from_unit` (log scale included).
    """

    def __init__(self, space: DesignSpace):
        self.space = space
        self.sizes: list[int | None] = [None if is_truly_continuous(d) else d.size() for d in space]
        self.tables = value_tables(space)

    def __len__(self) -> int:
        return len(self.sizes)

    def decode(self, u: np.ndarray) -> dict[str, Value]:
        return self.values_of(self.codes(np.atleast_2d(u))[0])

    def codes(self, rows: np.ndarray) -> list[tuple[Any, ...]]:
        """A hashable code per row of unit vectors: the value index of each discrete dimension, the value
        of each continuous one. Vectorised, because DE re-derives whole generations of revisits."""
        rows = np.clip(rows, 0.0, 1.0)
        columns: list[list[Any]] = []
        for j, (d, k) in enumerate(zip(self.space, self.sizes, strict=True)):
            if k is None:
                columns.append([d.from_unit(float(x)) for x in rows[:, j]])
            else:
                columns.append(np.minimum(k - 1, np.floor(rows[:, j] * k)).astype(int).tolist())
        return list(zip(*columns, strict=True))

    def code_of(self, values: Values) -> tuple[Any, ...]:
        """The code of a candidate's values (what :meth:`codes` gives for any vector decoding to them)."""
        return tuple(float(values[d.name]) if k is None else d.index_of(values[d.name])
                     for d, k in zip(self.space, self.sizes, strict=True))

    def values_of(self, code: tuple[Any, ...]) -> dict[str, Value]:
        return {d.name: c if k is None else table[c]
                for d, k, table, c in zip(self.space, self.sizes, self.tables, code, strict=True)}

    def encode(self, values: Values) -> np.ndarray:
        """The centre of each value's bin (continuous: its unit coordinate)."""
        u = []
        for d, k in zip(self.space, self.sizes, strict=True):
            v = values[d.name]
            u.append(d.to_unit(v) if k is None else (d.index_of(v) + 0.5) / k)
        return np.array(u, dtype=float)


@dataclass(frozen=True)
class Outcome:
    """What an evaluation means for selection: ``ok`` with objective and total violation, or failed."""

    ok: bool
    objective: float = math.nan
    violation: float = 0.0

    @classmethod
    def of(cls, ev: Evaluation) -> Outcome:
        """Failed, timed-out, crashed, invalid, or an ok run without a finite objective: a failure."""
        if not ev.ok or ev.objective is None or not math.isfinite(ev.objective):
            return cls(False)
        return cls(True, float(ev.objective), ev.violation())

    @property
    def feasible(self) -> bool:
        return self.ok and self.violation <= 0.0

    def rank(self) -> tuple[int, float]:
        """Deb's feasibility rules as a sort key: feasible by objective, then infeasible by violation,
        then failures (which carry no number at all, so they rank after everything and tie each other)."""
        if not self.ok:
            return (2, 0.0)
        if self.violation > 0.0:
            return (1, self.violation)
        return (0, self.objective)


def deb_better_or_equal(a: Outcome, b: Outcome) -> bool:
    """Does ``a`` win against ``b`` (ties go to ``a``)?  A failure never wins, not even against a failure."""
    if not a.ok:
        return False
    return a.rank() <= b.rank()


def key_of(space: DesignSpace, values: dict[str, Value]) -> tuple[Any, ...]:
    return space.key(values)


class UnseenSampler:
    """Uniform draws of discrete configurations not in ``seen``; enumerates the rest when draws keep colliding."""

    def __init__(self, space: DesignSpace, rng: np.random.Generator):
        self.space = space
        self.rng = rng
        self.sizes = [int(s or 0) for s in space.sizes()]  # all-discrete spaces only: no None here
        self.tables = value_tables(space)
        self.cardinality = space.cardinality()
        self._rest: list[tuple[int, ...]] | None = None

    def _values(self, idx: Sequence[int]) -> dict[str, Value]:
        return {d.name: table[i] for d, table, i in zip(self.space, self.tables, idx, strict=True)}

    def exhausted(self, seen: set[tuple[Any, ...]]) -> bool:
        return len(seen) >= self.cardinality

    def draw(self, seen: set[tuple[Any, ...]]) -> dict[str, Value] | None:
        """A configuration outside ``seen``, or None when every configuration is in it."""
        if self.exhausted(seen):
            return None
        if self._rest is None:
            for _ in range(64):
                values = self._values([int(self.rng.integers(k)) for k in self.sizes])
                if key_of(self.space, values) not in seen:
                    return values
            if self.cardinality > ENUMERATION_LIMIT:
                return self._draw_by_rejection(seen)
            self._rest = self._enumerate_rest(seen)
        while self._rest:
            values = self._values(self._rest.pop())
            if key_of(self.space, values) not in seen:
                return values
        return None

    def _enumerate_rest(self, seen: set[tuple[Any, ...]]) -> list[tuple[int, ...]]:
        rest = [idx for idx in itertools.product(*(range(k) for k in self.sizes))
                if key_of(self.space, self._values(idx)) not in seen]
        order = self.rng.permutation(len(rest))
        return [rest[i] for i in order]

    def _draw_by_rejection(self, seen: set[tuple[Any, ...]]) -> dict[str, Value] | None:
        # Over ENUMERATION_LIMIT configurations at least half are unseen for any realistic budget.
        for _ in range(100_000):
            values = self._values([int(self.rng.integers(k)) for k in self.sizes])
            if key_of(self.space, values) not in seen:
                return values
        raise RuntimeError(f"no unseen configuration in 100000 draws ({len(seen)} of {self.cardinality:.0f} seen)")


def count_statuses(evaluations: Iterable[Evaluation]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in evaluations:
        out[e.status] = out.get(e.status, 0) + 1
    return out
