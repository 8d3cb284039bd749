"""fmi_optimizer.evaluate: one parameter set scored with the study's own KPIs, objective and constraints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import fmi_optimizer
from fmi_optimizer.errors import ValueValidationError


def _study(fmu: Path, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "twin": {"fmu": str(fmu), "stop_time": 2.0, "output_interval": 0.05},
        "parameters": {"x": {}, "n": {}},
        "kpis": {"z_end": "final(z)", "y_peak": "max(y)"},
        "objective": {"maximize": {"z_end": 2.0}},
        "constraints": {"y_peak": "<= 3.0"},
        "method": {"name": "random", "budget": {"evaluations": 6}, "seed": 5},
        "evaluation": {"workers": 1},
    }
    d.update(extra)
    return d


@pytest.mark.slow
def test_evaluate_reproduces_what_the_study_stored(faulty_fmu: Path, tmp_path: Path) -> None:
    d = _study(faulty_fmu)
    stored = fmi_optimizer.optimize(d, out=tmp_path, write_back=False).result.evaluations
    for e in stored[:2]:
        ev = fmi_optimizer.evaluate(d, e.values)
        assert isinstance(ev, fmi_optimizer.Evaluation) and ev.status == "ok" and ev.error == ""
        assert ev.kpis == e.kpis and ev.objective == e.objective and ev.constraints == e.constraints
        assert ev.feasible == e.feasible and ev.objective == -2.0 * ev.kpis["z_end"]  # minimization sense


def test_evaluate_takes_a_file_or_a_config_and_fills_left_out_parameters(faulty_fmu: Path, tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(f'[twin]\nfmu = "{faulty_fmu}"\nstop_time = 2.0\n[parameters]\nx = {{}}\nn = {{}}\n'
                    '[kpis]\nz_end = "final(z)"\n[objective]\nminimize = "z_end"\n')
    config = fmi_optimizer.load_study(path)
    a = fmi_optimizer.evaluate(path, {"x": 1.5})
    b = fmi_optimizer.evaluate(config, {"x": 1.5, "n": 3})  # n's start value is 3
    assert a.status == b.status == "ok" and a.kpis == b.kpis and a.values == {"x": 1.5, "n": 3}
    with pytest.raises(ValueValidationError, match=r"\['fault'\] not in the design space"):
        fmi_optimizer.evaluate(config, {"fault": 1})
    with pytest.raises(ValueValidationError, match="outside"):
        fmi_optimizer.evaluate(config, {"x": 50.0})


def test_evaluate_reports_a_crash_as_a_status_in_an_isolated_worker(faulty_fmu: Path) -> None:
    ev = fmi_optimizer.evaluate(_study(faulty_fmu, fixed={"fault": "abort"}), {"x": 0.5, "n": 2})
    assert ev.status == "crashed" and "SIGABRT" in ev.error and ev.objective is None and not ev.feasible


def test_study_type_is_exported_for_hook_annotations(faulty_fmu: Path, tmp_path: Path) -> None:
    seen: list[Any] = []

    class Observer:
        @staticmethod
        @fmi_optimizer.hookimpl
        def fmio_study_finished(study: fmi_optimizer.Study, result: fmi_optimizer.StudyResult) -> None:
            seen.append((study, result))

    fmi_optimizer.optimize(_study(faulty_fmu), out=tmp_path, write_back=False, plugins=[Observer])
    study, result = seen[0]
    assert isinstance(study, fmi_optimizer.Study) and isinstance(result, fmi_optimizer.StudyResult)
    assert isinstance(study.problem.config, fmi_optimizer.StudyConfig)
