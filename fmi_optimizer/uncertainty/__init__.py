"""Optimization under uncertainty: distributions, the shared sample, robust scores, chance constraints.

See docs/uncertainty.md. The study loop uses :class:`~.layer.RobustLayer`; everything else is pure
functions over numbers, usable (and tested) on their own.
"""

from fmi_optimizer.uncertainty.chance import ChanceResult, clopper_pearson, judge, wilson
from fmi_optimizer.uncertainty.distributions import parse_distribution
from fmi_optimizer.uncertainty.robust import ScoreRule, cvar
from fmi_optimizer.uncertainty.sampling import Sample, draw
from fmi_optimizer.uncertainty.spec import UncertaintySpec, parse_uncertainty

__all__ = ["ChanceResult", "Sample", "ScoreRule", "UncertaintySpec", "clopper_pearson", "cvar", "draw",
           "judge",
           "parse_distribution", "parse_uncertainty", "wilson"]
