"""The suite's one runner: run methods on a family's problems for one half, resumable, and report.

    python -m benchmarks.suite run --family continuous --half dev --reps 3 --out dev_c.json
    python -m benchmarks.suite run --family discrete --half heldout --reps 5 --methods qio,ga8,random --out h.json
    python -m benchmarks.suite report --family continuous dev_c.json [more.json ...] --md docs/bench/x.md
    python -m benchmarks.suite report --family continuous --same-seeds bayes.json botorch.json  # same seeds for all
    python -m benchmarks.suite ablate --family continuous defaults.json variant.json [more.json ...]

Every finished run is written to ``--out`` at once (JSON, keyed method|problem|rep); a rerun with the same
file skips what is there, so a cut run resumes. Runs go repetition-major (every problem and method for rep 0
first), so a run cut short still covers every problem. Methods run through their ask/tell interfaces: the
product's ``Method`` (bayes, qio, the baselines) directly, the peers through the adapters of
``benchmarks/bayes_vs_peers.py``. CPU seconds are ``time.process_time()`` of the method's ask + tell
(the function's own time excluded); BLAS/OpenMP are held to one thread.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
             "TF_NUM_INTEROP_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks.suite import continuous, discrete  # noqa: E402

CONTINUOUS_METHODS = ("bayes", "optuna_gp", "optuna_tpe_mv", "skopt_gp", "random")
DISCRETE_METHODS = ("qio", "ga4", "ga8", "ga16", "ga32", "optuna_tpe_mv", "random")


# -- continuous -----------------------------------------------------------------------------------------------
def timed_step(runner: Any, task: continuous.Task,
               rng: np.random.Generator) -> tuple[np.ndarray, float, tuple[float, ...], float]:
    """One ask, observation and tell; returns the point, what was told, and the CPU seconds of the ask and the
    tell (the function's own time excluded)."""
    t0 = time.process_time()
    x = np.asarray(runner.ask(), dtype=float)
    t1 = time.process_time()
    y, cons = task.observe(x, rng)
    t2 = time.process_time()
    runner.tell(x, y, cons)
    return x, y, cons, (t1 - t0) + (time.process_time() - t2)


def run_continuous(method: str, task: continuous.Task, seed: int, options: dict[str, Any]) -> dict[str, Any]:
    """One run to the budget. Regret: the true (noise-free) objective at the evaluated point with the lowest
    *observed* objective among the feasible ones, minus the optimum — on noise-free problems the best value found."""
    from benchmarks import bayes_vs_peers as bvp

    bvp.BAYES_OPTIONS.clear()
    bvp.BAYES_OPTIONS.update(options)
    runner = bvp.RUNNERS[method](task, seed)  # type: ignore[arg-type]
    rng = np.random.default_rng(100_003 + seed)
    obs, true, feas, cpu = [], [], [], []
    for _ in range(task.budget):
        x, y, cons, seconds = timed_step(runner, task, rng)
        cpu.append(seconds)
        obs.append(y)
        true.append(task.f(x))
        feas.append(all(c <= 0 for c in cons))
    ok = [i for i in range(len(obs)) if feas[i]]
    pick = min(ok, key=lambda i: obs[i]) if ok else None
    mb = runner.model_based_from
    return {"regret": (true[pick] - task.optimum) if pick is not None else None, "feasible_found": bool(ok),
            "best_true_regret": min((true[i] for i in ok), default=math.inf) - task.optimum,
            "cpu_per_proposal": float(np.mean(cpu)), "cpu_first_model": cpu[mb] if mb < len(cpu) else None,
            "cpu_at_50_60": float(np.mean(cpu[50:60])) if len(cpu) >= 60 else None,
            "cpu_max": float(np.max(cpu)), "budget": task.budget}


# -- discrete -------------------------------------------------------------------------------------------------
class OptunaMixed:
    """Optuna TPE (multivariate, group) on a mixed space through ask/tell, shaped like a product Method."""

    name = "optuna_tpe_mv"
    finished = False

    def __init__(self, space: Any, n_constraints: int, seed: int):
        import optuna

        from fmi_optimizer.records import Candidate

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.filterwarnings("ignore", module="optuna")  # group= is experimental, constraints_func deprecated
        cf = (lambda t: t.user_attrs["constraints"]) if n_constraints else None
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constraints_func=cf)
        self.study = optuna.create_study(sampler=sampler)
        self.dists: dict[str, Any] = {}
        self.graded: dict[str, Any] = {}  # thresholded continuous parameters: Optuna sees the level index
        for d in space.dimensions:
            if d.kind == "integer":
                self.dists[d.name] = optuna.distributions.IntDistribution(d.lo, d.hi)
            elif d.kind == "boolean":
                self.dists[d.name] = optuna.distributions.CategoricalDistribution([False, True])
            elif d.kind == "categorical":
                self.dists[d.name] = optuna.distributions.CategoricalDistribution(list(d.items))
            elif d.levels is not None:
                self.dists[d.name] = optuna.distributions.IntDistribution(0, d.levels - 1)
                self.graded[d.name] = d
            else:
                self.dists[d.name] = optuna.distributions.FloatDistribution(d.lo, d.hi, log=d.log)
        self._candidate = Candidate
        self._trials: dict[int, Any] = {}
        self.n_constraints = n_constraints

    def ask(self, n: int) -> list[Any]:
        t = self.study.ask(self.dists)
        c = self._candidate(values={k: self.graded[k].value_at(v) if k in self.graded else v
                                    for k, v in t.params.items()})
        self._trials[id(c)] = t
        return [c]

    def tell(self, evs: list[Any]) -> None:
        for e in evs:
            t = self._trials.pop(id(e.candidate))
            if e.status != "ok":
                self.study.tell(t, state=__import__("optuna").trial.TrialState.FAIL)
                continue
            if self.n_constraints:
                t.set_user_attr("constraints", [float(c) for c in e.constraints])
            self.study.tell(t, e.objective)


