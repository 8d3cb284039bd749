"""The ``[calibration]`` and ``[inputs]`` sections of a study file, parsed into frozen settings."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmi_optimizer.errors import StudyError
from fmi_optimizer.fmu.timeseries import SeriesSpec, parse_series

LOSSES = ("rmse", "nrmse", "mae")
DRIFT_METRICS = ("rmse", "nrmse", "mae", "abs_bias", "max_abs_error", "abs_lag")
LOSS_KPI = "loss_train"
VALIDATION_KPI = "loss_validation"


@dataclass(frozen=True)
class CalibrationSpec:
    """What to fit: outputs <- measured columns (``data``), the loss, the windows, refinement, drift
    thresholds."""

    data: SeriesSpec
    loss: str = "rmse"
    train: tuple[float, float] = (-math.inf, math.inf)
    validation: tuple[float, float] | None = None
    refine: bool = True
    refine_evaluations: int = 200
    identifiability_rel_se: float = 0.05
    correlation_limit: float = 0.95
    drift: Mapping[str, float] = field(default_factory=lambda: {"nrmse": 0.1})
    check_window: tuple[float, float] | None = None

    @property
    def outputs(self) -> tuple[str, ...]:
        return tuple(c.variable for c in self.data.columns)


def parse_inputs(raw: Any, where: str, base_dir: Path) -> SeriesSpec | None:
    """``[inputs]``: file, time, time_unit, nan (default fail), ``[inputs.columns]``."""
    if not raw:
        return None
    if not isinstance(raw, dict):
        raise StudyError(f"{where}: [inputs] must be a table")
    return parse_series(raw, where, base_dir, "inputs", "columns", "fail")


def parse_calibration(raw: Any, where: str, base_dir: Path) -> CalibrationSpec | None:
    """``[calibration]``: file, time, time_unit, nan (default mask), ``[calibration.outputs]``, loss,
    train/validation windows ``[t0, t1]`` in seconds, refine, refine_evaluations, identifiability
    thresholds, ``[calibration.drift]`` metric = maximum."""
    if not raw:
        return None
    if not isinstance(raw, dict):
        raise StudyError(f"{where}: [calibration] must be a table")
    extra = ("loss", "train", "validation", "refine", "refine_evaluations", "identifiability_rel_se",
             "correlation_limit", "drift", "check_window")
    data = parse_series(raw, where, base_dir, "calibration", "outputs", "mask", extra)
    loss = raw.get("loss", "rmse")
    if loss not in LOSSES:
        raise StudyError(f"{where}: [calibration] loss = {loss!r}: accepted: {', '.join(LOSSES)}")
    refine = raw.get("refine", True)
    if not isinstance(refine, bool):
        raise StudyError(f"{where}: [calibration] refine = {refine!r}: expected true or false")
    n_refine = raw.get("refine_evaluations", 200)
    if isinstance(n_refine, bool) or not isinstance(n_refine, int) or n_refine < 1:
        raise StudyError(f"{where}: [calibration] refine_evaluations = {n_refine!r}: expected an integer >= "
                         "1")
    return CalibrationSpec(
        data=data, loss=loss,
        train=_window(raw.get("train"), f"{where}: [calibration] train") or (-math.inf, math.inf),
        validation=_window(raw.get("validation"), f"{where}: [calibration] validation"),
        refine=refine, refine_evaluations=n_refine,
        identifiability_rel_se=_positive(raw.get("identifiability_rel_se", 0.05), f"{where}: [calibration] "
                                         "identifiability_rel_se"),
        correlation_limit=_positive(raw.get("correlation_limit", 0.95),
                                    f"{where}: [calibration] correlation_limit"),
        drift=_drift(raw.get("drift", {"nrmse": 0.1}), f"{where}: [calibration.drift]"),
        check_window=_window(raw.get("check_window"), f"{where}: [calibration] check_window"),
    )


def _window(v: Any, where: str) -> tuple[float, float] | None:
    if v is None:
        return None
    if (not isinstance(v,
                       list) or len(v) != 2
                       or any(isinstance(x, bool) or not isinstance(x, int | float) for x in v)
            or not v[0] < v[1]):
        raise StudyError(f"{where} = {v!r}: expected [start, end] in seconds with start < end")
    return float(v[0]), float(v[1])


def _positive(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
        raise StudyError(f"{where} = {v!r}: expected a positive number")
    return float(v)


def _drift(v: Any, where: str) -> dict[str, float]:
    if not isinstance(v, dict) or not v:
        raise StudyError(f"{where} = {v!r}: expected a table metric = maximum, e.g. {{ nrmse = 0.1 }}")
    for k, x in v.items():
        if k not in DRIFT_METRICS:
            raise StudyError(f"{where} {k}: unknown metric; accepted: {', '.join(DRIFT_METRICS)}")
        _positive(x, f"{where} {k}")
    return {k: float(x) for k, x in v.items()}
