"""Write optimized parameters back: a new FMU that really runs with them, an SSP ``.ssv`` and a JSON record.

``write_back`` writes ``X.optimized.fmu``, ``X.optimized.ssv`` and ``X.optimized.json`` into a folder and
proves the FMU: it simulates the written FMU in a fresh process with *no* start values and the original
FMU with the values as start values (also in a fresh process), compares the trajectories and, for a
study, recomputes the KPIs and compares them with the optimized evaluation. The input FMU is only ever
read. The FMU is first written under a temporary name and renamed only after it verified: a failed
verification leaves no FMU. Verification runs the written FMU in two importers, fmpy and (when the
``libcosimpy`` package is importable) libcosim, each in a fresh process. How the FMU is built (the
original behind our proxy runtime) is in :mod:`fmi_optimizer.writeback.proxy_fmu` and docs/writeback.md.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from fmi_optimizer.errors import DataError, OutputError, ValueValidationError, VerificationError
from fmi_optimizer.writeback.atomic import atomic_output
from fmi_optimizer.writeback.proxy_fmu import (
    INNER,
    ProxyInfo,
    ScalarInfo,
    Value,
    coerce,
    read_model_description,
    require_writeback_support,
    scalar_variables,
    sha256,
    write_proxy_fmu,
    writeback_support,
)
from fmi_optimizer.writeback.ssp import UnitDefinition, write_ssv

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
    "require_writeback_support",
    "writeback_support",
]

RESULT_FORMAT = "fmi_optimizer.writeback/1"


@dataclass(frozen=True)
class Verification:
    """Outcome of re-simulating a written FMU against the original with the values as start values.

    ``per_output`` is max |written - original| / max(|written|, |original|) over the trajectory of each
    output (0 when both are identically zero), the worst over the importers that ran; ``problems`` says
    what went wrong when ``ok`` is False. ``importers`` says, per importer (fmpy, libcosim), ``"ok"``,
    ``"failed"`` or ``"not run: <why>"``; ``skipped`` lists outputs that were not compared (not numeric).
    """

    ok: bool
    max_rel_diff: float
    per_output: dict[str, float]
    rtol: float = 1e-6
    problems: tuple[str, ...] = ()
    samples: int = 0
    importers: dict[str, str] = field(default_factory=dict)
    skipped: tuple[str, ...] = ()
    logs: dict[str, str] = field(default_factory=dict)

    @property
    def verified_by(self) -> list[str]:
        """The importers in which the written FMU reproduced the original."""
        return [name for name, state in self.importers.items() if state == "ok"]

    def to_json(self) -> dict[str, Any]:
        """JSON-able form (non-finite differences become null)."""
        return {"ok": self.ok, "max_rel_diff": _finite(self.max_rel_diff), "rtol": self.rtol,
                "per_output": {k: _finite(v) for k, v in self.per_output.items()},
                "problems": list(self.problems), "samples": self.samples, "importers": dict(self.importers),
                "verified_by": self.verified_by, "skipped_outputs": list(self.skipped),
                **({"logs": dict(self.logs)} if self.logs else {})}


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
    """The files written by :func:`write_back` and the verification (``verification`` is JSON-able).

    ``fmu`` is None when the written FMU failed verification (it was removed).
    """

    fmu: Path | None
    ssv: Path
    json: Path
    verification: dict[str, Any]
    trajectories: Verification
    written: ProxyInfo | None = field(default=None, repr=False)
    notes: tuple[str, ...] = ()  # what an importer's defaults change (said on stderr, kept in the JSON)

    @property
    def ok(self) -> bool:
        return bool(self.verification.get("ok"))

    @property
    def files(self) -> dict[str, Path | None]:
        return {"fmu": self.fmu, "ssv": self.ssv, "json": self.json}

    def platform_note(self, original: str) -> str | None:
        """One line when the original FMU runs on platforms the written one does not (None otherwise)."""
        if self.fmu is None or self.written is None or not self.written.left_behind:
            return None
        others = ", ".join(self.written.left_behind)
        return (f"note: {self.fmu.name} runs on {self.written.platform} only; {original} also has binaries "
                f"for {others}: there, run 'fmi-optimizer apply {self.json.name} {original}' or apply "
                f"{self.ssv.name} to the original")


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _rel(a: float, b: float) -> float:
    scale = max(abs(a), abs(b))
    return 0.0 if a == b else (abs(a - b) / scale if math.isfinite(scale) and scale > 0 else math.inf)


def write_optimized_fmu(runnable_fmu: Path, values: Mapping[str, Value], out_fmu: Path, *,
                        experiment: Mapping[str, float] | None = None) -> Path:
    """Write ``out_fmu``: ``runnable_fmu`` behind the proxy runtime, so ``values`` take effect with default
    settings (no verification; :func:`write_back` verifies).

    ``runnable_fmu`` must carry a binary for this platform. ``experiment`` overrides DefaultExperiment
    attributes (startTime, stopTime, stepSize, tolerance); by default the original's are kept, so the
    written FMU's default time grid is the original's.
    """
    return write_proxy_fmu(Path(runnable_fmu), values, Path(out_fmu), experiment=experiment).path


# -- verification ------------------------------------------------------------------------------------

LOG_EXCERPT = 4000


def libcosim_available() -> str | None:
    """None when libcosimpy can be imported here, else why not."""
    import importlib.util

    return None if importlib.util.find_spec("libcosimpy") is not None else "libcosimpy is not installed"


def _run_simulation(request: dict[str, Any], folder: Path, tag: str) -> tuple[subprocess.Popen[bytes], Path]:
    request_file, reply_file = folder / f"{tag}.json", folder / f"{tag}.reply.json"
    request_file.write_text(json.dumps({**request, "reply": str(reply_file)}), encoding="utf-8")
    process = subprocess.Popen([sys.executable, "-m", "fmi_optimizer.fmu.simulate_once", str(request_file)],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return process, reply_file


def _collect(run: tuple[subprocess.Popen[bytes], Path], label: str,
             timeout: float) -> tuple[dict[str, Any] | None, str, str]:
    """(reply or None, problem or '', log) of one simulate_once process."""
    process, reply_file = run
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return None, f"{label} did not finish within {timeout:g} s", ""
    reply: dict[str, Any] = {}
    try:
        reply = json.loads(reply_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        pass
    log = str(reply.get("log", ""))[-LOG_EXCERPT:]
    if process.returncode != 0 or "error" in reply or "time" not in reply:
        if reply.get("error"):
            why = str(reply["error"])
        elif process.returncode < 0:
            why = f"the process crashed (signal {-process.returncode})"
        else:
            lines = [line for line in err.decode(errors="replace").strip().splitlines() if line.strip()]
            why = lines[-1] if lines else f"exit code {process.returncode}"
        return None, f"{label} failed to simulate: {why}", log
    return reply, "", log


def _libcosim_start_types(fmu: Path, values: Mapping[str, Value]) -> dict[str, str] | None:
    """libcosim's setter type per start value, or None when one cannot be set through libcosim (it ignores
    enumeration variables)."""
    kinds = {v.name: v.kind for v in scalar_variables(read_model_description(fmu))}
    types = {k: kinds.get(k, "Real") for k in values}
    return types if all(t in ("Real", "Integer", "Boolean", "String") for t in types.values()) else None


def _coerced(fmu: Path, values: Mapping[str, Value]) -> dict[str, Value]:
    by_name = {v.name: v for v in scalar_variables(read_model_description(fmu))}
    return {k: coerce(fmu, by_name[k], v) if k in by_name else v for k, v in values.items()}


def compare_trajectories(written: dict[str, Any], original: dict[str, Any], outputs: Sequence[str],
                         rtol: float, *, match_times: bool = False, label: str = "") -> Verification:
    """Compare two simulate_once replies output by output (see :class:`Verification`).

    With ``match_times`` the written reply may hold a subset of the original's sample times (libcosim
    has no initial sample); only those times are compared, and they must all exist in the original.
    """
    problems: list[str] = []
    t_w, t_o = np.asarray(written["time"], dtype=float), np.asarray(original["time"], dtype=float)
    rows_o = np.arange(t_o.size)
    if match_times:
        rows_o = np.searchsorted(t_o, t_w - 1e-9 * np.maximum(1.0, np.abs(t_w)))
        valid = (rows_o < t_o.size) & np.isclose(t_o[np.minimum(rows_o, t_o.size - 1)], t_w, rtol=1e-9,
                                                  atol=1e-12)
        if t_w.size == 0 or not np.all(valid):
            problems.append(f"{label}time grids differ: {t_w.size} samples not all on the original's grid")
    elif t_w.shape != t_o.shape or not np.allclose(t_w, t_o, rtol=1e-9, atol=1e-12):
        problems.append(f"{label}time grids differ: {t_w.size} samples written vs {t_o.size} original")
    per_output: dict[str, float] = {}
    for name in outputs:
        a, b = written["outputs"].get(name), original["outputs"].get(name)
        if a is None or b is None:
            side = "written" if a is None else "original"
            problems.append(f"{label}output '{name}' missing from the {side} FMU's result")
            per_output[name] = math.inf
            continue
        a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        if match_times and not problems:
            b_arr = b_arr[rows_o]
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
            problems.append(f"{label}output '{name}' differs by {per_output[name]:.3g} (relative) > rtol "
                            f"{rtol:g}")
    worst_all = max(per_output.values(), default=0.0)
    return Verification(ok=not problems, max_rel_diff=worst_all, per_output=per_output, rtol=rtol,
                        problems=tuple(problems), samples=int(t_o.size))


_NUMERIC = ("Real", "Integer", "Enumeration", "Boolean")


def split_numeric(fmu: Path, outputs: Sequence[str]) -> tuple[list[str], list[str], dict[str, str]]:
    """(numeric outputs, skipped outputs, libcosim type per numeric output) of ``outputs`` in ``fmu``.

    String (and FMI 3.0 Binary/Clock) outputs cannot be compared as numbers: they are skipped and named.
    """
    kinds = {v.name: v.kind for v in scalar_variables(read_model_description(fmu))}
    numeric = [o for o in outputs if kinds.get(o, "Real") in _NUMERIC]
    types = {o: {"Enumeration": "Integer"}.get(kinds.get(o, "Real"), kinds.get(o, "Real")) for o in numeric}
    return numeric, [o for o in outputs if o not in numeric], types


def _libcosim_reason(original: Path, check: CheckSettings) -> str | None:
    """None when libcosim can run this check, else why it is not run."""
    missing = libcosim_available()
    if missing:
        return missing
    version = read_model_description(original).get("fmiVersion", "")
    if version not in ("1.0", "2.0"):
        return f"libcosim imports FMI 1.0/2.0 only (this FMU is FMI {version})"
    if check.start_time not in (None, 0.0):
        return f"libcosim starts at time 0 (the check starts at {check.start_time:g})"
    return None


def _verify(original: Path, written: Path, values: Mapping[str, Value], check: CheckSettings,
            label: str | None = None) -> tuple[Verification, dict[str, Any] | None]:
    """Simulate the written FMU (fmpy, and libcosim when it can) and the original with ``values`` (fmpy),
    each in a fresh process, and compare. Returns the verification and the written FMU's fmpy reply."""
    label = label or written.name
    compared, skipped, types = split_numeric(original, check.outputs)
    if not compared:
        why = "no outputs to compare; name the outputs the verification must check"
        if skipped:
            why = f"no numeric outputs to compare (skipped: {', '.join(skipped)}); name a numeric output"
        return Verification(ok=False, max_rel_diff=math.inf, per_output={}, rtol=check.rtol, problems=(why,),
                            skipped=tuple(skipped)), None
    base = {"outputs": compared, "stop_time": float(check.stop_time),
            "output_interval": float(check.output_interval),
            "start_time": check.start_time, "relative_tolerance": check.relative_tolerance}
    importers: dict[str, str] = {}
    libcosim_reason = _libcosim_reason(original, check)
    start_values = _coerced(original, values)  # the same values for every importer's run of the original
    with tempfile.TemporaryDirectory(prefix="fmio-verify-") as tmp:
        folder = Path(tmp)
        runs = {"written": _run_simulation({**base, "fmu": str(written)}, folder, "w"),
                "original": _run_simulation({**base, "fmu": str(original),
                                             "start_values": start_values}, folder, "o")}
        if libcosim_reason is None:
            # each importer's run of the written FMU is compared with the same importer's run of the original
            # with the values set: two importers may disagree on one FMU (a step's handling, a tolerance), and
            # that disagreement is not the write-back's
            runs["libcosim"] = _run_simulation({**base, "fmu": str(written), "importer": "libcosim",
                                                "types": types},
                                               folder, "l")
            start_types = _libcosim_start_types(original, values)
            if start_types is not None:  # else libcosim cannot set them: held to fmpy's run of the original
                runs["libcosim_original"] = _run_simulation(
                    {**base, "fmu": str(original), "importer": "libcosim", "types": types,
                     "start_values": start_values, "start_types": start_types}, folder, "lo")
        labels = {"written": f"written FMU {label} (fmpy)",
                  "original": f"original FMU {original.name} (fmpy)",
                  "libcosim": f"written FMU {label} (libcosim)",
                  "libcosim_original": f"original FMU {original.name} (libcosim)"}
        replies: dict[str, dict[str, Any] | None] = {}
        problems: list[str] = []
        logs: dict[str, str] = {}
        for key, run in runs.items():
            reply, problem, log = _collect(run, labels[key], check.timeout)
            replies[key] = reply
            if problem:
                problems.append(problem)
                if log.strip():
                    logs[key] = log
    importers["fmpy"] = "failed"
    importers["libcosim"] = f"not run: {libcosim_reason}" if libcosim_reason else "failed"
    truth, written_reply = replies.get("original"), replies.get("written")
    per_output = {n: math.inf for n in compared}
    if truth is not None and written_reply is not None:
        fmpy_check = compare_trajectories(written_reply, truth, compared, check.rtol)
        problems += fmpy_check.problems
        per_output = dict(fmpy_check.per_output)
        importers["fmpy"] = "ok" if fmpy_check.ok else "failed"
    libcosim_reply = replies.get("libcosim")
    own_truth = "libcosim_original" in replies
    libcosim_truth = replies.get("libcosim_original") if own_truth else truth
    if libcosim_truth is not None and libcosim_reply is not None:
        cosim = compare_trajectories(libcosim_reply, libcosim_truth, compared, check.rtol, label="libcosim: ",
                                     match_times=not own_truth)
        problems += cosim.problems
        per_output = {n: max(per_output.get(n, 0.0), cosim.per_output.get(n, math.inf)) for n in compared}
        importers["libcosim"] = "ok" if cosim.ok else "failed"
    samples = len(truth["time"]) if truth is not None else 0
    worst = max(per_output.values(), default=math.inf)
    return Verification(ok=not problems, max_rel_diff=worst, per_output=per_output, rtol=check.rtol,
                        problems=tuple(problems), samples=samples, importers=importers,
                        skipped=tuple(skipped),
                        logs=logs), written_reply


