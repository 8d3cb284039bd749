"""Benchmark: CPU seconds of a study's first model-based proposal, in a fresh process and in a warm one.

A user's study usually runs in a fresh process (one ``fmi-optimizer run``), so the first proposal pays for
everything TensorFlow compiles then. The suite runner measures many studies in one process and cannot show
that cost apart from the cost of the arithmetic. Here every measurement is a new Python process: the
libraries are imported first (their import CPU is reported apart, as the suite does), the initial design is
asked and told, and the CPU seconds (``time.process_time``) of the first model-based ask + tell are taken;
then a second study of the same problem, seed + 1, runs to its first model-based proposal in the same
process ("warm": what the suite sees after its first run). Optuna's GPSampler runs the same way in the same
invocation, as the peer.

    python -m benchmarks.bayes_first_proposal                         # the default problems, seed 1
    python -m benchmarks.bayes_first_proposal --problems branin,hartmann6_constrained --seeds 1,3
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
             "TF_NUM_INTEROP_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

#: 2-10 dimensions, plain / noisy / constrained (a constraint is one more GP for bayes)
DEFAULT_PROBLEMS = ("branin", "branin_constrained", "hartmann3_noisy", "hartmann6", "hartmann6_constrained",
                    "ackley10", "ackley10_constrained", "levy10_noisy")
METHODS = ("bayes", "optuna_gp")


def first_model_cpu(method: str, problem: str, seed: int) -> float:
    """CPU seconds of the first model-based ask + tell of one study."""
    from benchmarks import bayes_vs_peers as bvp
    from benchmarks.suite import continuous
    from benchmarks.suite.run import timed_step

    task = continuous.task_of(problem)
    runner = bvp.RUNNERS[method](task, seed)  # type: ignore[arg-type]
    rng = np.random.default_rng(100_003 + seed)  # the suite's noise stream for this seed
    for _ in range(runner.model_based_from):
        timed_step(runner, task, rng)
    return timed_step(runner, task, rng)[3]


def child(method: str, problem: str, seed: int) -> dict[str, float]:
    """One fresh process: import, then a cold and a warm first proposal."""
    t0 = time.process_time()
    if method == "bayes":
        from fmio_bayes._tf import load

        load()
    else:
        import optuna  # noqa: F401
        import torch  # noqa: F401
    imp = time.process_time() - t0
    cold = first_model_cpu(method, problem, seed)
    warm = first_model_cpu(method, problem, seed + 1)
    return {"import": imp, "cold": cold, "warm": warm}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", default=",".join(DEFAULT_PROBLEMS))
    ap.add_argument("--seeds", default="1")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--child", nargs=3, metavar=("METHOD", "PROBLEM", "SEED"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        m, p, s = args.child
        print(json.dumps(child(m, p, int(s))))
        return
    methods = args.methods.split(",")
    rows: dict[tuple[str, str], list[dict[str, float]]] = {}
    for p in args.problems.split(","):
        for s in (int(v) for v in args.seeds.split(",")):
            for m in methods:
                out = subprocess.run([sys.executable, "-m", "benchmarks.bayes_first_proposal", "--child", m, p, str(s)],
                                     capture_output=True, text=True, check=True)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                rows.setdefault((m, p), []).append(r)
                print(f"{m:10s} {p:24s} seed {s}: import {r['import']:.2f} s, first proposal cold {r['cold']:.3f} s,"
                      f" warm {r['warm']:.3f} s", flush=True)
    print("\n| problem | " + " | ".join(f"{m} cold | {m} warm" for m in methods) + " | bayes / optuna_gp (cold) |")
    print("|---|" + "---|---|" * len(methods) + "---|")
    for p in args.problems.split(","):
        med = {m: {k: statistics.median(r[k] for r in rows[(m, p)]) for k in ("cold", "warm")} for m in methods}
        ratio = (f"{med['bayes']['cold'] / med['optuna_gp']['cold']:.1f}"
                 if {"bayes", "optuna_gp"} <= set(methods) else "-")
        print(f"| {p} | " + " | ".join(f"{med[m]['cold']:.3f} | {med[m]['warm']:.3f}" for m in methods)
              + f" | {ratio} |")
    for m in methods:
        cold = [r["cold"] for (mm, _), rs in rows.items() if mm == m for r in rs]
        imp = [r["import"] for (mm, _), rs in rows.items() if mm == m for r in rs]
        print(f"{m}: cold first proposal median {statistics.median(cold):.3f} s, max {max(cold):.3f} s;"
              f" import median {statistics.median(imp):.2f} s")


if __name__ == "__main__":
    main()
