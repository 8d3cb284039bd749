"""What ``qio`` reports: one record per model iteration (fit, penalties, infeasible samples, duplicates,
seconds), what the twin said about each model batch, and the running counts and timings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fmi_optimizer.records import Evaluation

from .bqm import PenaltySchedule


@dataclass
class Step:
    """The facts of one model iteration, gathered while it runs."""

    fit_info: dict[str, Any]
    fit_seconds: float = 0.0
    anneal_seconds: float = 0.0
    invalid_share: float = 0.0
    duplicates: int = 0
    draws_without_new: int = 0
    weights: dict[str, Any] = field(default_factory=dict)
    n_model: int = 0
    fills: list[str] = field(default_factory=list)  # tags of the proposals that did not come from a draw


class IterationLog:
    """Per-iteration records, twin outcomes of model batches, duplicate-rule counts and timing totals."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.batch_outcomes: list[dict[str, Any]] = []
        self.counts = {"annealer_duplicates": 0, "steps_without_new_sample": 0, "next_best_fills": 0,
                       "local_moves": 0, "random_fills": 0, "neighbour_picks": 0,
                       "descent_picks": 0}
        self.fit_seconds = 0.0
        self.anneal_seconds = 0.0
        self.model_proposals = 0
        self.twin_seconds_since = 0.0

    def record(self, step: Step, schedule: PenaltySchedule) -> None:
        self.counts["annealer_duplicates"] += step.duplicates
        self.counts["steps_without_new_sample"] += step.draws_without_new
        n_prop = step.n_model + len(step.fills)
        self.fit_seconds += step.fit_seconds
        self.anneal_seconds += step.anneal_seconds
        self.model_proposals += n_prop
        self.records.append({
            "iteration": len(self.records) + 1, **step.fit_info,
            "penalty_weights": step.weights, "encoding_factor": schedule.encoding_factor,
            "constraint_factors": list(schedule.constraint_factors), "failure_factor": schedule.failure_factor,
            "infeasible_sample_share": step.invalid_share, "duplicate_samples": step.duplicates,
            "draws_without_new": step.draws_without_new, "fills": step.fills, "fit_seconds": step.fit_seconds,
            "anneal_seconds": step.anneal_seconds,
            "seconds_per_proposed_point": (step.fit_seconds + step.anneal_seconds) / max(n_prop, 1),
            "twin_seconds_since_last": self.twin_seconds_since,
        })
        self.twin_seconds_since = 0.0

    def record_direct(self, proposed: int, invalid_share: float, anneal_seconds: float,
                      encoding_weight_max: float | None) -> None:
        self.records.append({"iteration": len(self.records) + 1, "mode": "direct", "proposed": proposed,
                             "infeasible_sample_share": invalid_share, "anneal_seconds": anneal_seconds,
                             "encoding_weight_max": encoding_weight_max})

    def record_batch(self, batch: Sequence[Evaluation], constraint_names: Sequence[str],
                     failed_share: float, shares: Sequence[float]) -> None:
        """What the twin said about one told model batch."""
        self.batch_outcomes.append({
            "told": len(batch), "failed_share": failed_share,
            "infeasible_share": sum(1 for e in batch if not e.feasible) / len(batch),
            "violated_share_by_constraint": dict(zip(constraint_names, shares, strict=False))})

    def timing(self, history: Sequence[Evaluation]) -> dict[str, Any]:
        return {"fit_seconds": self.fit_seconds, "anneal_seconds": self.anneal_seconds,
                "model_proposals": self.model_proposals,
                "seconds_per_proposed_point": (self.fit_seconds + self.anneal_seconds) / max(self.model_proposals, 1),
                "twin_seconds": float(sum(e.wall_seconds for e in history))}
