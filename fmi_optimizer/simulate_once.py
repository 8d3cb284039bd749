"""Run one fmpy simulation in this process and print the requested trajectories as JSON.

Write-back verification runs this as ``python -m fmi_optimizer.simulate_once`` so that each FMU is
loaded in a fresh process: no shared-library state, no cached instance and no start value set by an
earlier run can leak into the check. Request (JSON file named by the first argument, or stdin): ``fmu``, ``start_values``, ``outputs``,
``stop_time``, ``output_interval``, optional ``start_time`` and ``relative_tolerance``; always
co-simulation (a written FMU is co-simulation only, so the original runs the same way). Reply (JSON on stdout): ``time`` and
``outputs`` (name -> list of floats); on failure a one-line message on stderr and exit code 1.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def simulate(request: dict[str, Any]) -> dict[str, Any]:
    """Simulate as requested and return the JSON-able reply."""
    from fmpy import read_model_description, simulate_fmu

    from .variables import array_elements, output_column, output_columns

    outputs = list(request["outputs"])
    elements = array_elements(read_model_description(request["fmu"], validate=False))  # FMI 3: y[1] -> (y, 0)
    result = simulate_fmu(
        request["fmu"],
        validate=False,  # validation is reported separately; a picky XML must not fail the comparison
        start_time=request.get("start_time"),
        stop_time=request["stop_time"],
        output_interval=request["output_interval"],
        relative_tolerance=request.get("relative_tolerance"),
        start_values=request.get("start_values") or {},
        output=output_columns(outputs, elements),
        fmi_type="CoSimulation",
    )
    names = result.dtype.names or ()
    return {
        "time": [float(t) for t in result["time"]],
        "outputs": {n: [float(v) for v in output_column(result, n, elements)] for n in outputs
                    if elements.get(n, (n, 0))[0] in names},
    }


def main() -> int:
    """Entry point of ``python -m fmi_optimizer.simulate_once``."""
    try:
        if len(sys.argv) > 1:
            with open(sys.argv[1], encoding="utf-8") as f:
                request = json.load(f)
        else:
            request = json.load(sys.stdin)
        reply = simulate(request)
    except Exception as exc:  # reported to the parent process, which raises a typed error
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{type(exc).__name__}: {message}", file=sys.stderr)
        return 1
    json.dump(reply, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
