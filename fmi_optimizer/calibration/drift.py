"""Drift check: simulate the calibrated twin over new measured data, compute the fidelity metrics and
compare them with the study's thresholds; optionally recalibrate, warm-started from the previous
parameters (bounds narrowed around them, then least-squares refinement from the best point)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fmi_optimizer.calibration.binding import calibration_spec, check_windows, input_spec, loss_of
from fmi_optimizer.calibration.history import History
from fmi_optimizer.calibration.runner import Runner
from fmi_optimizer.errors import DataError, StudyError
from fmi_optimizer.host.loader import Host, load_host
from fmi_optimizer.runner.run import build_problem, default_out_dir, make_evaluator
from fmi_optimizer.space import Continuous
from fmi_optimizer.study.config import StudyConfig

NARROW = 0.25  # recalibration searches +-25 % of each parameter's range around the previous value


@dataclass
class CheckResult:
    """Fidelity of the calibrated twin on new data and which thresholds it breaks."""

    parameters: dict[str, Any]
    fidelity: dict[str, dict[str, float]]
    exceeded: list[str]
    data: str
    data_sha256: str
    history_id: int = 0
    report: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def drift(self) -> bool:
        return bool(self.exceeded)

    def to_json(self) -> dict[str, Any]:
        return {"drift": self.drift, "exceeded": self.exceeded, "fidelity": self.fidelity,
                "parameters": self.parameters, "data": self.data, "data_sha256": self.data_sha256,
                "history_id": self.history_id, "report": self.report, **self.extra}


def with_data(config: StudyConfig, data: Path, inputs: Path | None = None) -> StudyConfig:
    """The same study, calibrated against another measured data file (and optionally other input signals)."""
    spec = calibration_spec(config)
    if spec is None:
        raise StudyError(f"{config.source or 'study'}: [calibration] is missing; nothing to check against")
    for path in (data, inputs):
        if path is not None and not path.exists():
            raise DataError(f"{path.resolve()}: data file does not exist; give the path of the measured data "
                            "(a relative one is read from the current folder)")
    features = {**config.features, "calibration": replace(spec, data=replace(spec.data, file=data.resolve()))}
    if inputs is not None:
        inputs_cfg = input_spec(config)
        if inputs_cfg is None:
            raise StudyError(f"{config.source or 'study'}: --inputs given but the study has no [inputs] "
                             "section")
        features["inputs"] = replace(inputs_cfg, file=inputs.resolve())
    config = replace(config, features=features)
    return config


def exceeded(fidelity: Mapping[str, Mapping[str, float]], thresholds: Mapping[str, float]) -> list[str]:
    """'output: metric value > limit' for every broken threshold (abs_* compare absolute values)."""
    out = []
    for output, m in fidelity.items():
        for metric, limit in thresholds.items():
            base = metric.removeprefix("abs_")
            value = m.get(base, math.nan)
            value = abs(value) if metric.startswith("abs_") else value
            if base == "lag" and math.isnan(value) and m.get("n", 0.0) > 0:
                continue  # undefined on a window without shape (see metrics.fidelity): nothing to judge
            if not math.isfinite(value) or value > limit:
                out.append(f"{output}: {metric} {value:.4g} > {limit:g}")
    return out


def previous_parameters(config: StudyConfig, db: Path) -> dict[str, Any]:
    if not db.exists():
        raise StudyError(f"{db}: no study database; run 'fmi-optimizer calibrate' first")
    history = History(db)
    try:
        entry = history.latest_parameters(config.name)
    finally:
        history.close()
    if entry is None:
        raise StudyError(f"{db}: no calibration of study {config.name!r} yet; run 'fmi-optimizer calibrate' "
                         "first")
    return entry.parameters


def check(config: StudyConfig, data: Path, host: Host | None = None, *,
          parameters: dict[str, Any] | None = None,
          record: bool = True, inputs: Path | None = None,
          log: Callable[[str], None] = lambda s: None) -> CheckResult:
    """Simulate the calibrated parameters over ``data`` (with ``inputs`` as the input signals, if given)
    and compare fidelity with ``[calibration.drift]``."""
    config = with_data(config, data, inputs)
    spec = calibration_spec(config)
    db = default_out_dir(config) / "fmi_optimizer.db"
    values = parameters if parameters is not None else previous_parameters(config, db)
    host = host or load_host(config.plugins_dir)
    problem = build_problem(config, host)
    evaluator = make_evaluator(host, problem)
    try:
        ((ev, reply),) = Runner(problem, evaluator).run([values])
    finally:
        evaluator.close()
    if not ev.ok:
        raise StudyError(f"check: the calibrated twin failed on the new data's settings ({ev.error})")
    loss = loss_of(problem)
    assert spec is not None and reply.time is not None  # with_data refused a study without [calibration]
    window = spec.check_window or (spec.train[0], math.inf)
    # as calibrate does: measured values beyond the simulated time are refused, not silently left out
    check_windows(loss, problem.simulated_span(), {"check": window})
    fidelity = loss.fidelity(reply.time, reply.outputs, window)
    broken = exceeded(fidelity, spec.drift)
    result = CheckResult(dict(values), fidelity, broken, str(loss.series.path), loss.series.sha256)
    log(f"check on {loss.series.path.name}: "
        "" + ("DRIFT: " + "; ".join(broken) if broken else "within thresholds"))
    if record and db.exists():
        history = History(db)
        try:
            result.history_id = history.add("check", config.name, str(loss.series.path), loss.series.sha256,
                                            dict(values), {"fidelity": {"check": fidelity}},
                                            drift=result.drift,
                                            details={"exceeded": broken, "thresholds": dict(spec.drift)})
            entries = history.entries(config.name)
        finally:
            history.close()
        from fmi_optimizer.calibration.report import write_calibration_report

        out = default_out_dir(config) / f"check-{result.history_id}.html"
        result.report = str(write_calibration_report(out, loss, (reply.time, reply.outputs),
                                                     {"check": fidelity},
                                                     None, entries,
                                                     title=f"Drift check #{result.history_id}",
                                                     windows={"check": window}))
    return result


def warm_start(config: StudyConfig, host: Host, previous: Mapping[str, Any]) -> StudyConfig:
    """Bounds narrowed to +-NARROW of each continuous parameter's range around its previous value."""
    del host  # bounds come from the study file and the FMU
    params: dict[str, dict[str, Any]] = {}
    from fmi_optimizer.fmu.twin import Twin

    twin = Twin.open(config.existing_fmu())
    for name, spec in config.parameters.items():
        dim = twin.dimension(name, **spec)
        if isinstance(dim, Continuous) and name in previous:
            v, span = float(previous[name]), dim.hi - dim.lo
            lo, hi = max(dim.lo, v - NARROW * span), min(dim.hi, v + NARROW * span)
            params[name] = {**spec, "min": lo, "max": hi} if lo < hi else dict(spec)
        else:
            params[name] = dict(spec)
    return replace(config, parameters=params)


def recalibrate(config: StudyConfig, data: Path, host: Host | None = None, *, inputs: Path | None = None,
                log: Callable[[str], None] = lambda s: None, progress: Any = None) -> Any:
    """Recalibrate on ``data`` warm-started from the latest calibration; writes a new calibrated FMU."""
    from fmi_optimizer.calibration.calibrate import calibrate

    host = host or load_host(config.plugins_dir)
    config = with_data(config, data, inputs)
    previous = previous_parameters(config, default_out_dir(config) / "fmi_optimizer.db")
    return calibrate(warm_start(config, host, previous), host, log=log, progress=progress,
                     kind="recalibration")


__all__ = ["CheckResult", "check", "recalibrate"]
