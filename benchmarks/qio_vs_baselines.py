"""qio against the built-in baselines (ga, de, random) on black-box binary problems, and qio's speed.

Metric: evaluations to come within 1 % of the true optimum, counting unique evaluations only (a method that
re-asks a configuration gets the cached answer for free), median over seeds; a run that does not reach the
target within its budget counts as not reached (">budget"). Problems (instance drawn per seed):

- ``bocs10``: the BOCS binary quadratic benchmark (Baptista & Poloczek 2018): ``x'Qx + 1e-4 |x|``,
  ``Q = N(0,1) * exp(-(i-j)^2 / alpha)``, alpha = 1, d = 10; optimum by enumeration;
- ``qubo40``: a sparse QUBO on 40 bits, linear biases N(0,1), each pair coupled with probability 0.08 with an
  N(0,1) coupling; optimum exact by dwave-samplers' TreeDecompositionSolver.

The ``ga`` is tuned: populations 8, 16 and 32 run on the same seeds and the best median is reported.
Speed: (surrogate fit + annealing) seconds per proposed point at 60 bits, from qio's own diagnostics.
Two qio variants run: the defaults (``qio``) and the trust region (``qio_tr``, see ``QIO_VARIANTS``).

``--heat-sink``: the ``heat_sink`` sample twin (``fmus/heat_sink.toml``: 9 parameters, 786,432 designs,
objective cost + 10 mass + 0.002 fan energy, constraint T_junction_max <= 378.15 K), built from source and
simulated in-process with fmpy exactly as ``benchmarks/heat_sink_optimum.py`` does (one ``doStep`` over the
profile; the design space is the host's, from ``Twin.dimension``). Target: a feasible design within 1 % of
the exhaustive optimum in ``benchmarks/heat_sink_optimum.json`` (8 designs qualify; the script checks them on
this build). The GA is tuned over populations 4/8/16 x mutation rates default (1/9)/0.2/0.3; ``de`` with
its defaults; ``random`` runs simulated up to the baseline budget and its hit time beyond is obtained by
replaying its ask sequence (which does not depend on what it is told) until it asks one of the 8 designs.

Run: OMP_NUM_THREADS=1 /work/venv/bin/python benchmarks/qio_vs_baselines.py --seeds 10 --workers 2
     OMP_NUM_THREADS=1 /work/venv/bin/python benchmarks/qio_vs_baselines.py --seeds 10 --workers 2 --heat-sink
Development: ``--only M ...`` runs a subset of the methods (heat_sink: medians and convergence only, no
ratios), ``--qio-variant NAME='{"option": value}'`` adds a qio configuration, ``--seed-offset 10`` (heat_sink)
runs held-out seeds 10.. instead of the benchmark's 0..
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import dimod
import numpy as np
from dwave.samplers import TreeDecompositionSolver

from fmi_optimizer.method import Method, Problem
from fmi_optimizer.records import Evaluation
from fmi_optimizer.space import Boolean, DesignSpace

BASELINE_BUDGET = {"bocs10": 1024, "qubo40": 5000}
#: qio's defaults and the trust-region variant (fit on the 60 designs nearest the incumbent, pull towards it)
QIO_VARIANTS: dict[str, dict[str, Any]] = {"qio": {}, "qio_tr": {"local_fit": 60, "trust_pull": 1.0}}


@dataclass(frozen=True)
class Instance:
    name: str
    n: int
    lin: np.ndarray
    quad: np.ndarray  # full matrix, f = lin.x + x'Qx
    fstar: float

    def f(self, x: np.ndarray) -> float:
        return float(self.lin @ x + x @ self.quad @ x)


def bocs10(seed: int) -> Instance:
    n = 10
    rng = np.random.default_rng(1000 + seed)
    i = np.arange(1, n + 1)
    q = rng.standard_normal((n, n)) * np.exp(-((i[:, None] - i[None, :]) ** 2) / 1.0)
    lin = np.full(n, 1e-4)
    allx = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
    fstar = float((allx @ lin + np.einsum("ri,ij,rj->r", allx, q, allx)).min())
    return Instance("bocs10", n, lin, q, fstar)


def qubo(n: int, seed: int, density: float = 0.08) -> Instance:
    rng = np.random.default_rng(2000 + seed)
    mask = np.triu(rng.random((n, n)) < density, 1)
    q = np.where(mask, rng.standard_normal((n, n)), 0.0)
    lin = rng.standard_normal(n)
    r, c = np.nonzero(q)
    bqm = dimod.BinaryQuadraticModel.from_numpy_vectors(lin, (r, c, q[r, c]), 0.0, dimod.BINARY)
    fstar = float(TreeDecompositionSolver().sample(bqm).first.energy)
    return Instance(f"qubo{n}", n, lin, q, fstar)


def space_of(n: int) -> DesignSpace:
    return DesignSpace([Boolean(f"x{j}") for j in range(n)])


def run_to_target(method: Method, inst: Instance, budget: int) -> dict[str, Any]:
    """Ask/tell with batch 1 until the target or ``budget`` unique evaluations; returns the trace."""
    target = inst.fstar + 0.01 * abs(inst.fstar)
    cache: dict[tuple[int, ...], float] = {}
    trace: list[float] = []
    stalls = 0
    t0 = time.perf_counter()
    while len(cache) < budget and not method.finished:
        cands = method.ask(1)
        if not cands:
            stalls += 1
            if stalls > 100:
                break
            continue
        evs = []
        for c in cands:
            x = np.array([int(c.values[f"x{j}"]) for j in range(inst.n)])
            key = tuple(x.tolist())
            cached = key in cache
            if not cached:
                cache[key] = inst.f(x)
                trace.append(cache[key])
            evs.append(Evaluation(c, "ok", objective=cache[key], cached=cached))
        method.tell(evs)
        if trace and min(trace) <= target:
            break
    reached = bool(trace) and min(trace) <= target
    hit = next((i + 1 for i, y in enumerate(trace) if y <= target), None)
    return {"evals": hit if reached else None, "unique": len(cache), "seconds": time.perf_counter() - t0,
            "best_gap": (min(trace) - inst.fstar) / abs(inst.fstar) if trace else None,
            "trace": trace, "diagnostics": _diag(method)}


def _diag(method: Method) -> dict[str, Any]:
    d = method.diagnostics()
    if not method.name.startswith("qio"):
        return {}
    return {"duplicates": d["duplicates"], "timing": d["timing"]}


def make(name: str, n: int, budget: int, seed: int) -> Method:
    from fmio_baselines import DifferentialEvolution, GeneticAlgorithm, RandomSearch
    from fmio_qio import QioMethod

    problem = Problem(space_of(n), budget_evaluations=budget)
    if name in QIO_VARIANTS:
        return QioMethod(problem, QIO_VARIANTS[name], seed=seed)
    if name.startswith("ga"):
        return GeneticAlgorithm(problem, {"population": int(name[3:])}, seed=seed)
    if name == "de":
        return DifferentialEvolution(problem, {}, seed=seed)
    return RandomSearch(problem, {}, seed=seed)


def job(args: tuple[str, str, int, int]) -> dict[str, Any]:
    problem, method, seed, budget = args
    inst = bocs10(seed) if problem == "bocs10" else qubo(40, seed)
    out = run_to_target(make(method, inst.n, budget, seed), inst, budget)
    out.update(problem=problem, method=method, seed=seed, budget=budget)
    return out


def median_evals(rows: list[dict[str, Any]]) -> float:
    """Median with not-reached runs as +inf (so a median over mostly failed runs is inf)."""
    vals = sorted(math.inf if r["evals"] is None else r["evals"] for r in rows)
    return float(np.median(vals)) if vals else math.nan


def convergence_table(rows: list[dict[str, Any]], fstar_of: dict[tuple[str, int], float],
                      checkpoints: tuple[int, ...] = (10, 20, 50, 100, 200, 400, 1000)) -> list[str]:
    """Median relative gap of the best-so-far to the optimum after k unique evaluations (runs that stopped at
    the target keep their final gap; "-" beyond the method's budget), one line per method."""
    lines = ["  method   " + "".join(f"{k:>9d}" for k in checkpoints)]
    for m in dict.fromkeys(r["method"] for r in rows):
        cells = []
        for k in checkpoints:
            gaps = []
            for r in rows:
                if r["method"] != m or not r["trace"] or k > r["budget"]:
                    continue  # beyond the method's budget: no value
                fstar = fstar_of[(r["problem"], r["seed"])]
                gaps.append((min(r["trace"][:k]) - fstar) / abs(fstar))
            cells.append(f"{np.median(gaps):9.4f}" if gaps else f"{'-':>9s}")
        lines.append(f"  {m:8s} " + "".join(cells))
    return lines


def speed_at_60_bits(seed: int = 0, points: int = 120, batch: int = 1) -> dict[str, float]:
    """Run qio on a 60-bit sparse QUBO for ``points`` proposals; seconds of fit + anneal per proposed point
    (qio's own wall-clock record) and the CPU seconds of ``ask`` per proposed point in the model phase (less
    sensitive to other processes on the machine; run with OMP_NUM_THREADS=1 so CPU = one core)."""
    from fmio_qio import QioMethod

    inst = qubo(60, seed, density=0.05)
    m = QioMethod(Problem(space_of(60), batch_size=batch), {}, seed=seed)
    told, cpu, model_points = 0, [], 0
    while told < points:
        c0 = time.process_time()
        cands = m.ask(batch)
        dc = time.process_time() - c0
        if any(c.tag != "initial" for c in cands):
            cpu.append(dc / len(cands))
            model_points += len(cands)
        m.tell([Evaluation(c, "ok", objective=inst.f(np.array([int(c.values[f"x{j}"]) for j in range(60)])))
                for c in cands])
        told += len(cands)
    d = m.diagnostics()
    per = [it["seconds_per_proposed_point"] for it in d["iterations"]]
    return {"batch": batch, "points": told, "model_points": model_points,
            "mean_s_per_point": d["timing"]["seconds_per_proposed_point"],
            "last20_mean_s_per_point": float(np.mean(per[-20:])), "max_s_per_point": float(np.max(per)),
            "cpu_s_per_point_mean": float(np.mean(cpu)), "cpu_s_per_point_last20": float(np.mean(cpu[-20:])),
            "fit_s": d["timing"]["fit_seconds"], "anneal_s": d["timing"]["anneal_seconds"]}


# -- heat_sink twin ---------------------------------------------------------------------------------
HEAT_SINK_BUDGET = {"qio": 300, "baseline": 5000}
GA_GRID = [(pop, rate) for pop in (4, 8, 16) for rate in (None, 0.2, 0.3)]  # population, mutation rate
_twin: dict[str, Any] = {}


def _heat_sink_worker(unzip_dir: str) -> None:
    """Process initializer: one fmpy instance of the compiled heat_sink FMU (as benchmarks/heat_sink_optimum.py)."""
    import heat_sink_optimum as hso

    study = hso.load_study()
    hso._init_worker(unzip_dir, study)
    _twin.update(hso=hso, study=study)


def heat_sink_space() -> DesignSpace:
    """The design space of ``fmus/heat_sink.toml`` exactly as the host builds it (twin.dimension per parameter)."""
    from fmi_optimizer.fmu.twin import Twin

    if "space" not in _twin:
        twin = Twin.open(_twin["fmu"])
        _twin["space"] = DesignSpace([twin.dimension(n, **spec) for n, spec in _twin["study"]["parameters"].items()])
    space: DesignSpace = _twin["space"]
    return space


def heat_sink_evaluate(values: dict[str, Any]) -> tuple[float | None, float | None]:
    """(objective, constraint value T_junction_max - 378.15) of one design, as the study file defines them;
    (None, None) when the FMU reports an error."""
    hso, study = _twin["hso"], _twin["study"]
    kpis = hso.simulate(dict(values))
    if kpis is None:
        return None, None
    total, _ = hso.score(study, kpis)
    op, limit = study["constraints"]["t_junction_max"].split()
    assert op == "<="
    return float(total), float(kpis["t_junction_max"]) - float(limit)


def make_heat_sink(method: str, budget: int, seed: int) -> Method:
    from fmio_baselines import DifferentialEvolution, GeneticAlgorithm, RandomSearch
    from fmio_qio import QioMethod

    problem = Problem(heat_sink_space(), constraint_names=("t_junction_max",), budget_evaluations=budget)
    if method in QIO_VARIANTS:
        return QioMethod(problem, QIO_VARIANTS[method], seed=seed)
    if method.startswith("ga_"):
        _, pop, rate = method.split("_")
        opts: dict[str, Any] = {"population": int(pop)}
        if rate != "default":
            opts["mutation_rate"] = float(rate)
        return GeneticAlgorithm(problem, opts, seed=seed)
    if method == "de":
        return DifferentialEvolution(problem, {}, seed=seed)
    return RandomSearch(problem, {"initial": 1024}, seed=seed)  # fixed, so the replay asks the same sequence


def ga_name(pop: int, rate: float | None) -> str:
    return f"ga_{pop}_{'default' if rate is None else rate}"


def heat_sink_job(args: tuple[str, int, int, str, float]) -> dict[str, Any]:
    """One run on the twin, ask/tell with batch 1, until a feasible design within 1 % of the optimum or
    ``budget`` unique evaluations; the trace holds (objective, feasible) per unique evaluation."""
    method, seed, budget, fmu, target = args
    _twin["fmu"] = fmu
    m = make_heat_sink(method, budget, seed)
    cache: dict[tuple[Any, ...], tuple[float | None, float | None]] = {}
    trace: list[tuple[float | None, bool]] = []
    t0 = time.perf_counter()
    twin_s = 0.0
    hit = None
    stalls = 0
    while len(cache) < budget and not m.finished and hit is None:
        cands = m.ask(1)
        if not cands:
            stalls += 1
            if stalls > 100:
                break
            continue
        evs = []
        for c in cands:
            key = tuple(sorted(c.values.items()))
            cached = key in cache
            if not cached:
                t1 = time.perf_counter()
                cache[key] = heat_sink_evaluate(c.values)
                twin_s += time.perf_counter() - t1
                obj, con = cache[key]
                trace.append((obj, obj is not None and con is not None and con <= 0))
                if trace[-1][1] and obj is not None and obj <= target:
                    hit = len(trace)
            obj, con = cache[key]
            evs.append(Evaluation(c, "ok", objective=obj, constraints=(con,), cached=cached)
                       if obj is not None and con is not None else Evaluation(c, "failed", cached=cached))
        m.tell(evs)
    best = m.recommend()
    best_eval = cache.get(tuple(sorted(best.values.items()))) if best is not None else None
    out = {"method": method, "seed": seed, "budget": budget, "evals": hit, "trace": trace,
           "seconds": time.perf_counter() - t0, "twin_seconds": twin_s,
           "best_feasible": bool(best_eval and best_eval[1] is not None and best_eval[1] <= 0),
           "infeasible_share": sum(1 for _, f in trace if not f) / max(len(trace), 1)}
    if method in QIO_VARIANTS:
        d = m.diagnostics()
        out["diagnostics"] = {"duplicates": d["duplicates"], "timing": d["timing"]}
    return out


def random_hit_time(args: tuple[int, frozenset[tuple[Any, ...]], int, str]) -> int | None:
    """Evaluations the ``random`` plugin needs to ask one of ``targets`` (the designs within 1 % of the
    optimum, all feasible, known from the exhaustive enumeration): its asks do not depend on what it is told,
    so its ask sequence is replayed without simulating (checked against the simulated runs' prefix)."""
    seed, targets, budget, fmu = args
    _twin["fmu"] = fmu
    m = make_heat_sink("random", budget, seed)
    for i in range(budget):
        c = m.ask(1)
        if not c:
            return None
        if tuple(sorted(c[0].values.items())) in targets:
            return i + 1
    return None


def heat_sink(seeds: int, workers: int, out: str, plot_dir: str | None, only: list[str] | None = None,
              seed_offset: int = 0) -> None:
    """qio vs the tuned ga, de and random on the heat_sink twin (true optimum from the exhaustive search)."""
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "benchmarks"))
    sys.path.insert(0, str(root / "fmus"))
    import build

    optimum = json.loads((root / "benchmarks" / "heat_sink_optimum.json").read_text())
    fstar = float(optimum["optimum"]["objective"])
    target = fstar + 0.01 * abs(fstar)
    within = [t for t in optimum["top10"] if t["objective"] <= target]
    if len(within) >= len(optimum["top10"]):
        raise SystemExit("every stored top-10 design is within 1 %: the target set is incomplete")
    build_dir = Path(tempfile.mkdtemp(prefix="qio-heat-sink-"))
    subprocess.run([sys.executable, str(root / "fmus" / "build.py"), "--out", str(build_dir), "heat_sink"], check=True)
    fmu = str(build_dir / "heat_sink.fmu")
    unzip = str(build.compile_fmu(Path(fmu), build_dir / "unzipped"))
    _heat_sink_worker(unzip)
    _twin["fmu"] = fmu
    space = heat_sink_space()
    snapped = [space.from_indices(space.to_indices(t["values"])) for t in within]  # grid values exactly
    targets = {tuple(sorted(v.items())) for v in snapped}
    assert len(targets) == len(within)
    for t, v in zip(within, snapped, strict=True):  # the stored optimum must hold for this build of the twin
        obj, con = heat_sink_evaluate(v)
        assert obj is not None and con is not None and con <= 0 and abs(obj - t["objective"]) < 1e-6, (t, obj, con)
    budgets = {**{q: HEAT_SINK_BUDGET["qio"] for q in QIO_VARIANTS}, "de": HEAT_SINK_BUDGET["baseline"],
               "random": HEAT_SINK_BUDGET["baseline"]}
    budgets.update({ga_name(p, r): HEAT_SINK_BUDGET["baseline"] for p, r in GA_GRID})
    if only:  # development runs: a subset of the methods (no ratios, no plot)
        budgets = {m: b for m, b in budgets.items() if m in only}
    jobs = [(m, s, b, fmu, target) for m, b in budgets.items() for s in range(seed_offset, seed_offset + seeds)]
    t0 = time.perf_counter()
    space_size = int(optimum["configurations"])
    with ProcessPoolExecutor(workers, initializer=_heat_sink_worker, initargs=(unzip,)) as pool:
        rows = list(pool.map(heat_sink_job, jobs))
        wall = time.perf_counter() - t0
        random_hits = [] if only else list(pool.map(random_hit_time, [(s, frozenset(targets), space_size, fmu)
                                                                      for s in range(seeds)]))
    for r in rows:  # the replay must match the simulated random runs
        if r["method"] == "random":
            rh = random_hits[r["seed"]]
            assert (r["evals"] is None and (rh is None or rh > r["budget"])) or r["evals"] == rh, (r["evals"], rh)
    k = len(targets)
    med = {m: median_evals([r for r in rows if r["method"] == m]) for m in budgets}
    if only:
        for m in budgets:
            mine = [r for r in rows if r["method"] == m]
            print(f"  {m:16s} median {med[m]:>7}  reached {sum(r['evals'] is not None for r in mine)}/{seeds}  "
                  f"per seed {[r['evals'] for r in mine]}  infeasible share "
                  f"{np.mean([r['infeasible_share'] for r in mine]):.2f}  wall {time.perf_counter() - t0:.0f} s")
        print("\n".join(heat_sink_convergence(rows, fstar, list(budgets))))
        if plot_dir:
            plot_convergence({m: [heat_sink_gaps(r, fstar) for r in rows if r["method"] == m] for m in budgets},
                             f"heat_sink twin ({space_size:,} designs; optimum {fstar})",
                             Path(plot_dir) / "qio_heat_sink.png", seeds)
        with open(out, "w") as fh:
            json.dump({"optimum": fstar, "target": target, "median_evals": med, "rows": rows, "wall_seconds": wall},
                      fh, default=float)
        return
    ga_best = min((m for m in budgets if m.startswith("ga")), key=lambda m: med[m])
    med_random = float(np.median([math.inf if h is None else h for h in random_hits]))
    # uniform sampling without replacement, k hits among N: P(T > t) = C(N - t, k) / C(N, k)
    exp_random = (space_size + 1) / (k + 1)
    median_random_theory = space_size * (1 - 0.5 ** (1 / k))
    print(f"\n== heat_sink: optimum {fstar} (exhaustive), target <= {target:.6f}: {k} designs of {space_size}; "
          f"{seeds} seeds ==")
    for m in budgets:
        mine = [r for r in rows if r["method"] == m]
        print(f"  {m:16s} budget {budgets[m]:5d}  median {med[m]:>7}  reached {sum(r['evals'] is not None for r in mine)}"
              f"/{seeds}  per seed {[r['evals'] for r in mine]}  infeasible share "
              f"{np.mean([r['infeasible_share'] for r in mine]):.2f}  all best feasible "
              f"{all(r['best_feasible'] for r in mine)}")
    print(f"  random, ask sequence replayed to the first target design: per seed {random_hits}, median {med_random}"
          f" (theory for uniform sampling without replacement: median {median_random_theory:.0f}, mean "
          f"{exp_random:.0f})")
    twin_ms = 1000 * sum(r["twin_seconds"] for r in rows) / max(sum(len(r["trace"]) for r in rows), 1)
    for qv in QIO_VARIANTS:
        q = med[qv]
        print(f"  {qv} ratios (baseline median / {qv} median): tuned GA ({ga_best}) {med[ga_best] / q:.2f}x, DE "
              f"{med['de'] / q:.2f}x, random (replayed) {med_random / q:.1f}x")
        per_point = [r["diagnostics"]["timing"]["seconds_per_proposed_point"] for r in rows if r["method"] == qv]
        print(f"  {qv} fit + anneal per proposed point: median over runs {np.median(per_point) * 1000:.0f} ms "
              f"(max {max(per_point) * 1000:.0f} ms); twin {twin_ms:.2f} ms per evaluation")
    print(f"  wall {wall:.0f} s")
    convergence = heat_sink_convergence(rows, fstar, [*QIO_VARIANTS, ga_best, "de", "random"])
    print("\n".join(convergence))
    if plot_dir:
        plot_convergence({m: [heat_sink_gaps(r, fstar) for r in rows if r["method"] == m]
                          for m in [*QIO_VARIANTS, ga_best, "de", "random"]},
                         f"heat_sink twin ({space_size:,} designs; optimum {fstar})", Path(plot_dir) / "qio_heat_sink.png",
                         seeds, extra={"random (replayed hit times)": random_hits})
    with open(out, "w") as fh:
        json.dump({"optimum": fstar, "target": target, "targets": k, "median_evals": med, "ga_tuned": ga_best,
                   "random_hits_replayed": random_hits, "random_theory": {"median": median_random_theory,
                                                                          "mean": exp_random},
                   "rows": rows, "wall_seconds": wall}, fh, default=float)


