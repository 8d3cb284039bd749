"""fmi_optimizer on FMUs exported by real tools, checked against the truth outside the product.

For every FMU in a folder (default ``../shared/fmus-real`` beside the repository, when it exists):

1. pick Real parameters that move an output (``fmi_optimizer.cli.check.choose_parameters``: each probe run in a
   fresh worker process) and an output they move;
2. run a small study (``random``, 8 evaluations, 2 workers, instance strategy proven by the product);
3. compare **every stored KPI** with a fresh instance in plain fmpy
   (``fmpy.simulate_fmu(fmu, start_values=v, stop_time=..., output_interval=...)``, KPIs final/max/min computed
   here with numpy), relative tolerance 1e-6;
4. run the written FMU in plain fmpy (no start values) and in libcosim (``libcosimpy``, a second, independent
   importer; run in a child process) and compare with the stored best.

Prints one row per FMU, including the FMUs the product refuses and every failure it meets.

    python benchmarks/real_fmus.py [DIR] [--max-stop 10] [--budget 8] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RTOL = 1e-6
LIBCOSIM_CHILD = r"""
import json, sys
from libcosimpy.CosimExecution import CosimExecution
from libcosimpy.CosimSlave import CosimLocalSlave
from libcosimpy.CosimObserver import CosimObserver
a = json.loads(sys.argv[1])
ex = CosimExecution.from_step_size(step_size=int(round(a["step"] * 1e9)))
slave = ex.add_local_slave(CosimLocalSlave(fmu_path=a["fmu"], instance_name="written"))
observer = CosimObserver.create_last_value()
ex.add_observer(observer)
ok = ex.simulate_until(target_time=int(round(a["stop"] * 1e9)))
refs = {v.name.decode(): v.reference for v in ex.slave_variables(slave)}
values = observer.last_real_values(slave, [refs[o] for o in a["outputs"]])
print("FMIO-REPLY " + json.dumps({"ok": bool(ok), "final": dict(zip(a["outputs"], values))}), flush=True)
"""


class Skip(Exception):
    """The FMU gives this script nothing to optimize (said in its row, not a failure of the product)."""


def kpis(y: np.ndarray) -> dict[str, float]:
    return {"final": float(y[-1]), "max": float(np.max(y)), "min": float(np.min(y))}


def rel(a: float, b: float) -> float:
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def fresh(fmu: Path, values: dict[str, Any], stop: float, dt: float, output: str) -> dict[str, float]:
    """Plain fmpy, as a user would call it (what the FMU prints is kept out of this script's table)."""
    from fmpy import simulate_fmu

    from fmi_optimizer.fmu.fd_capture import capture_fds

    with capture_fds():
        result = simulate_fmu(str(fmu), start_values=values, stop_time=stop, output_interval=dt, output=[output])
    return kpis(np.asarray(result[output], dtype=float))


def libcosim_final(fmu: Path, output: str, stop: float, step: float) -> tuple[float | None, str]:
    proc = subprocess.run([sys.executable, "-c", LIBCOSIM_CHILD,
                           json.dumps({"fmu": str(fmu), "outputs": [output], "stop": stop, "step": step})],
                          capture_output=True, text=True, timeout=900)
    try:  # the FMU may print too: the reply is the marked line
        reply = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("FMIO-REPLY "))[11:])
    except (ValueError, StopIteration):
        tail = " ".join((proc.stderr or "").split())[-200:]
        return None, f"libcosim run failed (exit {proc.returncode}): {tail}"
    if not reply["ok"]:
        return None, "libcosim simulate_until failed"
    return float(reply["final"][output]), ""


def study_for(fmu: Path, max_stop: float, budget: int) -> tuple[dict[str, Any], str, float, float, list[str]]:
    from fmi_optimizer.cli.check import choose_parameters, default_settings, perturbed
    from fmi_optimizer.fmu.twin import Twin

    twin = Twin.open(fmu)
    settings = default_settings(twin, None)
    stop = min(float(settings.stop_time or 1.0), max_stop)
    start = settings.start_time or 0.0
    dt = (stop - start) / 100
    settings = type(settings)(start_time=settings.start_time, stop_time=stop, output_interval=dt)
    outputs = [v.name for v in twin.outputs if v.type == "Real"]
    chosen, moves, base = choose_parameters(twin, settings, outputs)
    if base.status != "ok":
        raise Skip(f"does not run as delivered: {base.error}")
    if not chosen:
        raise Skip("no Real parameter tried moves an output (with its inputs left at their start values)")
    output = moves[chosen[0]][0]
    params = {}
    for name in chosen:
        v = twin.variable(name)
        a, b = perturbed(v, -1.0), perturbed(v, 1.0)
        params[name] = {"min": min(a, b), "max": max(a, b)}
    study = {
        "name": fmu.stem,
        "twin": {"fmu": str(fmu), "stop_time": stop, "output_interval": dt},
        "parameters": params,
        "kpis": {"final": f"final({output})", "max": f"max({output})", "min": f"min({output})"},
        "objective": {"minimize": {"final": 1.0}},
        "method": {"name": "random", "budget": {"evaluations": budget}, "seed": 1},
        "evaluation": {"workers": 2},
    }
    return study, output, stop, dt, chosen


