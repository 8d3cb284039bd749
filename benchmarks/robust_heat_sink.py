"""Issue 8 acceptance experiment on the heat_sink twin: nominal vs chance-constrained optimum, checked on a
fresh larger sample, and a Pareto front of mass vs fan energy.

1. nominal study: fmus/heat_sink.toml as shipped (T_junction_max <= 378.15 K at T_ambient = 313.15 K,
   P_peak = 160 W, P_idle = 40 W), method ``ga``;
2. robust study: the same plus [uncertainty] (T_ambient, P_peak, P_idle) and the chance constraint
   P(T_junction_max <= 378.15) >= 0.95 (Clopper-Pearson at confidence 0.95), 64 scenarios per candidate,
   grown sequentially (64 -> 128 -> 256, docs/uncertainty.md) for candidates that can beat the incumbent;
   method ``ga``;
3. check: the nominal optimum (the GA's and the exhaustive one from benchmarks/heat_sink_optimum.json) and
   the robust optimum on a FRESH sample (different sampler and seed, 2000 scenarios);
4. Pareto front of mass vs fan energy under the nominal temperature limit.
   a. The exact front of the twin as shipped in fmus/heat_sink.toml (fan energy depends only on
      (fan_model, fan_speed): 16 levels): for each level, every configuration of the other 7 parameters is
      enumerated in ascending mass (mass is a closed formula of the geometry, checked against the FMU's
      ``mass`` output for every simulated configuration) and simulated until the first feasible one: the
      exact minimum mass per level, no assumption needed.
   b. The exact front with the fan's PWM duty cycle ``fan_duty`` (0.2..1, a continuous speed ratio
      r = (0.55 + 0.15 fan_speed) fan_duty, so fan energy is continuous): per fan model, configurations in
      ascending mass; each one is kept when it is feasible at a lower ratio than every lighter one, and its
      minimum ratio is found by bisection. This assumes that a design feasible at ratio r is feasible at
      every higher ratio (more air, cooler junction); the assumption is spot-checked on every front point.
   c. What the tool finds on the PWM study (fan_duty a continuous design parameter): ``random``, then the
      epsilon-constraint formulation (min mass s.t. fan_energy <= eps, ``ga``) for a geometric sweep of eps;
      the front is taken over every evaluated point and compared with (b).

Usage: ``python benchmarks/robust_heat_sink.py [--out DIR] [--skip-robust | --skip-pareto] [--check-samples 2000]
[--eps-count 12] [--eps-budget 1000] ...`` (``--help`` lists all).
Prints one JSON object (also written to DIR/robust_heat_sink.json); record it in docs/bench/uncertainty.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import multiprocessing as mp
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fmi_optimizer import Candidate, Capabilities, Method, optimize
from fmi_optimizer.hookspecs import hookimpl
from fmi_optimizer.study.pareto import by_kpis, front, non_dominated

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import heat_sink_optimum as hso  # noqa: E402  (exhaustive-search helpers: one fmpy slave per process)

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


# -- exact Pareto references (module level: run in a fork pool with one FMU per process) -------------------
RHO = (2705.0, 2700.0, 2700.0, 8940.0)  # fmus/heat_sink/model.c MATERIALS[].rho
FAN_KG = (0.04, 0.07, 0.10, 0.12)  # FANS[].kg
DUCT_KG = 0.03
OTHER = ("n_fins", "fin_height", "fin_thickness", "base_thickness", "material", "tim", "duct")
R_MIN, R_MAX, R_TOL = 0.7 * 0.2, 1.15, 1e-3  # speed ratio range with PWM, bisection tolerance (relative)


def speed_ratio(step: int) -> float:
    return 0.55 + 0.15 * step


def _mass(c: dict[str, Any]) -> float:
    """model.c's mass formula (same operation order); every simulated configuration checks it."""
    width, length = (float(hso._worker["vars"][k].start) for k in ("base_width", "base_length"))
    ms = RHO[c["material"] - 1] * (width * length * c["base_thickness"]
                                   + c["n_fins"] * c["fin_thickness"] * c["fin_height"] * length)
    return ms + FAN_KG[c["fan_model"] - 1] + (DUCT_KG if c["duct"] else 0.0)


def _by_mass(fan: int) -> list[tuple[float, dict[str, Any]]]:
    grids = hso._worker["grids"]
    configs = [{**dict(zip(OTHER, combo, strict=True)), "fan_model": fan}
               for combo in itertools.product(*(grids[k] for k in OTHER))]
    return sorted(((_mass(c), c) for c in configs), key=lambda t: t[0])


