"""Benchmark: wall seconds of writing and of verifying an optimized FMU, on the bundled sample twins.

Each twin's FMU is written with no values changed, then ``write_back`` verifies every output on the default
experiment: the written FMU in fmpy and libcosim, and the original with the values in each importer, each
run in a fresh Python process (so the time is mostly Python and library start-ups, the floor of any
verification that trusts nothing of the writing process). Reported beside the simulation itself in this
process, the physical cost of one run.

    python fmus/build.py && python -m benchmarks.writeback_timing                  # all sample twins, 3 repeats
    python -m benchmarks.writeback_timing --twins heat_sink --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TWINS = ("heat_sink", "servo_pid", "servo_pid_fmi3", "building_zone")


def measure(name: str, repeats: int) -> str:
    """One table row: outputs, samples, write, write + verify (median of ``repeats``), simulation, importers."""
    from fmi_optimizer.fmu.twin import Twin
    from fmi_optimizer.writeback.write import CheckSettings, write_back, write_optimized_fmu

    twin = Twin.open(ROOT / "fmus" / f"{name}.fmu")
    runnable = Path(twin.fmu.runnable)
    outputs = [v.name for v in twin.outputs]
    exp = twin.default_experiment
    stop = float(exp.stop_time or 1.0)
    interval = float(exp.step_size or stop / 500)
    writes, totals, sims = [], [], []
    verification: dict[str, object] = {}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="fmio-wb-timing-") as tmp:
            t0 = time.perf_counter()
            write_optimized_fmu(runnable, {}, Path(tmp) / "w.fmu")
            writes.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            res = write_back(runnable, {}, Path(tmp) / "out", check=CheckSettings(outputs, stop, interval))
            totals.append(time.perf_counter() - t0)
            verification = res.verification
        t0 = time.perf_counter()
        traj = twin.simulate({}, None, outputs)
        sims.append(time.perf_counter() - t0)
    importers = ", ".join(f"{k} {v}" for k, v in dict(verification.get("importers", {})).items())  # type: ignore[call-overload]
    return (f"| {name} | {twin.fmi_version} | {len(outputs)} | {traj.time.size} | {statistics.median(writes) * 1e3:.0f} ms | "
            f"{statistics.median(totals):.2f} s | {statistics.median(sims) * 1e3:.0f} ms | "
            f"{verification.get('max_rel_diff')} | {importers} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--twins", default=",".join(TWINS))
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    print("| twin | FMI | outputs | samples | write | write + verify | one simulation in this process | "
          "max rel. diff | importers |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.twins.split(","):
        print(measure(name, args.repeats), flush=True)


if __name__ == "__main__":
    main()
