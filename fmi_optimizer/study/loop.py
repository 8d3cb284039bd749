"""Study: the ask -> evaluate -> tell loop with budgets, cache, storage, hooks and progress.

A study is deterministic for a given seed, so ``resume`` simply replays it: every
candidate the method asks again is found in the store by its cache key and is
told without simulating; the loop then continues where it stopped.
"""

from __future__ import annotations

import json
import math
import time
import traceback
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fmi_optimizer.engine.pool import Evaluator
from fmi_optimizer.engine.protocol import RunReply
from fmi_optimizer.errors import FmiOptimizerError, PluginError, StudyFailedError
from fmi_optimizer.host.loader import Host
from fmi_optimizer.method import Method
from fmi_optimizer.records import STATUSES, Candidate, Evaluation
from fmi_optimizer.study.config import Budget, ObjectiveTerm, minimized_target, target_text
from fmi_optimizer.study.problem import StudyProblem
from fmi_optimizer.study.storage import Store

STALE_BATCHES = 25  # batches that bring this study nothing new before it stops instead of looping forever
INVALID_GRACE = 10  # invalid proposals a method may make before "mostly invalid" stops it
OBSERVER_HOOKS = ("fmio_study_started", "fmio_evaluation_finished", "fmio_study_finished")


@dataclass
class StudyResult:
    """What a finished (or stopped) study produced."""

    study_id: int
    name: str
    method: str
    best: Evaluation | None
    evaluations: list[Evaluation]
    stopped_because: str
    wall_seconds: float
    routing: str = ""
    diagnostics: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False
    aggregates: list[Evaluation] = field(default_factory=list)  # robust studies: what the method was told
    # what the method did wrong: invalid (out-of-bounds, unknown, missing) proposals, surplus candidates of an
    # ask(n) beyond n; neither was simulated nor charged to the budget
    method_errors: dict[str, Any] = field(default_factory=dict)
    # observer hooks (fmio_study_started/evaluation_finished/study_finished) that raised, by plugin
    observer_errors: dict[str, dict[str, Any]] = field(default_factory=dict)
    # ``pareto = true`` studies: the front, in ``--pick N`` order
    pareto_front: list[Evaluation] | None = None

    def counts(self) -> dict[str, int]:
        """``total``: simulations charged to the budget (cache hits and invalid proposals are not);
        ``invalid``: the method's invalid proposals, never simulated."""
        simulated = [e for e in self.evaluations if e.simulated]
        out = {"total": len(simulated), "cached": sum(1 for e in self.evaluations if e.cached)}
        for s in STATUSES:
            out[s] = sum(1 for e in simulated if e.status == s)
        out["invalid"] = sum(1 for e in self.evaluations if e.status == "invalid")
        return out

    def trace(self) -> list[float | None]:
        """Objective of every evaluation in proposal order (None for failed ones)."""
        return [e.objective if e.ok else None for e in self.evaluations]


class BudgetTracker:
    """Composable stop rules; ``progress()`` is 0..1 for progress bars."""

    def __init__(self, budget: Budget, terms: Sequence[ObjectiveTerm] = ()):
        self.budget = budget
        # the target as stated (a maximized KPI's value to reach) turned into the minimized objective's sense
        self.goal = None if budget.target is None else minimized_target(terms, budget.target)
        self.goal_text = "" if budget.target is None else target_text(terms, budget.target)
        self.start = time.monotonic()
        self.used = 0
        self.best = math.inf
        self.since_improvement = 0
        self.per_run_scores = True  # False in robust studies: best/patience follow the aggregated candidates

    def record(self, ev: Evaluation) -> None:
        self.used += 1
        if self.per_run_scores:
            self.score(ev)

    def seen(self, ev: Evaluation) -> None:
        """A cache hit: free, so neither charged nor counted towards patience, but a better best is the best
        (the progress line once showed a worse best than the study's result)."""
        if self.per_run_scores and ev.feasible and ev.objective is not None and ev.objective < self.best:
            self.best = ev.objective

    def score(self, ev: Evaluation) -> None:
        """Update the best objective and the no-improvement count."""
        if ev.feasible and ev.objective is not None and ev.objective < self.best:
            self.best = ev.objective
            self.since_improvement = 0
        else:
            self.since_improvement += 1

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def remaining_evaluations(self) -> int | None:
        return None if self.budget.evaluations is None else max(0, self.budget.evaluations - self.used)

    def exhausted(self) -> str:
        """Why to stop now ('' to go on)."""
        b = self.budget
        if b.evaluations is not None and self.used >= b.evaluations:
            return f"budget of {b.evaluations} evaluations used"
        if b.seconds is not None and self.elapsed() >= b.seconds:
            return f"time budget of {b.seconds:g} s used"
        if self.goal is not None and self.best <= self.goal:
            return f"target {self.goal_text} reached"
        if b.patience is not None and self.since_improvement >= b.patience:
            return f"no improvement in {b.patience} evaluations"
        return ""

    def progress(self) -> float:
        parts = []
        if self.budget.evaluations:
            parts.append(self.used / self.budget.evaluations)
        if self.budget.seconds:
            parts.append(self.elapsed() / self.budget.seconds)
        return min(1.0, max(parts)) if parts else 0.0


