"""Run one simulation in this process (fmpy or libcosim) and write the requested trajectories as JSON.

Write-back verification runs this as ``python -m fmi_optimizer.fmu.simulate_once REQUEST.json`` so that each
FMU is loaded in a fresh process: no shared-library state, no cached instance and no start value set by
an earlier run can leak into the check.

Request (JSON file named by the first argument): ``fmu``, ``outputs``, ``stop_time``,
``output_interval``, optional ``start_values``, ``start_time``, ``relative_tolerance``, ``importer``
(``"fmpy"``, the default, or ``"libcosim"``), ``types`` (output name -> Real/Integer/Boolean, for
libcosim), ``start_types`` (start value name -> Real/Integer/Boolean/String, for libcosim) and ``reply``
(path of the reply file). Always co-simulation.

Reply: ``time`` and ``outputs`` (name -> list of floats), ``log`` (what the FMU and the importer wrote to
stdout/stderr, bounded) and, on failure, ``error``. Everything native code prints goes to fds 1 and 2,
which are redirected into the log while the FMU is loaded and simulated (:mod:`fmi_optimizer.fmu.fd_capture`),
so FMU chatter can never corrupt the reply: the reply goes to the ``reply`` file (or, without one, to a
duplicate of the original stdout taken before the FMU was loaded). Exit code 0 on success, 1 on failure
(with a one-line message on the original stderr).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from fmi_optimizer.fmu.fd_capture import capture_fds

LOG_LIMIT = 64 * 1024


def simulate(request: dict[str, Any]) -> dict[str, Any]:
    """Simulate with fmpy as requested and return the JSON-able reply (time and numeric outputs)."""
    from fmpy import read_model_description, simulate_fmu

    from fmi_optimizer.fmu.variables import array_elements, output_column, output_columns

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


def simulate_libcosim(request: dict[str, Any]) -> dict[str, Any]:
    """Simulate with libcosim (DNV's co-simulation engine on the FMI Library) with default settings.

    libcosim starts at time 0 and steps with a fixed step; the reply holds the samples after each step
    (t = h, 2h, ... up to ``stop_time``), not the initial one.
    """
    from libcosimpy.CosimExecution import CosimExecution
    from libcosimpy.CosimObserver import CosimObserver
    from libcosimpy.CosimSlave import CosimLocalSlave

    step = float(request["output_interval"])
    start = float(request.get("start_time") or 0.0)
    if start != 0.0:
        raise ValueError(f"libcosim starts at time 0, the check starts at {start:g}")
    steps = int((float(request["stop_time"]) - start) / step + 1e-9)
    execution = CosimExecution.from_step_size(step_size=round(step * 1e9))
    index = execution.add_local_slave(CosimLocalSlave(fmu_path=str(request["fmu"]), instance_name="model"))
    references = {v.name.decode(): v.reference for v in execution.slave_variables(index)}
    start_types = request.get("start_types") or {}
    setters = {"Real": execution.real_initial_value, "Integer": execution.integer_initial_value,
               "Boolean": execution.boolean_initial_value, "String": execution.string_initial_value}
    for name, value in (request.get("start_values") or {}).items():  # before the first step: initial values
        kind = start_types.get(name, "Real")
        if name not in references or kind not in setters:
            raise ValueError(f"libcosim cannot set the start value of {name!r} ({kind})")
        converted = {"Real": float, "Integer": int, "Boolean": bool, "String": str}[kind](value)
        if not setters[kind](index, references[name], converted):
            raise RuntimeError(f"libcosim refused the start value {value!r} of {name!r}")
    observer = CosimObserver.create_last_value()
    execution.add_observer(observer)
    types = request.get("types") or {}
    outputs = [o for o in request["outputs"] if o in references]
    groups: dict[str, list[str]] = {}
    for name in outputs:
        groups.setdefault(types.get(name, "Real"), []).append(name)
    readers = {"Real": observer.last_real_values, "Integer": observer.last_integer_values,
               "Boolean": observer.last_boolean_values}
    series: dict[str, list[float]] = {n: [] for n in outputs}
    times = []
    for k in range(1, steps + 1):
        if not execution.step():
            raise RuntimeError(f"libcosim step {k} (t = {k * step:g}) failed")
        times.append(start + k * step)
        for kind, names in groups.items():
            values = readers.get(kind, observer.last_real_values)(index, [references[n] for n in names])
            for name, value in zip(names, values, strict=True):
                series[name].append(float(value))
    return {"time": times, "outputs": series}


def _write_reply(request: dict[str, Any], reply: dict[str, Any], fallback_fd: int) -> None:
    text = json.dumps(reply)
    if request.get("reply"):
        path = str(request["reply"])
        with open(path + ".part", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(path + ".part", path)
    else:
        with os.fdopen(os.dup(fallback_fd), "w", encoding="utf-8") as out:
            out.write(text)


def main() -> int:
    """Entry point of ``python -m fmi_optimizer.fmu.simulate_once``."""
    request: dict[str, Any] = {}
    reply: dict[str, Any]
    original_stdout = os.dup(1)
    try:
        if len(sys.argv) > 1:
            with open(sys.argv[1], encoding="utf-8") as f:
                request = json.load(f)
        else:
            request = json.load(sys.stdin)
        run = simulate_libcosim if request.get("importer") == "libcosim" else simulate
        error = None
        with capture_fds(LOG_LIMIT) as captured:
            try:
                reply = run(request)
            except Exception as exc:  # reported to the parent process, which turns it into a problem
                error = f"{type(exc).__name__}: {' '.join(str(exc).split()) or type(exc).__name__}"
                reply = {}
        reply["log"] = captured.text
        if error is not None:
            reply["error"] = error
        _write_reply(request, reply, original_stdout)
        if error is not None:
            print(error, file=sys.stderr)
            return 1
        return 0
    except Exception as exc:  # an unreadable request or reply file
        print(f"{type(exc).__name__}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    finally:
        os.close(original_stdout)


if __name__ == "__main__":
    sys.exit(main())
