"""Calibration end to end: a registered method drives the normal study (the loss is the objective),
then optional least-squares refinement from the best point, identifiability at the optimum,
fidelity metrics per window, write-back of the calibrated FMU, report and history."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fmi_optimizer.calibration.binding import calibration_spec, loss_of
from fmi_optimizer.calibration.history import History
from fmi_optimizer.calibration.identifiability import Identifiability, analyse
from fmi_optimizer.calibration.refine import Refined, jacobian_at, refine
from fmi_optimizer.calibration.runner import Runner
from fmi_optimizer.errors import StudyError
from fmi_optimizer.host.loader import Host, load_host
from fmi_optimizer.records import Evaluation
from fmi_optimizer.runner.run import Outcome, make_evaluator, run_study
from fmi_optimizer.space import Continuous
from fmi_optimizer.study.config import StudyConfig
from fmi_optimizer.study.loop import ProgressCallback
from fmi_optimizer.study.storage import Store


@dataclass
class CalibrationResult:
    """What a calibration produced: parameters, fidelity per window and output, identifiability, cost."""

    outcome: Outcome
    values: dict[str, Any]
    evaluation: Evaluation
    fidelity: dict[str, dict[str, dict[str, float]]]
    identifiability: Identifiability
    evaluations: dict[str, int]
    wall_seconds: float
    method: str
    history_id: int = 0
    trajectory: Any = None
    files: dict[str, str] = field(default_factory=dict)
    on_bounds: list[str] = field(default_factory=list)  # "name = value on the upper bound 80 of [60, 80]"

    def to_json(self) -> dict[str, Any]:
        return {"study": self.outcome.result.name, "study_id": self.outcome.result.study_id,
                "method": self.method,
                "parameters": self.values, "loss_train": self.evaluation.kpis.get("loss_train"),
                "loss_validation": self.evaluation.kpis.get("loss_validation"), "fidelity": self.fidelity,
                "identifiability": self.identifiability.to_dict(), "evaluations": self.evaluations,
                "wall_seconds": self.wall_seconds, "history_id": self.history_id,
                "outputs": {**self.outcome.to_json()["outputs"], **self.files},
                "verification": self.outcome.verification, "on_bounds": self.on_bounds}


def default_method(config: StudyConfig, host: Host) -> str:
    """``auto`` means Bayesian optimization when registered (expensive twins), else differential evolution."""
    if config.method != "auto":
        return config.method
    return "bayes" if "bayes" in host.methods.names() else "de"


def calibrate(config: StudyConfig, host: Host | None = None, *, log: Callable[[str], None] = lambda s: None,
              progress: ProgressCallback | None = None, kind: str = "calibration",
              write_back: bool = True) -> CalibrationResult:
    """Run the calibration study of ``config`` and everything after it; see the module docstring."""
    spec = calibration_spec(config)
    if spec is None:
        raise StudyError(f"{config.source or 'study'}: [calibration] is missing; map outputs to measured "
                         "columns (see docs/calibration.md)")
    t0 = time.perf_counter()
    host = host or load_host(config.plugins_dir)
    method = default_method(config, host)
    if config.method == "auto":  # run_study will say "chosen by name": say first who chose it and why
        log(f"calibration: method auto -> {method!r} (calibration's default: Bayesian optimization when "
            "installed, else differential evolution), then least-squares refinement")
    again = f"fmi-optimizer calibrate {config.source}" if config.source else "calibrate() with the same study"
    config = config.with_overrides(method=method, resume_with=again)
    from fmi_optimizer.runner.run import default_out_dir, ensure_writable
    from fmi_optimizer.writeback.atomic import OutputLock

    with OutputLock(ensure_writable(default_out_dir(config))).acquire(None, log):  # refinement and files too
        return _calibrate(config, host, log, progress, kind, write_back, t0)


def _calibrate(config: StudyConfig, host: Host, log: Callable[[str], None], progress: ProgressCallback | None,
               kind: str, write_back: bool, t0: float) -> CalibrationResult:
    spec = calibration_spec(config)
    assert spec is not None
    outcome = run_study(config, host, progress=progress, write_back=False, report=False, log=log)
    if outcome.result.interrupted:  # Ctrl-C in the search: no refinement, no FMU, no history entry
        log(f"interrupted (Ctrl-C) during the calibration's search; every evaluation is stored: run "
            f"'{config.resume_with}' again to continue (stored runs are reused from the cache, free)")
        raise KeyboardInterrupt
    best = outcome.result.best
    if best is None:
        raise StudyError(f"study {config.name!r}: no successful evaluation to calibrate from")
    try:
        return _refine_and_deliver(config, host, log, kind, write_back, t0, outcome, Store(outcome.db))
    except KeyboardInterrupt:  # the study is finished, the calibration is not: say so where it is stored
        stopped = ("interrupted (Ctrl-C) after the search, during the refinement or the deliverables; every "
                   f"evaluation is stored: run '{config.resume_with}' again to finish (stored runs are "
                   "reused)")
        marked = Store(outcome.db)
        try:
            marked.set_status(outcome.result.study_id, "interrupted",
                              {**outcome.to_json(), "stopped_because": stopped})
        finally:
            marked.close()
        log(stopped)
        raise


def _refine_and_deliver(config: StudyConfig, host: Host, log: Callable[[str], None], kind: str,
                        write_back: bool, t0: float, outcome: Any, store: Store) -> CalibrationResult:
    spec = calibration_spec(config)
    assert spec is not None
    best = outcome.result.best
    problem = outcome.problem
    evaluator = make_evaluator(host, problem)
    try:
        runner = Runner(problem, evaluator, store, outcome.result.study_id, "refine")
        final: Refined
        if spec.refine:
            final = refine(runner, best.values, spec.train, spec.refine_evaluations)
            log(f"least-squares refinement: {final.evaluations} evaluations ({final.message})")
            if final.evaluation is None or final.evaluation.objective is None or best.objective is None \
                    or final.evaluation.objective > best.objective:
                runner.tag = "jacobian"
                final = jacobian_at(runner, best.values, spec.train)
        else:
            runner.tag = "jacobian"
            final = jacobian_at(runner, best.values, spec.train)
    finally:
        evaluator.close()
    assert final.evaluation is not None and final.jac is not None and final.residuals is not None
    loss = loss_of(problem)
    reply = final.reply
    fidelity = {w: loss.fidelity(reply.time, reply.outputs, win) for w, win in loss.windows().items()}
    dims = {d.name: d for d in problem.space.dimensions if isinstance(d, Continuous)}
    names = [n for n in final.values if n in dims]
    ident = analyse(names, [float(final.values[n]) for n in names], final.jac, final.residuals,
                    scales=[dims[n].hi - dims[n].lo for n in names], rel_se_limit=spec.identifiability_rel_se,
                    correlation_limit=spec.correlation_limit)
    for w in ident.warnings:
        log(f"identifiability: {w}")
    on_bounds = [f"{n} = {final.values[n]:.6g} on the {side} bound of its range [{dims[n].lo:g}, "
                 f"{dims[n].hi:g}]" for n in names
                 for side, edge in (("lower", dims[n].lo), ("upper", dims[n].hi))
                 if abs(float(final.values[n]) - edge) <= 1e-6 * (dims[n].hi - dims[n].lo)]
    for b in on_bounds:  # a fit held by its range is not a fit: say so (and how to widen it)
        log(f"warning: {b}: the data may want a value beyond it, or the model cannot fit them; "
            + ("a recalibration searches only +-25 % of each range around the previous value: run calibrate "
               "on the new data for the whole range" if kind == "recalibration" else "widen the range"))
    outcome.result.best = final.evaluation
    if write_back:
        from fmi_optimizer.runner.run import write_back_best

        write_back_best(outcome, log)
    n_method = outcome.result.counts()["total"]
    result = CalibrationResult(outcome, dict(final.values), final.evaluation, fidelity, ident,
                               {"method": n_method, "refine": runner.count, "total": n_method + runner.count},
                               time.perf_counter() - t0, config.method,
                               trajectory=(reply.time, reply.outputs), on_bounds=on_bounds)
    _finish(result, store, kind)
    return result


def _finish(result: CalibrationResult, store: Store, kind: str) -> None:
    """Reports, history entry, and the calibration summary in the study's stored result."""
    from fmi_optimizer.calibration.report import write_calibration_report
    from fmi_optimizer.report.html import write_report

    outcome = result.outcome
    problem = outcome.problem
    sid = outcome.result.study_id
    try:
        # the report reads the stored result: store the calibrated best (and its write-back) before writing it
        report = outcome.out_dir / f"report{outcome.deliverables_tag}.html"
        outcome.files["report"] = str(report)
        store.set_status(sid, "finished", {**outcome.to_json(), "calibration": result.to_json()})
        write_report(store, sid, report, pm=outcome.host.pm if outcome.host is not None else None)
        series = loss_of(problem).series
        history = History(outcome.db)
        try:
            result.history_id = history.add(
                kind, outcome.result.name, str(series.path), series.sha256, result.values,
                {"fidelity": result.fidelity, "loss_train": result.evaluation.kpis.get("loss_train"),
                 "loss_validation": result.evaluation.kpis.get("loss_validation")},
                study_id=sid, fmu=outcome.files.get("fmu"),
                details={"evaluations": result.evaluations, "wall_seconds": result.wall_seconds,
                         "identifiability": result.identifiability.to_dict(), "method": result.method})
            entries = history.entries(outcome.result.name)
        finally:
            history.close()
        path = write_calibration_report(outcome.out_dir / f"calibration{outcome.deliverables_tag}.html",
                                        loss_of(problem), result.trajectory,
                                        result.fidelity, result.identifiability, entries)
        result.files["calibration_report"] = str(path)
        store.set_status(sid, "finished", {**outcome.to_json(), "calibration": result.to_json()})
    finally:
        store.close()
