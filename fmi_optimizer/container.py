"""Wrap an FMI 2.0/3.0 co-simulation FMU in fmpy's container runtime with new start values baked in.

Why a container: editing ``start`` attributes in modelDescription.xml changes nothing in importers that
do not push XML start values (fmpy among them), because the binary keeps its compiled defaults. fmpy's
container runtime (a prebuilt binary for Linux, Windows and macOS) reads ``resources/container.json``
and *sets* the listed start values on the nested FMU right after instantiating it, so every importer
sees the new values, whatever it does with XML start values.

The container's model description is the original one, transformed (see :mod:`container_md`). This
module checks the values, lays out the zip and writes it atomically; it never simulates.
"""

from __future__ import annotations

import json
import math
import uuid
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fmi_optimizer.container_md import ModelDescriptionView, ScalarInfo, Value, literal, view_for
from fmi_optimizer.errors import FmuError, FmuUnsupportedError, OutputError, ValueValidationError
from fmi_optimizer.files import atomic_output
from fmi_optimizer.fmu_file import content_hash as sha256  # one hashing helper for FMU files

__all__ = ["COMPONENT", "ContainerInfo", "ScalarInfo", "Value", "coerce", "literal", "read_model_description",
           "scalar_variables", "sha256", "write_container_fmu"]

COMPONENT = "model"
"""Instance name and resources sub-folder of the nested (original) FMU inside the container."""

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class ContainerInfo:
    """Facts about a written container FMU, for the JSON record and the report."""

    path: Path
    guid: str
    original_guid: str
    model_identifier: str
    fixed_step_size: float
    platforms: tuple[str, ...]
    exposed_variables: int
    written: dict[str, Value]


def read_model_description(fmu: Path) -> ET.Element:
    """The parsed modelDescription.xml of an FMU zip; FmuError when it is not a readable FMU."""
    try:
        with zipfile.ZipFile(fmu) as zf:
            data = zf.read("modelDescription.xml")
    except FileNotFoundError:
        raise FmuError(f"{fmu}: file not found; pass the path of an existing .fmu file") from None
    except KeyError:
        raise FmuError(f"{fmu}: no modelDescription.xml in the archive; pass a valid FMU") from None
    except zipfile.BadZipFile:
        raise FmuError(f"{fmu}: not a zip archive; pass a valid FMU") from None
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise FmuError(f"{fmu}: modelDescription.xml is not well-formed XML ({exc}); repair the FMU") from None


def scalar_variables(root: ET.Element) -> list[ScalarInfo]:
    """The model variables of an FMI 2.0 or 3.0 model description, in document order."""
    view = view_for(root)
    return [] if view is None else view.variables


def settable_before_init(var: ScalarInfo) -> bool:
    """True when FMI lets an importer set this variable right after instantiation (before init)."""
    if var.variability == "constant":
        return False
    return var.causality in ("parameter", "input") or var.initial == "exact"


def coerce(fmu: Path, var: ScalarInfo, value: object) -> Value:
    """The value as the Python type of the variable (enumeration item names become their integer).

    Raises ValueValidationError naming the variable when the type or range does not fit.
    """
    where = f"{fmu.name}: value {value!r} for {var.kind} variable '{var.name}'"
    if var.kind == "Real":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueValidationError(f"{where} is not a finite number; pass a float")
        out: Value = float(value)
    elif var.kind == "Boolean":
        if isinstance(value, bool):
            out = value
        elif isinstance(value, int) and value in (0, 1):
            out = bool(value)
        else:
            raise ValueValidationError(f"{where} is not a boolean; pass true/false")
    elif var.kind == "String":
        if not isinstance(value, str):
            raise ValueValidationError(f"{where} is not a string; pass a str")
        out = value
    else:
        out = _coerce_integer(where, var, value)
    _check_range(where, var, out)
    return out


def _coerce_integer(where: str, var: ScalarInfo, value: object) -> int:
    if var.kind == "Enumeration" and isinstance(value, str):
        names = dict(var.items)
        if value not in names:
            raise ValueValidationError(f"{where} is not an item; use one of {sorted(names)}")
        return names[value]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or float(value) != int(value):
        raise ValueValidationError(f"{where} is not an integer; pass an int")
    number = int(value)
    if var.kind == "Enumeration" and var.items and number not in dict(var.items).values():
        raise ValueValidationError(f"{where} is not an item value; use one of {[v for _, v in var.items]}")
    return number


def _check_range(where: str, var: ScalarInfo, value: Value) -> None:
    if isinstance(value, bool) or isinstance(value, str):
        return
    if var.minimum is not None and value < var.minimum or var.maximum is not None and value > var.maximum:
        raise ValueValidationError(f"{where} is outside [{var.minimum}, {var.maximum}]; pass a value inside")


def runtime_binary(runtime_platform: str, suffix: str) -> Path:
    """Path of fmpy's prebuilt container runtime for a platform (may not exist)."""
    import fmpy.container_fmu

    return Path(fmpy.container_fmu.__file__).parent / "binaries" / runtime_platform / f"container_fmu{suffix}"


def runtime_version() -> str:
    """The container.json format version the installed fmpy runtime expects."""
    import fmpy.container_fmu

    return str(fmpy.container_fmu.__version__)


def this_platform(major: int = 2) -> str:
    """Platform folder name of this machine for an FMI major version (linux64, x86_64-linux, ...)."""
    import fmpy

    return str(fmpy.platform if major == 2 else fmpy.platform_tuple)


