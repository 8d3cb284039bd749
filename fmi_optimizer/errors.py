"""One exception hierarchy and the CLI exit codes, defined in one place.

Every error a user can cause is a subclass of :class:`FmiOptimizerError`; its
``exit_code`` is what the CLI returns, and its message is one line that names the
thing at fault and the remedy.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented exit codes of the ``fmi-optimizer`` command (see docs/cli.md)."""

    OK = 0
    INTERNAL = 1
    USAGE = 2
    FMU_INVALID = 3
    FMU_UNSUPPORTED = 4
    STUDY_INVALID = 5
    VALUE_INVALID = 6
    SIMULATION_FAILED = 7
    OUTPUT_UNWRITABLE = 8
    PLUGIN_ERROR = 9
    VERIFICATION_FAILED = 10
    STUDY_FAILED = 11
    INTERRUPTED = 12
    DRIFT_DETECTED = 13
    DATA_INVALID = 14
    CLUSTER_UNREACHABLE = 15
    CLUSTER_LOST = 16


class FmiOptimizerError(Exception):
    """Base of every error fmi_optimizer raises on purpose."""

    exit_code: ExitCode = ExitCode.INTERNAL


class UsageError(FmiOptimizerError):
    """Bad command-line arguments (an unknown option, a flag value out of range, ...)."""

    exit_code = ExitCode.USAGE


class FmuError(FmiOptimizerError):
    """The FMU file is broken: not a zip, no or bad modelDescription.xml, GUID mismatch, ..."""

    exit_code = ExitCode.FMU_INVALID


class FmuUnsupportedError(FmiOptimizerError):
    """The FMU is valid but cannot run here (no binary for this platform and no sources, ...)."""

    exit_code = ExitCode.FMU_UNSUPPORTED


class StudyError(FmiOptimizerError):
    """A study file or study dict is invalid (unknown key, wrong type, ...)."""

    exit_code = ExitCode.STUDY_INVALID


class ValueValidationError(FmiOptimizerError):
    """A candidate value names an unknown variable, is of the wrong type or out of range."""

    exit_code = ExitCode.VALUE_INVALID


class SimulationError(FmiOptimizerError):
    """A simulation failed (instantiate, initialize, doStep) where a single run was requested."""

    exit_code = ExitCode.SIMULATION_FAILED


class OutputError(FmiOptimizerError):
    """An output file or folder cannot be written."""

    exit_code = ExitCode.OUTPUT_UNWRITABLE


class PluginError(FmiOptimizerError):
    """A plugin failed to load, registered a duplicate name, or a method is unknown/unfit."""

    exit_code = ExitCode.PLUGIN_ERROR


class VerificationError(FmiOptimizerError):
    """A written FMU does not reproduce the optimized KPIs."""

    exit_code = ExitCode.VERIFICATION_FAILED


class StudyFailedError(FmiOptimizerError):
    """A study produced no usable evaluation (e.g. the FMU crashed on every candidate)."""

    exit_code = ExitCode.STUDY_FAILED


class DataError(FmiOptimizerError):
    """Measured or input data is invalid (missing column, non-monotonic time, gaps, ...)."""

    exit_code = ExitCode.DATA_INVALID


def error_json(exc: BaseException) -> dict[str, object]:
    """The JSON error object ``--json`` prints on stdout for every error (see docs/cli.md)."""
    code = exc.exit_code if isinstance(exc, FmiOptimizerError) else (
        ExitCode.INTERRUPTED if isinstance(exc, KeyboardInterrupt) else ExitCode.INTERNAL)
    message = str(exc) or type(exc).__name__
    if isinstance(exc, KeyboardInterrupt):
        message = "interrupted; every finished evaluation is stored, 'fmi-optimizer resume DB' continues"
    return {"error": {"type": type(exc).__name__, "exit_code": int(code), "exit_name": ExitCode(code).name,
                      "message": message}}


class ClusterError(FmiOptimizerError):
    """The Dask cluster evaluating the runs is not usable (an infrastructure fault, never the FMU's)."""

    exit_code = ExitCode.CLUSTER_LOST


class ClusterUnreachableError(ClusterError):
    """The Dask scheduler named by ``[evaluation] cluster`` did not answer within the connect timeout."""

    exit_code = ExitCode.CLUSTER_UNREACHABLE


class ClusterLostError(ClusterError):
    """Every Dask worker was lost during a study and none came back in time; the study can be resumed."""

    exit_code = ExitCode.CLUSTER_LOST
