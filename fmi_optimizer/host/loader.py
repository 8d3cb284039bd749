"""Plugin manager: built-ins and third parties through entry points, a plugins folder, objects passed in.

Order: the built-in features (calibration, uncertainty), entry points of this distribution
(built-in methods), other distributions' entry points, ``.py`` files of the plugins folder,
explicit objects. A plugin that fails to import is recorded with its source and reported; the
others still load. Every hook, the registration hooks too, is called through ``pm.hook``: only
functions marked with ``@hookimpl`` run.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from fmi_optimizer import __version__, hookspecs
from fmi_optimizer.errors import PluginError
from fmi_optimizer.host.kpi import builtin_registry
from fmi_optimizer.registry import KpiRegistry, MethodRegistry

GROUP = "fmi_optimizer"
OWN_DISTRIBUTION = "fmi-optimizer"

FEATURES = {"calibration": "fmi_optimizer.calibration.plugin",
            "uncertainty": "fmi_optimizer.uncertainty.plugin"}
"""The features shipped with the package, registered as plugins (by module name, like an entry point)
before every other plugin: the core imports no feature, a feature adds its commands and report sections
through the same hooks a third party implements."""


@dataclass
class PluginInfo:
    """What ``fmi-optimizer plugins`` shows for one plugin."""

    name: str
    source: str  # "builtin", "entry point <dist>", "file <path>", "python"
    version: str
    hooks: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    error: str = ""


@dataclass
class Host:
    """The loaded plugins and what they registered."""

    pm: pluggy.PluginManager
    methods: MethodRegistry
    kpis: KpiRegistry
    plugins: list[PluginInfo]

    @property
    def errors(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.error]

    def method_origin(self, name: str) -> str:
        """Who ships method ``name``, for error messages: ``plugin 'sweep' (entry point of fmio-sweep
        1.2)``."""
        for info in self.plugins:
            if name in info.methods:
                version = f" {info.version}" if info.version else ""
                return f"plugin {info.name!r} ({info.source}{version})"
        if name in self.methods:
            return f"plugin ({self.methods.resolve(name).source})"
        return "an unknown plugin"


def load_host(plugins_dir: Path | None = None, extra: Iterable[Any] = (), blocked: Iterable[str] = (),
              include_entry_points: bool = True) -> Host:
    """Load every plugin and fill the registries. ``blocked`` names entry points to skip."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    infos: list[PluginInfo] = []
    blocked_set = set(blocked)
    for name, module in FEATURES.items():
        if name not in blocked_set:
            infos.append(_register(pm, name, "builtin", __version__,
                                   lambda m=module: importlib.import_module(m)))
    if include_entry_points:
        for ep in sorted(_entry_points(), key=lambda e: (_dist_name(e) != OWN_DISTRIBUTION, e.name)):
            if ep.name in blocked_set:
                continue
            dist = _dist_name(ep)
            source = "builtin" if dist == OWN_DISTRIBUTION else f"entry point of {dist}"
            infos.append(_register(pm, ep.name, source, _dist_version(ep), lambda ep=ep: ep.load()))
    if plugins_dir is not None:
        if not Path(plugins_dir).is_dir():
            raise PluginError(f"{plugins_dir}: plugins folder does not exist; create it or drop the option")
        for path in sorted(Path(plugins_dir).glob("*.py")):
            infos.append(_register(pm, f"file:{path.stem}", f"file {path}", "", lambda p=path: _load_file(p)))
    for i, obj in enumerate(extra):
        name = getattr(obj, "__name__", f"python-{i}")
        infos.append(_register(pm, f"python:{name}", "python", "", lambda o=obj: o))
    pm.check_pending()
    methods, kpis = MethodRegistry(), builtin_registry()
    for info in infos:
        if info.error:
            continue
        plugin = pm.get_plugin(info.name)
        _fill(pm, plugin, info, methods, kpis)
    return Host(pm, methods, kpis, infos)


def _register(pm: pluggy.PluginManager, name: str, source: str, version: str, loader: Any) -> PluginInfo:
    info = PluginInfo(name, source, version)
    try:
        plugin = loader()
        pm.register(plugin, name=name)
        info.hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # any import-time failure (sys.exit() too) is reported, not fatal
        info.error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return info


def _fill(pm: pluggy.PluginManager, plugin: Any, info: PluginInfo, methods: MethodRegistry,
          kpis: KpiRegistry) -> None:
    """Call one plugin's registration hooks, so a duplicate is attributed to the right source."""
    source = info.source if info.source != "builtin" else f"builtin {info.name}"
    methods.current_source = kpis.current_source = source
    before = set(methods.names())
    try:
        _call_own(pm, plugin, "fmio_register_methods", registry=methods)
        _call_own(pm, plugin, "fmio_register_kpis", registry=kpis)
    except PluginError as exc:
        info.error = str(exc)
        pm.unregister(plugin)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a broken plugin (sys.exit() too) must not take the others down
        info.error = f"{type(exc).__name__} in registration: {exc}"
        pm.unregister(plugin)
    info.methods = sorted(set(methods.names()) - before)


def _call_own(pm: pluggy.PluginManager, plugin: Any, hook: str, **kwargs: Any) -> None:
    """Call ``plugin``'s implementation of ``hook`` as pluggy registered it (only ``@hookimpl`` functions,
    with the arguments it names), so an error is attributed to that plugin alone."""
    for impl in getattr(pm.hook, hook).get_hookimpls():
        if impl.plugin is plugin:
            impl.function(**{a: kwargs[a] for a in impl.argnames})


def _entry_points() -> list[EntryPoint]:
    return list(entry_points(group=GROUP))


def _dist_name(ep: EntryPoint) -> str:
    return ep.dist.name if ep.dist is not None else "unknown"


def _dist_version(ep: EntryPoint) -> str:
    return ep.dist.version if ep.dist is not None else ""


def _load_file(path: Path) -> ModuleType:
    name = f"fmio_plugin_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)  # a half-imported plugin must not stay importable
        raise
    return module
