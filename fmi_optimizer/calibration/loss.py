"""The calibration loss: a KPI-like scalar from a run's output trajectories and the measured data.

Bound into :class:`~fmi_optimizer.study.problem.StudyProblem` when ``[calibration]`` is configured, so the
normal study loop, storage, cache, resume and every method work unchanged: each evaluation gets the
KPIs ``loss_train`` (the objective) and ``loss_validation``. Gaps in the measurements are masked,
never interpolated into the loss.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from fmi_optimizer.calibration import metrics
from fmi_optimizer.calibration.settings import LOSS_KPI, VALIDATION_KPI, CalibrationSpec
from fmi_optimizer.fmu.timeseries import Series, load_series


@dataclass
class Aligned:
    """One output on the measurement grid: time, measured, simulated, valid mask (measured & in window)."""

    time: np.ndarray
    measured: np.ndarray
    simulated: np.ndarray
    mask: np.ndarray


class CalibrationLoss:
    """Measured data + loss definition; computes losses, residual vectors and fidelity metrics."""

    def __init__(self, spec: CalibrationSpec, series: Series):
        self.spec = spec
        self.series = series
        self.weights = {c.variable: c.weight for c in spec.data.columns}

    @classmethod
    def load(cls, spec: CalibrationSpec, units: Mapping[str, str]) -> CalibrationLoss:
        return cls(spec, load_series(spec.data, units))

    @property
    def outputs(self) -> tuple[str, ...]:
        return self.spec.outputs

    def fingerprint(self) -> str:
        """Identity of the data and of the loss definition (part of every cache key)."""
        s = self.spec
        payload = json.dumps({"data": self.series.sha256, "loss": s.loss, "train": s.train,
                              "validation": s.validation, "columns": [c.__dict__ for c in s.data.columns],
                              "time": [s.data.time, s.data.time_unit], "nan": s.data.nan}, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()

    def align(self, time: np.ndarray, outputs: Mapping[str, np.ndarray],
              window: tuple[float, float]) -> dict[str, Aligned]:
        """Simulated outputs interpolated onto the measured times inside ``window`` (and the simulated
        range)."""
        t = self.series.time
        inside = (t >= window[0]) & (t <= window[1]) & (t >= time[0] - 1e-9) & (t <= time[-1] + 1e-9)
        out = {}
        for name in self.outputs:
            sim = np.interp(t, time, np.asarray(outputs[name], dtype=float))
            out[name] = Aligned(t, self.series.columns[name], sim, self.series.masks[name] & inside)
        return out

    def loss(self, time: np.ndarray, outputs: Mapping[str, np.ndarray], window: tuple[float, float]) -> float:
        """Weighted mean over outputs of the chosen metric (rmse / nrmse / mae) on the window."""
        total, wsum = 0.0, 0.0
        for name, a in self.align(time, outputs, window).items():
            if not a.mask.any():
                return math.nan
            s, y = a.simulated[a.mask], a.measured[a.mask]
            value = {"rmse": metrics.rmse, "nrmse": metrics.nrmse, "mae": metrics.mae}[self.spec.loss](s, y)
            total += self.weights[name] * value
            wsum += self.weights[name]
        return total / wsum

    def kpis(self, time: np.ndarray, outputs: Mapping[str, np.ndarray]) -> dict[str, float]:
        """The KPIs added to every evaluation of a calibration study."""
        out = {LOSS_KPI: self.loss(time, outputs, self.spec.train)}
        if self.spec.validation is not None:
            out[VALIDATION_KPI] = self.loss(time, outputs, self.spec.validation)
        return out

    def residuals(self, time: np.ndarray, outputs: Mapping[str, np.ndarray],
                  window: tuple[float, float]) -> np.ndarray:
        """Weighted residual vector whose sum of squares is the weighted mean of per-output MSE
        (divided by the measured range squared for nrmse): what least-squares refinement minimizes."""
        parts = []
        wsum = sum(self.weights.values())
        for name, a in self.align(time, outputs, window).items():
            s, y = a.simulated[a.mask], a.measured[a.mask]
            scale = math.sqrt(self.weights[name] / wsum / max(1, y.size))
            if self.spec.loss == "nrmse" and y.size:
                scale /= max(float(np.max(y) - np.min(y)), 1e-300)
            parts.append((s - y) * scale)
        return np.concatenate(parts) if parts else np.zeros(0)

    def fidelity(self, time: np.ndarray, outputs: Mapping[str, np.ndarray],
                 window: tuple[float, float]) -> dict[str, dict[str, float]]:
        """Every fidelity metric per output on ``window``."""
        return {name: metrics.fidelity(a.time, a.simulated, a.measured, a.mask)
                for name, a in self.align(time, outputs, window).items()}

    def windows(self) -> dict[str, tuple[float, float]]:
        out = {"train": self.spec.train}
        if self.spec.validation is not None:
            out["validation"] = self.spec.validation
        return out
