"""Continuous problems of the suite: standard test functions (each plain, with additive observation noise, and
with one output constraint) and random instances drawn from a Gaussian-process prior.

Every problem is a :class:`Task` the runners of ``benchmarks/bayes_vs_peers.py`` accept (name, f, lo, hi,
optimum, budget) plus ``n_constraints``, ``noisy`` and an ``observe`` that returns what a method is told.
Budgets are 10 d + 20 evaluations.

Development and held-out halves: the standard functions appear in both halves with disjoint run seeds
(even seeds develop, odd seeds are held out); the random GP-prior instances are different functions in the
two halves (instance seeds even: development, odd: held out). The split is fixed here, not on the command line.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from benchmarks.bayes_vs_peers import ackley, branin, hartmann6

#: instance seeds of the random GP-prior functions per half (even develop, odd held out)
GP_SEEDS = {"dev": tuple(range(0, 12, 2)), "heldout": tuple(range(1, 12, 2))}
#: run seeds (method seed and noise realisation) per half and repetition: rep r uses RUN_SEED[half](r)
RUN_SEED: dict[str, Callable[[int], int]] = {"dev": lambda r: 2 * r, "heldout": lambda r: 2 * r + 1}
NOISE_FRACTION = 0.05  # noise sd as a share of (median of f over the box - optimum)


# -- the standard functions --------------------------------------------------------------------------------
def six_hump_camel(x: np.ndarray) -> float:
    a, b = x[0], x[1]
    return float((4 - 2.1 * a**2 + a**4 / 3) * a**2 + a * b + (-4 + 4 * b**2) * b**2)


def goldstein_price(x: np.ndarray) -> float:
    a, b = x[0], x[1]
    t1 = 1 + (a + b + 1) ** 2 * (19 - 14 * a + 3 * a**2 - 14 * b + 6 * a * b + 3 * b**2)
    t2 = 30 + (2 * a - 3 * b) ** 2 * (18 - 32 * a + 12 * a**2 + 48 * b - 36 * a * b + 27 * b**2)
    return float(t1 * t2)


_H3_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
_H3_P = 1e-4 * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]])
_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann3(x: np.ndarray) -> float:
    return float(-np.sum(_H_ALPHA * np.exp(-np.sum(_H3_A * (x - _H3_P) ** 2, axis=1))))


def levy(x: np.ndarray) -> float:
    w = 1 + (x - 1) / 4
    return float(math.sin(math.pi * w[0]) ** 2
                 + np.sum((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(math.pi * w[:-1] + 1) ** 2))
                 + (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2))


def rosenbrock(x: np.ndarray) -> float:
    return float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


def styblinski_tang(x: np.ndarray) -> float:
    return float(0.5 * np.sum(x**4 - 16 * x**2 + 5 * x))


def michalewicz(x: np.ndarray) -> float:
    i = np.arange(1, len(x) + 1)
    return float(-np.sum(np.sin(x) * np.sin(i * x**2 / math.pi) ** 20))


@dataclass(frozen=True)
class Standard:
    """A standard function with its box, known optimum value and one minimizer (literature values)."""

    name: str
    f: Callable[[np.ndarray], float]
    lo: tuple[float, ...]
    hi: tuple[float, ...]
    optimum: float
    x_star: tuple[float, ...]


_ST = -2.903534027771178
STANDARD: dict[str, Standard] = {s.name: s for s in [
    Standard("branin", branin, (-5.0, 0.0), (10.0, 15.0), 0.397887357729738, (math.pi, 2.275)),
    Standard("camel6", six_hump_camel, (-3.0, -2.0), (3.0, 2.0), -1.031628453489877, (0.08984201368301331, -0.7126564032704135)),
    Standard("goldstein_price", goldstein_price, (-2.0, -2.0), (2.0, 2.0), 3.0, (0.0, -1.0)),
    Standard("hartmann3", hartmann3, (0.0,) * 3, (1.0,) * 3, -3.862782147820756, (0.114614, 0.555649, 0.852547)),
    Standard("hartmann6", hartmann6, (0.0,) * 6, (1.0,) * 6, -3.32236801141551,
             (0.20168952, 0.15001069, 0.47687398, 0.27533243, 0.31165162, 0.65730054)),
    Standard("ackley5", ackley, (-5.0,) * 5, (10.0,) * 5, 0.0, (0.0,) * 5),
    Standard("ackley10", ackley, (-5.0,) * 10, (10.0,) * 10, 0.0, (0.0,) * 10),
    Standard("levy5", levy, (-10.0,) * 5, (10.0,) * 5, 0.0, (1.0,) * 5),
    Standard("levy10", levy, (-10.0,) * 10, (10.0,) * 10, 0.0, (1.0,) * 10),
    Standard("rosenbrock4", rosenbrock, (-5.0,) * 4, (10.0,) * 4, 0.0, (1.0,) * 4),
    Standard("styblinski_tang5", styblinski_tang, (-5.0,) * 5, (5.0,) * 5, 5 * 0.5 * (_ST**4 - 16 * _ST**2 + 5 * _ST),
             (_ST,) * 5),
    Standard("michalewicz5", michalewicz, (0.0,) * 5, (math.pi,) * 5, -4.687658179088148,
             (2.202905520, 1.570796327, 1.284991564, 1.923058473, 1.720469737)),
]}


# -- random functions from a GP prior ----------------------------------------------------------------------
@dataclass(frozen=True)
class GPPrior:
    """A sample of a zero-mean GP with a squared-exponential kernel (unit variance, lengthscales drawn
    log-uniformly in [0.1, 0.5] of the unit box per dimension), as 1024 random Fourier features — an exact
    function, cheap to evaluate, determined by ``seed``. Its minimum is found numerically (Sobol points, then
    L-BFGS-B from the best 16 with the analytic gradient)."""

    seed: int
    d: int = field(init=False)
    W: np.ndarray = field(init=False, repr=False)
    b: np.ndarray = field(init=False, repr=False)
    a: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(7919 + self.seed)
        d = int(rng.integers(2, 9))
        ls = np.exp(rng.uniform(math.log(0.1), math.log(0.5), d))
        m = 1024
        object.__setattr__(self, "d", d)
        object.__setattr__(self, "W", rng.standard_normal((m, d)) / ls)
        object.__setattr__(self, "b", rng.uniform(0, 2 * math.pi, m))
        object.__setattr__(self, "a", rng.standard_normal(m) * math.sqrt(2.0 / m))

    def __call__(self, x: np.ndarray) -> float:
        return float(self.a @ np.cos(self.W @ x + self.b))

    def grad(self, x: np.ndarray) -> np.ndarray:
        return -(self.a * np.sin(self.W @ x + self.b)) @ self.W

    def minimize(self) -> tuple[float, np.ndarray]:
        from scipy.optimize import minimize
        from scipy.stats import qmc

        pts = qmc.Sobol(self.d, scramble=True, seed=self.seed).random(8192)
        vals = np.cos(pts @ self.W.T + self.b) @ self.a
        best_f, best_x = math.inf, pts[0]
        for i in np.argsort(vals)[:16]:
            r = minimize(lambda x: (self(x), self.grad(x)), pts[i], jac=True, method="L-BFGS-B",
                         bounds=[(0.0, 1.0)] * self.d)
            if r.fun < best_f:
                best_f, best_x = float(r.fun), np.asarray(r.x)
        return best_f, best_x


# -- problems ------------------------------------------------------------------------------------------------
@dataclass
class Task:
    """One suite problem, in the shape the runners of benchmarks/bayes_vs_peers.py take."""

    name: str
    f: Callable[[np.ndarray], float]  # the true (noise-free) objective
    lo: np.ndarray
    hi: np.ndarray
    optimum: float
    budget: int
    x_star: np.ndarray
    noisy: bool = False
    n_constraints: int = 0
    noise_sd: float = 0.0
    con_w: np.ndarray | None = None  # constraint w . u - c <= 0, u the point scaled to the unit box
    con_c: float = 0.0

    def unit(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=float) - self.lo) / (self.hi - self.lo)

    def constraint(self, x: np.ndarray) -> tuple[float, ...]:
        if self.con_w is None:
            return ()
        return (float(self.con_w @ self.unit(x) - self.con_c),)

    def observe(self, x: np.ndarray, rng: np.random.Generator) -> tuple[float, tuple[float, ...]]:
        """What a method is told: the objective (plus noise on the noisy variant) and the constraint values."""
        y = self.f(x)
        if self.noisy:
            y += float(rng.normal(0.0, self.noise_sd))
        return y, self.constraint(x)


def _median_gap(f: Callable[[np.ndarray], float], lo: np.ndarray, hi: np.ndarray, optimum: float) -> float:
    rng = np.random.default_rng(12345)
    u = rng.random((2000, len(lo)))
    return float(np.median([f(lo + v * (hi - lo)) for v in u]) - optimum)


def _constraint_of(name: str, x_star_unit: np.ndarray) -> tuple[np.ndarray, float]:
    """A linear constraint in unit coordinates, direction fixed by the problem's name, placed so that the known
    minimizer stays feasible with a margin of 0.05 and about half of the box (at least) is infeasible: the
    constrained optimum equals the unconstrained one, so regret stays exact."""
    rng = np.random.default_rng(sum(map(ord, name)))
    d = len(x_star_unit)
    w = rng.standard_normal(d)
    w /= np.linalg.norm(w)
    med = float(np.median(np.random.default_rng(1).random((4000, d)) @ w))
    return w, max(float(w @ x_star_unit) + 0.05, med)


def make_task(base: str, variant: str = "plain") -> Task:
    """``base``: a STANDARD name or ``gp<seed>``; ``variant``: plain, noisy or constrained."""
    if base.startswith("gp"):
        g = GPPrior(int(base[2:]))
        opt, xs = g.minimize()
        f: Callable[[np.ndarray], float] = g
        lo, hi = np.zeros(g.d), np.ones(g.d)
    else:
        s = STANDARD[base]
        f, lo, hi, opt, xs = s.f, np.array(s.lo), np.array(s.hi), s.optimum, np.array(s.x_star)
    d = len(lo)
    name = base if variant == "plain" else f"{base}_{variant}"
    t = Task(name, f, lo, hi, opt, 10 * d + 20, np.asarray(xs, dtype=float))
    if variant == "noisy":
        t.noisy, t.noise_sd = True, NOISE_FRACTION * _median_gap(f, lo, hi, opt)
    elif variant == "constrained":
        t.n_constraints = 1
        t.con_w, t.con_c = _constraint_of(name, t.unit(t.x_star))
    elif variant != "plain":
        raise ValueError(f"variant {variant!r}: use plain, noisy or constrained")
    return t


VARIANTS = ("plain", "noisy", "constrained")


def problem_names(half: str) -> list[str]:
    """Every continuous problem of a half: 12 functions x 3 variants, then the half's GP-prior instances."""
    return [s if v == "plain" else f"{s}_{v}" for s in STANDARD for v in VARIANTS] + [f"gp{k}" for k in GP_SEEDS[half]]


def task_of(name: str) -> Task:
    for v in VARIANTS[1:]:
        if name.endswith("_" + v):
            return make_task(name[: -len(v) - 1], v)
    return make_task(name)
