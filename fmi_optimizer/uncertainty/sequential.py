"""Sequential sample growth: which candidates get more scenarios, and when they stop.

A candidate starts with the base sample (``samples`` scenarios). At each stage the number of scenarios
doubles (``samples``, ``2 samples``, ... up to ``max_samples``; doubling keeps a scrambled Sobol prefix a
balanced point set). After every stage the candidate is compared with the **incumbent** (the best candidate
whose constraints are proven so far) on their **common scenarios** — the same scenario indices, i.e.
common random numbers — by a two-sided confidence interval ``[lo, hi]`` of ``score(candidate) -
score(incumbent)``:

* ``mean`` score: the paired-t interval of the per-scenario differences (the screen of Nelson et al.
  2001 with paired variances, valid under CRN; the same test as ``screen_keep`` in the ranking plugin,
  re-derived here because the core must not depend on an optional plugin);
* other scores (``mean_std``, ``quantile``, ``cvar``): a paired bootstrap (scenario indices resampled
  jointly for both designs, fixed seed, percentile interval).

Decision after a stage (first rule that applies):

1. ``failed`` / ``infeasible``: a run failed, or a constraint is violated on the raw sample frequency
   (or a plain constraint in a sampled scenario): more scenarios are spent only on candidates that can win.
2. ``worse``: ``lo > 0``, the candidate is separated from the incumbent (worse with confidence).
3. ``better``: ``hi < 0`` and every constraint proven: separated (better with confidence).
4. ``equivalent``: the whole interval lies within ``± grow_within * |incumbent score|`` and every
   constraint proven: the two are practically equal (indifference zone), more runs cannot matter.
5. ``proven``: no incumbent yet and every constraint proven: nothing to compare with.
6. ``cap``: ``max_samples`` reached; ``budget``: the remaining runs cannot pay the next stage.
7. otherwise ``grow``: statistically indistinguishable from the incumbent (or better but not yet proven
   feasible): run the next stage. If the incumbent has fewer scenarios than the new stage, it gets them
   too, so the comparison really uses more common scenarios.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fmi_optimizer.uncertainty.robust import ScoreRule

BOOTSTRAP = 400  # resamples for non-mean scores: enough for a 95 % percentile interval's decision


def stages(samples: int, cap: int) -> list[int]:
    """Scenario counts of the successive stages: samples, 2 samples, ... capped at ``cap`` (inclusive)."""
    out = [samples]
    while out[-1] < cap:
        out.append(min(2 * out[-1], cap))
    return out


def difference_interval(rule: ScoreRule, cand: Sequence[float], inc: Sequence[float], confidence: float,
                        seed: int = 0) -> tuple[float, float]:
    """Two-sided ``confidence`` interval of ``score(cand) - score(inc)`` from paired (same-scenario)
    values."""
    from scipy import stats

    a, b = np.asarray(cand, dtype=float), np.asarray(inc, dtype=float)
    if a.shape != b.shape or a.size < 2:
        raise ValueError("paired comparison needs two equally long samples of at least 2 scenarios")
    alpha = 1.0 - confidence
    if rule.kind == "mean":
        d = a - b
        half = float(stats.t.ppf(1.0 - alpha / 2.0, d.size - 1)) * float(d.std(ddof=1)) / math.sqrt(d.size)
        return float(d.mean()) - half, float(d.mean()) + half
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(BOOTSTRAP, a.size))
    diffs = np.array([rule.score(a[i]) - rule.score(b[i]) for i in idx])
    lo, hi = np.quantile(diffs, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


@dataclass(frozen=True)
class Step:
    """The decision after one stage: ``action`` is ``grow`` or the reason growth stopped."""

    action: str
    interval: tuple[float, float] | None = None


def decide(rule: ScoreRule, cand: Sequence[float], inc: Sequence[float] | None, inc_score: float | None,
           raw_feasible: bool, proven: bool, within: float, confidence: float, seed: int = 0) -> Step:
    """Rules 1-5 and 7 of the module docstring (``cap``/``budget`` are the caller's: they depend on runs).

    ``cand``/``inc`` are the per-scenario objective values on the COMMON scenarios (same indices, same
    order); ``inc`` is None when there is no incumbent.
    """
    if not raw_feasible:
        return Step("infeasible")
    if inc is None or inc_score is None:
        return Step("proven") if proven else Step("grow")
    lo, hi = difference_interval(rule, cand, inc, confidence, seed)
    if lo > 0:
        return Step("worse", (lo, hi))
    if proven and hi < 0:
        return Step("better", (lo, hi))
    zone = within * max(abs(inc_score), 1e-12)
    if proven and -zone <= lo and hi <= zone:
        return Step("equivalent", (lo, hi))
    return Step("grow", (lo, hi))
