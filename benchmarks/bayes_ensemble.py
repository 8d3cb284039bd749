"""Benchmark: the ``bayes`` method's deep-ensemble surrogate against its GP surrogate on large budgets.

The ensemble exists for data sets where the GP's cost grows (fit O(n^3), acquisition O(n^2) per
scored point): here 6-D functions with a few hundred evaluations asked in batches of ``q``
(Kriging believer). Both surrogates run the same method, options, initial design and seeds;
random search is the floor. Measured per run: simple regret after every batch, and the optimizer's
CPU seconds per batch (ask + tell, i.e. fit + q acquisition maximizations) against the number of
data points.

    nice -n 10 env OMP_NUM_THREADS=1 python benchmarks/bayes_ensemble.py run --surrogates gp,ensemble,random \\
        --functions hartmann6,ackley6 --seeds 3 --budget 400 --q 10 --out /tmp/ens.jsonl
    python benchmarks/bayes_ensemble.py summarize /tmp/ens.jsonl
    nice -n 10 env OMP_NUM_THREADS=1 python benchmarks/bayes_ensemble.py scaling --sizes 100,250,500,1000,2000

``scaling`` times the two surrogates alone (refit, scoring, a batch's believed points) as n grows.

``run`` appends one JSON line per (function, surrogate, seed) so several processes can share a file.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402
from bayes_vs_peers import ackley, hartmann6  # noqa: E402  (same directory; the test functions live there)
from suite.regimes import piecewise_of  # noqa: E402  (the suite's discontinuous, non-stationary instances)


def rosenbrock(x: np.ndarray) -> float:
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


@dataclass(frozen=True)
class Task:
    f: Callable[[np.ndarray], float]
    lo: float
    hi: float
    dim: int
    optimum: float


TASKS = {
    "hartmann6": Task(hartmann6, 0.0, 1.0, 6, -3.32236801141551),
    "ackley6": Task(ackley, -5.0, 10.0, 6, 0.0),
    "rosenbrock6": Task(rosenbrock, -2.0, 2.0, 6, 0.0),
}


def task_of(name: str) -> Task:
    """A fixed function of ``TASKS`` or a suite instance ``piecewise<d>_<seed>`` (on [0, 1]^d)."""
    if name in TASKS:
        return TASKS[name]
    inst = piecewise_of(name)
    if inst is None:
        raise SystemExit(f"function {name!r}: use one of {', '.join(TASKS)} or piecewise<d>_<seed>")
    return Task(inst, 0.0, 1.0, inst.d, inst.optimum)


def run_one(task_name: str, surrogate: str, seed: int, budget: int, q: int,
            options: dict[str, object] | None = None, tag: str = "") -> dict[str, object]:
    """One study; ``surrogate`` is a ``bayes`` surrogate option or ``random``; ``options`` are more ``bayes``
    options, and ``tag`` names them in the results (``gp[tag]``)."""
    task = task_of(task_name)
    if surrogate == "random":
        rng = np.random.default_rng(seed)
        ys = [task.f(task.lo + rng.random(task.dim) * (task.hi - task.lo)) for _ in range(budget)]
        trace = np.minimum.accumulate(np.array(ys) - task.optimum)
        return {"function": task_name, "surrogate": surrogate, "seed": seed, "budget": budget, "q": q,
                "n": list(range(1, budget + 1)), "regret": trace.tolist(), "batches": []}
    from fmio_bayes import BayesMethod

    if surrogate == "ensemble+kb":
        _update_incumbent_with_believed_points()

    from fmi_optimizer.method import Problem
    from fmi_optimizer.records import Evaluation
    from fmi_optimizer.space import Continuous, DesignSpace

    space = DesignSpace([Continuous(f"x{i}", task.lo, task.hi) for i in range(task.dim)])
    m = BayesMethod(Problem(space, budget_evaluations=budget, batch_size=q),
                    {"surrogate": surrogate.split("+")[0], **(options or {})}, seed)
    regret: list[float] = []
    batches: list[dict[str, float]] = []
    best = math.inf
    while len(regret) < budget:
        n_before = len(regret)
        t0 = time.process_time()
        # the initial design alone first: ask(q) with q > n_initial before any tell fails in
        # BayesMethod._dataset (reported to the lead); a study's first batch is the design anyway
        asked = m.ask(min(q if n_before else m.n_initial, budget - n_before))
        t_ask = time.process_time() - t0
        told = []
        for c in asked:
            y = task.f(np.array([c.values[name] for name in space.names], dtype=float))
            told.append(Evaluation(c, "ok", objective=y))
            best = min(best, y - task.optimum)
            regret.append(best)
        t1 = time.process_time()
        m.tell(told)
        model_based = n_before >= m.n_initial
        batches.append({"n_data": n_before, "cpu_seconds": t_ask + time.process_time() - t1,
                        "model_based": model_based})
    return {"function": task_name, "surrogate": f"{surrogate}[{tag}]" if tag else surrogate, "seed": seed,
            "budget": budget, "q": q, "options": options or {}, "n": list(range(1, budget + 1)), "regret": regret,
            "batches": batches}


def _update_incumbent_with_believed_points() -> None:
    """EXPERIMENT (variant ``ensemble+kb``), not the method's behaviour: Ginsbourger's Kriging
    believer also lowers the incumbent to the believed values, which the engine does not do; this
    wraps the engine's acquisition builder so ``best`` becomes min(best, believed means) of the
    ensemble objective. It measures whether the engine should do so."""
    import fmio_bayes.engine as engine

    if getattr(engine.build, "kb_incumbent", False):
        return
    original = engine.build

    def build(kind: str, objective: object, constraints: object, failure: object) -> object:
        bind = original(kind, objective, constraints, failure)

        def bind_kb(best: float, beta: float, tau: np.ndarray, w_obj: float) -> object:
            believed = objective._F.numpy()  # type: ignore[attr-defined]
            if len(believed) and w_obj > 0:
                best = min(best, float(np.min(objective.predict_std(believed)[0])))  # type: ignore[attr-defined]
            return bind(best, beta, tau, w_obj)

        return bind_kb

    build.kb_incumbent = True  # type: ignore[attr-defined,unused-ignore]
    engine.build = build


def summarize(path: str, against: str = "ensemble") -> None:
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    for fn in sorted({r["function"] for r in rows}):
        runs = [r for r in rows if r["function"] == fn]
        budget = min(r["budget"] for r in runs)
        checkpoints = [c for c in (50, 100, 200, 300, 400, 500) if c <= budget]
        print(f"\n## {fn} (budget {budget}, q = {runs[0]['q']}, seeds per surrogate: "
              f"{ {s: sum(r['surrogate'] == s for r in runs) for s in sorted({r['surrogate'] for r in runs})} })")
        print("median simple regret after n evaluations")
        print(f"{'surrogate':<10}" + "".join(f"{'n=' + str(c):>11}" for c in checkpoints))
        med: dict[str, list[float]] = {}
        for s in sorted({r["surrogate"] for r in runs}):
            mine = [r for r in runs if r["surrogate"] == s]
            med[s] = [float(np.median([r["regret"][c - 1] for r in mine])) for c in checkpoints]
            print(f"{s:<10}" + "".join(f"{v:>11.4g}" for v in med[s]))
        for s in ("ensemble", "ensemble+kb"):
            if "gp" in med and s in med:
                print(f"{s[:3] + s[8:] + '/gp':<10}" + "".join(f"{e / g if g > 0 else math.inf:>11.3g}"
                                                               for e, g in zip(med[s], med["gp"], strict=True)))
        _cpu_table(runs)
    _paired(rows, against)


def _paired(rows: list[dict[str, object]], against: str = "ensemble") -> None:
    """Surrogate ``against`` (the ensemble, or a tagged variant such as ``gp[fresh]``) against the GP run by run
    (same function and seed): how often its regret is lower, per function and pooled, with the Wilcoxon
    signed-rank test on the log ratio of the pooled pairs."""
    from scipy.stats import wilcoxon

    final = {(r["function"], r["seed"], r["surrogate"]): r["regret"] for r in rows}
    pairs = sorted({(f, s) for f, s, sur in final if sur == against and (f, s, "gp") in final})
    if not pairs:
        return
    print(f"\n## {against} against gp, paired by function and seed")
    for n in (100, 300):
        per: dict[str, list[float]] = {}
        for f, s in pairs:
            e, g = final[(f, s, against)], final[(f, s, "gp")]  # type: ignore[index]
            if len(e) >= n and len(g) >= n:  # type: ignore[arg-type]
                per.setdefault(str(f), []).append(math.log(max(e[n - 1], 1e-12) / max(g[n - 1], 1e-12)))  # type: ignore[index]
        logs = [v for vs in per.values() for v in vs]
        if not logs:
            continue
        detail = ", ".join(f"{f} {sum(v < 0 for v in vs)}/{len(vs)}" for f, vs in sorted(per.items()))
        nonzero = [v for v in logs if v != 0]
        p = wilcoxon(nonzero).pvalue if len(nonzero) >= 2 else math.nan
        print(f"n={n}: {against} lower in {sum(v < 0 for v in logs)} of {len(logs)} pairs ({detail}); "
              f"geometric mean ratio {against}/gp {math.exp(float(np.mean(logs))):.3g}, Wilcoxon p = {p:.2g}")


def _cpu_table(runs: list[dict[str, object]]) -> None:
    """Median optimizer CPU seconds per batch, binned by the number of data points."""
    bins = [(0, 100), (100, 200), (200, 300), (300, 400), (400, 500)]
    per: dict[str, list[float | None]] = {}
    print("median optimizer CPU seconds per batch (ask + tell) by data points at the ask")
    print(f"{'surrogate':<10}" + "".join(f"{f'{a}-{b}':>11}" for a, b in bins) + f"{'total':>11}")
    for s in ("gp", "ensemble", "ensemble+kb"):
        mine = [r for r in runs if r["surrogate"] == s]
        if not mine:
            continue
        row: list[float | None] = []
        for a, b in bins:
            vals = [bt["cpu_seconds"] for r in mine for bt in r["batches"]  # type: ignore[attr-defined]
                    if bt["model_based"] and a <= bt["n_data"] < b]
            row.append(float(np.median(vals)) if vals else None)
        total = float(np.median([sum(bt["cpu_seconds"] for bt in r["batches"]) for r in mine]))  # type: ignore[attr-defined]
        per[s] = row + [total]
        print(f"{s:<10}" + "".join(f"{v:>11.3g}" if v is not None else f"{'-':>11}" for v in row) + f"{total:>11.1f}")
    if "gp" in per and "ensemble" in per:
        print(f"{'ens/gp':<10}" + "".join(f"{e / g:>11.3g}" if e is not None and g else f"{'-':>11}"
                                         for e, g in zip(per["ensemble"], per["gp"], strict=True)))


def scaling(sizes: list[int], dim: int, repeats: int) -> None:
    """Surrogate cost alone against the number of points: one warm refit after 10 new points (the
    previous fit had the others), scoring 2048 raw points, and 10 acquisition-sized calls (10 points) with one
    believed point more each time, as a batch of q = 10 does. Data: Hartmann6-like smooth
    function on random points; CPU seconds (process time), median of ``repeats``."""
    from fmio_bayes.ensemble import new_surrogate

    rng = np.random.default_rng(0)
    print(f"surrogate cost in CPU seconds, {dim}-D, median of {repeats}")
    print(f"{'n':>6} {'model':<9}{'refit':>9}{'score2048':>11}{'10 picks':>10}{'total':>9}")
    for n in sizes:
        Z = rng.random((n, dim))
        y = np.array([hartmann6(z) for z in Z]) if dim == 6 else np.sin(3 * Z).sum(axis=1)
        totals = {}
        for kind in ("gp", "ensemble"):
            s = new_surrogate(kind, dim, "fixed", 0)
            rows = []
            for _ in range(repeats):
                s.set_data(Z[:-10], y[:-10])  # the previous iteration: 10 points fewer
                s.fit(True)
                s.predict_std(Z[:3])  # tracing of the first call is not timed
                t0 = time.process_time()
                s.set_data(Z, y)
                s.fit(False)
                t1 = time.process_time()
                s.predict_std(rng.random((2048, dim)))
                t2 = time.process_time()
                for _ in range(10):
                    s.predict_std(rng.random((10, dim)))
                    s.fantasize(rng.random((1, dim)))
                s.restore()
                rows.append((t1 - t0, t2 - t1, time.process_time() - t2))
            med = np.median(np.array(rows), axis=0)
            totals[kind] = float(med.sum())
            print(f"{n:>6} {kind:<9}{med[0]:>9.3f}{med[1]:>11.3f}{med[2]:>10.3f}{med.sum():>9.3f}", flush=True)
        print(f"{n:>6} {'ens/gp':<9}{'':>30}{totals['ensemble'] / totals['gp']:>9.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--surrogates", default="gp,ensemble,random")
    r.add_argument("--functions", default="hartmann6,ackley6")
    r.add_argument("--seeds", type=int, default=3)
    r.add_argument("--first-seed", type=int, default=0)
    r.add_argument("--budget", type=int, default=400)
    r.add_argument("--q", type=int, default=10)
    r.add_argument("--out", required=True)
    r.add_argument("--options", default="{}", help="more bayes options, JSON (not for random)")
    r.add_argument("--tag", default="", help="names --options in the results: surrogate gp[TAG]")
    s = sub.add_parser("summarize")
    s.add_argument("path")
    s.add_argument("--against", default="ensemble", help="the surrogate label paired with gp (e.g. gp[fresh])")
    c = sub.add_parser("scaling")
    c.add_argument("--sizes", default="100,250,500,1000,2000")
    c.add_argument("--dim", type=int, default=6)
    c.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    if args.cmd == "summarize":
        summarize(args.path, args.against)
        return
    if args.cmd == "scaling":
        scaling([int(v) for v in args.sizes.split(",")], args.dim, args.repeats)
        return
    for fn in args.functions.split(","):
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for sur in args.surrogates.split(","):
                t0 = time.perf_counter()
                row = run_one(fn, sur, seed, args.budget, args.q, json.loads(args.options), args.tag)
                with open(args.out, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(row) + "\n")
                print(f"{fn} {sur} seed {seed}: regret {row['regret'][-1]:.4g} "  # type: ignore[index]
                      f"({time.perf_counter() - t0:.0f} s wall)", flush=True)


if __name__ == "__main__":
    main()
