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
        t0 = time.perf_counter()
        cands = [Candidate(dict(v), 0, self.tag) for v in batch]
        requests = [self.problem.request(i, c) for i, c in enumerate(cands)]
        started = time.time()
        replies: dict[int, RunReply] = {}
        for reply in self.evaluator.run(requests):
            replies[reply.task_id] = reply
        out = []
        for i, c in enumerate(cands):
            ev = self.problem.evaluation(c, replies[i], started, time.time())
            if self.store is not None and self.study_id is not None:
                self.store.add_evaluation(self.study_id, self.problem.cache_key(c), ev)
            out.append((ev, replies[i]))
        self.count += len(cands)
        self.seconds += time.perf_counter() - t0
        return out
