"""Typed view of an FMU's model variables: numbers parsed once, units resolved, aliases removed.

fmpy hands back strings for start/min/max and leaves units on declared types; this
module turns each variable into a frozen :class:`Variable` that the rest of the
package can trust.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from fmi_optimizer.space import Value


Tunable = Literal["no", "before_init", "during_sim", "configuration"]

REAL_TYPES = {"Real", "Float64", "Float32"}
INT_TYPES = {"Integer", "Int8", "UInt8", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64"}


def settable_before_init(causality: str, variability: str, initial: str | None) -> bool:
    """Whether FMI lets an importer set a variable before initialization: the one rule for what a study may
    vary or fix and what a written FMU may carry as a new start value (structural parameters aside, which
    the write-back cannot carry: a study with write-back refuses them at its start). FMI 1.0 roles as fmpy
    maps them: parameters by variability, internal variables as locals without ``initial``, so an FMI 1.0
    state's start value is not settable here."""
    if variability == "constant":
        return False
    return causality in ("parameter", "structuralParameter", "input") or initial == "exact"


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
    array_index: int | None = None  # row-major (flat) index of the element in its array
    dimensions: tuple[int, ...] = ()  # shape of the FMI 3 array this element belongs to (() for scalars)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def settable_before_init(self) -> bool:
        """Whether a study may set this variable (module function :func:`settable_before_init`)."""
        return settable_before_init(self.causality, self.variability, self.initial)

    @property
    def tunable(self) -> Tunable:
        """When changing this variable is allowed: never, before initialization, during simulation,
        or only in configuration mode (FMI 3 structural parameters)."""
        if self.array_of is not None:
            return "no"  # an element of an FMI 3 array: fmpy sets arrays only as a whole (see array_refusal)
        if self.structural:
            return "configuration"
        if self.causality != "parameter":
            return "no"
        if self.variability == "tunable":
            return "during_sim"
        if self.variability == "fixed":
            return "before_init"
        return "no"

    @property
    def array_type(self) -> str:
        """``Float64[3,3]`` for an element of an FMI 3 array, else the FMI type."""
        return (f"{self.fmi_type}[{','.join(map(str, self.dimensions))}]" if self.array_of is not None
                else self.fmi_type)

    def array_refusal(self, whole: bool = False) -> str:
        """Why an element of an FMI 3 array (or with ``whole``, the array) cannot be optimized or set, and
        what to do instead."""
        what = (f"{self.array_of!r} is an FMI 3 array parameter ({self.array_type})" if whole else
                f"{self.name!r} is an element of the FMI 3 array parameter {self.array_of!r} "
                f"({self.array_type})")
        return (f"{what}; fmi_optimizer cannot set or optimize array parameters (an FMU takes an array only "
                "as a whole); keep it at its start value, or give the model scalar parameters to optimize "
                "instead")

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
            "fmi_type": self.fmi_type,
            "dimensions": list(self.dimensions),
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
    shape = _shape(v, dims)
    parts = (str(start).split() if start is not None and not isinstance(start, list | tuple)
             else list(start or []))
    out = []
    for i, name in enumerate(element_names(str(v.name), shape)):
        s = parts[i] if i < len(parts) else (parts[-1] if parts else None)
        out.append(Variable(name=name, start=parse_value(base_type, s), array_of=str(v.name), array_index=i,
                            dimensions=shape, **common))
    return out


def _shape(v: Any, dims: list[Any]) -> tuple[int, ...]:
    """The array's shape: fmpy resolves it (fixed sizes and structural parameters' start values)."""
    shape = getattr(v, "shape", None)
    if shape:
        return tuple(int(n) for n in shape)
    out = []
    for d in dims:
        size = getattr(d, "start", None)
        if size is None and getattr(d, "variable", None) is not None:
            size = d.variable.start
        out.append(int(size) if size is not None else 1)
    return tuple(out)


def element_names(base: str, shape: tuple[int, ...]) -> list[str]:
    """Names of an array's elements in row-major order, 1-based like Modelica: ``y[1]``, ``A[1,2]``."""
    import itertools

    return [f"{base}[{','.join(str(i + 1) for i in idx)}]"
            for idx in itertools.product(*(range(n) for n in shape))]


def array_elements(md: Any) -> dict[str, tuple[str, int]]:
    """Every FMI 3 array element name -> (array variable name, row-major index), for picking it out of
    fmpy's result (which records an array variable as one column of shape ``(time, *dims)``)."""
    out: dict[str, tuple[str, int]] = {}
    for v in md.modelVariables:
        dims = list(getattr(v, "dimensions", None) or [])
        if dims:
            for i, name in enumerate(element_names(str(v.name), _shape(v, dims))):
                out[name] = (str(v.name), i)
    return out


def output_columns(names: list[str], elements: Mapping[str, tuple[str, int]]) -> list[str]:
    """What to ask fmpy to record for ``names``: array elements become their array variable."""
    return list(dict.fromkeys(elements[n][0] if n in elements else n for n in names))


def output_column(result: Any, name: str, elements: Mapping[str, tuple[str, int]]) -> Any:
    """The 1-D trajectory of ``name`` in fmpy's result: a scalar's column, or one element of an array's."""
    import numpy as np

    if name in elements:
        base, index = elements[name]
        column = np.asarray(result[base], dtype=float)
        return column.reshape(column.shape[0], -1)[:, index]
    return np.asarray(result[name], dtype=float)


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
