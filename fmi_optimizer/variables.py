"""Typed view of an FMU's model variables: numbers parsed once, units resolved, aliases removed.

fmpy hands back strings for start/min/max and leaves units on declared types; this
module turns each variable into a frozen :class:`Variable` that the rest of the
package can trust.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .space import Value

Tunable = Literal["no", "before_init", "during_sim", "configuration"]

REAL_TYPES = {"Real", "Float64", "Float32"}
INT_TYPES = {"Integer", "Int8", "UInt8", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64"}


@dataclass(frozen=True)
class Variable:
    """One scalar model variable (an FMI 3 array element is its own Variable ``name[i]``)."""

    name: str
    value_reference: int
    type: str  # Real, Integer, Boolean, String, Enumeration (FMI 3 types mapped onto these)
    fmi_type: str
    causality: str
    variability: str
    initial: str | None = None
    start: Value | None = None
    min: float | None = None
    max: float | None = None
    nominal: float | None = None
    unit: str = ""
    description: str = ""
    items: tuple[tuple[str, int], ...] = ()  # enumeration (name, value)
    structural: bool = False
    array_of: str | None = None  # base name for flattened FMI 3 array elements
    array_index: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def tunable(self) -> Tunable:
        """When changing this variable is allowed: never, before initialization, during simulation,
        or only in configuration mode (FMI 3 structural parameters)."""
        if self.structural:
            return "configuration"
        if self.causality != "parameter":
            return "no"
        if self.variability == "tunable":
            return "during_sim"
        if self.variability == "fixed":
            return "before_init"
        return "no"

    def item_labels(self) -> list[str]:
        return [n for n, _ in self.items]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "start": self.start,
            "min": self.min,
            "max": self.max,
            "unit": self.unit,
            "causality": self.causality,
            "variability": self.variability,
            "tunable": self.tunable,
            "description": self.description,
            "items": [{"name": n, "value": v} for n, v in self.items],
        }


def parse_variables(md: Any) -> list[Variable]:
    """All model variables of a fmpy ModelDescription as typed :class:`Variable` s, aliases dropped."""
    fmi3 = not str(md.fmiVersion).startswith(("1.", "2."))
    seen: set[tuple[str, int]] = set()
    out: list[Variable] = []
    for v in md.modelVariables:
        base_type = _base_type(v.type)
        key = (base_type, int(v.valueReference))
        if fmi3 and key in seen:  # FMI 3 aliases share a value reference: keep the first name
            continue
        if not fmi3 and key in seen and v.causality not in ("output", "input", "parameter"):
            continue
        seen.add(key)
        out.extend(_expand(v, base_type))
    return out


def _base_type(t: str) -> str:
    if t in REAL_TYPES:
        return "Real"
    if t in INT_TYPES:
        return "Integer"
    return str(t)


def _attr(v: Any, name: str) -> Any:
    value = getattr(v, name, None)
    if value is None and getattr(v, "declaredType", None) is not None:
        value = getattr(v.declaredType, name, None)
    return value


def _expand(v: Any, base_type: str) -> list[Variable]:
    dims = list(getattr(v, "dimensions", None) or [])
    start = v.start
    common = dict(
        value_reference=int(v.valueReference),
        type=base_type,
        fmi_type=str(v.type),
        causality=str(v.causality or "local"),
        variability=str(v.variability or "continuous"),
        initial=v.initial,
        min=_number(_attr(v, "min")),
        max=_number(_attr(v, "max")),
        nominal=_number(_attr(v, "nominal")),
        unit=str(_attr(v, "unit") or ""),
        description=str(v.description or ""),
        items=_items(v),
        structural=str(v.causality) == "structuralParameter",
    )
    if not dims:
        return [Variable(name=str(v.name), start=parse_value(base_type, start), **common)]
    size = 1
    for d in dims:
        size *= int(d.start) if getattr(d, "start", None) is not None else 1
    parts = str(start).split() if start is not None and not isinstance(start, list | tuple) else list(start or [])
    out = []
    for i in range(size):
        s = parts[i] if i < len(parts) else (parts[-1] if parts else None)
        out.append(Variable(name=f"{v.name}[{i + 1}]", start=parse_value(base_type, s),
                            array_of=str(v.name), array_index=i, **common))
    return out


def _items(v: Any) -> tuple[tuple[str, int], ...]:
    dt = getattr(v, "declaredType", None)
    if dt is None or not getattr(dt, "items", None):
        return ()
    return tuple((str(it.name), int(it.value)) for it in dt.items)


def _number(x: Any) -> float | None:
    if x is None or x == "":
        return None
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def parse_value(base_type: str, raw: Any) -> Value | None:
    """Parse an XML start value (string or already-typed) into a Python value of ``base_type``."""
    if raw is None:
        return None
    if base_type == "Real":
        return float(raw)
    if base_type in ("Integer", "Enumeration"):
        return int(float(raw))
    if base_type == "Boolean":
        if isinstance(raw, bool):
            return raw
        return str(raw).strip().lower() in ("true", "1")
    return str(raw)