def make_discrete(method: str, prob: discrete.DiscreteProblem, seed: int, options: dict[str, Any]) -> Any:
    from fmio_baselines import GeneticAlgorithm, RandomSearch
    from fmio_qio import QioMethod

    from fmi_optimizer.method import Problem

    budget = discrete.BUDGET["ga" if method.startswith("ga") else method]
    problem = Problem(prob.space, constraint_names=tuple(f"c{j}" for j in range(prob.n_constraints)),
                      budget_evaluations=budget)
    if method == "qio":
        return QioMethod(problem, dict(options), seed=seed), budget
    if method.startswith("ga"):
        return GeneticAlgorithm(problem, {"population": int(method[2:])}, seed=seed), budget
    if method == "random":
        return RandomSearch(problem, {}, seed=seed), budget
    if method == "optuna_tpe_mv":
        return OptunaMixed(prob.space, prob.n_constraints, seed), budget
    raise SystemExit(f"method {method!r}: use one of {', '.join(DISCRETE_METHODS)}")


Answer = tuple[float | None, tuple[float, ...]]  # objective (None: failed), constraint values


def evaluate_cached(prob: discrete.DiscreteProblem, cache: dict[tuple[Any, ...], Answer],
                    cands: list[Any]) -> tuple[list[Any], list[tuple[int, float | None, tuple[float, ...]]]]:
    """The evaluations to tell for ``cands``: a design asked before gets its cached answer (``cached=True``, it
    does not count); also, for each new design, the number of unique evaluations once it was made and its
    answer."""
    from fmi_optimizer.records import Evaluation

    evs, new = [], []
    for c in cands:
        key = tuple(sorted((k, str(v)) for k, v in c.values.items()))
        cached = key in cache
        if not cached:
            cache[key] = prob.evaluate(c.values)
            new.append((len(cache), *cache[key]))
        obj, cons = cache[key]
        evs.append(Evaluation(c, "ok", objective=obj, constraints=cons, cached=cached) if obj is not None
                   else Evaluation(c, "failed", cached=cached))
    return evs, new


