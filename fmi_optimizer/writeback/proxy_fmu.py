"""Write an FMU whose start values are the optimized ones: the original FMU behind a one-to-one proxy.

Why a proxy: editing ``start`` attributes in modelDescription.xml changes nothing in importers that do
not push XML start values (fmpy among them), because the binary keeps its compiled defaults. The
written FMU therefore carries the original FMU unchanged (``resources/fmio_proxy/inner/``) and our own
small runtime (``fmi_optimizer/writeback/proxy/fmio_proxy.c``) as its binary. The runtime forwards every FMI
call to the original with the importer's callbacks, and *sets* the optimized values at the point FMUs honour
(FMI 2.0: after fmi2SetupExperiment; FMI 3.0 / 1.0: before initialization), replaying the importer's
own values after them. Because it is one-to-one, the written modelDescription.xml is the original one
with the new ``start`` attributes, a new GUID / instantiation token and the proxy's model identifier;
value references are unchanged. See docs/writeback.md.

This module checks the values, lays out the zip and writes it atomically; it never simulates.
"""

from __future__ import annotations

import copy
import math
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from fmi_optimizer.errors import FmuError, FmuUnsupportedError, OutputError, ValueValidationError
from fmi_optimizer.fmu.archive import content_hash as sha256  # one hashing helper for FMU files
from fmi_optimizer.fmu.variables import settable_before_init as variable_settable
from fmi_optimizer.writeback.atomic import atomic_output
from fmi_optimizer.writeback.proxy_build import MODEL_IDENTIFIER, library_suffix, proxy_library

__all__ = ["INNER", "ProxyInfo", "ScalarInfo", "Value", "coerce", "literal", "read_model_description",
           "require_writeback_support", "scalar_variables", "sha256", "write_proxy_fmu", "writeback_support"]

Value = float | int | bool | str

