"""fmio_bayes: Bayesian optimization on GPflow, registered as method ``bayes``.

Importing this package must stay cheap: TensorFlow/GPflow load at the first proposal.
"""

from __future__ import annotations

from typing import Any

from fmi_optimizer.hookspecs import hookimpl

from .method import BayesMethod

__all__ = ["BayesMethod", "fmio_register_methods", "fmio_report_sections"]


@hookimpl
def fmio_register_methods(registry: Any) -> None:
    registry.add(BayesMethod)


@hookimpl
def fmio_report_sections(study: dict[str, Any], result: dict[str, Any]) -> list[str] | None:
    """The surrogate's leave-one-out check, for studies this method ran."""
    if study.get("method") != BayesMethod.name:
        return None
    from .sections import report_sections  # matplotlib only when a bayes report is written

    return report_sections(result)
