"""Benchmark: what the report's surrogate check (standardized leave-one-out errors) says at the end of a run,
beside how good the run was.

The check is meant to warn before anyone trusts a model that is wrong. Whether it does is measured here: every
noise-free, unconstrained development problem of the benchmark suite, ``bayes`` with its defaults to the
suite's budget, then the check's numbers for the last model (RMS standardized error, points beyond ±3) and
its verdict (the plugin's own ``loo_verdict``) beside the run's final regret. A verdict that comes out the same
for the best and the worst runs says nothing about either. On a noisy problem (``--problems ackley10_noisy``)
the observations carry the suite's noise, the regret is the suite's (the true value at the best observed
point), and the last column is the learned noise variance over the true one.

    python -m benchmarks.bayes_surrogate_check                      # development problems, seeds 0 and 2
    python -m benchmarks.bayes_surrogate_check --problems hartmann3,hartmann6 --seeds 0,2,4
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
             "TF_NUM_INTEROP_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks.suite import continuous  # noqa: E402


def check(name: str, seed: int) -> str:
    """One run of ``bayes`` on suite problem ``name``; a table row with its regret and the check's verdict."""
    from fmio_bayes import BayesMethod
    from fmio_bayes.sections import OUTSIDE, loo_verdict

    from fmi_optimizer.method import Problem
    from fmi_optimizer.records import Evaluation
    from fmi_optimizer.space import Continuous, DesignSpace

    task = continuous.task_of(name)
    space = DesignSpace([Continuous(f"x{i}", float(lo), float(hi)) for i, (lo, hi) in enumerate(zip(task.lo, task.hi,
                                                                                                    strict=True))])
    method = BayesMethod(Problem(space, budget_evaluations=task.budget, noisy=task.noisy), {}, seed)
    rng = np.random.default_rng(100_003 + seed)  # the suite runner's noise stream
    observed, true = [], []
    for _ in range(task.budget):
        (cand,) = method.ask(1)
        x = np.array([cand.values[k] for k in space.names])
        y, _ = task.observe(x, rng)
        observed.append(y)
        true.append(float(task.f(x)))
        method.tell([Evaluation(cand, "ok", objective=y)])
    regret = true[int(np.argmin(observed))] - task.optimum  # the suite's: true value at the best observed point
    noise = "-"
    if task.noisy:  # the learned noise variance against the true one, both in the GP's standardized units
        learned = method.diagnostics()["iterations"][-1]["noise_variance"]
        noise = f"{learned / (task.noise_sd ** 2 / float(np.var(observed))):.2f}"
    errors = [float(e) for e in (method.diagnostics().get("loo") or {}).get("standardized_error", [])
              if math.isfinite(e)]
    if not errors:
        return f"| {name} | {seed} | {regret:.3g} | - | - | no finite leave-one-out error | {noise} |"
    spread = math.sqrt(sum(e * e for e in errors) / len(errors))
    beyond = sum(abs(e) > OUTSIDE for e in errors)
    verdict = re.sub(r"<[^>]+>", "", loo_verdict(spread, beyond, len(errors))).split(":")[0]
    return f"| {name} | {seed} | {regret:.3g} | {spread:.2f} | {beyond} of {len(errors)} | {verdict} | {noise} |"


def main() -> None:
    plain = [n for n in continuous.problem_names("dev") if not n.endswith(("_noisy", "_constrained"))]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--problems", default=",".join(plain))
    p.add_argument("--seeds", default="0,2")
    args = p.parse_args()
    print("| problem | seed | final regret | RMS standardized LOO error | beyond ±3 | verdict | learned / true noise |")
    print("|---|---|---|---|---|---|---|")
    for name in args.problems.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            print(check(name, seed), flush=True)


if __name__ == "__main__":
    main()
