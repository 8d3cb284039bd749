"""A study's problem bound to its twin: design space, KPIs, objective, constraints, seeds.

This is where a raw simulation reply becomes an :class:`Evaluation` — KPIs computed,
directions and weights applied (the method always minimizes), constraint values
signed (<= 0 feasible) — and where candidates become start values with seeds.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from fmi_optimizer.engine.worker import RunReply, RunRequest
from fmi_optimizer.errors import StudyError
from fmi_optimizer.fmu.simulator import SimSettings
from fmi_optimizer.fmu.twin import Twin
from fmi_optimizer.host.kpi import KpiSpec, compute_kpis, parse_kpi
from fmi_optimizer.method import Problem
from fmi_optimizer.records import Candidate, Evaluation
from fmi_optimizer.registry import KpiRegistry
from fmi_optimizer.space import DesignSpace, Value
from fmi_optimizer.study.config import StudyConfig, stated_objective

if TYPE_CHECKING:
    from fmi_optimizer.uncertainty.layer import RobustLayer

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
    inputs: Any = None  # the input table built from [inputs] (calibration.binding)
    calibration: Any = None  # calibration.loss.CalibrationLoss from [calibration]
    robust: RobustLayer | None = None  # [uncertainty]: the shared sample and the robust aggregation

    @classmethod
    def build(cls, config: StudyConfig, twin: Twin, reducers: KpiRegistry,
              space: DesignSpace | None = None) -> StudyProblem:
        twin.check_interface(config.settings.interface)  # refused before any worker starts
        names = twin.recordable()
        kpis = tuple(parse_kpi(k, expr, reducers, names) for k, expr in config.kpis.items())
        if space is None:
            if not config.parameters and not config.scenarios:
                raise StudyError(f"{config.source or 'study'}: [parameters] is empty; list the parameters to "
                                 "optimize, tunable ones: "
                                 f"{', '.join(v.name for v in twin.tunable_parameters)}")
            dims = [twin.dimension(n, **spec) for n,
                    spec in config.parameters.items()] if config.parameters else []
            space = DesignSpace(dims) if dims else _scenario_space(config, twin)
        fixed = twin.check_values(config.fixed)
        if config.seed_parameter is not None:
            seed_var = twin.variable(config.seed_parameter)
            if seed_var.type != "Integer":
                raise StudyError(f"[replications] seed_parameter {config.seed_parameter!r} is "
                                 f"{seed_var.type}; it must be an Integer parameter")
        settings = config.settings
        problem = cls(config, twin, space, kpis, reducers, settings, fixed)
        if config.uncertainty is not None:
            from fmi_optimizer.uncertainty.layer import RobustLayer

            problem.robust = RobustLayer(config, twin)
        if config.inputs is not None or config.calibration is not None:
            from fmi_optimizer.calibration.binding import bind

            bind(problem)
        return problem

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
            budget_evaluations=c.budget.evaluations if self.robust is None or c.budget.evaluations is None
            else max(1, c.budget.evaluations // self.robust.runs_per_candidate()),  # in candidates
            batch_size=batch_size,
            budget_seconds=c.budget.seconds,
        )

    # -- candidates to runs -----------------------------------------------------------------
    def seed_for(self, candidate: Candidate) -> int | None:
        """Seed of a replication: shared by every candidate under common random numbers."""
        if self.config.seed_parameter is None:
            return None
        if self.robust is not None and (scenario_seed := self.robust.seed(candidate)) is not None:
            return scenario_seed  # the shared sample's seed: common random numbers across candidates
        base = SEED_BASE * (self.config.seed + 1) + candidate.replication
        if self.config.common_random_numbers:
            return int(base % 2_000_000_000)
        digest = hashlib.sha256(json.dumps([sorted(candidate.values.items()), base],
                                           default=str).encode()).digest()
        return int.from_bytes(digest[:4], "little") % 2_000_000_000

    def start_values(self, candidate: Candidate) -> dict[str, Value]:
        values: dict[str, Value] = {**self.fixed, **self.space.validate(candidate.values)}
        if self.robust is not None:
            values.update(self.robust.scenario_values(candidate))
        seed = self.seed_for(candidate)
        if seed is not None and self.config.seed_parameter is not None:
            values[self.config.seed_parameter] = seed
        return values

    def outputs(self) -> tuple[str, ...]:
        calibrated = self.calibration.outputs if self.calibration is not None else ()
        return tuple(dict.fromkeys([*(k.output for k in self.kpis), *calibrated]))

    def cache_key(self, candidate: Candidate) -> str:
        """FMU content + values + settings + seed: the identity of one simulation."""
        identity: dict[str, Any] = {"fmu": self.twin.fmu.sha256,
                                    "values": sorted(self.start_values(candidate).items()),
                                    "settings": self.settings.to_dict(), "outputs": self.outputs(),
                                    "kpis": [k.expression for k in self.kpis]}
        if self.inputs is not None or self.calibration is not None:  # the data shape the KPIs
            from fmi_optimizer.calibration.binding import data_fingerprint

            identity["data"] = data_fingerprint(self)
        payload = json.dumps(identity, default=str, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()

    def request(self, task_id: int, candidate: Candidate) -> RunRequest:
        inputs = self.inputs.table if self.inputs is not None else None
        return RunRequest(task_id, self.start_values(candidate), self.settings, self.outputs(), inputs)

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
            if self.calibration is not None:  # loss against the measured data
                kpis.update(self.calibration.kpis(reply.time, reply.outputs))
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
