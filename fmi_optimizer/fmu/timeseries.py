"""Time series from CSV/Parquet files: FMU input signals (fmpy's structured array) and measured data.

fmpy's ``simulate_fmu(input=...)`` takes a structured numpy array whose first field is
``time``; it interpolates *continuous* Real inputs linearly and *holds* discrete ones,
and two rows with the same time mark a step. This module builds that array from a
data file: columns mapped to FMU inputs, converted to the variable's unit, gaps
handled by policy (fail / interpolate / mask), and ``hold`` realised for continuous
inputs with duplicate time points. Every data problem is a one-line :class:`DataError`.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fmi_optimizer.errors import DataError, StudyError
from fmi_optimizer.fmu.archive import content_hash

NAN_POLICIES = ("fail", "interpolate", "mask")
INTERPOLATIONS = ("auto", "linear", "hold")

# unit -> (dimension, factor, offset): value_in_base = value * factor + offset
_UNITS: dict[str, tuple[str, float, float]] = {
    "K": ("temperature", 1.0, 0.0), "degC": ("temperature", 1.0, 273.15), "°C": ("temperature", 1.0, 273.15),
    "degF": ("temperature", 5.0 / 9.0, 273.15 - 32.0 * 5.0 / 9.0),
    "W": ("power", 1.0, 0.0), "kW": ("power", 1e3, 0.0), "MW": ("power", 1e6, 0.0),
    "s": ("time", 1.0, 0.0), "min": ("time", 60.0, 0.0), "h": ("time", 3600.0, 0.0),
    "d": ("time", 86400.0, 0.0),
    "Pa": ("pressure", 1.0, 0.0), "kPa": ("pressure", 1e3, 0.0), "bar": ("pressure", 1e5, 0.0),
    "1": ("ratio", 1.0, 0.0), "%": ("ratio", 0.01, 0.0),
    "J": ("energy", 1.0, 0.0), "kJ": ("energy", 1e3, 0.0), "kWh": ("energy", 3.6e6, 0.0),
    "m": ("length", 1.0, 0.0), "mm": ("length", 1e-3, 0.0), "W/m2": ("irradiance", 1.0, 0.0),
}


def convert(values: np.ndarray, from_unit: str, to_unit: str, what: str) -> np.ndarray:
    """Convert ``values`` between two units of the same dimension. No ``from_unit``: the data are taken in
    the model's unit. A ``from_unit`` for a variable whose FMU declares none is refused: nothing says what to
    convert to (a data file in K for an output in degC was once fitted unconverted, ending on the bounds)."""
    if not from_unit or from_unit == to_unit:
        return values
    if not to_unit:
        raise DataError(f"{what}: unit = {from_unit!r}, but the FMU declares no unit for its variable, so "
                        "the data cannot be converted; give the data in the model's unit and leave out unit")
    a, b = _UNITS.get(from_unit), _UNITS.get(to_unit)
    if a is None or b is None:
        unknown = from_unit if a is None else to_unit
        raise DataError(f"{what}: cannot convert unit {unknown!r}; known units: {', '.join(_UNITS)}")
    if a[0] != b[0]:
        raise DataError(f"{what}: unit {from_unit!r} ({a[0]}) cannot be converted to {to_unit!r} ({b[0]})")
    base = values * a[1] + a[2]
    return (base - b[2]) / b[1]


@dataclass(frozen=True)
class ColumnSpec:
    """One mapped column: FMU variable <- data column, its unit, interpolation and weight."""

    variable: str
    column: str
    unit: str = ""
    interpolation: str = "auto"
    weight: float = 1.0


@dataclass(frozen=True)
class SeriesSpec:
    """A data file and how to read it: the time column and unit, the mapped columns, the NaN policy."""

    file: Path
    columns: tuple[ColumnSpec, ...]
    time: str = "time"
    time_unit: str = "s"
    nan: str = "fail"


def parse_series(raw: Mapping[str, Any], where: str, base_dir: Path, section: str, column_table: str,
                 default_nan: str, extra: Sequence[str] = ()) -> SeriesSpec:
    """Parse a ``[inputs]``-like table (``file``, ``time``, ``time_unit``, ``nan``, ``[section.columns]``)."""
    accepted = {"file", "time", "time_unit", "nan", column_table, *extra}
    unknown = sorted(set(raw) - accepted)
    if unknown:
        raise StudyError(f"{where}: [{section}] {unknown[0]}: unknown key; accepted: "
                         f"{', '.join(sorted(accepted))}")
    file = raw.get("file")
    if not isinstance(file, str) or not file:
        raise StudyError(f"{where}: [{section}] file is missing; give the CSV/Parquet path relative to the "
                         "study file")
    time_col, time_unit, nan = raw.get("time", "time"), raw.get("time_unit", "s"), raw.get("nan", default_nan)
    if not isinstance(time_col, str):
        raise StudyError(f"{where}: [{section}] time = {time_col!r}: expected the time column name")
    if time_unit not in ("s", "min", "h", "d"):
        raise StudyError(f"{where}: [{section}] time_unit = {time_unit!r}: accepted: s, min, h, d")
    if nan not in NAN_POLICIES:
        raise StudyError(f"{where}: [{section}] nan = {nan!r}: accepted: {', '.join(NAN_POLICIES)}")
    cols = raw.get(column_table, {})
    if not isinstance(cols, dict) or not cols:
        raise StudyError(f"{where}: [{section}.{column_table}] is missing; map FMU variables to columns, "
                         "e.g. T_out = { column = \"T_out_C\", unit = \"degC\" }")
    specs = tuple(_column(name, spec, f"{where}: [{section}.{column_table}] {name}") for name,
                  spec in cols.items())
    return SeriesSpec((base_dir / file).resolve(), specs, time_col, time_unit, nan)


def _column(name: str, spec: Any, where: str) -> ColumnSpec:
    if isinstance(spec, str):
        return ColumnSpec(name, spec)
    if not isinstance(spec, dict) or not isinstance(spec.get("column"), str):
        raise StudyError(f"{where} = {spec!r}: expected a column name or "
                         f"{{ column = \"...\", unit = \"...\" }}")
    unknown = sorted(set(spec) - {"column", "unit", "interpolation", "weight"})
    if unknown:
        raise StudyError(f"{where}: unknown key {unknown[0]!r}; accepted: column, unit, interpolation, "
                         "weight")
    interp = spec.get("interpolation", "auto")
    if interp not in INTERPOLATIONS:
        raise StudyError(f"{where}: interpolation = {interp!r}: accepted: {', '.join(INTERPOLATIONS)}")
    unit = spec.get("unit", "")
    if not isinstance(unit, str) or (unit and unit not in _UNITS):
        raise StudyError(f"{where}: unit = {unit!r}: known units: {', '.join(_UNITS)}")
    weight = spec.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight,
                                                  int | float) or not math.isfinite(weight) or weight <= 0:
        raise StudyError(f"{where}: weight = {weight!r}: expected a positive number")
    return ColumnSpec(name, spec["column"], unit, interp, float(weight))


# -- reading ------------------------------------------------------------------------------------


def read_table(path: Path) -> dict[str, np.ndarray]:
    """Read a CSV (header row, numbers, empty cells = NaN) or Parquet file into float columns."""
    if not path.exists():
        raise DataError(f"{path}: data file does not exist")
    if path.suffix.lower() in (".parquet", ".pq"):
        return _read_parquet(path)
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    if not rows or not rows[0]:
        raise DataError(f"{path}: empty file; expected a header row and one row per time point")
    header = [h.strip() for h in rows[0]]
    body = [r for r in rows[1:] if any(c.strip() for c in r)]
    out = {h: np.full(len(body), np.nan) for h in header}
    for i, row in enumerate(body):
        if len(row) != len(header):
            raise DataError(f"{path}: line {i + 2} has {len(row)} fields, the header has {len(header)}")
        for h, cell in zip(header, row, strict=True):
            cell = cell.strip()
            if cell and cell.lower() not in ("nan", "na", "null"):
                try:
                    out[h][i] = float(cell)
                except ValueError:
                    raise DataError(f"{path}: line {i + 2}, column {h!r}: {cell!r} is not a number") from None
    return out


def _read_parquet(path: Path) -> dict[str, np.ndarray]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow), or export the data to "
                        "CSV") from None
    table = pq.read_table(path)
    return {name: np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=float)
            for name in table.column_names}


@dataclass
class Series:
    """Checked time series: time in seconds (strictly increasing) and one float column per mapped variable."""

    time: np.ndarray
    columns: dict[str, np.ndarray]
    path: Path
    sha256: str
    masks: dict[str, np.ndarray] = field(default_factory=dict)  # True where a value was measured


def load_series(spec: SeriesSpec, units: Mapping[str, str]) -> Series:
    """Read ``spec.file``, check time, map and convert columns to the FMU units in ``units``, apply the NaN
    policy."""
    path = spec.file
    data = read_table(path)
    if spec.time not in data:
        raise DataError(f"{path}: no time column {spec.time!r}; columns: {', '.join(data)}")
    t = convert(data[spec.time], spec.time_unit, "s", f"{path}: column {spec.time!r}")
    if t.size == 0:
        raise DataError(f"{path}: no data rows")
    check_time(t, path, spec.time)
    cols: dict[str, np.ndarray] = {}
    masks: dict[str, np.ndarray] = {}
    for c in spec.columns:
        if c.column not in data:
            raise DataError(f"{path}: no column {c.column!r} (mapped to {c.variable!r}); columns: "
                            f"{', '.join(data)}")
        y = convert(data[c.column], c.unit, units.get(c.variable, ""), f"{path}: column {c.column!r}")
        y, mask = apply_nan_policy(t, y, spec.nan, f"{path}: column {c.column!r}")
        cols[c.variable], masks[c.variable] = y, mask
    return Series(t, cols, path, content_hash(path), masks)


def check_time(t: np.ndarray, path: Path, name: str) -> None:
    """Time must be finite and strictly increasing (steps for held inputs are added later, not read)."""
    if not np.all(np.isfinite(t)):
        i = int(np.argmax(~np.isfinite(t)))
        raise DataError(f"{path}: time column {name!r} has a missing value in data row {i + 1}")
    dt = np.diff(t)
    if np.any(dt <= 0):
        i = int(np.argmax(dt <= 0))
        raise DataError(f"{path}: time column {name!r} is not increasing at data row {i + 2} "
                        f"({t[i]:g} -> {t[i + 1]:g}); sort the file and remove duplicates")


def apply_nan_policy(t: np.ndarray, y: np.ndarray, policy: str, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (values, mask of real values). fail: raise on any NaN; interpolate: fill interior gaps
    linearly (a gap at either end is an error); mask: leave NaN, the mask excludes them."""
    ok = np.isfinite(y)
    if ok.all():
        return y, ok
    first = int(np.argmax(~ok))
    if not ok.any():
        raise DataError(f"{what}: has no values at all")
    if policy == "fail":
        raise DataError(f"{what}: missing value at t={t[first]:g} s ({int((~ok).sum())} missing in all); "
                        "fill the gaps or set nan = \"interpolate\" or \"mask\"")
    if policy == "interpolate":
        if not ok[0] or not ok[-1]:
            edge = t[0] if not ok[0] else t[-1]
            raise DataError(f"{what}: gap at the edge of the data (t={edge:g} s) cannot be interpolated; "
                            "trim the file or set nan = \"mask\"")
        filled = y.copy()
        filled[~ok] = np.interp(t[~ok], t[ok], y[ok])
        return filled, ok
    return y, ok


