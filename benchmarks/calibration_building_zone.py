"""Calibration of building_zone to its shipped synthetic measurements: the host's calibration
(a registered method, then least-squares refinement) against scipy ``least_squares`` alone (from the
FMU's start values) and random search with the same number of twin evaluations; then the drift loop
(a data set with a 40 % higher envelope resistance: check, recalibrate, check).

Everything runs through the same worker pool and loss; the script prints what it measured.

    python benchmarks/calibration_building_zone.py [--methods bayes,de] [--budget 40] [--seeds 0,1,2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "fmus"))

import build  # noqa: E402

from fmi_optimizer.calibration.calibrate import calibrate  # noqa: E402
from fmi_optimizer.calibration.drift import check, recalibrate  # noqa: E402
from fmi_optimizer.calibration.refine import refine  # noqa: E402
from fmi_optimizer.calibration.runner import Runner  # noqa: E402
from fmi_optimizer.fmu.simulator import SimSettings  # noqa: E402
from fmi_optimizer.fmu.twin import Twin  # noqa: E402
from fmi_optimizer.host.loader import load_host  # noqa: E402
from fmi_optimizer.runner.run import build_problem, make_evaluator, run_study  # noqa: E402
from fmi_optimizer.study.config import StudyConfig, load_study  # noqa: E402

TRUTH = json.loads((ROOT / "fmus/building_zone/true_parameters.json").read_text())["true_parameters"]
FITTED = {k: v for k, v in TRUTH.items() if k != "R_win"}
MEASURED = ROOT / "fmus/building_zone/resources/measured.csv"

STUDY = ROOT / "fmus/building_zone_calibration.toml"  # the shipped calibration study


def quality(config: StudyConfig, values: dict[str, Any], floor: float) -> dict[str, Any]:
    """Validation NRMSE (and its ratio to the true parameters' NRMSE) and parameter errors vs the truth."""
    spec = config.calibration
    val = replace(config, calibration=replace(spec, check_window=spec.validation))
    nrmse = check(val, MEASURED, parameters=dict(values), record=False).fidelity["T_sensor"]["nrmse"]
    errors = {k: float(values[k]) / v - 1.0 for k, v in FITTED.items()}
    return {"validation_nrmse": nrmse, "floor_ratio": nrmse / floor, "rel_errors": errors}


def host_calibration(config: StudyConfig, method: str, seed: int, floor: float, out: Path) -> dict[str, Any]:
    cfg = config.with_overrides(method=method, seed=seed, out_dir=out)
    r = calibrate(cfg, write_back=False)
    q = quality(config, r.values, floor)
    return {"approach": f"{method} + least_squares", "seed": seed, "evaluations": r.evaluations["total"],
            "method_evaluations": r.evaluations["method"], "wall_seconds": r.wall_seconds,
            "loss_train": r.evaluation.kpis["loss_train"], "flagged": r.identifiability.flagged, **q}


def least_squares_alone(config: StudyConfig, budget: int, floor: float, seed: int | None = None) -> dict[str, Any]:
    """From the FMU's start values (seed None) or from a uniform random point in the bounds."""
    host = load_host()
    problem = build_problem(config, host)
    start = {d.name: problem.twin.variable(d.name).start for d in problem.space.dimensions}
    if seed is not None:
        rng = np.random.default_rng(seed)
        start = {d.name: float(rng.uniform(d.lo, d.hi)) for d in problem.space.dimensions}  # type: ignore[union-attr]
    evaluator = make_evaluator(host, problem)
    t0 = time.perf_counter()
    try:
        runner = Runner(problem, evaluator)
        res = refine(runner, start, config.calibration.train, budget)
    finally:
        evaluator.close()
    assert res.evaluation is not None
    where = "FMU start values" if seed is None else "a random point"
    return {"approach": f"least_squares alone (from {where})", "seed": seed or 0, "evaluations": res.evaluations,
            "wall_seconds": time.perf_counter() - t0, "loss_train": res.evaluation.kpis["loss_train"],
            **quality(config, res.values, floor)}


def random_search(config: StudyConfig, budget: int, seed: int, floor: float, out: Path) -> dict[str, Any]:
    cfg = config.with_overrides(method="random", seed=seed, budget_evaluations=budget, out_dir=out)
    t0 = time.perf_counter()
    outcome = run_study(cfg, write_back=False, report=False)
    best = outcome.result.best
    assert best is not None
    return {"approach": "random search", "seed": seed, "evaluations": outcome.result.counts()["total"],
            "wall_seconds": time.perf_counter() - t0, "loss_train": best.kpis["loss_train"],
            **quality(config, best.values, floor)}


def drifted_data(fmu: Path, path: Path, factor: float) -> Path:
    p = dict(TRUTH)
    p["R_wall"] *= factor
    traj = Twin.open(fmu).simulate(p, SimSettings(stop_time=4838400.0, output_interval=3600.0), ["T_sensor"])
    noise = 0.15 * np.random.default_rng(11).standard_normal(traj.time.size)
    y = np.round(traj.outputs["T_sensor"] - 273.15 + noise, 1)
    path.write_text("time_s,T_zone_C\n" + "".join(f"{t:.0f},{v:.1f}\n" for t, v in zip(traj.time, y, strict=True)))
    return path


def drift_loop(config: StudyConfig, fmu: Path, folder: Path) -> dict[str, Any]:
    data = drifted_data(fmu, folder / "drifted.csv", 1.4)
    before = check(config, data)
    t0 = time.perf_counter()
    new = recalibrate(config, data)
    wall = time.perf_counter() - t0
    after = check(config, data)
    return {"before": before.fidelity["T_sensor"], "drift_before": before.drift, "exceeded": before.exceeded,
            "recalibration_evaluations": new.evaluations, "recalibration_wall_seconds": wall,
            "R_wall": new.values["R_wall"], "R_wall_true": 1.4 * TRUTH["R_wall"],
            "after": after.fidelity["T_sensor"], "drift_after": after.drift}


def summarize(rows: list[dict[str, Any]]) -> None:
    print("\n| approach | seeds | evaluations (median) | wall s (median) | train RMSE K (median) | "
          "validation NRMSE / floor (median, worst) | worst identifiable-param error (median, worst) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["approach"], []).append(r)
    ident = [k for k in FITTED if k != "sensor_bias"]
    for name, rs in groups.items():
        worst = [max(abs(r["rel_errors"][k]) for k in ident) for r in rs]
        ratios = [r["floor_ratio"] for r in rs]
        print(f"| {name} | {len(rs)} | {statistics.median(r['evaluations'] for r in rs):.0f} | "
              f"{statistics.median(r['wall_seconds'] for r in rs):.1f} | "
              f"{statistics.median(r['loss_train'] for r in rs):.4f} | "
              f"{statistics.median(ratios):.3f}, {max(ratios):.3f} | "
              f"{statistics.median(worst):.1%}, {max(worst):.1%} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="bayes,de")
    ap.add_argument("--budget", type=int, default=40, help="method evaluations before refinement")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--no-drift", action="store_true")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        fmu = build.build_sample("building_zone", folder)
        study = build.localized_study(STUDY, folder, fmu)
        config = load_study(study).with_overrides(budget_evaluations=args.budget)
        spec = config.calibration
        val = replace(config, calibration=replace(spec, check_window=spec.validation))
        floor = check(val, MEASURED, parameters=dict(FITTED), record=False).fidelity["T_sensor"]["nrmse"]
        print(f"noise floor: validation NRMSE at the true parameters = {floor:.5f}", flush=True)
        rows = []
        for method in args.methods.split(","):
            for seed in seeds:
                rows.append(host_calibration(config, method, seed, floor, folder / f"{method}-{seed}"))
                print(json.dumps(rows[-1], default=float), flush=True)
        budget = int(statistics.median(r["evaluations"] for r in rows))
        rows.append(least_squares_alone(config, budget, floor))
        print(json.dumps(rows[-1], default=float), flush=True)
        for seed in seeds:
            rows.append(least_squares_alone(config, budget, floor, seed))
            print(json.dumps(rows[-1], default=float), flush=True)
        for seed in seeds:
            rows.append(random_search(config, budget, seed, floor, folder / f"random-{seed}"))
            print(json.dumps(rows[-1], default=float), flush=True)
        summarize(rows)
        drift = None
        if not args.no_drift:
            cfg = config.with_overrides(method=args.methods.split(",")[0], out_dir=folder / "drift")
            calibrate(cfg, write_back=True)
            drift = drift_loop(cfg, fmu, folder)
            print("\ndrift loop:", json.dumps(drift, indent=1, default=float))
        if args.json:
            args.json.write_text(json.dumps({"floor": floor, "rows": rows, "drift": drift}, indent=1, default=float))


if __name__ == "__main__":
    main()
