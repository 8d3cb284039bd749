"""What the commands print: results on stdout (tables, or one JSON object), progress and logs on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any


def log(message: str) -> None:
    """One line of progress or log on stderr (stdout carries only results)."""
    print(message, file=sys.stderr, flush=True)


def emit_json(data: Any) -> None:
    """The ``--json`` result: one indented JSON object on stdout."""
    print(json.dumps(data, indent=2, default=str))
