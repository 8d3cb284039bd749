"""Twin: an FMU opened once, its variables typed, its values checked, simulation at hand."""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fmi_optimizer.errors import SimulationError, ValueValidationError
from fmi_optimizer.fmu.archive import FmuFile, open_fmu
from fmi_optimizer.fmu.simulator import SimSettings, Simulator, Trajectory
from fmi_optimizer.fmu.variables import Variable, parse_variables
from fmi_optimizer.space import Boolean, Categorical, Continuous, Dimension, Integer, Value


@dataclass(frozen=True)
class DefaultExperiment:
    start_time: float | None
    stop_time: float | None
    tolerance: float | None
    step_size: float | None


class Twin:
    """An FMU as a digital twin: typed parameters/outputs/inputs and checked simulation."""

    def __init__(self, fmu: FmuFile):
        self.fmu = fmu
        self.variables: list[Variable] = parse_variables(fmu.model_description)
        self._by_name = {v.name: v for v in self.variables}

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Twin:
        """Open and check an FMU file (compiling its sources once if it has no binary for this platform)."""
        return cls(open_fmu(path))

    # -- description ----------------------------------------------------------------------
    @property
    def path(self) -> Path:
        return self.fmu.path

    @property
    def model_description(self) -> Any:
        return self.fmu.model_description

    @property
    def fmi_version(self) -> str:
        return str(self.model_description.fmiVersion)

    @property
    def model_name(self) -> str:
        return str(self.model_description.modelName)

    @property
    def interfaces(self) -> list[str]:
        md = self.model_description
        return [n for n,
                i in (("co-simulation", md.coSimulation),
                      ("model-exchange", md.modelExchange)) if i is not None]

    @property
    def default_experiment(self) -> DefaultExperiment:
        e = self.model_description.defaultExperiment

        def num(x: Any) -> float | None:
            return None if x is None else float(x)

        if e is None:
            return DefaultExperiment(None, None, None, None)
        return DefaultExperiment(num(e.startTime), num(e.stopTime), num(e.tolerance), num(e.stepSize))

    @property
    def parameters(self) -> list[Variable]:
        return [v for v in self.variables if v.causality in ("parameter", "structuralParameter")]

    @property
    def tunable_parameters(self) -> list[Variable]:
        """Parameters a study can set: elements of FMI 3 array parameters are not among them."""
        return [v for v in self.parameters if v.tunable != "no"]

    @property
    def generation_tool(self) -> str:
        return str(getattr(self.model_description, "generationTool", None) or "")

    @property
    def kinds(self) -> list[str]:
        """``CS`` / ``ME``: the interfaces the model description declares."""
        md = self.model_description
        return [k for k, i in (("CS", md.coSimulation), ("ME", md.modelExchange)) if i is not None]

    @property
    def outputs(self) -> list[Variable]:
        return [v for v in self.variables if v.causality == "output"]

    @property
    def inputs(self) -> list[Variable]:
        return [v for v in self.variables if v.causality == "input"]

    def check_interface(self, interface: str) -> str:
        """The interface (``CS``/``ME``) a study with ``[twin] interface`` runs, refused early when the FMU
        does not declare it or has no binary for it on this platform (the simulator would fail with fmpy's
        message)."""
        from fmi_optimizer.errors import FmuUnsupportedError, StudyError

        kinds = self.kinds
        chosen = {"cs": "CS", "me": "ME"}.get(interface) or ("CS" if "CS" in kinds else "ME")
        if chosen not in kinds:
            raise StudyError(f"{self.path.name}: [twin] interface = {interface!r}, but the FMU declares only "
                             f"{' and '.join(kinds)}; set interface = \"{kinds[0].lower()}\" or \"auto\"")
        if chosen in self.fmu.without_binary:
            others = [k for k in kinds if k not in self.fmu.without_binary]
            ident = (self.model_description.coSimulation if chosen == "CS"
                     else self.model_description.modelExchange)
            raise FmuUnsupportedError(
                f"{self.path.name}: has no binary for its {chosen} interface (modelIdentifier "
                f"{ident.modelIdentifier!r}) on this platform; "
                + (f"set [twin] interface = \"{others[0].lower()}\", or "
                   "" if others else "") + "re-export the FMU")
        return chosen

    def variable(self, name: str, to_set: bool = True) -> Variable:
        """The variable ``name``; an unknown name is refused with the closest names as suggestions: those
        an importer may set first when the name is looked up ``to_set`` (a design parameter, a fixed value, an
        applied result), every name otherwise (an output to read)."""
        if name not in self._by_name:
            element = next((v for v in self.variables if v.array_of == name), None)
            if element is not None and element.causality in ("parameter", "structuralParameter"):
                raise ValueValidationError(f"{self.path.name}: {element.array_refusal(whole=True)}")
            if element is not None:
                raise ValueValidationError(f"{self.path.name}: {name!r} is an FMI 3 array "
                                           f"({element.array_type}); name one element, e.g. {element.name!r}")
            settable = [n for n, v in self._by_name.items() if v.settable_before_init or not to_set]
            close = ([n for n in settable if name.lower() in n.lower()][:5]
                     or difflib.get_close_matches(name, settable, n=3)
                     or difflib.get_close_matches(name, list(self._by_name), n=3))
            hint = (f"; did you mean {' or '.join(map(repr, close))}?" if close
                    else "; see 'fmi-optimizer inspect'")
            raise ValueValidationError(f"{self.path.name}: no variable named {name!r}{hint}")
        return self._by_name[name]

    def recordable(self) -> list[str]:
        """Names that can be recorded as trajectories: outputs first, then other variables."""
        return [v.name for v in self.outputs] + [v.name for v in self.variables if v.causality != "output"]

    def info(self) -> dict[str, Any]:
        """What ``inspect --json`` prints."""
        e = self.default_experiment
        md = self.model_description
        return {
            "fmi_version": self.fmi_version,
            "model_name": self.model_name,
            "generation_tool": self.generation_tool,
            "generation_date": str(getattr(md, "generationDateAndTime", None) or ""),
            "kinds": self.kinds,
            "model_identifier": (md.coSimulation or md.modelExchange).modelIdentifier,
            "guid": getattr(md, "guid", None) or getattr(md, "instantiationToken", None),
            "interfaces": self.interfaces,
            "compiled_from_sources": self.fmu.compiled_from_sources,
            "sha256": self.fmu.sha256,
            "default_experiment": {"start_time": e.start_time, "stop_time": e.stop_time,
                                   "tolerance": e.tolerance, "step_size": e.step_size},
            "parameters": _grouped(self.parameters),
            "outputs": _grouped(self.outputs),
            "inputs": _grouped(self.inputs),
        }

    # -- values ---------------------------------------------------------------------------
    def check_values(self, values: Mapping[str, Any]) -> dict[str, Value]:
        """Check names, types and ranges before any simulation; return canonically typed values."""
        out: dict[str, Value] = {}
        for name, raw in values.items():
            v = self.variable(name)
            if v.array_of is not None and v.causality in ("parameter", "structuralParameter"):
                raise ValueValidationError(f"{self.path.name}: {v.array_refusal()}")
            if not v.settable_before_init:  # the rule of the design space and of the write-back
                raise ValueValidationError(
                    f"{self.path.name}: {name!r} is a {v.causality} ({v.variability}) and cannot be set; "
                    "choose a parameter with causality 'parameter'")
            out[name] = check_value(v, raw)
        return out

    def dimension(self, name: str, **narrow: Any) -> Dimension:
        """The design-space dimension of a parameter: its type, bounds from the FMU unless narrowed."""
        return dimension_for(self.variable(name), **narrow)

    # -- simulation -----------------------------------------------------------------------
    def simulate(self, values: Mapping[str, Any] | None = None, settings: SimSettings | None = None,
                 outputs: Sequence[str] | None = None, inputs: np.ndarray | None = None) -> Trajectory:
        """Simulate once in this process (convenient for scripts; studies use isolated workers)."""
        checked = self.check_values(values or {})
        sim = Simulator(self.fmu.runnable, (settings or SimSettings()).interface)
        try:
            traj = sim.run(checked, settings or SimSettings(),
                           list(outputs or [v.name for v in self.outputs]), inputs)
        except Exception as exc:
            said = sim.last_messages()
            raise SimulationError(f"{self.path.name}: simulation failed ({' '.join(str(exc).split())})"
                                  + (f" [FMU log: {said}]" if said else "")) from exc
        finally:
            sim.close()
        if traj.message:
            raise SimulationError(f"{self.path.name}: {traj.message}")
        return traj


