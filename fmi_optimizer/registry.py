"""Registries that plugins fill through hooks: methods by name, KPI reducers by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fmi_optimizer.errors import PluginError
from fmi_optimizer.method import Method


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
