"""One whole study end to end: twin, problem, routing, loop, write-back and report."""