def _grouped(variables: Sequence[Variable]) -> list[dict[str, Any]]:
    """``inspect --json`` rows: scalars as they are, an FMI 3 array as one row with its dimensions and
    elements."""
    rows: list[dict[str, Any]] = []
    arrays: dict[str, dict[str, Any]] = {}
    for v in variables:
        if v.array_of is None:
            rows.append(v.to_dict())
            continue
        row = arrays.get(v.array_of)
        if row is None:
            row = {**v.to_dict(), "name": v.array_of, "start": [], "elements": []}
            arrays[v.array_of] = row
            rows.append(row)
        row["start"].append(v.start)
        row["elements"].append(v.name)
    return rows


def check_value(v: Variable, raw: Any) -> Value:
    """One value against one variable: type, min/max, enumeration items."""
    where = f"{v.name!r}"
    if v.type == "Real":
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ValueValidationError(f"{where}: expected a real number, got {raw!r}")
        x = float(raw)
        if not math.isfinite(x):
            raise ValueValidationError(f"{where}: {x} is not finite")
        _range(v, x)
        return x
    if v.type == "Integer":
        if isinstance(raw,
                      bool) or not (isinstance(raw, int) or (isinstance(raw, float) and raw.is_integer())):
            raise ValueValidationError(f"{where}: expected an integer, got {raw!r}")
        _range(v, int(raw))
        return int(raw)
    if v.type == "Enumeration":
        for label, value in v.items:
            if raw == label or (not isinstance(raw, bool) and isinstance(raw, int) and raw == value):
                return value
        items = ", ".join(f"{n}={val}" for n, val in v.items)
        raise ValueValidationError(f"{where}: {raw!r} is not an item of its enumeration ({items})")
    if v.type == "Boolean":
        if isinstance(raw, bool) or (isinstance(raw, int) and raw in (0, 1)):
            return bool(raw)
        raise ValueValidationError(f"{where}: expected true/false, got {raw!r}")
    if v.type == "String":
        if not isinstance(raw, str):
            raise ValueValidationError(f"{where}: expected a string, got {raw!r}")
        return raw
    raise ValueValidationError(f"{where}: variables of type {v.type} cannot be set by fmi_optimizer")