def _feasible(config: dict[str, Any], mass: float) -> dict[str, float] | None:
    kpis = hso.simulate(config)
    if kpis is None:
        return None
    if abs(kpis["mass"] - mass) > 1e-9:
        raise SystemExit(f"mass formula out of date with model.c: {kpis['mass']} != {mass} for {config}")
    return kpis if kpis["t_junction_max"] <= LIMIT else None


def level_minimum(level: tuple[int, int]) -> dict[str, Any]:
    """Exact minimum mass at one (fan_model, fan_speed) of the shipped twin (fan_duty at its default 1)."""
    fan, speed = level
    sims = 0
    for mass, c in _by_mass(fan):
        sims += 1
        kpis = _feasible({**c, "fan_speed": speed}, mass)
        if kpis is not None:
            return {"fan_model": fan, "fan_speed": speed, "mass": kpis["mass"], "fan_energy": kpis["fan_energy"],
                    "values": {**c, "fan_speed": speed}, "simulations": sims}
    return {"fan_model": fan, "fan_speed": speed, "mass": None, "fan_energy": None, "simulations": sims}


def _setting(r: float) -> dict[str, Any]:
    """Speed ratio r as (fan_speed, fan_duty): the lowest speed step that reaches r, duty = r / its ratio."""
    step = next(s for s in (1, 2, 3, 4) if speed_ratio(s) >= r - 1e-12)
    return {"fan_speed": step, "fan_duty": min(1.0, r / speed_ratio(step))}


def pwm_staircase(fan: int) -> dict[str, Any]:
    """Exact mass/fan-energy front of one fan model with a continuous PWM ratio (see the docstring, 4b)."""
    steps: list[dict[str, Any]] = []
    sims = broken = 0
    top: float | None = None  # the lowest ratio at which some lighter configuration is feasible
    for mass, c in _by_mass(fan):
        hi = R_MAX if top is None else top * (1.0 - R_TOL)
        if hi < R_MIN:
            break
        sims += 1
        if _feasible({**c, **_setting(hi)}, mass) is None:
            continue
        lo = R_MIN
        sims += 1
        if _feasible({**c, **_setting(lo)}, mass) is not None:
            hi = lo
        while hi / lo > 1.0 + R_TOL:
            mid = math.sqrt(lo * hi)
            sims += 1
            if _feasible({**c, **_setting(mid)}, mass) is not None:
                hi = mid
            else:
                lo = mid
        values = {**c, **_setting(hi)}
        kpis = _feasible(values, mass)
        checks = [hi * f for f in (1.02, 1.1, 1.3, 1.6, 2.0, 3.0) if hi * f < R_MAX] + [R_MAX]
        sims += 1 + len(checks)
        broken += sum(_feasible({**c, **_setting(r)}, mass) is None for r in checks)
        assert kpis is not None
        steps.append({"mass": kpis["mass"], "fan_energy": kpis["fan_energy"], "ratio": hi, "values": values})
        top = hi
    return {"fan_model": fan, "steps": steps, "simulations": sims, "monotonicity_violations": broken}


def exact_references(fmu: Path, out: Path, workers: int) -> dict[str, Any]:
    """Both exact fronts (4a and 4b of the docstring), with their simulation counts and seconds."""
    unzip = hso.build.compile_fmu(fmu, out / "compiled")
    study = hso.load_study()
    levels = [(fan, speed) for fan in (1, 2, 3, 4) for speed in (1, 2, 3, 4)]
    t0 = time.time()
    with mp.get_context("fork").Pool(workers, hso._init_worker, (str(unzip), study)) as pool:
        minima = pool.map(level_minimum, levels, chunksize=1)
        t1 = time.time()
        stairs = pool.map(pwm_staircase, (1, 2, 3, 4), chunksize=1)
    t2 = time.time()
    feasible = [m for m in minima if m["mass"] is not None]
    mask = non_dominated(np.array([[m["fan_energy"], m["mass"]] for m in feasible]))
    discrete = sorted((m for m, keep in zip(feasible, mask, strict=True) if keep), key=lambda m: m["fan_energy"])
    steps = [st for s in stairs for st in s["steps"]]
    mask = non_dominated(np.array([[st["fan_energy"], st["mass"]] for st in steps]))
    pwm = sorted((st for st, keep in zip(steps, mask, strict=True) if keep), key=lambda st: st["fan_energy"])
    return {"shipped_16_settings": {"per_level_minimum": minima, "front": discrete, "front_size": len(discrete),
                                    "simulations": sum(m["simulations"] for m in minima),
                                    "seconds": round(t1 - t0, 1)},
            "pwm": {"front": pwm, "front_size": len(pwm), "ratio_tolerance": R_TOL,
                    "per_fan_model_steps": {s["fan_model"]: len(s["steps"]) for s in stairs},
                    "simulations": sum(s["simulations"] for s in stairs),
                    "monotonicity_violations": sum(s["monotonicity_violations"] for s in stairs),
                    "seconds": round(t2 - t1, 1)},
            "workers": workers}