class _Plan:
    """The transformed model description and container.json for one original FMU."""

    def __init__(self, fmu: Path, root: ET.Element, values: Mapping[str, object], step: float | None):
        self.fmu = fmu
        self.root = root
        self.view = self._check_kind(root)
        self.model_identifier = self.view.model_identifier
        self.original_guid = self.view.token
        self.variables = self.view.variables
        self.written = self._coerce_all(values)
        self.step = self._step_size(step)
        payload = json.dumps([self.original_guid, literal_map(self.written), self.step], sort_keys=True)
        self.guid = "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, "fmi-optimizer:" + payload)) + "}"

    def _check_kind(self, root: ET.Element) -> ModelDescriptionView:
        version = root.get("fmiVersion", "?")
        view = view_for(root)
        if view is None:
            raise FmuUnsupportedError(
                f"{self.fmu.name}: FMI {version} is not supported by write-back; export the model as FMI 2.0 "
                "or 3.0 co-simulation")
        if root.find("CoSimulation") is None:
            raise FmuUnsupportedError(
                f"{self.fmu.name}: model-exchange only, write-back needs co-simulation; re-export the FMU "
                "with co-simulation enabled (or wrap it in a co-simulation FMU) and write back again")
        return view

    def _coerce_all(self, values: Mapping[str, object]) -> dict[str, Value]:
        by_name = {v.name: v for v in self.variables}
        written: dict[str, Value] = {}
        for name, value in values.items():
            var = by_name.get(name)
            if var is None:
                raise ValueValidationError(
                    f"{self.fmu.name}: no variable named '{name}'; check the parameter name in the study")
            if not settable_before_init(var) or not self.view.exposable(var):
                raise ValueValidationError(
                    f"{self.fmu.name}: '{name}' ({var.causality}, {var.variability}, {var.type}) cannot be "
                    "set before initialization; write only scalar parameters, inputs or initial='exact' variables")
            written[name] = coerce(self.fmu, var, value)
        return written

    def _step_size(self, step: float | None) -> float:
        experiment = self.root.find("DefaultExperiment")
        if step is None and experiment is not None and experiment.get("stepSize"):
            step = float(str(experiment.get("stepSize")))
        if step is None:
            from fmpy.simulation import auto_interval

            start = float(experiment.get("startTime", "0")) if experiment is not None else 0.0
            stop = float(experiment.get("stopTime", "1")) if experiment is not None else 1.0
            step = float(auto_interval(stop - start))
        if not math.isfinite(step) or step <= 0:
            raise ValueValidationError(f"{self.fmu.name}: step size {step} must be > 0; pass a positive step")
        return step

    def model_description(self) -> bytes:
        """The container's modelDescription.xml."""
        return self.view.render(self.guid, self.step, self.written)

    def container_json(self) -> str:
        """resources/container.json for fmpy's container runtime."""
        data = {
            "containerVersion": runtime_version(),
            "instantiationToken": self.guid,
            "fixedStepSize": self.step,
            "parallelDoStep": False,
            "components": [{"fmiMajorVersion": str(self.view.major), "name": COMPONENT,
                            "instantiationToken": self.original_guid, "modelIdentifier": self.model_identifier,
                            "path": COMPONENT}],
            "variables": self.view.container_variables(self.written),
            "connections": [],
        }
        return json.dumps(data, indent=2)


def literal_map(values: Mapping[str, Value]) -> dict[str, str]:
    """Values as their literals, for hashing and messages."""
    return {k: literal(v) for k, v in sorted(values.items())}


def _platforms(fmu: Path, names: list[str], view: ModelDescriptionView) -> list[str]:
    """Platform folders that have both an original binary and a container runtime binary."""
    found = []
    for platform, (runtime_platform, suffix) in view.platforms.items():
        has_model = f"binaries/{platform}/{view.model_identifier}{suffix}" in names
        if has_model and runtime_binary(runtime_platform, suffix).is_file():
            found.append(platform)
    here = this_platform(view.major)
    if here not in found:
        raise FmuUnsupportedError(
            f"{fmu.name}: no {here} binary '{view.model_identifier}' in binaries/{here}/ (or no container "
            "runtime for it); compile the FMU for this platform first (the twin layer builds source-only FMUs)")
    return found


def _write_entry(zout: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zout.writestr(info, data)


def write_container_fmu(original: Path, values: Mapping[str, object], out_fmu: Path,
                        step_size: float | None = None) -> ContainerInfo:
    """Write ``out_fmu``: a container FMU around ``original`` with ``values`` set at instantiation.

    The input is only read. The output is written to a temporary file beside it and renamed, so a
    failed write never leaves a half FMU behind.
    """
    original = Path(original)
    out_fmu = Path(out_fmu)
    plan = _Plan(original, read_model_description(original), values, step_size)
    if out_fmu.exists() and out_fmu.resolve() == original.resolve():
        raise OutputError(f"{out_fmu}: is the input FMU; write-back never overwrites its input, pick another path")
    with zipfile.ZipFile(original) as zin:
        names = zin.namelist()
        platforms = _platforms(original, names, plan.view)
        with atomic_output(out_fmu) as tmp, zipfile.ZipFile(tmp, "w") as zout:
            _write_entry(zout, "modelDescription.xml", plan.model_description())
            for platform in platforms:
                runtime_platform, suffix = plan.view.platforms[platform]
                binary = runtime_binary(runtime_platform, suffix).read_bytes()
                _write_entry(zout, f"binaries/{platform}/container_fmu{suffix}", binary)
            _write_entry(zout, "resources/container.json", plan.container_json().encode())
            for name in names:
                if not name.endswith("/"):
                    _write_entry(zout, f"resources/{COMPONENT}/{name}", zin.read(name))
    return ContainerInfo(path=out_fmu, guid=plan.guid, original_guid=plan.original_guid,
                         model_identifier=plan.model_identifier, fixed_step_size=plan.step,
                         platforms=tuple(platforms), exposed_variables=len(plan.view.exposed()) + 1,
                         written=dict(plan.written))