def _range(v: Variable, x: float) -> None:
    lo = -math.inf if v.min is None else v.min
    hi = math.inf if v.max is None else v.max
    if not lo <= x <= hi:
        raise ValueValidationError(f"{v.name!r}: {x:g} is outside its allowed range [{lo:g}, "
                                   f"{hi:g}]{_unit(v)}")


def _unit(v: Variable) -> str:
    return f" {v.unit}" if v.unit else ""


_KEYS_BY_TYPE = {"Real": ("min", "max", "levels", "log"), "Integer": ("min", "max"),
                 "Enumeration": ("items",),
                 "Boolean": ()}
_ALL_KEYS = {k for keys in _KEYS_BY_TYPE.values() for k in keys}


def _check_narrowing(v: Variable, narrow: dict[str, Any]) -> None:
    """Every key of ``[parameters] name = { ... }`` fits the variable's type and has the right kind of
    value."""
    from fmi_optimizer.errors import StudyError

    accepted = _KEYS_BY_TYPE.get(v.type, ())
    where = f"[parameters] {v.name!r}"
    for key, value in narrow.items():
        if key not in accepted:
            what = "does not apply to" if key in _ALL_KEYS else "is not a key of"
            article = "an" if v.type[:1] in "AEIOU" else "a"
            raise StudyError(f"{where}: {key} {what} {article} {v.type} parameter; accepted for it: "
                             f"{', '.join(accepted) or 'no keys (write {})'}")
        if key in ("min", "max"):
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise StudyError(f"{where}: {key} = {value!r}: expected a finite number without quotes, e.g. "
                                 f"{key} = 0.6")
            if v.type == "Integer" and not float(value).is_integer():
                raise StudyError(f"{where}: {key} = {value!r}: an Integer parameter needs a whole number")
        elif key == "levels":
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise StudyError(f"{where}: levels = {value!r}: expected an integer >= 2")
        elif key == "log":
            if not isinstance(value, bool):
                raise StudyError(f"{where}: log = {value!r}: expected true or false")
        elif key == "items":
            if not isinstance(value, list) or not value or not all(isinstance(x, str) for x in value):
                raise StudyError(f"{where}: items = {value!r}: expected a list of item names, e.g. "
                                 f"items = [{', '.join(repr(n) for n, _ in v.items[:2])}]")
    lo, hi = narrow.get("min"), narrow.get("max")
    if lo is not None and hi is not None and lo >= hi:
        raise StudyError(f"{where}: min = {lo!r} is not below max = {hi!r}; make min smaller than max")


