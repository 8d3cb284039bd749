"""The ``qio`` method: surrogate binary quadratic model + simulated annealing over the twin.

Loop: a space-filling initial design over the encoded space (valid encodings only), then per batch
fit -> (Thompson) sample a quadratic model per slot -> add penalty terms (one energy per constraint weight of
the multiplier ladder) -> anneal -> decode -> the draw picks among the unseen samples and the incumbent's
unseen neighbours (lowest objective draw among those the constraint draws call feasible). Duplicate rule,
in order: (1) the next-best distinct unseen decoded samples of all draws (ranked by the posterior-mean
model), (2) a local move from the incumbent (ranked neighbourhood), (3) a space-filling unseen design. Every
use is counted in ``diagnostics()``. A run that stalls starts a fresh search
(:class:`fmi_optimizer.method.Restarts`). The parts live in their own modules: options, book (bookkeeping),
models (surrogates and the annealer's energy), moves (local moves), solver, direct (user BQMs), report, noise.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from fmi_optimizer.errors import StudyError
from fmi_optimizer.method import Capabilities, Fit, Method, Problem, Restarts, unsupported_reason
from fmi_optimizer.records import Candidate, Evaluation

from .book import PointBook, TrainingData, objective_ok
from .bqm import PenaltySchedule, add_models, encoding_weights, to_bqm
from .direct import DirectMode
from .encoding import LARGE_ENCODING_BITS, Encoding
from .models import SurrogateSet
from .moves import descend, local_moves
from .noise import noise_report
from .options import QioOptions
from .report import IterationLog, Step
from .solver import AnnealSettings, anneal, default_beta_range
from .surrogate import QuadModel

__all__ = ["QioMethod", "QioOptions"]

# qio's own cost per proposed point (surrogate fit + annealing), for time-aware routing: on heat_sink's 43 bits
# (constrained: three anneals per point) 55-57 ms CPU per model point, 0.3-0.6 s wall at load 10-15; 65 ms CPU
# at 60 bits unconstrained (docs/bench/qio.md). 0.15 s is a loaded-machine wall figure between the two.
MODEL_SECONDS_PER_POINT = 0.15


class QioMethod(Method):
    """Binary quadratic model + simulated annealing (BOCS-style surrogate loop, or a user BQM)."""

    name = "qio"
    summary = "quantum-inspired: binary encoding, second-order surrogate (horseshoe/FM), simulated annealing"
    capabilities: ClassVar[Capabilities] = Capabilities(
        kinds=frozenset({"discrete", "integer", "categorical", "boolean"}), noisy=True, batch=True,
        multi_objective=False, constraints=True)
    Options: ClassVar[type] = QioOptions

    def __init__(self, problem: Problem, options: Mapping[str, Any] | None = None, seed: int = 0):
        super().__init__(problem, options, seed)
        why = unsupported_reason(self.capabilities, problem)
        if why:
            raise StudyError(f"method 'qio' cannot run this study: {why}")
        o: QioOptions = self.options
        self.enc = Encoding(problem.space, o.integer_encoding, o.encodings)
        self.settings = AnnealSettings(o.num_reads, o.num_sweeps, o.beta_range, o.beta_schedule_type,
                                       o.postprocess, o.tabu_timeout_ms)
        self.n_initial = o.n_initial or max(problem.batch_size, min(20, self.enc.n_bits // 2 + 2))
        self.schedule = PenaltySchedule(target_share=o.penalty_target_share)
        self.book = PointBook(self.enc)
        self.models = SurrogateSet(self.enc, o, self.rng, problem.constraint_names)
        self.log = IterationLog()
        self.restarts = Restarts(o.restart_after)
        self.direct = (DirectMode(self.enc, o.bqm_file, o.bqm_builder, o.direct_top)
                       if o.bqm_file is not None or o.bqm_builder is not None else None)

    def _candidate(self, bits: np.ndarray, tag: str, replication: int = 0) -> Candidate:
        values, _ = self.enc.decode(bits)
        key = self.book.key_of(values)
        self.book.ask(key)
        self.restarts.asked(key)
        return Candidate(values, replication, tag)

    # -- protocol --------------------------------------------------------------------------
    def ask(self, n: int) -> list[Candidate]:
        if self.finished or n <= 0:
            return []
        out = self._replications(n) if self.problem.noisy else []
        k = n - len(out)
        if k <= 0:
            return out
        if self.direct is not None:
            return out + self._ask_direct(k)
        if self.book.n_seen() < self.n_initial or self.book.distinct_ok() < 2:
            return out + self._space_filling(k, "initial")
        fresh = self.restarts.keys
        if fresh is not None and (len(fresh) < self.n_initial or len(self.restarts.history) < 2):
            return out + self._space_filling(k, "restart")
        return out + self._anneal_batch(k)

    def tell(self, evaluations: Sequence[Evaluation]) -> None:
        super().tell(evaluations)
        keys = []
        for e in evaluations:
            keys.append(self.book.tell(e))
            self.log.twin_seconds_since += float(e.wall_seconds)
            if objective_ok(e) and e.candidate.replication == 0:
                self.models.note_outcome(self.enc.encode(e.candidate.values), float(e.objective))  # type: ignore[arg-type]
        self.restarts.told(evaluations, keys)
        model_batch = [e for e in evaluations if e.candidate.tag == "model"]
        if model_batch:
            self._learn_penalties(model_batch)

    def _learn_penalties(self, batch: list[Evaluation]) -> None:
        """Move the failure and constraint penalty factors by what the twin said about a model batch."""
        ok = [e for e in batch if e.ok]
        failed_share = 1.0 - len(ok) / len(batch)
        self.schedule.update_failures(failed_share)
        shares: list[float] = []
        if self.problem.constraint_names and ok:
            m = len(self.problem.constraint_names)
            shares = [sum(1 for e in ok if len(e.constraints) > j and e.constraints[j] > 0) / len(ok)
                      for j in range(m)]
            self.schedule.update_constraints(shares)
        self.log.record_batch(batch, self.problem.constraint_names, failed_share, shares)

    @property
    def finished(self) -> bool:
        if self.direct is not None and self.direct.finished:
            return True
        return self.book.n_seen() >= self.problem.space.cardinality()

    # -- proposals -------------------------------------------------------------------------
    def _space_filling(self, k: int, tag: str) -> list[Candidate]:
        rows = self.enc.space_filling(self.rng, k, self.book.seen_keys())
        return [self._candidate(r, tag) for r in rows[:k]]

    def _local_moves(self, k: int, taken: set[bytes], tag: str = "local") -> list[Candidate]:
        """Up to ``k`` unseen neighbours of the incumbent, ranked (see :mod:`.moves`)."""
        best = self._focus()
        if best is None:
            return []
        base = np.array(self.problem.space.to_indices(best.values))
        rows = local_moves(self.enc, self.rng, self.models, base, k,
                           lambda key: key not in taken and not self.book.seen(key))
        for r in rows:
            taken.add(self.book.key(r))
        return [self._candidate(r, tag) for r in rows]

    def _anneal_batch(self, k: int) -> list[Candidate]:
        """One Thompson draw per slot, annealed once per constraint weight of the multiplier ladder; the draw
        picks among the unseen decoded samples and the incumbent's unseen neighbours (constrained Thompson
        sampling, :meth:`SurrogateSet.thompson_pick`); the duplicate rule fills the slots whose draw's
        anneals produced nothing new."""
        t0 = time.perf_counter()
        local = not self.options.trust_alternate or len(self.log.records) % 2 == 1
        center = self._incumbent_bits() if local else None
        step = Step(self.models.fit(self._training_data(center)))
        step.fit_seconds = time.perf_counter() - t0
        chosen: list[Candidate] = []
        taken: set[bytes] = set()
        pool: list[np.ndarray] = []
        invalid = total = 0
        thompson = self.options.constraint_select == "thompson" and self.options.feasibility_filter
        scales = self.options.multiplier_ladder if thompson else (1.0,)
        neighbours: list[np.ndarray] = []
        if thompson and self.options.thompson_neighbours:  # the draw also ranks the incumbent's neighbourhood
            best = self._focus()
            if best is not None:
                base = np.array(self.problem.space.to_indices(best.values))
                neighbours = local_moves(self.enc, self.rng, self.models, base, 10**9,
                                         lambda key: not self.book.seen(key))
        for _ in range(k):
            t1 = time.perf_counter()
            draw = self.models.draw(self.schedule, center, self.options.trust_pull, scales)
            step.weights = draw.weights
            step.fit_seconds += time.perf_counter() - t1
            unseen: list[np.ndarray] = []
            fresh: set[bytes] = set()
            end_keys: set[bytes] = set()  # descent end points among the candidates
            for model in draw.models:
                samples = anneal(to_bqm(model), self.settings, int(self.rng.integers(2**31 - 1)),
                                 default_beta_range(model.lin, model.quad))
                step.anneal_seconds += samples.seconds
                bad, rows = self.enc.canonical(samples.bits)
                invalid += bad
                total += len(rows)
                for r in rows:
                    key = self.book.key(r)
                    if self.book.seen(key) or key in taken:
                        step.duplicates += 1
                    elif key not in fresh:
                        fresh.add(key)
                        unseen.append(r)
                if self.options.postprocess == "descent":  # the objective draw's local minima over designs
                    starts = self.enc.bits_to_indices(rows)[0]
                    ends = self.enc.indices_to_bits(descend(self.enc, draw.objective.energy, starts))
                    for r in ends:  # beside the samples (the pick checks the constraint draws); not duplicates
                        key = self.book.key(r)
                        if not self.book.seen(key) and key not in taken and key not in fresh:
                            fresh.add(key)
                            unseen.append(r)
                            end_keys.add(key)
            if end_keys and not thompson:  # the mean pick takes the first predicted-feasible row: lowest energy first
                unseen.sort(key=lambda r: float(draw.models[0].energy(r)[0]))
            if not unseen:
                step.draws_without_new += 1
                continue
            n_annealed = len(unseen)
            for r in neighbours:
                key = self.book.key(r)
                if key not in fresh and key not in taken:
                    fresh.add(key)
                    unseen.append(r)
            if thompson:  # lowest objective draw among the samples the constraint draws call feasible
                pick = self.models.thompson_pick(draw, np.array(unseen))
            else:  # lowest energy predicted feasible by the posterior means, else lowest energy
                ok = self.models.predicted_feasible(np.array(unseen))
                pick = int(np.argmax(ok)) if ok.any() else 0
            taken.add(self.book.key(unseen[pick]))
            pool += [r for i, r in enumerate(unseen) if i != pick]
            chosen.append(self._candidate(unseen[pick], "model"))
            if pick >= n_annealed:
                self.log.counts["neighbour_picks"] += 1
            elif self.book.key(unseen[pick]) in end_keys:
                self.log.counts["descent_picks"] += 1
        step.n_model = len(chosen)
        fills = self._fill(k - len(chosen), pool, taken)
        step.fills = [c.tag for c in fills]
        step.invalid_share = invalid / max(total, 1)
        self.schedule.update_encoding(step.invalid_share)
        self.log.record(step, self.schedule)
        return chosen + fills

    def _focus(self) -> Candidate | None:
        """The design the model steps work around: the fresh search's best during one, else the incumbent."""
        return self.restarts.incumbent() or self.recommend()

    def _incumbent_bits(self) -> np.ndarray | None:
        best = self._focus()
        return None if best is None else self.enc.encode(best.values)

    def _training_data(self, center: np.ndarray | None) -> TrainingData:
        """What the surrogates learn from: every design, or with ``local_fit`` the nearest to the incumbent."""
        data = self.book.training_data(len(self.problem.constraint_names), self.restarts.keys)
        n = self.options.local_fit
        return self.book.nearest(data, center, n) if n and center is not None else data

    def _fill(self, k: int, pool: list[np.ndarray], taken: set[bytes]) -> list[Candidate]:
        """The duplicate rule: next-best distinct samples, then local moves, then space filling."""
        out: list[Candidate] = []
        if k <= 0:
            return out
        if pool and self.models.mean_model is not None:
            arr = np.array(pool)
            for i in np.argsort(self.models.mean_energy(arr), kind="stable"):
                key = self.book.key(arr[i])
                if len(out) < k and key not in taken and not self.book.seen(key):
                    taken.add(key)
                    out.append(self._candidate(arr[i], "model"))
                    self.log.counts["next_best_fills"] += 1
        if len(out) < k:
            local = self._local_moves(k - len(out), taken)
            self.log.counts["local_moves"] += len(local)
            out += local
        if len(out) < k:
            rnd = self._space_filling(k - len(out), "random")
            self.log.counts["random_fills"] += len(rnd)
            out += rnd
        return out

    # -- direct mode ---------------------------------------------------------------------------
    def _ask_direct(self, k: int) -> list[Candidate]:
        assert self.direct is not None
        model = self.direct.user_model(self.history)
        enc_w = encoding_weights(self.enc, model) * self.schedule.encoding_factor
        lin, quad, off = self.enc.penalty_terms(enc_w)
        total = add_models([(1.0, model), (1.0, QuadModel(lin, quad, off))])
        samples = anneal(to_bqm(total), self.settings, int(self.rng.integers(2**31 - 1)))
        bad, rows = self.enc.canonical(samples.bits)
        picked = self.direct.pick(model, rows, k, lambda key: not self.book.seen(key))
        self.schedule.update_encoding(bad / max(len(rows), 1))
        self.log.record_direct(len(picked), bad / max(len(rows), 1), samples.seconds,
                               float(enc_w.max()) if len(enc_w) else None)
        return [self._candidate(r, "direct") for r in picked]

    # -- noise check ---------------------------------------------------------------------------
    def _replications(self, n: int) -> list[Candidate]:
        """Extra replications of the incumbent until it has ``noise_replications`` of them."""
        best = self.recommend()
        if best is None:
            return []
        key = self.book.key_of(best.values)
        have = len(self.book.groups.get(key, [])) + self.book.pending.get(key, 0)
        want = min(self.options.noise_replications - have, max(1, n // 2))
        out = []
        for r in range(have, have + max(0, want)):
            self.book.ask(key)
            out.append(Candidate(dict(best.values), r, "replication"))
        return out

    def _trace(self) -> list[float]:
        return [float(e.objective) for e in self.history  # type: ignore[arg-type]
                if objective_ok(e) and e.candidate.replication == 0 and e.feasible]

    # -- report -----------------------------------------------------------------------------------
    def diagnostics(self) -> dict[str, Any]:
        warnings = list(self.enc.warnings())
        s = self.settings
        out: dict[str, Any] = {
            "mode": "direct" if self.direct is not None else "surrogate",
            "surrogate": self.options.surrogate,
            "encoding": self.enc.report(),
            "n_initial": self.n_initial,
            "annealer": {"num_reads": s.num_reads, "num_sweeps": s.num_sweeps, "beta_range": s.beta_range,
                         "beta_schedule_type": s.beta_schedule_type, "postprocess": s.postprocess},
            "iterations": self.log.records,
            "model_batches_on_twin": self.log.batch_outcomes,
            "duplicates": dict(self.log.counts),
            "restarts": self.restarts.report(),
            "timing": self.log.timing(self.history),
            "evaluations": {"told": len(self.history), "distinct": len(self.book.groups),
                            "failed": sum(1 for e in self.history if not e.ok)},
        }
        if self.direct is not None:
            out["direct"] = self.direct.check(self.book.groups)
        if self.problem.noisy:
            out["noise"] = noise_report(self.book.groups, self._trace(), self.options.noise_warn_ratio)
            if out["noise"]["warning"]:
                warnings.append(out["noise"]["warning"])
        recs = self.log.records
        if recs and self.direct is None and recs[-1]["infeasible_sample_share"] > 0.5:
            warnings.append("most annealer samples broke the encoding in the last iteration: penalties are being raised")
        out["warnings"] = warnings
        return out

    # -- routing ------------------------------------------------------------------------------------
    @classmethod
    def fit(cls, problem: Problem) -> Fit:
        why = unsupported_reason(cls.capabilities, problem)
        if why:
            return Fit(0.0, why)
        card = problem.space.cardinality()
        n_bits = Encoding(problem.space).n_bits
        if problem.scenarios:
            return Fit(0.2, "the study lists fixed scenarios: ranking & selection fits better than a search")
        if problem.budget_evaluations is not None and card <= problem.budget_evaluations:
            return Fit(0.3, f"only {card:.0f} configurations: the budget can enumerate them")
        if n_bits > LARGE_ENCODING_BITS:
            return Fit(0.5, f"discrete space, but it encodes into {n_bits} bits, past what the annealer loop handles well")
        slow = problem.model_cost_fit(MODEL_SECONDS_PER_POINT)
        if slow is not None:  # a twin this fast is better served by spending the time budget on simulations
            return slow
        score = 1.0 if card >= 1000 else 0.7
        if problem.noisy:
            score *= 0.8
        return Fit(score, f"discrete/combinatorial space: {card:.3g} configurations in {n_bits} bits suit a "
                          "binary quadratic surrogate with annealing")