INNER = "resources/fmio_proxy/inner"
"""Where the original FMU lies, unzipped and unchanged, inside a written FMU."""
CONFIG = "resources/fmio_proxy/proxy.cfg"

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_FMI12_TYPES = ("Real", "Integer", "Boolean", "String", "Enumeration")
_FMI3_FLOATS = ("Float32", "Float64")
_FMI3_INTS = ("Int8", "UInt8", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64")
_FMI3_TYPES = _FMI3_FLOATS + _FMI3_INTS + ("Boolean", "String", "Enumeration", "Binary", "Clock")

ET.register_namespace("xsi", "http://www.w3.org/2001/XMLSchema-instance")


@dataclass(frozen=True)
class ScalarInfo:
    """What write-back needs to know about one model variable.

    ``kind`` is the value kind shared by the FMI versions (Real, Integer, Boolean, String, Enumeration;
    Binary/Clock for FMI 3.0 variables write-back cannot carry); ``type`` is the XML element name.
    """

    name: str
    value_reference: int
    type: str
    kind: str
    causality: str
    variability: str
    initial: str | None
    declared_type: str | None
    minimum: float | None
    maximum: float | None
    unit: str | None
    items: tuple[tuple[str, int], ...]
    scalar: bool = True


@dataclass(frozen=True)
class ProxyInfo:
    """Facts about a written FMU, for the JSON record and the report."""

    path: Path
    guid: str
    original_guid: str
    model_identifier: str
    fmi_version: str
    platform: str
    written: dict[str, Value]
    # platforms the original has binaries for that the written FMU does not run on (its proxy is built here)
    left_behind: tuple[str, ...] = ()


def literal(value: Value) -> str:
    """The XML literal of a coerced value (round-trips exactly)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


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
        raise FmuError(f"{fmu}: modelDescription.xml is not well-formed XML ({exc}); repair the "
                       "FMU") from None


def _num(element: ET.Element | None, name: str) -> float | None:
    text = None if element is None else element.get(name)
    return None if text is None else float(text)


def _info(element: ET.Element, typed: ET.Element, base: ET.Element | None, kind: str, causality: str,
          variability: str, items: tuple[tuple[str, int], ...] = (), scalar: bool = True) -> ScalarInfo:
    return ScalarInfo(
        name=str(element.get("name")), value_reference=int(str(element.get("valueReference"))),
        type=typed.tag, kind=kind, causality=causality, variability=variability,
        initial=element.get("initial"),
        declared_type=typed.get("declaredType"),
        minimum=_num(typed, "min") if typed.get("min") is not None else _num(base, "min"),
        maximum=_num(typed, "max") if typed.get("max") is not None else _num(base, "max"),
        unit=typed.get("unit") or (base.get("unit") if base is not None else None), items=items,
        scalar=scalar)


def _variables_fmi12(root: ET.Element) -> list[tuple[ET.Element, ScalarInfo]]:
    fmi1 = root.get("fmiVersion") == "1.0"
    types = {t.get("name"): t for t in root.findall("TypeDefinitions/" + ("Type" if fmi1 else "SimpleType"))}
    out = []
    for sv in root.findall("ModelVariables/ScalarVariable"):
        typed = next(child for child in sv if child.tag in _FMI12_TYPES)
        declared = types.get(typed.get("declaredType"))
        base = None if declared is None else next(
            (c for c in declared if c.tag in _FMI12_TYPES or c.tag.endswith("Type")), None)
        items: tuple[tuple[str, int], ...] = ()
        if typed.tag == "Enumeration" and base is not None:
            items = tuple((str(i.get("name")), int(i.get("value", n))) for n,
                          i in enumerate(base.iter("Item"), 1))
        if fmi1:  # FMI 1.0: parameters are a variability, causality internal/none means local
            variability = sv.get("variability", "continuous")
            causality = "parameter" if variability == "parameter" and sv.get("causality") != "input" else \
                {"internal": "local",
                 "none": "local"}.get(sv.get("causality", "internal"), sv.get("causality", ""))
            variability = "fixed" if variability == "parameter" else variability
        else:
            causality, variability = sv.get("causality", "local"), sv.get("variability", "continuous")
        out.append((sv, _info(sv, typed, base, typed.tag, causality, variability, items)))
    return out


def _variables_fmi3(root: ET.Element) -> list[tuple[ET.Element, ScalarInfo]]:
    types = {t.get("name"): t for t in root.findall("TypeDefinitions/*")}
    variables = root.find("ModelVariables")
    out = []
    for element in [] if variables is None else [e for e in variables if e.tag in _FMI3_TYPES]:
        kind = ("Real" if element.tag in _FMI3_FLOATS else "Integer" if element.tag in _FMI3_INTS
                else element.tag)
        base = types.get(element.get("declaredType"))
        items: tuple[tuple[str, int], ...] = ()
        if kind == "Enumeration" and base is not None:
            items = tuple((str(i.get("name")), int(str(i.get("value")))) for i in base.iter("Item"))
        default_variability = "continuous" if element.tag in _FMI3_FLOATS else "discrete"
        out.append((element, _info(element, element, base, kind, element.get("causality", "local"),
                                   element.get("variability", default_variability), items,
                                   element.find("Dimension") is None)))
    return out


def _elements(root: ET.Element) -> list[tuple[ET.Element, ScalarInfo]]:
    version = root.get("fmiVersion", "")
    if version in ("1.0", "2.0"):
        return _variables_fmi12(root)
    if version.startswith("3."):
        return _variables_fmi3(root)
    return []


def scalar_variables(root: ET.Element) -> list[ScalarInfo]:
    """The model variables of an FMI 1.0, 2.0 or 3.0 model description, in document order."""
    return [info for _, info in _elements(root)]


def settable_before_init(var: ScalarInfo) -> bool:
    """True when FMI lets an importer set this variable right after instantiation (before init): the rule a
    study's parameters were checked against (structural parameters are then refused by :func:`carried`)."""
    return variable_settable(var.causality, var.variability, var.initial)


def writable(var: ScalarInfo) -> bool:
    """True when a written FMU can carry a new start value for this variable: settable before
    initialization and carried by the proxy. The one check of study start and of the write itself."""
    return settable_before_init(var) and carried(var)


def carried(var: ScalarInfo) -> bool:
    """True when the proxy can bake a value for this variable (a scalar of a basic type)."""
    return var.causality not in ("independent", "structuralParameter") and var.scalar \
        and var.kind not in ("Binary", "Clock")


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


def this_platform(fmi_version: str) -> str:
    """Platform folder name of this machine for an FMI version (linux64, x86_64-linux, ...)."""
    import fmpy

    return str(fmpy.platform_tuple if fmi_version.startswith("3.") else fmpy.platform)


def _interfaces(root: ET.Element) -> list[ET.Element]:
    """The interface elements that name a model identifier (FMI 2.0/3.0), CoSimulation first."""
    order = ("CoSimulation", "ModelExchange", "ScheduledExecution")
    return [e for tag in order for e in root.findall(tag)]


def _inner_identifier(root: ET.Element) -> str:
    if root.get("fmiVersion") == "1.0":
        return str(root.get("modelIdentifier", ""))
    cosim = root.find("CoSimulation")
    return "" if cosim is None else str(cosim.get("modelIdentifier", ""))


def _support_problem(name: str, root: ET.Element) -> str | None:
    version = root.get("fmiVersion", "?")
    if version == "1.0":
        if root.find("Implementation") is None:
            return (f"{name}: FMI 1.0 model exchange is not supported by write-back, only FMI 1.0 "
                    "co-simulation; export the model as co-simulation FMU (FMI 2.0 or 3.0 preferred)")
        return None
    if version != "2.0" and not version.startswith("3."):
        return (f"{name}: FMI {version} is not supported by write-back; export the model as FMI 2.0 or 3.0 "
                "co-simulation")
    if root.find("CoSimulation") is None:
        return (f"{name}: model-exchange only, write-back needs co-simulation; re-export the FMU with "
                "co-simulation enabled (or wrap it in a co-simulation FMU) and write back again")
    return None


def writeback_support(fmu_path: Path | str) -> str | None:
    """None when write-back can write this FMU here, else the one-line reason (call it at study start).

    Checks the FMI version and interface, and that the proxy runtime is available on this machine
    (compiling it once when needed). Does not check the values. Never raises for an unsupported FMU.
    """
    fmu = Path(fmu_path)
    try:
        root = read_model_description(fmu)
        problem = _support_problem(fmu.name, root)
        if problem:
            return problem
        proxy_library()
    except (FmuError, FmuUnsupportedError) as exc:
        return str(exc)
    return None


def uncarried(fmu_path: Path | str, names: Iterable[str]) -> list[str]:
    """Those of ``names`` a written FMU of ``fmu_path`` cannot carry as start values (an FMI 3.0 structural
    parameter, an array, a variable FMI does not let an importer set): checked at study start, so such a study
    is refused before its budget is spent rather than at the write-back."""
    by_name = {v.name: v for v in scalar_variables(read_model_description(Path(fmu_path)))}
    return [n for n in names if n in by_name and not writable(by_name[n])]


def require_writeback_support(fmu_path: Path | str) -> None:
    """Raise FmuUnsupportedError (exit code 4) with :func:`writeback_support`'s reason, if there is one."""
    problem = writeback_support(fmu_path)
    if problem:
        raise FmuUnsupportedError(problem)


class _Plan:
    """The outer model description and proxy.cfg for one original FMU."""

    def __init__(self, fmu: Path, root: ET.Element, values: Mapping[str, object],
                 experiment: Mapping[str, float] | None):
        self.fmu = fmu
        self.root = root
        problem = _support_problem(fmu.name, root)
        if problem:
            raise FmuUnsupportedError(problem)
        self.version = str(root.get("fmiVersion"))
        self.fmi1 = self.version == "1.0"
        self.elements = _elements(root)
        self.inner_identifier = _inner_identifier(root)
        self.original_guid = str(root.get("instantiationToken") if self.version.startswith("3.")
                                 else root.get("guid"))
        self.written = self._coerce_all(values)
        self.experiment = dict(experiment or {})
        payload = repr((self.original_guid, sorted((k, literal(v)) for k, v in self.written.items()),
                        sorted(self.experiment.items())))
        self.guid = "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, "fmi-optimizer:" + payload)) + "}"

    def _coerce_all(self, values: Mapping[str, object]) -> dict[str, Value]:
        by_name = {v.name: v for _, v in self.elements}
        written: dict[str, Value] = {}
        for name, value in values.items():
            var = by_name.get(name)
            if var is None:
                raise ValueValidationError(
                    f"{self.fmu.name}: no variable named '{name}'; check the parameter name in the study")
            if not writable(var):
                raise ValueValidationError(
                    f"{self.fmu.name}: '{name}' ({var.causality}, {var.variability}, {var.type}) cannot be "
                    "set before initialization; write only scalar parameters, inputs or initial='exact' "
                    "variables")
            written[name] = coerce(self.fmu, var, value)
        return written

    def model_description(self) -> bytes:
        """The written modelDescription.xml: the original with new starts, token and model identifier."""
        out = copy.deepcopy(self.root)
        out.set("instantiationToken" if self.version.startswith("3.") else "guid", self.guid)
        note = ("parameters written by fmi_optimizer: "
                + ", ".join(f"{k}={literal(v)}" for k, v in self.written.items()))
        description = out.get("description")
        out.set("description", f"{description}; {note}" if description else note)
        if self.fmi1:
            out.set("modelIdentifier", MODEL_IDENTIFIER)
        inner = self.inner_identifier
        for interface in _interfaces(out):
            if interface.get("modelIdentifier") != inner:  # another binary: the proxy forwards to one only
                out.remove(interface)
                continue
            interface.set("modelIdentifier", MODEL_IDENTIFIER)
            for sources in interface.findall("SourceFiles"):  # the written FMU ships no sources of its own
                interface.remove(sources)
        if self.experiment:
            experiment = out.find("DefaultExperiment")
            if experiment is None:
                experiment = ET.Element("DefaultExperiment")
                anchor = out.find("ModelVariables")
                out.insert(list(out).index(anchor) if anchor is not None else len(out), experiment)
            for key, number in self.experiment.items():
                experiment.set(key, repr(float(number)))
        by_name = {info.name: element for element, info in _elements(out)}
        for name, value in self.written.items():
            element = by_name[name]
            if self.version.startswith("3."):
                _set_fmi3_start(element, value)
            else:
                typed = next(child for child in element if child.tag in _FMI12_TYPES)
                typed.set("start", literal(value))
        return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(out, encoding="utf-8") + b"\n"

    def config(self, binary: str) -> str:
        """resources/fmio_proxy/proxy.cfg for the proxy runtime."""
        by_name = {v.name: v for _, v in self.elements}
        quote = urllib.parse.quote
        lines = ["fmio-proxy 1", f"fmi {self.version[0]}", f"binary {quote(binary)}",
                 f"token {quote(self.original_guid, safe='')}",
                 f"identifier {quote(self.inner_identifier, safe='')}"]
        for name, value in self.written.items():
            var = by_name[name]
            if self.version.startswith("3."):
                kind = "Int64" if var.type == "Enumeration" else var.type
            else:
                kind = "Integer" if var.type == "Enumeration" else var.type
            if isinstance(value, bool):
                text = "1" if value else "0"
            elif isinstance(value, str):
                text = quote(value, safe="")
            else:
                text = literal(value)
            lines.append(f"value {kind} {var.value_reference} {text}")
        return "\n".join(lines) + "\n"


