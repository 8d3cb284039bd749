"""Restarts: a fresh search when the incumbent stops improving (``restart_after``, 50 by default; 0 = never).

A stalled run sits at a design every draw of the model ranks best, often a true local optimum several
variables from the optimum, with most of its data around it. After ``restart_after`` evaluations without a
better incumbent, a *fresh search* starts: a new space-filling design (far from everything evaluated), then
model steps whose surrogates learn only from the fresh search's own designs and whose neighbourhood is that of
the fresh search's own best design. It ends when it finds a design better than the run's incumbent (the run goes
back to learning from everything) or when it stalls in turn (another fresh search starts). Designs already
evaluated are never proposed again, and the run always recommends its overall best.
"""

from __future__ import annotations

from collections.abc import Sequence

from fmi_optimizer.method import best_candidate
from fmi_optimizer.records import Candidate, Evaluation

from .book import objective_ok


def _rank(e: Evaluation) -> tuple[float, float] | None:
    """Feasibility first (the violation), then the objective; ``None`` for what cannot rank."""
    if not objective_ok(e) or e.candidate.replication != 0:
        return None
    return (float(e.violation()), float(e.objective))  # type: ignore[arg-type]


class Restarts:
    """Counts evaluations without improvement and holds the current fresh search, if any."""

    def __init__(self, after: int):
        self.after = after
        self.keys: set[bytes] | None = None  # designs asked by the current fresh search (None: no fresh search)
        self.history: list[Evaluation] = []  # the current fresh search's evaluations
        self.best: tuple[float, float] | None = None  # the run's incumbent
        self.own_best: tuple[float, float] | None = None  # the fresh search's incumbent
        self.stall = 0
        self.started = 0  # fresh searches started
        self.won = 0  # fresh searches that found a better incumbent

    @property
    def active(self) -> bool:
        return self.keys is not None

    def asked(self, key: bytes) -> None:
        if self.keys is not None:
            self.keys.add(key)

    def told(self, evaluations: Sequence[Evaluation], keys: Sequence[bytes]) -> None:
        for e, key in zip(evaluations, keys, strict=True):
            r = _rank(e)
            better = r is not None and (self.best is None or r < self.best)
            if better:
                self.best = r
            if self.keys is None:
                if r is not None:
                    self.stall = 0 if better else self.stall + 1
                if self.after and self.stall >= self.after:
                    self._start()
                continue
            if key not in self.keys or r is None:
                continue
            self.history.append(e)
            if better:  # the fresh search beat the run's incumbent: learn from everything again
                self.keys, self.history, self.stall = None, [], 0
                self.won += 1
                continue
            own_better = self.own_best is None or r < self.own_best
            self.own_best = r if own_better else self.own_best
            self.stall = 0 if own_better else self.stall + 1
            if self.stall >= self.after:
                self._start()

    def _start(self) -> None:
        self.keys, self.history, self.own_best, self.stall = set(), [], None, 0
        self.started += 1

    def incumbent(self) -> Candidate | None:
        """The fresh search's best design (``None`` outside one or before it has a result)."""
        return best_candidate(self.history) if self.keys is not None else None

    def report(self) -> dict[str, int | bool]:
        return {"after": self.after, "started": self.started, "won": self.won, "active": self.active}
