"""The host keeps its promises to plugin authors: a method's or an observer's bug is attributed and contained,
the budget and the design space hold whatever a method proposes, a plugin's sys.exit() at import is isolated."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest
from conftest import faulty_study
from dist_helper import install_dist

from fmi_optimizer import Candidate, Capabilities, Method, hookimpl, optimize
from fmi_optimizer.errors import PluginError

EXPLODING = '''
import os
from fmi_optimizer import Candidate, Capabilities, Method, hookimpl


class Exploding(Method):
    """Random search whose tell() raises on its third call while FMIO_TEST_EXPLODE is set."""

    name = "exploding"
    summary = "test method with a bug in tell()"
    capabilities = Capabilities()

    def __init__(self, problem, options=None, seed=0):
        super().__init__(problem, options, seed)
        self.tells = 0

    def ask(self, n):
        return [Candidate(self.problem.space.from_unit(self.rng.random(len(self.problem.space)))) for _ in range(n)]

    def tell(self, evaluations):
        super().tell(evaluations)
        self.tells += 1
        if self.tells == 3 and os.environ.get("FMIO_TEST_EXPLODE"):
            raise RuntimeError("boom in tell")


@hookimpl
def fmio_register_methods(registry):
    registry.add(Exploding)
'''


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fmi_optimizer.cli.main", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)


def _study_dict(fmu: Path, method: str, budget: int, workers: int = 1) -> dict[str, Any]:
    return {"twin": {"fmu": str(fmu), "stop_time": 2.0, "output_interval": 0.1},
            "parameters": {"x": {}, "n": {}}, "kpis": {"z_end": "final(z)"},
            "objective": {"minimize": {"z_end": 1.0}},
            "method": {"name": method, "budget": {"evaluations": budget}, "seed": 1},
            "evaluation": {"workers": workers, "timeout": 30.0}}


def _study_file(tmp: Path, fmu: Path, method: str, budget: int) -> Path:
    return faulty_study(tmp / f"{method}.toml", fmu, method=method, budget=budget)


@pytest.mark.slow
def test_a_method_raising_in_tell_is_a_plugin_error_and_the_study_resumes(faulty_fmu: Path, tmp_path: Path) -> None:
    env = install_dist(tmp_path / "site", "fmio-exploding", "0.3", {"exploding": "fmio_exploding"},
                       {"fmio_exploding/__init__.py": EXPLODING})
    study, out = _study_file(tmp_path, faulty_fmu, "exploding", 6), tmp_path / "out"
    run = _cli("optimize", str(study), "--json", "--no-writeback", "--out", str(out),
               env={**env, "FMIO_TEST_EXPLODE": "1"})
    assert run.returncode == 9, run.stderr  # PLUGIN_ERROR, not INTERNAL
    assert "Traceback" not in run.stderr
    assert "method 'exploding' of plugin 'exploding' (entry point of fmio-exploding 0.3)" in run.stderr
    assert "raised in tell: RuntimeError: boom in tell" in run.stderr and "resume" in run.stderr
    db = sqlite3.connect(out / "fmi_optimizer.db")
    assert db.execute("SELECT status FROM studies").fetchone()[0] == "failed"
    assert db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0] == 3  # every finished one kept
    db.close()
    resumed = _cli("resume", str(out / "fmi_optimizer.db"), "--json", "--no-writeback", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["evaluations"]["total"] == 6
    db = sqlite3.connect(out / "fmi_optimizer.db")
    assert db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0] == 6  # the 3 stored were replayed
    assert db.execute("SELECT status FROM studies").fetchone()[0] == "finished"


class AskRaises(Method):
    name = "ask_raises"
    summary = "test method whose ask() raises"
    capabilities = Capabilities()

    def ask(self, n: int) -> list[Candidate]:
        raise KeyError("no such thing")


class Greedy(Method):
    """Returns two candidates more than asked for."""

    name = "greedy"
    summary = "test method that returns more than n candidates"
    capabilities = Capabilities()

    def ask(self, n: int) -> list[Candidate]:
        return [Candidate(self.problem.space.from_unit(self.rng.random(len(self.problem.space))))
                for _ in range(n + 2)]


class Wild:
    """Proposes x out of bounds for ``bad`` of every 4 candidates."""

    def __init__(self, bad: int):
        self.bad = bad

    def method(self) -> type[Method]:
        bad = self.bad

        class WildMethod(Method):
            name = f"wild{bad}"
            summary = "test method proposing out-of-bounds candidates"
            capabilities = Capabilities()

            def __init__(self, problem: Any, options: Any = None, seed: int = 0):
                super().__init__(problem, options, seed)
                self.k = 0

            def ask(self, n: int) -> list[Candidate]:
                out = []
                for _ in range(n):
                    self.k += 1
                    v = self.problem.space.from_unit(self.rng.random(len(self.problem.space)))
                    if self.k % 4 < bad:
                        v["x"] = 7.0 + self.k  # x is in [-5, 5]
                    out.append(Candidate(v))
                return out

        return WildMethod


def _plugin(*classes: type[Method]) -> Any:
    class TestMethods:
        @staticmethod
        @hookimpl
        def fmio_register_methods(registry: Any) -> None:
            for c in classes:
                registry.add(c)

    return TestMethods


def test_a_method_raising_in_ask_names_the_method_and_marks_the_study_failed(faulty_fmu: Path,
                                                                             tmp_path: Path) -> None:
    with pytest.raises(PluginError, match=r"method 'ask_raises' of plugin 'python:TestMethods' \(python\) raised "
                                          r"in ask: KeyError: 'no such thing' \(at .*test_host_promises.py"):
        optimize(_study_dict(faulty_fmu, "ask_raises", 4), out=tmp_path, write_back=False,
                 plugins=[_plugin(AskRaises)])
    db = sqlite3.connect(tmp_path / "fmi_optimizer.db")
    assert db.execute("SELECT status FROM studies").fetchone()[0] == "failed"


def test_a_raising_observer_is_warned_once_counted_and_the_study_goes_on(faulty_fmu: Path, tmp_path: Path) -> None:
    class BrokenObserver:
        @staticmethod
        @hookimpl
        def fmio_evaluation_finished(study: Any, evaluation: Any) -> None:
            raise ValueError(f"observer bug on {evaluation.values}")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = optimize(_study_dict(faulty_fmu, "random", 6), out=tmp_path, write_back=False,
                       plugins=[BrokenObserver])
    mine = [w for w in caught if "BrokenObserver" in str(w.message)]
    assert len(mine) == 1 and issubclass(mine[0].category, RuntimeWarning), [str(w.message) for w in caught]
    assert "fmio_evaluation_finished" in str(mine[0].message) and "ValueError: observer bug" in str(mine[0].message)
    assert out.result.counts()["ok"] == 6
    errors = out.to_json()["observer_errors"]["python:BrokenObserver"]
    assert errors["count"] == 6 and errors["hooks"] == {"fmio_evaluation_finished": 6}


def test_ask_returning_more_than_n_never_exceeds_the_budget(faulty_fmu: Path, tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = optimize(_study_dict(faulty_fmu, "greedy", 6, workers=2), out=tmp_path, write_back=False,
                       plugins=[_plugin(Greedy)])
    assert out.result.counts()["total"] == 6
    rows = sqlite3.connect(out.db).execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
    assert rows == 6
    surplus = [str(w.message) for w in caught if "returned 4 candidates for ask(2)" in str(w.message)]
    assert len(surplus) == 1 and "'greedy'" in surplus[0]
    assert out.to_json()["method_errors"]["surplus_candidates"] == 2 * 3  # 3 batches of 2, 2 dropped each


@pytest.mark.slow
def test_invalid_proposals_are_method_errors_shown_and_not_charged(faulty_fmu: Path, tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "wild.py").write_text(textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{str(Path(__file__).parent)!r}, {str(Path(__file__).parents[1])!r}]  # + dist_helper
        from test_host_promises import Wild, _plugin
        fmio_register_methods = _plugin(Wild(1).method(), Wild(3).method()).fmio_register_methods
    """))
    some = _cli("optimize", str(_study_file(tmp_path, faulty_fmu, "wild1", 12)), "--plugins-dir", str(plugins),
                "--json", "--no-writeback", "--out", str(tmp_path / "some"))
    assert some.returncode == 0, some.stderr
    data = json.loads(some.stdout)
    assert data["evaluations"]["total"] == 12 and data["evaluations"]["ok"] == 12  # the budget buys 12 simulations
    assert data["evaluations"]["invalid"] == 3 and data["method_errors"]["invalid_candidates"] == 3
    assert "outside [-5" in data["method_errors"]["first"]
    assert "invalid proposals 3" in some.stderr  # the progress line says so
    mostly = _cli("optimize", str(_study_file(tmp_path, faulty_fmu, "wild3", 30)), "--plugins-dir", str(plugins),
                  "--json", "--no-writeback", "--out", str(tmp_path / "mostly"))
    assert mostly.returncode == 9, mostly.stderr
    assert "method 'wild3'" in mostly.stderr and "proposes mostly invalid candidates: 10 of its 13" in mostly.stderr


