"""Plugin host: entry points (a real distribution installed with pip), a plugins folder, failures, blocking."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fmi_optimizer.host.loader import load_host

THIRD_PARTY_METHOD = '''
from fmi_optimizer import Candidate, Capabilities, Method, hookimpl


class Sweep(Method):
    """Walks the unit cube diagonal: a deliberately simple third-party method."""

    name = "{name}"
    summary = "diagonal sweep (third-party test method)"
    capabilities = Capabilities()

    def __init__(self, problem, options=None, seed=0):
        super().__init__(problem, options, seed)
        self.k = 0

    def ask(self, n):
        out = []
        for _ in range(n):
            self.k += 1
            out.append(Candidate(self.problem.space.from_unit([(self.k * 0.137) % 1.0] * len(self.problem.space))))
        return out


@hookimpl
def fmio_register_methods(registry):
    registry.add(Sweep)
'''


def _cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fmi_optimizer.cli.main", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=600)


def _study(tmp: Path, fmu: Path, method: str) -> Path:
    p = tmp / "study.toml"
    p.write_text(textwrap.dedent(f"""
        [twin]
        fmu = "{fmu}"
        stop_time = 2.0
        [parameters]
        x = {{}}
        [kpis]
        z_end = "final(z)"
        [objective]
        minimize = {{ z_end = 1.0 }}
        [method]
        name = "{method}"
        budget = {{ evaluations = 6 }}
        [evaluation]
        workers = 1
    """))
    return p


def test_builtins_come_through_entry_points_and_blocking_one_keeps_the_rest() -> None:
    host = load_host()
    sources = {e.cls.name: e.source for e in host.methods.entries()}
    assert {"random", "de", "ga"} <= set(sources)
    assert all(s.startswith("builtin") for s in sources.values())
    blocked = load_host(blocked=["baselines"])
    assert not {"random", "de", "ga"} & set(blocked.methods.names())
    assert set(blocked.methods.names()) == set(sources) - {"random", "de", "ga"}


def test_core_imports_no_method_plugin() -> None:
    code = ("import sys, fmi_optimizer, fmi_optimizer.runner.run, fmi_optimizer.cli.main, fmi_optimizer.study.loop, "
            "fmi_optimizer.engine.pool, fmi_optimizer.report.html;"
            "print([m for m in sys.modules if m.startswith(('fmio_', 'tensorflow', 'gpflow', 'dimod'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_plugins_folder_method_runs_a_study_and_broken_plugins_are_reported(faulty_fmu: Path, tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "sweep.py").write_text(THIRD_PARTY_METHOD.format(name="sweep"))
    (plugins / "broken.py").write_text("import no_such_module_here\n")
    (plugins / "dupe.py").write_text(THIRD_PARTY_METHOD.format(name="random"))
    listing = _cli("plugins", "--plugins-dir", str(plugins), "--json")
    assert listing.returncode == 0, listing.stderr
    rows = {r["name"]: r for r in json.loads(listing.stdout)}
    assert rows["file:sweep"]["methods"] == ["sweep"] and not rows["file:sweep"]["error"]
    assert "No module named 'no_such_module_here'" in rows["file:broken"]["error"]
    assert "'random' is already registered by builtin" in rows["file:dupe"]["error"]
    assert f"file {plugins / 'broken.py'}" in listing.stderr
    run = _cli("optimize", str(_study(tmp_path, faulty_fmu, "sweep")), "--plugins-dir", str(plugins), "--json",
               "--no-writeback", "--out", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["method"] == "sweep" and data["evaluations"]["ok"] == 6


@pytest.mark.slow
def test_entry_point_of_an_installed_distribution(faulty_fmu: Path, tmp_path: Path) -> None:
    src = tmp_path / "dist"
    (src / "fmio_sweep_thirdparty").mkdir(parents=True)
    (src / "fmio_sweep_thirdparty" / "__init__.py").write_text(THIRD_PARTY_METHOD.format(name="sweep3"))
    (src / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "fmio-sweep-thirdparty"
        version = "1.2.3"
        [project.entry-points.fmi_optimizer]
        sweep3 = "fmio_sweep_thirdparty"
        [tool.setuptools]
        packages = ["fmio_sweep_thirdparty"]
    """))
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                          "--no-index", "--target", str(target), str(src)], capture_output=True, text=True)
    if pip.returncode != 0:
        pytest.fail(f"pip could not install the test distribution: {pip.stderr[-500:]}")
    env = {"PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}
    listing = _cli("methods", "--json", env=env)
    assert listing.returncode == 0, listing.stderr
    methods = {m["name"]: m for m in json.loads(listing.stdout)}
    assert methods["sweep3"]["source"] == "entry point of fmio-sweep-thirdparty"
    plugin_rows = {r["name"]: r for r in json.loads(_cli("plugins", "--json", env=env).stdout)}
    assert plugin_rows["sweep3"]["version"] == "1.2.3"
    run = _cli("optimize", str(_study(tmp_path, faulty_fmu, "sweep3")), "--json", "--no-writeback",
               "--out", str(tmp_path / "out"), env=env)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["method"] == "sweep3"