def run_discrete(method: str, prob: discrete.DiscreteProblem, seed: int, options: dict[str, Any]) -> dict[str, Any]:
    """Ask/tell with batch 1 until a feasible design within 1 % of the optimum or the budget of unique
    evaluations; a re-asked design gets its cached answer and does not count (as in qio_vs_baselines.py)."""
    m, budget = make_discrete(method, prob, seed, options)
    cache: dict[tuple[Any, ...], Answer] = {}
    hit, asks, cpu, stalls, best = None, 0, 0.0, 0, math.inf
    while len(cache) < budget and not m.finished and hit is None and asks < 20 * budget:
        t0 = time.process_time()
        cands = m.ask(1)
        cpu += time.process_time() - t0
        asks += 1
        if not cands:
            stalls += 1
            if stalls > 100:
                break
            continue
        evs, new = evaluate_cached(prob, cache, cands)
        for count, obj, cons in new:
            if obj is not None and all(v <= 0 for v in cons):
                best = min(best, obj)
                if obj <= prob.target and hit is None:
                    hit = count
        t0 = time.process_time()
        m.tell(evs)
        cpu += time.process_time() - t0
    return {"evals": hit, "unique": len(cache), "budget": budget, "asks": asks,
            "best_gap": (best - prob.fstar) / abs(prob.fstar) if math.isfinite(best) else None,
            "cpu_per_proposal": cpu / max(asks, 1)}


