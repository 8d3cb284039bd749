"""Calibration as a plugin of the host: its CLI commands (``calibrate``, ``check STUDY.toml --data``).

Registered by the host before any other plugin (``fmi_optimizer.host.loader.FEATURES``), through the
same hooks a third party implements; the core imports nothing from this feature for its commands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fmi_optimizer.hookspecs import hookimpl

if TYPE_CHECKING:
    from fmi_optimizer.cli.options import CommandSet


@hookimpl
def fmio_register_commands(cli: CommandSet) -> None:
    from fmi_optimizer.calibration import commands
    from fmi_optimizer.cli.options import with_overrides

    cli.add_command("calibrate", "fit parameters to measured data ([calibration]); write the calibrated FMU",
                    with_overrides(commands.configure_calibrate), commands.cmd_calibrate)
    cli.set_study_check(commands.cmd_check)
