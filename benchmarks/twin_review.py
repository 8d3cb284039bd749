"""The before/after numbers of the sample twins' expert review (docs/bench/sample_twins.md), in plain fmpy.

Builds each twin from C (``fmus/build.py``), optionally from another sources folder (``--sources``: e.g. an
older commit's ``fmus/`` exported with ``git archive <commit> fmus | tar -x -C /tmp/old``), and prints:

* ``line-long``: production_line good parts per hour in each quarter of a 400-day run (seed 5, two crews);
* ``line-crn``: correlation of 16 replications (seeds 0-15, 5 days, 3,3,3,3 buffers, two crews) between
  policies and between layouts;
* ``line-scenarios``: mean and sd of profit and throughput of every scenario of ``production_line.toml``
  over 20 replications (``--pm-duration`` sets the planned-stop length);
* ``line-pm``: profit of the three policies (one crew, 2,4,4,2 buffers) against ``pm_duration``;
* ``servo``: 90 % rise time, ITAE and overshoot against Kp at Ki = 100, and ITAE against Ki at Kp = 20.

Usage: ``python benchmarks/twin_review.py line-long servo [--sources /tmp/old/fmus]``
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
from fmpy import simulate_fmu

ROOT = Path(__file__).resolve().parents[1]


def load_build(sources: Path) -> Any:
    spec = importlib.util.spec_from_file_location("fmus_build_review", sources / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["fmus_build_review"] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


class Twins:
    """Compiled twins from one sources folder, built on first use."""

    def __init__(self, sources: Path, work: Path) -> None:
        self.sources, self.work, self.build, self.dirs = sources, work, load_build(sources), {}

    def __call__(self, name: str) -> str:
        if name not in self.dirs:
            fmu = self.build.build_sample(name, self.work, self.sources / name)
            self.dirs[name] = str(self.build.compile_fmu(fmu, self.work / f"{name}_unzipped"))
        return self.dirs[name]


def line(tw: Twins, stop: float = 432000.0, **start: Any) -> Any:
    return simulate_fmu(tw("production_line"), start_values=start, stop_time=stop, output_interval=stop / 4)


def reps(tw: Twins, seeds: range, out: str, **start: Any) -> np.ndarray:
    return np.array([float(line(tw, seed=s, **start)[out][-1]) for s in seeds])


def line_long(tw: Twins, _: argparse.Namespace) -> None:
    stop = 400 * 86400.0
    good = np.asarray(line(tw, stop, seed=5, n_crews=2, warmup=0.0)["parts_good"], dtype=float)
    print("line-long: parts/h per 100-day quarter", np.round(np.diff(good) / (stop / 4 / 3600.0), 2))


def line_crn(tw: Twins, _: argparse.Namespace) -> None:
    even = {"n_crews": 2, "buffer_1": 3, "buffer_2": 3, "buffer_3": 3, "buffer_4": 3}
    seeds = range(16)
    rtf, prev, opp = (reps(tw, seeds, "throughput", policy=p, **even) for p in (1, 2, 3))
    opp_bn = reps(tw, seeds, "throughput", policy=3, n_crews=2, buffer_1=2, buffer_2=4, buffer_3=4, buffer_4=2)

    def rho(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.corrcoef(a, b)[0, 1])

    print(f"line-crn: preventive vs opportunistic {rho(prev, opp):.2f}, run-to-failure vs opportunistic "
          f"{rho(rtf, opp):.2f}, opportunistic 3,3,3,3 vs 2,4,4,2 {rho(opp, opp_bn):.2f}")


def line_scenarios(tw: Twins, args: argparse.Namespace) -> None:
    scenarios = tomllib.loads((tw.sources / "production_line.toml").read_text())["scenarios"]
    rows = []
    for name, values in scenarios.items():
        runs = [line(tw, seed=s, pm_duration=args.pm_duration, **values) for s in range(20)]
        profit = np.array([float(r["profit"][-1]) for r in runs]) if "profit" in runs[0].dtype.names else None
        thr = np.array([float(r["throughput"][-1]) for r in runs])
        rows.append((name, profit, thr))
    rows.sort(key=lambda r: -(r[1].mean() if r[1] is not None else r[2].mean()))
    for name, profit, thr in rows:
        money = f"profit {profit.mean():8.2f} sd {profit.std(ddof=1):6.2f}  " if profit is not None else ""
        print(f"line-scenarios: {name:22s} {money}throughput {thr.mean():6.2f} sd {thr.std(ddof=1):5.2f}")


def line_pm(tw: Twins, _: argparse.Namespace) -> None:
    layout = {"n_crews": 1, "buffer_1": 2, "buffer_2": 4, "buffer_3": 4, "buffer_4": 2}
    seeds = range(20)
    print(f"line-pm: run-to-failure {reps(tw, seeds, 'profit', policy=1, **layout).mean():.1f} USD/h")
    for pm in (300.0, 450.0, 600.0, 750.0, 900.0):
        prev = reps(tw, seeds, "profit", policy=2, pm_duration=pm, **layout).mean()
        opp = reps(tw, seeds, "profit", policy=3, pm_duration=pm, **layout).mean()
        print(f"line-pm: pm_duration {pm:5.0f} s: preventive {prev:.1f}, opportunistic {opp:.1f} USD/h")


def servo(tw: Twins, _: argparse.Namespace) -> None:
    def run(**start: Any) -> tuple[float, float, float]:
        r = simulate_fmu(tw("servo_pid"), start_values=start, stop_time=2.0, output_interval=0.001)
        t, theta = r["time"], r["theta"]
        hit = np.where((t >= 0.1) & (t < 1.0) & (theta >= 0.9))[0]
        rise = float(t[hit[0]] - 0.1) if len(hit) else float("inf")
        return rise, float(r["ITAE"][-1]), float(r["overshoot"][-1])

    for kp in (5.0, 10.0, 20.0, 40.0, 80.0):
        rise, itae, os_ = run(Kp=kp, Ki=100.0)
        print(f"servo: Ki 100, Kp {kp:4.0f}: rise {rise:.3f} s, ITAE {itae:.4g}, overshoot {os_:.3f}")
    for ki in (0.0, 1.0, 20.0):
        rise, itae, os_ = run(Kp=20.0, Ki=ki)
        print(f"servo: Kp 20, Ki {ki:4.0f}: rise {rise:.3f} s, ITAE {itae:.4g}, overshoot {os_:.3f}")


CHECKS = {"line-long": line_long, "line-crn": line_crn, "line-scenarios": line_scenarios, "line-pm": line_pm,
          "servo": servo}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checks", nargs="+", choices=sorted(CHECKS))
    ap.add_argument("--sources", type=Path, default=ROOT / "fmus", help="folder with build.py and the twins")
    ap.add_argument("--pm-duration", type=float, default=300.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        tw = Twins(args.sources.resolve(), Path(work))
        for name in args.checks:
            CHECKS[name](tw, args)
            sys.stdout.flush()


if __name__ == "__main__":
    main()
