"""Uncertainty as a plugin of the host: the robustness and Pareto-front sections of the HTML report.

Registered by the host before any other plugin (``fmi_optimizer.host.loader.FEATURES``), so its sections
come right after the report's own "Best" section, as before; the report imports nothing from this feature.
"""

from __future__ import annotations

from typing import Any

from fmi_optimizer.hookspecs import hookimpl
from fmi_optimizer.records import Evaluation


@hookimpl
def fmio_report_sections(study: dict[str, Any], result: dict[str, Any],
                         evaluations: list[Evaluation]) -> list[str] | None:
    from fmi_optimizer.uncertainty.sections import extra_sections

    return extra_sections(study, result, evaluations) or None
