"""The ``ranking`` method's diagnostics: a JSON-able account of what was selected, with which guarantee,
from which evidence (means, intervals, eliminations, normality, failures, validation)."""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from .procedures import mcb_intervals

if TYPE_CHECKING:
    from .method import RankingMethod


def scenario_observations(m: RankingMethod) -> list[np.ndarray]:
    """Every complete observation (batch mean) of each scenario, in slot order."""
    out = []
    for i in range(m.machine.k):
        vals = [m.ledger.observation(i, s) for s in range(int(m.queued[i]))]
        out.append(np.array([v for v in vals if v is not None], dtype=float))
    return out


def scenario_means(m: RankingMethod) -> np.ndarray:
    return np.array([float(o.mean()) if o.size else math.nan for o in scenario_observations(m)])


def _ci(x: np.ndarray | list[float], level: float = 0.95) -> list[float] | None:
    from scipy import stats

    x = np.asarray(x, dtype=float)
    if x.size < 2:
        return None
    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return [float(x.mean() - half), float(x.mean() + half)]


def guarantee(m: RankingMethod) -> str:
    """The statement the selection carries, in words, with its assumptions."""
    o = m.options
    p = f"{1 - o.alpha:g}"
    kind = m.machine.guarantee_kind
    if m.machine.selected is None and kind != "subset":
        return "no scenario selected: no guarantee"
    crn = " (paired variances: valid under common random numbers)" if o.common_random_numbers else ""
    if kind == "iz":
        indep = ""
        if o.procedure in ("rinott", "nsgs"):
            indep = (
                " under independent sampling across scenarios"
                if not o.common_random_numbers
                else "; WARNING: crn = true breaks the independence this procedure assumes"
            )
        text = f"PCS >= {p} whenever the best mean is at least delta = {o.delta:g} better than all others{indep}{crn}"
    elif kind == "izfree":
        text = (
            f"PCS >= {p} for any means without ties (no delta), with the variances estimated (asymptotically "
            f"valid in n0){crn}"
        )
    elif kind == "subset":
        cond = f" whenever it is at least delta = {o.delta:g} better" if o.delta > 0 else ""
        text = f"P(best scenario is in the subset) >= {p}{cond}{crn}"
    else:
        text = "none: OCBA allocates a fixed budget to maximize an approximate PCS; no guarantee"
    if m.machine.capped:
        text += f"; WARNING: stopped at max_observations = {o.max_observations}, guarantee not reached"
    if any(h["reason"].startswith("replication failed") for h in m.machine.history):
        text += "; applies among the scenarios not dropped for failures"
    return "normal observations assumed: " + text if kind != "none" else text


def normality(m: RankingMethod) -> dict[str, Any]:
    """Shapiro-Wilk on each scenario's first stage, Bonferroni-adjusted over the scenarios."""
    from scipy import stats

    first = m.machine.first_stage
    level = m.options.normality_level
    if first is None or first.shape[0] < 3:
        return {"test": "shapiro-wilk", "p_values": {}, "warning": None}
    threshold = level / first.shape[1]
    pv: dict[str, float | None] = {}
    for i, name in enumerate(m.names):
        col = first[:, i]
        if np.isnan(col).any() or np.ptp(col) == 0:
            pv[name] = None
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pv[name] = float(stats.shapiro(col).pvalue)
    bad = [n for n, p in pv.items() if p is not None and p < threshold]
    warning = None
    if bad:
        warning = (
            f"first-stage observations of {bad} fail Shapiro-Wilk at {level:g} (Bonferroni over "
            f"{first.shape[1]} scenarios); the guarantee assumes normal observations: set batch = 5 or more"
        )
    return {"test": "shapiro-wilk", "level": level, "threshold": threshold, "p_values": pv, "warning": warning}


def possibly_best(m: RankingMethod, means: np.ndarray) -> list[int]:
    """Scenarios not ruled out: the survivors of a sequential/subset procedure; for the two-stage and budget
    procedures the survivors whose mean is within delta of the best other one (MCB lower bound < 0)."""
    live = m.machine.possibly_best()
    if m.options.procedure not in ("rinott", "nsgs", "ocba") or len(live) < 2:
        return live
    finite = np.where(np.isfinite(means), means, np.inf)
    out = []
    for i in live:
        others = [finite[j] for j in live if j != i]
        if finite[i] - min(others) < m.options.delta or i == m.machine.selected:
            out.append(i)
    return out


def diagnostics(m: RankingMethod) -> dict[str, Any]:
    o = m.options
    mach = m.machine
    obs = scenario_observations(m)
    means = np.array([float(x.mean()) if x.size else math.nan for x in obs])
    failed = {n: 0 for n in m.names}
    for f in m.ledger.failures:
        failed[m.names[int(f["scenario"])]] += 1  # type: ignore[call-overload]
    status = {i: "in contention" for i in range(mach.k)}
    for h in mach.history:
        for i in h["eliminated"]:
            status[i] = f"eliminated at stage {h['stage']} ({h['reason']})"
    if mach.selected is not None:
        status[mach.selected] = "selected"
    scenarios: dict[str, dict[str, Any]] = {
        name: {
            "mean": None if not obs[i].size else float(means[i]),
            "ci95": _ci(obs[i]),
            "observations": int(obs[i].size),
            "replications": int(obs[i].size * o.batch + failed[name]),
            "failed_replications": failed[name],
            "status": status[i],
        }
        for i, name in enumerate(m.names)
    }
    finite = np.where(np.isfinite(means), means, np.inf)
    lo, hi = mcb_intervals(finite, o.delta)
    vals = m.validation_values()
    sel = mach.selected
    return {
        "procedure": o.procedure,
        "alpha": o.alpha,
        "indifference_zone": o.indifference_zone,
        "n0": o.n0,
        "batch": o.batch,
        "common_random_numbers": o.common_random_numbers,
        "selected": None if sel is None else m.names[sel],
        "finished": m.finished,
        "guarantee": guarantee(m),
        "possibly_best": [m.names[i] for i in possibly_best(m, means)],
        "mcb_intervals": {
            n: [float(lo[i]), float(hi[i])] for i, n in enumerate(m.names) if math.isfinite(lo[i] + hi[i])
        },
        "mcb_simultaneous": bool(mach.simultaneous_mcb),
        "scenarios": scenarios,
        "eliminations": [
            {**h, "eliminated": [m.names[i] for i in h["eliminated"]]} for h in mach.history
        ],
        "normality": normality(m),
        "failures": [{**f, "scenario": m.names[int(f["scenario"])]} for f in m.ledger.failures],  # type: ignore[call-overload]
        "validation": {
            "requested": int(o.validation) if sel is not None else 0,
            "replications": len(vals),
            "mean": float(np.mean(vals)) if vals else None,
            "ci95": _ci(vals),
            "selection_mean": None if sel is None else float(means[sel]),
        },
        "replications_total": int(sum(s["replications"] for s in scenarios.values()) + len(vals)),
        "ignored_evaluations": m.ignored,
    }
