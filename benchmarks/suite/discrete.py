"""Discrete and mixed problems of the suite: the heat_sink twin, the binary quadratic problems of
``benchmarks/qio_vs_baselines.py`` (BOCS d = 10 and a sparse 40-bit QUBO), and random mixed designs.

A random mixed design (:class:`MixedDesign`) has categorical variables with 3-6 levels, integers with 5-16
values and booleans; the objective is a sum of one term per variable (a random value per level; a smooth
random quadratic in an integer) and of sparse pairwise interactions (each pair with probability 0.3, a random
rank-one table: the product of one random score per level of each variable, integers scored smoothly). Half of
the instances carry one output constraint (a resource sum over the integers and booleans below a cap). The
space has 20 thousand to 3 million designs so the optimum is exact by enumeration.

Halves: BQP and mixed instances differ per half (instance seeds even: development, odd: held out); heat_sink is
one twin, so its halves are disjoint method seeds (even / odd). The split is fixed here.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fmi_optimizer.space import Boolean, Categorical, DesignSpace, Dimension, Integer

MIXED_SEEDS = {"dev": tuple(range(0, 12, 2)), "heldout": tuple(range(1, 12, 2))}
#: more development instances (even seeds past the half's six), run only when named: a rule against traps has
#: to be chosen where traps are, and the six development designs have too few of them
MIXED_SEEDS_MORE_DEV = tuple(range(12, 32, 2))
BQP_SEEDS = {"dev": (0, 2, 4), "heldout": (1, 3, 5)}
RUN_SEED: dict[str, Callable[[int], int]] = {"dev": lambda r: 2 * r, "heldout": lambda r: 2 * r + 1}
MAX_DESIGNS = 3_000_000
MIN_DESIGNS = 20_000  # smaller spaces are solved by enumeration in any method's budget
#: unique-evaluation budgets: qio is held to the issue's 300; the cheap peers get more so their median to 1 %
#: is measured, not cut off (a run that does not reach 1 % counts as "not reached").
BUDGET = {"qio": 300, "ga": 5000, "random": 20000, "optuna_tpe_mv": 600}


@dataclass
class DiscreteProblem:
    """A design space, an evaluation (objective, constraint values; feasible when every value <= 0), the exact
    optimum (best feasible objective) and the target: within 1 % of it, as in benchmarks/qio_vs_baselines.py."""

    name: str
    space: DesignSpace
    evaluate: Callable[[dict[str, Any]], tuple[float | None, tuple[float, ...]]]
    fstar: float
    n_constraints: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> float:
        return self.fstar + 0.01 * abs(self.fstar)


@dataclass(frozen=True)
class MixedDesign:
    """A random mixed design, determined by ``seed`` (see the module docstring)."""

    seed: int
    dims: list[Dimension] = field(init=False)
    unary: list[np.ndarray] = field(init=False, repr=False)  # one value per level
    pairs: list[tuple[int, int, np.ndarray]] = field(init=False, repr=False)  # (i, j, table levels_i x levels_j)
    resource: np.ndarray | None = field(init=False, repr=False)  # one weight per level per variable, summed
    cap: float = field(init=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(4241 + self.seed)
        while True:
            n_cat, n_int, n_bool = int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(2, 7))
            levels = ([int(rng.integers(3, 7)) for _ in range(n_cat)] + [int(rng.integers(5, 17)) for _ in range(n_int)]
                      + [2] * n_bool)
            if MIN_DESIGNS <= math.prod(levels) <= MAX_DESIGNS:
                break
        dims: list[Dimension] = []
        unary, score = [], []
        for k, lv in enumerate(levels):
            if k < n_cat:
                dims.append(Categorical(f"c{k}", tuple(f"l{i}" for i in range(lv))))
                unary.append(rng.standard_normal(lv))
                score.append(rng.standard_normal(lv))
            elif k < n_cat + n_int:
                dims.append(Integer(f"i{k - n_cat}", 0, lv - 1))
                z = np.linspace(-1.0, 1.0, lv)
                c = rng.uniform(-1, 1)
                unary.append(rng.uniform(1.0, 3.0) * ((z - c) ** 2 - 0.5) + 0.2 * rng.standard_normal(lv))
                score.append(z * rng.choice([-1.0, 1.0]))
            else:
                dims.append(Boolean(f"b{k - n_cat - n_int}"))
                unary.append(np.array([0.0, rng.standard_normal()]))
                score.append(np.array([-1.0, 1.0]))
        pairs = []
        for i, j in itertools.combinations(range(len(levels)), 2):
            if rng.random() < 0.3:
                pairs.append((i, j, rng.normal(0, 0.8) * np.outer(score[i], score[j])))
        resource = None
        cap = 0.0
        if rng.random() < 0.5:  # optional constraint: a resource over the integers and booleans
            resource = np.zeros(len(levels))
            resource[n_cat:] = rng.uniform(0.5, 2.0, n_int + n_bool)
            top = float(resource[n_cat:] @ np.array([lv - 1 for lv in levels[n_cat:]]))
            cap = 0.5 * top
        object.__setattr__(self, "dims", dims)
        object.__setattr__(self, "unary", unary)
        object.__setattr__(self, "pairs", pairs)
        object.__setattr__(self, "resource", resource)
        object.__setattr__(self, "cap", cap)

    @property
    def levels(self) -> list[int]:
        return [len(u) for u in self.unary]

    def indices(self, values: dict[str, Any]) -> np.ndarray:
        return np.array([d.index_of(values[d.name]) for d in self.dims])

    def value_of(self, idx: np.ndarray) -> np.ndarray:
        """Objective of index rows ``idx`` (n x variables)."""
        f = np.zeros(len(idx))
        for k, u in enumerate(self.unary):
            f += u[idx[:, k]]
        for i, j, t in self.pairs:
            f += t[idx[:, i], idx[:, j]]
        return f

    def constraint_of(self, idx: np.ndarray) -> np.ndarray:
        """Resource used minus the cap (feasible <= 0); index k of an integer or boolean is its value."""
        assert self.resource is not None
        return idx @ self.resource - self.cap

    def optimum(self) -> tuple[float, np.ndarray]:
        """Exact best feasible objective by enumeration, in chunks over the first variable's levels."""
        grids = np.stack(np.meshgrid(*[np.arange(lv) for lv in self.levels[1:]], indexing="ij"), -1)
        rest = grids.reshape(-1, len(self.levels) - 1)
        best, arg = math.inf, None
        for a in range(self.levels[0]):
            idx = np.concatenate([np.full((len(rest), 1), a), rest], axis=1)
            f = self.value_of(idx)
            if self.resource is not None:
                f = np.where(self.constraint_of(idx) <= 0, f, math.inf)
            k = int(np.argmin(f))
            if f[k] < best:
                best, arg = float(f[k]), idx[k]
        assert arg is not None
        return best, arg

    def problem(self) -> DiscreteProblem:
        fstar, _ = self.optimum()

        def evaluate(values: dict[str, Any]) -> tuple[float | None, tuple[float, ...]]:
            idx = self.indices(values)[None, :]
            cons = () if self.resource is None else (float(self.constraint_of(idx)[0]),)
            return float(self.value_of(idx)[0]), cons

        return DiscreteProblem(f"mixed{self.seed}", DesignSpace(self.dims), evaluate, fstar,
                               0 if self.resource is None else 1,
                               {"levels": self.levels, "designs": math.prod(self.levels), "pairs": len(self.pairs)})


