"""The robust layer of the study loop: one asked candidate -> its runs over the shared sample -> one
aggregated Evaluation for the method.

Every run is an ordinary evaluation (stored, cached, counted against the budget, shown in the
progress bar) tagged ``u:<scenario>:<candidate id>``; ``u:nominal:<id>`` is the run at the twin's
own (nominal) values, which write-back verification and the report's price-of-robustness compare.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..config import StudyConfig
from ..errors import FmiOptimizerError, StudyError
from ..records import Candidate, Evaluation
from ..space import Value
from ..twin import Twin
from .aggregate import Judged, aggregate, parse_tag, run_tag
from .robust import needs_more
from .sampling import Sample, draw
from .spec import UncertaintySpec

RunBatch = Callable[[Sequence[Candidate]], list[Evaluation]]


class RobustLayer:
    """Holds the shared sample and expands/aggregates candidates for :class:`~fmi_optimizer.study.Study`."""

    def __init__(self, config: StudyConfig, twin: Twin | None = None):
        assert config.uncertainty is not None
        self.config = config
        self.spec: UncertaintySpec = config.uncertainty
        seed = self.spec.seed if self.spec.seed is not None else config.seed
        self.sample: Sample = draw(self.spec.distributions, self.spec.pool_size, self.spec.sampler, seed,
                                   seeded=config.seed_parameter is not None)
        if twin is not None:  # names, types and the FMU's min/max checked for every scenario, before any run
            for i, scenario in enumerate(self.sample.scenarios):
                try:
                    twin.check_values(scenario)
                except FmiOptimizerError as exc:
                    raise StudyError(f"[uncertainty.parameters] scenario {i} of the sample: {exc}; keep the "
                                     "distribution inside the FMU's range (e.g. truncnormal with min/max)") from exc
        self.next_cid = 0
        self.aggregates: list[Evaluation] = []
        self.judged: dict[int, Judged] = {}
        self._best: float | None = None
        self.grown = 0

    # -- used by the problem ----------------------------------------------------------------
    def scenario_values(self, candidate: Candidate) -> dict[str, Value]:
        parsed = parse_tag(candidate.tag)
        if parsed is None or parsed[0] is None:
            return {}
        return dict(self.sample.scenarios[parsed[0]])

    def seed(self, candidate: Candidate) -> int | None:
        parsed = parse_tag(candidate.tag)
        if parsed is None or parsed[0] is None:
            return None
        return self.sample.seeds[parsed[0]]

    def runs_per_candidate(self) -> int:
        return self.spec.runs_per_candidate()

    # -- used by the study -----------------------------------------------------------------
    def evaluate(self, candidates: Sequence[Candidate], run: RunBatch, remaining: int | None) -> list[Evaluation]:
        """Run every candidate over the base sample (+ nominal), grow close ones, aggregate."""
        cids = list(range(self.next_cid, self.next_cid + len(candidates)))
        self.next_cid += len(candidates)
        n = self.spec.samples
        expanded = [Candidate(dict(c.values), c.replication, run_tag(i, cid))
                    for c, cid in zip(candidates, cids, strict=True)
                    for i in ([*range(n), None] if self.spec.nominal else range(n))]
        runs = run(expanded)
        if remaining is not None:
            remaining -= len(runs)
        out: list[Evaluation] = []
        for cand, cid in zip(candidates, cids, strict=True):
            mine = [r for r in runs if (parse_tag(r.candidate.tag) or (None, -1))[1] == cid]
            ev, judged = self._aggregate(cand, cid, mine)
            if self._should_grow(ev, judged) and (remaining is None or remaining > 0):
                extra_n = self.spec.pool_size - n if remaining is None else min(self.spec.pool_size - n, remaining)
                extra = run([Candidate(dict(cand.values), cand.replication, run_tag(i, cid))
                             for i in range(n, n + extra_n)])
                if remaining is not None:
                    remaining -= len(extra)
                self.grown += 1
                ev, judged = self._aggregate(cand, cid, [*mine, *extra])
            self.judged[cid] = judged
            self.aggregates.append(ev)
            if ev.feasible and ev.objective is not None and (self._best is None or ev.objective < self._best):
                self._best = ev.objective
            out.append(ev)
        return out

    def _aggregate(self, cand: Candidate, cid: int, runs: Sequence[Evaluation]) -> tuple[Evaluation, Judged]:
        sample_runs, nominal = [], None
        for r in runs:
            parsed = parse_tag(r.candidate.tag)
            if parsed is not None and parsed[0] is None:
                nominal = r
            else:
                sample_runs.append(r)
        return aggregate(self.config, cand, cid, sample_runs, nominal)

    def _should_grow(self, ev: Evaluation, judged: Judged) -> bool:
        if self.spec.pool_size <= self.spec.samples or not ev.ok or ev.objective is None:
            return False
        if not judged.raw_feasible:
            return False
        return self._best is None or needs_more(ev.objective, self._best, self.spec.grow_within)

    def best_for(self, values: dict[str, Value]) -> Evaluation | None:
        """The latest successful aggregate with these values (the method's recommendation)."""
        same = [e for e in self.aggregates if e.ok and e.values == values]
        return same[-1] if same else None

    def summary(self, best: Evaluation | None) -> dict[str, Any]:
        """JSON-able facts for the result and the report."""
        out: dict[str, Any] = {**self.spec.describe(), "candidates": len(self.aggregates),
                               "runs_per_candidate": self.runs_per_candidate(), "grown_candidates": self.grown,
                               "robust_trace": [e.objective if e.ok else None for e in self.aggregates]}
        if best is not None:
            idx = next((i for i in range(len(self.aggregates) - 1, -1, -1) if self.aggregates[i] is best), None)
            cid = None if idx is None else sorted(self.judged)[idx]
            if cid is not None:
                out["best"] = self.judged[cid].summary()
        return out
