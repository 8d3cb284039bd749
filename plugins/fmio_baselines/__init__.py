"""Built-in baseline methods: ``random`` (space-filling random search), ``de`` (differential evolution),
``ga`` (genetic algorithm). Registered through the ``fmi_optimizer`` entry point like any third-party plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fmi_optimizer.hookspecs import hookimpl

from .differential_evolution import DEOptions, DifferentialEvolution
from .genetic import GAOptions, GeneticAlgorithm
from .random_search import RandomOptions, RandomSearch

if TYPE_CHECKING:
    from fmi_optimizer.registry import MethodRegistry

__all__ = [
    "DEOptions", "DifferentialEvolution", "GAOptions", "GeneticAlgorithm", "RandomOptions", "RandomSearch",
    "fmio_register_methods",
]


@hookimpl
def fmio_register_methods(registry: MethodRegistry) -> None:
    """Add the three baselines."""
    registry.add(RandomSearch)
    registry.add(DifferentialEvolution)
    registry.add(GeneticAlgorithm)