ProgressCallback = Callable[[BudgetTracker, Evaluation], None]


class Study:
    """One study run: problem + method + evaluator + store, emitting hooks as it goes."""

    def __init__(self, problem: StudyProblem, method: Method, evaluator: Evaluator, store: Store, host: Host,
                 study_id: int, batch_size: int, progress: ProgressCallback | None = None, routing: str = ""):
        self.problem = problem
        self.method = method
        self.evaluator = evaluator
        self.store = store
        self.host = host
        self.study_id = study_id
        self.batch_size = max(1, batch_size)
        self.progress = progress
        self.routing = routing
        self.evaluations: list[Evaluation] = []
        self._replay: dict[str, deque[Evaluation]] = {}
        self._memo: dict[str, Evaluation] = {}
        self._told: set[str] = set()  # cache keys this study has told its method
        self._new_cache_hits = 0  # cache hits on candidates this study had not seen yet
        self._task_ids = 0
        self._seq = 0  # the last place in proposal order handed out (each evaluation's seq)
        self._stored_seqs: set[int] = set()  # places stored runs of an earlier session hold (resume)
        self._replay_invalid: dict[str, deque[Evaluation]] = {}  # stored invalid proposals, by their values
        self._by_task: dict[int, tuple[Candidate, float, Evaluation]] = {}  # simulated evaluations by task id
        self.replaced: list[str] = []  # evaluations whose numbers a fresh instance corrected
        self.proposed = 0  # candidates the method proposed and the host took (surplus dropped)
        self.method_errors: dict[str, Any] = {"invalid_candidates": 0, "surplus_candidates": 0, "first": ""}
        self.observer_errors: dict[str, dict[str, Any]] = {}

    def prepare_resume(self) -> int:
        """Load this study's stored evaluations so that re-asked candidates are not simulated again."""
        stored = self.store.evaluations(self.study_id)
        for ev in stored:
            if ev.seq is not None:
                self._stored_seqs.add(ev.seq)
            if ev.status == "invalid":  # an invalid proposal has no cache key
                self._replay_invalid.setdefault(_values_key(ev.candidate), deque()).append(ev)
            else:  # cache hits too: re-asked, they are told again, not stored twice
                self._replay.setdefault(self.problem.cache_key(ev.candidate), deque()).append(ev)
        return len(stored)

    def _next_seq(self) -> int:
        """The next place in proposal order for a new run. A re-asked stored run keeps its own place, so a
        deterministic method's resumed study is numbered as an uninterrupted one; a place a stored run holds
        is never given twice (a method that asks differently after a resume)."""
        self._seq += 1
        while self._seq in self._stored_seqs:
            self._seq += 1
        return self._seq

    def _replayed(self, ev: Evaluation) -> Evaluation:
        self._seq = max(self._seq, ev.seq or 0)
        return ev

    def run(self) -> StudyResult:
        budget = BudgetTracker(self.problem.config.budget, self.problem.config.objective)
        expansion = self.problem.expansion
        budget.per_run_scores = expansion is None
        self._observe("fmio_study_started", study=self)
        stopped, interrupted, stale = "", False, 0
        try:
            while not (stopped := budget.exhausted()):
                if self._call_method("finished", lambda: self.method.finished):
                    stopped = "the method finished"
                    break
                remaining = budget.remaining_evaluations()
                per = 1 if expansion is None else expansion.runs_per_candidate()  # runs one candidate costs
                n = self.batch_size if remaining is None else min(self.batch_size, remaining // per)
                if n == 0:
                    stopped = (f"the remaining {remaining} runs cannot pay for another candidate "
                               f"({per} runs each)")
                    break
                candidates = self._ask(n)
                if not candidates:
                    stopped = "the method has nothing more to ask"
                    break
                used_before, hits_before = budget.used, self._new_cache_hits
                if expansion is None:
                    told = self._evaluate(candidates, budget)
                else:
                    told = expansion.evaluate(candidates, lambda cs: self._evaluate(cs, budget),
                                              budget.remaining_evaluations())
                    for ev in told:
                        budget.score(ev)
                self._call_method("tell", self.method.tell, told)
                self._check_invalid()
                # a cache hit from an earlier study is new to this one (a re-run replays it for free and
                # goes on); only a batch that told the method nothing new counts towards stopping
                progressed = budget.used > used_before or self._new_cache_hits > hits_before
                stale = 0 if progressed else stale + 1
                if stale >= STALE_BATCHES:
                    stopped = (f"the method proposed only candidates this study had already evaluated "
                               f"{STALE_BATCHES} batches in a row")
                    break
        except KeyboardInterrupt:
            stopped, interrupted = "interrupted (Ctrl-C); every finished evaluation is stored", True
            self.evaluator.close()
            # Ctrl-C can land after an evaluation was committed and before it was noted here (the commit is
            # most of the loop's own time): the store is the record of what finished
            self.evaluations = self.store.evaluations(self.study_id)
        result = self._result(stopped, budget, interrupted)
        self._observe("fmio_study_finished", study=self, result=result)
        return result

    # -- the method and observers are plugin code: their failures are attributed, never a raw traceback ----
    def _call_method(self, what: str, call: Callable[..., Any], *args: Any) -> Any:
        """Call the method's ``what``; an exception (any but Ctrl-C) becomes a PluginError naming the
        plugin."""
        try:
            return call(*args)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            raise PluginError(self._method_failed(f"raised in {what}", exc)) from exc

    def _method_failed(self, what: str, exc: BaseException | None = None, detail: str = "") -> str:
        where = ""
        if exc is not None:
            frames = traceback.extract_tb(exc.__traceback__)
            if frames:
                where = f" (at {frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name})"
            detail = f"{type(exc).__name__}: {' '.join(str(exc).split())}{where}"
        return (f"method {self.method.name!r} of {self.host.method_origin(self.method.name)} {what}: "
                f"{detail}; {self._stored_hint()}")

    def _stored_hint(self) -> str:
        simulated = sum(1 for e in self.evaluations if e.status != "invalid")
        invalid = len(self.evaluations) - simulated
        return (f"the study is marked failed with its {simulated} finished evaluations stored"
                + (f" (and {invalid} invalid proposals)" if invalid else "") + "; "
                f"fix the method and continue with 'fmi-optimizer resume {self.store.path}'")

    def _ask(self, n: int) -> list[Candidate]:
        """The method's next candidates, checked: at most ``n`` (the surplus is dropped with a warning)."""
        got = self._call_method("ask", self.method.ask, n)
        try:
            candidates = [] if got is None else list(got)
        except Exception as exc:
            raise PluginError(self._method_failed("returned from ask()", exc)) from exc
        wrong = [c for c in candidates if not isinstance(c, Candidate)]
        if wrong:
            raise PluginError(self._method_failed("returned from ask()", detail=(
                f"{type(wrong[0]).__name__} {wrong[0]!r:.80} where a fmi_optimizer.Candidate belongs")))
        if len(candidates) > n:
            if not self.method_errors["surplus_candidates"]:
                warnings.warn(f"method {self.method.name!r} of {self.host.method_origin(self.method.name)} "
                              f"returned {len(candidates)} candidates for ask({n}); the host evaluates the "
                              f"first {n} and drops the rest (not simulated, not told): a method returns at "
                              "most n",
                              RuntimeWarning,
                              stacklevel=2)
            self.method_errors["surplus_candidates"] += len(candidates) - n
            candidates = candidates[:n]
        self.proposed += len(candidates)
        for cand in candidates:  # counted once per proposal (a robust study runs each over its scenarios)
            try:
                self.problem.space.validate(cand.values)
            except FmiOptimizerError as exc:
                self.method_errors["invalid_candidates"] += 1
                self.method_errors["first"] = self.method_errors["first"] or f"{cand.values}: {exc}"
        return candidates

    def _check_invalid(self) -> None:
        """Stop a method whose proposals are mostly invalid: it would only burn time."""
        bad = self.method_errors["invalid_candidates"]
        if bad >= INVALID_GRACE and 2 * bad > self.proposed:
            raise PluginError(self._method_failed("proposes mostly invalid candidates", detail=(
                f"{bad} of its {self.proposed} candidates were outside the design space (first: "
                f"{self.method_errors['first']}); build candidates with problem.space.from_unit() or "
                "validate()")))

    def _observe(self, hook: str, **kwargs: Any) -> None:
        """Call every plugin's observer hook on its own: one that raises is warned once per plugin and
        counted in ``observer_errors``; the study goes on."""
        for impl in getattr(self.host.pm.hook, hook).get_hookimpls():
            try:
                impl.function(**{a: kwargs[a] for a in impl.argnames if a in kwargs})
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # an observer's bug must not end a study
                text = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
                record = self.observer_errors.setdefault(impl.plugin_name,
                                                         {"count": 0, "hooks": {}, "first": text})
                record["count"] += 1
                record["hooks"][hook] = record["hooks"].get(hook, 0) + 1
                if record["count"] == 1:
                    warnings.warn(f"observer hook {hook} of plugin {impl.plugin_name!r} failed: {text}; its "
                                  "further failures in this study are counted in observer_errors, the study "
                                  "goes on",
                                  RuntimeWarning, stacklevel=2)

    def _evaluate(self, candidates: Sequence[Candidate], budget: BudgetTracker) -> list[Evaluation]:
        """Evaluate one batch: replay/cache first, simulate the rest in parallel, store each at once."""
        results: list[Evaluation | None] = [None] * len(candidates)
        pending: dict[int, tuple[int, Candidate, str, float, int]] = {}
        requests = []
        first = len(self.evaluations)
        for i, cand in enumerate(candidates):
            try:
                key = self.problem.cache_key(cand)
            except FmiOptimizerError as exc:  # the method asked for an invalid candidate (counted in _ask):
                again = self._replay_invalid.get(_values_key(cand))
                if again:
                    results[i] = told = self._replayed(again.popleft())
                    self._note(told, budget, count=False)
                    continue
                invalid = Evaluation(cand, "invalid", error=str(exc), seq=self._next_seq())
                results[i] = self._finish(invalid, "", budget, count=False)  # told, not simulated or charged
                continue
            unseen = key not in self._told
            self._told.add(key)
            if key in self._replay and self._replay[key]:
                ev = self._replayed(self._replay[key].popleft())
                if ev.cached and ev.ok and self.problem.kpi_names() <= set(ev.kpis):
                    self.problem.score(ev, dict(ev.kpis))  # a hit stored before hits were scored here
                results[i] = ev
                self._new_cache_hits += unseen and ev.cached
                self._note(ev, budget, count=not ev.cached)
                continue
            hit = self._memo.get(key) or self.store.lookup(key)
            if hit is not None and hit.ok and not self.problem.kpi_names() <= set(hit.kpis):
                hit = None  # the same run under other KPI names (the key holds expressions): run it again
            if hit is not None:
                self._new_cache_hits += unseen
                cached = _as_cached(hit, cand)
                if cached.ok:  # the run is shared, the scoring is this study's: its own objective and limits
                    self.problem.score(cached, dict(hit.kpis))
                cached.seq = self._next_seq()
                results[i] = self._finish(cached, key, budget, count=False)
                continue
            self._task_ids += 1
            pending[self._task_ids] = (i, cand, key, time.time(), self._next_seq())
            requests.append(self.problem.request(self._task_ids, cand))
        for reply in self.evaluator.run(requests):
            if reply.rerun:
                self._correct(reply)
                continue
            i, cand, key, started, seq = pending.pop(reply.task_id)
            ev = self.problem.evaluation(cand, reply, started, time.time())
            ev.seq = seq
            results[i] = self._finish(ev, key, budget, count=True)
            self._by_task[reply.task_id] = (cand, started, ev)
        # workers finish in any order; the study's record keeps the order the runs were handed out
        self.evaluations[first:] = sorted(self.evaluations[first:], key=lambda e: e.seq or 0)
        return [r for r in results if r is not None]

    def _correct(self, reply: RunReply) -> None:
        """A run repeated on a fresh instance replaces the stored evaluation in place (every reference to it,
        the batch about to be told included, sees the fresh numbers), and so do the cache hits copied from it;
        no budget is spent on it. The method and observers that already saw the old numbers are not told
        again."""
        known = self._by_task.get(reply.task_id)
        if known is None:  # a run this study did not ask for (the baseline is a worker's first, fresh, run)
            return
        cand, started, ev = known
        fresh = self.problem.evaluation(cand, reply, started, time.time())
        key = self.problem.cache_key(cand)
        copies = [e for e in self.evaluations if e.cached and self.problem.cache_key(e.candidate) == key]
        before = (ev.status, ev.kpis, ev.objective, ev.constraints)
        for target in [ev, *copies]:
            target.take_outcome(fresh, keep_timing=target.cached)
            self.store.replace_evaluation(target)
        if before != (ev.status, ev.kpis, ev.objective, ev.constraints):
            self.replaced.append(f"evaluation #{ev.seq}: {before[0]} objective {before[2]} -> {ev.status} "
                                 "objective "
                                 f"{ev.objective}" + (f" (and {len(copies)} cache hits)" if copies else ""))

    def _finish(self, ev: Evaluation, key: str, budget: BudgetTracker, count: bool) -> Evaluation:
        self.store.add_evaluation(self.study_id, key, ev)  # stored before anything else can go wrong
        if key and ev.status in ("ok", "failed") and not ev.cached:
            self._memo[key] = ev
        self._note(ev, budget, count)
        self._observe("fmio_evaluation_finished", study=self, evaluation=ev)
        return ev

    def _note(self, ev: Evaluation, budget: BudgetTracker, count: bool) -> None:
        self.evaluations.append(ev)
        if count:
            budget.record(ev)
        elif ev.cached:
            budget.seen(ev)
        if self.progress is not None:
            self.progress(budget, ev)

    def _result(self, stopped: str, budget: BudgetTracker, interrupted: bool) -> StudyResult:
        self.evaluations.sort(key=lambda e: e.seq or 0)  # a batch cut short by Ctrl-C was not sorted yet
        best = self._best()
        if best is None and not interrupted and self.evaluations:
            errors = sorted({e.error for e in self.evaluations if e.error})[:3]
            raise StudyFailedError(
                f"study {self.problem.config.name!r}: none of {len(self.evaluations)} evaluations succeeded "
                f"(first errors: {'; '.join(errors) or 'none'}); check the FMU and the parameter ranges")
        diagnostics = _safe_diagnostics(self.method)
        expansion = self.problem.expansion
        if expansion is not None:
            diagnostics["uncertainty"] = expansion.summary(best)
        aggregates = list(expansion.aggregates) if expansion is not None else []
        pareto_front = None
        if self.problem.config.pareto:
            from fmi_optimizer.study.pareto import front, study_key

            pareto_front = front(aggregates or self.evaluations, study_key(self.problem.config))
        method_errors = dict(self.method_errors) if self.method_errors["invalid_candidates"] or \
            self.method_errors["surplus_candidates"] else {}
        return StudyResult(self.study_id, self.problem.config.name, self.method.name, best, self.evaluations,
                           stopped, budget.elapsed(), self.routing, diagnostics, interrupted, aggregates,
                           method_errors, self.observer_errors, pareto_front)

    def _best(self) -> Evaluation | None:
        """The method's recommendation, as its best evaluation (mean over replications for noisy twins)."""
        rec = self._call_method("recommend", self.method.recommend)
        if rec is None:
            return None
        if self.problem.expansion is not None:
            return self.problem.expansion.best_for(rec.values)
        same = [e for e in self.evaluations if e.ok and e.values == rec.values]
        if not same:
            return None
        if len(same) == 1:
            return same[0]
        return _mean_evaluation(same)


def _values_key(cand: Candidate) -> str:
    return json.dumps([cand.values, cand.replication, cand.tag], sort_keys=True, default=str)


def _as_cached(hit: Evaluation, cand: Candidate) -> Evaluation:
    return Evaluation(cand, hit.status, dict(hit.kpis), hit.objective, hit.objectives, hit.constraints,
                      hit.error,
                      0.0, 0.0, hit.worker, hit.seed, time.time(), time.time(), True)


def _mean_evaluation(evs: Sequence[Evaluation]) -> Evaluation:
    """Average KPIs/objective/constraints over replications of one candidate."""
    n = len(evs)
    kpis = {k: sum(e.kpis[k] for e in evs) / n for k in evs[0].kpis}
    objs = tuple(sum(e.objectives[i] for e in evs) / n for i in range(len(evs[0].objectives)))
    cons = tuple(sum(e.constraints[i] for e in evs) / n for i in range(len(evs[0].constraints)))
    objective = sum(e.objective for e in evs if e.objective is not None) / n
    first = evs[0]
    return Evaluation(Candidate(dict(first.values), 0, first.candidate.tag), "ok", kpis, objective, objs,
                      cons,
                      f"mean of {n} replications", sum(e.wall_seconds for e in evs),
                      sum(e.cpu_seconds for e in evs),
                      first.worker, None, first.started, evs[-1].finished, False, first.id, first.seq)


def _safe_diagnostics(method: Method) -> dict[str, Any]:
    try:
        return dict(method.diagnostics())
    except Exception as exc:  # diagnostics are for the report; their failure is reported, not fatal
        return {"error": f"{type(exc).__name__}: {exc}"}