@pytest.mark.slow
def test_sys_exit_at_plugin_import_is_isolated(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "quitter.py").write_text("import sys\nsys.exit(3)\n")
    env = install_dist(tmp_path / "site", "fmio-quitter", "1.0", {"quitter_ep": "fmio_quitter"},
                       {"fmio_quitter/__init__.py": "raise SystemExit('bye')\n"})
    listing = _cli("plugins", "--plugins-dir", str(plugins), "--json", env=env)
    assert listing.returncode == 0, listing.stderr
    rows = {r["name"]: r for r in json.loads(listing.stdout)}
    assert rows["file:quitter"]["error"] == "SystemExit: 3"
    assert rows["quitter_ep"]["error"] == "SystemExit: bye" and rows["quitter_ep"]["source"].endswith("fmio-quitter")
    methods = _cli("methods", "--json", env=env)
    assert methods.returncode == 0 and "random" in {m["name"] for m in json.loads(methods.stdout)}


class CentreOnly(Method):
    """Proposes the centre of the unit cube and nothing else: no search at all."""

    name = "centre_only"
    summary = "test method that never searches"
    capabilities = Capabilities()

    def ask(self, n: int) -> list[Candidate]:
        return [Candidate(self.problem.space.from_unit([0.5] * len(self.problem.space)))][:n]


