"""How close the shipped building_zone study gets to the true parameters, over several seeds.

Runs ``fmi-optimizer optimize STUDY --seed S --json --no-writeback`` for each seed (the product's own
method, budget and settings from the study file) and prints, per seed, the rmse reached, the number of
evaluations, the wall time and each parameter's ratio to its true value
(``fmus/building_zone/true_parameters.json``; the noise floor is the rmse at the true parameters, 0.153 K).

Seeds are split: choose study settings on the development seeds (``--seeds 1 2 3 4``), then report the
held-out ones (``--seeds 5 6 7 8``) as they come out.

Usage: ``python fmus/build.py && python benchmarks/building_zone_study.py [--study fmus/building_zone.toml]
[--seeds 1 2 3]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_seed(study: Path, seed: int) -> dict:
    """One study run through the command line; returns its --json answer."""
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run(
            [str(Path(sys.executable).with_name("fmi-optimizer")), "optimize", str(study), "--seed", str(seed), "--json",
             "--no-writeback", "--out", out],
            capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"seed {seed}: fmi-optimizer exited {proc.returncode}: {proc.stderr.strip()[-400:]}")
    return json.loads(proc.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", type=Path, default=ROOT / "fmus" / "building_zone.toml")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = ap.parse_args()
    truth = json.loads((ROOT / "fmus" / "building_zone" / "true_parameters.json").read_text())["true_parameters"]
    worst_all = 0.0
    for seed in args.seeds:
        res = run_seed(args.study, seed)
        best = res["best"]
        ratios = {k: v / truth[k] for k, v in best["values"].items() if k in truth and truth[k] != 0}
        worst = max(abs(r - 1.0) for k, r in ratios.items() if k != "sensor_bias")
        worst_all = max(worst_all, worst)
        shown = " ".join(f"{k}={r:.3f}" for k, r in ratios.items())
        trace = [x for x in res.get("trace", []) if x is not None]
        near = next((i + 1 for i, x in enumerate(trace) if x <= 1.005 * best["kpis"]["rmse"]), None)
        print(f"seed {seed}: rmse {best['kpis']['rmse']:.4f} K, {res['evaluations']['total']} evaluations, "
              f"{res['wall_seconds']:.1f} s, within 0.5 % of the final rmse after {near} runs, worst parameter error (bias excluded) {100 * worst:.1f} %; ratios {shown}",
              flush=True)
    print(f"worst parameter error over all seeds (sensor_bias excluded): {100 * worst_all:.1f} %")


if __name__ == "__main__":
    main()
