"""Design space: the parameters being optimized, each as a typed dimension.

A *value* is what goes into the FMU: a float for :class:`Continuous`, an int for
:class:`Integer`, the enumeration/item value for :class:`Categorical`, a bool for
:class:`Boolean`.  Methods that want vectors use :meth:`DesignSpace.to_unit` /
:meth:`DesignSpace.from_unit` (unit cube, one coordinate per dimension) or the
discrete index view (:meth:`DesignSpace.to_indices` / :meth:`DesignSpace.from_indices`)
that binary encodings are built on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import numpy as np

from fmi_optimizer.errors import StudyError, ValueValidationError

Value: TypeAlias = float | int | bool | str
Values: TypeAlias = Mapping[str, Value]

Kind = Literal["continuous", "integer", "categorical", "boolean"]


@dataclass(frozen=True)
class Continuous:
    """A real parameter in [lo, hi]; ``log`` samples it log-uniformly; ``levels`` thresholds it
    into that many equally spaced values (a discrete dimension for annealing and GA)."""

    name: str
    lo: float
    hi: float
    log: bool = False
    levels: int | None = None
    unit: str = ""
    kind: Kind = field(default="continuous", init=False)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lo) and math.isfinite(self.hi)) or self.lo >= self.hi:
            raise StudyError(f"parameter {self.name!r}: needs finite bounds with min < max, got [{self.lo}, "
                             f"{self.hi}]")
        if self.log and self.lo <= 0:
            raise StudyError(f"parameter {self.name!r}: log scale needs min > 0, got {self.lo}")
        if self.levels is not None and self.levels < 2:
            raise StudyError(f"parameter {self.name!r}: levels must be >= 2, got {self.levels}")
        grid = () if self.levels is None else tuple(  # 12 significant digits: 0.005, not 0.004999999999999999
            float(f"{self._from_u(x):.12g}") for x in np.linspace(0.0, 1.0, self.levels))
        object.__setattr__(self, "_grid", grid)  # computed once: value_at/from_unit are called in hot loops

    @property
    def discrete(self) -> bool:
        return self.levels is not None

    def grid(self) -> list[float]:
        """The ``levels`` values of a thresholded parameter (empty for a truly continuous one)."""
        return list(self._grid)  # type: ignore[attr-defined]

    def _to_u(self, v: float) -> float:
        if self.log:
            return (math.log(v) - math.log(self.lo)) / (math.log(self.hi) - math.log(self.lo))
        return (v - self.lo) / (self.hi - self.lo)

    def _from_u(self, u: float) -> float:
        u = min(1.0, max(0.0, u))
        if self.log:
            return float(math.exp(math.log(self.lo) + u * (math.log(self.hi) - math.log(self.lo))))
        return float(self.lo + u * (self.hi - self.lo))

    def to_unit(self, v: Value) -> float:
        return self._to_u(float(v))

    def from_unit(self, u: float) -> float:
        if self.levels is not None:
            k = min(self.levels - 1, int(round(min(1.0, max(0.0, u)) * (self.levels - 1))))
            return self._grid[k]  # type: ignore[attr-defined]
        return self._from_u(u)

    def size(self) -> int | None:
        return self.levels

    def index_of(self, v: Value) -> int:
        if self.levels is None:
            raise ValueError(f"{self.name} is continuous: it has no index")
        return int(round(self._to_u(float(v)) * (self.levels - 1)))

    def value_at(self, i: int) -> float:
        return float(self._grid[i])  # type: ignore[attr-defined]

    def check(self, v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueValidationError(f"parameter {self.name!r}: expected a real number, got {v!r}")
        x = float(v)
        if not (self.lo - 1e-12 * max(1.0, abs(self.lo)) <= x <= self.hi + 1e-12 * max(1.0, abs(self.hi))):
            raise ValueValidationError(f"parameter {self.name!r}: {x} is outside [{self.lo}, {self.hi}]")
        return x


@dataclass(frozen=True)
class Integer:
    """An integer parameter in [lo, hi] (both inclusive)."""

    name: str
    lo: int
    hi: int
    unit: str = ""
    kind: Kind = field(default="integer", init=False)

    def __post_init__(self) -> None:
        if self.lo >= self.hi:
            raise StudyError(f"parameter {self.name!r}: needs min < max, got [{self.lo}, {self.hi}]")

    discrete = True

    def size(self) -> int:
        return self.hi - self.lo + 1

    def to_unit(self, v: Value) -> float:
        return (int(v) - self.lo + 0.5) / self.size()

    def from_unit(self, u: float) -> int:
        return self.lo + min(self.size() - 1, max(0, int(math.floor(u * self.size()))))

    def index_of(self, v: Value) -> int:
        return int(v) - self.lo

    def value_at(self, i: int) -> int:
        return self.lo + int(i)

    def check(self, v: Any) -> int:
        if isinstance(v, bool) or not (isinstance(v, int) or (isinstance(v, float) and v.is_integer())):
            raise ValueValidationError(f"parameter {self.name!r}: expected an integer, got {v!r}")
        i = int(v)
        if not self.lo <= i <= self.hi:
            raise ValueValidationError(f"parameter {self.name!r}: {i} is outside [{self.lo}, {self.hi}]")
        return i


@dataclass(frozen=True)
class Categorical:
    """A choice among ``items`` (FMU values, e.g. enumeration integers) shown as ``labels``."""

    name: str
    items: tuple[Value, ...]
    labels: tuple[str, ...] = ()
    kind: Kind = field(default="categorical", init=False)

    def __post_init__(self) -> None:
        if len(self.items) < 2:
            raise StudyError(f"parameter {self.name!r}: a categorical needs at least 2 items, got "
                             f"{list(self.items)}")
        if len(set(self.items)) != len(self.items):
            raise StudyError(f"parameter {self.name!r}: duplicate items in {list(self.items)}")
        if self.labels and len(self.labels) != len(self.items):
            raise StudyError(f"parameter {self.name!r}: {len(self.labels)} labels for {len(self.items)} "
                             "items")
        if not self.labels:
            object.__setattr__(self, "labels", tuple(str(i) for i in self.items))

    discrete = True

    def size(self) -> int:
        return len(self.items)

    def to_unit(self, v: Value) -> float:
        return (self.index_of(v) + 0.5) / self.size()

    def from_unit(self, u: float) -> Value:
        return self.items[min(self.size() - 1, max(0, int(math.floor(u * self.size()))))]

    def index_of(self, v: Value) -> int:
        if v in self.items:
            return self.items.index(v)
        if isinstance(v, str) and v in self.labels:
            return self.labels.index(v)
        raise ValueValidationError(f"parameter {self.name!r}: {v!r} is not one of {list(self.labels)}")

    def value_at(self, i: int) -> Value:
        return self.items[int(i)]

    def label(self, v: Value) -> str:
        return self.labels[self.index_of(v)]

    def check(self, v: Any) -> Value:
        return self.items[self.index_of(v)]


@dataclass(frozen=True)
class Boolean:
    """An on/off parameter."""

    name: str
    kind: Kind = field(default="boolean", init=False)

    discrete = True

    def size(self) -> int:
        return 2

    def to_unit(self, v: Value) -> float:
        return 0.75 if bool(v) else 0.25

    def from_unit(self, u: float) -> bool:
        return u >= 0.5

    def index_of(self, v: Value) -> int:
        return int(bool(v))

    def value_at(self, i: int) -> bool:
        return bool(i)

    def check(self, v: Any) -> bool:
        if isinstance(v, bool):
            return v
        if isinstance(v, int) and v in (0, 1):
            return bool(v)
        raise ValueValidationError(f"parameter {self.name!r}: expected true/false, got {v!r}")


Dimension: TypeAlias = Continuous | Integer | Categorical | Boolean


class DesignSpace:
    """An ordered set of dimensions with the vector views methods need."""

    def __init__(self, dimensions: Sequence[Dimension]):
        names = [d.name for d in dimensions]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise StudyError(f"design space: parameters listed twice: {dupes}")
        if not dimensions:
            raise StudyError("design space is empty: list at least one parameter under [parameters]")
        self.dimensions: tuple[Dimension, ...] = tuple(dimensions)
        self._by_name = {d.name: d for d in self.dimensions}

    def __len__(self) -> int:
        return len(self.dimensions)

    def __iter__(self) -> Iterator[Dimension]:
        return iter(self.dimensions)

    def __getitem__(self, name: str) -> Dimension:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dimensions]

    def kinds(self) -> set[str]:
        return {("discrete" if isinstance(d, Continuous) and d.discrete else d.kind) for d in self.dimensions}

    @property
    def all_discrete(self) -> bool:
        return all(d.discrete for d in self.dimensions)

    def cardinality(self) -> float:
        """Number of distinct configurations (``inf`` when a dimension is truly continuous)."""
        n = 1.0
        for d in self.dimensions:
            s = d.size()
            if s is None:
                return math.inf
            n *= s
        return n

    # -- validation ---------------------------------------------------------------------
    def validate(self, values: Values) -> dict[str, Value]:
        """Check a full candidate and return it with canonical Python types."""
        unknown = sorted(set(values) - set(self._by_name))
        if unknown:
            raise ValueValidationError(f"unknown parameter(s) {unknown}; the design space has {self.names}")
        missing = [n for n in self.names if n not in values]
        if missing:
            raise ValueValidationError(f"candidate lacks parameter(s) {missing}")
        return {d.name: d.check(values[d.name]) for d in self.dimensions}

    # -- vector views -------------------------------------------------------------------
    def to_unit(self, values: Values) -> np.ndarray:
        return np.array([d.to_unit(values[d.name]) for d in self.dimensions], dtype=float)

    def from_unit(self, x: Sequence[float] | np.ndarray) -> dict[str, Value]:
        return {d.name: d.from_unit(float(u)) for d, u in zip(self.dimensions, x, strict=True)}

    def sizes(self) -> list[int | None]:
        return [d.size() for d in self.dimensions]

    def to_indices(self, values: Values) -> list[int]:
        """Index of each value in its dimension (discrete spaces only)."""
        return [d.index_of(values[d.name]) for d in self.dimensions]

    def from_indices(self, idx: Sequence[int]) -> dict[str, Value]:
        return {d.name: d.value_at(int(i)) for d, i in zip(self.dimensions, idx, strict=True)}

    def sample(self, rng: np.random.Generator, n: int) -> list[dict[str, Value]]:
        """``n`` independent uniform draws."""
        return [self.from_unit(rng.random(len(self))) for _ in range(n)]

    def labelled(self, values: Values) -> dict[str, Value]:
        """Values for people: categorical items by their labels (enumeration names)."""
        out: dict[str, Value] = {}
        for name, v in values.items():
            d = self._by_name.get(name)
            out[name] = d.label(v) if isinstance(d, Categorical) else v
        return out

    def key(self, values: Values) -> tuple[Any, ...]:
        """A hashable identity of a candidate (for de-duplication)."""
        return tuple(values[n] for n in self.names)

    # -- JSON -----------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps([dimension_to_dict(d) for d in self.dimensions])

    @classmethod
    def from_json(cls, text: str) -> DesignSpace:
        return cls([dimension_from_dict(d) for d in json.loads(text)])


def dimension_to_dict(d: Dimension) -> dict[str, Any]:
    if isinstance(d, Continuous):
        return {"kind": d.kind, "name": d.name, "lo": d.lo, "hi": d.hi, "log": d.log, "levels": d.levels,
                "unit": d.unit}
    if isinstance(d, Integer):
        return {"kind": d.kind, "name": d.name, "lo": d.lo, "hi": d.hi, "unit": d.unit}
    if isinstance(d, Categorical):
        return {"kind": d.kind, "name": d.name, "items": list(d.items), "labels": list(d.labels)}
    return {"kind": d.kind, "name": d.name}


def dimension_from_dict(raw: Mapping[str, Any]) -> Dimension:
    kind = raw.get("kind")
    if kind == "continuous":
        return Continuous(raw["name"], float(raw["lo"]), float(raw["hi"]), bool(raw.get("log", False)),
                          raw.get("levels"), str(raw.get("unit", "")))
    if kind == "integer":
        return Integer(raw["name"], int(raw["lo"]), int(raw["hi"]), str(raw.get("unit", "")))
    if kind == "categorical":
        return Categorical(raw["name"], tuple(raw["items"]), tuple(raw.get("labels", ())))
    if kind == "boolean":
        return Boolean(raw["name"])
    raise StudyError(f"unknown dimension kind {kind!r}; accepted: continuous, integer, categorical, boolean")
