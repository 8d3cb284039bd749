"""``ga``: a generational genetic algorithm for mixed discrete spaces, duplicate-free.

A genome holds one gene per dimension: the value's index for discrete dimensions (integer, categorical,
boolean, ``levels``) and the unit coordinate for a truly continuous one. Each generation: parents by
tournament, uniform crossover, per-gene mutation (a different index drawn uniformly; a Gaussian step in the
unit cube for continuous genes), and the best ``elitism`` members carried over unevaluated.

Every configuration ever asked is remembered: a child equal to one of them is discarded and bred again
(``duplicates_avoided``), so a duplicate never costs an evaluation; after 20 failed tries a random unseen
configuration takes its place (``immigrants``). When a discrete space has been fully asked, ``finished``.

Ranking is Deb's feasibility rules: feasible runs by objective, then infeasible ones by total violation,
then failed runs, which carry no number and lose every tournament against a run that produced one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from fmi_optimizer.method import Fit, Problem
from fmi_optimizer.records import Candidate, Evaluation
from fmi_optimizer.space import Value

from ._common import (
    BaselineMethod,
    Outcome,
    UnseenSampler,
    count_statuses,
    is_truly_continuous,
    key_of,
    value_tables,
)

TRIES_PER_CHILD = 20


@dataclass(frozen=True)
class GAOptions:
    """``population``: individuals per generation (default min(100, max(20, 2 x dimensions)));
    ``mutation_rate``: per-gene probability (default 1 / dimensions); ``crossover_rate``: probability that
    a child mixes two parents (else it copies one); ``tournament_size``; ``elitism``: best members carried
    over; ``sigma``: Gaussian mutation step of continuous genes in the unit cube."""

    population: int | None = None
    mutation_rate: float | None = None
    crossover_rate: float = 0.9
    tournament_size: int = 3
    elitism: int = 2
    sigma: float = 0.1

    def __post_init__(self) -> None:
        if self.population is not None and self.population < 4:
            raise ValueError(f"population must be >= 4, got {self.population}")
        if self.mutation_rate is not None and not 0.0 <= self.mutation_rate <= 1.0:
            raise ValueError(f"mutation_rate must lie in [0, 1], got {self.mutation_rate}")
        if not 0.0 <= self.crossover_rate <= 1.0:
            raise ValueError(f"crossover_rate must lie in [0, 1], got {self.crossover_rate}")
        if self.tournament_size < 1:
            raise ValueError(f"tournament_size must be >= 1, got {self.tournament_size}")
        if self.elitism < 0 or (self.population is not None and self.elitism >= self.population):
            raise ValueError(f"elitism must lie in [0, population), got {self.elitism}")
        if self.sigma <= 0.0:
            raise ValueError(f"sigma must be > 0, got {self.sigma}")


@dataclass
class _Member:
    genome: np.ndarray
    values: dict[str, Value]
    key: tuple[Any, ...]
    outcome: Outcome | None = None


@dataclass
class _Brood:
    """The children of one generation: asked in order, resolved by tell."""

    children: list[_Member]
    queued: list[int] = field(default_factory=list)
    by_key: dict[tuple[Any, ...], int] = field(default_factory=dict)

    def resolved(self) -> bool:
        return all(c.outcome is not None for c in self.children)


class GeneticAlgorithm(BaselineMethod):
    """Tournament selection, uniform crossover, per-gene mutation, elitism; never asks a configuration twice."""

    name = "ga"
    summary = "genetic algorithm for mixed discrete spaces (duplicate-free, elitist, Deb's constraint rules)"
    Options: ClassVar[type] = GAOptions

    def __init__(self, problem: Problem, options: Mapping[str, Any] | None = None, seed: int = 0):
        super().__init__(problem, options, seed)
        self.dims = list(self.space)
        self.continuous = [is_truly_continuous(d) for d in self.dims]
        self.sizes = [0 if c else int(d.size() or 0) for d, c in zip(self.dims, self.continuous, strict=True)]
        self.tables = value_tables(self.space)
        o = self.options
        self.size = o.population if o.population is not None else min(100, max(20, 2 * len(self.dims)))
        self.elitism = min(o.elitism, self.size - 1)
        self.mutation_rate = o.mutation_rate if o.mutation_rate is not None else 1.0 / len(self.dims)
        self._unseen = UnseenSampler(self.space, self.rng) if self.space.all_discrete else None
        self.seen: set[tuple[Any, ...]] = set()
        self.population: list[_Member] = []
        self.generation = 0
        self.stats = {"asked": 0, "duplicates_avoided": 0, "immigrants": 0, "failed_evaluations": 0}
        self._exhausted = False
        self._brood = self._new_brood(self._initial())

    # -- genomes -------------------------------------------------------------------------------
    def _member(self, genome: np.ndarray) -> _Member:
        values = {
            d.name: d.from_unit(float(g)) if c else table[int(g)]
            for d, c, table, g in zip(self.dims, self.continuous, self.tables, genome, strict=True)
        }
        return _Member(genome, values, key_of(self.space, values))

    def _genome_of(self, values: dict[str, Value]) -> np.ndarray:
        return np.array([d.to_unit(values[d.name]) if c else d.index_of(values[d.name])
                         for d, c in zip(self.dims, self.continuous, strict=True)], dtype=float)

    def _random_member(self, taken: set[tuple[Any, ...]]) -> _Member | None:
        """A uniformly drawn configuration neither asked before nor in ``taken`` (None when none is left)."""
        if self._unseen is not None:
            values = self._unseen.draw(self.seen | taken if taken else self.seen)
            return None if values is None else self._member(self._genome_of(values))
        while True:
            genome = np.array([self.rng.random() if c else self.rng.integers(k)
                               for c, k in zip(self.continuous, self.sizes, strict=True)], dtype=float)
            member = self._member(genome)
            if member.key not in self.seen and member.key not in taken:
                return member

    def _initial(self) -> list[_Member | None]:
        out: list[_Member | None] = []
        taken: set[tuple[Any, ...]] = set()
        for _ in range(self.size):
            m = self._random_member(taken)
            if m is None:
                break
            taken.add(m.key)
            out.append(m)
        return out

    def _new_brood(self, members: list[_Member | None]) -> _Brood:
        brood = _Brood([])
        for m in members:
            if m is None or m.key in self.seen:
                continue
            self.seen.add(m.key)
            brood.by_key[m.key] = len(brood.children)
            brood.children.append(m)
        brood.queued = list(range(len(brood.children)))[::-1]
        self._exhausted = self._unseen is not None and self._unseen.exhausted(self.seen)
        return brood

    # -- variation -------------------------------------------------------------------------------
    def _tournament(self) -> _Member:
        k = min(self.options.tournament_size, len(self.population))
        picks = self.rng.choice(len(self.population), size=k, replace=False)
        return min((self.population[int(i)] for i in picks), key=self._rank)

    @staticmethod
    def _rank(m: _Member) -> tuple[int, float]:
        return m.outcome.rank() if m.outcome is not None else (3, 0.0)

    def _child(self) -> _Member:
        a, b = self._tournament(), self._tournament()
        genome = a.genome.copy()
        if self.rng.random() < self.options.crossover_rate:
            take_b = self.rng.random(len(genome)) < 0.5
            genome[take_b] = b.genome[take_b]
        for j in np.flatnonzero(self.rng.random(len(genome)) < self.mutation_rate):
            if self.continuous[j]:
                genome[j] = min(1.0, max(0.0, genome[j] + self.rng.normal(0.0, self.options.sigma)))
            else:
                shift = int(self.rng.integers(1, self.sizes[j]))  # any other index, uniformly
                genome[j] = (int(genome[j]) + shift) % self.sizes[j]
        return self._member(genome)

    def _offspring(self, count: int) -> list[_Member | None]:
        out: list[_Member | None] = []
        taken: set[tuple[Any, ...]] = set()
        for _ in range(count):
            child: _Member | None = None
            for _ in range(TRIES_PER_CHILD):
                cand = self._child()
                if cand.key not in self.seen and cand.key not in taken:
                    child = cand
                    break
                self.stats["duplicates_avoided"] += 1
            if child is None:
                child = self._random_member(taken)
                if child is None:
                    break
                self.stats["immigrants"] += 1
            taken.add(child.key)
            out.append(child)
        return out

    # -- generations ---------------------------------------------------------------------------
    def _advance(self) -> None:
        while self._brood.resolved() and self._brood.children and not self._exhausted:
            self._replace()
            self._brood = self._new_brood(self._offspring(self.size - self.elitism))
        if self._brood.resolved() and self._brood.children and self._exhausted:
            self._replace()
            self._brood = _Brood([])

    def _replace(self) -> None:
        children = self._brood.children
        if not self.population:
            self.population = list(children)
        else:
            old = sorted(self.population, key=self._rank)
            merged = old[: self.elitism] + children
            rest = old[self.elitism:]
            self.population = (merged + rest)[: self.size] if len(merged) < self.size else merged
        self.generation += 1

    # -- protocol ------------------------------------------------------------------------------
    def ask(self, n: int) -> list[Candidate]:
        self._advance()
        out: list[Candidate] = []
        while len(out) < n and self._brood.queued:
            out.append(Candidate(dict(self._brood.children[self._brood.queued.pop()].values)))
            self.stats["asked"] += 1
        return out

    def tell(self, evaluations: Sequence[Evaluation]) -> None:
        super().tell(evaluations)
        for ev in evaluations:
            i = self._brood.by_key.get(key_of(self.space, ev.candidate.values))
            if i is None or self._brood.children[i].outcome is not None:
                continue  # not from this generation, or a further replication: history only
            outcome = Outcome.of(ev)
            self._brood.children[i].outcome = outcome
            self.stats["failed_evaluations"] += 0 if outcome.ok else 1
        self._advance()

    @property
    def finished(self) -> bool:
        return self._exhausted and not self._brood.queued

    def diagnostics(self) -> dict[str, Any]:
        best = min(self.population, key=self._rank) if self.population else None
        return {
            "population": self.size,
            "generations": self.generation,
            "mutation_rate": self.mutation_rate,
            **self.stats,
            "configurations_seen": len(self.seen),
            "space_exhausted": self._exhausted,
            "best_rank": list(self._rank(best)) if best is not None else None,
            "statuses": count_statuses(self.history),
        }

    @classmethod
    def fit(cls, problem: Problem) -> Fit:
        base = super().fit(problem)
        if base.score == 0.0:
            return base
        if problem.space.all_discrete:
            card = problem.space.cardinality()
            return Fit(0.1, f"generic baseline: duplicate-free genetic algorithm for a discrete space "
                            f"({card:.3g} configurations)")
        return Fit(0.05, "generic baseline: the genetic algorithm handles continuous parameters but is built "
                         "for discrete ones")