# -- FMU inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputTable:
    """The structured array for ``simulate_fmu(input=...)`` and the fingerprint of its source data."""

    table: np.ndarray
    sha256: str
    names: tuple[str, ...]


def build_inputs(spec: SeriesSpec, variables: Mapping[str, Any], start: float, stop: float) -> InputTable:
    """Map data columns to FMU inputs; ``variables`` maps input names to :class:`Variable` s."""
    for c in spec.columns:
        if c.variable not in variables:
            raise StudyError(f"[inputs.columns] {c.variable!r} is not an input of the FMU; inputs: "
                             f"{', '.join(variables) or 'none'}")
    units = {c.variable: getattr(variables[c.variable], "unit", "") if c.unit else "" for c in spec.columns}
    series = load_series(spec, units)
    t = series.time
    if t[0] > start + 1e-9 or t[-1] < stop - 1e-9:
        raise DataError(f"{spec.file}: time range {t[0]:g}..{t[-1]:g} s does not cover the simulation "
                        f"{start:g}..{stop:g} s; extend the data or change start_time/stop_time")
    cols: dict[str, np.ndarray] = {}
    for c in spec.columns:
        y, mask = series.columns[c.variable], series.masks[c.variable]
        # masked rows are dropped: the input's own rule bridges them
        if spec.nan == "mask" and not mask.all():
            y = np.interp(t, t[mask],
                          y[mask]) if _is_linear(c, variables[c.variable]) else _hold_fill(y, mask, c)
        cols[c.variable] = y
    hold = [c.variable for c in spec.columns if not _is_linear(c, variables[c.variable])
            and _fmpy_interpolates_linearly(variables[c.variable])]
    return InputTable(_structured(t, cols, variables, hold), series.sha256, tuple(cols))


