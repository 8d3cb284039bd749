"""The ``[uncertainty]`` section of a study file, typed (parsed once, errors name the key)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fmi_optimizer.errors import StudyError
from fmi_optimizer.uncertainty.chance import BOUNDS, minimum_samples
from fmi_optimizer.uncertainty.distributions import Distribution, parse_distribution
from fmi_optimizer.uncertainty.robust import SCORES, ScoreRule
from fmi_optimizer.uncertainty.sampling import SAMPLERS

ACCEPTED = {"parameters", "samples", "max_samples", "grow_within", "sampler", "seed", "score", "k", "level",
            "confidence", "bound", "nominal"}


@dataclass(frozen=True)
class UncertaintySpec:
    """Distributions of non-design parameters and how a candidate is judged over them."""

    distributions: Mapping[str, Distribution] = field(default_factory=dict)
    samples: int = 64
    max_samples: int | None = None
    grow_within: float = 0.02  # indifference zone of the sequential growth, relative to the incumbent's score
    sampler: str = "sobol"
    seed: int | None = None
    score: ScoreRule = ScoreRule()
    confidence: float = 0.95
    bound: str = "clopper-pearson"
    nominal: bool = True

    @property
    def pool_size(self) -> int:
        """Scenarios drawn once: the base sample plus the growth reserve."""
        return max(self.samples, self.max_samples or 0)

    def runs_per_candidate(self) -> int:
        return self.samples + (1 if self.nominal else 0)

    def describe(self) -> dict[str, Any]:
        return {"parameters": {k: d.describe() for k, d in self.distributions.items()},
                "samples": self.samples,
                "max_samples": self.max_samples, "grow_within": self.grow_within, "sampler": self.sampler,
                "seed": self.seed, "score": self.score.describe(), "confidence": self.confidence,
                "bound": self.bound, "nominal": self.nominal}


def parse_uncertainty(raw: Mapping[str, Any], where: str, design: set[str]) -> UncertaintySpec | None:
    """``[uncertainty]`` -> spec (None when the section is absent)."""
    if not raw:
        return None
    key = f"{where}: [uncertainty]"
    unknown = sorted(set(raw) - ACCEPTED)
    if unknown:
        raise StudyError(f"{key} {unknown[0]}: unknown key; accepted: {', '.join(sorted(ACCEPTED))}")
    params = raw.get("parameters", {})
    if not isinstance(params, Mapping) or not params:
        raise StudyError(f"{key} parameters: give at least one uncertain parameter, e.g. "
                         "[uncertainty.parameters] T_ambient = { dist = \"normal\", mean = 313.15, std = 3 }")
    clash = sorted(set(params) & design)
    if clash:
        raise StudyError(f"{key} parameters: {clash[0]!r} is also a design parameter in [parameters]; a "
                         "parameter is either optimized or uncertain")
    dists = {name: parse_distribution(name, spec, where) for name, spec in params.items()}
    samples = _int(raw, "samples", 64, 2, key)
    max_samples = raw.get("max_samples")
    if max_samples is not None:
        max_samples = _int(raw, "max_samples", 0, samples, key)
    score_kind = raw.get("score", "mean")
    if score_kind not in SCORES:
        raise StudyError(f"{key} score = {score_kind!r}; accepted: {', '.join(SCORES)}")
    rule = ScoreRule(score_kind, _num(raw, "k", 2.0, key), _num(raw, "level", 0.9, key))
    sampler = raw.get("sampler", "sobol")
    if sampler not in SAMPLERS:
        raise StudyError(f"{key} sampler = {sampler!r}; accepted: {', '.join(SAMPLERS)}")
    bound = raw.get("bound", "clopper-pearson")
    if bound not in BOUNDS:
        raise StudyError(f"{key} bound = {bound!r}; accepted: {', '.join(BOUNDS)}")
    confidence = _num(raw, "confidence", 0.95, key)
    if not 0.5 <= confidence < 1.0:
        raise StudyError(f"{key} confidence = {confidence!r}: expected a number in [0.5, 1), e.g. 0.95")
    grow = _num(raw, "grow_within", 0.02, key)
    if grow < 0:
        raise StudyError(f"{key} grow_within = {grow!r}: expected a relative gap >= 0, e.g. 0.02")
    seed = raw.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise StudyError(f"{key} seed = {seed!r}: expected an integer >= 0")
    nominal = raw.get("nominal", True)
    if not isinstance(nominal, bool):
        raise StudyError(f"{key} nominal = {nominal!r}: expected true or false")
    return UncertaintySpec(dists, samples, max_samples, grow, sampler, seed, rule, confidence, bound, nominal)


def check_chance_samples(spec: UncertaintySpec, kpi: str, target: float, where: str) -> None:
    """Fail before any simulation when the sample is too small to ever prove a chance constraint."""
    need = minimum_samples(target, spec.confidence, spec.bound)
    if spec.samples < need:
        raise StudyError(f"{where}: [constraints] {kpi}: proving P >= {target:g} at confidence "
                         f"{spec.confidence:g} ({spec.bound}) needs [uncertainty] samples >= {need}, got "
                         f"{spec.samples}")


def _int(raw: Mapping[str, Any], k: str, default: int, minimum: int, key: str) -> int:
    v = raw.get(k, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise StudyError(f"{key} {k} = {v!r}: expected an integer >= {minimum}")
    return int(v)


def _num(raw: Mapping[str, Any], k: str, default: float, key: str) -> float:
    v = raw.get(k, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise StudyError(f"{key} {k} = {v!r}: expected a finite number")
    return float(v)
