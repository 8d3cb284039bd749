"""The surrogates of one study and the annealer's energy built from them.

One objective surrogate (horseshoe or FM), one horseshoe per constraint that was ever violated (of ``c``
itself, a Lagrangian term, or of the violation ``max(0, c)``, a hinge) and one failure surrogate (1 = failed,
0 = ran) once a run failed. A Thompson draw of each is summed with penalty weights scaled to the objective's
span (:mod:`.bqm`) plus the encoding's validity penalties. The constraint surrogates' posterior means also
decide which proposals are *predicted feasible*.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .book import TrainingData
from .bqm import PenaltySchedule, add_models, encoding_weights, model_span
from .encoding import Encoding
from .options import QioOptions
from .surrogate import FMSurrogate, HorseshoeSurrogate, QuadModel, Surrogate
from .warp import ObjectiveWarp, warp_constraint


def with_encoding_penalties(enc: Encoding, model: QuadModel, factor: float) -> tuple[QuadModel, np.ndarray]:
    """The annealer's energy for ``model``: it plus the encoding's validity penalties, each block weighted by its
    calibrated weight (:func:`encoding_weights`) times ``factor``; also those weights."""
    enc_w = encoding_weights(enc, model) * factor
    lin, quad, off = enc.penalty_terms(enc_w)
    return add_models([(1.0, model), (1.0, QuadModel(lin, quad, off))]), enc_w


@dataclass(frozen=True)
class Draw:
    """One Thompson draw: the annealer energies (one per constraint weight of the ladder), and the objective
    and constraint draws alone (to pick among the decoded samples)."""

    models: list[QuadModel]
    objective: QuadModel
    constraints: dict[int, QuadModel]
    weights: dict[str, Any]


class SurrogateSet:
    """Objective, constraint and failure surrogates; their fit facts, draws and feasibility filter."""

    def __init__(self, enc: Encoding, options: QioOptions, rng: np.random.Generator, constraint_names: tuple[str, ...]):
        self.enc, self.options, self.rng = enc, options, rng
        self.constraint_names = constraint_names
        self.objective: Surrogate | None = None
        self.constraints: dict[int, HorseshoeSurrogate] = {}
        self.failure: HorseshoeSurrogate | None = None
        self.con_means: dict[int, QuadModel] = {}
        self.con_limits: dict[int, float] = {}
        self.mean_model: QuadModel | None = None
        self.val_pairs: list[tuple[float, float]] = []  # (prediction before the point was told, twin value)
        self.warp = ObjectiveWarp()  # the surrogate models warped values (see .warp); ranking is unchanged

    def _horseshoe(self) -> HorseshoeSurrogate:
        o = self.options
        return HorseshoeSurrogate(self.enc.n_bits, self.rng, o.gibbs_burnin, o.gibbs_steps)

    def _new_objective(self) -> Surrogate:
        o = self.options
        if o.surrogate == "fm":
            return FMSurrogate(self.enc.n_bits, self.rng, o.fm_factors, o.fm_epochs)
        return self._horseshoe()

    def note_outcome(self, bits: np.ndarray, objective: float) -> None:
        """Remember the current mean model's prediction for a newly told value (validation error)."""
        if self.mean_model is not None:
            self.val_pairs.append((float(self.mean_model.energy(bits)[0]), float(self.warp(np.array([objective]))[0])))

    def fit(self, data: TrainingData) -> dict[str, Any]:
        """Fit every surrogate on ``data``; return the fit facts for the report."""
        bits, cons = data.bits, warp_constraint(data.cons, self.options.warp)
        self.warp = ObjectiveWarp.fitted(data.y, self.options.warp)
        y = self.warp(data.y)
        if self.objective is None:
            self.objective = self._new_objective()
        self.objective.fit(bits, y)
        lagrangian = self.options.constraint_penalty == "lagrangian"
        for j in range(cons.shape[1]):
            if cons[:, j].max() > 0 or (lagrangian and j in self.constraints):  # violated at least once
                sur = self.constraints.setdefault(j, self._horseshoe())
                # hinge: learn the violation max(0, c); lagrangian: learn c itself (signed distance to the limit)
                sur.fit(bits, cons[:, j] if lagrangian else np.maximum(cons[:, j], 0.0))
        self.con_means = {j: sur.mean_model() for j, sur in self.constraints.items()}
        # a prediction above this calls a design infeasible (hinge: a tenth of the typical observed violation)
        self.con_limits = {j: 0.0 if lagrangian else 0.1 * float(cons[cons[:, j] > 0, j].mean())
                           for j in self.constraints}
        if len(data.failed_bits):
            allbits = np.vstack([bits, data.failed_bits])
            target = np.r_[np.zeros(len(bits)), np.ones(len(data.failed_bits))]
            if self.failure is None:
                self.failure = self._horseshoe()
            self.failure.fit(allbits, target)
        self.mean_model = self.objective.mean_model()  # type: ignore[attr-defined]
        train = float(np.sqrt(np.mean((self.mean_model.energy(bits) - y) ** 2)))
        val = None
        if self.val_pairs:
            pv = np.array(self.val_pairs[-20:])
            val = float(np.sqrt(np.mean((pv[:, 0] - pv[:, 1]) ** 2)))
        return {"n_train": len(y), "n_failed": len(data.failed_bits), "train_rmse": train,
                "validation_rmse_last20": val, "objective_sd": float(np.std(y)),
                "warp": {"low": self.warp.low, "scale": self.warp.scale}}

    def draw(self, schedule: PenaltySchedule, center: np.ndarray | None = None, pull: float = 0.0,
             scales: Sequence[float] = (1.0,)) -> Draw:
        """One Thompson draw of every surrogate and the annealer energies built from it, one per constraint
        weight in ``scales`` x the calibrated weight (a ladder of Lagrange multipliers: the annealer's ground
        state moves from the objective's optimum towards deep feasibility as the weight grows)."""
        assert self.objective is not None, "fit() first"
        obj = self.objective.sample_model()
        span = model_span(obj)
        weights: dict[str, Any] = {}
        cons: dict[int, QuadModel] = {}
        con_parts: list[tuple[float, QuadModel]] = []
        for j, sur in self.constraints.items():
            factor = schedule.constraint_factors[j] if j < len(schedule.constraint_factors) else 1.0
            cons[j] = sur.sample_model()
            w = factor * span / model_span(cons[j])
            con_parts.append((w, cons[j]))
            weights[self.constraint_names[j]] = w
        fixed: list[tuple[float, QuadModel]] = [(1.0, obj)]
        if self.failure is not None:
            fm = self.failure.sample_model()
            w = schedule.failure_factor * span / model_span(fm)
            fixed.append((w, fm))
            weights["failure"] = w
        if center is not None and pull > 0:  # trust region: lambda * Hamming distance to the centre (linear)
            lam = pull * span / max(self.enc.n_bits, 1)
            c = np.asarray(center, dtype=float)
            fixed.append((lam, QuadModel(1.0 - 2.0 * c, np.zeros((len(c), len(c))), float(c.sum()))))
            weights["trust_region_pull"] = lam
        models = []
        for scale in scales if con_parts else (1.0,):
            combined = add_models(fixed + [(scale * w, m) for w, m in con_parts])
            energy, enc_w = with_encoding_penalties(self.enc, combined, schedule.encoding_factor)
            if len(enc_w):
                weights["encoding_max"] = max(weights.get("encoding_max", 0.0), float(enc_w.max()))
            models.append(energy)
        return Draw(models, obj, cons, weights)

    def thompson_pick(self, d: Draw, rows: np.ndarray) -> int:
        """Constrained Thompson sampling: the row with the lowest objective draw among those every
        constraint draw calls feasible (all rows without constraint surrogates); if none, the row with the
        smallest worst violation (each constraint draw in units of its span)."""
        viol = np.zeros(len(rows))
        for j, cm in d.constraints.items():
            viol = np.maximum(viol, (cm.energy(rows) - self.con_limits.get(j, 0.0)) / model_span(cm))
        ok = viol <= 0
        if ok.any():
            return int(np.argmin(np.where(ok, d.objective.energy(rows), np.inf)))
        return int(np.argmin(viol))

    def predicted_feasible(self, rows: np.ndarray) -> np.ndarray:
        """Which rows the constraint surrogates' posterior means call feasible (all True without a filter)."""
        ok = np.ones(len(rows), dtype=bool)
        if not self.options.feasibility_filter:
            return ok
        for j, model in self.con_means.items():
            ok &= model.energy(rows) <= self.con_limits[j]
        return ok

    def mean_energy(self, rows: np.ndarray) -> np.ndarray:
        """The posterior-mean objective of ``rows`` (zeros before the first fit)."""
        return self.mean_model.energy(rows) if self.mean_model is not None else np.zeros(len(rows))