def exact_min_mass(reference: list[dict[str, Any]], energy: float) -> float | None:
    """The exact front's minimum mass at fan energy <= ``energy`` (None below the front's first point)."""
    ok = [p["mass"] for p in reference if p["fan_energy"] <= energy * (1 + 1e-9)]
    return min(ok) if ok else None


def kpis_of(ev: Any) -> dict[str, float]:
    return {k: ev.kpis[k] for k in ("cost", "mass", "fan_energy", "t_junction_max")}


def tool_front(fmu: Path, out: Path, args: argparse.Namespace, reference: list[dict[str, Any]]) -> dict[str, Any]:
    """4c: random + epsilon-constraint sweep on the PWM study; front over every evaluated point vs the exact one."""
    key = by_kpis([("mass", "minimize"), ("fan_energy", "minimize")])
    pwm = base_study(fmu)
    pwm["parameters"]["fan_duty"] = {"min": 0.2, "max": 1.0}
    pwm["objective"] = {"minimize": {"mass": 10.0, "fan_energy": 0.002}}
    pwm["method"] = {"name": "random", "budget": {"evaluations": args.pareto_budget}, "seed": args.seed}
    par = run(pwm, out / "pareto_pwm", write_back=False)
    pooled, eps_seconds, sweep = list(par.result.evaluations), 0.0, []
    lo, hi = args.eps_min, reference[-1]["fan_energy"]  # below ~100 J the exact front needs > 0.7 kg
    eps_values = [lo * (hi / lo) ** (i / (args.eps_count - 1)) for i in range(args.eps_count)]
    for i, eps in enumerate(eps_values):
        study = base_study(fmu)
        study["parameters"]["fan_duty"] = {"min": 0.2, "max": 1.0}
        study["objective"] = {"minimize": "mass"}
        study["constraints"] = {"t_junction_max": f"<= {LIMIT}", "fan_energy": f"<= {eps:.6g}"}
        study["method"] = {"name": "ga", "budget": {"evaluations": args.eps_budget}, "seed": args.seed + i}
        o = run(study, out / f"eps_{i}", write_back=False)
        eps_seconds += o.seconds
        pooled += [e for e in o.result.evaluations if e.ok and e.kpis["t_junction_max"] <= LIMIT]
        best = o.result.best if o.result.best is not None and o.result.best.feasible else None
        exact = exact_min_mass(reference, eps)
        sweep.append({"eps": eps, "mass": None if best is None else best.kpis["mass"], "exact_mass": exact,
                      "gap": None if best is None or exact is None else best.kpis["mass"] / exact - 1.0})
    # feasibility under the nominal limit only (the eps constraints are a formulation, not a requirement)
    feasible = [dataclasses.replace(e, constraints=(e.kpis["t_junction_max"] - LIMIT,))
                for e in pooled if e.ok and e.kpis["t_junction_max"] <= LIMIT]
    pts = front(feasible, key)
    gaps = []
    for e in pts:
        exact = exact_min_mass(reference, e.kpis["fan_energy"])
        gaps.append(None if exact is None else e.kpis["mass"] / exact - 1.0)
    known = [g for g in gaps if g is not None]
    return {"study": "fmus/heat_sink.toml + fan_duty = {min = 0.2, max = 1.0} (continuous)",
            "random": {"evaluations": par.result.counts()["total"], "seconds": par.seconds,
                       "front_size": len(front(par.result.evaluations, key)), "report": par.files.get("report")},
            "epsilon_constraint": {"method": "ga", "eps_count": args.eps_count, "evaluations_each": args.eps_budget,
                                   "seconds": eps_seconds, "sweep": sweep},
            "front_size": len(pts),
            "front_points": len({(round(e.kpis["mass"], 9), round(e.kpis["fan_energy"], 6)) for e in pts}),
            "within_1pct_of_exact": sum(g <= 0.01 for g in known),
            "gap_to_exact": {"median": float(np.median(known)) if known else None,
                             "max": max(known) if known else None, "min": min(known) if known else None},
            "front": [{**kpis_of(e), "gap_to_exact": g, "values": dict(e.values)}
                      for e, g in zip(pts, gaps, strict=True)]}


