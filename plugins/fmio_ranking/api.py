"""Plain-function use without the host: select the best of a few systems from a sampling function.

Typical use is the clean-up stage of another study: re-rank the top-k candidates of a noisy
Bayesian or annealing study with replications::

    from fmio_ranking import select_best
    top = {f"cand{i}": c.values for i, c in enumerate(top_candidates)}
    sel = select_best(lambda values, rep: simulate(values, seed=rep), top,
                      {"procedure": "kn", "indifference_zone": 0.5})
    sel.name, sel.values, sel.diagnostics["guarantee"]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fmi_optimizer.errors import StudyError
from fmi_optimizer.method import Problem
from fmi_optimizer.records import Candidate, Evaluation
from fmi_optimizer.space import Categorical, DesignSpace, Value

from .method import RankingMethod

Sampler = Callable[[dict[str, Value], int], float]
Systems = Mapping[str, Mapping[str, Value]] | Sequence[Mapping[str, Value] | Candidate]


@dataclass(frozen=True)
class Selection:
    """The outcome of :func:`select_best`: the selected system (None if every one failed) and the facts."""

    name: str | None
    values: dict[str, Value] | None
    diagnostics: dict[str, Any]


def _scenarios(systems: Systems) -> tuple[tuple[str, dict[str, Value]], ...]:
    if isinstance(systems, Mapping):
        return tuple((str(n), dict(v)) for n, v in systems.items())
    out = []
    for i, s in enumerate(systems):
        if isinstance(s, Candidate):
            out.append((s.tag or f"system{i}", dict(s.values)))
        else:
            out.append((f"system{i}", dict(s)))
    return tuple(out)


def select_best(
    sample: Sampler,
    systems: Systems,
    options: Mapping[str, Any] | None = None,
    *,
    maximize: bool = False,
    parallel: int = 1,
    on_error: Literal["fail", "raise"] = "fail",
) -> Selection:
    """Select the best of ``systems`` by calling ``sample(values, replication) -> float``.

    ``systems`` maps names to parameter values (or is a sequence of value dicts / Candidates).
    Replication ``r`` must be reproducible from ``r`` (use it as the seed: common random numbers then
    pair replication r of every system).  With ``on_error="fail"`` an exception from ``sample`` is a
    failed replication (retried, then the system is dropped; all reported in the diagnostics);
    ``"raise"`` lets it propagate.  ``parallel`` is how many replications are requested per round.
    """
    scenarios = _scenarios(systems)
    names = tuple(n for n, _ in scenarios)
    if len(set(names)) != len(names) or len(names) < 2:
        raise StudyError(f"select_best: needs at least 2 uniquely named systems, got {list(names)}")
    problem = Problem(DesignSpace([Categorical("system", names)]), noisy=True, scenarios=scenarios)
    method = RankingMethod(problem, options)
    while not method.finished:
        batch = method.ask(max(1, parallel))
        if not batch:
            raise RuntimeError("select_best: the ranking method asked for nothing before finishing (a bug)")
        method.tell([_evaluate(sample, c, maximize, on_error) for c in batch])
    best = method.recommend() if method.machine.selected is not None else None
    return Selection(best.tag if best else None, dict(best.values) if best else None, method.diagnostics())


def _evaluate(sample: Sampler, c: Candidate, maximize: bool, on_error: str) -> Evaluation:
    try:
        y = float(sample(dict(c.values), c.replication))
    except Exception as exc:  # a failed replication is data for the method, reported in diagnostics
        if on_error == "raise":
            raise
        return Evaluation(c, "failed", error=f"{type(exc).__name__}: {exc}")
    return Evaluation(c, "ok", kpis={"y": y}, objective=-y if maximize else y)
