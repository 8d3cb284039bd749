"""Every registered built-in method passes the conformance suite, analytically and on a real FMU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fmi_optimizer.host.loader import load_host
from fmi_optimizer.testing import check_method, check_method_on_fmu

HOST = load_host()
BUILTINS = [e.cls for e in HOST.methods.entries() if e.source.startswith("builtin")]
# bayes fits GPflow models: TensorFlow, and the slowest of the built-ins by far
PARAMS = [pytest.param(c, marks=[pytest.mark.tf, pytest.mark.slow]) if c.name == "bayes" else c for c in BUILTINS]

# options that keep the slow methods quick without changing what is checked
FAST: dict[str, dict[str, Any]] = {
    "bayes": {"n_initial": 5},
    "ranking": {"n0": 5},
}


def test_all_four_families_are_registered() -> None:
    assert {"random", "de", "ga", "qio", "bayes", "ranking"} <= set(HOST.methods.names()), HOST.errors


@pytest.mark.parametrize("cls", PARAMS, ids=lambda c: c.name)
def test_builtin_passes_conformance(cls: type) -> None:
    report = check_method(cls, options=_options(cls))
    assert report.evaluations > 0 and "deterministic for a seed" in report.checks


def _options(cls: type) -> dict[str, Any]:
    accepted = {f for f in getattr(cls.Options, "__dataclass_fields__", {})}
    return {k: v for k, v in FAST.get(cls.name, {}).items() if k in accepted}


@pytest.mark.parametrize("cls", PARAMS, ids=lambda c: c.name)
def test_builtin_runs_on_a_real_fmu(cls: type, faulty_fmu: Path, sample_fmu) -> None:
    caps = cls.capabilities
    if caps.needs_scenarios:
        fmu = sample_fmu("production_line")
        study: dict[str, Any] = {
            "twin": {"fmu": str(fmu), "stop_time": 86400.0, "output_interval": 43200.0},
            "kpis": {"tp": "final(throughput)"}, "objective": {"maximize": "tp"},
            "replications": {"seed_parameter": "seed"},
            "scenarios": {"a": {"n_crews": 1, "buffer_1": 2}, "b": {"n_crews": 2, "buffer_1": 2},
                          "c": {"n_crews": 2, "buffer_1": 4}},
        }
        budget = 60
    else:
        x_spec = {} if "continuous" in caps.kinds else {"levels": 11}
        study = {"twin": {"fmu": str(faulty_fmu), "stop_time": 2.0, "output_interval": 0.1},
                 "parameters": {"x": x_spec, "n": {}}, "kpis": {"z_end": "final(z)"},
                 "objective": {"minimize": {"z_end": 1.0}}}
        budget = 12
    result = check_method_on_fmu(cls, study, Path("."), budget=budget, options=_options(cls))
    assert result.best is not None and result.counts()["total"] > 0
