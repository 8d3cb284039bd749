"""The ``fmi-optimizer`` command: the parser, one module per command group, the output helpers.

:func:`main` is imported lazily so that ``fmi_optimizer.cli.output`` (imported by the command modules)
does not pull in the whole command line.
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """The console script ``fmi-optimizer`` (``fmi_optimizer.cli:main``)."""
    from fmi_optimizer.cli.main import main as _main

    return _main(argv)
