"""Local identifiability at the optimum: sensitivities, standard errors and parameter correlations
from the Jacobian of the residual vector (linearised least squares).

cov = s^2 (J^T J)^+ with s^2 = SSR / (n - p). A parameter is flagged when its relative standard
error exceeds a threshold (the data cannot pin it down) or when it has no effect on the outputs. Two
parameters almost perfectly correlated compensate each other: that is said, and they are flagged when the
data cannot separate them (a standard error above the threshold, or a direction the data do not see at all,
which the pseudo-inverse would hide); a correlation alone is not that, as the standard errors carry it (a room
model's two parameters at correlation 0.993 were determined to 0.5 % and 0.9 %, and were called not
identifiable).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Identifiability:
    """Per-parameter facts and the warnings derived from them (JSON-able via :meth:`to_dict`)."""

    names: list[str]
    values: list[float]
    sensitivity: list[float]  # RMS of d(residual)/d(ln theta): effect of a 1 % change is about 0.01 x this
    std_error: list[float]
    rel_std_error: list[float]
    correlation: list[list[float]]
    singular_values: list[float]
    warnings: list[str] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"parameters": {n: {"value": v, "sensitivity": s, "std_error": e, "rel_std_error": r,
                                   "identifiable": n not in self.flagged}
                               for n, v, s, e,
                               r in zip(self.names, self.values, self.sensitivity, self.std_error,
                                                        self.rel_std_error, strict=True)},
                "correlation": self.correlation, "singular_values": self.singular_values,
                "warnings": self.warnings, "flagged": self.flagged}


def analyse(names: Sequence[str], values: Sequence[float], jac: np.ndarray, residuals: np.ndarray,
            scales: Sequence[float] | None = None, rel_se_limit: float = 0.05,
            correlation_limit: float = 0.95) -> Identifiability:
    """``jac`` is d(residual)/d(theta) in physical units (n x p); ``scales`` replace |theta| as the
    reference of relative errors where a value is 0 (default: 1)."""
    n, p = jac.shape
    theta = np.asarray(values, dtype=float)
    ref = np.abs(theta)
    if scales is not None:
        ref = np.where(ref > 0, ref, np.asarray(scales, dtype=float))
    ref = np.where(ref > 0, ref, 1.0)
    sens = np.sqrt(np.mean((jac * ref) ** 2, axis=0)) if n else np.zeros(p)
    ssr = float(residuals @ residuals)
    s2 = ssr / max(1, n - p)
    js = jac * ref  # relative coordinates: parameters of very different magnitudes stay comparable
    cov_rel = s2 * np.linalg.pinv(js.T @ js, rcond=1e-12)
    rel = np.sqrt(np.clip(np.diag(cov_rel), 0.0, None))
    se = rel * ref
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = cov_rel / np.outer(rel, rel)
    corr = np.where(np.isfinite(corr), corr, 0.0)
    np.fill_diagonal(corr, 1.0)
    svals = np.linalg.svd(js, compute_uv=False) if n and p else np.zeros(0)
    out = Identifiability(list(names), theta.tolist(), sens.tolist(), se.tolist(), rel.tolist(),
                          np.round(corr, 6).tolist(), svals.tolist())
    top = float(np.max(sens)) if p else 0.0
    for i, name in enumerate(names):
        if top == 0 or sens[i] < 1e-6 * top:
            out.warnings.append(f"{name}: no measurable effect on the calibrated outputs; fix it to a known "
                                "value")
            out.flagged.append(name)
        elif not math.isfinite(rel[i]) or rel[i] > rel_se_limit:
            out.warnings.append(f"{name}: poorly determined by the data (relative standard error "
                                f"{rel[i]:.1%} > {rel_se_limit:.0%}); treat its value as uncertain")
            out.flagged.append(name)
    # the pseudo-inverse drops a direction the data do not see at all, and the standard errors then hide it:
    # judge that from the conditioning of the parameters that have an effect
    moving = sens >= 1e-6 * top if p else np.zeros(0, dtype=bool)
    kept = np.linalg.svd(js[:, moving], compute_uv=False) if n and moving.any() else np.ones(1)
    degenerate = float(kept.min()) < 1e-8 * float(kept.max())
    for i in range(p):
        for j in range(i + 1, p):
            if abs(corr[i, j]) > correlation_limit:
                loose = degenerate or not (math.isfinite(rel[i]) and math.isfinite(rel[j])) \
                    or max(rel[i], rel[j]) > rel_se_limit
                if loose:
                    out.warnings.append(f"{names[i]} and {names[j]} are correlated ({corr[i, j]:+.3f}): the "
                                        "data cannot separate them; fix one or add data that excites them "
                                        "differently")
                    for k in (names[i], names[j]):
                        if k not in out.flagged:
                            out.flagged.append(k)
                else:
                    out.warnings.append(f"{names[i]} and {names[j]} are correlated ({corr[i, j]:+.3f}): they "
                                        "compensate each other, yet these data determine both (relative "
                                        f"standard errors {rel[i]:.1%}, {rel[j]:.1%}); data that excites "
                                        "them differently would separate them better")
    return out
