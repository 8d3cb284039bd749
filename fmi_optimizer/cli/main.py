"""The ``fmi-optimizer`` command: builds the parser from the built-in and the plugins' commands, runs one.

Each command's options and body live in :mod:`fmi_optimizer.cli.commands` (and in the plugin or feature
that registered it through ``fmio_register_commands``); the shared options in
:mod:`fmi_optimizer.cli.options`.

stdout carries results (tables, or one JSON object with ``--json``); stderr carries
progress and logs. Exit codes come from :mod:`fmi_optimizer.errors`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from fmi_optimizer import __version__
from fmi_optimizer.cli.options import CommandSet, with_overrides
from fmi_optimizer.cli.output import emit_json, log
from fmi_optimizer.errors import ExitCode, FmiOptimizerError, UsageError, error_json


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
        p.set_defaults(handler=cmd.run, command_set=commands)
    return parser


def builtin_commands() -> CommandSet:
    from fmi_optimizer.cli import commands as c
    from fmi_optimizer.cli import dropfolder

    cs = CommandSet()
    cs.add_command("inspect", "show an FMU's parameters, inputs and outputs", c.configure_inspect,
                   c.cmd_inspect)
    cs.add_command("init", "write a commented study-file template for an FMU", c.configure_init, c.cmd_init)
    cs.add_command("optimize", "run the study of a study file", with_overrides(c.configure_study),
                   c.cmd_optimize)
    cs.add_command("run", "optimize every FMU in a folder that has a study file beside it",
                   with_overrides(dropfolder.configure_run), dropfolder.run_folder)
    cs.add_command("compare", "run several methods repeatedly on one study and compare them",
                   with_overrides(c.configure_compare), c.cmd_compare)
    cs.add_command("select", "ranking & selection among the study's [scenarios]",
                   with_overrides(c.configure_study), c.cmd_select)
    cs.add_command("resume", "continue a stopped or killed study from its database", c.configure_resume,
                   c.cmd_resume)
    cs.add_command("apply", "write a parameter set (result JSON) into a new verified FMU", c.configure_apply,
                   c.cmd_apply)
    cs.add_command("report", "write the HTML report of a study database", c.configure_report, c.cmd_report)
    cs.add_command("export", "export a study's evaluations to CSV and JSON", c.configure_report, c.cmd_export)
    cs.add_command("methods", "list registered methods", c.configure_listing, c.cmd_methods)
    cs.add_command("plugins", "list loaded plugins", c.configure_listing, c.cmd_plugins)
    cs.add_command("check", "probe an FMU before optimizing it (X.fmu), or check a calibrated twin for drift "
                   "(STUDY.toml --data new.csv; exit 13 on drift)", with_overrides(c.configure_check),
                   c.cmd_check)
    return cs


def fail(exc: BaseException, as_json: bool) -> int:
    """Report an error: one line on stderr, and with ``--json`` the JSON error object on stdout."""
    data = error_json(exc)
    if as_json:
        emit_json(data)
    log("interrupted" if isinstance(exc, KeyboardInterrupt) else f"error: {exc}")
    return int(exc.exit_code) if isinstance(exc, FmiOptimizerError) else int(
        ExitCode.INTERRUPTED if isinstance(exc, KeyboardInterrupt) else ExitCode.INTERNAL)


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      line: str | None = None) -> str:
    """Warnings as the CLI's other messages: a 'warning: ...' line, not Python's source form; another
    package's keeps its category. Only the text changes: catch_warnings(record=True) still records."""
    ours = "fmi_optimizer" in filename or "fmio_" in filename
    return f"warning: {message}\n" if ours else f"warning: {category.__name__}: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    import warnings

    formatted = warnings.formatwarning
    warnings.formatwarning = _one_line_warning
    try:
        return _main(argv)
    finally:
        warnings.formatwarning = formatted


def _main(argv: Sequence[str] | None) -> int:
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
