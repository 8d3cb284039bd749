"""The robust layer of the study loop: one asked candidate -> its runs over the shared sample -> one
aggregated Evaluation for the method.

Every run is an ordinary evaluation (stored, cached, counted against the budget, shown in the
progress bar) tagged ``u:<scenario>:<candidate id>``; ``u:nominal:<id>`` is the run at the twin's
own (nominal) values, which write-back verification and the report's price-of-robustness compare.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from fmi_optimizer.errors import FmiOptimizerError, StudyError
from fmi_optimizer.fmu.twin import Twin
from fmi_optimizer.records import Candidate, Evaluation
from fmi_optimizer.space import Value
from fmi_optimizer.study.config import StudyConfig
from fmi_optimizer.uncertainty.aggregate import Judged, aggregate, parse_tag, run_tag
from fmi_optimizer.uncertainty.sampling import Sample, draw
from fmi_optimizer.uncertainty.sequential import Step, decide, stages
from fmi_optimizer.uncertainty.spec import UncertaintySpec

RunBatch = Callable[[Sequence[Candidate]], list[Evaluation]]


class RobustLayer:
    """Holds the shared sample and expands/aggregates candidates for
    :class:`~fmi_optimizer.study.loop.Study`."""

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
                                     "distribution inside the FMU's range (e.g. truncnormal with "
                                     "min/max)") from exc
        self.next_cid = 0
        self.aggregates: list[Evaluation] = []  # index = candidate id; the latest aggregate of each candidate
        self.judged: dict[int, Judged] = {}
        self.candidates: dict[int, Candidate] = {}
        self.runs: dict[int, list[Evaluation]] = {}
        self.per_scenario: dict[int, list[float]] = {}  # objective per scenario index 0..n-1 (CRN pairing)
        self.growth_log: list[dict[str, Any]] = []
        self.grown = 0
        self.incumbent_growth = 0
        self._budget: int | None = None

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
    def evaluate(self, candidates: Sequence[Candidate], run: RunBatch,
                 remaining: int | None) -> list[Evaluation]:
        """Run every candidate over the base sample (+ nominal), grow it in stages (sequential.py),
        aggregate."""
        cids = list(range(self.next_cid, self.next_cid + len(candidates)))
        self.next_cid += len(candidates)
        n = self.spec.samples
        expanded = [Candidate(dict(c.values), c.replication, run_tag(i, cid))
                    for c, cid in zip(candidates, cids, strict=True)
                    for i in ([*range(n), None] if self.spec.nominal else range(n))]
        runs = run(expanded)
        self._budget = None if remaining is None else remaining - len(runs)
        out: list[Evaluation] = []
        for cand, cid in zip(candidates, cids, strict=True):
            self.candidates[cid] = cand
            self.runs[cid] = [r for r in runs if (parse_tag(r.candidate.tag) or (None, -1))[1] == cid]
            ev = self._refresh(cid)
            if self.spec.pool_size > n:
                self._grow(cid, run)
                ev = self.aggregates[cid]
            out.append(ev)
        return out

    def _refresh(self, cid: int) -> Evaluation:
        """(Re-)aggregate candidate ``cid`` from all its runs so far; the latest aggregate replaces the old
        one."""
        sample_runs, nominal = [], None
        for r in self.runs[cid]:
            parsed = parse_tag(r.candidate.tag)
            if parsed is not None and parsed[0] is None:
                nominal = r
            else:
                sample_runs.append(r)
        sample_runs.sort(key=lambda r: (parse_tag(r.candidate.tag) or (0, 0))[0] or 0)
        ev, judged = aggregate(self.config, self.candidates[cid], cid, sample_runs, nominal)
        self.judged[cid] = judged
        self.per_scenario[cid] = [r.objective if r.objective is not None else math.nan for r in sample_runs]
        if cid < len(self.aggregates):
            self.aggregates[cid] = ev
        else:
            self.aggregates.append(ev)
        return ev

    def _incumbent(self, exclude: int) -> int | None:
        """The candidate with the best robust score among those whose constraints are proven."""
        ok = [(ev.objective, cid) for cid, ev in enumerate(self.aggregates)
              if cid != exclude and ev.feasible and ev.objective is not None]
        return min(ok)[1] if ok else None

    def _grow(self, cid: int, run: RunBatch) -> None:
        """The sequential rule of sequential.py for one candidate: stages until separated, cap or budget."""
        path = stages(self.spec.samples, self.spec.pool_size)
        log: dict[str, Any] = {"candidate": cid, "scenarios": [self.spec.samples]}
        while True:
            ev, have = self.aggregates[cid], len(self.per_scenario[cid])
            inc = self._incumbent(cid)
            if not ev.ok or ev.objective is None:
                step = Step("failed")
            else:
                common = min(have, len(self.per_scenario[inc])) if inc is not None else have
                step = decide(self.spec.score, self.per_scenario[cid][:common],
                              None if inc is None else self.per_scenario[inc][:common],
                              None if inc is None else self.aggregates[inc].objective,
                              self.judged[cid].raw_feasible, ev.feasible, self.spec.grow_within,
                              self.spec.confidence, seed=cid * 1009 + have)
                if step.interval is not None:
                    log.setdefault("intervals", []).append([round(v, 12) for v in step.interval])
            if step.action == "grow" and have >= path[-1]:
                step = Step("cap")
            if step.action != "grow":
                log["stopped"] = step.action
                break
            target = next(s for s in path if s > have)
            jobs = [(cid, i) for i in range(have, target)]
            if inc is not None and step.interval is not None and step.interval[1] >= 0:
                # still indistinguishable: the incumbent gets the same scenarios, so the comparison uses more
                jobs += [(inc, i) for i in range(len(self.per_scenario[inc]), target)]
            if self._budget is not None and self._budget < len(jobs):
                log["stopped"] = "budget"
                break
            extra = run([Candidate(dict(self.candidates[c].values), self.candidates[c].replication,
                                   run_tag(i, c))
                         for c, i in jobs])
            if self._budget is not None:
                self._budget -= len(extra)
            for c in {c for c, _ in jobs}:
                self.runs[c] += [r for r in extra if (parse_tag(r.candidate.tag) or (None, -1))[1] == c]
                self._refresh(c)
            if inc is not None and any(c == inc for c, _ in jobs):
                self.incumbent_growth += 1
            log["scenarios"].append(target)
        if len(log["scenarios"]) > 1:
            self.grown += 1
        self.growth_log.append(log)

    def growth_summary(self) -> dict[str, Any]:
        """How the sequential rule spent its extra runs: stop reasons, stages, incumbent top-ups."""
        stopped: dict[str, int] = {}
        for log in self.growth_log:
            stopped[log["stopped"]] = stopped.get(log["stopped"], 0) + 1
        extra = sum(len(v) for v in self.per_scenario.values()) - self.spec.samples * len(self.per_scenario)
        return {"rule": "sequential, paired (CRN) comparison with the incumbent; stages double up to "
                "max_samples",
                "stages": stages(self.spec.samples, self.spec.pool_size), "stopped": stopped,
                "incumbent_top_ups": self.incumbent_growth, "extra_runs": extra,
                "grown": [log for log in self.growth_log if len(log["scenarios"]) > 1]}

    def best_for(self, values: dict[str, Value]) -> Evaluation | None:
        """The successful aggregate with these values (the method's recommendation) over the most scenarios
        (the latest one on ties)."""
        same = [(len(self.per_scenario[cid]), cid) for cid, e in enumerate(self.aggregates)
                if e.ok and e.values == values]
        return self.aggregates[max(same)[1]] if same else None

    def summary(self, best: Evaluation | None) -> dict[str, Any]:
        """JSON-able facts for the result and the report."""
        out: dict[str, Any] = {**self.spec.describe(), "candidates": len(self.aggregates),
                               "runs_per_candidate": self.runs_per_candidate(),
                               "grown_candidates": self.grown,
                               "growth": self.growth_summary(),
                               "robust_trace": [e.objective if e.ok else None for e in self.aggregates]}
        if best is not None:
            idx = next((i for i in range(len(self.aggregates) - 1, -1, -1) if self.aggregates[i] is best),
                       None)
            cid = None if idx is None else sorted(self.judged)[idx]
            if cid is not None:
                out["best"] = self.judged[cid].summary()
        return out
