"""``compare``: several methods, several seeds, one twin and budget — a table and convergence plots."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fmi_optimizer.errors import FmiOptimizerError
from fmi_optimizer.host.loader import load_host
from fmi_optimizer.reporting import CSS, figure_html, pyplot, table_html
from fmi_optimizer.runner.run import default_out_dir, ensure_writable, run_study
from fmi_optimizer.study.config import StudyConfig, minimized_target, stated_objective
from fmi_optimizer.writeback.atomic import write_text_atomic


def _best_curve(trace: Sequence[float | None], feasible: Sequence[bool]) -> list[float]:
    best, out = math.inf, []
    for v, ok in zip(trace, feasible, strict=True):
        if v is not None and ok and v < best:
            best = v
        out.append(best)
    return out


def _median(values: Sequence[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.median(finite)) if finite else None


def _evals_to(curve: Sequence[float], target: float) -> int | None:
    for i, v in enumerate(curve):
        if v <= target:
            return i + 1
    return None


def compare_methods(config: StudyConfig, methods: Sequence[str], repeats: int, target: float | None,
                    log: Callable[[str], None]) -> dict[str, Any]:
    """Run every method ``repeats`` times (seeds 0..repeats-1) and summarize. ``target`` and every number
    returned are in the objective's stated sense (a single maximized KPI's own value), as in ``optimize``."""
    host = load_host(config.plugins_dir)
    for m in methods:
        host.methods.resolve(m)  # unknown names fail before any simulation
    out_dir = ensure_writable(default_out_dir(config) / "compare")
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    for m in methods:
        for seed in range(repeats):
            cfg = config.with_overrides(method=m, seed=seed, out_dir=out_dir / f"{m}-seed{seed}")
            log(f"compare: {m} seed {seed}")
            try:
                outcome = run_study(cfg, host, write_back=False, report=False, log=log)
            except FmiOptimizerError as exc:
                log(f"compare: {m} seed {seed} failed: {exc}")
                runs[m].append({"seed": seed, "error": str(exc), "curve": [], "wall": math.nan,
                                "failures": 0})
                continue
            evs = outcome.result.evaluations
            curve = _best_curve([e.objective for e in evs], [e.feasible for e in evs])
            runs[m].append({"seed": seed, "curve": curve, "wall": outcome.result.wall_seconds,
                            "failures": sum(1 for e in evs if not e.ok),
                            "best": curve[-1] if curve else math.inf})
    finals = [r["curve"][-1] for rs in runs.values() for r in rs if r["curve"]
              and math.isfinite(r["curve"][-1])]
    reach = (minimized_target(config.objective, target) if target is not None
             else (min(finals) if finals else math.nan))
    what, _ = stated_objective(config.objective, 0.0)

    def stated(v: float) -> float | None:  # no feasible point yet (inf) is no value, in either sense
        return stated_objective(config.objective, v)[1] if math.isfinite(v) else None

    summary_rows = []
    for m, rs in runs.items():
        bests = np.array([r["curve"][-1] for r in rs if r["curve"]], dtype=float)
        bests = bests[np.isfinite(bests)]  # a run with no feasible evaluation has no best (inf), not a number
        hits = [_evals_to(r["curve"], reach) for r in rs if r["curve"]]
        reached = [h for h in hits if h is not None]
        q1, q3 = (np.percentile(bests, [25, 75]) if bests.size else (math.nan, math.nan))
        summary_rows.append({
            "method": m, "repeats": len(rs),
            "best_median": stated(float(np.median(bests))) if bests.size else None,
            "best_iqr": abs(stated_objective(config.objective, float(q3))[1]
                            - stated_objective(config.objective, float(q1))[1]) if bests.size else None,
            "evals_to_target_median": float(np.median(reached)) if len(reached) * 2 > len(rs) else None,
            "reached": len(reached),
            "wall_seconds_median": _median([r["wall"] for r in rs]),
            "failures": int(sum(r["failures"] for r in rs)),
        })
    curves = {m: [[stated(v) for v in r["curve"]] for r in rs] for m, rs in runs.items()}
    report = out_dir / "compare.html"
    target_stated = stated(reach) if math.isfinite(reach) else None
    _write_compare_report(report, config.name, curves, summary_rows,
                          math.nan if target_stated is None else target_stated, what)
    data = _finite_or_none({"study": config.name, "objective": what, "target": target_stated,  # valid JSON
                            "methods": summary_rows, "report": str(report), "curves": curves})
    write_text_atomic(out_dir / "compare.json", json.dumps(data))
    return data


def _finite_or_none(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite_or_none(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite_or_none(v) for v in x]
    return x


def _write_compare_report(path: Path, name: str, runs: dict[str, list[list[float | None]]],
                          rows: list[dict[str, Any]], target: float, what: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    for m, rs in runs.items():
        curves = [c for c in rs if c]
        if not curves:
            continue
        n = max(len(c) for c in curves)
        arr = np.array([[math.nan if v is None else v for v in c + [c[-1]] * (n - len(c))] for c in curves],
                       dtype=float)
        arr[~np.isfinite(arr)] = np.nan
        # evaluations before any run found a feasible point: no curve yet
        keep = ~np.all(np.isnan(arr), axis=0)
        if not keep.any():
            continue
        x = np.arange(1, n + 1)[keep]
        arr = arr[:, keep]
        ax.plot(x, np.nanmedian(arr, axis=0), label=f"{m} (median of {len(curves)})")
        ax.fill_between(x, np.nanpercentile(arr, 25, axis=0), np.nanpercentile(arr, 75, axis=0), alpha=0.2)
    if math.isfinite(target):
        ax.axhline(target, color="gray", ls="--", lw=0.8, label="target")
    ax.set_xlabel("evaluations")
    ax.set_ylabel(f"best feasible {what} so far")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    def cell(v: Any) -> Any:  # no value is shown as "-" (as in the terminal), never as a literal None
        return "-" if v is None else v

    table = table_html(["method", "best median", "IQR", "evals to target (median)", "reached", "wall s",
                        "failures"],
                   [[r["method"], cell(r["best_median"]), cell(r["best_iqr"]),
                     cell(r["evals_to_target_median"]),
                     f"{r['reached']}/{r['repeats']}", cell(r["wall_seconds_median"]),
                     r["failures"]] for r in rows])
    doc = (f"<!doctype html><html><head><meta charset=utf-8><title>compare {html.escape(name)}</title>"
           f"<style>{CSS}</style></head><body><h1>Method comparison — {html.escape(name)}</h1>{table}"
           "<h2>Convergence (median and inter-quartile band over "
           f"repeats)</h2>{figure_html(fig)}</body></html>")
    write_text_atomic(path, doc)
