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

from fmi_optimizer import __version__
from fmi_optimizer.errors import ExitCode, FmiOptimizerError, UsageError, error_json


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


def _integer(minimum: int, what: str) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum`` (a bad value is a usage error, exit 2)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer; give {what}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is too small; give {what}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: give a finite number of seconds >= 0")
    return value


def add_wait(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait", type=_seconds, metavar="SECONDS",
                   help="if another run holds the output folder, wait up to SECONDS for it (default: refuse at "
                        "once, exit 8)")


def _overrides(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", help="method name (overrides [method] name), e.g. qio, bayes, ranking, ga, de, random, auto")
    p.add_argument("--budget", type=_integer(1, "an evaluation budget of at least 1"),
                   help="evaluation budget (overrides [method] budget.evaluations)")
    p.add_argument("--seed", type=_integer(0, "a seed >= 0"), help="random seed (overrides [method] seed)")
    p.add_argument("--workers", type=_integer(0, "0 (one per core) or a number of worker processes"),
                   help="local worker processes (overrides [evaluation] workers; 0: one per core)")
    p.add_argument("--out", type=Path, help="output folder (default: results/<study> beside the study file)")
    p.add_argument("--plugins-dir", type=Path, help="folder of plugin .py files to load")
    add_wait(p)


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError (exit 2) instead of exiting, so ``--json`` can report it as JSON."""

    def error(self, message: str) -> Any:
        raise UsageError(f"{self.prog}: {message}; see '{self.prog} --help'")


def build_parser(commands: CommandSet) -> argparse.ArgumentParser:
    parser = _Parser(prog="fmi-optimizer", description="Optimize digital twins delivered as FMUs.")
    parser.add_argument("--version", action="version", version=f"fmi-optimizer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for cmd in commands.commands.values():
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.configure(p)
        p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        p.set_defaults(handler=cmd.run)
    return parser


def builtin_commands() -> CommandSet:
    from fmi_optimizer.cli import commands as c

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
    from fmi_optimizer.calibration import (
        commands as cal,  # issue 7: calibration to measured data and drift checks
    )

    cs.add_command("calibrate", "fit parameters to measured data ([calibration]); write the calibrated FMU",
                   _with_overrides(cal.configure_calibrate), cal.cmd_calibrate)
    cs.add_command("check", "probe an FMU before optimizing it (X.fmu), or check a calibrated twin for drift "
                   "(STUDY.toml --data new.csv; exit 13 on drift)", _with_overrides(c.configure_check), c.cmd_check)
    return cs


def fail(exc: BaseException, as_json: bool) -> int:
    """Report an error: one line on stderr, and with ``--json`` the JSON error object on stdout."""
    data = error_json(exc)
    if as_json:
        emit_json(data)
    log("interrupted" if isinstance(exc, KeyboardInterrupt) else f"error: {exc}")
    return int(exc.exit_code) if isinstance(exc, FmiOptimizerError) else int(
        ExitCode.INTERRUPTED if isinstance(exc, KeyboardInterrupt) else ExitCode.INTERNAL)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in argv
    commands = builtin_commands()
    try:
        from fmi_optimizer.host.loader import load_host

        host = load_host()
        host.pm.hook.fmio_register_commands(cli=commands)
        parser = build_parser(commands)
        args = parser.parse_args(argv)
        if not getattr(args, "handler", None):
            if as_json:
                raise UsageError("no command given; see 'fmi-optimizer --help'")
            parser.print_help(sys.stderr)
            return int(ExitCode.USAGE)
        return int(args.handler(args))
    except FmiOptimizerError as exc:
        return fail(exc, as_json)
    except KeyboardInterrupt as exc:
        return fail(exc, as_json)
    except Exception as exc:
        if not as_json:
            raise  # a bug: the traceback, exit 1
        import traceback

        traceback.print_exc()
        emit_json(error_json(exc))
        return int(ExitCode.INTERNAL)


if __name__ == "__main__":
    sys.exit(main())
