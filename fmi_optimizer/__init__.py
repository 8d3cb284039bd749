"""fmi_optimizer: optimize digital twins delivered as FMUs.

Public API for scripts and plugins. The names below are imported lazily (PEP 562) on first use, so that
importing a sub-package (``fmi_optimizer.engine.worker`` in a worker process, a plugin's contract modules)
does not load the study loop, the host, SQLite or pluggy. Heavy libraries (TensorFlow, GPflow, dimod) are
imported only by the method plugins that need them, when they run.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_PUBLIC = {
    "Outcome": "fmi_optimizer.runner.run", "evaluate": "fmi_optimizer.runner.run",
    "optimize": "fmi_optimizer.runner.run",
    "Budget": "fmi_optimizer.study.config", "StudyConfig": "fmi_optimizer.study.config",
    "load_study": "fmi_optimizer.study.config",
    "ExitCode": "fmi_optimizer.errors", "FmiOptimizerError": "fmi_optimizer.errors",
    "hookimpl": "fmi_optimizer.hookspecs",
    "Capabilities": "fmi_optimizer.method", "Fit": "fmi_optimizer.method", "Method": "fmi_optimizer.method",
    "NoOptions": "fmi_optimizer.method", "Problem": "fmi_optimizer.method",
    "Candidate": "fmi_optimizer.records", "Evaluation": "fmi_optimizer.records",
    "SimSettings": "fmi_optimizer.fmu.simulator", "Trajectory": "fmi_optimizer.fmu.simulator",
    "Boolean": "fmi_optimizer.space", "Categorical": "fmi_optimizer.space",
    "Continuous": "fmi_optimizer.space",
    "DesignSpace": "fmi_optimizer.space", "Integer": "fmi_optimizer.space",
    "Study": "fmi_optimizer.study.loop", "StudyResult": "fmi_optimizer.study.loop",
    "Twin": "fmi_optimizer.fmu.twin",
}

__all__ = [
    "Boolean", "Budget", "Candidate", "Capabilities", "Categorical", "Continuous", "DesignSpace",
    "Evaluation", "ExitCode", "Fit", "FmiOptimizerError", "Integer", "Method", "NoOptions", "Outcome",
    "Problem", "SimSettings", "Study", "StudyConfig", "StudyResult", "Trajectory", "Twin", "evaluate",
    "hookimpl", "load_study", "optimize", "__version__",
]

if TYPE_CHECKING:
    from fmi_optimizer.errors import ExitCode, FmiOptimizerError
    from fmi_optimizer.fmu.simulator import SimSettings, Trajectory
    from fmi_optimizer.fmu.twin import Twin
    from fmi_optimizer.hookspecs import hookimpl
    from fmi_optimizer.method import Capabilities, Fit, Method, NoOptions, Problem
    from fmi_optimizer.records import Candidate, Evaluation
    from fmi_optimizer.runner.run import Outcome, evaluate, optimize
    from fmi_optimizer.space import Boolean, Categorical, Continuous, DesignSpace, Integer
    from fmi_optimizer.study.config import Budget, StudyConfig, load_study
    from fmi_optimizer.study.loop import Study, StudyResult


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'fmi_optimizer' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
