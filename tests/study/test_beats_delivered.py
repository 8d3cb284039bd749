"""A study says when its best design is no better than the twin as delivered: a written FMU is then no
improvement, and the user must not take it for one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import fmi_optimizer


def _study(fmu: Path, low: float, high: float) -> str:
    """Minimize the faulty twin's final y = (x - 1)^2; delivered x = 0 gives y = 1."""
    return f"""
[twin]
fmu = "{fmu}"
stop_time = 2.0
[parameters]
x = {{ min = {low}, max = {high} }}
[kpis]
y_end = "final(y)"
[objective]
minimize = "y_end"
[method]
name = "random"
budget = {{ evaluations = 3 }}
seed = 1
[evaluation]
workers = 1
"""


@pytest.mark.parametrize("low, high, beats", [(0.5, 1.5, True), (-5.0, -1.0, False)])
def test_the_json_says_whether_the_best_beats_the_delivered_twin(faulty_fmu: Path, tmp_path: Path, low: float,
                                                                 high: float, beats: bool) -> None:
    path = tmp_path / "s.toml"
    path.write_text(_study(faulty_fmu, low, high))
    baseline = fmi_optimizer.optimize(path, out=tmp_path / "out", write_back=False).to_json()["baseline"]
    assert baseline["objective"] == pytest.approx(1.0, rel=1e-3)
    assert baseline["best_beats_it"] is beats


def test_the_command_warns_when_the_best_is_worse_than_the_delivered_twin(faulty_fmu: Path,
                                                                         tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(_study(faulty_fmu, -5.0, -1.0))
    proc = subprocess.run([sys.executable, "-m", "fmi_optimizer.cli.main", "optimize", str(path), "--json",
                           "--no-writeback", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["baseline"]["best_beats_it"] is False
    assert "not better than the twin as delivered" in proc.stderr
