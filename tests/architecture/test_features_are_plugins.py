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
    from fmi_optimizer.registry import KpiRegistry, MethodRegistry, ProblemBinding, SectionRegistry
    from fmi_optimizer.space import DesignSpace
    from fmi_optimizer.study.loop import Study, StudyResult
    from fmi_optimizer.study.problem import StudyProblem

    names = {c.__name__: c for c in (CommandSet, Evaluator, Twin, Evaluation, KpiRegistry, MethodRegistry,
                                     DesignSpace, Study, StudyResult, StudyProblem, ProblemBinding,
                                     SectionRegistry)}
    specs = [f for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("fmio_")]
    assert len(specs) >= 11
    for spec in specs:
        hints = typing.get_type_hints(spec, localns=names)
        for arg, hint in hints.items():
            assert hint is not Any, f"{spec.__name__}({arg}) is typed Any"


# -- a third party's feature: its own study-file section and its own problem binding ----------------------


class _MySpec:
    def __init__(self, factor: float, output: str):
        self.factor, self.output = factor, output


def _parse_mysection(table: Any, context: Any) -> _MySpec | None:
    from fmi_optimizer.errors import StudyError

    if table is None:
        return None
    factor = table.get("factor")
    if not isinstance(factor, int | float) or isinstance(factor, bool):
        raise StudyError(f"{context.where}: [mysection] factor = {factor!r}: expected a number")
    return _MySpec(float(factor), str(table.get("output", "mass")))


class _MyPlugin:
    """Adds ``[mysection] factor, output``: every evaluation gets a KPI ``scaled`` = factor * the output's
    final value, and the factor is part of the cache key."""

    __name__ = "mysection_plugin"

    def __init__(self) -> None:
        self.bound: list[Any] = []

    @hookspecs.hookimpl
    def fmio_register_sections(self, registry: Any) -> None:
        from fmi_optimizer.registry import StudySection

        registry.add(StudySection("mysection", _parse_mysection))

    @hookspecs.hookimpl
    def fmio_bind_problem(self, problem: Any) -> Any:
        from fmi_optimizer.registry import ProblemBinding

        spec = problem.config.features.get("mysection")
        if spec is None:
            return None

        class Binding(ProblemBinding):
            feature = "mysection"

            def outputs(self) -> tuple[str, ...]:
                return (spec.output,)

            def kpis(self, time: Any, outputs: Any) -> dict[str, float]:
                return {"scaled": spec.factor * float(outputs[spec.output][-1])}

            def cache_identity(self) -> dict[str, Any]:
                return {"mysection": spec.factor}

        binding = Binding()
        self.bound.append(binding)
        return binding


def _my_study(fmu: Any, **extra: Any) -> dict[str, Any]:
    return {"twin": {"fmu": str(fmu), "stop_time": 600.0, "output_interval": 10.0},
            "parameters": {"n_fins": {}}, "kpis": {"cost": "final(cost)", "mass": "final(mass)"},
            "objective": {"minimize": "cost"}, **extra}


def test_a_third_party_section_is_parsed_and_bound_by_its_plugin(sample_fmu: Any, tmp_path: Any) -> None:
    import pytest

    from fmi_optimizer.errors import StudyError
    from fmi_optimizer.fmu.twin import Twin
    from fmi_optimizer.records import Candidate
    from fmi_optimizer.runner.run import optimize
    from fmi_optimizer.study.config import load_study
    from fmi_optimizer.study.problem import StudyProblem

    fmu = sample_fmu("heat_sink")
    study = _my_study(fmu, mysection={"factor": 2.5})
    with pytest.raises(StudyError, match="unknown section or key 'mysection'") as unknown:
        load_study(study)  # without the plugin nobody knows the section; the error lists every known one
    for known in ("calibration", "inputs", "uncertainty", "kpis"):
        assert known in str(unknown.value)

    plugin = _MyPlugin()
    host = load_host(extra=[plugin], include_entry_points=False)
    assert "fmio_register_sections" in next(p for p in host.plugins if p.name == "python:mysection_plugin").hooks
    config = load_study(study, sections=host.sections)
    assert config.features["mysection"].factor == 2.5
    with pytest.raises(StudyError, match=r"\[mysection\] factor = 'x'"):
        load_study(_my_study(fmu, mysection={"factor": "x"}), sections=host.sections)

    twin = Twin.open(fmu)
    problem = StudyProblem.build(config, twin, host.kpis, pm=host.pm)
    assert problem.bindings["mysection"] is plugin.bound[-1] and problem.outputs() == ("cost", "mass")
    plain = StudyProblem.build(load_study(_my_study(fmu)), twin, host.kpis, pm=host.pm)
    assert "mysection" not in plain.bindings
    cand = Candidate({"n_fins": 20}, 0)
    assert problem.cache_key(cand) != plain.cache_key(cand)  # the section's setting is part of the identity

    # the whole run: optimize() loads the host first, so the study file may use the plugin's section
    outcome = optimize(study, plugins=[_MyPlugin()], method="random", budget=3, workers=1, out=tmp_path,
                       write_back=False)
    evaluations = [e for e in outcome.result.evaluations if e.ok]
    assert evaluations
    for ev in evaluations:
        assert ev.kpis["scaled"] == 2.5 * ev.kpis["mass"]