def _set_fmi3_start(element: ET.Element, value: Value) -> None:
    if element.tag == "String":  # FMI 3.0 strings carry their start as <Start value="..."/> children
        for start in element.findall("Start"):
            element.remove(start)
        ET.SubElement(element, "Start", {"value": literal(value)})
    else:
        element.set("start", literal(value))


def _write_entry(zout: zipfile.ZipFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = mode << 16
    zout.writestr(info, data)


def _write_dir(zout: zipfile.ZipFile, name: str) -> None:
    info = zipfile.ZipInfo(name.rstrip("/") + "/", date_time=_ZIP_DATE)
    info.external_attr = (0o40755 << 16) | 0x10
    zout.writestr(info, b"")


def write_proxy_fmu(original: Path, values: Mapping[str, object], out_fmu: Path, *,
                    experiment: Mapping[str, float] | None = None) -> ProxyInfo:
    """Write ``out_fmu``: ``original`` behind the proxy runtime, with ``values`` as its start values.

    ``experiment`` (startTime, stopTime, stepSize, tolerance) overrides DefaultExperiment attributes of
    the written FMU (a study writes its own simulation settings). The input is only read. The output is
    written to a temporary file beside it and renamed, so a failed write never leaves a half FMU behind.
    """
    original, out_fmu = Path(original), Path(out_fmu)
    plan = _Plan(original, read_model_description(original), values, experiment)
    if out_fmu.exists() and out_fmu.resolve() == original.resolve():
        raise OutputError(f"{out_fmu}: is the input FMU; write-back never overwrites its input, pick another "
                          "path")
    platform = this_platform(plan.version)
    suffix = library_suffix()
    binary = f"binaries/{platform}/{plan.inner_identifier}{suffix}"
    with zipfile.ZipFile(original) as zin:
        names = zin.namelist()
        if binary not in names:
            raise FmuUnsupportedError(
                f"{original.name}: no {platform} binary '{plan.inner_identifier}' in binaries/{platform}/; "
                "compile the FMU for this platform first (the twin layer builds source-only FMUs)")
        runtime = proxy_library().read_bytes()
        with atomic_output(out_fmu) as tmp, zipfile.ZipFile(tmp, "w") as zout:
            _write_entry(zout, "modelDescription.xml", plan.model_description())
            _write_entry(zout, f"binaries/{platform}/{MODEL_IDENTIFIER}{suffix}", runtime, 0o755)
            _write_entry(zout, CONFIG, plan.config(f"inner/{binary}").encode())
            for name in names:
                if not name.endswith("/"):
                    _write_entry(zout, f"{INNER}/{name}", zin.read(name))
            if not any(n.startswith("resources/") and not n.endswith("/") for n in names):
                _write_dir(zout, f"{INNER}/resources/")  # the inner FMU always gets a resource location
    others = sorted({n.split("/")[1] for n in names
                     if n.startswith("binaries/") and n.count("/") >= 2 and n.split("/")[1]} - {platform})
    return ProxyInfo(path=out_fmu, guid=plan.guid, original_guid=plan.original_guid,
                     model_identifier=MODEL_IDENTIFIER, fmi_version=plan.version, platform=platform,
                     written=dict(plan.written), left_behind=tuple(others))
