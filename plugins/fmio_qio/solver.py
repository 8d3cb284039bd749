"""Run the annealer (dwave-samplers' simulated annealing, what dwave-neal re-exports) on a BQM, optionally
followed by tabu search or steepest descent from the annealer's samples."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import dimod


@dataclass(frozen=True)
class AnnealSettings:
    """The solver's exposed settings (``beta_range`` None = the sampler's default from the BQM's biases)."""

    num_reads: int = 10
    num_sweeps: int = 500
    beta_range: tuple[float, float] | None = None
    beta_schedule_type: str = "geometric"
    postprocess: str = "none"  # handled here: "steepest", "tabu"; "descent" is applied in method.py
    tabu_timeout_ms: int = 20


@dataclass(frozen=True)
class Samples:
    """Annealer output as arrays: bit rows (columns in variable order 0..n-1) sorted by energy."""

    bits: np.ndarray
    energies: np.ndarray
    seconds: float


def anneal(bqm: dimod.BinaryQuadraticModel, settings: AnnealSettings, seed: int,
           beta_range: tuple[float, float] | None = None) -> Samples:
    """Sample ``bqm`` (variables ``0..n-1``) and return the samples sorted by energy (lowest first).

    ``beta_range`` from the settings wins; else the one given (see :func:`default_beta_range`); else the
    sampler's own default."""
    from dwave.samplers import SimulatedAnnealingSampler, SteepestDescentSolver, TabuSampler

    t0 = time.perf_counter()
    kwargs: dict[str, Any] = {"num_reads": settings.num_reads, "num_sweeps": settings.num_sweeps,
                                 "beta_schedule_type": settings.beta_schedule_type, "seed": seed}
    chosen = settings.beta_range if settings.beta_range is not None else beta_range
    if chosen is not None:
        kwargs["beta_range"] = tuple(chosen)
    ss = SimulatedAnnealingSampler().sample(bqm, **kwargs)
    if settings.postprocess == "steepest":
        ss = SteepestDescentSolver().sample(bqm, initial_states=(ss.record.sample, ss.variables))
    elif settings.postprocess == "tabu":
        ss = TabuSampler().sample(bqm, initial_states=ss,  # type: ignore[arg-type]
                                  num_reads=settings.num_reads, timeout=settings.tabu_timeout_ms, seed=seed)
    seconds = time.perf_counter() - t0
    return _as_arrays(ss, bqm.num_variables, seconds)


def default_beta_range(lin: np.ndarray, quad: np.ndarray) -> tuple[float, float]:
    """dwave-samplers' default for the binary model ``x lin + x quad x`` (hot: every spin flips with
    probability >= 1/2; cold: 1 % excitation rate), computed from the arrays in its Ising form instead of the
    sampler's per-coupling Python loop (~30 ms at 60 dense bits)."""
    q = np.triu(quad, 1) + np.tril(quad, -1).T
    absj = np.abs(q) / 4.0
    absh = np.abs(lin / 2.0 + (q.sum(axis=1) + q.sum(axis=0)) / 4.0)
    total = absh + absj.sum(axis=1) + absj.sum(axis=0)
    if total.max(initial=0.0) == 0:
        return (0.1, 1.0)
    tiny = 1e-12 * float(total.max())  # numerically zero coefficients (e.g. horseshoe-shrunk) carry no gap
    big = np.inf
    sym = absj + absj.T
    mins = np.minimum(np.where(absh > tiny, absh, big), np.where(sym > tiny, sym, big).min(axis=1, initial=big))
    finite = mins[np.isfinite(mins)]
    hot = float(np.log(2) / (2 * total.max()))
    if finite.size == 0:
        return (hot, hot)
    low = float(finite.min())
    cold = float(np.log(np.sum(finite == low) / 0.01) / (2 * low))
    return (hot, max(cold, hot))


def _as_arrays(ss: dimod.SampleSet, n: int, seconds: float) -> Samples:
    order = np.argsort(ss.record.energy, kind="stable")
    cols = np.array([ss.variables.index(i) for i in range(n)], dtype=int) if n else np.zeros(0, dtype=int)
    bits = np.asarray(ss.record.sample, dtype=np.int8)[order][:, cols]
    return Samples(bits, np.asarray(ss.record.energy, dtype=float)[order], seconds)
