"""Issue 8 acceptance experiment on the heat_sink twin: nominal vs chance-constrained optimum, checked on a
fresh larger sample, and a Pareto front of mass vs fan energy.

1. nominal study: fmus/heat_sink.toml as shipped (T_junction_max <= 378.15 K at T_ambient = 313.15 K,
   P_peak = 160 W, P_idle = 40 W), method ``ga``;
2. robust study: the same plus [uncertainty] (T_ambient, P_peak, P_idle) and the chance constraint
   P(T_junction_max <= 378.15) >= 0.95 (Clopper-Pearson at confidence 0.95), 64 scenarios per candidate,
   grown to 256 for candidates close to the best; method ``ga``;
3. check: the nominal optimum (the GA's and the exhaustive one from benchmarks/heat_sink_optimum.json) and
   the robust optimum on a FRESH sample (different sampler and seed, 2000 scenarios);
4. Pareto front of mass vs fan energy under the nominal temperature limit: a ``random`` search, then the
   epsilon-constraint formulation. Fan energy depends only on (fan_model, fan_speed): 16 levels. So
   min mass s.t. fan_energy <= eps is the smallest of the per-level minima at or below eps, and the
   benchmark computes each level's minimum with ``ga`` (fan fixed, the other 7 parameters optimized,
   T_junction_max <= 378.15 K); the front is taken over every evaluated point of every study.

Usage: ``python benchmarks/robust_heat_sink.py [--out DIR] [--robust-candidates 200] [--nominal-budget 2000]``.
Prints one JSON object (also written to DIR/robust_heat_sink.json); record it in docs/bench/uncertainty.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any, ClassVar

from fmi_optimizer import Candidate, Capabilities, Method, optimize
from fmi_optimizer.hookspecs import hookimpl
from fmi_optimizer.pareto import by_kpis, front

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 378.15
UNCERTAIN = {
    "T_ambient": {"dist": "truncnormal", "mean": 313.15, "std": 3.0, "min": 303.15, "max": 323.15},
    "P_peak": {"dist": "normal", "mean": 160.0, "std": 10.0},
    "P_idle": {"dist": "uniform", "min": 35.0, "max": 45.0},
}


class FixedDesigns(Method):
    """Asks the designs in ``designs`` once each (to evaluate given designs through the host)."""

    name = "fixed_designs"
    summary = "benchmark helper: evaluates a fixed list of designs"
    capabilities = Capabilities()
    designs: ClassVar[list[dict[str, Any]]] = []

    def ask(self, n: int) -> list[Candidate]:
        done = len(self.history)
        return [Candidate(dict(d)) for d in self.designs[done:done + n]]


class FixedPlugin:
    @staticmethod
    @hookimpl
    def fmio_register_methods(registry: Any) -> None:
        registry.add(FixedDesigns)


def base_study(fmu: Path) -> dict[str, Any]:
    study = tomllib.loads((ROOT / "fmus" / "heat_sink.toml").read_text())
    study["twin"]["fmu"] = str(fmu)
    study["evaluation"] = {"workers": 2}
    return study


def robust_block(samples: int, max_samples: int | None, sampler: str, seed: int) -> dict[str, Any]:
    block: dict[str, Any] = {"samples": samples, "sampler": sampler, "seed": seed, "score": "mean",
                             "confidence": 0.95, "bound": "clopper-pearson", "parameters": UNCERTAIN}
    if max_samples:
        block["max_samples"] = max_samples
    return block


def run(study: dict[str, Any], out: Path, **kw: Any) -> Any:
    t0 = time.time()
    outcome = optimize(study, out=out, base_dir=out, **kw)
    outcome.seconds = time.time() - t0
    return outcome


def check_designs(fmu: Path, designs: dict[str, dict[str, Any]], out: Path, samples: int) -> dict[str, Any]:
    """Every design over a fresh sample (LHS, seed 20261126): achieved probability and its interval."""
    FixedDesigns.designs = list(designs.values())
    study = base_study(fmu)
    study["constraints"] = {"t_junction_max": {"op": "<=", "limit": LIMIT, "probability": 0.95}}
    study["uncertainty"] = robust_block(samples, None, "lhs", 20261126)
    study["method"] = {"name": "fixed_designs", "budget": {"evaluations": len(designs) * (samples + 1)}, "seed": 0}
    outcome = run(study, out, plugins=[FixedPlugin()], write_back=False)
    layer = outcome.problem.robust
    res = {}
    for cid, label in enumerate(designs):
        j = layer.judged[cid]
        c = j.chance[0]
        tj = sorted(j.kpi_samples["t_junction_max"])
        res[label] = {"values": designs[label], "nominal_kpis": j.nominal.kpis if j.nominal else None,
                      "violation_fraction": 1 - c.probability, "P_hat": c.probability,
                      "P_interval_95": [c.lower, c.upper], "meets_0.95_with_confidence": c.holds,
                      "t_junction_max_q95": tj[int(0.95 * len(tj)) - 1], "t_junction_max_worst": tj[-1],
                      "scenarios": c.n}
    return {"fresh_sample": {"sampler": "lhs", "seed": 20261126, "scenarios": samples}, "designs": res,
            "seconds": outcome.seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/robust_heat_sink"))
    ap.add_argument("--nominal-budget", type=int, default=2000)
    ap.add_argument("--robust-candidates", type=int, default=200)
    ap.add_argument("--check-samples", type=int, default=2000)
    ap.add_argument("--pareto-budget", type=int, default=1000)
    ap.add_argument("--eps-budget", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(ROOT / "fmus" / "build.py"), "--out", str(args.out), "heat_sink"], check=True,
                   capture_output=True)
    fmu = args.out / "heat_sink.fmu"
    t_start = time.time()

    nominal = base_study(fmu)
    nominal["method"] = {"name": "ga", "budget": {"evaluations": args.nominal_budget}, "seed": args.seed}
    nom = run(nominal, args.out / "nominal")
    print(f"nominal: {nom.result.best.objective:.4f} in {nom.seconds:.0f} s", file=sys.stderr)

    robust = base_study(fmu)
    robust["constraints"] = {"t_junction_max": {"op": "<=", "limit": LIMIT, "probability": 0.95}}
    robust["uncertainty"] = robust_block(64, 256, "sobol", 7)
    robust["method"] = {"name": "ga", "budget": {"evaluations": args.robust_candidates * 65}, "seed": args.seed}
    rob = run(robust, args.out / "robust")
    print(f"robust: {rob.result.best.objective:.4f} in {rob.seconds:.0f} s", file=sys.stderr)

    exhaustive = json.loads((ROOT / "benchmarks" / "heat_sink_optimum.json").read_text())["optimum"]["values"]
    designs = {"nominal optimum (exhaustive)": exhaustive, "nominal optimum (ga)": dict(nom.result.best.values),
               "chance-constrained optimum (ga)": dict(rob.result.best.values)}
    check = check_designs(fmu, designs, args.out / "check", args.check_samples)

    pareto = base_study(fmu)
    pareto["objective"] = {"minimize": {"mass": 10.0, "fan_energy": 0.002}}
    pareto["method"] = {"name": "random", "budget": {"evaluations": args.pareto_budget}, "seed": args.seed}
    par = run(pareto, args.out / "pareto", write_back=False)
    key = by_kpis([("mass", "minimize"), ("fan_energy", "minimize")])
    random_front = front(par.result.evaluations, key)
    levels = [(fan, speed) for fan in (1, 2, 3, 4) for speed in (1, 2, 3, 4)]  # FanModel items x fan_speed 1..4
    pooled, eps_seconds, level_min = list(par.result.evaluations), 0.0, {}
    for i, (fan, speed) in enumerate(levels):
        eps_study = base_study(fmu)
        eps_study["parameters"] = {k: v for k, v in eps_study["parameters"].items() if k not in ("fan_model", "fan_speed")}
        eps_study["fixed"] = {"fan_model": fan, "fan_speed": speed}
        eps_study["objective"] = {"minimize": "mass"}
        eps_study["method"] = {"name": "ga", "budget": {"evaluations": args.eps_budget}, "seed": args.seed + i}
        o = run(eps_study, args.out / f"eps_{i}", write_back=False)
        eps_seconds += o.seconds
        for e in o.result.evaluations:  # the fixed fan is not in the design values: put it back
            e.candidate.values.update({"fan_model": fan, "fan_speed": speed})
        pooled += o.result.evaluations
        best = o.result.best
        level_min[f"fan_model={fan} fan_speed={speed}"] = (
            {"fan_energy": best.kpis["fan_energy"], "mass": best.kpis["mass"]} if best is not None and best.feasible
            else None)
    pts = front(pooled, key)

    def kpis(ev: Any) -> dict[str, float]:
        return {k: ev.kpis[k] for k in ("cost", "mass", "fan_energy", "t_junction_max")}

    nom_k = check["designs"]["nominal optimum (exhaustive)"]["nominal_kpis"]
    rob_k = check["designs"]["chance-constrained optimum (ga)"]["nominal_kpis"]
    summary = {
        "command": "python benchmarks/robust_heat_sink.py " + " ".join(sys.argv[1:]),
        "uncertainty": UNCERTAIN,
        "nominal_study": {"method": "ga", "evaluations": nom.result.counts()["total"], "seconds": nom.seconds,
                          "objective": nom.result.best.objective, "kpis": kpis(nom.result.best),
                          "values": dict(nom.result.best.values)},
        "robust_study": {"method": "ga", "runs": rob.result.counts()["total"],
                         "candidates": len(rob.result.aggregates), "seconds": rob.seconds,
                         "grown_candidates": rob.result.diagnostics["uncertainty"]["grown_candidates"],
                         "robust_score": rob.result.best.objective, "nominal_kpis": kpis(rob.result.best),
                         "chance_on_study_sample": rob.result.diagnostics["uncertainty"].get("best", {}).get("chance"),
                         "values": dict(rob.result.best.values), "report": rob.files.get("report")},
        "fresh_check": check,
        "price_of_robustness_vs_exhaustive_nominal": {k: {"nominal": nom_k[k], "robust": rob_k[k],
                                                          "extra": rob_k[k] - nom_k[k]}
                                                      for k in ("cost", "mass", "fan_energy")},
        "pareto": {"random": {"evaluations": par.result.counts()["total"], "seconds": par.seconds,
                              "front_size": len(random_front), "report": par.files.get("report")},
                   "epsilon_constraint": {"method": "ga", "evaluations_each": args.eps_budget,
                                          "seconds": eps_seconds, "minimum_mass_per_level": level_min},
                   "front_size": len(pts),
                   "front_points": len({(round(e.kpis["mass"], 9), round(e.kpis["fan_energy"], 6)) for e in pts}),
                   "front_size_mass_energy_cost": len(front(pooled, by_kpis([("mass", "minimize"),
                                                                            ("fan_energy", "minimize"),
                                                                            ("cost", "minimize")]))),
                   "front": [{**kpis(e), "values": dict(e.values)} for e in pts]},
        "total_seconds": time.time() - t_start,
    }
    text = json.dumps(summary, indent=1, default=str)
    (args.out / "robust_heat_sink.json").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
