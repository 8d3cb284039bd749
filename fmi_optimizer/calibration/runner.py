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

    def run(self, batch: Sequence[Mapping[str, Any]]) -> list[tuple[Evaluation, RunReply]]:
        """Evaluate ``batch``; each evaluation is stored as it finishes (numbered in batch order after the
        study's last), and a run the pool repeated on a fresh instance replaces its stored numbers."""
        t0 = time.perf_counter()
        cands = [Candidate(dict(v), 0, self.tag) for v in batch]
        requests = [self.problem.request(i, c) for i, c in enumerate(cands)]
        started = time.time()
        storing = self.store is not None and self.study_id is not None
        first = self.store.last_seq(self.study_id) + 1 if storing else None
        done: dict[int, tuple[Evaluation, RunReply]] = {}
        for reply in self.evaluator.run(requests):
            i = reply.task_id
            ev = self.problem.evaluation(cands[i], reply, started, time.time())
            if storing:
                if i in done:  # a repeat on a fresh instance: its numbers replace the stored ones
                    ev.id, ev.seq = done[i][0].id, done[i][0].seq
                    self.store.replace_evaluation(ev)
                else:
                    ev.seq = None if first is None else first + i
                    self.store.add_evaluation(self.study_id, self.problem.cache_key(cands[i]), ev)
            done[i] = (ev, reply)
        self.count += len(cands)
        self.seconds += time.perf_counter() - t0
        return [done[i] for i in range(len(cands))]
