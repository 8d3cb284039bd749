"""Assemble the annealer's binary quadratic model from numpy arrays, with calibrated penalty weights.

Weights are *scaled* to the objective model: an encoding block's weight is the largest change any single bit
flip of that block can make to the objective (:meth:`QuadModel.max_flip_gain`) times the block's worst-case
flips per unit of penalty, so the lowest energy is always a valid encoding (checked in the tests with
``dimod.ExactSolver``). The :class:`PenaltySchedule` multiplies these by factors that are raised when decoded
annealer samples still break the encoding (the annealer did not reach the ground state) or when proposals
turn out infeasible on the twin, and decay slowly back when they do not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .encoding import Encoding
from .surrogate import QuadModel

if TYPE_CHECKING:
    import dimod


def to_bqm(model: QuadModel) -> dimod.BinaryQuadraticModel:
    """A BINARY BQM on variables ``0..n-1`` built from the arrays (no Python dicts on the hot path)."""
    import dimod

    rows, cols = np.nonzero(model.quad)
    return dimod.BinaryQuadraticModel.from_numpy_vectors(
        model.lin, (rows, cols, model.quad[rows, cols]), float(model.offset), dimod.BINARY)


def from_bqm(bqm: dimod.BinaryQuadraticModel, labels: Sequence[object]) -> QuadModel:
    """The arrays of a user BQM whose variables are the encoding's bit labels or indices ``0..n-1``."""
    import dimod

    n = len(labels)
    lookup = {lab: i for i, lab in enumerate(labels)}
    b = bqm.change_vartype(dimod.BINARY, inplace=False)
    order = []
    for v in b.variables:
        if v in lookup:
            order.append(lookup[v])
        elif isinstance(v, int | np.integer) and 0 <= int(v) < n:
            order.append(int(v))
        else:
            raise KeyError(v)
    vec = b.to_numpy_vectors(variable_order=list(b.variables))
    lin_arr, off = vec.linear_biases, vec.offset
    r, c, q = vec.quadratic.row_indices, vec.quadratic.col_indices, vec.quadratic.biases
    lin = np.zeros(n)
    quad = np.zeros((n, n))
    pos = np.array(order, dtype=int)
    lin[pos] = lin_arr
    ri, ci = pos[r], pos[c]
    lo, hi = np.minimum(ri, ci), np.maximum(ri, ci)
    np.add.at(quad, (lo, hi), q)
    return QuadModel(lin, quad, float(off))


def add_models(models: Sequence[tuple[float, QuadModel]]) -> QuadModel:
    """Weighted sum of quadratic models over the same bits."""
    w0, m0 = models[0]
    lin, quad, off = w0 * m0.lin, w0 * m0.quad, w0 * m0.offset
    for w, m in models[1:]:
        lin, quad, off = lin + w * m.lin, quad + w * m.quad, off + w * m.offset
    return QuadModel(lin, quad, float(off))


def encoding_weights(enc: Encoding, objective: QuadModel) -> np.ndarray:
    """Per penalized block: the smallest weight that keeps every ground state valid (see module doc)."""
    gain = objective.max_flip_gain()
    out = []
    for b in enc.penalty_blocks():
        g = float(gain[b.start:b.stop].max()) if b.n_bits else 0.0
        out.append(b.repair_flips() * max(g, 1e-9) * 1.0001)
    return np.array(out)


def model_span(model: QuadModel) -> float:
    """A scale of the model's coefficients: the sum of max flip gains over bits / 2 (~ its range)."""
    return float(max(model.max_flip_gain().sum() / 2.0, 1e-12))


@dataclass
class PenaltySchedule:
    """Multipliers on the calibrated weights, raised on violations and decaying when there are none."""

    encoding_factor: float = 1.0
    constraint_factors: list[float] = field(default_factory=list)
    failure_factor: float = 1.0
    raise_by: float = 2.0
    decay: float = 0.9
    target_share: float = 0.1
    history: list[dict[str, object]] = field(default_factory=list)

    def update_encoding(self, invalid_share: float) -> None:
        """After annealing: more than ``target_share`` invalid decoded samples -> raise the encoding factor."""
        if invalid_share > self.target_share:
            self.encoding_factor *= self.raise_by
        else:
            self.encoding_factor = max(1.0, self.encoding_factor * self.decay)

    def update_constraints(self, violated_share: Sequence[float]) -> None:
        """After the twin answered: per constraint, the share of the told model batch that violated it.

        Twin feedback is coarse (a batch may be one point), so these factors move gently: x1.5 when most of
        the batch violated, x0.85 otherwise, kept in [0.25, 64] so the objective is never drowned out."""
        while len(self.constraint_factors) < len(violated_share):
            self.constraint_factors.append(1.0)
        for k, share in enumerate(violated_share):
            self.constraint_factors[k] = self._twin_step(self.constraint_factors[k], share)

    def update_failures(self, failed_share: float) -> None:
        self.failure_factor = self._twin_step(self.failure_factor, failed_share)

    @staticmethod
    def _twin_step(factor: float, share: float) -> float:
        return min(64.0, factor * 1.5) if share > 0.5 else max(0.25, factor * 0.85)
