"""Write optimized parameters back: a new FMU that really runs with them, an SSP ``.ssv`` and a JSON record.

``write_back`` writes ``X.optimized.fmu``, ``X.optimized.ssv`` and ``X.optimized.json`` into a folder and
proves the FMU: it simulates the written FMU in a fresh process with *no* start values and the original
FMU with the values as start values (also in a fresh process), compares the trajectories and, for a
study, recomputes the KPIs and compares them with the optimized evaluation. The input FMU is only ever
read. How the FMU is built (fmpy's container runtime) is in :mod:`fmi_optimizer.container` and
docs/writeback.md.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fmi_optimizer.container import (
    ContainerInfo,
    ScalarInfo,
    Value,
    coerce,
    read_model_description,
    scalar_variables,
    sha256,
    write_container_fmu,
)
from fmi_optimizer.errors import DataError, OutputError, VerificationError
from fmi_optimizer.files import atomic_output
from fmi_optimizer.ssp import UnitDefinition, write_ssv

__all__ = [
    "CheckSettings",
    "Verification",
    "WriteBackResult",
    "apply_values",
    "read_result_values",
    "verify_written_fmu",
    "write_back",
    "write_optimized_fmu",
    "write_result_json",
    "write_ssv",
]

RESULT_FORMAT = "fmi_optimizer.writeback/1"


@dataclass(frozen=True)
class Verification:
    """Outcome of re-simulating a written FMU against the original with the values as start values.

    ``per_output`` is max |written - original| / max(|written|, |original|) over the trajectory of each
    output (0 when both are identically zero); ``problems`` says what went wrong when ``ok`` is False.
    """

    ok: bool
    max_rel_diff: float
    per_output: dict[str, float]
    rtol: float = 1e-6
    problems: tuple[str, ...] = ()
    samples: int = 0

    def to_json(self) -> dict[str, Any]:
        """JSON-able form (non-finite differences become null)."""
        return {"ok": self.ok, "max_rel_diff": _finite(self.max_rel_diff), "rtol": self.rtol,
                "per_output": {k: _finite(v) for k, v in self.per_output.items()},
                "problems": list(self.problems), "samples": self.samples}


@dataclass(frozen=True)
class CheckSettings:
    """How the verification simulates: outputs compared, time grid, tolerance of the comparison."""

    outputs: Sequence[str]
    stop_time: float
    output_interval: float
    rtol: float = 1e-6
    start_time: float | None = None
    relative_tolerance: float | None = None
    timeout: float = 600.0


@dataclass(frozen=True)
class WriteBackResult:
    """The files written by :func:`write_back` and the verification (``verification`` is JSON-able)."""

    fmu: Path
    ssv: Path
    json: Path
    verification: dict[str, Any]
    trajectories: Verification
    container: ContainerInfo = field(repr=False)

    @property
    def ok(self) -> bool:
        return bool(self.verification.get("ok"))

    @property
    def files(self) -> dict[str, Path]:
        return {"fmu": self.fmu, "ssv": self.ssv, "json": self.json}


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _rel(a: float, b: float) -> float:
    scale = max(abs(a), abs(b))
    return 0.0 if a == b else (abs(a - b) / scale if math.isfinite(scale) and scale > 0 else math.inf)


def write_optimized_fmu(runnable_fmu: Path, values: Mapping[str, Value], out_fmu: Path, *,
                        step_size: float | None = None) -> Path:
    """Write ``out_fmu``: ``runnable_fmu`` wrapped so that ``values`` take effect with default settings.

    ``runnable_fmu`` must carry a binary for this platform. ``step_size`` is the container's fixed
    internal step (default: the FMU's DefaultExperiment stepSize); importers must step in multiples
    of it, and the written DefaultExperiment says so.
    """
    return write_container_fmu(Path(runnable_fmu), values, Path(out_fmu), step_size).path


# -- verification ------------------------------------------------------------------------------------


def _run_simulation(request: dict[str, Any], folder: Path, tag: str) -> subprocess.Popen[str]:
    request_file = folder / f"{tag}.json"
    request_file.write_text(json.dumps(request), encoding="utf-8")
    return subprocess.Popen([sys.executable, "-m", "fmi_optimizer.simulate_once", str(request_file)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _collect(process: subprocess.Popen[str], label: str, timeout: float) -> tuple[dict[str, Any] | None, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return None, f"{label} did not finish within {timeout:g} s"
    if process.returncode != 0:
        lines = [line for line in err.strip().splitlines() if line.strip()]
        return None, f"{label} failed to simulate: {lines[-1] if lines else f'exit code {process.returncode}'}"
    return json.loads(out), ""


def _coerced(fmu: Path, values: Mapping[str, Value]) -> dict[str, Value]:
    by_name = {v.name: v for v in scalar_variables(read_model_description(fmu))}
    return {k: coerce(fmu, by_name[k], v) if k in by_name else v for k, v in values.items()}


def compare_trajectories(written: dict[str, Any], original: dict[str, Any], outputs: Sequence[str],
                         rtol: float) -> Verification:
    """Compare two simulate_once replies output by output (see :class:`Verification`)."""
    problems: list[str] = []
    t_w, t_o = np.asarray(written["time"]), np.asarray(original["time"])
    if t_w.shape != t_o.shape or not np.allclose(t_w, t_o, rtol=1e-9, atol=1e-12):
        problems.append(f"time grids differ: {t_w.size} samples written vs {t_o.size} original")
    per_output: dict[str, float] = {}
    for name in outputs:
        a, b = written["outputs"].get(name), original["outputs"].get(name)
        if a is None or b is None:
            side = "written" if a is None else "original"
            problems.append(f"output '{name}' missing from the {side} FMU's result")
            per_output[name] = math.inf
            continue
        a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        if a_arr.shape != b_arr.shape:
            per_output[name] = math.inf
            continue
        diff = np.abs(a_arr - b_arr)
        scale = max(float(np.max(np.abs(a_arr), initial=0.0)), float(np.max(np.abs(b_arr), initial=0.0)))
        if not np.all(np.isfinite(diff)):
            per_output[name] = 0.0 if np.array_equal(a_arr, b_arr, equal_nan=True) else math.inf
        else:
            worst = float(np.max(diff, initial=0.0))
            per_output[name] = 0.0 if worst == 0.0 else worst / scale
        if per_output[name] > rtol:
            problems.append(f"output '{name}' differs by {per_output[name]:.3g} (relative) > rtol {rtol:g}")
    worst_all = max(per_output.values(), default=0.0)
    return Verification(ok=not problems, max_rel_diff=worst_all, per_output=per_output, rtol=rtol,
                        problems=tuple(problems), samples=int(t_o.size))


def _step_mismatch(written: Path, output_interval: float) -> str:
    """A problem text when the container's fixed step does not divide ``output_interval``, else ''."""
    try:
        with zipfile.ZipFile(written) as zf:
            step = float(json.loads(zf.read("resources/container.json"))["fixedStepSize"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return ""  # not a container FMU: let the simulation speak
    ratio = output_interval / step
    if ratio < 1 - 1e-9 or abs(ratio - round(ratio)) > 1e-6 * max(1.0, ratio):
        return (f"output interval {output_interval:g} is not a multiple of the written FMU's fixed step "
                f"{step:g}; simulate it with a multiple of {step:g}")
    return ""


def _simulate_pair(original: Path, written: Path, values: Mapping[str, Value],
                   check: CheckSettings) -> tuple[list[dict[str, Any] | None], list[str]]:
    """Replies of (written without start values, original with ``values``), each from a fresh process."""
    step_problem = _step_mismatch(written, float(check.output_interval))
    if step_problem:
        return [None, None], [step_problem]
    base = {"outputs": list(check.outputs), "stop_time": float(check.stop_time),
            "output_interval": float(check.output_interval), "start_time": check.start_time,
            "relative_tolerance": check.relative_tolerance}
    start_values = _coerced(original, values)
    replies: list[dict[str, Any] | None] = []
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="fmio-verify-") as folder:
        runs = [("written FMU " + written.name, _run_simulation({**base, "fmu": str(written)}, Path(folder), "w")),
                ("original FMU " + original.name,
                 _run_simulation({**base, "fmu": str(original), "start_values": start_values}, Path(folder), "o"))]
        for label, process in runs:
            reply, problem = _collect(process, label, check.timeout)
            replies.append(reply)
            if problem:
                problems.append(problem)
    return replies, problems


def _verify(original: Path, written: Path, values: Mapping[str, Value],
            check: CheckSettings) -> tuple[Verification, dict[str, Any] | None]:
    if not check.outputs:
        return Verification(ok=False, max_rel_diff=math.inf, per_output={}, rtol=check.rtol,
                            problems=("no outputs to compare; name the outputs the verification must check",)), None
    replies, problems = _simulate_pair(original, written, values, check)
    if replies[0] is None or replies[1] is None:
        failed = Verification(ok=False, max_rel_diff=math.inf, per_output={n: math.inf for n in check.outputs},
                              rtol=check.rtol, problems=tuple(problems))
        return failed, replies[0]
    return compare_trajectories(replies[0], replies[1], check.outputs, check.rtol), replies[0]


def verify_written_fmu(original_runnable: Path, written: Path, values: Mapping[str, Value],
                       outputs: list[str], stop_time: float, output_interval: float, rtol: float = 1e-6, *,
                       start_time: float | None = None, timeout: float = 600.0) -> Verification:
    """Simulate ``written`` with no start values and ``original_runnable`` with ``values``, each in a
    fresh Python process, and compare the ``outputs`` trajectories.

    Never raises for a mismatch or a failed simulation: they come back as ``ok=False`` with problems.
    """
    check = CheckSettings(outputs, stop_time, output_interval, rtol, start_time, timeout=timeout)
    return _verify(Path(original_runnable), Path(written), values, check)[0]


# -- records --------------------------------------------------------------------------------------


def write_result_json(out_json: Path, values: Mapping[str, Value], *, source_fmu: Path,
                      written: ContainerInfo | None = None, ssv: Path | None = None,
                      verification: Verification | Mapping[str, Any] | None = None,
                      extra: Mapping[str, Any] | None = None) -> Path:
    """Write the JSON record of a write-back (values, source identity, files, verification, extras)."""
    source_fmu = Path(source_fmu)
    root = read_model_description(source_fmu)
    types = {v.name: v.type for v in scalar_variables(root)}
    if isinstance(verification, Verification):
        verification = verification.to_json()
    record: dict[str, Any] = {
        "format": RESULT_FORMAT,
        "source": {"fmu": str(source_fmu), "sha256": sha256(source_fmu),
                   "guid": root.get("guid") or root.get("instantiationToken"), "model_name": root.get("modelName"),
                   "fmi_version": root.get("fmiVersion")},
        "values": dict(values),
        "types": {k: types.get(k) for k in values},
        "files": {"fmu": str(written.path) if written else None, "ssv": str(ssv) if ssv else None,
                  "json": str(out_json)},
        "container": None if written is None else {
            "guid": written.guid, "fixed_step_size": written.fixed_step_size,
            "platforms": list(written.platforms), "exposed_variables": written.exposed_variables,
            "runtime": "fmpy container_fmu"},
        "verification": None if verification is None else dict(verification),
        "extra": dict(extra or {}),
    }
    out_json = Path(out_json)
    with atomic_output(out_json) as tmp:
        tmp.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    return out_json


def read_result_values(path: Path) -> dict[str, Value]:
    """Values from a JSON file: an X.optimized.json record, ``optimize --json`` output, or {name: value}."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a readable JSON result ({exc}); pass an X.optimized.json file") from None
    values: Any = None
    if isinstance(data, dict):
        if isinstance(data.get("values"), dict):
            values = data["values"]
        elif isinstance(data.get("best"), dict) and isinstance(data["best"].get("values"), dict):
            values = data["best"]["values"]
        elif data and all(isinstance(k, str) for k in data):
            values = data
    if not isinstance(values, dict) or not values or not all(
            isinstance(v, int | float | str) for v in values.values()):
        raise DataError(f"{path}: no values (name -> number/boolean/string) found; pass an X.optimized.json "
                        "file, optimize --json output or a {name: value} object")
    return dict(values)


def _ssv_metadata(variables: list[ScalarInfo], values: Mapping[str, Value], root: ET.Element) -> dict[str, Any]:
    """kinds/units/enumerations for write_ssv, taken from the model description."""
    by_name = {v.name: v for v in variables}
    kinds: dict[str, str] = {}
    shown: dict[str, Value] = {}
    units: dict[str, str] = {}
    enums: dict[str, tuple[str, Mapping[str, int]]] = {}
    for name, value in values.items():
        var = by_name[name]
        kinds[name] = var.kind
        shown[name] = value
        if var.kind == "Enumeration":
            item = next((n for n, number in var.items if number == value), None)
            if item is None:  # no item list in the FMU: fall back to the number as an Integer
                kinds[name] = "Integer"
            else:
                shown[name] = item
                enums[name] = (var.declared_type or name, dict(var.items))
        if var.kind == "Real" and var.unit:
            units[name] = var.unit
    definitions = {}
    for unit in root.findall("UnitDefinitions/Unit"):
        base = unit.find("BaseUnit")
        attrs = base.attrib if base is not None else {}
        definitions[str(unit.get("name"))] = UnitDefinition(
            exponents={k: int(v) for k, v in attrs.items() if k not in ("factor", "offset")},
            factor=float(attrs.get("factor", 1.0)), offset=float(attrs.get("offset", 0.0)))
    return {"values": shown, "kinds": kinds, "units": units, "unit_definitions": definitions,
            "enumerations": enums}


def _validation_problems(fmu: Path) -> list[str]:
    """fmpy's validate_fmu findings for the written FMU (recorded for the report, not a failure)."""
    from fmpy.validation import validate_fmu

    try:
        return [str(p) for p in validate_fmu(str(fmu))]
    except Exception as exc:  # a validator crash is a finding too, not a reason to lose the write-back
        return [f"validation could not run: {type(exc).__name__}: {exc}"]


def _prepare_folder(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out_dir}: output folder cannot be created ({exc.strerror or exc}); choose a "
                          "writable output folder") from None
    if not os.access(out_dir, os.W_OK):
        raise OutputError(f"{out_dir}: output folder is not writable; choose a writable output folder")


# -- the study-level entry points -------------------------------------------------------------------


def default_output_interval(root: ET.Element, start: float, stop: float) -> float:
    """The communication step fmpy uses for a co-simulation FMU when none is given (its own rule)."""
    cosim, experiment = root.find("CoSimulation"), root.find("DefaultExperiment")
    interval = None
    if cosim is not None and cosim.get("fixedInternalStepSize"):
        interval = float(str(cosim.get("fixedInternalStepSize")))
    elif experiment is not None and experiment.get("stepSize"):
        interval = float(str(experiment.get("stepSize")))
    if interval is None:
        from fmpy.simulation import auto_interval

        return float(auto_interval(stop - start))
    while (stop - start) / interval > 1000:
        interval *= 2
    return interval


def check_settings_for(runnable: Path, outputs: Sequence[str], *, start_time: float | None = None,
                       stop_time: float | None = None, output_interval: float | None = None,
                       relative_tolerance: float | None = None, rtol: float = 1e-6) -> CheckSettings:
    """CheckSettings with the FMU's default experiment filling what is not given (as fmpy would)."""
    root = read_model_description(runnable)
    experiment = root.find("DefaultExperiment")
    start = start_time if start_time is not None else float(
        experiment.get("startTime", "0") if experiment is not None else 0.0)
    stop = stop_time if stop_time is not None else float(
        experiment.get("stopTime", start + 1.0) if experiment is not None else start + 1.0)
    interval = output_interval if output_interval is not None else default_output_interval(root, start, stop)
    return CheckSettings(list(outputs), stop, interval, rtol, start_time, relative_tolerance)


def _kpi_check(problem: Any, written_reply: dict[str, Any] | None, expected: Mapping[str, float],
               rtol: float) -> tuple[dict[str, Any], list[str]]:
    """Recompute the study's KPIs from the written FMU's trajectory and compare with ``expected``."""
    from fmi_optimizer.kpi import compute_kpis

    if written_reply is None:
        return {}, []
    t = np.asarray(written_reply["time"], dtype=float)
    outputs = {k: np.asarray(v, dtype=float) for k, v in written_reply["outputs"].items()}
    try:
        actual = compute_kpis(problem.kpis, t, outputs, problem.reducers)
    except Exception as exc:  # a KPI that cannot be computed on the written FMU's run is a failed check
        return {}, [f"KPIs could not be computed on the written FMU's run ({type(exc).__name__}: {exc})"]
    rows, problems = {}, []
    for name, value in actual.items():
        if name not in expected:
            continue
        diff = _rel(float(value), float(expected[name]))
        rows[name] = {"expected": float(expected[name]), "actual": float(value), "rel_diff": _finite(diff)}
        if diff > rtol:
            problems.append(f"KPI '{name}' is {value:.6g} on the written FMU vs {expected[name]:.6g} optimized")
    return rows, problems


def write_back(runnable_fmu: Path | None = None, values: Mapping[str, Value] | None = None,
               out_dir: Path | None = None, *, check: CheckSettings | None = None, problem: Any = None,
               stem: str | None = None, expected_kpis: Mapping[str, float] | None = None, seed: int | None = None,
               extra: Mapping[str, Any] | None = None, strict: bool = True) -> WriteBackResult:
    """Write ``<stem>.optimized.fmu/.ssv/.json`` into ``out_dir`` and verify the FMU.

    Either pass ``runnable_fmu`` and ``check`` (outputs and time grid to compare), or a study
    ``problem`` (a StudyProblem: its twin, simulation settings and KPI outputs are used, and
    ``expected_kpis`` of the optimized evaluation are recomputed on the written FMU; ``seed`` is
    written into the study's seed parameter so the replication is reproduced). The container steps
    the original FMU with the verification's output interval, so the written FMU reproduces the
    optimized runs exactly. When verification fails the unverified FMU is removed (the JSON keeps the
    details) and, with ``strict``, VerificationError is raised. OutputError when the folder cannot be
    written.
    """
    if values is None or out_dir is None:
        raise TypeError("write_back needs values and out_dir")
    values = dict(values)
    if problem is not None:
        runnable_fmu = Path(problem.twin.fmu.runnable)
        stem = stem or Path(problem.twin.path).stem
        if seed is not None and getattr(problem.config, "seed_parameter", None):
            values[problem.config.seed_parameter] = seed
        s = problem.settings
        check = check or check_settings_for(runnable_fmu, problem.outputs(), start_time=s.start_time,
                                            stop_time=s.stop_time, output_interval=s.output_interval,
                                            relative_tolerance=s.tolerance)
    if runnable_fmu is None or check is None:
        raise TypeError("write_back needs runnable_fmu and check, or a problem")
    runnable_fmu, out_dir = Path(runnable_fmu), Path(out_dir)
    stem = stem or runnable_fmu.stem
    _prepare_folder(out_dir)
    fmu_path, ssv_path, json_path = (out_dir / f"{stem}.optimized.{ext}" for ext in ("fmu", "ssv", "json"))
    info = write_container_fmu(runnable_fmu, values, fmu_path, step_size=check.output_interval)
    root = read_model_description(runnable_fmu)
    meta = _ssv_metadata(scalar_variables(root), info.written, root)
    write_ssv(meta.pop("values"), ssv_path, name=f"{stem}.optimized", **meta)
    trajectories, written_reply = _verify(runnable_fmu, fmu_path, info.written, check)
    verification = trajectories.to_json()
    verification["validation"] = _validation_problems(fmu_path)
    problems = list(trajectories.problems)
    if problem is not None and expected_kpis:
        kpi_rows, kpi_problems = _kpi_check(problem, written_reply, expected_kpis, check.rtol)
        verification["kpis"] = kpi_rows
        problems += kpi_problems
        worst = max((r["rel_diff"] for r in kpi_rows.values() if r["rel_diff"] is not None), default=0.0)
        if verification["max_rel_diff"] is not None:
            verification["max_rel_diff"] = max(verification["max_rel_diff"], worst)
    verification["ok"], verification["problems"] = not problems, problems
    write_result_json(json_path, info.written, source_fmu=runnable_fmu, written=info, ssv=ssv_path,
                      verification=verification, extra=extra)
    if not problems:
        return WriteBackResult(fmu_path, ssv_path, json_path, verification, trajectories, info)
    fmu_path.unlink(missing_ok=True)
    if strict:
        raise VerificationError(
            f"{fmu_path.name} failed verification ({problems[0]}); the FMU was removed, details in {json_path}; "
            f"use {ssv_path.name} with the original FMU instead")
    return WriteBackResult(fmu_path, ssv_path, json_path, verification, trajectories, info)


def apply_values(result: Path, fmu: Path, out_dir: Path | None = None, *, strict: bool = True) -> WriteBackResult:
    """``fmi-optimizer apply``: write the values of a result JSON into ``fmu`` (verified, default experiment).

    A source-only FMU is compiled first (through the twin layer). Every output of the FMU is compared
    (every local variable when it has no outputs).
    """
    from fmi_optimizer.twin import Twin

    values = read_result_values(Path(result))
    twin = Twin.open(fmu)
    values = twin.check_values(values)
    runnable = Path(twin.fmu.runnable)
    compared = [v.name for v in twin.outputs] or [v.name for v in twin.variables if v.causality == "local"]
    check = check_settings_for(runnable, compared)
    return write_back(runnable, values, Path(out_dir) if out_dir else Path(fmu).parent, check=check,
                      stem=Path(fmu).stem, extra={"applied_from": str(result)}, strict=strict)
