"""Every hook of the ``fmi_optimizer`` plugin host (pluggy project name ``fmi_optimizer``, prefix ``fmio_``).

A plugin is any module or object with functions decorated by :data:`hookimpl`
and named like the specifications below. Built-in methods are plugins too; they
are found through the same ``fmi_optimizer`` entry-point group a third party uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # the real classes, for readers and type checkers; no run-time import of the layers above
    from fmi_optimizer.cli.options import CommandSet
    from fmi_optimizer.engine.pool import Evaluator
    from fmi_optimizer.fmu.twin import Twin
    from fmi_optimizer.records import Evaluation
    from fmi_optimizer.registry import KpiRegistry, MethodRegistry
    from fmi_optimizer.space import DesignSpace
    from fmi_optimizer.study.loop import Study, StudyResult
    from fmi_optimizer.study.problem import StudyProblem

PROJECT = "fmi_optimizer"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def fmio_register_methods(registry: MethodRegistry) -> None:
    """Add Method classes with ``registry.add(MethodClass)``; a duplicate name is an error."""


@hookspec
def fmio_register_kpis(registry: KpiRegistry) -> None:
    """Add KPI reducers with ``registry.add(name, function)``: ``function(t, y, *args) -> float``."""


@hookspec
def fmio_adjust_design_space(twin: Twin, space: DesignSpace) -> DesignSpace | None:
    """Return a narrowed/pinned/extended design space, or None to leave it. Applied in plugin order."""


@hookspec(firstresult=True)
def fmio_make_evaluator(problem: StudyProblem, options: dict[str, Any]) -> Evaluator | None:
    """Return an evaluator to run the study's simulations, or None to pass; the built-in runs last."""


@hookspec
def fmio_study_started(study: Study) -> None:
    """Called once when a study starts (or resumes), before the first evaluation."""


@hookspec
def fmio_evaluation_finished(study: Study, evaluation: Evaluation) -> None:
    """Called after each evaluation has been stored."""


@hookspec
def fmio_study_finished(study: Study, result: StudyResult) -> None:
    """Called once with the study result when the loop ends (budget, method done, Ctrl-C)."""


@hookspec
def fmio_register_commands(cli: CommandSet) -> None:
    """Add CLI sub-commands: ``cli.add_command(name, help, configure, run)`` (see docs/hooks.md)."""


@hookspec
def fmio_report_sections(
    study: dict[str, Any], result: dict[str, Any], evaluations: list[Evaluation]
) -> list[str] | None:
    """HTML fragments (``<h2>`` heading, tables, ``<img>`` plots) to add to the study's HTML report.

    Called for every plugin when a report is written, from the stored rows only: ``study`` holds ``id``,
    ``name``, ``method`` (the method that ran), ``status``, ``seed``, ``problem`` and ``raw`` (the study
    file); ``result`` is the stored result (``result["diagnostics"]`` = the method's ``diagnostics()``);
    ``evaluations`` the stored Evaluations.  A method plugin answers only when ``study["method"]`` is its
    method and returns None otherwise.  An exception is shown as one line naming the plugin (and warned),
    the rest of the report is still written.
    """
