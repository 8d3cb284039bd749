"""Terminal output: aligned tables on stdout and a progress line on stderr."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from fmi_optimizer.records import Evaluation
from fmi_optimizer.study.config import ObjectiveTerm, stated_objective
from fmi_optimizer.study.loop import BudgetTracker


def fmt(x: Any) -> str:
    """Numbers with 6 significant digits, everything else as text."""
    if isinstance(x, bool) or x is None:
        return "-" if x is None else str(x).lower()
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    cells = [[fmt(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)), file=out)


class ProgressBar:
    """``[#####.....] 42/100 best 1.234 failed 2`` on stderr, redrawn in place on a TTY."""

    def __init__(self, label: str, stream: TextIO | None = None, min_interval: float = 0.2,
                 terms: Sequence[ObjectiveTerm] = ()):
        self.label = label
        self.terms = terms  # the study's objective: a single maximized KPI is shown as the user stated it
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.min_interval = min_interval if self.tty else 5.0
        self.last = 0.0
        self.failed = 0
        self.invalid = 0  # the method's invalid proposals (method errors; never simulated)
        self.count = 0
        self.open_line = False  # a redrawn line is on the terminal without its newline yet

    def __call__(self, budget: BudgetTracker, ev: Evaluation) -> None:
        self.count += 1
        if ev.status == "invalid":
            self.invalid += 1
        elif not ev.ok:
            self.failed += 1
        now = time.monotonic()
        if now - self.last < self.min_interval and budget.progress() < 1.0:
            return
        self.last = now
        frac = budget.progress()
        bar = "#" * int(frac * 24) + "." * (24 - int(frac * 24))
        what, best = stated_objective(self.terms, budget.best)
        shown = "-" if budget.best == float("inf") else f"{best:.6g}"
        what = "" if what == "objective" else f" {what}"
        invalid = f"  invalid proposals {self.invalid}" if self.invalid else ""
        line = (f"{self.label} [{bar}] {budget.used} evals  best{what} {shown}  failed "
                f"{self.failed}{invalid}  {budget.elapsed():.0f}s")
        if self.tty:
            print("\r" + line, end="", file=self.stream, flush=True)
            self.open_line = True
        else:
            print(line, file=self.stream, flush=True)

    def end_line(self) -> None:
        """End the redrawn line, so the next message starts on a line of its own."""
        if self.open_line:
            print(file=self.stream, flush=True)
            self.open_line = False

    def interrupting(self, log: Callable[[str], None]) -> Callable[[str], None]:
        """``log`` that first ends the progress line (a message never lands at the end of the bar)."""
        def both(message: str) -> None:
            self.end_line()
            log(message)

        return both

    def close(self) -> None:
        self.end_line()
