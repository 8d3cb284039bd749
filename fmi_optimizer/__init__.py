"""fmi_optimizer: optimize digital twins delivered as FMUs.

Public API for scripts and plugins. Heavy libraries (TensorFlow, GPflow, dimod) are
imported only by the method plugins that need them, when they run.
"""

from __future__ import annotations

from .api import Outcome, evaluate, optimize
from .config import Budget, StudyConfig, load_study
from .errors import ExitCode, FmiOptimizerError
from .hookspecs import hookimpl
from .method import Capabilities, Fit, Method, NoOptions, Problem
from .records import Candidate, Evaluation
from .simulator import SimSettings, Trajectory
from .space import Boolean, Categorical, Continuous, DesignSpace, Integer
from .study import Study, StudyResult
from .twin import Twin

__version__ = "0.1.0"

__all__ = [
    "Boolean", "Budget", "Candidate", "Capabilities", "Categorical", "Continuous", "DesignSpace", "Evaluation",
    "ExitCode", "Fit", "FmiOptimizerError", "Integer", "Method", "NoOptions", "Outcome", "Problem", "SimSettings",
    "Study", "StudyConfig", "StudyResult", "Trajectory", "Twin", "evaluate", "hookimpl", "load_study", "optimize",
    "__version__",
]