def heat_sink_gaps(row: dict[str, Any], fstar: float) -> list[float]:
    """Relative gap of the best feasible objective so far after each unique evaluation (inf before any)."""
    best, out = math.inf, []
    for y, feasible in row["trace"]:
        if feasible and y is not None:
            best = min(best, y)
        out.append((best - fstar) / abs(fstar))
    return out


def heat_sink_convergence(rows: list[dict[str, Any]], fstar: float, methods: list[str],
                          checkpoints: tuple[int, ...] = (20, 50, 100, 150, 300, 1000, 5000)) -> list[str]:
    lines = ["convergence on heat_sink: median relative gap of the best feasible so far after k evaluations",
             "  method           " + "".join(f"{k:>9d}" for k in checkpoints)]
    for m in methods:
        cells = []
        for k in checkpoints:
            gaps = [g[min(k, len(g)) - 1] for r in rows if r["method"] == m and k <= r["budget"]
                    for g in [heat_sink_gaps(r, fstar)] if g]  # a run that stopped at the target keeps its gap
            cells.append(f"{np.median(gaps):9.4f}" if gaps else f"{'-':>9s}")
        lines.append(f"  {m:16s} " + "".join(cells))
    return lines


def plot_convergence(gaps: dict[str, list[list[float]]], title: str, path: Any, seeds: int,
                     extra: dict[str, list[int | None]] | None = None) -> None:
    """Median (line) and interquartile band (shade) of the relative gap of the best-so-far to the optimum
    against unique evaluations, log-log; runs that stopped at the target keep their final gap; the 1 % target
    as a dashed line. ``extra``: hit times known without traces, drawn as ticks on the 1 % line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    floor = 1e-4  # gap 0 (optimum found) drawn at the floor of the log axis
    for name, runs in gaps.items():
        runs = [g for g in runs if g]
        if not runs:
            continue
        n = max(len(g) for g in runs)
        arr = np.array([g + [g[-1]] * (n - len(g)) for g in runs])  # stopped at the target: keep the final gap
        arr = np.clip(arr, floor, None)
        k = np.arange(1, n + 1)
        med = np.median(arr, axis=0)
        with np.errstate(invalid="ignore"):  # inf (no feasible point yet) in the quartiles
            lo, hi = np.percentile(arr, 25, axis=0), np.percentile(arr, 75, axis=0)
        finite = np.isfinite(med)
        line = ax.plot(k[finite], med[finite], label=f"{name} (median of {len(runs)})")[0]
        band = np.isfinite(lo) & np.isfinite(hi)
        ax.fill_between(k[band], lo[band], hi[band], color=line.get_color(), alpha=0.15)
    for name, hits in (extra or {}).items():
        xs = [h for h in hits if h is not None]
        ax.plot(xs, [0.01] * len(xs), "|", markersize=14, color="k", label=f"{name}: median {np.median(xs):.0f}")
    ax.axhline(0.01, ls="--", color="grey", lw=1, label="target: within 1 %")
    ax.set(xscale="log", yscale="log", xlabel="unique evaluations",
           ylabel=f"relative gap of best (feasible) so far\n(0 drawn at {floor:g}; band: quartiles)",
           title=f"{title}, {seeds} seeds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="/tmp/qio_bench.json")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--speed-only", action="store_true")
    ap.add_argument("--heat-sink", action="store_true", help="only the heat_sink twin comparison")
    ap.add_argument("--qio-budget", type=int, default=HEAT_SINK_BUDGET["qio"], help="heat_sink: qio's budget")
    ap.add_argument("--baseline-budget", type=int, default=HEAT_SINK_BUDGET["baseline"],
                    help="heat_sink: the baselines' budget")
    ap.add_argument("--seed-offset", type=int, default=0, help="heat_sink development runs: first seed")
    ap.add_argument("--only", nargs="*", help="only these methods (heat_sink: no ratios; reuse earlier baseline results)")
    ap.add_argument("--qio-variant", action="append", default=[], metavar="NAME=JSON",
                    help="add a qio variant with these options (development runs)")
    ap.add_argument("--plots", default="docs/bench", help="directory for the convergence PNGs ('' for none)")
    args = ap.parse_args()
    for v in args.qio_variant:
        name, opts = v.split("=", 1)
        QIO_VARIANTS[name] = json.loads(opts)
    if args.heat_sink:
        HEAT_SINK_BUDGET.update(qio=args.qio_budget, baseline=args.baseline_budget)
        heat_sink(args.seeds, args.workers, args.out, args.plots or None, args.only, args.seed_offset)
        return
    if args.speed_only:
        for b in (1, 4):
            print(json.dumps(speed_at_60_bits(0, 120, b)))
        return
    budgets = {"bocs10": 300, "qubo40": 400}  # qio's budget; the cheap baselines get BASELINE_BUDGET
    methods = [*QIO_VARIANTS, "ga_8", "ga_16", "ga_32", "de", "random"]
    if args.only:  # a subset of the methods (the ratios need qio, a ga, de and random among them)
        methods = [m for m in methods if m in args.only]
    jobs = [(p, m, s, budgets[p] if m in QIO_VARIANTS else BASELINE_BUDGET[p])
            for p in budgets for m in methods for s in range(args.seeds)]
    jobs.sort(key=lambda j: j[1] not in QIO_VARIANTS)  # the slow ones first
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        rows = list(pool.map(job, jobs))
    wall = time.perf_counter() - t0
    speed = [] if args.skip_speed else [speed_at_60_bits(0, 120, 1), speed_at_60_bits(0, 120, 4)]
    summary: dict[str, Any] = {"seeds": args.seeds, "wall_seconds": wall, "problems": {}, "speed_60_bits": speed}
    for p in budgets:
        res = {m: [r for r in rows if r["problem"] == p and r["method"] == m] for m in methods}
        med = {m: median_evals(v) for m, v in res.items()}
        reached = {m: sum(r["evals"] is not None for r in v) for m, v in res.items()}
        ga_best = min((m for m in methods if m.startswith("ga")), key=lambda m: med[m])
        med_of = {m: med.get(m, math.nan) for m in ("qio", "de", "random")}  # --only may leave some out
        q = med_of["qio"]
        qio_rows = res.get("qio", [])
        summary["problems"][p] = {
            "budget": budgets[p], "qio_variants": QIO_VARIANTS, "median_evals": med, "reached": reached, "ga_tuned": ga_best,
            "ratio_vs_ga_tuned": med[ga_best] / q, "ratio_vs_de": med_of["de"] / q, "ratio_vs_random": med_of["random"] / q,
            "qio_seconds_median": float(np.median([r["seconds"] for r in qio_rows])) if qio_rows else None,
            "qio_duplicates": [r["diagnostics"].get("duplicates") for r in qio_rows],
            "per_seed": {m: [r["evals"] for r in v] for m, v in res.items()},
        }
        print(f"\n== {p} (budget: qio {budgets[p]}, baselines {BASELINE_BUDGET[p]}), {args.seeds} seeds ==")
        for m in methods:
            print(f"  {m:7s} median evals to 1%: {med[m]:>7}  reached {reached[m]}/{args.seeds}  per seed "
                  f"{[r['evals'] for r in res[m]]}")
        for qv in [q for q in QIO_VARIANTS if q in methods]:
            print(f"  {qv} ratios (baseline median / {qv} median): tuned GA ({ga_best}) {med[ga_best] / med[qv]:.2f}x,"
                  f" DE {med_of['de'] / med[qv]:.2f}x, random {med_of['random'] / med[qv]:.2f}x")
    fstar_of = {(p, s): (bocs10(s) if p == "bocs10" else qubo(40, s)).fstar for p in budgets for s in range(args.seeds)}
    for p in budgets:
        print(f"\nconvergence on {p}: median relative gap to the optimum after k unique evaluations")
        print("\n".join(convergence_table([r for r in rows if r["problem"] == p], fstar_of)))
    if args.plots:
        from pathlib import Path

        for p in budgets:
            runs = {m: [[(min(r["trace"][:i + 1]) - fstar_of[(p, r["seed"])]) / abs(fstar_of[(p, r["seed"])])
                         for i in range(len(r["trace"]))] for r in rows if r["problem"] == p and r["method"] == m]
                    for m in methods if not m.startswith("ga") or m == summary["problems"][p]["ga_tuned"]}
            plot_convergence(runs, f"{p} (black box)", Path(args.plots) / f"qio_{p}.png", args.seeds)
    for s in speed:
        print(f"\nspeed at 60 bits, batch {s['batch']}, {s['points']} points: fit + anneal wall "
              f"{s['mean_s_per_point'] * 1000:.1f} ms per proposed point (last 20 iterations "
              f"{s['last20_mean_s_per_point'] * 1000:.1f} ms, max {s['max_s_per_point'] * 1000:.1f} ms); "
              f"CPU of ask() {s['cpu_s_per_point_mean'] * 1000:.1f} ms per point (last 20: "
              f"{s['cpu_s_per_point_last20'] * 1000:.1f} ms)")
    print(f"\nwall time {wall:.0f} s; json -> {args.out}")
    with open(args.out, "w") as fh:
        json.dump({"summary": summary, "rows": rows}, fh, default=float)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
