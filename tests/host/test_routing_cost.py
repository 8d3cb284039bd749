"""Time-aware routing: a model whose own cost would starve a fast twin of evaluations fits poorly."""

from __future__ import annotations

import dataclasses

import pytest

from fmi_optimizer.method import Problem
from fmi_optimizer.space import Continuous, DesignSpace

BASE = Problem(space=DesignSpace([Continuous("x", 0.0, 1.0)]), budget_evaluations=300, batch_size=2,
               budget_seconds=30.0, seconds_per_evaluation=0.0015)


def test_affordable_evaluations_follow_the_time_budget() -> None:
    assert BASE.affordable_evaluations(0.0) == 300  # the evaluation budget binds: 30 s hold 40000 runs
    assert BASE.affordable_evaluations(0.3) == pytest.approx(30 / 0.30075)
    assert BASE.affordable_evaluations(0.3, startup_seconds=10.0) == pytest.approx(20 / 0.30075)
    assert dataclasses.replace(BASE, budget_seconds=None).affordable_evaluations(0.3) is None
    assert dataclasses.replace(BASE, seconds_per_evaluation=None).affordable_evaluations(0.3) is None


def test_model_cost_fit_only_when_the_model_halves_the_evaluations() -> None:
    slow_model = BASE.model_cost_fit(0.3)
    assert slow_model is not None and slow_model.score < 0.1
    assert "~100 points where a model-free method evaluates 300" in slow_model.reason
    assert BASE.model_cost_fit(0.05) is None  # 591 affordable > 300: the model costs nothing that matters
    slow_twin = dataclasses.replace(BASE, seconds_per_evaluation=2.0)  # 1 s per point at 2 workers
    assert slow_twin.model_cost_fit(0.3) is None
    assert dataclasses.replace(BASE, budget_seconds=None).model_cost_fit(5.0) is None
