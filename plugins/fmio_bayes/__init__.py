"""fmio_bayes: Bayesian optimization on GPflow, registered as method ``bayes``.

Importing this package must stay cheap: TensorFlow/GPflow load at the first proposal.
"""

from __future__ import annotations

from typing import Any

from fmi_optimizer.hookspecs import hookimpl

from .method import BayesMethod

__all__ = ["BayesMethod"]


@hookimpl
def fmio_register_methods(registry: Any) -> None:
    registry.add(BayesMethod)