# -- driver ---------------------------------------------------------------------------------------------------
def code_version() -> str:
    """The commit the runner's code comes from, ``-dirty`` when tracked files outside ``docs/`` (where results are
    written while runs go on) differ from it; "unknown" outside git. Stored with every run, not in the file's
    ``meta``, so a resumed file can say which runs came from where."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=here, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ":(top)",
                                ":(top,exclude)docs"], cwd=here, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def environment() -> str:
    """Python, the numerical libraries and the CPU model: a qio or bayes run's path depends on the order of
    floating-point sums, so the same code and seed can take another path on another version or CPU. Stored with
    every run, so a comparison can check that its files share one environment."""
    from importlib.metadata import PackageNotFoundError, version

    parts = [f"python {sys.version.split()[0]}"]
    for dist in ("numpy", "scipy", "dimod", "dwave-samplers", "gpflow", "tensorflow", "optuna"):
        try:
            parts.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            pass
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return ", ".join(parts) + "; " + cpu


def _save(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=float))
    tmp.replace(path)


def cmd_run(args: argparse.Namespace) -> None:
    fam = continuous if args.family == "continuous" else discrete
    problems = fam.problem_names(args.half) if args.problems == "all" else args.problems.split(",")
    known = set(continuous.problem_names("dev") + continuous.problem_names("heldout")) if args.family == "continuous" \
        else set(discrete.problem_names("dev") + discrete.problem_names("heldout") + discrete.more_dev_names())
    for p in problems:
        if p not in known:
            raise SystemExit(f"problem {p!r} is not in the {args.family} suite: "
                             f"python -m benchmarks.suite list --family {args.family} --half {args.half}")
        if args.half == "heldout" and p not in fam.problem_names("heldout"):  # known: of a development set
            raise SystemExit(f"problem {p!r} belongs to the development half")
    # a method's advice to its user ("search stalled: ...") is not a benchmark's output: errors only (set once
    # the command is accepted, so a refused one changes nothing in the calling process)
    logging.getLogger("fmio_bayes").setLevel(logging.ERROR)
    logging.getLogger("fmio_qio").setLevel(logging.ERROR)
    methods = args.methods.split(",") if args.methods else list(
        CONTINUOUS_METHODS if args.family == "continuous" else DISCRETE_METHODS)
    options = json.loads(args.options)
    out = Path(args.out)
    data: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {"runs": {}}
    meta = {"family": args.family, "half": args.half, "options": options, "label": args.label}
    held = data.get("meta", meta)  # may also carry notes added by hand (how a file was merged or relabelled)
    if {k: held.get(k) for k in meta} != meta:
        raise SystemExit(f"{out}: holds runs of {held}, not {meta}; use another --out")
    data["meta"] = held | meta
    tasks: dict[str, Any] = {}
    code, env = code_version(), environment()
    if "bayes" in methods and args.family == "continuous":  # TensorFlow import once per process, reported apart
        t0 = time.process_time()
        from fmio_bayes._tf import load

        load()
        data.setdefault("import_cpu", {})["bayes"] = time.process_time() - t0
    for rep in range(args.first_rep, args.first_rep + args.reps):
        seed = fam.RUN_SEED[args.half](rep)
        for p in problems:
            for m in methods:
                key = f"{m}|{p}|{rep}"
                if key in data["runs"]:
                    continue
                if p not in tasks:
                    tasks[p] = continuous.task_of(p) if args.family == "continuous" else discrete.problem_of(p)
                w0 = time.time()
                r = (run_continuous(m, tasks[p], seed, options if m == "bayes" else {}) if args.family == "continuous"
                     else run_discrete(m, tasks[p], seed, options if m == "qio" else {}))
                r.update(method=m, problem=p, rep=rep, seed=seed, wall=time.time() - w0, code=code,
                         environment=env)
                data["runs"][key] = r
                _save(out, data)
                shown = r.get("regret") if args.family == "continuous" else r.get("evals")
                print(f"{m:14s} {p:26s} rep {rep} seed {seed:3d}: {shown} ({r['wall']:.0f} s wall, "
                      f"{r['cpu_per_proposal']:.3f} s CPU/proposal)", file=sys.stderr, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run methods on one half of one family (resumable)")
    r.add_argument("--family", choices=("continuous", "discrete"), required=True)
    r.add_argument("--half", choices=("dev", "heldout"), required=True)
    r.add_argument("--reps", type=int, default=10)
    r.add_argument("--first-rep", type=int, default=0,
                   help="start at this repetition (parallel processes: one file per range, merged by report)")
    r.add_argument("--problems", default="all", help="comma-separated problem names, or all (of the half)")
    r.add_argument("--methods", default="", help="comma-separated; default: every method of the family")
    r.add_argument("--options", default="{}", help="JSON options for bayes (continuous) or qio (discrete)")
    r.add_argument("--label", default="defaults", help="name of the bayes/qio configuration in the tables")
    r.add_argument("--out", required=True)
    li = sub.add_parser("list", help="print the problems of a family and half")
    li.add_argument("--family", choices=("continuous", "discrete"), required=True)
    li.add_argument("--half", choices=("dev", "heldout"), required=True)
    rp = sub.add_parser("report", help="tables from results files")
    rp.add_argument("--family", choices=("continuous", "discrete"), required=True)
    rp.add_argument("files", nargs="+")
    rp.add_argument("--md", default="", help="also write the tables to this markdown file")
    rp.add_argument("--same-seeds", action="store_true",
                    help="compare every method on the seeds all methods ran for each problem (for a peer run for "
                         "fewer repetitions)")
    ab = sub.add_parser("ablate", help="one configuration's results against others' on the same runs")
    ab.add_argument("--family", choices=("continuous", "discrete"), required=True)
    ab.add_argument("base")
    ab.add_argument("variants", nargs="+")
    ab.add_argument("--md", default="", help="also write the tables to this markdown file")
    args = ap.parse_args()
    if args.cmd == "ablate":
        from benchmarks.suite.report import ablation

        text = ablation(args.family, args.base, args.variants)
        print(text)
        if args.md:
            Path(args.md).write_text(text)
        return
    if args.cmd == "run":
        cmd_run(args)
    elif args.cmd == "list":
        fam = continuous if args.family == "continuous" else discrete
        print("\n".join(fam.problem_names(args.half)))
        if args.family == "discrete" and args.half == "dev":
            print("# more development designs, run only when named: " + ",".join(discrete.more_dev_names()))
    else:
        from benchmarks.suite.report import report

        text = report(args.family, args.files, args.same_seeds)
        print(text)
        if args.md:
            Path(args.md).write_text(text)


if __name__ == "__main__":
    main()