def dimension_for(v: Variable, **narrow: Any) -> Dimension:
    """Design-space dimension for ``v``; ``min``/``max``/``levels``/``log``/``items`` narrow it."""
    from fmi_optimizer.errors import StudyError

    if v.array_of is not None:
        raise StudyError(f"parameter {v.array_refusal()}")
    if not v.settable_before_init:
        # refused here, before any simulation: the simulator would set it anyway (some FMUs accept that and
        # return numbers from a model state FMI does not define) and the write-back would refuse it at the end
        raise StudyError(f"parameter {v.name!r} has causality {v.causality!r} (variability "
                         f"{v.variability!r}, initial {v.initial or 'not given'}), which FMI does not let an "
                         "importer set; vary a variable of causality 'parameter' or 'input' instead (see "
                         "'fmi-optimizer inspect'), and compute KPIs from outputs under [kpis]")
    _check_narrowing(v, narrow)  # unknown keys too: named with what the variable's type accepts
    if v.type == "Real":
        lo = narrow.get("min", v.min)
        hi = narrow.get("max", v.max)
        if lo is None or hi is None:
            raise StudyError(f"parameter {v.name!r}: the FMU gives no min/max; set min and max in the study "
                             "file")
        lo_c, hi_c = check_value(v, float(lo)), check_value(v, float(hi))
        return Continuous(v.name, float(lo_c), float(hi_c), bool(narrow.get("log", False)),
                          narrow.get("levels"), v.unit)
    if v.type == "Integer":
        lo = narrow.get("min", v.min)
        hi = narrow.get("max", v.max)
        if lo is None or hi is None:
            raise StudyError(f"parameter {v.name!r}: the FMU gives no min/max; set min and max in the study "
                             "file")
        return Integer(v.name, int(check_value(v, int(lo))), int(check_value(v, int(hi))), v.unit)
    if v.type == "Enumeration":
        items = v.items
        if "items" in narrow:
            wanted = list(narrow["items"])
            labels = [n for n, _ in items]
            bad = [w for w in wanted if w not in labels]
            if bad:
                raise StudyError(f"parameter {v.name!r}: unknown item(s) {bad}; items: {labels}")
            items = tuple(it for it in items if it[0] in wanted)
        return Categorical(v.name, tuple(val for _, val in items), tuple(n for n, _ in items))
    if v.type == "Boolean":
        return Boolean(v.name)
    raise StudyError(f"parameter {v.name!r}: type {v.type} cannot be optimized")
