"""SSP 1.0 parameter values (``.ssv``): write and read a ``ssv:ParameterSet``.

An ``.ssv`` file is the tool-neutral way to hand a parameter set to an SSP-aware importer
(OMSimulator, FMI Composer, Simulink, ...). Each value becomes an ``ssv:Real``, ``ssv:Integer``,
``ssv:Boolean``, ``ssv:String`` or ``ssv:Enumeration`` element (enumerations by item *name*, as the
standard requires); units and enumeration types used are defined in the same file.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fmi_optimizer.errors import DataError, ValueValidationError
from fmi_optimizer.writeback.atomic import atomic_output

SSV = "http://ssp-standard.org/SSP1/SystemStructureParameterValues"
SSC = "http://ssp-standard.org/SSP1/SystemStructureCommon"
KINDS = ("Real", "Integer", "Boolean", "String", "Enumeration")
_BASE_UNITS = ("kg", "m", "s", "A", "K", "mol", "cd", "rad")

ET.register_namespace("ssv", SSV)
ET.register_namespace("ssc", SSC)

SsvValue = float | int | bool | str


@dataclass(frozen=True)
class UnitDefinition:
    """An SI unit: base-unit exponents plus factor/offset (SSP/FMI convention)."""

    exponents: Mapping[str, int] = field(default_factory=dict)
    factor: float = 1.0
    offset: float = 0.0


@dataclass(frozen=True)
class SsvParameter:
    """One parameter read back from an .ssv file."""

    name: str
    kind: str
    value: SsvValue
    unit: str | None = None


def infer_kind(value: object) -> str:
    """The SSP element for a plain Python value (enumerations must be declared explicitly)."""
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Real"
    if isinstance(value, str):
        return "String"
    raise ValueValidationError(f"value {value!r} has no SSP type; pass a float, int, bool or str")


def _literal(name: str, kind: str, value: object) -> str:
    if kind == "Real":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueValidationError(f"parameter '{name}': {value!r} is not a finite Real; pass a number")
        return repr(float(value))
    if kind == "Integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueValidationError(f"parameter '{name}': {value!r} is not an Integer; pass an int")
        return str(value)
    if kind == "Boolean":
        if not isinstance(value, bool):
            raise ValueValidationError(f"parameter '{name}': {value!r} is not a Boolean; pass True/False")
        return "true" if value else "false"
    if kind in ("String", "Enumeration"):
        if not isinstance(value, str):
            raise ValueValidationError(f"parameter '{name}': {value!r} is not a {kind} name; pass a str")
        return value
    raise ValueValidationError(f"parameter '{name}': unknown SSP type {kind!r}; use one of {list(KINDS)}")


def parameter_set(values: Mapping[str, SsvValue], *, name: str = "optimized",
                  kinds: Mapping[str, str] | None = None, units: Mapping[str, str] | None = None,
                  unit_definitions: Mapping[str, UnitDefinition] | None = None,
                  enumerations: Mapping[str, tuple[str, Mapping[str, int]]] | None = None) -> ET.Element:
    """The ``ssv:ParameterSet`` element for ``values``.

    ``kinds`` overrides the inferred SSP type per parameter ("Enumeration" needs the item name as the
    value); ``units`` gives the unit of Real parameters; ``unit_definitions`` defines those units (a unit
    without a definition is still written, as SSP allows units defined by the including SSD);
    ``enumerations`` maps a parameter to (enumeration type name, {item name: value}).
    """
    kinds = kinds or {}
    units = units or {}
    enumerations = enumerations or {}
    root = ET.Element(f"{{{SSV}}}ParameterSet", {"version": "1.0", "name": name})
    params = ET.SubElement(root, f"{{{SSV}}}Parameters")
    used_units: list[str] = []
    used_enums: dict[str, Mapping[str, int]] = {}
    for pname, value in values.items():
        kind = kinds.get(pname) or infer_kind(value)
        element = ET.SubElement(ET.SubElement(params, f"{{{SSV}}}Parameter", {"name": pname}),
                                f"{{{SSV}}}{kind}", {"value": _literal(pname, kind, value)})
        if kind == "Real" and units.get(pname):
            element.set("unit", units[pname])
            if units[pname] not in used_units:
                used_units.append(units[pname])
        if kind == "Enumeration" and pname in enumerations:
            type_name, items = enumerations[pname]
            element.set("name", type_name)
            used_enums[type_name] = items
    if used_enums:
        _enumerations(root, used_enums)
    defined = [u for u in used_units if unit_definitions and u in unit_definitions]
    if defined and unit_definitions:
        _units(root, {u: unit_definitions[u] for u in defined})
    return root


def _enumerations(root: ET.Element, enums: Mapping[str, Mapping[str, int]]) -> None:
    block = ET.SubElement(root, f"{{{SSV}}}Enumerations")
    for type_name, items in enums.items():
        enum = ET.SubElement(block, f"{{{SSC}}}Enumeration", {"name": type_name})
        for item, number in items.items():
            ET.SubElement(enum, f"{{{SSC}}}Item", {"name": item, "value": str(number)})


def _units(root: ET.Element, definitions: Mapping[str, UnitDefinition]) -> None:
    block = ET.SubElement(root, f"{{{SSV}}}Units")
    for unit_name, definition in definitions.items():
        unit = ET.SubElement(block, f"{{{SSC}}}Unit", {"name": unit_name})
        base = ET.SubElement(unit, f"{{{SSC}}}BaseUnit")
        for key in _BASE_UNITS:
            if definition.exponents.get(key):
                base.set(key, str(int(definition.exponents[key])))
        if definition.factor != 1.0:
            base.set("factor", repr(float(definition.factor)))
        if definition.offset != 0.0:
            base.set("offset", repr(float(definition.offset)))


def write_ssv(values: Mapping[str, SsvValue], out_ssv: Path, units: Mapping[str, str] | None = None, *,
              name: str = "optimized", kinds: Mapping[str, str] | None = None,
              unit_definitions: Mapping[str, UnitDefinition] | None = None,
              enumerations: Mapping[str, tuple[str, Mapping[str, int]]] | None = None) -> Path:
    """Write ``values`` as an SSP 1.0 parameter set to ``out_ssv`` (atomically) and return the path."""
    root = parameter_set(values, name=name, kinds=kinds, units=units, unit_definitions=unit_definitions,
                         enumerations=enumerations)
    ET.indent(root)
    data = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n"
    out_ssv = Path(out_ssv)
    with atomic_output(out_ssv) as tmp:
        tmp.write_bytes(data)
    return out_ssv


def read_ssv(path: Path) -> dict[str, SsvParameter]:
    """The parameters of an .ssv file by name (typed values; enumerations as item names)."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise DataError(f"{path}: not a readable SSP parameter set ({exc}); pass a valid .ssv file") from None
    if root.tag != f"{{{SSV}}}ParameterSet":
        raise DataError(f"{path}: root element is {root.tag}, not ssv:ParameterSet; pass a valid .ssv file")
    result = {}
    for param in root.iterfind(f"{{{SSV}}}Parameters/{{{SSV}}}Parameter"):
        element = next(iter(param))
        kind = element.tag.split("}")[-1]
        text = str(element.get("value"))
        value: SsvValue
        if kind == "Real":
            value = float(text)
        elif kind == "Integer":
            value = int(text)
        elif kind == "Boolean":
            value = text in ("true", "1")
        else:
            value = text
        name = str(param.get("name"))
        result[name] = SsvParameter(name=name, kind=kind, value=value, unit=element.get("unit"))
    return result