def shipped_random_front(fmu: Path, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """``random`` on the shipped study (16 fan settings): its front of evaluated points."""
    pareto = base_study(fmu)
    pareto["objective"] = {"minimize": {"mass": 10.0, "fan_energy": 0.002}}
    pareto["method"] = {"name": "random", "budget": {"evaluations": args.pareto_budget}, "seed": args.seed}
    par = run(pareto, out / "pareto", write_back=False)
    pts = front(par.result.evaluations, by_kpis([("mass", "minimize"), ("fan_energy", "minimize")]))
    return {"evaluations": par.result.counts()["total"], "seconds": par.seconds, "front_size": len(pts),
            "front": [kpis_of(e) for e in pts], "report": par.files.get("report")}


def robust_part(fmu: Path, args: argparse.Namespace) -> dict[str, Any]:
    """1-3 of the docstring: nominal and chance-constrained optima, fresh-sample check, price of robustness."""
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
    nom_k = check["designs"]["nominal optimum (exhaustive)"]["nominal_kpis"]
    rob_k = check["designs"]["chance-constrained optimum (ga)"]["nominal_kpis"]
    unc = rob.result.diagnostics["uncertainty"]
    growth = {k: v for k, v in unc["growth"].items() if k != "grown"}
    growth["scenarios_of_grown"] = [g["scenarios"][-1] for g in unc["growth"]["grown"]]
    return {
        "nominal_study": {"method": "ga", "evaluations": nom.result.counts()["total"], "seconds": nom.seconds,
                          "objective": nom.result.best.objective, "kpis": kpis_of(nom.result.best),
                          "values": dict(nom.result.best.values)},
        "robust_study": {"method": "ga", "runs": rob.result.counts()["total"],
                         "candidates": len(rob.result.aggregates), "seconds": rob.seconds,
                         "grown_candidates": unc["grown_candidates"], "growth": growth,
                         "robust_score": rob.result.best.objective, "nominal_kpis": kpis_of(rob.result.best),
                         "chance_on_study_sample": unc.get("best", {}).get("chance"),
                         "scenarios_of_best": unc.get("best", {}).get("scenarios"),
                         "values": dict(rob.result.best.values), "report": rob.files.get("report")},
        "fresh_check": check,
        "price_of_robustness_vs_exhaustive_nominal": {k: {"nominal": nom_k[k], "robust": rob_k[k],
                                                          "extra": rob_k[k] - nom_k[k]}
                                                      for k in ("cost", "mass", "fan_energy")},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/robust_heat_sink"))
    ap.add_argument("--nominal-budget", type=int, default=2000)
    ap.add_argument("--robust-candidates", type=int, default=200)
    ap.add_argument("--check-samples", type=int, default=2000)
    ap.add_argument("--pareto-budget", type=int, default=1000)
    ap.add_argument("--eps-count", type=int, default=12)
    ap.add_argument("--eps-budget", type=int, default=1000)
    ap.add_argument("--eps-min", type=float, default=100.0, help="J: the sweep is geometric from here to the "
                    "exact front's lightest point")
    ap.add_argument("--workers", type=int, default=2, help="processes of the exact Pareto references")
    ap.add_argument("--skip-robust", action="store_true", help="only the Pareto part (4)")
    ap.add_argument("--skip-pareto", action="store_true", help="only the robust part (1-3)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(ROOT / "fmus" / "build.py"), "--out", str(args.out), "heat_sink"], check=True,
                   capture_output=True)
    fmu = args.out / "heat_sink.fmu"
    t_start = time.time()
    summary: dict[str, Any] = {"command": "python benchmarks/robust_heat_sink.py " + " ".join(sys.argv[1:]),
                               "uncertainty": UNCERTAIN}
    if not args.skip_robust:
        summary.update(robust_part(fmu, args))
    if not args.skip_pareto:
        exact = exact_references(fmu, args.out, args.workers)
        print(f"exact fronts: {exact['shipped_16_settings']['front_size']} (16 settings), "
              f"{exact['pwm']['front_size']} (PWM)", file=sys.stderr)
        summary["pareto"] = {"exact": exact, "shipped_random": shipped_random_front(fmu, args.out, args),
                             "pwm_tool": tool_front(fmu, args.out, args, exact["pwm"]["front"])}
    summary["total_seconds"] = time.time() - t_start
    text = json.dumps(summary, indent=1, default=str)
    (args.out / "robust_heat_sink.json").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