def check_one(fmu: Path, max_stop: float, budget: int) -> dict[str, Any]:
    from fmi_optimizer import optimize
    from fmi_optimizer.errors import FmiOptimizerError
    from fmi_optimizer.study.storage import Store

    row: dict[str, Any] = {"fmu": fmu.name}
    t0 = time.perf_counter()
    try:
        from fmpy import read_model_description

        md = read_model_description(str(fmu), validate=False)
        row["tool"] = (md.generationTool or "?").split(" Version")[0][:28]
        row["fmi"] = md.fmiVersion
        study, output, stop, dt, chosen = study_for(fmu, max_stop, budget)
        row["parameters"], row["output"], row["stop"] = chosen, output, stop
        with tempfile.TemporaryDirectory(prefix="fmio-real-") as out:
            outcome = optimize(study, out=out)
            runnable = Path(outcome.problem.twin.fmu.runnable)
            row["strategy"] = (outcome.instances or {}).get("final")
            worst, n = 0.0, 0
            for ev in Store(outcome.db).evaluations(outcome.result.study_id):
                if ev.status != "ok":
                    continue
                truth = fresh(runnable, ev.values, stop, dt, output)
                worst = max(worst, *(rel(ev.kpis[k], truth[k]) for k in truth))
                n += 1
            row["stored_ok"], row["stored_max_rel"] = n, worst
            row["stored_match"] = n > 0 and worst <= RTOL
            best = outcome.result.best
            written = outcome.files.get("fmu")
            row["verified"] = bool((outcome.verification or {}).get("ok"))
            if best is None or not written or not Path(written).is_file():
                row["written"] = "no FMU written: " + "; ".join((outcome.verification or {}).get("problems") or [])[:200]
            else:
                own = fresh(Path(written), {}, stop, dt, output)
                row["fmpy_rel"] = max(rel(own[k], best.kpis[k]) for k in own)
                final, why = libcosim_final(Path(written), output, stop, dt)
                row["libcosim_rel"] = None if final is None else rel(final, best.kpis["final"])
                row["libcosim_error"] = why
                row["written"] = "ok" if row["fmpy_rel"] <= RTOL and row["libcosim_rel"] is not None \
                    and row["libcosim_rel"] <= RTOL else "differs"
    except Skip as exc:
        row["error"] = f"skipped: {exc}"
    except FmiOptimizerError as exc:
        row["error"] = f"{type(exc).__name__} (exit {int(exc.exit_code)}): {exc}"
    except Exception as exc:  # a traceback here is a finding: it is printed, not hidden
        row["error"] = f"TRACEBACK {type(exc).__name__}: {exc}"
        row["traceback"] = traceback.format_exc()
    row["seconds"] = time.perf_counter() - t0
    return row


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return "0" if x == 0 else f"{x:.1e}" if math.isfinite(x) else str(x)
    return "-" if x is None else str(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder", nargs="?", type=Path, default=ROOT.parent / "shared" / "fmus-real")
    ap.add_argument("--max-stop", type=float, default=10.0, help="cap on the default experiment's stop time (s)")
    ap.add_argument("--budget", type=int, default=8)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if not args.folder.is_dir():
        sys.exit(f"{args.folder}: no such folder; pass a folder of FMUs")
    rows = [check_one(f, args.max_stop, args.budget) for f in sorted(args.folder.glob("*.fmu"))]
    cols = ["fmu", "tool", "fmi", "strategy", "stored_ok", "stored_max_rel", "verified", "fmpy_rel", "libcosim_rel",
            "written", "seconds"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        r["seconds"] = round(r["seconds"])
        print("| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")
    for r in rows:
        for key in ("error", "libcosim_error"):
            if r.get(key):
                print(f"{r['fmu']}: {r[key]}")
    stored = all(r.get("stored_match") for r in rows if "stored_ok" in r)
    print(f"every stored KPI equals a fresh fmpy run (rel {RTOL:g}): {'yes' if stored else 'NO'}; "
          f"written FMUs reproducing the best in fmpy and libcosim: "
          f"{sum(r.get('written') == 'ok' for r in rows)}/{len(rows)}; tracebacks: "
          f"{sum('TRACEBACK' in r.get('error', '') for r in rows)}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str))


if __name__ == "__main__":
    main()