def _is_linear(c: ColumnSpec, var: Any) -> bool:
    if c.interpolation != "auto":
        return c.interpolation == "linear"
    return _fmpy_interpolates_linearly(var)


def _fmpy_interpolates_linearly(var: Any) -> bool:
    """fmpy interpolates Real inputs that are neither discrete nor tunable linearly and holds the rest."""
    return getattr(var, "type", "Real") in ("Real", "Float64", "Float32") and \
        getattr(var, "variability", "continuous") not in ("discrete", "tunable")


def _hold_fill(y: np.ndarray, mask: np.ndarray, c: ColumnSpec) -> np.ndarray:
    if not mask[0]:
        raise DataError(f"column {c.column!r}: the first value is missing; a held signal needs a start value")
    idx = np.maximum.accumulate(np.where(mask, np.arange(y.size), 0))
    return y[idx]


def _structured(t: np.ndarray, cols: Mapping[str, np.ndarray], variables: Mapping[str, Any],
                hold: Sequence[str]) -> np.ndarray:
    """Build the structured array; ``hold`` columns that fmpy would interpolate linearly get step rows
    (t_k, previous value), (t_k, new value) so fmpy holds them (it treats equal times as an event)."""
    if hold:
        n = t.size
        rows = np.repeat(np.arange(n), 2)[1:]  # 0,1,1,2,2,...: each time except the first appears twice
        tt = t[rows]
        before = np.where(np.arange(rows.size) % 2 == 1, rows - 1, rows)  # first row at t_k keeps v_(k-1)
        grid = {k: v[before] if k in hold else v[rows] for k, v in cols.items()}
        t, cols = tt, grid
    dtype = [("time", np.float64)] + [(k, _dtype(variables[k])) for k in cols]
    arr = np.zeros(t.size, dtype=dtype)
    arr["time"] = t
    for k, v in cols.items():
        arr[k] = np.round(v) if _dtype(variables[k]) is not np.float64 else v
    return arr


def _dtype(var: Any) -> Any:
    kind = getattr(var, "type", "Real")
    if kind == "Boolean":
        return np.bool_
    if kind in ("Integer", "Enumeration"):
        return np.int32
    return np.float64
