"""Uncertainty as a plugin of the host: its study-file section (``[uncertainty]``, and the chance
constraints that need it), its binding to a study problem (the shared sample and the robust aggregation)
and the robustness and Pareto-front sections of the HTML report.

Registered by the host before any other plugin (``fmi_optimizer.host.loader.FEATURES``), so its sections
come right after the report's own "Best" section, as before; the core imports nothing from this feature.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fmi_optimizer.hookspecs import hookimpl
from fmi_optimizer.records import Evaluation
from fmi_optimizer.registry import ProblemBinding, SectionContext, SectionRegistry, StudySection

if TYPE_CHECKING:
    from fmi_optimizer.study.problem import StudyProblem


def _parse(table: Any, context: SectionContext) -> Any:
    if (table is None or table == {}) and all(c.probability is None for c in context.constraints):
        return None  # the common case: no scipy import for studies without uncertainty
    from fmi_optimizer.uncertainty.spec import parse_section

    return parse_section(table, context)


def _runs(spec: Any) -> int:
    return int(spec.runs_per_candidate())


@hookimpl
def fmio_register_sections(registry: SectionRegistry) -> None:
    registry.add(StudySection("uncertainty", _parse, runs_per_candidate=_runs))


@hookimpl
def fmio_bind_problem(problem: StudyProblem) -> ProblemBinding | None:
    if "uncertainty" not in problem.config.features:
        return None
    from fmi_optimizer.uncertainty.layer import RobustBinding, RobustLayer

    return RobustBinding(RobustLayer(problem.config, problem.twin))


@hookimpl
def fmio_report_sections(study: dict[str, Any], result: dict[str, Any],
                         evaluations: list[Evaluation]) -> list[str] | None:
    from fmi_optimizer.uncertainty.sections import extra_sections

    return extra_sections(study, result, evaluations) or None
