"""Built-in ranking & selection plugin: the ``ranking`` method and the :func:`select_best` function."""

from __future__ import annotations

from typing import Any

from fmi_optimizer.hookspecs import hookimpl
from fmi_optimizer.registry import MethodRegistry

from .api import Selection, select_best
from .method import RankingMethod
from .options import RankingOptions

__all__ = ["RankingMethod", "RankingOptions", "Selection", "select_best", "fmio_register_methods",
           "fmio_report_sections"]


@hookimpl
def fmio_register_methods(registry: MethodRegistry) -> None:
    """Register the ``ranking`` method."""
    registry.add(RankingMethod)


@hookimpl
def fmio_report_sections(
    study: dict[str, Any], result: dict[str, Any], evaluations: list[Any]
) -> list[str] | None:
    """The report's ranking sections (selection, scenario table, intervals, elimination history)."""
    if study.get("method") != RankingMethod.name:
        return None
    from .sections import report_sections  # matplotlib only when a ranking report is written

    return report_sections(study, result, evaluations)
