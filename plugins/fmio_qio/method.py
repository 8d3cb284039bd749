"""The ``qio`` method: surrogate binary quadratic model + simulated annealing over the twin.

Loop: a space-filling initial design over the encoded space (valid encodings only), then per batch
fit -> (Thompson) sample a quadratic model per slot -> add penalty terms -> anneal -> decode -> keep the best
distinct unseen design of each draw (predicted-feasible first). Duplicate rule, in order: (1) the next-best
distinct unseen decoded samples of all draws (ranked by the posterior-mean model), (2) a local move from the
incumbent (ranked neighbourhood), (3) a space-filling unseen design. Stall rule: after ``stall_local_after``
model iterations without improvement, every other batch is local moves. Every use is counted in
``diagnostics()``.

Constraint KPIs get their own surrogate (of ``c``, as a Lagrangian term with a multiplier moved by the twin's
answers, or of the violation ``max(0, c)``) and enter as penalties; failed evaluations are learnt by a
failure surrogate (1 = failed, 0 = ran) that enters as a penalty too, and their bit patterns are never
proposed again — they never enter the objective surrogate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from fmi_optimizer.errors import StudyError
from fmi_optimizer.method import Capabilities, Fit, Method, Problem, unsupported_reason
from fmi_optimizer.records import Candidate, Evaluation

from .bqm import PenaltySchedule, add_models, encoding_weights, model_span, to_bqm
from .direct import load_bqm_file, resolve_builder, user_model
from .encoding import LARGE_ENCODING_BITS, Encoding
from .noise import noise_report
from .solver import AnnealSettings, Samples, anneal, default_beta_range
from .surrogate import FMSurrogate, HorseshoeSurrogate, QuadModel, Surrogate


@dataclass(frozen=True)
class QioOptions:
    """Options of ``qio`` (``[method]`` table of the study file)."""

    surrogate: Literal["horseshoe", "fm"] = "horseshoe"
    integer_encoding: Literal["auto", "onehot", "binary", "unary", "domain_wall"] = "auto"
    encodings: dict[str, str] | None = None  # per-parameter scheme override
    n_initial: int | None = None
    num_reads: int = 10
    num_sweeps: int = 500
    beta_range: tuple[float, float] | None = None
    beta_schedule_type: Literal["geometric", "linear"] = "geometric"
    postprocess: Literal["none", "steepest", "tabu"] = "steepest"
    tabu_timeout_ms: int = 20
    gibbs_burnin: int = 200
    gibbs_steps: int = 10
    fm_factors: int = 8
    fm_epochs: int = 400
    penalty_target_share: float = 0.1
    constraint_penalty: Literal["hinge", "lagrangian"] = "lagrangian"
    feasibility_filter: bool = True
    stall_local_after: int = 10  # after this many model iterations without improvement, alternate local moves (0: off)
    bqm_file: str | None = None
    bqm_builder: Any = None
    direct_top: int = 10
    noise_replications: int = 3
    noise_warn_ratio: float = 1.0

    def __post_init__(self) -> None:
        for name in ("num_reads", "num_sweeps", "gibbs_burnin", "gibbs_steps", "fm_factors", "fm_epochs",
                     "direct_top", "tabu_timeout_ms"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_initial is not None and self.n_initial < 1:
            raise ValueError(f"n_initial must be >= 1, got {self.n_initial}")
        if self.noise_replications < 2:
            raise ValueError(f"noise_replications must be >= 2, got {self.noise_replications}")
        if self.beta_range is not None and not 0 < self.beta_range[0] < self.beta_range[1]:
            raise ValueError(f"beta_range must be (hot, cold) with 0 < hot < cold, got {self.beta_range}")
        if self.bqm_file is not None and self.bqm_builder is not None:
            raise ValueError("give bqm_file or bqm_builder, not both")


def _objective_ok(e: Evaluation) -> bool:
    return e.ok and e.objective is not None and math.isfinite(e.objective)


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
        self.direct = o.bqm_file is not None or o.bqm_builder is not None
        self._file_bqm = load_bqm_file(o.bqm_file) if o.bqm_file is not None else None
        self._builder = resolve_builder(o.bqm_builder) if o.bqm_builder is not None else None
        self._groups: dict[bytes, list[Evaluation]] = {}  # every told evaluation by bit pattern
        self._pending: dict[bytes, int] = {}  # asked, not told yet (count of replications)
        self._order: list[bytes] = []  # distinct points in the order first told
        self._obj_sur: Surrogate | None = None
        self._con_surs: dict[int, HorseshoeSurrogate] = {}
        self._fail_sur: HorseshoeSurrogate | None = None
        self._con_means: dict[int, QuadModel] = {}
        self._con_limits: dict[int, float] = {}
        self._mean_model: QuadModel | None = None
        self._val_pairs: list[tuple[float, float]] = []
        self._twin_seconds = 0.0
        self.records: list[dict[str, Any]] = []
        self.batch_outcomes: list[dict[str, Any]] = []  # what the twin said about each model batch
        self.counts = {"annealer_duplicates": 0, "steps_without_new_sample": 0, "next_best_fills": 0,
                       "local_moves": 0, "random_fills": 0, "stall_local_moves": 0}
        self._direct_asked = 0
        self._direct_exhausted = False
        self._direct_energy: dict[bytes, float] = {}
        self._fit_seconds = 0.0
        self._anneal_seconds = 0.0
        self._model_proposals = 0
        self._best_value = math.inf
        self._since_improved = 0
        self._stall_turn = 0

    # -- bookkeeping ---------------------------------------------------------------------
    def _key(self, bits: np.ndarray) -> bytes:
        return np.asarray(bits, dtype=np.int8).tobytes()

    def _key_of(self, values: Mapping[str, Any]) -> bytes:
        return self._key(self.enc.encode(values))

    def _seen(self, key: bytes) -> bool:
        return key in self._groups or key in self._pending

    def _candidate(self, bits: np.ndarray, tag: str, replication: int = 0) -> Candidate:
        values, _ = self.enc.decode(bits)
        key = self._key(self.enc.encode(values))
        self._pending[key] = self._pending.get(key, 0) + 1
        return Candidate(values, replication, tag)

    # -- protocol --------------------------------------------------------------------------
    def ask(self, n: int) -> list[Candidate]:
        if self.finished or n <= 0:
            return []
        out = self._replications(n) if self.problem.noisy else []
        k = n - len(out)
        if k <= 0:
            return out
        if self.direct:
            return out + self._ask_direct(k)
        distinct_ok = sum(1 for evs in self._groups.values() if any(_objective_ok(e) for e in evs))
        if len(self._groups) + len(self._pending) < self.n_initial or distinct_ok < 2:
            return out + self._space_filling(k, "initial")
        return out + self._ask_model(k)

    def tell(self, evaluations: Sequence[Evaluation]) -> None:
        super().tell(evaluations)
        model_batch = [e for e in evaluations if e.candidate.tag == "model"]
        for e in evaluations:
            key = self._key_of(e.candidate.values)
            if key in self._pending:
                self._pending[key] -= 1
                if self._pending[key] <= 0:
                    del self._pending[key]
            if key not in self._groups:
                self._order.append(key)
                self._groups[key] = []
            self._groups[key].append(e)
            self._twin_seconds += float(e.wall_seconds)
            if self._mean_model is not None and _objective_ok(e) and e.candidate.replication == 0:
                pred = float(self._mean_model.energy(self.enc.encode(e.candidate.values))[0])
                self._val_pairs.append((pred, float(e.objective)))  # type: ignore[arg-type]
        self._track_improvement(bool(model_batch))
        if model_batch:
            ok = [e for e in model_batch if e.ok]
            failed_share = 1.0 - len(ok) / len(model_batch)
            self.schedule.update_failures(failed_share)
            shares: list[float] = []
            if self.problem.constraint_names and ok:
                m = len(self.problem.constraint_names)
                shares = [sum(1 for e in ok if len(e.constraints) > j and e.constraints[j] > 0) / len(ok)
                          for j in range(m)]
                self.schedule.update_constraints(shares)
            self.batch_outcomes.append({
                "told": len(model_batch), "failed_share": failed_share,
                "infeasible_share": sum(1 for e in model_batch if not e.feasible) / len(model_batch),
                "violated_share_by_constraint": dict(zip(self.problem.constraint_names, shares, strict=False))})

    def _track_improvement(self, after_model_batch: bool) -> None:
        """Count model iterations since the best feasible mean objective last improved."""
        best = min((float(np.mean([e.objective for e in evs if _objective_ok(e)]))
                    for evs in self._groups.values() if evs and all(e.feasible for e in evs)), default=math.inf)
        if best < self._best_value:
            self._best_value, self._since_improved = best, 0
        elif after_model_batch:
            self._since_improved += 1

    @property
    def finished(self) -> bool:
        if self.direct and (self._direct_exhausted or self._direct_asked >= self.options.direct_top):
            return True
        return len(self._groups) + len(self._pending) >= self.problem.space.cardinality()

    # -- initial design / fills ------------------------------------------------------------
    def _space_filling(self, k: int, tag: str) -> list[Candidate]:
        exclude = set(self._groups) | set(self._pending)
        rows = self.enc.space_filling(self.rng, k, exclude)
        return [self._candidate(r, tag) for r in rows[:k]]

    def _local_moves(self, k: int, taken: set[bytes]) -> list[Candidate]:
        """Up to ``k`` unseen neighbours of the incumbent (every one-dimension change, then random two-dimension
        changes), predicted-feasible first, then by the posterior-mean model."""
        best = self.recommend()
        if best is None:
            return []
        base = np.array(self.problem.space.to_indices(best.values))
        moves = []
        for j, b in enumerate(self.enc.blocks):
            for level in range(b.levels):
                if level != base[j]:
                    nb = base.copy()
                    nb[j] = level
                    moves.append(nb)
        for _ in range(20 * max(1, k)):
            nb = base.copy()
            for j in self.rng.choice(len(base), size=min(2, len(base)), replace=False):
                nb[j] = self._neighbour(int(j), int(nb[j]))
            moves.append(nb)
        rows = [r for r in self.enc.indices_to_bits(np.array(moves))]
        fresh: dict[bytes, np.ndarray] = {}
        for r in rows:
            key = self._key(r)
            if key not in taken and not self._seen(key):
                fresh.setdefault(key, r)
        if not fresh:
            return []
        arr = np.array(list(fresh.values()))
        score = self._mean_model.energy(arr) if self._mean_model is not None else np.zeros(len(arr))
        order = np.lexsort((score, ~self._predicted_feasible(arr)))
        out = []
        for i in order[:k]:
            taken.add(self._key(arr[i]))
            out.append(self._candidate(arr[i], "local"))
        return out

    def _neighbour(self, j: int, i: int) -> int:
        b = self.enc.blocks[j]
        if b.kind == "categorical":
            return int((i + self.rng.integers(1, b.levels)) % b.levels)
        steps = [i + s for s in (-1, 1) if 0 <= i + s < b.levels]
        return int(steps[int(self.rng.integers(len(steps)))])

    # -- the surrogate loop ------------------------------------------------------------------
    def _training_data(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[bytes], list[bytes]]:
        """Distinct ok points (bits, mean objective, mean constraint values) and failed keys."""
        ok_keys, failed_keys = [], []
        ys, cons = [], []
        m = len(self.problem.constraint_names)
        for key in self._order:
            evs = [e for e in self._groups[key] if _objective_ok(e)]
            if evs:
                ok_keys.append(key)
                ys.append(float(np.mean([e.objective for e in evs])))
                cons.append([float(np.mean([e.constraints[j] if len(e.constraints) > j else 0.0
                                            for e in evs])) for j in range(m)])
            else:
                failed_keys.append(key)
        bits = np.array([np.frombuffer(k, dtype=np.int8) for k in ok_keys]).reshape(len(ok_keys), self.enc.n_bits)
        return bits, np.array(ys), np.array(cons).reshape(len(ok_keys), m), ok_keys, failed_keys

    def _new_surrogate(self) -> Surrogate:
        o: QioOptions = self.options
        if o.surrogate == "fm":
            return FMSurrogate(self.enc.n_bits, self.rng, o.fm_factors, o.fm_epochs)
        return HorseshoeSurrogate(self.enc.n_bits, self.rng, o.gibbs_burnin, o.gibbs_steps)

    def _horseshoe(self) -> HorseshoeSurrogate:
        o: QioOptions = self.options
        return HorseshoeSurrogate(self.enc.n_bits, self.rng, o.gibbs_burnin, o.gibbs_steps)

    def _fit(self) -> dict[str, Any]:
        """Fit the objective, constraint and failure surrogates; return the fit facts."""
        bits, y, cons, ok_keys, failed_keys = self._training_data()
        if self._obj_sur is None:
            self._obj_sur = self._new_surrogate()
        self._obj_sur.fit(bits, y)
        lagrangian = self.options.constraint_penalty == "lagrangian"
        for j in range(cons.shape[1]):
            if cons[:, j].max() > 0 or (lagrangian and j in self._con_surs):  # violated at least once
                sur = self._con_surs.setdefault(j, self._horseshoe())
                # hinge: learn the violation max(0, c); lagrangian: learn c itself (signed distance to the limit)
                sur.fit(bits, cons[:, j] if lagrangian else np.maximum(cons[:, j], 0.0))
        self._con_means = {j: sur.mean_model() for j, sur in self._con_surs.items()}
        # a prediction above this calls a design infeasible (hinge: a tenth of the typical observed violation)
        self._con_limits = {j: 0.0 if lagrangian else 0.1 * float(cons[cons[:, j] > 0, j].mean())
                            for j in self._con_surs}
        if failed_keys:
            allbits = np.vstack([bits, np.array([np.frombuffer(k, dtype=np.int8) for k in failed_keys])])
            target = np.r_[np.zeros(len(ok_keys)), np.ones(len(failed_keys))]
            if self._fail_sur is None:
                self._fail_sur = self._horseshoe()
            self._fail_sur.fit(allbits, target)
        self._mean_model = self._obj_sur.mean_model()  # type: ignore[attr-defined]
        train = float(np.sqrt(np.mean((self._mean_model.energy(bits) - y) ** 2)))
        val = None
        if self._val_pairs:
            pv = np.array(self._val_pairs[-20:])
            val = float(np.sqrt(np.mean((pv[:, 0] - pv[:, 1]) ** 2)))
        return {"n_train": len(y), "n_failed": len(failed_keys), "train_rmse": train,
                "validation_rmse_last20": val, "objective_sd": float(np.std(y))}

    def _draw_model(self) -> tuple[QuadModel, dict[str, Any]]:
        """One Thompson draw of objective + constraint/failure penalties + encoding penalties."""
        assert self._obj_sur is not None
        obj = self._obj_sur.sample_model()
        parts: list[tuple[float, QuadModel]] = [(1.0, obj)]
        span = model_span(obj)
        weights: dict[str, Any] = {}
        for j, sur in self._con_surs.items():
            factor = self.schedule.constraint_factors[j] if j < len(self.schedule.constraint_factors) else 1.0
            cm = sur.sample_model()
            w = factor * span / model_span(cm)
            parts.append((w, cm))
            weights[self.problem.constraint_names[j]] = w
        if self._fail_sur is not None:
            fm = self._fail_sur.sample_model()
            w = self.schedule.failure_factor * span / model_span(fm)
            parts.append((w, fm))
            weights["failure"] = w
        combined = add_models(parts)
        enc_w = encoding_weights(self.enc, combined) * self.schedule.encoding_factor
        lin, quad, off = self.enc.penalty_terms(enc_w)
        total = add_models([(1.0, combined), (1.0, QuadModel(lin, quad, off))])
        if len(enc_w):
            weights["encoding_max"] = float(enc_w.max())
        return total, weights

    def _ask_model(self, k: int) -> list[Candidate]:
        stall = self.options.stall_local_after
        if stall and self._since_improved >= stall:
            self._stall_turn += 1
            if self._stall_turn % 2 == 1:  # stalled: every other batch searches around the incumbent
                t0 = time.perf_counter()
                fit_info = self._fit()
                local = self._local_moves(k, set())
                if local:
                    self.counts["stall_local_moves"] += len(local)
                    self._record(fit_info, time.perf_counter() - t0, 0.0, 0.0, 0, 0, {}, 0, local)
                    return local
        t0 = time.perf_counter()
        fit_info = self._fit()
        fit_s = time.perf_counter() - t0
        chosen: list[Candidate] = []
        taken: set[bytes] = set()
        pool: list[np.ndarray] = []
        invalid, total, dup, no_new, anneal_s = 0, 0, 0, 0, 0.0
        weights: dict[str, Any] = {}
        for _ in range(k):
            t1 = time.perf_counter()
            model, weights = self._draw_model()
            fit_s += time.perf_counter() - t1
            samples = anneal(to_bqm(model), self.settings, int(self.rng.integers(2**31 - 1)),
                             default_beta_range(model.lin, model.quad))
            anneal_s += samples.seconds
            bad, rows = self._decode(samples)
            invalid += bad
            total += len(samples.bits)
            new = None
            unseen = []
            for r in rows:
                key = self._key(r)
                if self._seen(key) or key in taken:
                    dup += 1
                else:
                    unseen.append(r)
            if unseen:
                ok = self._predicted_feasible(np.array(unseen))
                pick = int(np.argmax(ok)) if ok.any() else 0  # lowest energy predicted feasible, else lowest
                new = unseen[pick]
                taken.add(self._key(new))
                pool += [r for i, r in enumerate(unseen) if i != pick]
            if new is None:
                no_new += 1
            else:
                chosen.append(self._candidate(new, "model"))
        fills = self._fill(k - len(chosen), pool, taken)
        self.schedule.update_encoding(invalid / max(total, 1))
        self._record(fit_info, fit_s, anneal_s, invalid / max(total, 1), dup, no_new, weights, len(chosen), fills)
        return chosen + fills

    def _predicted_feasible(self, rows: np.ndarray) -> np.ndarray:
        """Which rows the constraint surrogates' posterior means call feasible (all True without a filter)."""
        ok = np.ones(len(rows), dtype=bool)
        if not self.options.feasibility_filter:
            return ok
        for j, model in self._con_means.items():
            ok &= model.energy(rows) <= self._con_limits[j]
        return ok

    def _decode(self, samples: Samples) -> tuple[int, list[np.ndarray]]:
        """Number of invalid samples and the (repaired, canonical) bit rows in energy order."""
        idx, valid = self.enc.bits_to_indices(samples.bits)
        return int((~valid.all(axis=1)).sum()), list(self.enc.indices_to_bits(idx))

    def _fill(self, k: int, pool: list[np.ndarray], taken: set[bytes]) -> list[Candidate]:
        """The duplicate rule: next-best distinct samples, then local moves, then space filling."""
        out: list[Candidate] = []
        if k <= 0:
            return out
        if pool and self._mean_model is not None:
            arr = np.array(pool)
            for i in np.argsort(self._mean_model.energy(arr), kind="stable"):
                key = self._key(arr[i])
                if len(out) < k and key not in taken and not self._seen(key):
                    taken.add(key)
                    out.append(self._candidate(arr[i], "model"))
                    self.counts["next_best_fills"] += 1
        if len(out) < k:
            local = self._local_moves(k - len(out), taken)
            self.counts["local_moves"] += len(local)
            out += local
        if len(out) < k:
            rnd = self._space_filling(k - len(out), "random")
            self.counts["random_fills"] += len(rnd)
            out += rnd
        return out

    def _record(self, fit_info: dict[str, Any], fit_s: float, anneal_s: float, invalid_share: float, dup: int,
                no_new: int, weights: dict[str, Any], n_model: int, fills: list[Candidate]) -> None:
        self.counts["annealer_duplicates"] += dup
        self.counts["steps_without_new_sample"] += no_new
        n_prop = n_model + len(fills)
        self._fit_seconds += fit_s
        self._anneal_seconds += anneal_s
        self._model_proposals += n_prop
        self.records.append({
            "iteration": len(self.records) + 1, **fit_info,
            "penalty_weights": weights, "encoding_factor": self.schedule.encoding_factor,
            "constraint_factors": list(self.schedule.constraint_factors),
            "failure_factor": self.schedule.failure_factor,
            "infeasible_sample_share": invalid_share, "duplicate_samples": dup, "draws_without_new": no_new,
            "fills": [c.tag for c in fills], "fit_seconds": fit_s, "anneal_seconds": anneal_s,
            "seconds_per_proposed_point": (fit_s + anneal_s) / max(n_prop, 1),
            "twin_seconds_since_last": self._twin_seconds,
        })
        self._twin_seconds = 0.0

    # -- direct mode ---------------------------------------------------------------------------
    def _ask_direct(self, k: int) -> list[Candidate]:
        k = min(k, self.options.direct_top - self._direct_asked)
        bqm: Any
        if self._builder is not None:
            bqm, source = self._builder(self.enc, list(self.history)), "qio option 'bqm_builder'"
        else:
            bqm, source = self._file_bqm, f"qio option 'bqm_file' ({self.options.bqm_file})"
        model = user_model(bqm, self.enc, source)
        enc_w = encoding_weights(self.enc, model) * self.schedule.encoding_factor
        lin, quad, off = self.enc.penalty_terms(enc_w)
        total = add_models([(1.0, model), (1.0, QuadModel(lin, quad, off))])
        samples = anneal(to_bqm(total), self.settings, int(self.rng.integers(2**31 - 1)))
        bad, rows = self._decode(samples)
        rows = rows + self._neighbourhood(rows[: max(1, k)])
        out: list[Candidate] = []
        taken: set[bytes] = set()
        energies = model.energy(np.array(rows))
        for r, en in sorted(zip(rows, energies, strict=True), key=lambda t: float(t[1])):
            key = self._key(r)
            if len(out) < k and not self._seen(key) and key not in taken:
                taken.add(key)
                self._direct_energy[key] = float(en)
                out.append(self._candidate(r, "direct"))
        self._direct_asked += len(out)
        self._direct_exhausted = len(out) == 0
        self.schedule.update_encoding(bad / max(len(rows), 1))
        self.records.append({"iteration": len(self.records) + 1, "mode": "direct", "proposed": len(out),
                             "infeasible_sample_share": bad / max(len(rows), 1),
                             "anneal_seconds": samples.seconds, "encoding_weight_max":
                             float(enc_w.max()) if len(enc_w) else None})
        return out

    def _neighbourhood(self, rows: list[np.ndarray]) -> list[np.ndarray]:
        """Every design one dimension away from ``rows`` (valid encodings), so the user model can rank more
        candidates than the annealer's few distinct low-energy states."""
        idx, _ = self.enc.bits_to_indices(np.array(rows))
        out = []
        for base in idx:
            for j, b in enumerate(self.enc.blocks):
                for level in range(b.levels):
                    if level != base[j]:
                        nb = base.copy()
                        nb[j] = level
                        out.append(nb)
        return list(self.enc.indices_to_bits(np.array(out))) if out else []

    def _direct_check(self) -> dict[str, Any]:
        """How well the user's model ranked the validated candidates (Spearman correlation model vs twin)."""
        pairs = [(self._direct_energy[k], float(np.mean([e.objective for e in evs if _objective_ok(e)])))
                 for k, evs in self._groups.items() if k in self._direct_energy and any(_objective_ok(e) for e in evs)]
        if len(pairs) < 3:
            return {"validated": len(pairs), "spearman_model_vs_twin": None}
        a = np.array(pairs)
        ranks = np.argsort(np.argsort(a, axis=0), axis=0).astype(float)
        rho = float(np.corrcoef(ranks[:, 0], ranks[:, 1])[0, 1]) if ranks.std(axis=0).min() > 0 else None
        return {"validated": len(pairs), "spearman_model_vs_twin": rho}

    # -- noise check ---------------------------------------------------------------------------
    def _replications(self, n: int) -> list[Candidate]:
        """Extra replications of the incumbent until it has ``noise_replications`` of them."""
        best = self.recommend()
        if best is None:
            return []
        key = self._key_of(best.values)
        have = len(self._groups.get(key, [])) + self._pending.get(key, 0)
        want = min(self.options.noise_replications - have, max(1, n // 2))
        out = []
        for r in range(have, have + max(0, want)):
            self._pending[key] = self._pending.get(key, 0) + 1
            out.append(Candidate(dict(best.values), r, "replication"))
        return out

    def _trace(self) -> list[float]:
        return [float(e.objective) for e in self.history  # type: ignore[arg-type]
                if _objective_ok(e) and e.candidate.replication == 0 and e.feasible]

    # -- report -----------------------------------------------------------------------------------
    def diagnostics(self) -> dict[str, Any]:
        warnings = list(self.enc.warnings())
        out: dict[str, Any] = {
            "mode": "direct" if self.direct else "surrogate",
            "surrogate": self.options.surrogate,
            "encoding": self.enc.report(),
            "n_initial": self.n_initial,
            "annealer": {"num_reads": self.settings.num_reads, "num_sweeps": self.settings.num_sweeps,
                         "beta_range": self.settings.beta_range, "beta_schedule_type": self.settings.beta_schedule_type,
                         "postprocess": self.settings.postprocess},
            "iterations": self.records,
            "model_batches_on_twin": self.batch_outcomes,
            "duplicates": dict(self.counts),
            "timing": {"fit_seconds": self._fit_seconds, "anneal_seconds": self._anneal_seconds,
                       "model_proposals": self._model_proposals,
                       "seconds_per_proposed_point": (self._fit_seconds + self._anneal_seconds)
                       / max(self._model_proposals, 1),
                       "twin_seconds": float(sum(e.wall_seconds for e in self.history))},
            "evaluations": {"told": len(self.history), "distinct": len(self._groups),
                            "failed": sum(1 for e in self.history if not e.ok)},
        }
        if self.direct:
            out["direct"] = self._direct_check()
        if self.problem.noisy:
            out["noise"] = noise_report(self._groups, self._trace(), self.options.noise_warn_ratio)
            if out["noise"]["warning"]:
                warnings.append(out["noise"]["warning"])
        if self.records and not self.direct and self.records[-1]["infeasible_sample_share"] > 0.5:
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
        score = 1.0 if card >= 1000 else 0.7
        if problem.noisy:
            score *= 0.8
        return Fit(score, f"discrete/combinatorial space: {card:.3g} configurations in {n_bits} bits suit a "
                          "binary quadratic surrogate with annealing")
