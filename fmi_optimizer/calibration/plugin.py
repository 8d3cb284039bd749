"""Calibration as a plugin of the host: its study-file sections (``[inputs]``, ``[calibration]``), its
binding to a study problem (input signals, the loss against measured data) and its CLI commands
(``calibrate``, ``check STUDY.toml --data``).

Registered by the host before any other plugin (``fmi_optimizer.host.loader.FEATURES``), through the
same hooks a third party implements; the core imports nothing from this feature.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fmi_optimizer.hookspecs import hookimpl
from fmi_optimizer.registry import ProblemBinding, SectionContext, SectionRegistry, StudySection

if TYPE_CHECKING:
    from fmi_optimizer.cli.options import CommandSet
    from fmi_optimizer.study.problem import StudyProblem


def _parse_inputs(table: Any, context: SectionContext) -> Any:
    from fmi_optimizer.calibration.settings import parse_inputs

    return parse_inputs(table, context.where, context.base_dir)


def _parse_calibration(table: Any, context: SectionContext) -> Any:
    from fmi_optimizer.calibration.settings import parse_calibration

    return parse_calibration(table, context.where, context.base_dir)


@hookimpl
def fmio_register_sections(registry: SectionRegistry) -> None:
    from fmi_optimizer.calibration.settings import LOSS_KPI

    registry.add(StudySection("inputs", _parse_inputs))  # input signals that drive every run
    # a calibration study minimizes the training loss unless it states an objective
    registry.add(StudySection("calibration", _parse_calibration, default_objective=LOSS_KPI))


@hookimpl
def fmio_bind_problem(problem: StudyProblem) -> ProblemBinding | None:
    from fmi_optimizer.calibration.binding import bind

    return bind(problem)


@hookimpl
def fmio_register_commands(cli: CommandSet) -> None:
    from fmi_optimizer.calibration import commands
    from fmi_optimizer.cli.options import with_overrides

    cli.add_command("calibrate", "fit parameters to measured data ([calibration]); write the calibrated FMU",
                    with_overrides(commands.configure_calibrate), commands.cmd_calibrate)
    cli.set_study_check(commands.cmd_check)
