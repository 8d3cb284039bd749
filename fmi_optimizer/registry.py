"""Registries that plugins fill through hooks: methods by name, KPI reducers by name, study-file sections
by name; and the interface a feature binds to a study's problem with."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from fmi_optimizer.errors import PluginError
from fmi_optimizer.method import Method
from fmi_optimizer.records import Candidate, Evaluation
from fmi_optimizer.space import Value

if TYPE_CHECKING:  # the real classes, for readers and type checkers; no run-time import of the layers above
    import numpy as np

    from fmi_optimizer.study.config import ConstraintSpec


@dataclass(frozen=True)
class MethodEntry:
    """A registered method and where it came from."""

    cls: type[Method]
    source: str


class MethodRegistry:
    """Method classes by name and alias; refuses duplicates with a message saying what to do."""

    def __init__(self) -> None:
        self._entries: dict[str, MethodEntry] = {}
        self._aliases: dict[str, str] = {}
        self.current_source = "python"

    def add(self, cls: type[Method]) -> None:
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise PluginError(f"{self.current_source}: registered {cls!r}, which is not a "
                              "fmi_optimizer.Method subclass")
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(f"{self.current_source}: method class {cls.__name__} has no 'name'")
        for n in (name, *cls.aliases):
            if n in self._entries or n in self._aliases:
                owner = (self._entries[n].source if n in self._entries
                         else self._entries[self._aliases[n]].source)
                raise PluginError(
                    f"{self.current_source}: method name {n!r} is already registered by {owner}; "
                    "choose another name or alias"
                )
        self._entries[name] = MethodEntry(cls, self.current_source)
        for a in cls.aliases:
            self._aliases[a] = name

    def resolve(self, name: str) -> MethodEntry:
        key = self._aliases.get(name, name)
        if key not in self._entries:
            raise PluginError(f"unknown method {name!r}; registered: {', '.join(self.names()) or 'none'}")
        return self._entries[key]

    def get(self, name: str) -> type[Method]:
        return self.resolve(name).cls

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[MethodEntry]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._aliases


KpiFunction = Callable[..., float]


class KpiRegistry:
    """KPI reducers by name: ``f(t, y, *args) -> float``."""

    def __init__(self) -> None:
        self._functions: dict[str, KpiFunction] = {}
        self._sources: dict[str, str] = {}
        self.current_source = "python"

    def add(self, name: str, function: KpiFunction) -> None:
        if name in self._functions:
            raise PluginError(
                f"{self.current_source}: KPI reducer {name!r} is already registered by "
                f"{self._sources[name]}; choose another name"
            )
        self._functions[name] = function
        self._sources[name] = self.current_source

    def get(self, name: str) -> KpiFunction:
        if name not in self._functions:
            raise KeyError(name)
        return self._functions[name]

    def names(self) -> list[str]:
        return sorted(self._functions)

    def __contains__(self, name: object) -> bool:
        return name in self._functions


@dataclass(frozen=True)
class SectionContext:
    """What a section parser may read besides its own table: where the study file is and what the core
    parsed before the features (the design parameters' names, the constraints)."""

    where: str  # the study file (or "study" for a dict), to start every error message with
    base_dir: Path  # relative file names in the section are relative to it
    parameters: frozenset[str]  # the design parameters of [parameters]
    constraints: tuple[ConstraintSpec, ...]  # [constraints], chance constraints included


@dataclass(frozen=True)
class StudySection:
    """A study-file table a feature owns: ``[name]`` is parsed by ``parse(table, context)`` into the
    feature's own spec object (None when the section is absent), kept in ``StudyConfig.features[name]``.

    ``parse`` is called for every study, also one without the table (``table`` is then None), so that it can
    refuse what needs its section (e.g. chance constraints without ``[uncertainty]``). ``default_objective``
    is the KPI a study with this section minimizes when it has no ``[objective]`` (such a study needs no
    ``[kpis]`` either). ``runs_per_candidate(spec)`` says how many runs one asked candidate costs.
    """

    name: str
    parse: Callable[[Any, SectionContext], Any]
    default_objective: str | None = None
    runs_per_candidate: Callable[[Any], int] | None = None


class SectionRegistry:
    """Study-file sections by name, in registration order; refuses a name registered twice."""

    def __init__(self) -> None:
        self._sections: dict[str, StudySection] = {}
        self._sources: dict[str, str] = {}
        self.current_source = "python"

    def add(self, section: StudySection) -> None:
        if not isinstance(section, StudySection):
            raise PluginError(f"{self.current_source}: registered {section!r}, which is not a "
                              "fmi_optimizer.registry.StudySection")
        if section.name in self._sections:
            raise PluginError(f"{self.current_source}: study-file section [{section.name}] is already "
                              f"registered by {self._sources[section.name]}; choose another name")
        self._sections[section.name] = section
        self._sources[section.name] = self.current_source

    def names(self) -> list[str]:
        return list(self._sections)

    def source(self, name: str) -> str:
        return self._sources[name]

    def __iter__(self) -> Iterator[StudySection]:
        return iter(list(self._sections.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._sections


RunBatch = Callable[[Sequence[Candidate]], list[Evaluation]]


class CandidateExpansion(Protocol):
    """A feature that turns one asked candidate into several runs and tells the method one aggregate
    (the robust layer of an ``[uncertainty]`` study); the study loop calls it instead of evaluating each
    candidate once."""

    aggregates: list[Evaluation]  # the latest aggregate of every candidate, in ask order

    def runs_per_candidate(self) -> int: ...

    def evaluate(self, candidates: Sequence[Candidate], run: RunBatch,
                 remaining: int | None) -> list[Evaluation]: ...

    def best_for(self, values: dict[str, Value]) -> Evaluation | None: ...

    def summary(self, best: Evaluation | None) -> dict[str, Any]: ...


class ProblemBinding:
    """What a feature adds to one bound study (a ``StudyProblem``), returned by ``fmio_bind_problem``.

    Every method has a neutral default; a feature overrides what it adds. The problem calls them in plugin
    load order: extra outputs to record, extra KPIs from a trajectory, the input table of every run, start
    values and the seed of a run, what the cache key must add, and the candidate expansion (at most one
    feature may expand candidates).
    """

    feature: str = ""  # the key of the binding in StudyProblem.bindings

    def outputs(self) -> tuple[str, ...]:
        return ()

    def kpis(self, time: np.ndarray, outputs: Mapping[str, np.ndarray]) -> dict[str, float]:
        return {}

    def input_table(self) -> Any:
        return None

    def start_values(self, candidate: Candidate) -> dict[str, Value]:
        return {}

    def seed(self, candidate: Candidate) -> int | None:
        return None

    def cache_identity(self) -> dict[str, Any]:
        return {}

    def expansion(self) -> CandidateExpansion | None:
        return None
