"""Conformance suite for Method classes: built-ins pass it, third parties can run it in their tests.

``check_method(MyMethod)`` drives the class through the ask/tell contract on an instant
analytic twin (valid candidates, failed evaluations told, determinism for a seed,
options validation, budget respected, anytime recommendation).
``check_method_on_fmu(MyMethod, study)`` runs it through the real study loop on an FMU.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fmi_optimizer.errors import StudyError
from fmi_optimizer.method import Capabilities, Method, Problem, unsupported_reason
from fmi_optimizer.records import Candidate, Evaluation
from fmi_optimizer.space import Boolean, Categorical, Continuous, DesignSpace, Dimension, Integer, Value


class ConformanceError(AssertionError):
    """A Method class broke the contract; the message says which rule and how."""


@dataclass
class ConformanceReport:
    method: str
    evaluations: int
    best_objective: float | None
    checks: list[str]


def analytic_space(caps: Capabilities) -> DesignSpace:
    """A small space using every dimension kind the method declares."""
    dims: list[Dimension] = []
    if "continuous" in caps.kinds:
        dims += [Continuous("x1", -2.0, 3.0), Continuous("x2", 0.1, 10.0, log=True)]
    elif "discrete" in caps.kinds:
        dims += [Continuous("x1", -2.0, 3.0, levels=11), Continuous("x2", 0.1, 10.0, levels=5)]
    if "integer" in caps.kinds:
        dims.append(Integer("n", 1, 6))
    if "categorical" in caps.kinds:
        dims.append(Categorical("material", (1, 2, 3), ("steel", "alu", "copper")))
    if "boolean" in caps.kinds:
        dims.append(Boolean("flag"))
    if not dims:
        raise ConformanceError(f"capabilities.kinds {sorted(caps.kinds)} names no known dimension kind")
    return DesignSpace(dims)


# The optimum of the analytic twin is off the centre of the unit cube and off every grid the conformance
# space uses (x1 at unit 0.674 between the 11 levels, x2 at log-unit 0.731, n = 2 at unit 0.2, the last
# material), so a method that only proposes the centre, or one corner of a grid, does not find it by accident.
OPTIMUM: dict[str, Value] = {"x1": 1.37, "x2": 2.9, "n": 2, "material": 3, "flag": True}


def analytic_objective(values: Mapping[str, Value], replication: int = 0,
                       noisy: bool = False) -> dict[str, float]:
    """An instant 'twin': a smooth bowl over numeric dims plus categorical/boolean offsets; minimum 0 at
    :data:`OPTIMUM`."""
    f = 0.0
    for k, v in values.items():
        if k == "x1":
            f += (float(v) - 1.37) ** 2
        elif k == "x2":
            f += (math.log(float(v)) - math.log(2.9)) ** 2
        elif k == "n":
            f += 0.3 * (int(v) - 2) ** 2
        elif k == "material":
            f += {1: 0.5, 2: 1.0, 3: 0.0}[int(v)]
        elif k == "flag":
            f += 0.0 if v else 0.4
        elif k == "scenario_level":
            f += 0.2 * float(v)
    if noisy:
        rng = np.random.default_rng(1_000 + replication)
        f += float(rng.normal(0.0, 0.3))
    return {"f": f, "g": float(values.get("x1", 0.0)) - 2.5 if "x1" in values else -1.0}


def _problem(cls: type[Method], space: DesignSpace, budget: int) -> Problem:
    caps = cls.capabilities
    scenarios: tuple[tuple[str, dict[str, Value]], ...] = ()
    if caps.needs_scenarios:
        rng = np.random.default_rng(7)
        draws = space.sample(rng, 6)
        scenarios = tuple((f"s{i}", d) for i, d in enumerate(draws))
    return Problem(space=space, constraint_names=("g",) if caps.constraints else (),
                   noisy=caps.noisy and caps.needs_scenarios, scenarios=scenarios, budget_evaluations=budget,
                   batch_size=3, objective_names=("f",) if not caps.multi_objective else ("f",))


def run_ask_tell(method: Method, budget: int, batch: int,
                 fail: Callable[[int], bool] = lambda i: False) -> list[Evaluation]:
    """Drive ``method`` like the host does; evaluation ``i`` fails when ``fail(i)``."""
    history: list[Evaluation] = []
    space = method.problem.space
    while len(history) < budget and not method.finished:
        n = min(batch, budget - len(history))
        asked = method.ask(n)
        if not asked:
            break
        if len(asked) > n:
            raise ConformanceError(f"{method.name}: ask({n}) returned {len(asked)} candidates (at most {n})")
        told: list[Evaluation] = []
        for cand in asked:
            if not isinstance(cand, Candidate):
                raise ConformanceError(f"{method.name}: ask() must return Candidate objects, got "
                                       f"{type(cand).__name__}")
            try:
                space.validate(cand.values)
            except Exception as exc:
                raise ConformanceError(f"{method.name}: asked an invalid candidate {cand.values}: "
                                       f"{exc}") from exc
            i = len(history) + len(told)
            if fail(i):
                told.append(Evaluation(cand, "crashed", error="conformance: injected crash"))
                continue
            kpis = analytic_objective(cand.values, cand.replication, method.problem.noisy)
            ev = Evaluation(cand, "ok", kpis, kpis["f"], (kpis["f"],),
                            (kpis["g"],) if method.problem.constraint_names else ())
            told.append(ev)
        method.tell(told)
        history.extend(told)
    return history


def check_method(cls: type[Method], options: Mapping[str, Any] | None = None, budget: int = 24,
                 seed: int = 3) -> ConformanceReport:
    """Run the contract checks; raise :class:`ConformanceError` on the first violation."""
    checks: list[str] = []
    for attr, kind in (("name", str), ("summary", str)):
        if not isinstance(getattr(cls, attr, None), kind) or not getattr(cls, attr):
            raise ConformanceError(f"{cls.__name__}.{attr} must be a non-empty {kind.__name__}")
    if not isinstance(cls.capabilities, Capabilities):
        raise ConformanceError(f"{cls.__name__}.capabilities must be a fmi_optimizer.Capabilities")
    if not dataclasses.is_dataclass(cls.Options):
        raise ConformanceError(f"{cls.__name__}.Options must be a frozen dataclass")
    checks.append("class attributes")
    space = analytic_space(cls.capabilities)
    problem = _problem(cls, space, budget)
    why = unsupported_reason(cls.capabilities, problem)
    if why:
        raise ConformanceError(f"{cls.__name__}: cannot run its own conformance problem: {why}")
    fit = cls.fit(problem)
    if not (0.0 <= fit.score <= 1.0) or not isinstance(fit.reason, str):
        raise ConformanceError(f"{cls.__name__}.fit() must return Fit(score in [0, 1], reason), got {fit}")
    checks.append("fit() in range")
    try:
        cls(problem, {"__no_such_option__": 1}, seed)
    except StudyError as exc:
        if "accepted" not in str(exc):
            raise ConformanceError(f"{cls.__name__}: unknown-option error must list the accepted options: "
                                   f"{exc}") from exc
    else:
        raise ConformanceError(f"{cls.__name__}: accepted an unknown option without error")
    checks.append("unknown options rejected")

    runs = []
    for _ in range(2):
        m = cls(problem, options, seed)
        runs.append((m, run_ask_tell(m, budget, batch=3, fail=lambda i: i % 7 == 5)))
    seq = [[(tuple(sorted(e.values.items())), e.candidate.replication) for e in h] for _, h in runs]
    if seq[0] != seq[1]:
        raise ConformanceError(f"{cls.__name__}: two runs with seed {seed} asked different candidates; "
                               "methods must be deterministic for a seed (resume relies on it)")
    checks.append("deterministic for a seed")
    method, history = runs[0]
    if len(history) > budget:
        raise ConformanceError(f"{cls.__name__}: evaluated {len(history)} > budget {budget}")
    if not any(e.status == "crashed" for e in history) and len(history) > 6:
        raise ConformanceError("conformance harness did not inject a failure")
    checks.append("failed evaluations told without error")
    rec = method.recommend()
    best: float | None = None
    if rec is not None:
        space.validate(rec.values)
        scores = [e.objective for e in history if e.ok and e.values == rec.values and e.objective is not None]
        best = float(np.mean(scores)) if scores else None
    elif any(e.ok for e in history):
        raise ConformanceError(f"{cls.__name__}: recommend() returned None although evaluations succeeded")
    checks.append("recommend() anytime")
    try:
        method.diagnostics()
    except Exception as exc:
        raise ConformanceError(f"{cls.__name__}.diagnostics() raised {exc!r}") from exc
    batch_method = cls(problem, options, seed + 1)
    run_ask_tell(batch_method, min(budget, 12), batch=1)
    checks.append("works with batch size 1")
    return ConformanceReport(cls.name, len(history), best, checks)


def check_method_on_fmu(cls: type[Method], study: Mapping[str, Any], base_dir: Path, budget: int = 12,
                        options: Mapping[str, Any] | None = None) -> Any:
    """Run ``cls`` through the real study loop on an FMU (study dict relative to ``base_dir``) and check the
    rules there too: at most ``n`` candidates per ``ask(n)``, only valid candidates, no exception, a best."""
    from fmi_optimizer.errors import PluginError
    from fmi_optimizer.hookspecs import hookimpl
    from fmi_optimizer.host.loader import load_host
    from fmi_optimizer.runner.run import run_study
    from fmi_optimizer.study.config import load_study

    class _Plugin:
        @staticmethod
        @hookimpl
        def fmio_register_methods(registry: Any) -> None:
            if cls.name not in registry:
                registry.add(cls)

    with tempfile.TemporaryDirectory(prefix="fmio-conformance-") as tmp:
        config = load_study(dict(study), base_dir).with_overrides(
            method=cls.name, budget_evaluations=budget, out_dir=Path(tmp), workers=1,
            method_options=dict(options or {}))
        host = load_host(extra=[_Plugin()])
        try:
            outcome = run_study(config, host, write_back=False, report=False)
        except PluginError as exc:
            raise ConformanceError(f"{cls.__name__} on {config.fmu.name}: {exc}") from exc
        result = outcome.result
        errors = result.method_errors
        if errors.get("surplus_candidates"):
            raise ConformanceError(f"{cls.__name__} on {config.fmu.name}: ask(n) returned more than n "
                                   f"candidates ({errors['surplus_candidates']} surplus, dropped by the "
                                   "host)")
        if errors.get("invalid_candidates"):
            raise ConformanceError(f"{cls.__name__} on {config.fmu.name}: asked "
                                   f"{errors['invalid_candidates']} invalid candidate(s); first: "
                                   f"{errors['first']}")
        if result.counts()["total"] == 0:
            raise ConformanceError(f"{cls.__name__}: the study on {config.fmu.name} evaluated nothing")
        if result.best is None:
            raise ConformanceError(f"{cls.__name__}: no best evaluation on {config.fmu.name}")
        return result
