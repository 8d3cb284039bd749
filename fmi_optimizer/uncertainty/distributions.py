"""Distributions of uncertain (non-design) parameters, parsed from ``[uncertainty.parameters]``.

Each distribution maps a uniform number u in (0, 1) to a value through its inverse CDF
(``ppf``), so a quasi-random unit sample (Sobol, LHS) becomes a sample of the parameters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from fmi_optimizer.errors import StudyError

Number = float | int


class Distribution(Protocol):
    """What a sampler needs: the inverse CDF on an array of uniforms, and a one-line description."""

    def ppf(self, u: np.ndarray) -> np.ndarray: ...

    def describe(self) -> str: ...

    @property
    def nominal(self) -> float | int | bool | str: ...


@dataclass(frozen=True)
class Normal:
    mean: float
    std: float

    def ppf(self, u: np.ndarray) -> np.ndarray:
        from scipy import stats

        return np.asarray(stats.norm.ppf(u, loc=self.mean, scale=self.std), dtype=float)

    def describe(self) -> str:
        return f"normal(mean {self.mean:g}, std {self.std:g})"

    @property
    def nominal(self) -> float:
        return self.mean


@dataclass(frozen=True)
class TruncatedNormal:
    mean: float
    std: float
    lo: float
    hi: float

    def ppf(self, u: np.ndarray) -> np.ndarray:
        from scipy import stats

        a, b = (self.lo - self.mean) / self.std, (self.hi - self.mean) / self.std
        return np.asarray(stats.truncnorm.ppf(u, a, b, loc=self.mean, scale=self.std), dtype=float)

    def describe(self) -> str:
        return f"truncated normal(mean {self.mean:g}, std {self.std:g}, [{self.lo:g}, {self.hi:g}])"

    @property
    def nominal(self) -> float:
        return min(self.hi, max(self.lo, self.mean))


@dataclass(frozen=True)
class Uniform:
    lo: float
    hi: float

    def ppf(self, u: np.ndarray) -> np.ndarray:
        return self.lo + np.asarray(u, dtype=float) * (self.hi - self.lo)

    def describe(self) -> str:
        return f"uniform[{self.lo:g}, {self.hi:g}]"

    @property
    def nominal(self) -> float:
        return 0.5 * (self.lo + self.hi)


@dataclass(frozen=True)
class LogNormal:
    """ln(X) ~ normal(ln(median), sigma): ``median`` and the log-space ``sigma``."""

    median: float
    sigma: float

    def ppf(self, u: np.ndarray) -> np.ndarray:
        from scipy import stats

        return np.asarray(stats.lognorm.ppf(u, self.sigma, scale=self.median), dtype=float)

    def describe(self) -> str:
        return f"lognormal(median {self.median:g}, sigma {self.sigma:g})"

    @property
    def nominal(self) -> float:
        return self.median


@dataclass(frozen=True)
class Triangular:
    lo: float
    mode: float
    hi: float

    def ppf(self, u: np.ndarray) -> np.ndarray:
        from scipy import stats

        c = (self.mode - self.lo) / (self.hi - self.lo)
        return np.asarray(stats.triang.ppf(u, c, loc=self.lo, scale=self.hi - self.lo), dtype=float)

    def describe(self) -> str:
        return f"triangular({self.lo:g}, mode {self.mode:g}, {self.hi:g})"

    @property
    def nominal(self) -> float:
        return self.mode


@dataclass(frozen=True)
class Discrete:
    """Finitely many values with probabilities (equal when ``weights`` is not given)."""

    values: tuple[Any, ...]
    weights: tuple[float, ...]

    def ppf(self, u: np.ndarray) -> np.ndarray:
        cdf = np.cumsum(self.weights)
        cdf[-1] = 1.0
        idx = np.searchsorted(cdf, np.asarray(u, dtype=float), side="right")
        idx = np.minimum(idx, len(self.values) - 1)
        return np.asarray([self.values[i] for i in idx], dtype=object)

    def describe(self) -> str:
        return "discrete(" + ", ".join(f"{v!r}: {w:.3g}" for v,
                                       w in zip(self.values, self.weights, strict=True)) + ")"

    @property
    def nominal(self) -> Any:
        return self.values[int(np.argmax(self.weights))]


KINDS = {
    "normal": ("mean", "std"),
    "truncnormal": ("mean", "std", "min", "max"),
    "uniform": ("min", "max"),
    "lognormal": ("median", "sigma"),
    "triangular": ("min", "mode", "max"),
    "discrete": ("values", "weights"),
}


def parse_distribution(name: str, spec: Any, where: str) -> Distribution:
    """One ``name = { dist = "...", ... }`` entry; every error is one line naming the key and the remedy."""
    key = f"{where}: [uncertainty.parameters] {name}"
    if not isinstance(spec, Mapping):
        raise StudyError(f"{key} = {spec!r}: expected a table such as "
                         f"{{ dist = \"normal\", mean = 313.15, std = 3 }}")
    kind = spec.get("dist")
    if kind not in KINDS:
        raise StudyError(f"{key}: dist = {kind!r}; accepted: {', '.join(KINDS)}")
    accepted = set(KINDS[kind]) | {"dist"}
    unknown = sorted(set(spec) - accepted)
    if unknown:
        raise StudyError(f"{key}: unknown key {unknown[0]!r} for dist = {kind!r}; accepted: "
                         f"{', '.join(sorted(accepted))}")
    if kind == "discrete":
        return _discrete(spec, key)
    required = [k for k in KINDS[kind] if k not in spec]
    if required:
        raise StudyError(f"{key}: dist = {kind!r} needs {', '.join(KINDS[kind])}; missing {required[0]}")
    p = {k: _number(spec[k], f"{key}.{k}") for k in KINDS[kind]}
    positive = {"std", "sigma", "median"} & set(p)
    for k in sorted(positive):
        if p[k] <= 0:
            raise StudyError(f"{key}.{k} = {p[k]!r}: must be > 0")
    if "min" in p and "max" in p and p["min"] >= p["max"]:
        raise StudyError(f"{key}: min {p['min']:g} must be < max {p['max']:g}")
    if kind == "normal":
        return Normal(p["mean"], p["std"])
    if kind == "truncnormal":
        return TruncatedNormal(p["mean"], p["std"], p["min"], p["max"])
    if kind == "uniform":
        return Uniform(p["min"], p["max"])
    if kind == "lognormal":
        return LogNormal(p["median"], p["sigma"])
    if not p["min"] <= p["mode"] <= p["max"]:
        raise StudyError(f"{key}: mode {p['mode']:g} must lie in [min, max] = [{p['min']:g}, {p['max']:g}]")
    return Triangular(p["min"], p["mode"], p["max"])


def _number(v: Any, key: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise StudyError(f"{key} = {v!r}: expected a finite number")
    return float(v)


def _discrete(spec: Mapping[str, Any], key: str) -> Discrete:
    values = spec.get("values")
    if not isinstance(values, list) or not values:
        raise StudyError(f"{key}: dist = \"discrete\" needs values = [v1, v2, ...]")
    weights: Sequence[Any] = spec.get("weights", [1.0] * len(values))
    if not isinstance(weights, list | tuple) or len(weights) != len(values):
        raise StudyError(f"{key}.weights: expected a list of {len(values)} non-negative numbers (one per "
                         "value)")
    w = [_number(x, f"{key}.weights") for x in weights]
    if any(x < 0 for x in w) or sum(w) <= 0:
        raise StudyError(f"{key}.weights = {weights!r}: must be non-negative with a positive sum")
    total = sum(w)
    return Discrete(tuple(values), tuple(x / total for x in w))
