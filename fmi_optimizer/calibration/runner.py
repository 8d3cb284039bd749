"""Run parameter sets through the study's evaluator outside the method loop (refinement, Jacobians,
checks), storing every evaluation in the study database like any other."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from fmi_optimizer.engine.worker import RunReply
from fmi_optimizer.records import Candidate, Evaluation


class Runner:
    """Batches of value dicts -> (Evaluation, RunReply), stored with the problem's cache key."""

    def __init__(self, problem: Any, evaluator: Any, store: Any = None, study_id: int | None = None,
                 tag: str = ""):
        self.problem, self.evaluator, self.store = problem, evaluator, store
        self.study_id, self.tag = study_id, tag
        self.count = 0
        self.seconds = 0.0
        self._tasks = 0  # task ids run on across batches: the pool may repeat a run of an earlier batch
        self._by_task: dict[int, tuple[Candidate, float, Evaluation]] = {}

    def run(self, batch: Sequence[Mapping[str, Any]]) -> list[tuple[Evaluation, RunReply]]:
        """Evaluate ``batch``; each evaluation is stored as it finishes (numbered in batch order after the
        study's last), and a run the pool repeated on a fresh instance replaces its stored numbers."""
        t0 = time.perf_counter()
        cands = [Candidate(dict(v), 0, self.tag) for v in batch]
        ids = list(range(self._tasks + 1, self._tasks + 1 + len(cands)))
        self._tasks += len(cands)
        requests = [self.problem.request(t, c) for t, c in zip(ids, cands, strict=True)]
        started = time.time()
        storing = self.store is not None and self.study_id is not None
        first = self.store.last_seq(self.study_id) + 1 if storing else 0
        done: dict[int, tuple[Evaluation, RunReply]] = {}
        for reply in self.evaluator.run(requests):
            t = reply.task_id
            if reply.rerun:  # a run (of this batch or an earlier one) repeated on a fresh instance
                known = self._by_task.get(t)
                if known is None:
                    continue
                cand, began, old = known
                old.take_outcome(self.problem.evaluation(cand, reply, began, time.time()))
                if storing:
                    self.store.replace_evaluation(old)
                if t in done:
                    done[t] = (old, reply)
                continue
            i = t - ids[0]
            ev = self.problem.evaluation(cands[i], reply, started, time.time())
            if storing:
                ev.seq = first + i
                self.store.add_evaluation(self.study_id, self.problem.cache_key(cands[i]), ev)
            self._by_task[t] = (cands[i], started, ev)
            done[t] = (ev, reply)
        self.count += len(cands)
        self.seconds += time.perf_counter() - t0
        return [done[t] for t in ids]
