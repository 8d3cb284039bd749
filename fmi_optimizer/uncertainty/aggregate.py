"""One candidate's runs over the shared sample -> the single Evaluation its method is told.

Pure: needs only the study config and the run evaluations, so the report recomputes exactly what
the study told the method from the stored rows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fmi_optimizer.records import Candidate, Evaluation
from fmi_optimizer.study.config import StudyConfig
from fmi_optimizer.uncertainty.chance import ChanceResult, judge

TAG = re.compile(r"^u:(\d+|nominal):(\d+)$")


def run_tag(index: int | None, cid: int) -> str:
    """Tag of scenario ``index`` (None: the nominal run) of candidate ``cid``."""
    return f"u:{'nominal' if index is None else index}:{cid}"


def parse_tag(tag: str) -> tuple[int | None, int] | None:
    """(scenario index or None for nominal, candidate id), or None for a tag that is not a robust run."""
    m = TAG.match(tag)
    if not m:
        return None
    return (None if m.group(1) == "nominal" else int(m.group(1))), int(m.group(2))


@dataclass
class Judged:
    """What the aggregation found, beyond the Evaluation: per-KPI samples and chance results."""

    cid: int
    n: int
    kpi_samples: dict[str, list[float]] = field(default_factory=dict)
    chance: list[ChanceResult] = field(default_factory=list)
    nominal: Evaluation | None = None
    raw_feasible: bool = False  # every chance constraint's sample frequency reaches its target

    def summary(self) -> dict[str, Any]:
        stats = {k: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
                     "q05": float(np.quantile(v, 0.05)), "q50": float(np.quantile(v, 0.5)),
                     "q95": float(np.quantile(v, 0.95)), "min": float(np.min(v)), "max": float(np.max(v))}
                 for k, v in self.kpi_samples.items()}
        return {"candidate": self.cid, "scenarios": self.n, "kpis": stats,
                "chance": [c.to_dict() for c in self.chance],
                "nominal_kpis": self.nominal.kpis if self.nominal is not None and self.nominal.ok else None}


def aggregate(config: StudyConfig, candidate: Candidate, cid: int, runs: Sequence[Evaluation],
              nominal: Evaluation | None) -> tuple[Evaluation, Judged]:
    """Robust score of the objective(s), chance/worst-case constraint values, nominal KPIs."""
    spec = config.uncertainty
    assert spec is not None
    all_runs = [*runs, *([nominal] if nominal is not None else [])]
    ev = Evaluation(candidate, "ok", wall_seconds=sum(r.wall_seconds for r in all_runs),
                    cpu_seconds=sum(r.cpu_seconds for r in all_runs), worker="robust",
                    started=min((r.started for r in all_runs), default=0.0),
                    finished=max((r.finished for r in all_runs), default=0.0),
                    cached=bool(all_runs) and all(r.cached for r in all_runs))
    judged = Judged(cid, len(runs), nominal=nominal)
    bad = [r for r in all_runs if not r.ok]
    if bad or not runs:
        ev.status = bad[0].status if bad else "failed"
        ev.error = (f"{len(bad)} of {len(all_runs)} scenario runs did not succeed; first: "
                    f"{bad[0].error}" if bad
                    else "no scenario runs")
        return ev, judged
    judged.kpi_samples = {k: [r.kpis[k] for r in runs] for k in runs[0].kpis}
    ev.kpis = (dict(nominal.kpis) if nominal is not None
               else {k: float(np.mean(v)) for k, v in judged.kpi_samples.items()})
    ev.objective = spec.score.score([r.objective for r in runs if r.objective is not None])
    width = len(runs[0].objectives)
    ev.objectives = tuple(spec.score.score([r.objectives[i] for r in runs]) for i in range(width)) \
        if config.pareto else (ev.objective,)
    values: list[float] = []
    raw_ok = True
    for i, c in enumerate(config.constraints):
        if c.probability is None:  # a plain constraint must hold in every sampled scenario
            values.append(float(max(r.constraints[i] for r in runs)))
            continue
        res = judge(c.kpi, c.op, c.limit, c.probability, judged.kpi_samples[c.kpi], spec.confidence,
                    spec.bound)
        judged.chance.append(res)
        raw_ok = raw_ok and res.probability >= c.probability
        values.append(res.value)
    ev.constraints = tuple(values)
    judged.raw_feasible = raw_ok and all(v <= 0 for v, c in zip(values, config.constraints, strict=True)
                                         if c.probability is None)
    return ev, judged
