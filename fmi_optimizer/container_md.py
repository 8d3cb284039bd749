"""Model-description views for write-back: read an FMI 2.0 or 3.0 modelDescription.xml and render the
container's one.

The container's model description is the original one, transformed: the independent variable first
with value reference 0 (the runtime answers it with its own time), every other exposable variable under
its original name with value references 1..N in container.json order, the written start values shown,
ModelStructure references remapped, and ``container_fmu`` as the model identifier. FMI 2.0 references
variables by 1-based index, FMI 3.0 by value reference; each view handles its own.
"""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass

Value = float | int | bool | str

_FMI2_TYPES = ("Real", "Integer", "Boolean", "String", "Enumeration")
_FMI3_FLOATS = ("Float32", "Float64")
_FMI3_INTS = ("Int8", "UInt8", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64")
_FMI3_TYPES = _FMI3_FLOATS + _FMI3_INTS + ("Boolean", "String", "Enumeration", "Binary", "Clock")
_RUNTIME_CATEGORIES = ("logStatusError", "logFMICalls", "logNested")


@dataclass(frozen=True)
class ScalarInfo:
    """What write-back needs to know about one model variable.

    ``kind`` is the value kind shared by both FMI versions (Real, Integer, Boolean, String,
    Enumeration; Binary/Clock for FMI 3.0 variables the container cannot carry); ``type`` is the XML
    element name (Real, Float64, Int32, ...).
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


def literal(value: Value) -> str:
    """The XML / container.json literal of a coerced value (round-trips exactly)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _num(element: ET.Element | None, name: str) -> float | None:
    text = None if element is None else element.get(name)
    return None if text is None else float(text)


def _info(element: ET.Element, typed: ET.Element, base: ET.Element | None, kind: str,
          default_variability: str, scalar: bool = True) -> ScalarInfo:
    items: tuple[tuple[str, int], ...] = ()
    if kind == "Enumeration" and base is not None:
        items = tuple((str(i.get("name")), int(str(i.get("value")))) for i in base.iter("Item"))
    return ScalarInfo(
        name=str(element.get("name")), value_reference=int(str(element.get("valueReference"))),
        type=typed.tag, kind=kind, causality=element.get("causality", "local"),
        variability=element.get("variability", default_variability), initial=element.get("initial"),
        declared_type=typed.get("declaredType"),
        minimum=_num(typed, "min") if typed.get("min") is not None else _num(base, "min"),
        maximum=_num(typed, "max") if typed.get("max") is not None else _num(base, "max"),
        unit=typed.get("unit") or (base.get("unit") if base is not None else None), items=items, scalar=scalar)


class ModelDescriptionView:
    """Common part of the FMI 2.0 and 3.0 views; subclasses know their XML dialect."""

    major: int
    container_types: Mapping[str, str]
    platforms: Mapping[str, tuple[str, str]]  # FMU platform folder -> (runtime folder, library suffix)

    def __init__(self, root: ET.Element):
        self.root = root
        self.variables = self._read_variables()

    @property
    def model_identifier(self) -> str:
        cosim = self.root.find("CoSimulation")
        return "" if cosim is None else str(cosim.get("modelIdentifier"))

    @property
    def token(self) -> str:
        raise NotImplementedError

    def _read_variables(self) -> list[ScalarInfo]:
        raise NotImplementedError

    def _elements(self) -> list[ET.Element]:
        raise NotImplementedError

    def exposable(self, var: ScalarInfo) -> bool:
        """True when the container can carry this variable (not the independent one, a scalar kind)."""
        return var.causality != "independent" and var.scalar and var.kind not in ("Binary", "Clock") \
            and var.causality != "structuralParameter"

    def exposed(self) -> list[tuple[ET.Element, ScalarInfo]]:
        """(original element, info) of each variable the container exposes, in value-reference order."""
        return [(e, v) for e, v in zip(self._elements(), self.variables, strict=True) if self.exposable(v)]

    def time_name(self) -> str:
        independent = [v.name for v in self.variables if v.causality == "independent"]
        if independent:
            return independent[0]
        names, name = {v.name for v in self.variables}, "time"
        while name in names:
            name += "_"
        return name

    def render(self, guid: str, step: float, written: Mapping[str, Value]) -> bytes:
        """The container's modelDescription.xml."""
        src = self.root
        drop = ("generationDateAndTime", "numberOfEventIndicators", "guid", "instantiationToken")
        out = ET.Element("fmiModelDescription", {k: v for k, v in src.attrib.items() if k not in drop})
        out.set("guid" if self.major == 2 else "instantiationToken", guid)
        out.set("generationTool", "fmi_optimizer write-back (fmpy container runtime)")
        note = "parameters written by fmi_optimizer: " + ", ".join(f"{k}={literal(v)}" for k, v in written.items())
        description = src.get("description")
        out.set("description", f"{description}; {note}" if description else note)
        out.append(self._cosimulation(step))
        for tag in ("UnitDefinitions", "TypeDefinitions"):
            element = src.find(tag)
            if element is not None:
                out.append(copy.deepcopy(element))
        categories = ET.SubElement(out, "LogCategories")
        for name in _RUNTIME_CATEGORIES:
            ET.SubElement(categories, "Category", {"name": name})
        experiment = ET.SubElement(out, "DefaultExperiment")
        original_experiment = src.find("DefaultExperiment")
        if original_experiment is not None:
            experiment.attrib.update(original_experiment.attrib)
        experiment.set("stepSize", repr(step))
        out.append(self._model_variables(written))
        out.append(self._model_structure())
        ET.indent(out)
        return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(out, encoding="utf-8") + b"\n"

    def _cosimulation(self, step: float) -> ET.Element:
        element = ET.Element("CoSimulation", {"modelIdentifier": "container_fmu",
                                              "canHandleVariableCommunicationStepSize": "false"})
        original = self.root.find("CoSimulation")
        for inherited in ("needsExecutionTool", "canBeInstantiatedOnlyOncePerProcess"):
            if original is not None and original.get(inherited) == "true":
                element.set(inherited, "true")  # what limits the nested FMU limits the container
        return element

    def _model_variables(self, written: Mapping[str, Value]) -> ET.Element:
        raise NotImplementedError

    def _model_structure(self) -> ET.Element:
        raise NotImplementedError

    def container_variables(self, written: Mapping[str, Value]) -> list[dict[str, object]]:
        """container.json ``variables``: one per exposed variable, value references 1..N in order."""
        entries = []
        for _, var in self.exposed():
            entry: dict[str, object] = {"variableType": self.container_types[var.type],
                                        "mappings": [[0, var.value_reference]]}
            if var.name in written:
                entry["start"] = [literal(written[var.name])]
            entries.append(entry)
        return entries


class Fmi2View(ModelDescriptionView):
    """FMI 2.0: ScalarVariables with a typed child; ModelStructure refers to 1-based indices."""

    major = 2
    container_types = {"Real": "Float64", "Integer": "Int32", "Enumeration": "Int32",
                       "Boolean": "Boolean", "String": "String"}
    platforms = {"linux64": ("x86_64-linux", ".so"), "win64": ("x86_64-windows", ".dll"),
                 "darwin64": ("x86_64-darwin", ".dylib")}

    @property
    def token(self) -> str:
        return str(self.root.get("guid"))

    def _elements(self) -> list[ET.Element]:
        return self.root.findall("ModelVariables/ScalarVariable")

    def _read_variables(self) -> list[ScalarInfo]:
        types = {t.get("name"): t for t in self.root.findall("TypeDefinitions/SimpleType")}
        result = []
        for sv in self._elements():
            typed = next(child for child in sv if child.tag in _FMI2_TYPES)
            declared = types.get(typed.get("declaredType"))
            base = None if declared is None else next((c for c in declared if c.tag in _FMI2_TYPES), None)
            result.append(_info(sv, typed, base, typed.tag, "continuous"))
        return result

    def _index_map(self) -> dict[int, int]:
        """Old 1-based index -> new 1-based index (the container's time variable is index 1)."""
        exposed = {id(e) for e, _ in self.exposed()}
        mapping, new = {}, 1
        for old, element in enumerate(self._elements(), start=1):
            if id(element) in exposed:
                new += 1
                mapping[old] = new
        return mapping

    def _model_variables(self, written: Mapping[str, Value]) -> ET.Element:
        index = self._index_map()
        variables = ET.Element("ModelVariables")
        time = ET.SubElement(variables, "ScalarVariable", {
            "name": self.time_name(), "valueReference": "0", "causality": "independent",
            "variability": "continuous", "description": "Simulation time (answered by the container)"})
        ET.SubElement(time, "Real")
        for new_vr, (element, var) in enumerate(self.exposed(), start=1):
            clone = copy.deepcopy(element)
            clone.set("valueReference", str(new_vr))
            typed = next(child for child in clone if child.tag in _FMI2_TYPES)
            derivative = typed.get("derivative")
            if derivative is not None:
                if int(derivative) in index:
                    typed.set("derivative", str(index[int(derivative)]))
                else:
                    typed.attrib.pop("derivative")
            if var.name in written:
                typed.set("start", literal(written[var.name]))
            variables.append(clone)
        return variables

    def _model_structure(self) -> ET.Element:
        index = self._index_map()
        original = self.root.find("ModelStructure")
        structure = ET.Element("ModelStructure") if original is None else copy.deepcopy(original)
        for group in list(structure):
            for unknown in list(group):
                old = int(str(unknown.get("index")))
                if old not in index:
                    group.remove(unknown)
                    continue
                unknown.set("index", str(index[old]))
                _remap_dependencies(unknown, index)
            if len(group) == 0:
                structure.remove(group)
        return structure


class Fmi3View(ModelDescriptionView):
    """FMI 3.0: one element per variable type; ModelStructure refers to value references."""

    major = 3
    container_types = {**{t: t for t in _FMI3_FLOATS + _FMI3_INTS}, "Enumeration": "Int64",
                       "Boolean": "Boolean", "String": "String"}
    platforms = {"x86_64-linux": ("x86_64-linux", ".so"), "x86_64-windows": ("x86_64-windows", ".dll"),
                 "x86_64-darwin": ("x86_64-darwin", ".dylib"), "aarch64-darwin": ("aarch64-darwin", ".dylib")}

    @property
    def token(self) -> str:
        return str(self.root.get("instantiationToken"))

    def _elements(self) -> list[ET.Element]:
        variables = self.root.find("ModelVariables")
        return [] if variables is None else [e for e in variables if e.tag in _FMI3_TYPES]

    def _read_variables(self) -> list[ScalarInfo]:
        types = {t.get("name"): t for t in self.root.findall("TypeDefinitions/*")}
        result = []
        for element in self._elements():
            kind = ("Real" if element.tag in _FMI3_FLOATS else "Integer" if element.tag in _FMI3_INTS
                    else element.tag)
            base = types.get(element.get("declaredType"))
            default_variability = "continuous" if element.tag in _FMI3_FLOATS else "discrete"
            scalar = element.find("Dimension") is None
            result.append(_info(element, element, base, kind, default_variability, scalar))
        return result

    def _vr_map(self) -> dict[int, int]:
        """Old value reference -> new value reference (the first exposed variable holding it)."""
        mapping: dict[int, int] = {}
        for new_vr, (_, var) in enumerate(self.exposed(), start=1):
            mapping.setdefault(var.value_reference, new_vr)
        return mapping

    def _cosimulation(self, step: float) -> ET.Element:
        element = super()._cosimulation(step)
        element.set("fixedInternalStepSize", repr(step))
        return element

    def _model_variables(self, written: Mapping[str, Value]) -> ET.Element:
        vrs = self._vr_map()
        variables = ET.Element("ModelVariables")
        ET.SubElement(variables, "Float64", {
            "name": self.time_name(), "valueReference": "0", "causality": "independent",
            "variability": "continuous", "description": "Simulation time (answered by the container)"})
        for new_vr, (element, var) in enumerate(self.exposed(), start=1):
            clone = copy.deepcopy(element)
            clone.set("valueReference", str(new_vr))
            for attribute in ("derivative", "previous"):
                old = clone.get(attribute)
                if old is not None:
                    if int(old) in vrs:
                        clone.set(attribute, str(vrs[int(old)]))
                    else:
                        clone.attrib.pop(attribute)
            clone.attrib.pop("clocks", None)
            if var.name in written:
                _set_fmi3_start(clone, written[var.name])
            variables.append(clone)
        return variables

    def _model_structure(self) -> ET.Element:
        vrs = self._vr_map()
        original = self.root.find("ModelStructure")
        structure = ET.Element("ModelStructure") if original is None else copy.deepcopy(original)
        for unknown in list(structure):
            if unknown.get("valueReference") is None:
                continue
            old = int(str(unknown.get("valueReference")))
            if old not in vrs:
                structure.remove(unknown)
                continue
            unknown.set("valueReference", str(vrs[old]))
            _remap_dependencies(unknown, vrs)
        return structure


def _set_fmi3_start(element: ET.Element, value: Value) -> None:
    if element.tag == "String":  # FMI 3.0 strings carry their start as <Start value="..."/> children
        for start in element.findall("Start"):
            element.remove(start)
        ET.SubElement(element, "Start", {"value": literal(value)})
    else:
        element.set("start", literal(value))


def _remap_dependencies(unknown: ET.Element, mapping: Mapping[int, int]) -> None:
    """Rewrite a dependencies list; drop it (meaning: depends on all) when a reference is not exposed."""
    deps = unknown.get("dependencies")
    if deps is None or not deps.strip():
        return
    try:
        unknown.set("dependencies", " ".join(str(mapping[int(d)]) for d in deps.split()))
    except KeyError:
        unknown.attrib.pop("dependencies")
        unknown.attrib.pop("dependenciesKind", None)


def view_for(root: ET.Element) -> ModelDescriptionView | None:
    """The view for this FMI version, or None when write-back does not know the version."""
    version = root.get("fmiVersion", "")
    if version == "2.0":
        return Fmi2View(root)
    if version.startswith("3."):
        return Fmi3View(root)
    return None
