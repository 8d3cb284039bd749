"""Several objectives: the Pareto front of evaluated points, scalarized formulations, and pick rules.

Constraint handling follows Deb's constrained domination: a feasible point beats an infeasible
one, infeasible points compare by total violation, feasible points by Pareto dominance. The front
of a study is therefore its non-dominated feasible points (or, when nothing is feasible, the least
violating ones). All objectives are minimized (the host already flipped maximized KPIs).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fmi_optimizer.errors import StudyError
from fmi_optimizer.records import Evaluation


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """a is no worse than b in every objective and better in one (minimization)."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def non_dominated(points: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``points`` (n x m). Duplicates are all kept."""
    p = np.asarray(points, dtype=float)
    n = p.shape[0]
    mask = np.ones(n, dtype=bool)
    order = np.lexsort(p.T[::-1])  # by first objective, then the next: dominators come first
    for pos, i in enumerate(order):
        if not mask[i]:
            continue
        rest = order[pos + 1:]
        rest = rest[mask[rest]]
        if rest.size == 0:
            continue
        worse = np.all(p[rest] >= p[i], axis=1) & np.any(p[rest] > p[i], axis=1)
        mask[rest[worse]] = False
    return mask


def constrained_front(points: np.ndarray, violation: np.ndarray) -> np.ndarray:
    """Indices of the constrained-domination front, sorted by the first objective."""
    p = np.asarray(points, dtype=float)
    v = np.asarray(violation, dtype=float)
    if p.shape[0] == 0:
        return np.zeros(0, dtype=int)
    feasible = np.flatnonzero(v <= 0.0)
    if feasible.size == 0:
        least = np.flatnonzero(v == v.min())
        idx = least[non_dominated(p[least])]
    else:
        idx = feasible[non_dominated(p[feasible])]
    return idx[np.lexsort(p[idx].T[::-1])]


Key = Callable[[Evaluation], "tuple[float, ...] | None"]


def by_objectives(e: Evaluation) -> tuple[float, ...] | None:
    """The objective vector a multi-objective method was told (robust scores in robust studies)."""
    return tuple(e.objectives) if e.objectives else None


def by_kpis(terms: Sequence[tuple[str, str]]) -> Key:
    """Objective vector from KPI values and senses ("minimize"/"maximize"): the front of a weighted study."""
    def key(e: Evaluation) -> tuple[float, ...] | None:
        if not all(k in e.kpis for k, _ in terms):
            return None
        return tuple(e.kpis[k] if sense == "minimize" else -e.kpis[k] for k, sense in terms)

    return key


def study_key(config: Any) -> Key:
    """``[objective] pareto = true``: the objectives the method saw; otherwise the objective KPIs themselves
    (a weighted study still has a trade-off between its terms)."""
    if config.pareto:
        return by_objectives
    return by_kpis([(t.kpi, t.sense) for t in config.objective])


def front(evaluations: Sequence[Evaluation], key: Key = by_objectives) -> list[Evaluation]:
    """The Pareto front of successful evaluations, sorted by the first objective.

    Identical designs appear once (e.g. cache hits)."""
    ok: dict[str, tuple[Evaluation, tuple[float, ...]]] = {}
    for e in evaluations:
        vec = key(e) if e.ok else None
        if vec and all(math.isfinite(x) for x in vec):
            ok.setdefault(repr(sorted(e.values.items())), (e, vec))
    if not ok:
        return []
    items = list(ok.values())
    idx = constrained_front(np.array([v for _, v in items]), np.array([e.violation() for e, _ in items]))
    return [items[i][0] for i in idx]


def weighted(points: np.ndarray, weights: Sequence[float]) -> int:
    """Index of the point minimizing the weighted sum of objectives normalized to [0, 1] on ``points``."""
    p = np.asarray(points, dtype=float)
    lo, hi = p.min(axis=0), p.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return int(np.argmin(((p - lo) / span) @ np.asarray(weights, dtype=float)))


