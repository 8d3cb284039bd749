"""The ``fmi-optimizer`` command: every sub-command parses its arguments here and calls the API.

stdout carries results (tables, or one JSON object with ``--json``); stderr carries
progress and logs. Exit codes come from :mod:`fmi_optimizer.errors`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .errors import ExitCode, FmiOptimizerError


@dataclass
class Command:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


@dataclass
class CommandSet:
    """What ``fmio_register_commands(cli)`` receives: plugins add sub-commands with ``add_command``."""

    commands: dict[str, Command] = field(default_factory=dict)

    def add_command(self, name: str, help: str, configure: Callable[[argparse.ArgumentParser], None],
                    run: Callable[[argparse.Namespace], int]) -> None:
        if name in self.commands:
            raise FmiOptimizerError(f"CLI command {name!r} is already defined; choose another name")
        self.commands[name] = Command(name, help, configure, run)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def emit_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _with_overrides(configure: Callable[[argparse.ArgumentParser], None]) -> Callable[[argparse.ArgumentParser], None]:
    def both(p: argparse.ArgumentParser) -> None:
        configure(p)
        _overrides(p)

    return both


def _overrides(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", help="method name (overrides [method] name), e.g. qio, bayes, ranking, ga, de, random, auto")
    p.add_argument("--budget", type=int, help="evaluation budget (overrides [method] budget.evaluations)")
    p.add_argument("--seed", type=int, help="random seed (overrides [method] seed)")
    p.add_argument("--workers", type=int, help="local worker processes (overrides [evaluation] workers)")
    p.add_argument("--out", type=Path, help="output folder (default: results/<study> beside the study file)")
    p.add_argument("--plugins-dir", type=Path, help="folder of plugin .py files to load")


def build_parser(commands: CommandSet) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fmi-optimizer", description="Optimize digital twins delivered as FMUs.")
    parser.add_argument("--version", action="version", version=f"fmi-optimizer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in commands.commands.values():
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.configure(p)
        p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        p.set_defaults(handler=cmd.run)
    return parser


def builtin_commands() -> CommandSet:
    from . import commands as c

    cs = CommandSet()
    cs.add_command("inspect", "show an FMU's parameters, inputs and outputs", c.configure_inspect, c.cmd_inspect)
    cs.add_command("init", "write a commented study-file template for an FMU", c.configure_init, c.cmd_init)
    cs.add_command("optimize", "run the study of a study file", _with_overrides(c.configure_study),
                   c.cmd_optimize)
    cs.add_command("run", "optimize every FMU in a folder that has a study file beside it",
                   _with_overrides(c.configure_run), c.cmd_run)
    cs.add_command("compare", "run several methods repeatedly on one study and compare them",
                   _with_overrides(c.configure_compare), c.cmd_compare)
    cs.add_command("select", "ranking & selection among the study's [scenarios]",
                   _with_overrides(c.configure_study), c.cmd_select)
    cs.add_command("resume", "continue a stopped or killed study from its database", c.configure_resume, c.cmd_resume)
    cs.add_command("apply", "write a parameter set (result JSON) into a new verified FMU", c.configure_apply,
                   c.cmd_apply)
    cs.add_command("report", "write the HTML report of a study database", c.configure_report, c.cmd_report)
    cs.add_command("export", "export a study's evaluations to CSV and JSON", c.configure_report, c.cmd_export)
    cs.add_command("methods", "list registered methods", c.configure_listing, c.cmd_methods)
    cs.add_command("plugins", "list loaded plugins", c.configure_listing, c.cmd_plugins)
    from .calibration import commands as cal  # issue 7: calibration to measured data and drift checks

    cs.add_command("calibrate", "fit parameters to measured data ([calibration]); write the calibrated FMU",
                   _with_overrides(cal.configure_calibrate), cal.cmd_calibrate)
    cs.add_command("check", "probe an FMU before optimizing it (X.fmu), or check a calibrated twin for drift "
                   "(STUDY.toml --data new.csv; exit 13 on drift)", _with_overrides(c.configure_check), c.cmd_check)
    return cs


def main(argv: Sequence[str] | None = None) -> int:
    commands = builtin_commands()
    try:
        from .plugins import load_host

        host = load_host()
        host.pm.hook.fmio_register_commands(cli=commands)
    except FmiOptimizerError as exc:
        log(f"error: {exc}")
        return int(exc.exit_code)
    parser = build_parser(commands)
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return int(ExitCode.USAGE)
    try:
        return int(args.handler(args))
    except FmiOptimizerError as exc:
        log(f"error: {exc}")
        return int(exc.exit_code)
    except KeyboardInterrupt:
        log("interrupted")
        return int(ExitCode.INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
