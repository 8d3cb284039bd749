"""Options of the ``bayes`` method (validated before any work starts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class BayesOptions:
    """See docs/methods/bayes.md for what each option does."""

    n_initial: int | None = None  # initial design size; default max(5, d + 1)
    initial_design: Literal["sobol", "lhs", "random"] = "sobol"
    acquisition: Literal["logei", "ucb", "pi"] = "logei"
    ucb_beta: float = 2.0
    noise: Literal["auto", "fixed", "learned"] = "auto"  # auto: learned when the problem is noisy
    output_warping: Literal["none", "log", "rank"] = "none"
    lengthscale_prior: Literal["two_sided", "dimension_scaled", "unit"] = "two_sided"
    mean: Literal["constant", "zero"] = "constant"  # GP prior mean: learned constant, or zero (= data mean)
    n_raw_samples: int = 2048
    n_restarts: int = 10
    screening: bool = False  # above 15 dimensions, freeze dimensions with negligible ARD relevance
    screening_threshold: float = 0.05
    stall_patience: int | None = None  # evaluations without improvement; default max(10, 3*d)
    surrogate: Literal["gp", "ensemble"] = "gp"  # objective/constraint model: GPflow GP or deep ensemble

    def __post_init__(self) -> None:
        if self.n_initial is not None and self.n_initial < 1:
            raise ValueError(f"n_initial must be >= 1, got {self.n_initial}")
        if self.ucb_beta <= 0:
            raise ValueError(f"ucb_beta must be > 0, got {self.ucb_beta}")
        if self.n_raw_samples < 16 or self.n_restarts < 1:
            raise ValueError("n_raw_samples must be >= 16 and n_restarts >= 1")
        if not 0.0 < self.screening_threshold < 1.0:
            raise ValueError(f"screening_threshold must be in (0, 1), got {self.screening_threshold}")
        if self.stall_patience is not None and self.stall_patience < 1:
            raise ValueError(f"stall_patience must be >= 1, got {self.stall_patience}")
