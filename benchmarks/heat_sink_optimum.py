"""Exhaustive search of the heat_sink study: the true optimum for the binary-quadratic benchmarks.

Enumerates every configuration of ``fmus/heat_sink.toml`` (levels of thresholded reals, integer
ranges, enumeration items, booleans), simulates each with the source-built FMU (compiled once,
one fmpy instance per worker process, reset between runs, one ``doStep`` over the whole profile:
all KPIs of the study are ``final(...)`` so this is exactly what the host computes), applies the
study's objective weights and constraints, and stores the optimum in
``benchmarks/heat_sink_optimum.json``.

Usage: ``python benchmarks/heat_sink_optimum.py [--workers 2] [--limit N]`` (``--limit`` for a dry run).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import multiprocessing as mp
import re
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "fmus" / "heat_sink.toml"
RESULT = ROOT / "benchmarks" / "heat_sink_optimum.json"
sys.path.insert(0, str(ROOT / "fmus"))

import build  # noqa: E402  (fmus/build.py)
from fmpy import read_model_description  # noqa: E402
from fmpy.fmi2 import FMU2Slave  # noqa: E402

from fmi_optimizer.space import Continuous  # noqa: E402

Config = dict[str, Any]
_worker: dict[str, Any] = {}


def load_study() -> dict[str, Any]:
    with open(STUDY, "rb") as f:
        return tomllib.load(f)


def value_grids(study: dict[str, Any], md: Any) -> dict[str, list[Any]]:
    """Every value of every study parameter, with the same rules as the host's design space."""
    variables = {v.name: v for v in md.modelVariables}
    grids: dict[str, list[Any]] = {}
    for name, spec in study["parameters"].items():
        var = variables[name]
        if var.type == "Real":
            dim = Continuous(name, float(spec["min"]), float(spec["max"]), levels=int(spec["levels"]))
            grids[name] = dim.grid()
        elif var.type == "Integer":
            grids[name] = list(range(int(spec.get("min", var.min)), int(spec.get("max", var.max)) + 1))
        elif var.type == "Enumeration":
            grids[name] = [int(item.value) for item in var.declaredType.items]
        elif var.type == "Boolean":
            grids[name] = [False, True]
        else:
            raise SystemExit(f"{name}: unsupported type {var.type}")
    return grids


def kpi_outputs(study: dict[str, Any]) -> dict[str, str]:
    out = {}
    for kpi, expr in study["kpis"].items():
        m = re.fullmatch(r"final\((\w+)\)", expr)
        if not m:
            raise SystemExit(f"kpi {kpi}: only final(...) KPIs can be evaluated with one doStep, got {expr}")
        out[kpi] = m.group(1)
    return out


def _init_worker(unzip_dir: str, study: dict[str, Any]) -> None:
    md = read_model_description(unzip_dir)
    fmu = FMU2Slave(
        guid=md.guid,
        unzipDirectory=unzip_dir,
        modelIdentifier=md.coSimulation.modelIdentifier,
        instanceName="exhaustive",
    )
    fmu.instantiate()
    variables = {v.name: v for v in md.modelVariables}
    grids = value_grids(study, md)
    kpis = kpi_outputs(study)
    _worker.update(
        fmu=fmu,
        vars=variables,
        grids=grids,
        kpis=kpis,
        study=study,
        out_vrs=[variables[o].valueReference for o in kpis.values()],
    )


def simulate(config: Config) -> dict[str, float] | None:
    """KPIs of one configuration, or None when the FMU reports an error."""
    fmu, variables, study = _worker["fmu"], _worker["vars"], _worker["study"]
    fmu.reset()
    try:
        for name, value in config.items():
            vr = [variables[name].valueReference]
            typ = variables[name].type
            if typ == "Real":
                fmu.setReal(vr, [value])
            elif typ == "Boolean":
                fmu.setBoolean(vr, [value])
            else:
                fmu.setInteger(vr, [value])
        stop = float(study["twin"]["stop_time"])
        fmu.setupExperiment(startTime=0.0, stopTime=stop)
        fmu.enterInitializationMode()
        fmu.exitInitializationMode()
        fmu.doStep(0.0, stop)
        values = fmu.getReal(_worker["out_vrs"])
    except Exception:  # fmpy raises FMICallException on fmi2Error: a failed evaluation
        return None
    return dict(zip(_worker["kpis"], values, strict=True))


