"""fmio_qio: the ``qio`` method — binary encodings of the design space, a second-order surrogate (BOCS
horseshoe or factorization machine) and simulated annealing from dwave-samplers, or a user-given BQM."""

from __future__ import annotations

from typing import Any

from fmi_optimizer.hookspecs import hookimpl

from .method import QioMethod, QioOptions

__all__ = ["QioMethod", "QioOptions", "fmio_register_methods"]


@hookimpl
def fmio_register_methods(registry: Any) -> None:
    """Register the ``qio`` method."""
    registry.add(QioMethod)
