"""Run one FMU many times in one process: extract once, load the library once, and start every run from a
state that a fresh instance would have.

How a run gets that state is the *instance strategy* (see :mod:`fmi_optimizer.engine.instance_strategy`, which
proves which one an FMU honours): ``reset`` calls ``fmi2Reset``/``fmi3Reset`` on one instance, ``snapshot``
restores the FMU state captured right after instantiation, ``reinstantiate`` frees the instance and creates a
new one from the library it keeps loaded, ``reload`` extracts the FMU anew and loads a fresh copy of its
library for every run (what plain
``fmpy.simulate_fmu`` does per call, so library globals start fresh too), and ``process`` is ``reload`` inside
a worker that the pool replaces after every run (for FMUs that keep state in the process itself).

This is the only module that drives fmpy's simulation API.  It is imported by
evaluation workers, so it must stay light: no plugin, no TensorFlow.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import shutil
import tempfile
import zipfile
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fmi_optimizer.fmu.variables import array_elements, output_column, output_columns

if TYPE_CHECKING:
    from fmi_optimizer.space import Value


@dataclass(frozen=True)
class SimSettings:
    """How to simulate: times, output grid, solver; ``None`` means the FMU's default experiment."""

    start_time: float | None = None
    stop_time: float | None = None
    output_interval: float | None = None
    step_size: float | None = None
    tolerance: float | None = None
    solver: str = "CVode"
    interface: str = "auto"  # "auto", "cs" (co-simulation) or "me" (model exchange)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Trajectory:
    """Sampled outputs of one run; ``message`` says why a run is unusable ('' when it is fine)."""

    time: np.ndarray
    outputs: dict[str, np.ndarray]
    stop_time: float
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


STRATEGIES = ("reset", "snapshot", "reinstantiate", "reload", "process")
"""Instance strategies, fastest first."""

REUSING = ("reset", "snapshot", "reinstantiate")
"""Strategies whose runs reuse an instance or a loaded library that ran before (what the production checks
sample, against a fresh instance)."""

FALLBACK = "reload"
"""What a worker and the pool switch to when a reused instance is caught giving other numbers than a fresh
one: the truth's own way of running (a fresh library copy per run, as plain fmpy)."""

_FMU_LOG: deque[str] = deque(maxlen=20)
_KEEP_ALIVE: deque[Any] = deque(maxlen=8)


def _on_fmu_log(*args: Any) -> None:
    """FMU log callback (FMI 2: env, instance, status, category, message; FMI 3: env, status, category,
    message): keep the last messages so a failure can say what the FMU said."""
    try:
        status = next((int(a) for a in args[1:3] if isinstance(a, int)), 0)
        message = args[-1].decode("utf-8", "replace") if isinstance(args[-1], bytes) else str(args[-1])
        _FMU_LOG.append(("error: " if status >= 3 else "") + " ".join(message.split()))
    except Exception:  # noqa: S110 - a logging problem must never crash the FMU call that logs
        pass