def score(study: dict[str, Any], kpis: dict[str, float]) -> tuple[float, bool]:
    """(objective to minimize, feasible) exactly as the study file defines them."""
    obj = study["objective"]
    sign, weights = (1.0, obj["minimize"]) if "minimize" in obj else (-1.0, obj["maximize"])
    total = sign * sum(float(w) * kpis[k] for k, w in weights.items())
    feasible = True
    for k, rule in study.get("constraints", {}).items():
        op, limit = rule.split()
        feasible &= kpis[k] <= float(limit) if op == "<=" else kpis[k] >= float(limit)
    return total, feasible


def _chunk(bounds: tuple[int, int]) -> dict[str, Any]:
    grids = _worker["grids"]
    names = list(grids)
    product = itertools.islice(itertools.product(*grids.values()), bounds[0], bounds[1])
    best: list[tuple[float, Config, dict[str, float]]] = []
    feasible = failed = 0
    for combo in product:
        config = dict(zip(names, combo, strict=True))
        kpis = simulate(config)
        if kpis is None:
            failed += 1
            continue
        total, ok = score(_worker["study"], kpis)
        if ok and math.isfinite(total):
            feasible += 1
            best.append((total, config, kpis))
            best.sort(key=lambda t: t[0])
            del best[10:]
    return {"best": best, "feasible": feasible, "failed": failed, "n": bounds[1] - bounds[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0, help="only the first N configurations (dry run)")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()

    study = load_study()
    with tempfile.TemporaryDirectory() as tmp:
        fmu_path = build.build_sample("heat_sink", Path(tmp))
        sha = hashlib.sha256(fmu_path.read_bytes()).hexdigest()
        unzip = build.compile_fmu(fmu_path, Path(tmp) / "heat_sink")
        md = read_model_description(unzip)
        grids = value_grids(study, md)
        total = math.prod(len(g) for g in grids.values())
        n = min(total, args.limit) if args.limit else total
        step = 4096
        chunks = [(a, min(n, a + step)) for a in range(0, n, step)]
        t0 = time.perf_counter()
        best: list[tuple[float, Config, dict[str, float]]] = []
        feasible = failed = done = 0
        with mp.get_context("fork").Pool(args.workers, _init_worker, (str(unzip), study)) as pool:
            for res in pool.imap_unordered(_chunk, chunks):
                best = sorted(best + res["best"], key=lambda t: t[0])[:10]
                feasible += res["feasible"]
                failed += res["failed"]
                done += res["n"]
                rate = done / (time.perf_counter() - t0)
                print(
                    f"\r{done}/{n} configs, {rate:.0f}/s, best {best[0][0] if best else None}",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
        elapsed = time.perf_counter() - t0
    print(file=sys.stderr)
    result = {
        "study": "fmus/heat_sink.toml",
        "command": "python benchmarks/heat_sink_optimum.py"
        + (f" --limit {args.limit}" if args.limit else "")
        + (f" --workers {args.workers}" if args.workers != 2 else ""),
        "fmu_sha256": sha,
        "configurations": total,
        "evaluated": n,
        "complete": n == total,
        "feasible": feasible,
        "failed": failed,
        "seconds": round(elapsed, 1),
        "ms_per_evaluation_per_worker": round(1e3 * elapsed * args.workers / max(n, 1), 4),
        "workers": args.workers,
        "grid_sizes": {k: len(v) for k, v in grids.items()},
        "optimum": {"objective": best[0][0], "values": best[0][1], "kpis": best[0][2]} if best else None,
        "top10": [{"objective": o, "values": c} for o, c, _ in best],
    }
    text = json.dumps(result, indent=2, default=float)
    args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
