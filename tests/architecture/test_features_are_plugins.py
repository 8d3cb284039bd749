"""Features plug in like plugins; every hook goes through pluggy; hookspecs name the real classes.

Calibration and uncertainty are registered by the host as built-in plugins, before every other plugin,
and add their CLI commands and report sections through the same hooks a third party implements. The
registration hooks are called through ``pm.hook`` too: a function that merely has a hook's name, without
``@hookimpl``, never runs.
"""

from __future__ import annotations

import inspect
import typing
from types import SimpleNamespace
from typing import Any

from fmi_optimizer import hookspecs
from fmi_optimizer.cli.main import builtin_commands
from fmi_optimizer.host.loader import FEATURES, load_host
from fmi_optimizer.method import Capabilities, Method


class _Unmarked(Method):
    name = "unmarked_method"
    capabilities = Capabilities(kinds=frozenset({"continuous"}))

    def ask(self, n: int) -> list[Any]:
        return []

    def tell(self, evaluations: Any) -> None:
        return None


def _unmarked_register(registry: Any) -> None:
    registry.add(_Unmarked)


def test_a_hook_function_without_hookimpl_does_not_run() -> None:
    plugin = SimpleNamespace(__name__="unmarked", fmio_register_methods=_unmarked_register)
    host = load_host(extra=[plugin], include_entry_points=False)
    assert "unmarked_method" not in host.methods.names()
    info = next(p for p in host.plugins if p.name == "python:unmarked")
    assert info.hooks == [] and info.methods == [] and info.error == ""


def test_a_marked_registration_hook_runs_through_pluggy() -> None:
    plugin = SimpleNamespace(__name__="marked", fmio_register_methods=hookspecs.hookimpl(_unmarked_register))
    host = load_host(extra=[plugin], include_entry_points=False)
    assert "unmarked_method" in host.methods.names()
    assert next(p for p in host.plugins if p.name == "python:marked").methods == ["unmarked_method"]


def test_features_are_registered_first_as_builtin_plugins() -> None:
    host = load_host()
    assert [p.name for p in host.plugins][: len(FEATURES)] == list(FEATURES)
    hooks = {p.name: p.hooks for p in host.plugins}
    assert "fmio_register_commands" in hooks["calibration"]
    assert "fmio_report_sections" in hooks["uncertainty"]


def _commands(blocked: tuple[str, ...] = ()) -> Any:
    commands = builtin_commands()
    load_host(blocked=blocked, include_entry_points=False).pm.hook.fmio_register_commands(cli=commands)
    return commands


def test_the_calibration_commands_come_from_its_plugin() -> None:
    with_feature, without = _commands(), _commands(blocked=("calibration",))
    assert "calibrate" in with_feature.commands and with_feature.study_check is not None
    assert "calibrate" not in without.commands and without.study_check is None
    assert "check" in without.commands  # ``check X.fmu`` is the core's


def test_the_uncertainty_report_sections_come_from_its_plugin() -> None:
    def callers(blocked: tuple[str, ...]) -> list[str]:
        pm = load_host(blocked=blocked, include_entry_points=False).pm
        return [impl.plugin_name for impl in pm.hook.fmio_report_sections.get_hookimpls()]

    assert "uncertainty" in callers(())
    assert "uncertainty" not in callers(("uncertainty",))


def test_hookspecs_are_typed_with_the_real_classes() -> None:
    from fmi_optimizer.cli.options import CommandSet
    from fmi_optimizer.engine.pool import Evaluator
    from fmi_optimizer.fmu.twin import Twin
    from fmi_optimizer.records import Evaluation
    from fmi_optimizer.registry import KpiRegistry, MethodRegistry
    from fmi_optimizer.space import DesignSpace
    from fmi_optimizer.study.loop import Study, StudyResult
    from fmi_optimizer.study.problem import StudyProblem

    names = {c.__name__: c for c in (CommandSet, Evaluator, Twin, Evaluation, KpiRegistry, MethodRegistry,
                                     DesignSpace, Study, StudyResult, StudyProblem)}
    specs = [f for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("fmio_")]
    assert len(specs) >= 9
    for spec in specs:
        hints = typing.get_type_hints(spec, localns=names)
        for arg, hint in hints.items():
            assert hint is not Any, f"{spec.__name__}({arg}) is typed Any"