class Simulator:
    """One extracted FMU, its library loaded once, and a live instance prepared for each run by
    ``strategy``."""

    def __init__(self, fmu_path: str | Path, interface: str = "auto", scratch: str | None = None,
                 strategy: str = "reset"):
        from fmpy import read_model_description

        if strategy not in STRATEGIES:
            raise ValueError(f"unknown instance strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
        self.strategy = strategy
        self._archive = str(fmu_path)
        self._scratch = scratch
        self._tmp = tempfile.mkdtemp(prefix="fmio-worker-", dir=scratch)  # scratch: removed by the pool too
        self._snapshot: Any = None
        self._pin: ctypes.CDLL | None = None  # keeps the library loaded across instances
        self.instance: Any = None
        try:
            with zipfile.ZipFile(fmu_path) as z:
                z.extractall(self._tmp)
            self.model_description = read_model_description(self._tmp, validate=False)
            md = self.model_description
            if interface == "me" or (interface == "auto" and md.coSimulation is None):
                if md.modelExchange is None:
                    raise ValueError("the FMU has no model-exchange interface")
                self.fmi_type = "ModelExchange"
            else:
                if md.coSimulation is None:
                    raise ValueError("the FMU has no co-simulation interface")
                self.fmi_type = "CoSimulation"
            self._instantiate()
        except BaseException:
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise
        self._used = False
        self._elements = array_elements(md)  # FMI 3 array element names (y[1]) -> (array, index)
        exp = md.defaultExperiment
        self.default_start = float(exp.startTime) if exp is not None and exp.startTime is not None else 0.0
        self.default_stop = (float(exp.stopTime) if exp is not None and exp.stopTime is not None
                             else self.default_start + 1.0)

    def _instantiate(self) -> None:
        """A new instance from the loaded library. fmpy's ``freeInstance`` also unloads the library; the
        simulator holds a handle of its own (``_pin``) so that a new instance costs an instantiation, not a
        library load: library globals then survive, which ``reload`` is for."""
        from fmpy.simulation import instantiate_fmu

        if self.instance is not None:
            self._free()
            self.instance = None
        _FMU_LOG.clear()
        self.instance = instantiate_fmu(self._tmp, self.model_description, self.fmi_type, logger=_on_fmu_log)
        if self._pin is None and self.strategy not in ("reload", "process"):
            self._pin = ctypes.CDLL(self.instance.dll._name)
        # fmpy's native logger proxy keeps ONE process-wide pointer to the last logger it wrapped (and
        # fmpy's default callbacks go through it): the wrapper must outlive this instance, or a later
        # FMU that logs in this process calls freed memory (seen as a segfault).
        _KEEP_ALIVE.append(getattr(self.instance, "callbacks", None))
        if self.strategy == "snapshot":
            self._snapshot = self.instance.getFMUState()

    def _free(self) -> None:
        if self._snapshot is not None:
            try:
                self.instance.freeFMUState(self._snapshot)
            except Exception:  # noqa: S110 - a state the FMU cannot free must not mask the run's outcome
                pass
            self._snapshot = None
        try:
            self.instance.freeInstance()
        except Exception:  # noqa: S110 - freeing a broken instance must not mask the original error
            pass

    def _unpin(self) -> None:
        if self._pin is not None:
            from fmpy import freeLibrary

            with contextlib.suppress(Exception):
                freeLibrary(self._pin._handle)
            self._pin = None

    def _reload(self) -> None:
        """A fresh extraction and a fresh copy of the library (loaded from a new path), as plain fmpy does."""
        if self.instance is not None:
            self._free()
            self.instance = None
        self._unpin()
        old, self._tmp = self._tmp, tempfile.mkdtemp(prefix="fmio-worker-", dir=self._scratch)
        shutil.rmtree(old, ignore_errors=True)
        with zipfile.ZipFile(self._archive) as z:
            z.extractall(self._tmp)
        self._instantiate()

    def _prepare(self, fresh: bool) -> None:
        """Bring the instance to the state of a fresh one before a run (``fresh``: a fresh library copy)."""
        if not self._used:
            self._used = True
            return
        if self.strategy in ("reload", "process") or (fresh and self.strategy == "reinstantiate"):
            self._reload()
        elif fresh or self.strategy == "reinstantiate":
            self._instantiate()
        elif self.strategy == "reset":
            self.instance.reset()
        else:
            self.instance.setFMUState(self._snapshot)

    @property
    def reuses(self) -> bool:
        """True when the next run starts on an instance, or a loaded library, that has run before."""
        return self._used and self.strategy in REUSING

    def last_messages(self, n: int = 2) -> str:
        """What the FMU logged during the current run (runs in one process are sequential)."""
        return " | ".join(list(_FMU_LOG)[-n:])

    def run(
        self,
        start_values: Mapping[str, Value],
        settings: SimSettings,
        outputs: Sequence[str],
        inputs: np.ndarray | None = None,
        fresh: bool = False,
    ) -> Trajectory:
        """Simulate once; raises on FMU errors (the caller classifies them).

        ``fresh`` runs on a fresh instance (under ``reinstantiate``: a fresh copy of the library), the
        production check's reference.
        """
        from fmpy import simulate_fmu

        self._prepare(fresh)
        _FMU_LOG.clear()
        stop = settings.stop_time if settings.stop_time is not None else self.default_stop
        result = simulate_fmu(
            self._tmp,
            validate=False,
            start_time=settings.start_time,
            stop_time=stop,
            solver=settings.solver,
            step_size=settings.step_size,
            relative_tolerance=settings.tolerance,
            output_interval=settings.output_interval,
            fmi_type=self.fmi_type,
            start_values=dict(start_values),
            input=inputs,
            output=output_columns(list(outputs), self._elements),
            model_description=self.model_description,
            fmu_instance=self.instance,
        )
        time = np.asarray(result["time"], dtype=float)
        traj = Trajectory(time, {n: output_column(result, n, self._elements) for n in outputs}, float(stop))
        traj.message = check_trajectory(traj)
        return traj

    def close(self) -> None:
        if self.instance is not None:
            self._free()
            self.instance = None
        self._unpin()
        shutil.rmtree(self._tmp, ignore_errors=True)


def check_trajectory(traj: Trajectory) -> str:
    """Why a trajectory cannot be trusted: stopped early, or NaN/Inf in an output ('' when fine)."""
    if traj.time.size == 0:
        return "the simulation produced no output samples"
    end = float(traj.time[-1])
    if end < traj.stop_time - 1e-6 * max(1.0, abs(traj.stop_time)):
        return f"the simulation stopped at t={end:g} before the stop time {traj.stop_time:g}"
    for name, y in traj.outputs.items():
        bad = ~np.isfinite(y)
        if bad.any():
            i = int(np.argmax(bad))
            what = "NaN" if math.isnan(float(y[i])) else "Inf"
            return f"output {name!r} is {what} at t={float(traj.time[i]):g}"
    return ""
