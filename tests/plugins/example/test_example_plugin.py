"""The example plugin of docs/writing-a-method.md (examples/fmio-pattern-search) is a real distribution:
installed through its entry point it is listed, passes the conformance suite and runs a study."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, faulty_study
from dist_helper import install_project

EXAMPLE = ROOT / "examples" / "fmio-pattern-search"


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fmi_optimizer.cli.main", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=600)


@pytest.mark.slow
def test_example_plugin_installed_through_its_entry_point_runs_a_study(faulty_fmu: Path, tmp_path: Path) -> None:
    env = install_project(EXAMPLE, tmp_path / "site")
    listing = _cli("methods", "--json", env=env)
    assert listing.returncode == 0, listing.stderr
    methods = {m["name"]: m for m in json.loads(listing.stdout)}
    assert methods["pattern"]["source"] == "entry point of fmio-pattern-search"
    study = faulty_study(tmp_path / "study.toml", faulty_fmu, method="pattern", budget=200, seed=2, workers=2,
                         method_lines="step = 0.3\nmin_step = 0.05\n")
    run = _cli("optimize", str(study), "--json", "--no-writeback", "--out", str(tmp_path / "out"), env=env)
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["method"] == "pattern" and data["stopped_because"] == "the method finished"  # its own end
    assert data["evaluations"]["ok"] >= 5 and data["method_errors"] is None
    assert data["diagnostics"]["final_step"] < 0.05
    trace = [t for t in data["trace"] if t is not None]
    assert data["best"]["objective"] == min(trace) < trace[0]  # it searched: better than its random start
    csv = subprocess.run([sys.executable, "-m", "fmi_optimizer.cli.main", "export", str(tmp_path / "out" / "fmi_optimizer.db"),
                          "--json"], capture_output=True, text=True, env={**os.environ, **env}, timeout=120)
    rows = json.loads(Path(json.loads(csv.stdout)["json"]).read_text())
    tags = {r["tag"] for r in (rows["evaluations"] if isinstance(rows, dict) else rows)}
    assert "start" in tags and any(t.startswith("round 1 x") for t in tags)  # Candidate.tag is stored


def test_example_plugin_passes_the_conformance_suite() -> None:
    sys.path.insert(0, str(EXAMPLE))
    try:
        from fmio_pattern import PatternSearch

        from fmi_optimizer.testing import check_method

        report = check_method(PatternSearch)
    finally:
        sys.path.remove(str(EXAMPLE))
    assert report.evaluations > 0 and "deterministic for a seed" in report.checks