def verify_written_fmu(original_runnable: Path, written: Path, values: Mapping[str, Value],
                       outputs: list[str], stop_time: float, output_interval: float, rtol: float = 1e-6, *,
                       start_time: float | None = None, timeout: float = 600.0) -> Verification:
    """Simulate ``written`` with no start values (fmpy and libcosim) and ``original_runnable`` with
    ``values`` (fmpy), each in a fresh Python process, and compare the ``outputs`` trajectories.

    Never raises for a mismatch or a failed simulation: they come back as ``ok=False`` with problems.
    """
    check = CheckSettings(outputs, stop_time, output_interval, rtol, start_time, timeout=timeout)
    return _verify(Path(original_runnable), Path(written), values, check)[0]


# -- records --------------------------------------------------------------------------------------


def write_result_json(out_json: Path, values: Mapping[str, Value], *, source_fmu: Path,
                      written: ProxyInfo | None = None, ssv: Path | None = None,
                      verification: Verification | Mapping[str, Any] | None = None,
                      extra: Mapping[str, Any] | None = None) -> Path:
    """Write the JSON record of a write-back (values, source identity, files, verification, extras).

    ``written`` is the FMU that was kept (None when there is none, e.g. it failed verification).
    """
    source_fmu = Path(source_fmu)
    root = read_model_description(source_fmu)
    types = {v.name: v.type for v in scalar_variables(root)}
    if isinstance(verification, Verification):
        verification = verification.to_json()
    record: dict[str, Any] = {
        "format": RESULT_FORMAT,
        "source": {"fmu": str(source_fmu), "sha256": sha256(source_fmu),
                   "guid": root.get("guid") or root.get("instantiationToken"),
                   "model_name": root.get("modelName"),
                   "fmi_version": root.get("fmiVersion")},
        "values": dict(values),
        "types": {k: types.get(k) for k in values},
        "files": {"fmu": str(written.path) if written else None, "ssv": str(ssv) if ssv else None,
                  "json": str(out_json)},
        "written_fmu": None if written is None else {
            "guid": written.guid, "model_identifier": written.model_identifier,
            "fmi_version": written.fmi_version,
            "platform": written.platform, "not_on": list(written.left_behind), "original_at": INNER,
            "runtime": "fmi_optimizer proxy (fmio_proxy.c)"},
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
        raise DataError(f"{path}: not a readable JSON result ({exc}); pass an X.optimized.json "
                        "file") from None
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


def _other_model(result: Path, twin: Any) -> str:
    """``"result.json holds values for model 'pump' (pump.fmu)..."`` when a result JSON records another
    model than the FMU its values are applied to ("" when it records none or the same one)."""
    try:
        source = json.loads(result.read_text(encoding="utf-8")).get("source") or {}
    except (OSError, ValueError, AttributeError):
        return ""
    name, guid = source.get("model_name"), source.get("guid")
    md = twin.model_description
    if not name or (guid and guid == (md.guid or md.instantiationToken)) or name == twin.model_name:
        return ""
    origin = Path(str(source.get("fmu", "?"))).name
    return (f"{result.name} holds values for model {name!r} ({origin}), not for {twin.model_name!r} "
            f"({twin.path.name}): apply it to that FMU")


def _ssv_metadata(variables: list[ScalarInfo], values: Mapping[str, Value],
                  root: ET.Element) -> dict[str, Any]:
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
    from fmi_optimizer.host.kpi import compute_kpis

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
            problems.append(f"KPI '{name}' is {value:.6g} on the written FMU vs {expected[name]:.6g} "
                            "optimized")
    return rows, problems


def fmpy_default_interval(start: float, stop: float, step: float) -> float:
    """The communication step ``fmpy.simulate_fmu`` uses for a co-simulation FMU when called without
    ``output_interval``: the default experiment's ``stepSize``, doubled until at most 1000 output points."""
    interval = step
    while (stop - start) / interval > 1000:
        interval *= 2
    return interval


def coarsened_note(fmu: Path, start: float, stop: float, step: float | None,
                   co_simulation: bool) -> str | None:
    """One line when plain fmpy, called without ``output_interval``, would run the written co-simulation FMU
    at a coarser step than the study's ``step`` (and so give other numbers), with the call that reproduces
    them."""
    if step is None or not co_simulation:
        return None
    coarse = fmpy_default_interval(start, stop, step)
    if coarse == step:
        return None
    return (f"note: fmpy.simulate_fmu without output_interval runs {fmu.name} at a {coarse:g} s step, not "
            f"the study's {step:g} s (its stepSize; fmpy keeps at most 1000 output points), and a "
            f"co-simulation FMU's numbers depend on the step: pass output_interval={step:g} to reproduce the "
            "study")


def _study_experiment(settings: Any) -> dict[str, float]:
    """DefaultExperiment attributes a study configured explicitly (written into its optimized FMU)."""
    pairs = {"startTime": getattr(settings, "start_time", None),
             "stopTime": getattr(settings, "stop_time", None),
             "stepSize": getattr(settings, "output_interval", None),
             "tolerance": getattr(settings, "tolerance", None)}
    return {k: float(v) for k, v in pairs.items() if v is not None}


def write_back(runnable_fmu: Path | None = None, values: Mapping[str, Value] | None = None,
               out_dir: Path | None = None, *, check: CheckSettings | None = None, problem: Any = None,
               stem: str | None = None, expected_kpis: Mapping[str, float] | None = None,
               seed: int | None = None,
               extra: Mapping[str, Any] | None = None, strict: bool = True, tag: str = "") -> WriteBackResult:
    """Write ``<stem>.optimized<tag>.fmu/.ssv/.json`` into ``out_dir`` and verify the FMU.

    ``tag`` (e.g. ``.2``) keeps a later study's files beside an earlier study's in the same folder.

    Either pass ``runnable_fmu`` and ``check`` (outputs and time grid to compare), or a study
    ``problem`` (a StudyProblem: its twin, simulation settings and KPI outputs are used, the settings
    the study gave explicitly become the written FMU's DefaultExperiment, and ``expected_kpis`` of the
    optimized evaluation are recomputed on the written FMU; ``seed`` is written into the study's seed
    parameter so the replication is reproduced). The FMU is written under a temporary name and renamed
    to ``<stem>.optimized.fmu`` only when it verified; otherwise it is removed, ``fmu`` is None, the JSON
    keeps the details and, with ``strict``, VerificationError is raised. OutputError when the folder
    cannot be written.
    """
    if values is None or out_dir is None:
        raise TypeError("write_back needs values and out_dir")
    values = dict(values)
    experiment: dict[str, float] = {}
    if problem is not None:
        runnable_fmu = Path(problem.twin.fmu.runnable)
        stem = stem or Path(problem.twin.path).stem
        if seed is not None and getattr(problem.config, "seed_parameter", None):
            values[problem.config.seed_parameter] = seed
        s = problem.settings
        experiment = _study_experiment(s)
        check = check or check_settings_for(runnable_fmu, problem.outputs(), start_time=s.start_time,
                                            stop_time=s.stop_time, output_interval=s.output_interval,
                                            relative_tolerance=s.tolerance)
    if runnable_fmu is None or check is None:
        raise TypeError("write_back needs runnable_fmu and check, or a problem")
    runnable_fmu, out_dir = Path(runnable_fmu), Path(out_dir)
    stem = stem or runnable_fmu.stem
    _prepare_folder(out_dir)
    fmu_path, ssv_path, json_path = (out_dir / f"{stem}.optimized{tag}.{ext}"
                                     for ext in ("fmu", "ssv", "json"))
    staged = out_dir / f".{stem}.optimized.unverified-{os.getpid()}.fmu"
    try:
        info = write_proxy_fmu(runnable_fmu, values, staged, experiment=experiment)
        root = read_model_description(runnable_fmu)
        meta = _ssv_metadata(scalar_variables(root), info.written, root)
        write_ssv(meta.pop("values"), ssv_path, name=f"{stem}.optimized", **meta)
        trajectories, written_reply = _verify(runnable_fmu, staged, info.written, check, label=fmu_path.name)
        verification = trajectories.to_json()
        verification["validation"] = _validation_problems(staged)
        problems = list(trajectories.problems)
        if problem is not None and expected_kpis:
            kpi_rows, kpi_problems = _kpi_check(problem, written_reply, expected_kpis, check.rtol)
            verification["kpis"] = kpi_rows
            problems += kpi_problems
            worst = max((r["rel_diff"] for r in kpi_rows.values() if r["rel_diff"] is not None), default=0.0)
            if verification["max_rel_diff"] is not None:
                verification["max_rel_diff"] = max(verification["max_rel_diff"], worst)
        verification["ok"], verification["problems"] = not problems, problems
        if not problems:
            os.replace(staged, fmu_path)
            info = replace(info, path=fmu_path)
        else:
            fmu_path.unlink(missing_ok=True)  # an FMU from an earlier run must not pass for this one
    finally:
        staged.unlink(missing_ok=True)
    kept = info if not problems else None
    notes = []
    if kept is not None and problem is not None:
        s = problem.settings
        start, stop = problem.simulated_span()  # what the written FMU declares, or fmpy then takes
        cs_available = "co-simulation" in problem.twin.interfaces
        co_simulation = s.interface == "cs" or (s.interface == "auto" and cs_available)
        note = coarsened_note(fmu_path, start, stop, s.output_interval, co_simulation)
        if note:
            notes.append(note)
    verification["notes"] = notes
    write_result_json(json_path, info.written, source_fmu=runnable_fmu, written=kept, ssv=ssv_path,
                      verification=verification, extra=extra)
    result = WriteBackResult(fmu_path if kept else None, ssv_path, json_path, verification, trajectories,
                             kept, tuple(notes))
    if problems and strict:
        raise VerificationError(
            f"{fmu_path.name} failed verification ({problems[0]}); no FMU was written, details in "
            f"{json_path}; use {ssv_path.name} with the original FMU instead")
    return result


def apply_values(result: Path, fmu: Path, out_dir: Path | None = None, *,
                 strict: bool = True) -> WriteBackResult:
    """``fmi-optimizer apply``: write the values of a result JSON into ``fmu`` (verified, default experiment).

    A source-only FMU is compiled first (through the twin layer). Every numeric output of the FMU is
    compared (every local variable when it has no outputs); String outputs are skipped and named in
    ``verification["skipped_outputs"]``.
    """
    from fmi_optimizer.fmu.twin import Twin

    values = read_result_values(Path(result))
    twin = Twin.open(fmu)
    try:
        values = twin.check_values(values)
    except ValueValidationError as exc:
        other = _other_model(Path(result), twin)
        if not other:
            raise
        raise ValueValidationError(f"{other} ({exc})") from exc
    runnable = Path(twin.fmu.runnable)
    compared = [v.name for v in twin.outputs] or [v.name for v in twin.variables if v.causality == "local"]
    check = check_settings_for(runnable, compared)  # the default experiment: the written FMU keeps it
    return write_back(runnable, values, Path(out_dir) if out_dir else Path(fmu).parent, check=check,
                      stem=Path(fmu).stem, extra={"applied_from": str(result)}, strict=strict)
