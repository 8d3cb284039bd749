"""The TensorFlow side of a study: the GPs, their fits, and batch proposals (Kriging believer).

Imported lazily by :mod:`fmio_bayes.method` at the first proposal, never at plugin import.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .acquisition import AcquisitionKind, build
from .ensemble import new_surrogate
from .maximize import Settings, maximize
from .surrogate import GPSurrogate, LengthscalePrior, MeanKind, NoiseMode
from .transform import Encoder


@dataclass
class Dataset:
    """What the surrogates are trained on. ``y`` is already scalarized/warped."""

    Z_ok: np.ndarray  # encoded successful points
    y: np.ndarray  # objective per successful point
    C: np.ndarray  # constraint values per successful point (feasible <= 0)
    Z_all: np.ndarray  # every told point
    success: np.ndarray  # bool per told point

    @property
    def feasible(self) -> np.ndarray:
        return np.all(self.C <= 0.0, axis=1) if self.C.shape[1] else np.ones(len(self.y), dtype=bool)

    def incumbent(self) -> int | None:
        """Index (into ``Z_ok``/``y``) of the best feasible point, ``None`` while nothing is feasible."""
        feas = self.feasible
        return int(np.argmin(np.where(feas, self.y, np.inf))) if np.any(feas) else None


def model_seed(*keys: int) -> int:
    """A seed in [0, 2^31) mixed from ``keys`` (study seed, engine, model): distinct for distinct keys
    but for chance collisions, and an int32 as TensorFlow's stateless RNG wants it."""
    return int(np.random.SeedSequence([k % 2**64 for k in keys]).generate_state(1)[0] >> 1)


@dataclass(frozen=True)
class Proposal:
    points: list[np.ndarray]
    values: list[float]
    fit: dict[str, Any]
    fit_seconds: float
    acquisition_seconds: float


class Engine:
    """One objective GP, one GP per constraint, and a success/failure GP once a run fails."""

    def __init__(self, enc: Encoder, n_constraints: int, noise: NoiseMode, kind: AcquisitionKind,
                 beta: float, settings: Settings, lengthscale_prior: LengthscalePrior = "two_sided",
                 mean: MeanKind = "constant", surrogate: str = "gp", seed: int = 0):
        self.enc = enc
        self.noise = noise
        self.kind = kind
        self.beta = beta
        self.settings = settings
        self.objective = new_surrogate(surrogate, enc.width, noise, model_seed(seed, 0),
                                       lengthscale_prior=lengthscale_prior, mean=mean)
        self.constraints = [new_surrogate(surrogate, enc.width, noise, model_seed(seed, j + 1),
                                          lengthscale_prior=lengthscale_prior, mean=mean) for j in range(n_constraints)]
        self.failure: GPSurrogate | None = None
        self._bind: Callable[..., Any] | None = None
        self.fits = 0
        self.last_loo: dict[str, Any] = {}

    @property
    def models(self) -> list[GPSurrogate]:
        return [self.objective, *self.constraints, *([self.failure] if self.failure is not None else [])]

    def fit(self, data: Dataset) -> dict[str, Any]:
        """Train every GP on ``data``; a fresh (default) start joins the warm one every 5th fit."""
        fresh = self.fits % 5 == 0 or len(data.y) < 15
        self.fits += 1
        self.objective.set_data(data.Z_ok, data.y)
        self.objective.fit(fresh)
        for j, c in enumerate(self.constraints):
            c.set_data(data.Z_ok, data.C[:, j])
            c.fit(fresh)
        if not np.all(data.success):
            if self.failure is None:
                # labels +1/-1; the noise floor stops a step between the labels from being fitted
                # with a vanishing lengthscale, which would know nothing between the data points
                self.failure = GPSurrogate(self.enc.width, "learned", standardize=False, noise_floor=0.1)
                self._bind = None  # the acquisition gains a term: compile it once more
            self.failure.set_data(data.Z_all, np.where(data.success, 1.0, -1.0))
            self.failure.fit(fresh)
        if self._bind is None:
            self._bind = build(self.kind, self.objective, self.constraints, self.failure)
        loo = self.objective.loo_standardized_errors()
        mean, sd = self.objective.loo()
        self.last_loo = {"kind": self.objective.loo_kind,
                         "observed": [float(v) for v in data.y], "predicted": [float(v) for v in mean],
                         "predicted_sd": [float(v) for v in sd], "standardized_error": [float(v) for v in loo]}
        return {
            "loo_mean": float(np.mean(loo)), "loo_std": float(np.std(loo)),
            "loo_fraction_above_3": float(np.mean(np.abs(loo) > 3.0)),
            "noise_variance": self.objective.noise_variance,
            "signal_variance": self.objective.signal_variance,
        }

    def propose(self, q: int, data: Dataset, pending: np.ndarray, frozen: dict[int, float],
                is_taken: Callable[[np.ndarray], bool], rng: np.random.Generator) -> Proposal:
        """Fit, then pick up to ``q`` points one by one, each added as a believed observation."""
        t0 = time.process_time()
        fit = self.fit(data)
        t1 = time.process_time()
        best, w_obj = self._incumbent(data)
        tau = np.array([-c.y_mean / c.y_std for c in self.constraints])
        anchors = self._anchors(data)
        if len(pending):
            for m in self.models:
                m.fantasize(pending)
        assert self._bind is not None
        picks: list[np.ndarray] = []
        values: list[float] = []
        try:
            for _ in range(q):
                f = self._bind(best, self.beta, tau, w_obj)

                def taken(z: np.ndarray) -> bool:
                    return is_taken(z) or any(np.max(np.abs(z - p)) < 1e-9 for p in picks)

                z, v = maximize(f, self.enc, rng, anchors, frozen, self.settings, taken, self.objective.lengthscales)
                if z is None:
                    break
                picks.append(z)
                values.append(v)
                if len(picks) < q:
                    for m in self.models:
                        m.fantasize(z[None, :])
        finally:
            for m in self.models:
                m.restore()
        return Proposal(picks, values, fit, t1 - t0, time.process_time() - t1)

    def _incumbent(self, data: Dataset) -> tuple[float, float]:
        """Best feasible value in the objective GP's standardized units (posterior mean if noisy);
        ``w_obj = 0`` when nothing is feasible yet."""
        feas = data.feasible
        if not np.any(feas):
            return 0.0, 0.0
        if self.noise == "learned":
            mean, _ = self.objective.predict_std(data.Z_ok[feas])
            return float(np.min(mean)), 1.0
        return float(np.min((data.y[feas] - self.objective.y_mean) / self.objective.y_std)), 1.0

    @staticmethod
    def _anchors(data: Dataset, k: int = 1) -> np.ndarray:
        feas = data.feasible
        Z, y = (data.Z_ok[feas], data.y[feas]) if np.any(feas) else (data.Z_ok, data.y)
        return Z[np.argsort(y)[:k]]
