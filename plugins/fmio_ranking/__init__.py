"""Built-in ranking & selection plugin: the ``ranking`` method and the :func:`select_best` function."""

from __future__ import annotations

from fmi_optimizer.hookspecs import hookimpl
from fmi_optimizer.registry import MethodRegistry

from .api import Selection, select_best
from .method import RankingMethod
from .options import RankingOptions

__all__ = ["RankingMethod", "RankingOptions", "Selection", "select_best", "fmio_register_methods"]


@hookimpl
def fmio_register_methods(registry: MethodRegistry) -> None:
    """Register the ``ranking`` method."""
    registry.add(RankingMethod)