def epsilon_constraint(points: np.ndarray, primary: int, bounds: Mapping[int, float]) -> int | None:
    """Index of the point minimizing objective ``primary`` with every other objective ``j`` <= bounds[j]
    (None when no point meets the bounds)."""
    p = np.asarray(points, dtype=float)
    ok = np.ones(p.shape[0], dtype=bool)
    for j, eps in bounds.items():
        ok &= p[:, j] <= eps
    if not ok.any():
        return None
    cand = np.flatnonzero(ok)
    return int(cand[np.argmin(p[cand, primary])])


# -- pick rules ---------------------------------------------------------------------------------

_OPS = {"<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b,
        ">": lambda a, b: a > b, "==": lambda a, b: a == b}
_SENSE = {"min": "min", "minimize": "min", "lowest": "min", "max": "max", "maximize": "max", "highest": "max"}
_COND = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(<=|>=|==|<|>)\s*"  # KPI, operator
                   r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")  # number


@dataclass(frozen=True)
class Rule:
    """``min mass where fan_energy <= 500 and cost < 20``: optimize one KPI among points meeting bounds."""

    sense: str
    kpi: str
    conditions: tuple[tuple[str, str, float], ...] = ()

    def admits(self, kpis: Mapping[str, float]) -> bool:
        return all(_OPS[op](kpis[k], v) for k, op, v in self.conditions)


def parse_rule(text: str, kpi_names: Sequence[str]) -> Rule:
    """Parse a pick rule; StudyError (one line, with the grammar) when it does not parse."""
    grammar = "e.g. \"min mass where fan_energy <= 500\" (min|max KPI [where KPI <=|>=|<|> NUMBER [and ...]])"
    s = text.replace("≤", "<=").replace("≥", ">=").strip()
    parts = re.split(r"\s+(?:where|with)\s+", s, maxsplit=1)
    head, tail = parts[0], (parts[1] if len(parts) > 1 else "")
    words = head.split()
    if len(words) != 2 or words[0].lower() not in _SENSE:
        raise StudyError(f"--pick {text!r}: cannot parse; {grammar}")
    sense, kpi = _SENSE[words[0].lower()], words[1]
    conditions = []
    for part in re.split(r"\s+and\s+", tail) if tail else []:
        m = _COND.match(part)
        if not m:
            raise StudyError(f"--pick {text!r}: cannot parse the condition {part!r}; {grammar}")
        conditions.append((m.group(1), m.group(2), float(m.group(3))))
    for name in [kpi, *(c[0] for c in conditions)]:
        if name not in kpi_names:
            raise StudyError(f"--pick {text!r}: unknown KPI {name!r}; KPIs of this study: "
                             f"{', '.join(kpi_names)}")
    return Rule(sense, kpi, tuple(conditions))


def pick(evaluations: Sequence[Evaluation], selector: str | int, kpi_names: Sequence[str],
         key: Key = by_objectives) -> Evaluation:
    """A point of the study to write back: an index into :func:`front`, or a rule applied to every
    feasible evaluated point (ties broken by Pareto dominance, then by the front order)."""
    pts = front(evaluations, key)
    if isinstance(selector, int) or (isinstance(selector, str) and selector.strip().lstrip("-").isdigit()):
        i = int(selector)
        if not pts:
            raise StudyError("--pick: the study has no successful evaluation to pick from")
        if not -len(pts) <= i < len(pts):
            raise StudyError(f"--pick {i}: the Pareto front has {len(pts)} points (indices "
                             f"0..{len(pts) - 1})")
        return pts[i]
    rule = parse_rule(str(selector), kpi_names)
    pool = [e for e in evaluations if e.feasible and all(k in e.kpis for k in kpi_names)]
    admitted = [e for e in pool if rule.admits(e.kpis)]
    if not admitted:
        raise StudyError(f"--pick {selector!r}: no feasible evaluated point meets the conditions; relax them "
                         f"(feasible points: {len(pool)})")
    sign = 1.0 if rule.sense == "min" else -1.0
    best = min(sign * e.kpis[rule.kpi] for e in admitted)
    ties = [e for e in admitted if sign * e.kpis[rule.kpi] == best]
    on_front = [e for e in ties if any(e is p for p in pts)]
    return (on_front or ties)[0]
