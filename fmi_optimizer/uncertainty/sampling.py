"""The shared sample of uncertain parameters: drawn once per study, reused for every candidate.

Common random numbers: scenario ``i`` has the same parameter values (and, for stochastic
twins, the same seed) for every candidate, so differences between candidates are not drowned
in sampling noise. Scrambled Sobol points are the default; prefixes of the sequence are
themselves good samples, which is what adaptive growth (more scenarios for close candidates) uses.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from fmi_optimizer.errors import StudyError
from fmi_optimizer.uncertainty.distributions import Distribution

SAMPLERS = ("sobol", "lhs", "random")
SEED_MODULUS = 2_000_000_000


@dataclass(frozen=True)
class Sample:
    """``scenarios[i]``: parameter values of scenario i; ``seeds[i]``: its twin seed (or None)."""

    scenarios: tuple[dict[str, Any], ...]
    seeds: tuple[int | None, ...]

    def __len__(self) -> int:
        return len(self.scenarios)


def unit_sample(n: int, dims: int, sampler: str, seed: int) -> np.ndarray:
    """``n`` points in the open unit cube (0, 1)^dims."""
    from scipy.stats import qmc

    if sampler not in SAMPLERS:
        raise StudyError(f"[uncertainty] sampler = {sampler!r}; accepted: {', '.join(SAMPLERS)}")
    if dims == 0:
        return np.zeros((n, 0))
    if sampler == "sobol":
        engine: qmc.QMCEngine = qmc.Sobol(d=dims, scramble=True, seed=seed)
        with warnings.catch_warnings():  # non-power-of-2 prefixes lose some balance; documented, not an error
            warnings.simplefilter("ignore", UserWarning)
            u = engine.random(n)
    elif sampler == "lhs":
        u = qmc.LatinHypercube(d=dims, seed=seed).random(n)
    else:
        u = np.random.default_rng(seed).random((n, dims))
    eps = np.finfo(float).eps
    return np.clip(u, eps, 1.0 - eps)  # ppf(0) of a normal is -inf


def draw(distributions: Mapping[str, Distribution], n: int, sampler: str = "sobol", seed: int = 0,
         seeded: bool = False) -> Sample:
    """Draw the study's sample: ``n`` scenarios of every distribution, plus per-scenario seeds when
    the twin is stochastic (``seeded``)."""
    names = list(distributions)
    u = unit_sample(n, len(names), sampler, seed)
    cols = {name: distributions[name].ppf(u[:, j]) for j, name in enumerate(names)}
    scenarios = tuple({name: _plain(cols[name][i]) for name in names} for i in range(n))
    if seeded:
        rng = np.random.default_rng([seed, 0x5EED])
        seeds: tuple[int | None, ...] = tuple(int(s) for s in rng.integers(1, SEED_MODULUS, size=n))
    else:
        seeds = (None,) * n
    return Sample(scenarios, seeds)


def _plain(v: Any) -> Any:
    """numpy scalars -> Python scalars (for JSON, cache keys and the FMU)."""
    return v.item() if isinstance(v, np.generic) else v
