"""Argument parsing shared by the commands: the command set plugins extend, and the common options."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fmi_optimizer.errors import FmiOptimizerError


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
    study_check: Callable[[argparse.Namespace], int] | None = None
    """What ``check STUDY.toml`` runs (the calibration feature's drift check); ``check X.fmu`` is built in."""

    def add_command(self, name: str, help: str, configure: Callable[[argparse.ArgumentParser], None],
                    run: Callable[[argparse.Namespace], int]) -> None:
        if name in self.commands:
            raise FmiOptimizerError(f"CLI command {name!r} is already defined; choose another name")
        self.commands[name] = Command(name, help, configure, run)

    def set_study_check(self, run: Callable[[argparse.Namespace], int]) -> None:
        """Make ``check STUDY.toml`` run ``run(args)``; one plugin may claim it."""
        if self.study_check is not None:
            raise FmiOptimizerError("'check STUDY.toml' is already handled by another plugin")
        self.study_check = run


def with_overrides(configure: Callable[[argparse.ArgumentParser],
                                       None]) -> Callable[[argparse.ArgumentParser], None]:
    def both(p: argparse.ArgumentParser) -> None:
        configure(p)
        add_overrides(p)

    return both


def integer_at_least(minimum: int, what: str) -> Callable[[str], int]:
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


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: give a finite number of seconds >= 0")
    return value


def add_wait(p: argparse.ArgumentParser) -> None:
    """``--wait SECONDS``: how long to wait for another run holding the output folder."""
    p.add_argument("--wait", type=seconds, metavar="SECONDS",
                   help="if another run holds the output folder, wait up to SECONDS for it (default: refuse "
                   "at "
                        "once, exit 8)")


def add_overrides(p: argparse.ArgumentParser) -> None:
    """The options that override the study file: method, budget, seed, workers, out, plugins."""
    p.add_argument("--method",
                   help="method name (overrides [method] name), e.g. qio, bayes, ranking, ga, de, random, "
                   "auto")
    p.add_argument("--budget", type=integer_at_least(1, "an evaluation budget of at least 1"),
                   help="evaluation budget (overrides [method] budget.evaluations)")
    p.add_argument("--seed", type=integer_at_least(0, "a seed >= 0"),
                   help="random seed (overrides [method] seed)")
    p.add_argument("--workers", type=integer_at_least(0, "0 (one per core) or a number of worker processes"),
                   help="local worker processes (overrides [evaluation] workers; 0: one per core)")
    p.add_argument("--out", type=Path, help="output folder (default: results/<study> beside the study file)")
    p.add_argument("--plugins-dir", type=Path, help="folder of plugin .py files to load")
    add_wait(p)
