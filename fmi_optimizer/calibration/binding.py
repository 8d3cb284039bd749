"""Bind ``[inputs]`` signals and the ``[calibration]`` loss to a study problem (through the host's
``fmio_bind_problem`` hook, see ``calibration.plugin``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from fmi_optimizer.calibration.loss import CalibrationLoss
from fmi_optimizer.calibration.settings import CalibrationSpec
from fmi_optimizer.errors import DataError, StudyError
from fmi_optimizer.fmu.timeseries import SeriesSpec, build_inputs
from fmi_optimizer.registry import ProblemBinding

if TYPE_CHECKING:
    from fmi_optimizer.study.config import StudyConfig
    from fmi_optimizer.study.problem import StudyProblem

FEATURE = "calibration"


class CalibrationBinding(ProblemBinding):
    """The input table every run is driven by and the loss computed in the parent from each trajectory
    (``loss_train``, ``loss_validation``); the data files' hashes are part of every cache key."""

    feature = FEATURE

    def __init__(self, inputs: Any, loss: CalibrationLoss | None):
        self.inputs, self.loss = inputs, loss

    def outputs(self) -> tuple[str, ...]:
        return self.loss.outputs if self.loss is not None else ()

    def kpis(self, time: np.ndarray, outputs: Mapping[str, np.ndarray]) -> dict[str, float]:
        return self.loss.kpis(time, outputs) if self.loss is not None else {}

    def input_table(self) -> Any:
        return self.inputs.table if self.inputs is not None else None

    def cache_identity(self) -> dict[str, Any]:
        parts = []  # what the cache key adds when inputs or measured data shape the KPIs
        if self.inputs is not None:
            parts.append("inputs:" + self.inputs.sha256)
        if self.loss is not None:
            parts.append("calibration:" + self.loss.fingerprint())
        return {"data": ";".join(parts)}


def input_spec(config: StudyConfig) -> SeriesSpec | None:
    """The study's parsed ``[inputs]`` section, or None."""
    spec = config.features.get("inputs")
    return spec if isinstance(spec, SeriesSpec) else None


def calibration_spec(config: StudyConfig) -> CalibrationSpec | None:
    """The study's parsed ``[calibration]`` section, or None."""
    spec = config.features.get("calibration")
    return spec if isinstance(spec, CalibrationSpec) else None


def with_calibration(config: StudyConfig, spec: CalibrationSpec) -> StudyConfig:
    """The same study with another ``[calibration]`` spec (e.g. checked on its validation window)."""
    return replace(config, features={**config.features, "calibration": spec})


def bind(problem: StudyProblem) -> CalibrationBinding | None:
    """Load the input signals and the measured data once, in the parent process; errors are one line.
    None for a study with neither section."""
    config, twin = problem.config, problem.twin
    inputs_cfg, calibration_cfg = input_spec(config), calibration_spec(config)
    if inputs_cfg is None and calibration_cfg is None:
        return None
    inputs = loss = None
    start, stop = problem.simulated_span()
    if inputs_cfg is not None:
        inputs = build_inputs(inputs_cfg, {v.name: v for v in twin.inputs}, start, stop)
    if calibration_cfg is not None:
        units = {name: twin.variable(name, to_set=False).unit for name in calibration_cfg.outputs}
        loss = CalibrationLoss.load(calibration_cfg, units)
        check_windows(loss, (start, stop))
    return CalibrationBinding(inputs, loss)


def loss_of(problem: Any) -> CalibrationLoss:
    """The calibration loss bound to ``problem``; a study without ``[calibration]`` is refused."""
    binding = problem.bindings.get(FEATURE)
    if not isinstance(binding, CalibrationBinding) or binding.loss is None:
        raise StudyError(f"{problem.config.source or 'study'}: no [calibration] section; add one with the "
                         "measured data (see docs/calibration.md)")
    return binding.loss


def check_windows(loss: CalibrationLoss, simulated: tuple[float, float],
                  windows: Mapping[str, tuple[float, float]] | None = None) -> None:
    """Every output needs measured samples in every window (``windows``, default the calibration's), or every
    evaluation would fail; and every measured sample of a window must lie in the simulated time range, or the
    loss would silently leave it out (a time offset in the file, a stop time shorter than the record)."""
    t = loss.series.time
    start, stop = simulated
    for label, (lo, hi) in (windows or loss.windows()).items():
        key = "check_window" if label == "check" else label
        for c in loss.spec.data.columns:
            measured = loss.series.masks[c.variable] & (t >= lo) & (t <= hi)
            if not measured.any() and (t[-1] < start or t[0] > stop):  # no window can help: the time is off
                raise DataError(f"{loss.series.path}: its times ({t[0]:g}..{t[-1]:g} s) lie entirely "
                                f"outside the simulated time {start:g}..{stop:g} s; is the time column "
                                "offset (clock time, another origin)? Shift it to the simulation's time, or "
                                "set [twin] start_time/stop_time")
            if not measured.any():
                raise DataError(f"{loss.series.path}: column {c.column!r} has no measured values in the "
                                f"{label} window [{lo:g}, {hi:g}] s (data: {t[0]:g}..{t[-1]:g} s); adjust "
                                f"[calibration] {key}")
            outside = measured & ((t < start - 1e-9) | (t > stop + 1e-9))
            if outside.any():
                raise DataError(
                    f"{loss.series.path}: {int(outside.sum())} of {int(measured.sum())} measured values of "
                    f"column {c.column!r} in the {label} window lie outside the simulated time "
                    f"{start:g}..{stop:g} s (data: {t[0]:g}..{t[-1]:g} s); set [twin] start_time/stop_time "
                    f"to cover them or narrow [calibration] {key} (is the time column offset?)")
