"""A study's problem bound to its twin: design space, KPIs, objective, constraints, seeds.

This is where a raw simulation reply becomes an :class:`Evaluation` — KPIs computed,
directions and weights applied (the method always minimizes), constraint values
signed (<= 0 feasible) — and where candidates become start values with seeds.

Features bind themselves to a problem through the ``fmio_bind_problem`` hook: each returns a
:class:`~fmi_optimizer.registry.ProblemBinding` the problem calls for extra outputs, KPIs, inputs, start
values, seeds and cache-key parts, and at most one expands a candidate into several runs.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pluggy

from fmi_optimizer.engine.worker import RunReply, RunRequest
from fmi_optimizer.errors import StudyError, ValueValidationError
from fmi_optimizer.fmu.simulator import SimSettings
from fmi_optimizer.fmu.twin import Twin
from fmi_optimizer.host.kpi import KpiSpec, compute_kpis, parse_kpi
from fmi_optimizer.host.loader import builtin_host
from fmi_optimizer.method import Problem
from fmi_optimizer.records import Candidate, Evaluation
from fmi_optimizer.registry import CandidateExpansion, KpiRegistry, ProblemBinding
from fmi_optimizer.space import DesignSpace, Dimension, Value
from fmi_optimizer.study.config import StudyConfig, stated_objective

SEED_BASE = 1_000_003


@dataclass
class StudyProblem:
    """Everything needed to turn candidates into runs and runs into evaluations."""

    config: StudyConfig
    twin: Twin
    space: DesignSpace
    kpis: tuple[KpiSpec, ...]
    reducers: KpiRegistry
    settings: SimSettings
    fixed: dict[str, Value] = field(default_factory=dict)
    bindings: dict[str, ProblemBinding] = field(default_factory=dict)  # by feature, in plugin load order
    expansion: CandidateExpansion | None = None  # one candidate -> several runs (e.g. a robust study)

    @classmethod
    def build(cls, config: StudyConfig, twin: Twin, reducers: KpiRegistry,
              space: DesignSpace | None = None, pm: pluggy.PluginManager | None = None) -> StudyProblem:
        """Bind ``config`` to ``twin``; the features answer ``fmio_bind_problem`` of ``pm`` (default: the
        built-in features' host)."""
        twin.check_interface(config.settings.interface)  # refused before any worker starts
        names = twin.recordable()
        kpis = tuple(parse_kpi(k, expr, reducers, names, str(config.source or "study"))
                     for k, expr in config.kpis.items())
        if space is None:
            if not config.parameters and not config.scenarios:
                raise StudyError(f"{config.source or 'study'}: [parameters] is empty; list the parameters to "
                                 "optimize, tunable ones: "
                                 f"{', '.join(v.name for v in twin.tunable_parameters)}")
            dims = [_dimension(config, twin, n, spec) for n, spec in config.parameters.items()]
            space = DesignSpace(dims) if dims else _scenario_space(config, twin)
        fixed = twin.check_values(config.fixed)
        if config.seed_parameter is not None:
            seed_var = twin.variable(config.seed_parameter)
            if seed_var.type != "Integer":
                raise StudyError(f"[replications] seed_parameter {config.seed_parameter!r} is "
                                 f"{seed_var.type}; it must be an Integer parameter")
        settings = config.settings
        problem = cls(config, twin, space, kpis, reducers, settings, fixed)
        hook = (pm if pm is not None else builtin_host().pm).hook
        # pluggy calls the last registered plugin first; the bindings are kept in load order
        for binding in reversed(hook.fmio_bind_problem(problem=problem)):
            problem._bind(binding)
        return problem

    def _bind(self, binding: ProblemBinding) -> None:
        where = self.config.source or "study"
        if not isinstance(binding, ProblemBinding):
            raise StudyError(f"{where}: fmio_bind_problem returned {binding!r}, not a "
                             "fmi_optimizer.registry.ProblemBinding")
        if binding.feature in self.bindings:
            raise StudyError(f"{where}: two plugins bind the feature {binding.feature!r} to the study")
        self.bindings[binding.feature] = binding
        expansion = binding.expansion()
        if expansion is not None:
            if self.expansion is not None:
                raise StudyError(f"{where}: two features expand every candidate into runs; use one of them")
            self.expansion = expansion

    # -- for the method ---------------------------------------------------------------------
    def method_problem(self, batch_size: int) -> Problem:
        c = self.config
        objective_names = tuple(t.kpi for t in c.objective) if c.pareto else ("objective",)
        scenarios = tuple((n, self.space.validate(dict(v)))
                          for n, v in c.scenarios) if c.scenarios else ()
        return Problem(
            space=self.space,
            objective_names=objective_names,
            constraint_names=tuple(s.kpi for s in c.constraints),
            noisy=c.seed_parameter is not None,
            scenarios=scenarios,
            budget_evaluations=c.budget.evaluations if self.expansion is None or c.budget.evaluations is None
            else max(1, c.budget.evaluations // self.expansion.runs_per_candidate()),  # in candidates
            batch_size=batch_size,
            budget_seconds=c.budget.seconds,
        )

    # -- candidates to runs -----------------------------------------------------------------
    def seed_for(self, candidate: Candidate) -> int | None:
        """Seed of a replication: shared by every candidate under common random numbers."""
        if self.config.seed_parameter is None:
            return None
        for binding in self.bindings.values():
            if (sample_seed := binding.seed(candidate)) is not None:
                return sample_seed  # e.g. a shared sample's seed: common random numbers across candidates
        base = SEED_BASE * (self.config.seed + 1) + candidate.replication
        if self.config.common_random_numbers:
            return int(base % 2_000_000_000)
        digest = hashlib.sha256(json.dumps([sorted(candidate.values.items()), base],
                                           default=str).encode()).digest()
        return int.from_bytes(digest[:4], "little") % 2_000_000_000

    def start_values(self, candidate: Candidate) -> dict[str, Value]:
        values: dict[str, Value] = {**self.fixed, **self.space.validate(candidate.values)}
        for binding in self.bindings.values():
            values.update(binding.start_values(candidate))
        seed = self.seed_for(candidate)
        if seed is not None and self.config.seed_parameter is not None:
            values[self.config.seed_parameter] = seed
        return values

    def outputs(self) -> tuple[str, ...]:
        extra = [name for binding in self.bindings.values() for name in binding.outputs()]
        return tuple(dict.fromkeys([*(k.output for k in self.kpis), *extra]))

    def simulated_span(self) -> tuple[float, float]:
        """The time a run of the study simulates: the study's start/stop, else the FMU's default experiment,
        else what fmpy takes (start 0, one second). A written FMU declares the same span."""
        exp = self.twin.default_experiment
        start = float(self.settings.start_time if self.settings.start_time is not None
                      else (exp.start_time or 0.0))
        stop = float(self.settings.stop_time if self.settings.stop_time is not None
                     else (exp.stop_time or start + 1.0))
        return start, stop

    def kpi_names(self) -> set[str]:
        """The KPIs this study names (its [kpis] and those its objective and constraints read)."""
        c = self.config
        return {k.name for k in self.kpis} | {t.kpi for t in c.objective} | {s.kpi for s in c.constraints}

    def features_identity(self) -> str:
        """What the study's features add to every run's identity (e.g. data files' hashes), as one hash."""
        identity: dict[str, Any] = {}
        for binding in self.bindings.values():
            identity.update(binding.cache_identity())
        return hashlib.sha256(json.dumps(identity, default=str, sort_keys=True).encode()).hexdigest()

    def cache_key(self, candidate: Candidate) -> str:
        """FMU content + values + settings + seed: the identity of one simulation."""
        identity: dict[str, Any] = {"fmu": self.twin.fmu.sha256,
                                    "values": sorted(self.start_values(candidate).items()),
                                    "settings": self.settings.to_dict(), "outputs": self.outputs(),
                                    "kpis": [k.expression for k in self.kpis]}
        for binding in self.bindings.values():  # e.g. the data files that shape the KPIs
            identity.update(binding.cache_identity())
        payload = json.dumps(identity, default=str, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()

    def request(self, task_id: int, candidate: Candidate) -> RunRequest:
        return RunRequest(task_id, self.start_values(candidate), self.settings, self.outputs(),
                          self.input_table())

    def input_table(self) -> Any:
        """The input signals every run is driven by (the first feature that gives a table), or None."""
        return next((t for b in self.bindings.values() if (t := b.input_table()) is not None), None)

    # -- runs to evaluations ----------------------------------------------------------------
    def evaluation(self, candidate: Candidate, reply: RunReply, started: float,
                   finished: float) -> Evaluation:
        ev = Evaluation(candidate=candidate, status=reply.status, error=reply.error,  # type: ignore[arg-type]
                        wall_seconds=reply.wall_seconds, cpu_seconds=reply.cpu_seconds, worker=reply.worker,
                        seed=self.seed_for(candidate), started=started, finished=finished)
        if reply.status != "ok" or reply.time is None:
            return ev
        try:
            kpis = compute_kpis(self.kpis, reply.time, reply.outputs, self.reducers)
            for binding in self.bindings.values():  # e.g. a loss against measured data
                kpis.update(binding.kpis(reply.time, reply.outputs))
        except Exception as exc:  # a reducer failing on this trajectory fails this evaluation only
            ev.status, ev.error = "failed", f"KPI computation failed: {type(exc).__name__}: {exc}"
            return ev
        bad = [k for k, v in kpis.items() if not math.isfinite(v)]
        if bad:
            ev.status, ev.error = "failed", f"KPI {bad[0]!r} is not finite ({kpis[bad[0]]})"
            ev.kpis = kpis
            return ev
        self.score(ev, kpis)
        return ev

    def score(self, ev: Evaluation, kpis: dict[str, float]) -> None:
        """Fill objective(s) and constraint values from KPIs (minimization sense)."""
        c = self.config
        ev.kpis = kpis
        signed = [(t.weight if t.sense == "minimize" else -t.weight) * kpis[t.kpi] for t in c.objective]
        ev.objective = float(sum(signed))
        ev.objectives = tuple(float(x) for x in signed) if c.pareto else (ev.objective,)
        ev.constraints = tuple(s.value(kpis[s.kpi]) for s in c.constraints)

    def objective_to_kpi_sense(self, objective: float) -> float:
        """Undo the sign flip for a single maximize term so reports show the KPI as the user wrote it."""
        return stated_objective(self.config.objective, objective)[1]

    def describe(self) -> dict[str, Any]:
        c = self.config
        return {
            "space": json.loads(self.space.to_json()),
            "kpis": {k.name: k.expression for k in self.kpis},
            "objective": [{"kpi": t.kpi, "sense": t.sense, "weight": t.weight} for t in c.objective],
            "constraints": [{"kpi": s.kpi, "op": s.op, "limit": s.limit} for s in c.constraints],
            "settings": self.settings.to_dict(),
            "fixed": self.fixed,
        }


def _dimension(config: StudyConfig, twin: Twin, name: str, spec: Mapping[str, Any]) -> Dimension:
    """The design-space dimension of ``[parameters] name``; a refusal names the study file first."""
    try:
        return twin.dimension(name, **spec)
    except (StudyError, ValueValidationError) as exc:
        where = str(config.source) if config.source else "study"
        if str(exc).startswith(where):
            raise
        raise type(exc)(f"{where}: {exc}") from exc


def _scenario_space(config: StudyConfig, twin: Twin) -> DesignSpace:
    """With only [scenarios], the design space is the parameters the scenarios set, with their values."""
    from fmi_optimizer.space import Categorical

    names = list(dict.fromkeys(k for _, v in config.scenarios for k in v))
    dims = []
    for n in names:
        vals = [twin.check_values({n: v[n]})[n] for _, v in config.scenarios if n in v]
        uniq = list(dict.fromkeys(vals))
        if len(uniq) < 2:
            uniq.append(uniq[0] if isinstance(uniq[0], str) else _neighbour(uniq[0]))
        dims.append(Categorical(n, tuple(uniq)))
    return DesignSpace(dims)


def _neighbour(v: Value) -> Value:
    if isinstance(v, bool):
        return not v
    if isinstance(v, int):
        return v + 1
    return float(np.nextafter(float(v), math.inf))