def test_conformance_optimum_is_not_at_the_centre() -> None:
    from fmi_optimizer.testing import OPTIMUM, analytic_objective, check_method

    assert analytic_objective(OPTIMUM)["f"] == 0.0
    report = check_method(CentreOnly)
    assert report.best_objective is not None and report.best_objective > 0.5  # the centre is far from the optimum


@pytest.mark.parametrize(("cls", "rule"), [(Greedy, "returned more than n candidates"),
                                           (Wild(1).method(), "asked 3 invalid candidate")])
def test_conformance_on_an_fmu_rechecks_the_rules_in_the_real_loop(cls: type[Method], rule: str,
                                                                   faulty_fmu: Path) -> None:
    from fmi_optimizer.testing import ConformanceError, check_method_on_fmu

    study = {"twin": {"fmu": str(faulty_fmu), "stop_time": 2.0, "output_interval": 0.1},
             "parameters": {"x": {}, "n": {}}, "kpis": {"z_end": "final(z)"},
             "objective": {"minimize": {"z_end": 1.0}}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(ConformanceError, match=rule):
            check_method_on_fmu(cls, study, Path("."), budget=12)


def test_an_invalid_proposal_counts_once_in_a_robust_study(faulty_fmu: Path, tmp_path: Path) -> None:
    """Under [uncertainty] a proposal expands into one run per scenario (+ nominal): still one method error."""
    d = _study_dict(faulty_fmu, "wild1", 30)
    d["uncertainty"] = {"samples": 4, "parameters": {"fault_time": {"dist": "uniform", "min": 0.2, "max": 1.0}}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = optimize(d, out=tmp_path, write_back=False, plugins=[_plugin(Wild(1).method())])
    assert out.result.counts()["total"] == 30  # 6 candidates x (4 scenarios + nominal)
    assert out.result.method_errors["invalid_candidates"] == 1  # the 4th proposal, not its 5 runs
