"""The progress line states the best objective the way the study file states it."""

from __future__ import annotations

import io

from fmi_optimizer.cli.terminal import ProgressBar
from fmi_optimizer.records import Candidate, Evaluation
from fmi_optimizer.study.config import Budget, ObjectiveTerm, stated_objective
from fmi_optimizer.study.loop import BudgetTracker


def _line(terms: tuple[ObjectiveTerm, ...], objective: float) -> str:
    out = io.StringIO()
    bar = ProgressBar("line", stream=out, terms=terms)
    tracker = BudgetTracker(Budget(evaluations=1))
    ev = Evaluation(candidate=Candidate({"x": 1.0}), status="ok", objective=objective)
    tracker.record(ev)
    bar(tracker, ev)
    return out.getvalue()


def test_a_single_maximized_kpi_is_shown_in_its_own_sense() -> None:
    assert "best throughput 55.3 " in _line((ObjectiveTerm("throughput", "maximize", 2.0),), -110.6)
    assert "best 17.5 " in _line((ObjectiveTerm("cost", "minimize"), ObjectiveTerm("mass", "minimize", 10.0)), 17.5)
    assert stated_objective((ObjectiveTerm("cost", "minimize"),), 3.0) == ("objective", 3.0)