def bqp_problem(kind: str, seed: int) -> DiscreteProblem:
    from benchmarks.qio_vs_baselines import bocs10, qubo, space_of

    inst = bocs10(seed) if kind == "bocs10" else qubo(40, seed)

    def evaluate(values: dict[str, Any]) -> tuple[float | None, tuple[float, ...]]:
        return inst.f(np.array([int(values[f"x{j}"]) for j in range(inst.n)])), ()

    return DiscreteProblem(f"{kind}_{seed}", space_of(inst.n), evaluate, inst.fstar)


_HEAT_SINK: dict[str, Any] = {}


def heat_sink_problem() -> DiscreteProblem:
    """The heat_sink twin exactly as benchmarks/qio_vs_baselines.py --heat-sink runs it (built from source,
    simulated in-process with fmpy; the stored exhaustive optimum is checked on this build)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks import qio_vs_baselines as q

    if not _HEAT_SINK:
        _HEAT_SINK.update(q.setup_heat_sink())

    def evaluate(values: dict[str, Any]) -> tuple[float | None, tuple[float, ...]]:
        obj, con = q.heat_sink_evaluate(values)
        return (None, ()) if obj is None or con is None else (obj, (con,))

    return DiscreteProblem("heat_sink", q.heat_sink_space(), evaluate, _HEAT_SINK["fstar"], 1,
                           {"designs": _HEAT_SINK["space_size"]})


def problem_names(half: str) -> list[str]:
    return (["heat_sink"] + [f"bocs10_{s}" for s in BQP_SEEDS[half]] + [f"qubo40_{s}" for s in BQP_SEEDS[half]]
            + [f"mixed{s}" for s in MIXED_SEEDS[half]])


def more_dev_names() -> list[str]:
    """The extra development designs (:data:`MIXED_SEEDS_MORE_DEV`), not part of ``problem_names("dev")``."""
    return [f"mixed{s}" for s in MIXED_SEEDS_MORE_DEV]


def problem_of(name: str) -> DiscreteProblem:
    if name == "heat_sink":
        return heat_sink_problem()
    if name.startswith("mixed"):
        return MixedDesign(int(name[5:])).problem()
    kind, seed = name.rsplit("_", 1)
    return bqp_problem(kind, int(seed))
