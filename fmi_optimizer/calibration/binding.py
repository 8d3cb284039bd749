"""Attach ``[inputs]`` signals and the ``[calibration]`` loss to a study problem (called by
StudyProblem.build)."""

from __future__ import annotations

from typing import Any

from fmi_optimizer.calibration.loss import CalibrationLoss
from fmi_optimizer.errors import DataError
from fmi_optimizer.fmu.timeseries import build_inputs


def bind(problem: Any) -> None:
    """Load the input signals and the measured data once, in the parent process; errors are one line."""
    config, twin = problem.config, problem.twin
    if config.inputs is not None:
        exp = twin.default_experiment
        start = (problem.settings.start_time if problem.settings.start_time is not None
                 else (exp.start_time or 0.0))
        stop = (problem.settings.stop_time if problem.settings.stop_time is not None
                else (exp.stop_time or start + 1.0))
        problem.inputs = build_inputs(config.inputs, {v.name: v for v in twin.inputs}, float(start),
                                      float(stop))
    if config.calibration is not None:
        units = {name: twin.variable(name).unit for name in config.calibration.outputs}
        problem.calibration = CalibrationLoss.load(config.calibration, units)
        check_windows(problem.calibration)


def check_windows(loss: CalibrationLoss) -> None:
    """Every output needs measured samples in every window, or every evaluation would fail."""
    t = loss.series.time
    for label, (lo, hi) in loss.windows().items():
        for c in loss.spec.data.columns:
            if not (loss.series.masks[c.variable] & (t >= lo) & (t <= hi)).any():
                raise DataError(f"{loss.series.path}: column {c.column!r} has no measured values in the "
                                f"{label} window [{lo:g}, {hi:g}] s (data: {t[0]:g}..{t[-1]:g} s); adjust "
                                f"[calibration] {label}")


def data_fingerprint(problem: Any) -> str:
    """What the cache key must add when inputs or measured data shape the KPIs ('' otherwise)."""
    parts = []
    if problem.inputs is not None:
        parts.append("inputs:" + problem.inputs.sha256)
    if problem.calibration is not None:
        parts.append("calibration:" + problem.calibration.fingerprint())
    return ";".join(parts)
