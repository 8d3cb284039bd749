"""The ``bayes`` method: ask/tell Bayesian optimization over a mixed design space.

This module imports neither TensorFlow nor GPflow: the :class:`~fmio_bayes.engine.Engine`
(and with it TensorFlow) is imported at the first proposal after the initial design.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from fmi_optimizer.method import ALL_KINDS, Capabilities, Fit, Method, Problem, unsupported_reason
from fmi_optimizer.records import Candidate, Evaluation
from fmi_optimizer.space import Categorical, Continuous

from .design import default_size, unit_design
from .maximize import Settings
from .options import BayesOptions
from .scalarize import parego, pareto_mask, warp
from .transform import Encoder

if TYPE_CHECKING:
    from .engine import Dataset, Engine

log = logging.getLogger(__name__)
HIGH_DIMENSION = 15

# bayes's own cost, for time-aware routing (docs/bench/bayes.md): ~0.27 s of CPU per proposed point at
# 50-60 points, and ~5 s once (TensorFlow import plus the first traced iteration).
MODEL_SECONDS_PER_POINT = 0.27
STARTUP_SECONDS = 5.0


# a stall whose last proposals all lie this close to the incumbent (share of each range) is convergence there
CONVERGED_SPREAD = 1e-3


class BayesMethod(Method):
    """Gaussian-process Bayesian optimization (GPflow), with constraints, failures, batches,
    mixed spaces and ParEGO multi-objective search."""

    name = "bayes"
    summary = ("Bayesian optimization: GPflow Matern-5/2 GP surrogate, log-EI/UCB/PI, constraints and "
               "failure-aware, batch (Kriging believer), mixed spaces, ParEGO for several objectives")
    capabilities = Capabilities(kinds=ALL_KINDS, noisy=True, batch=True, multi_objective=True, constraints=True)
    Options = BayesOptions

    def __init__(self, problem: Problem, options: dict[str, Any] | None = None, seed: int = 0):
        super().__init__(problem, options, seed)
        opts: BayesOptions = self.options
        self.enc = Encoder(problem.space)
        d = len(problem.space)
        self.n_initial = opts.n_initial or default_size(d, problem.budget_evaluations)
        self._design = list(self.enc.from_unit(unit_design(opts.initial_design, self.n_initial, d, seed)))
        learned = opts.noise == "learned" or (opts.noise == "auto" and problem.noisy)
        self.noise_mode: Any = "learned" if learned else "fixed"
        self.patience = opts.stall_patience or max(10, 3 * d)
        self._pending: dict[tuple[Any, ...], np.ndarray] = {}
        self._seen: set[tuple[Any, ...]] = set()
        self._engine: Engine | None = None
        self._iterations: list[dict[str, Any]] = []
        self._warnings: list[str] = []
        self._screened: list[str] = []
        self._best = math.inf
        self._best_at: np.ndarray | None = None  # the incumbent, encoded (unit box)
        self._since_improvement = 0
        if d > HIGH_DIMENSION:
            self._warn(f"{d} dimensions: GP surrogates lose sample efficiency above ~{HIGH_DIMENSION}; "
                       + ("ARD screening is on" if opts.screening else "consider option screening = true"))

    # -- ask / tell -----------------------------------------------------------------------
    def ask(self, n: int) -> list[Candidate]:
        picks: list[np.ndarray] = []
        while self._design and len(picks) < n:
            z = self._design.pop(0)
            if not self._taken(z, picks):
                picks.append(z)
        if len(picks) < n:
            picks += self._propose(n - len(picks), picks)
        if len(picks) < n:
            picks += self._random(n - len(picks), picks)
        out = []
        for z in picks:
            values = self.enc.decode(z)
            self._pending[self.problem.space.key(values)] = self.enc.encode(values)
            out.append(Candidate(values))
        return out

    def tell(self, evaluations: Sequence[Evaluation]) -> None:
        super().tell(evaluations)
        first = len(self.history) - len(evaluations)  # the batch is in the history already
        for j, e in enumerate(evaluations):
            key = self.problem.space.key(e.candidate.values)
            self._pending.pop(key, None)
            self._seen.add(key)
            self._track_progress(e, first + j + 1)

    @property
    def finished(self) -> bool:
        """Only a deterministic, finite space can be exhausted."""
        return (not self.problem.noisy and math.isfinite(self.problem.space.cardinality())
                and len(self._seen) >= self.problem.space.cardinality())

    def recommend(self) -> Candidate | None:
        if self.problem.n_objectives == 1:
            return super().recommend()
        front = self._pareto()
        if not front:
            return None
        F = np.array([e.objectives for e in front])
        span = np.where(np.ptp(F, axis=0) > 0, np.ptp(F, axis=0), 1.0)
        best = front[int(np.argmin(((F - F.min(axis=0)) / span).sum(axis=1)))]
        return Candidate(dict(best.candidate.values))

    # -- proposals --------------------------------------------------------------------------
    def _propose(self, q: int, already: list[np.ndarray]) -> list[np.ndarray]:
        data = self._dataset()
        if len(data.y) < 2:
            return []
        engine = self._get_engine()
        pending = np.array([*self._pending.values(), *already]).reshape(-1, self.enc.width)
        frozen = self._frozen(data)

        def taken(z: np.ndarray) -> bool:
            return self._taken(z, already)

        # one BLAS thread: L-BFGS-B's tiny dense algebra is 10x slower when OpenBLAS threads contend
        with threadpool_limits(limits=1, user_api="blas"):
            proposal = engine.propose(q, data, pending, frozen, taken, self.rng)
        self._record(proposal, data, engine)
        return proposal.points

    def _get_engine(self) -> Engine:
        """The search's surrogates and acquisition, built from the options at the first proposal (the study
        seed seeds its ensemble members, if any; the key 0 is the one the main engine had when a second one
        existed, so seeded runs stay as they were)."""
        if self._engine is None:
            from .engine import Engine, model_seed  # imports TensorFlow: only now, never at plugin import

            opts: BayesOptions = self.options
            self._engine = Engine(self.enc, len(self.problem.constraint_names), self.noise_mode, opts.acquisition,
                                  opts.ucb_beta, Settings(opts.n_raw_samples, opts.n_restarts), opts.lengthscale_prior,
                                  opts.mean, opts.surrogate, model_seed(self.seed, 0))
        return self._engine

    def _random(self, n: int, already: list[np.ndarray]) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for _ in range(50 * n):
            if len(out) == n:
                break
            z = self.enc.from_unit(self.rng.random((1, len(self.enc.blocks))))[0]
            if not self._taken(z, already + out):
                out.append(z)
        return out

    def _taken(self, z: np.ndarray, picks: list[np.ndarray]) -> bool:
        """Already pending or in this batch; for deterministic twins also already evaluated."""
        key = self.problem.space.key(self.enc.decode(z))
        if key in self._pending or (not self.problem.noisy and key in self._seen):
            return True
        return any(np.max(np.abs(z - p)) < 1e-9 for p in picks)

    def _dataset(self) -> Dataset:
        from .engine import Dataset

        Z_ok, vals, cons, Z_all, success = [], [], [], [], []
        m = len(self.problem.constraint_names)
        for e in self.history:
            z = self.enc.encode(e.candidate.values)
            v = self._objective_of(e)
            good = v is not None and len(e.constraints) == m and bool(np.all(np.isfinite(e.constraints)))
            Z_all.append(z)
            success.append(good)
            if good:
                Z_ok.append(z)
                vals.append(v)
                cons.append(list(e.constraints))
        W = self.enc.width
        F = np.array(vals, dtype=float).reshape(len(vals), -1) if vals else np.zeros((0, 1))  # none told yet
        if self.problem.n_objectives > 1 and len(F):
            y = parego(F, self.rng.dirichlet(np.ones(F.shape[1])))
        else:
            y = F[:, 0] if len(F) else np.zeros(0)
        opts: BayesOptions = self.options
        return Dataset(np.array(Z_ok).reshape(-1, W), warp(y, opts.output_warping),
                       np.array(cons, dtype=float).reshape(len(Z_ok), m), np.array(Z_all).reshape(-1, W),
                       np.array(success, dtype=bool))

    def _objective_of(self, e: Evaluation) -> list[float] | None:
        if not e.ok:
            return None
        if self.problem.n_objectives > 1:
            vals = list(e.objectives)
            ok = len(vals) == self.problem.n_objectives
        else:
            vals = [e.objective] if e.objective is not None else []
            ok = len(vals) == 1
        return vals if ok and all(math.isfinite(v) for v in vals) else None

    # -- screening, stall, diagnostics ------------------------------------------------------
    def _columns(self) -> list[str]:
        names = []
        for d, b in zip(self.problem.space, self.enc.blocks, strict=True):
            names += [f"{d.name}={lab}" for lab in d.labels] if isinstance(d, Categorical) else [d.name]
            assert b.width >= 1
        return names

    def _frozen(self, data: Dataset) -> dict[int, float]:
        """Columns pinned to the incumbent: dimensions whose ARD relevance (1/lengthscale) is below
        ``screening_threshold`` of the most relevant one (only with screening on, above 15 dims)."""
        opts: BayesOptions = self.options
        self._screened = []
        if not (opts.screening and len(self.problem.space) > HIGH_DIMENSION and self._iterations):
            return {}
        ls = np.array(self._iterations[-1]["lengthscales_raw"])
        rel = np.array([np.max(1.0 / ls[b.start:b.start + b.width]) for b in self.enc.blocks])
        best = data.incumbent()
        z_best = data.Z_ok[best if best is not None else int(np.argmin(data.y))]
        frozen: dict[int, float] = {}
        for d, b, r in zip(self.problem.space, self.enc.blocks, rel, strict=True):
            if r < opts.screening_threshold * rel.max():
                self._screened.append(d.name)
                for c in range(b.start, b.start + b.width):
                    frozen[c] = float(z_best[c])
        return frozen

    def _track_progress(self, e: Evaluation, upto: int) -> None:
        """``e`` is the history's ``upto``-th evaluation: a stall is judged on the evaluations up to it."""
        if self.problem.n_objectives > 1:  # several objectives: progress is a point that enters the front
            if self._enters_front(e):
                self._since_improvement = 0
                return
        else:
            v = e.objective
            margin = 1e-9 * max(1.0, abs(self._best)) if math.isfinite(self._best) else 0.0
            if v is not None and e.feasible and math.isfinite(v) and v < self._best - margin:
                self._best = v
                self._best_at = self.enc.encode(e.values)
                self._since_improvement = 0
                return
        self._since_improvement += 1
        if self._since_improvement == self.patience and len(self.history) > self.n_initial:
            if self.problem.n_objectives > 1:
                self._warn(f"search stalled: no evaluation in the last {self.patience} entered the Pareto front "
                           f"(front size {len(self._pareto())}): it may be complete at this resolution; a larger budget "
                           "or another seed may extend it")
                return
            spread = None if self.problem.noisy else self._spread_around_best(self.history[:upto][-self.patience:])
            if spread is not None and spread <= CONVERGED_SPREAD:
                self._warn(f"converged: the last {self.patience} evaluations lie within {spread:.1g} of the best "
                           "point (as a share of each parameter's range) without improving on it; more budget "
                           "refines only its last digits; another seed checks whether it is the global optimum")
                return
            self._warn(f"search stalled: no improvement in the last {self.patience} evaluations "
                       f"(best objective {self._best:.6g} as minimized; a maximized KPI shows negated): "
                       f"{self._stall_advice()}; check the LOO errors for a mis-specified "
                       "surrogate")

    def _spread_around_best(self, stalled: Sequence[Evaluation]) -> float | None:
        """The largest distance (max norm, unit box) of the ``stalled`` evaluations from the incumbent."""
        if self._best_at is None or len(stalled) < self.patience:
            return None
        return float(max(np.max(np.abs(self.enc.encode(e.values) - self._best_at)) for e in stalled))

    def _enters_front(self, e: Evaluation) -> bool:
        """``e`` is feasible and no other feasible evaluation so far is at least as good in every objective."""
        mine = e.objectives
        if not e.feasible or len(mine) != self.problem.n_objectives or not all(map(math.isfinite, mine)):
            return False
        return not any(o is not e and o.feasible and len(o.objectives) == len(mine)
                       and all(a <= b for a, b in zip(o.objectives, mine, strict=True)) for o in self.history)

    def _stall_advice(self) -> str:
        """What the user can do about a stalled search (measured on Hartmann6: docs/bench/bayes.md; a larger
        initial design did not help there, a larger budget did)."""
        return "possibly a local optimum; try another seed or a larger budget"

    def _warn(self, msg: str) -> None:
        log.warning("bayes: %s", msg)
        self._warnings.append(msg)

    def _record(self, proposal: Any, train: Dataset, model: Engine) -> None:
        ls = model.objective.lengthscales
        self._iterations.append({
            "iteration": len(self._iterations) + 1, "n_data": int(len(train.y)),
            "n_failed": int(np.sum(~train.success)), **proposal.fit,
            "lengthscales": {c: float(v) for c, v in zip(self._columns(), ls, strict=True)},
            "lengthscales_raw": [float(v) for v in ls],
            "fit_cpu_seconds": proposal.fit_seconds, "acquisition_cpu_seconds": proposal.acquisition_seconds,
            "acquisition_values": proposal.values, "screened_out": list(self._screened),
        })

    def _pareto(self) -> list[Evaluation]:
        good = [e for e in self.history if e.feasible and self._objective_of(e) is not None]
        if not good:
            return []
        mask = pareto_mask(np.array([e.objectives for e in good], dtype=float))
        return [e for e, k in zip(good, mask, strict=True) if k]

    def diagnostics(self) -> dict[str, Any]:
        opts: BayesOptions = self.options
        out: dict[str, Any] = {
            "surrogate": "GPflow GPR, Matern-5/2 ARD, MAP hyperparameters" if opts.surrogate == "gp" else
                         "deep ensemble (5 MLPs, Gaussian NLL); 'loo' is an out-of-fold holdout, not leave-one-out",
            "noise": self.noise_mode, "acquisition": opts.acquisition,
            "initial_design": {"kind": opts.initial_design, "size": self.n_initial},
            "encoding": self._columns(),
            "iterations": [{k: v for k, v in it.items() if k != "lengthscales_raw"} for it in self._iterations],
            "warnings": list(self._warnings),
            "stalled": self._since_improvement >= self.patience,
            "evaluations_since_improvement": self._since_improvement,
        }
        if self._engine is not None and self._engine.last_loo:
            # the leave-one-out check of the objective GP at its last proposal, per training point (plot
            # predicted vs observed with +-2 sd bars, or a histogram of standardized_error against
            # N(0, 1)); values are the modelled series (after output warping / ParEGO scalarization)
            out["loo"] = dict(self._engine.last_loo)
        if self.problem.n_objectives > 1:
            out["pareto_front_size"] = len(self._pareto())
        return out

    # -- routing ------------------------------------------------------------------------------
    @classmethod
    def fit(cls, problem: Problem) -> Fit:
        why = unsupported_reason(cls.capabilities, problem)
        if why:
            return Fit(0.0, why)
        space = problem.space
        n_cont = sum(1 for d in space if isinstance(d, Continuous) and not d.discrete)
        budget = problem.budget_evaluations
        if n_cont == 0:
            return Fit(0.2, "no continuous parameter: a GP over encoded choices works, annealing/GA usually fit better")
        if budget is not None and budget > 1000:
            return Fit(0.3, f"budget of {budget} evaluations: GP cost grows as n^3, a cheaper method suits better")
        if len(space) > HIGH_DIMENSION:
            return Fit(0.4, f"{len(space)} dimensions: Bayesian optimization loses its edge above ~{HIGH_DIMENSION}")
        slow = problem.model_cost_fit(MODEL_SECONDS_PER_POINT, STARTUP_SECONDS)
        if slow is not None:  # a twin this fast is better served by spending the time budget on simulations
            return slow
        share = n_cont / len(space)
        return Fit(round(0.6 + 0.4 * share, 3),
                   "low-dimensional tuning of continuous parameters: Bayesian optimization spends the fewest "
                   f"evaluations (its model costs ~{MODEL_SECONDS_PER_POINT:.2g} s per point, worth it when a "
                   "simulation costs more)")
