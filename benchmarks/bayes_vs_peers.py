"""Benchmark: the ``bayes`` method against peer optimizers on standard test functions.

Functions (instant analytic twins) and budgets: Branin 2-D (40 evaluations), Hartmann6 6-D (60),
Ackley 5-D on [-5, 10]^5 (60). Peers: Optuna GPSampler and TPE, scikit-optimize (the
``gp_minimize`` configuration, driven through ``skopt.Optimizer`` ask/tell so the per-iteration
overhead can be timed), random search, scipy differential evolution, BoTorch (SingleTaskGP +
qLogNEI, with constraints) when it is installed. Every method sees the same box and budget; all linear algebra is
single-threaded (OPENBLAS/OMP/torch/TF) so CPU times are comparable.

Measured per run: simple regret at full budget (best value found minus the known optimum), the
CPU seconds of each ask+tell, and the CPU seconds of the first model-based iteration.

Run one process per method group and summarize (results are JSON lines, appended per run):

    python benchmarks/bayes_vs_peers.py run --methods bayes,random,de,tpe --seeds 10 --out R.jsonl
    python benchmarks/bayes_vs_peers.py summarize R.jsonl
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402

Objective = Callable[[np.ndarray], float]


# -- test functions ----------------------------------------------------------------------------
def branin(x: np.ndarray) -> float:
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return float((x[1] - b * x[0] ** 2 + c * x[0] - 6) ** 2 + 10 * (1 - t) * math.cos(x[0]) + 10)


_H_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                        [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(x: np.ndarray) -> float:
    return float(-np.sum(_H_ALPHA * np.exp(-np.sum(_H_A * (x - _H_P) ** 2, axis=1))))


def ackley(x: np.ndarray) -> float:
    d = len(x)
    return float(-20 * math.exp(-0.2 * math.sqrt(np.sum(x**2) / d)) - math.exp(np.sum(np.cos(2 * math.pi * x)) / d)
                 + 20 + math.e)


@dataclass(frozen=True)
class Task:
    name: str
    f: Objective
    lo: np.ndarray
    hi: np.ndarray
    optimum: float
    budget: int


TASKS = {
    "branin": Task("branin", branin, np.array([-5.0, 0.0]), np.array([10.0, 15.0]), 0.397887357729738, 40),
    "hartmann6": Task("hartmann6", hartmann6, np.zeros(6), np.ones(6), -3.32236801141551, 60),
    "ackley5": Task("ackley5", ackley, np.full(5, -5.0), np.full(5, 10.0), 0.0, 60),
}


# -- one ask/tell adapter per method -----------------------------------------------------------
class Runner:
    """ask() -> point in the box, tell(point, value, constraint values); subclasses wrap one optimizer.

    A task may carry ``n_constraints`` (output constraints, feasible when <= 0) and ``noisy`` (observations
    carry noise); both default to a plain deterministic unconstrained task, as in this script's own tasks.
    The benchmark suite (``benchmarks/suite``) drives the same runners on its constrained and noisy variants."""

    model_based_from = 0  # index of the first iteration that uses a model

    def __init__(self, task: Task, seed: int):
        self.task, self.seed = task, seed
        self.n_constraints = int(getattr(task, "n_constraints", 0))
        self.noisy = bool(getattr(task, "noisy", False))

    def ask(self) -> np.ndarray:
        raise NotImplementedError

    def tell(self, x: np.ndarray, y: float, cons: tuple[float, ...] = ()) -> None:
        raise NotImplementedError


BAYES_OPTIONS: dict = {}  # --bayes-options: the plugin's options for every bayes run (defaults when empty)


class BayesRunner(Runner):
    def __init__(self, task: Task, seed: int):
        super().__init__(task, seed)
        from fmio_bayes import BayesMethod

        from fmi_optimizer.method import Problem
        from fmi_optimizer.space import Continuous, DesignSpace

        self.space = DesignSpace([Continuous(f"x{i}", float(lo), float(hi))
                                  for i, (lo, hi) in enumerate(zip(task.lo, task.hi, strict=True))])
        problem = Problem(self.space, constraint_names=tuple(f"c{j}" for j in range(self.n_constraints)),
                          noisy=self.noisy, budget_evaluations=task.budget)
        self.m = BayesMethod(problem, dict(BAYES_OPTIONS), seed)
        self.model_based_from = self.m.n_initial
        self._last = None

    def ask(self) -> np.ndarray:
        self._last = self.m.ask(1)[0]
        return np.array([self._last.values[n] for n in self.space.names], dtype=float)

    def tell(self, x: np.ndarray, y: float, cons: tuple[float, ...] = ()) -> None:
        from fmi_optimizer.records import Evaluation

        self.m.tell([Evaluation(self._last, "ok", objective=y, constraints=tuple(cons))])


class RandomRunner(Runner):
    def __init__(self, task: Task, seed: int):
        super().__init__(task, seed)
        self.rng = np.random.default_rng(seed)

    def ask(self) -> np.ndarray:
        return self.task.lo + self.rng.random(len(self.task.lo)) * (self.task.hi - self.task.lo)

    def tell(self, x: np.ndarray, y: float, cons: tuple[float, ...] = ()) -> None:
        pass


class OptunaRunner(Runner):
    def __init__(self, task: Task, seed: int, kind: str):
        super().__init__(task, seed)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        cf = (lambda t: t.user_attrs["constraints"]) if self.n_constraints else None
        if kind == "gp":
            sampler = optuna.samplers.GPSampler(seed=seed, deterministic_objective=not self.noisy,
                                                constraints_func=cf)
            self.model_based_from = 10
        elif kind == "tpe_mv":  # multivariate TPE, as Optuna recommends for dependent parameters
            sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, constraints_func=cf)
            self.model_based_from = 10
        else:
            sampler = optuna.samplers.TPESampler(seed=seed, constraints_func=cf)
            self.model_based_from = 10
        self.study = optuna.create_study(sampler=sampler)
        self.dists = {f"x{i}": optuna.distributions.FloatDistribution(float(lo), float(hi))
                      for i, (lo, hi) in enumerate(zip(task.lo, task.hi, strict=True))}
        self._trial = None

    def ask(self) -> np.ndarray:
        self._trial = self.study.ask(self.dists)
        return np.array([self._trial.params[f"x{i}"] for i in range(len(self.task.lo))])

    def tell(self, x: np.ndarray, y: float, cons: tuple[float, ...] = ()) -> None:
        if self.n_constraints:
            self._trial.set_user_attr("constraints", [float(c) for c in cons])
        self.study.tell(self._trial, y)


class SkoptRunner(Runner):
    """skopt.Optimizer configured as gp_minimize does (GP, gp_hedge, lbfgs, 10 random initial points)."""

    def __init__(self, task: Task, seed: int):
        super().__init__(task, seed)
        from skopt import Optimizer
        from skopt.utils import cook_estimator

        space = [(float(lo), float(hi)) for lo, hi in zip(task.lo, task.hi, strict=True)]
        rng = np.random.RandomState(seed)
        from skopt.space import Space

        est = cook_estimator("GP", space=Space(space), random_state=rng.randint(0, np.iinfo(np.int32).max), noise="gaussian")
        self.opt = Optimizer(space, est, acq_func="gp_hedge", acq_optimizer="lbfgs", n_initial_points=10,
                             initial_point_generator="random", random_state=rng,
                             acq_optimizer_kwargs={"n_points": 10000, "n_restarts_optimizer": 5, "n_jobs": 1},
                             acq_func_kwargs={"xi": 0.01, "kappa": 1.96})
        self.model_based_from = 10

    def ask(self) -> np.ndarray:
        return np.array(self.opt.ask(), dtype=float)

    def tell(self, x: np.ndarray, y: float, cons: tuple[float, ...] = ()) -> None:
        """scikit-optimize has no constraints: an infeasible point is told the worst value seen so far
        (the usual penalty; the value itself would reward the infeasible region)."""
        self._seen = [*getattr(self, "_seen", []), y]
        if any(c > 0 for c in cons):
            y = max(self._seen)
        self.opt.tell([float(v) for v in x], y)


class BotorchRunner(Runner):
    """BoTorch as its tutorials set it up: a ``SingleTaskGP`` (BoTorch defaults: learned noise, outcome
    ``Standardize``) for the objective and one for each output constraint, joined in a ``ModelListGP``;
    ``qLogNoisyExpectedImprovement`` over the evaluated points with the constraints as outcome constraints
    (feasible when <= 0); ``optimize_acqf`` with q = 1, 10 restarts from 512 raw samples; 2 d + 1 scrambled
    Sobol points first."""

    def __init__(self, task: Task, seed: int):
        super().__init__(task, seed)
        import torch

        torch.set_num_threads(1)
        torch.manual_seed(seed)
        self.torch = torch
        d = len(task.lo)
        self.n_init = 2 * d + 1
        self.model_based_from = self.n_init
        sob = torch.quasirandom.SobolEngine(d, scramble=True, seed=seed).draw(self.n_init).double()
        self.init = list(sob)
        self.X: list = []
        self.Y: list[tuple[float, ...]] = []  # (objective, constraint values...)

    def _to_box(self, u) -> np.ndarray:
        return self.task.lo + u.numpy() * (self.task.hi - self.task.lo)

    def ask(self) -> np.ndarray:
        torch = self.torch
        if self.init:
            self._u = self.init.pop(0)
            return self._to_box(self._u)
        import warnings

        from botorch.acquisition.logei import qLogNoisyExpectedImprovement
        from botorch.acquisition.objective import GenericMCObjective
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import ModelListGP, SingleTaskGP
        from botorch.models.transforms.outcome import Standardize
        from botorch.optim import optimize_acqf
        from gpytorch.mlls import SumMarginalLogLikelihood

        X = torch.stack(self.X)
        Y = torch.tensor(self.Y, dtype=torch.double)
        Y[:, 0] = -Y[:, 0]  # BoTorch maximizes
        models = [SingleTaskGP(X, Y[:, j : j + 1], outcome_transform=Standardize(m=1)) for j in range(Y.shape[1])]
        model = ModelListGP(*models)
        with warnings.catch_warnings():  # BoTorch's own retries and input checks are not this benchmark's output
            warnings.simplefilter("ignore")
            fit_gpytorch_mll(SumMarginalLogLikelihood(model.likelihood, model))
            acq = qLogNoisyExpectedImprovement(
                model, X_baseline=X, objective=GenericMCObjective(lambda Z, X=None: Z[..., 0]),
                constraints=[(lambda Z, j=j: Z[..., j]) for j in range(1, Y.shape[1])] or None, prune_baseline=True)
            d = X.shape[1]
            bounds = torch.stack([torch.zeros(d, dtype=torch.double), torch.ones(d, dtype=torch.double)])
            cand, _ = optimize_acqf(acq, bounds=bounds, q=1, num_restarts=10, raw_samples=512)
        self._u = cand[0].detach()
        return self._to_box(self._u)

    def tell(self, x: np.ndarray, y: float, cons: tuple[float, ...] = ()) -> None:
        self.X.append(self._u)
        self.Y.append((float(y), *map(float, cons)))


def run_de(task: Task, seed: int) -> dict:
    """scipy differential evolution, stopped at the budget (popsize 5 per dimension, no polish)."""
    from scipy.optimize import differential_evolution

    values: list[float] = []

    class Done(Exception):
        pass

    def f(x: np.ndarray) -> float:
        if len(values) >= task.budget:
            raise Done
        values.append(task.f(x))
        return values[-1]

    t0 = time.process_time()
    try:
        differential_evolution(f, list(zip(task.lo, task.hi, strict=True)), popsize=5, maxiter=10_000,
                               polish=False, seed=seed, init="latinhypercube")
    except Done:
        pass
    cpu = time.process_time() - t0
    return {"values": values, "iter_cpu": [cpu / max(1, len(values))] * len(values), "first_model_cpu": None}


RUNNERS: dict[str, Callable[[Task, int], Runner]] = {
    "bayes": BayesRunner,
    "random": RandomRunner,
    "optuna_gp": lambda t, s: OptunaRunner(t, s, "gp"),
    "optuna_tpe": lambda t, s: OptunaRunner(t, s, "tpe"),
    "optuna_tpe_mv": lambda t, s: OptunaRunner(t, s, "tpe_mv"),
    "skopt_gp": SkoptRunner,
    "botorch": BotorchRunner,
}


def run_one(method: str, task: Task, seed: int) -> dict:
    if method == "de":
        return run_de(task, seed)
    runner = RUNNERS[method](task, seed)
    values, iter_cpu = [], []
    for _ in range(task.budget):
        t0 = time.process_time()
        x = runner.ask()
        t1 = time.process_time()
        y = task.f(np.asarray(x, dtype=float))
        t2 = time.process_time()
        runner.tell(x, y)
        iter_cpu.append((t1 - t0) + (time.process_time() - t2))
        values.append(y)
    first = iter_cpu[runner.model_based_from] if runner.model_based_from < len(iter_cpu) else None
    return {"values": values, "iter_cpu": iter_cpu, "first_model_cpu": first}


def cmd_run(args: argparse.Namespace) -> None:
    import_cpu = {}
    BAYES_OPTIONS.update(json.loads(args.bayes_options))
    seeds = [int(s) for s in args.seed_list.split(",")] if args.seed_list else list(range(args.seeds))
    for method in args.methods.split(","):
        if method == "bayes":  # TensorFlow import: once per process, reported separately
            t0 = time.process_time()
            from fmio_bayes._tf import load

            load()
            import_cpu["bayes"] = time.process_time() - t0
        for seed in seeds:  # seed-major: a run cut short still covers every function
            for tname in args.tasks.split(","):
                task = TASKS[tname]
                t0 = time.time()
                r = run_one(method, task, seed)
                best = min(r["values"])
                rec = {"method": method, "task": tname, "seed": seed, "regret": best - task.optimum,
                       "iter_cpu": r["iter_cpu"], "first_model_cpu": r["first_model_cpu"],
                       "import_cpu": import_cpu.get(method), "wall": time.time() - t0,
                       "options": BAYES_OPTIONS if method == "bayes" else {}}
                with open(args.out, "a") as fh:
                    fh.write(json.dumps(rec) + "\n")
                print(f"{method:11s} {tname:10s} seed {seed:2d} regret {rec['regret']:.3e} "
                      f"({rec['wall']:.0f} s wall)", file=sys.stderr, flush=True)


def cmd_summarize(args: argparse.Namespace) -> None:
    rows = [json.loads(line) for path in args.files for line in open(path) if line.strip()]
    methods = sorted({r["method"] for r in rows}, key=lambda m: (m != "bayes", m))
    tasks = [t for t in TASKS if any(r["task"] == t for r in rows)]
    med: dict[tuple[str, str], float] = {}
    print("## Median simple regret at full budget (seeds in brackets)\n")
    print("| method | " + " | ".join(f"{t} ({TASKS[t].budget})" for t in tasks) + " |")
    print("|---|" + "---|" * len(tasks))
    for m in methods:
        cells = []
        for t in tasks:
            reg = [r["regret"] for r in rows if r["method"] == m and r["task"] == t]
            if reg:
                med[(m, t)] = float(np.median(reg))
                cells.append(f"{med[(m, t)]:.3g} [{len(reg)}]")
            else:
                cells.append("-")
        print(f"| {m} | " + " | ".join(cells) + " |")
    h6 = [r["regret"] for r in rows if r["method"] == "bayes" and r["task"] == "hartmann6"]
    if h6:
        print(f"\nbayes: {100 * np.mean(np.array(h6) < 0.05):.0f} % of Hartmann6 runs below 0.05 regret ({len(h6)} runs)")
    print("\n## Ratio of median regret, bayes / peer (< 1: bayes better)\n")
    print("| peer | " + " | ".join(tasks) + " |")
    print("|---|" + "---|" * len(tasks))
    for m in methods:
        if m == "bayes":
            continue
        cells = []
        for t in tasks:
            a, b = med.get(("bayes", t)), med.get((m, t))
            cells.append(f"{a / b:.3g}" if a is not None and b not in (None, 0.0) else "-")
        print(f"| {m} | " + " | ".join(cells) + " |")
    print("\n## Optimizer CPU seconds per iteration (ask+tell, function time excluded)\n")
    print("| method | mean at 50-60 points (Hartmann6, Ackley5) | first model-based iteration (median) "
          "| one-time import | ratio bayes/peer at 50-60 points |")
    print("|---|---|---|---|---|")
    late: dict[str, float] = {}
    for m in methods:
        it = [c for r in rows if r["method"] == m and r["task"] in ("hartmann6", "ackley5") for c in r["iter_cpu"][50:60]]
        late[m] = float(np.mean(it)) if it else float("nan")
    for m in methods:
        first = [r["first_model_cpu"] for r in rows if r["method"] == m and r["first_model_cpu"] is not None]
        imp = [r["import_cpu"] for r in rows if r["method"] == m and r.get("import_cpu") is not None]
        ratio = late["bayes"] / late[m] if m != "bayes" and late.get("bayes") and late[m] > 0 else float("nan")
        print(f"| {m} | {late[m]:.3f} | {np.median(first) if first else float('nan'):.3f} | "
              f"{np.median(imp) if imp else float('nan'):.1f} | {ratio:.3g} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--methods", default="bayes,random,de,optuna_tpe,optuna_gp,skopt_gp,botorch")
    r.add_argument("--tasks", default="branin,hartmann6,ackley5")
    r.add_argument("--seeds", type=int, default=10)
    r.add_argument("--out", required=True)
    r.add_argument("--seed-list", default="", help="comma-separated seeds instead of 0..seeds-1")
    r.add_argument("--bayes-options", default="{}", help='JSON options for bayes, e.g. \'{"mean": "zero"}\'')
    s = sub.add_parser("summarize")
    s.add_argument("files", nargs="+")
    args = p.parse_args()
    cmd_run(args) if args.cmd == "run" else cmd_summarize(args)


if __name__ == "__main__":
    main()
