"""``de``: differential evolution (scipy's algorithm, integrality included) driven through ask/tell.

Why a faithful re-implementation rather than a thread bridge into ``scipy.optimize.differential_evolution``:
scipy has no ask/tell API, and a bridge (solver in a worker thread, ``vectorized=True,
updating="deferred"``, objective calls through queues) is unsound here because

* the Method contract has no close(): a study that stops on its budget mid-generation leaves the solver
  thread blocked forever inside the objective call (one leaked thread per method object);
* scipy evaluates constraint functions and the objective in separate calls, and the objective only for
  feasible members, while one simulation yields both;
* scipy needs a number for every evaluation, so a failed simulation would have to become a made-up value.

So this module reproduces scipy's DE step for step, in the same unit-cube parametrisation: the 12 scipy
strategies (``best1bin`` ... ``rand2exp``), dithered mutation drawn once per generation, binomial and
exponential crossover with scipy's fill point, out-of-bounds coordinates redrawn uniformly, deferred
updating (a whole generation of trials is built from one population, so a generation is a batch and the
result does not depend on how the host splits it), and scipy's ``integrality`` rule: a discrete dimension
with ``k`` values (integer, categorical, boolean, ``levels``) owns ``k`` equal bins of [0, 1], i.e. DE works in
index space widened by 0.5 and rounded. scipy's initial population samplers (``qmc.LatinHypercube``,
``qmc.Sobol``) are used as they are.

Selection uses Deb's feasibility rules instead of scipy's per-constraint Lampinen rule (the host gives one
total violation per run, and one simulation gives the objective and the constraints together): a feasible
run beats an infeasible one, feasible runs compare by objective, infeasible ones by total violation, ties
go to the trial (as in scipy's ``<=``). A failed evaluation has no number: a failed trial never replaces
its parent, and a failed member of the initial population is replaced by any trial that ran.

Configurations already evaluated (discrete spaces revisit them) are answered from the method's cache, so
they cost no evaluation; a generation that only revisits is resolved internally.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from fmi_optimizer.method import Fit, Problem
from fmi_optimizer.records import Candidate, Evaluation
from fmi_optimizer.space import Value

from ._common import (
    BaselineMethod,
    Outcome,
    UnitCodec,
    count_statuses,
    deb_better_or_equal,
    is_truly_continuous,
)

Strategy = Literal[
    "best1bin", "best1exp", "rand1bin", "rand1exp", "randtobest1bin", "randtobest1exp",
    "currenttobest1bin", "currenttobest1exp", "best2bin", "best2exp", "rand2bin", "rand2exp",
]
# How many distinct other members each strategy's mutation draws.
SAMPLES_NEEDED = {"best1": 2, "rand1": 3, "randtobest1": 3, "currenttobest1": 2, "best2": 4, "rand2": 5}
# Generations in a row that propose only evaluated configurations before the method calls itself done.
STALL_GENERATIONS = 100


@dataclass(frozen=True)
class DEOptions:
    """scipy's names and defaults: population = max(5, popsize * dimensions) (rounded up to a power of two
    for ``init = "sobol"``); ``mutation`` is F or a (min, max) dither range; ``recombination`` is CR;
    ``tol`` > 0 stops when the (all feasible) population's objective spread is <= tol * |mean| (scipy's
    relative criterion; 0 = run until the budget ends)."""

    popsize: int = 15
    mutation: float | tuple[float, float] = (0.5, 1.0)
    recombination: float = 0.7
    strategy: Strategy = "best1bin"
    init: Literal["latinhypercube", "sobol", "random"] = "latinhypercube"
    tol: float = 0.0

    def __post_init__(self) -> None:
        if self.popsize < 1:
            raise ValueError(f"popsize must be >= 1, got {self.popsize}")
        lo, hi = self.mutation if isinstance(self.mutation, tuple) else (self.mutation, self.mutation)
        if isinstance(self.mutation, tuple) and len(self.mutation) != 2:
            raise ValueError(f"mutation must be a number or a (min, max) pair, got {self.mutation}")
        if not (0.0 <= lo <= hi < 2.0):
            raise ValueError(f"mutation must lie in [0, 2) with min <= max, got {self.mutation}")
        if not 0.0 <= self.recombination <= 1.0:
            raise ValueError(f"recombination must lie in [0, 1], got {self.recombination}")
        if self.tol < 0.0:
            raise ValueError(f"tol must be >= 0, got {self.tol}")


@dataclass
class _Generation:
    """The trial vectors of one generation and what became of them."""

    vectors: np.ndarray
    codes: list[tuple[Any, ...]]  # UnitCodec codes: value indices (discrete), values (continuous)
    outcomes: list[Outcome | None]
    queued: list[int] = field(default_factory=list)  # first index of each distinct key not asked yet
    waiting: dict[tuple[Any, ...], list[int]] = field(default_factory=dict)  # key -> trial indices

    def resolved(self) -> bool:
        return all(o is not None for o in self.outcomes)


class DifferentialEvolution(BaselineMethod):
    """scipy's differential evolution with integrality, as an ask/tell method (see the module docstring)."""

    name = "de"
    summary = "differential evolution (scipy's strategies, integrality for mixed spaces, Deb's constraint rules)"
    Options: ClassVar[type] = DEOptions

    def __init__(self, problem: Problem, options: Mapping[str, Any] | None = None, seed: int = 0):
        super().__init__(problem, options, seed)
        self.codec = UnitCodec(self.space)
        self.dim = len(self.space)
        base = self.options.strategy[:-3]
        self._needed = SAMPLES_NEEDED[base]
        self.size = max(5, self._needed + 1, self.options.popsize * self.dim)
        if self.options.init == "sobol":
            self.size = int(2 ** math.ceil(math.log2(self.size)))
        self.population = np.empty((0, self.dim))
        self.pop_codes: list[tuple[Any, ...]] = []
        self.pop_outcomes: list[Outcome] = []
        self.cache: dict[tuple[Any, ...], Outcome] = {}
        self.generation = 0  # completed selections (generation 0 is the initial population)
        self.scale = 0.0
        self.stats = {"trials": 0, "asked": 0, "cache_hits": 0, "replacements": 0, "failed_trials_rejected": 0}
        self._stall = 0
        self._finished_reason = ""
        self._current = self._new_generation(self._initial_vectors())

    # -- generations -------------------------------------------------------------------------
    def _initial_vectors(self) -> np.ndarray:
        from scipy.stats import qmc

        if self.options.init == "latinhypercube":
            return qmc.LatinHypercube(d=self.dim, rng=self.rng).random(self.size)
        if self.options.init == "sobol":
            return qmc.Sobol(d=self.dim, scramble=True, rng=self.rng).random_base2(int(math.log2(self.size)))
        return self.rng.random((self.size, self.dim))

    def _new_generation(self, vectors: np.ndarray) -> _Generation:
        codes = self.codec.codes(vectors)
        gen = _Generation(vectors, codes, [None] * len(vectors))
        for i, code in enumerate(codes):
            self.stats["trials"] += 1
            if code in self.cache:
                gen.outcomes[i] = self.cache[code]
                self.stats["cache_hits"] += 1
            elif code in gen.waiting:
                gen.waiting[code].append(i)
                self.stats["cache_hits"] += 1
            else:
                gen.waiting[code] = [i]
                gen.queued.append(i)
        gen.queued.reverse()  # pop() from the end keeps population order
        return gen

    def _select(self) -> None:
        gen = self._current
        outcomes = [o for o in gen.outcomes if o is not None]
        if self.generation == 0 and not self.pop_outcomes:
            self.population, self.pop_codes, self.pop_outcomes = gen.vectors.copy(), list(gen.codes), outcomes
            return
        for i, trial in enumerate(outcomes):
            if deb_better_or_equal(trial, self.pop_outcomes[i]):
                self.population[i] = gen.vectors[i]
                self.pop_codes[i] = gen.codes[i]
                self.pop_outcomes[i] = trial
                self.stats["replacements"] += 1
            elif not trial.ok:
                self.stats["failed_trials_rejected"] += 1

    def _advance(self) -> None:
        """While the current generation is resolved: select, then build the next one (unless done)."""
        while self._current.resolved() and not self._finished_reason:
            had_new = bool(self._current.waiting)
            self._select()
            self.generation += 1
            self._stall = 0 if had_new else self._stall + 1
            self._finished_reason = self._done_reason()
            if not self._finished_reason:
                self._current = self._new_generation(self._trials())

    def _done_reason(self) -> str:
        if self.space.all_discrete and len(self.cache) >= self.space.cardinality():
            return "every configuration of the discrete space has been evaluated"
        if self._stall >= STALL_GENERATIONS:
            return f"{STALL_GENERATIONS} generations in a row proposed only evaluated configurations"
        tol = self.options.tol
        if tol > 0.0 and all(o.feasible for o in self.pop_outcomes):
            energies = np.array([o.objective for o in self.pop_outcomes])
            if float(np.std(energies)) <= tol * abs(float(np.mean(energies))):
                return f"converged: objective spread <= tol ({tol}) x |mean|"
        return ""

    # -- scipy's mutation and crossover --------------------------------------------------------
    def _trials(self) -> np.ndarray:
        """One generation of trial vectors, vectorised like scipy's ``_mutate_many``."""
        rng, pop, n = self.rng, self.population, self.size
        mut = self.options.mutation
        f = self.scale = float(rng.uniform(mut[0], mut[1])) if isinstance(mut, tuple) else float(mut)
        best = pop[min(range(n), key=lambda i: self.pop_outcomes[i].rank())]
        order = rng.random((n, n))
        order[np.arange(n), np.arange(n)] = np.inf  # a member never mutates with itself
        r = np.argsort(order, axis=1)[:, : self._needed].T  # distinct others per member, like scipy
        base = self.options.strategy[:-3]
        if base == "best1":
            bprime = best + f * (pop[r[0]] - pop[r[1]])
        elif base == "rand1":
            bprime = pop[r[0]] + f * (pop[r[1]] - pop[r[2]])
        elif base == "randtobest1":
            bprime = pop[r[0]] + f * (best - pop[r[0]]) + f * (pop[r[1]] - pop[r[2]])
        elif base == "currenttobest1":
            bprime = pop + f * (best - pop + pop[r[0]] - pop[r[1]])
        elif base == "best2":
            bprime = best + f * (pop[r[0]] + pop[r[1]] - pop[r[2]] - pop[r[3]])
        else:
            bprime = pop[r[0]] + f * (pop[r[1]] + pop[r[2]] - pop[r[3]] - pop[r[4]])
        trials = self._crossover(pop.copy(), bprime)
        out = (trials < 0.0) | (trials > 1.0)
        if out.any():
            trials[out] = rng.uniform(size=int(out.sum()))
        return trials

    def _crossover(self, trials: np.ndarray, bprime: np.ndarray) -> np.ndarray:
        """scipy's binomial (fill point always from the mutant) or exponential crossover."""
        n, d = trials.shape
        fill = np.asarray(self.rng.integers(d, size=n))
        cross = self.rng.uniform(size=(n, d)) < self.options.recombination
        if self.options.strategy.endswith("bin"):
            cross[np.arange(n), fill] = True
            return np.where(cross, bprime, trials)
        cross[:, 0] = True
        for row in range(n):
            j, k = 0, int(fill[row])
            while j < d and cross[row, j]:
                trials[row, k] = bprime[row, k]
                k = (k + 1) % d
                j += 1
        return trials

    # -- protocol ------------------------------------------------------------------------------
    def ask(self, n: int) -> list[Candidate]:
        self._advance()
        out: list[Candidate] = []
        gen = self._current
        while len(out) < n and gen.queued and not self._finished_reason:
            i = gen.queued.pop()
            if gen.outcomes[i] is not None:
                continue  # told already (the host evaluated the same configuration on its own)
            out.append(Candidate(self.codec.values_of(gen.codes[i])))
            self.stats["asked"] += 1
        return out

    def tell(self, evaluations: Sequence[Evaluation]) -> None:
        super().tell(evaluations)
        gen = self._current
        for ev in evaluations:
            key = self.codec.code_of(ev.candidate.values)
            waiting = gen.waiting.get(key)
            if waiting is None or gen.outcomes[waiting[0]] is not None:
                continue  # not asked by this generation, or a further replication: history only
            outcome = Outcome.of(ev)
            self.cache[key] = outcome
            for i in waiting:
                gen.outcomes[i] = outcome
        self._advance()

    @property
    def finished(self) -> bool:
        return bool(self._finished_reason)

    @property
    def pop_values(self) -> list[dict[str, Value]]:
        """The current population as parameter values."""
        return [self.codec.values_of(c) for c in self.pop_codes]

    def diagnostics(self) -> dict[str, Any]:
        best = min((o.rank() for o in self.pop_outcomes), default=None)
        return {
            "strategy": self.options.strategy,
            "population": self.size,
            "generations": self.generation,
            "mutation_scale_last": self.scale,
            **self.stats,
            "finished_reason": self._finished_reason,
            "best_rank": list(best) if best is not None else None,
            "statuses": count_statuses(self.history),
        }

    @classmethod
    def fit(cls, problem: Problem) -> Fit:
        base = super().fit(problem)
        if base.score == 0.0:
            return base
        if any(is_truly_continuous(d) for d in problem.space):
            return Fit(0.1, "generic baseline: differential evolution suits continuous or mixed spaces "
                            "with a budget of many evaluations")
        return Fit(0.07, "generic baseline: differential evolution runs on discrete spaces via integrality")
