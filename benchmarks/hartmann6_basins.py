"""Which Hartmann6 basin does a ``bayes`` run exploit, and from when?

Hartmann6 is a sum of four Gaussian bumps ``-alpha_k exp(-sum_j A_kj (x_j - P_kj)^2)``. The global
minimum (-3.322) sits in bump 3, the local minimum (-3.203, regret 0.119) in bump 4, which is nearly
flat along x3 and x5 (A = 0.05, 0.1). A point is counted "in bump k" when ``sum_j A_kj (x_j - P_kj)^2``
is below 1.1 (the bump alone contributes at least alpha_k / 3). Per seed the script prints the final
regret, the first evaluation in bump 3 and in bump 4, how many evaluations each received, the first
evaluation with regret below 0.05 (the success line of docs/bench/bayes.md); a last line counts the runs
below 0.05. ``--budget`` runs longer than the benchmark's 60 evaluations: how
far from success is a failing run?

    python benchmarks/hartmann6_basins.py --seeds 0-9 [--bayes-options '{"n_initial": 10}'] [--budget 80]
    python benchmarks/hartmann6_basins.py --seeds 0,2,4,43     # a list, or ranges: 0-29,40-45
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bayes_vs_peers as peers  # noqa: E402

IN_BUMP = 1.1
SUCCESS = 0.05  # regret below which docs/bench/bayes.md counts a run as successful


def bump_distances(X: np.ndarray) -> np.ndarray:
    """``[n, 4]``: ``sum_j A_kj (x_j - P_kj)^2`` of every point to every bump."""
    return np.stack([np.sum(peers._H_A[k] * (X - peers._H_P[k]) ** 2, axis=1) for k in range(4)], axis=1)


def trace(seed: int, budget: int | None = None) -> dict:
    task = peers.TASKS["hartmann6"]
    if budget is not None:
        task = dataclasses.replace(task, budget=budget)
    runner = peers.BayesRunner(task, seed)
    xs, ys = [], []
    for _ in range(task.budget):
        x = runner.ask()
        y = task.f(x)
        runner.tell(x, y)
        xs.append(x)
        ys.append(y)
    inside = bump_distances(np.array(xs)) < IN_BUMP

    def first(k: int) -> int | None:
        hits = np.flatnonzero(inside[:, k])
        return int(hits[0]) if len(hits) else None

    regret = np.minimum.accumulate(np.array(ys)) - task.optimum
    below = np.flatnonzero(regret < SUCCESS)
    return {"seed": seed, "regret": float(regret[-1]), "first_in_bump3": first(2), "first_in_bump4": first(3),
            "n_bump3": int(inside[:, 2].sum()), "n_bump4": int(inside[:, 3].sum()),
            "first_success": int(below[0]) if len(below) else None}


def parse_seeds(text: str) -> list[int]:
    """``"0,2,5-8"`` -> ``[0, 2, 5, 6, 7, 8]``."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    return seeds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2,3,4,5,6,7,8,9")
    ap.add_argument("--bayes-options", default="{}", help="JSON of plugin options")
    ap.add_argument("--budget", type=int, default=None, help="evaluations per run (default: the benchmark's 60)")
    args = ap.parse_args()
    peers.BAYES_OPTIONS.update(json.loads(args.bayes_options))
    print("| seed | regret | first in bump 3 | first in bump 4 | evaluations in bump 3 / bump 4 "
          f"| first regret < {SUCCESS} |")
    print("|---|---|---|---|---|---|")
    regrets = []
    for seed in parse_seeds(args.seeds):
        r = trace(seed, args.budget)
        regrets.append(r["regret"])
        print(f"| {seed} | {r['regret']:.2e} | {r['first_in_bump3']} | {r['first_in_bump4']} | "
              f"{r['n_bump3']} / {r['n_bump4']} | {r['first_success']} |", flush=True)
    print(f"\nbelow {SUCCESS}: {sum(r < SUCCESS for r in regrets)} of {len(regrets)} runs, "
          f"median regret {np.median(regrets):.2e}")


if __name__ == "__main__":
    main()
