"""The command line as a user runs it: tables, JSON contracts, exit codes, drop folder, compare."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import faulty_study

from fmi_optimizer.errors import ExitCode


def cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fmi_optimizer.cli.main", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env={**os.environ})


def write_study(folder: Path, fmu_name: str, method: str = "random", budget: int = 6, extra: str = "") -> Path:
    return faulty_study(folder / (Path(fmu_name).stem + ".toml"), fmu_name, method=method, budget=budget, seed=2,
                        workers=2, constrained=True, extra=extra)


@pytest.mark.slow
def test_inspect_table_and_json(sample_fmu) -> None:
    fmu = sample_fmu("heat_sink")
    out = cli("inspect", str(fmu))
    assert out.returncode == 0, out.stderr
    assert "Parameters (" in out.stdout and "material" in out.stdout and "CuC110=4" in out.stdout
    data = json.loads(cli("inspect", str(fmu), "--json").stdout)
    assert set(data) >= {"fmi_version", "model_name", "model_identifier", "interfaces", "default_experiment",
                         "parameters", "outputs", "inputs"}
    n_fins = next(p for p in data["parameters"] if p["name"] == "n_fins")
    assert n_fins["type"] == "Integer" and isinstance(n_fins["min"], float) and isinstance(n_fins["start"], int)


@pytest.mark.slow
def test_optimize_json_contract_and_report(faulty_fmu: Path, tmp_path: Path) -> None:
    shutil.copy(faulty_fmu, tmp_path / "faulty.fmu")
    study = write_study(tmp_path, "faulty.fmu", budget=8)
    out = cli("optimize", str(study), "--json", "--no-writeback")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert set(data) >= {"study", "method", "best", "evaluations", "outputs", "verification", "trace"}
    assert set(data["best"]) == {"values", "kpis", "objective", "feasible"}
    assert set(data["evaluations"]) >= {"total", "ok", "failed", "crashed", "timeout"}
    assert set(data["outputs"]) == {"fmu", "ssv", "json", "report", "db"}
    assert data["evaluations"]["total"] == 8 and len(data["trace"]) == 8
    assert min(t for t in data["trace"] if t is not None) == data["best"]["objective"]
    report = Path(data["outputs"]["report"]).read_text()
    assert "Convergence" in report and "data:image/png;base64" in report
    assert "evals" in out.stderr  # progress goes to stderr, never stdout


@pytest.mark.parametrize("case, code, message", [
    ("unknown_method", ExitCode.PLUGIN_ERROR, "unknown method 'nope'; registered: "),
    ("unfit_method", ExitCode.PLUGIN_ERROR, "method 'qio' cannot run this study: dimension 'x' is continuous"),
    ("unwritable", ExitCode.OUTPUT_UNWRITABLE, "output folder is not writable"),
    ("bad_value", ExitCode.VALUE_INVALID, r"'x': 9 is outside its allowed range \[-5, 5\]"),
    ("missing_study", ExitCode.STUDY_INVALID, "no such study file"),
    ("output_parameter", ExitCode.STUDY_INVALID, r"faulty\.toml: parameter 'z' has causality 'output'"),
])
@pytest.mark.slow
def test_bad_input_exit_codes(faulty_fmu: Path, tmp_path: Path, case: str, code: int, message: str) -> None:
    shutil.copy(faulty_fmu, tmp_path / "faulty.fmu")
    extra = {"bad_value": '[fixed]\nx = 9\n',
             "output_parameter": "[parameters.z]\nmin = 0.0\nmax = 1.0\n"}.get(case, "")  # z is an output
    study = write_study(tmp_path, "faulty.fmu", extra=extra)
    args = ["optimize", str(study), "--no-writeback"]
    if case == "unknown_method":
        args += ["--method", "nope"]
    elif case == "unfit_method":
        args += ["--method", "qio"]
    elif case == "unwritable":
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        args += ["--out", str(locked / "sub")]
        if os.geteuid() == 0:  # root writes anywhere: use a path below a regular file instead
            (tmp_path / "afile").write_text("x")
            args[-1] = str(tmp_path / "afile" / "sub")
    elif case == "missing_study":
        args[1] = str(tmp_path / "nope.toml")
    out = cli(*args)
    assert out.returncode == code, (out.returncode, out.stderr)
    assert len(out.stderr.strip().splitlines()) == 1 or "error:" in out.stderr.splitlines()[-1]
    assert "Traceback" not in out.stderr
    assert message.replace("\\", "") in out.stderr or __import__("re").search(message, out.stderr), out.stderr
    if case == "output_parameter":  # refused before any simulation: no study database, no empty folder left
        assert not list(tmp_path.rglob("*.db")), list(tmp_path.rglob("*"))
        assert not (tmp_path / "results" / "faulty").exists()


@pytest.mark.slow
def test_init_template_lists_every_tunable_parameter(sample_fmu, tmp_path: Path) -> None:
    fmu = tmp_path / "hs.fmu"
    shutil.copy(sample_fmu("heat_sink"), fmu)
    out = cli("init", str(fmu))
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "hs.toml").read_text()
    for name in ("n_fins", "fin_height", "material", "duct", "T_junction"):
        assert name in text
    again = cli("init", str(fmu))
    assert again.returncode == ExitCode.STUDY_INVALID and "already exists" in again.stderr


@pytest.mark.slow
def test_run_folder_optimizes_pairs_skips_broken_and_templates_the_rest(faulty_fmu: Path, tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    shutil.copy(faulty_fmu, folder / "good.fmu")
    write_study(folder, "good.fmu")
    (folder / "broken.fmu").write_text("not a zip")
    write_study(folder, "broken.fmu")
    shutil.copy(faulty_fmu, folder / "nostudy.fmu")
    out = cli("run", str(folder), "--json", "--no-writeback")
    assert out.returncode == ExitCode.STUDY_FAILED  # one study was skipped
    assert "broken.fmu: skipped:" in out.stderr and "not a zip archive" in out.stderr
    assert "nostudy.fmu: no study file; wrote the template nostudy.toml" in out.stderr
    assert (folder / "results" / "good" / "fmi_optimizer.db").exists()
    assert (folder / "nostudy.toml").exists()
    data = json.loads(out.stdout)  # one JSON object for the whole folder
    assert [s["study"] for s in data["studies"]] == ["good"]
    skipped = data["skipped"][0]  # as the studies that ran: an absolute path, the exit code a number
    assert skipped["fmu"] == str((folder / "broken.fmu").resolve()) and skipped["exit_code"] == 3
    assert set(data["summary"][0]) == set(data["summary"][1]), "every row of the closing table has every field"
    assert data["templates"][0].endswith("nostudy.toml")


@pytest.mark.slow
def test_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    out = cli("run", str(tmp_path))
    assert out.returncode == ExitCode.STUDY_INVALID and "holds no .fmu file" in out.stderr


@pytest.mark.slow
class _Lines:
    """The lines a running process writes to one of its pipes, collected by a thread; a test waits for a line
    instead of sleeping (the deadline only ends a test whose product hangs; it is generous because a study on
    shared, loaded cores can take minutes, and pytest's own 600 s timeout still bounds the test)."""

    def __init__(self, pipe: Any):
        self.lines: list[str] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, args=(pipe,), daemon=True).start()

    def _read(self, pipe: Any) -> None:
        for line in pipe:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()

    def wait_for(self, text: str, deadline_s: float = 400.0) -> str:
        with self._cond:
            ok = self._cond.wait_for(lambda: any(text in ln for ln in self.lines), timeout=deadline_s)
            assert ok, f"no line with {text!r} within {deadline_s} s; got: {''.join(self.lines)}"
            return next(ln for ln in self.lines if text in ln)


def _watcher(folder: Path) -> tuple[subprocess.Popen[str], _Lines, _Lines]:
    """``run FOLDER --watch --json`` in a child, with its stdout and stderr lines collected."""
    proc = subprocess.Popen([sys.executable, "-m", "fmi_optimizer.cli.main", "run", str(folder), "--watch",
                             "--interval", "0.3", "--no-writeback", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    return proc, _Lines(proc.stdout), _Lines(proc.stderr)


def test_watch_picks_up_a_dropped_fmu(faulty_fmu: Path, tmp_path: Path) -> None:
    folder = tmp_path / "watch"
    folder.mkdir()
    # Ctrl-C is the way out of --watch, so the child must see SIGINT whatever launched the tests: a shell
    # without job control starts background commands (`cmd &`) with SIGINT ignored, and children inherit that
    proc, out, err = _watcher(folder)
    try:
        err.wait_for("watching")
        write_study(folder, "late.fmu")
        partial = folder / "late.fmu"
        data = faulty_fmu.read_bytes()
        partial.write_bytes(data[: len(data) // 3])  # a half-copied FMU must not be read
        err.wait_for("late.fmu: waiting until its size stays the same")
        # the next scan finds the size stable but the archive incomplete, and still does not take it
        err.wait_for("late.fmu: its size is stable but it is not a complete zip archive")
        assert not (folder / "results").exists()
        partial.write_bytes(data)
        done = json.loads(out.wait_for('"study"'))
        assert done["study"] == "late", done
        assert (folder / "results" / "late" / "report.html").exists()
        assert _finished(folder / "results" / "late" / "fmi_optimizer.db")
    finally:
        proc.send_signal(2)
        proc.wait(timeout=60)
    assert "1 studies done, 0 skipped" in "".join(err.lines), "".join(err.lines)
    # a restarted watcher leaves the finished study alone (it once optimized every pair in the folder again,
    # writing late.optimized.2.fmu and report.2.html); an edited study file is a new study
    proc, out, err = _watcher(folder)
    try:
        err.wait_for("late.fmu: already optimized (study 1 in ")
        study = folder / "late.toml"
        edited = folder / "late.toml.tmp"  # written whole, then renamed: the watcher never sees half of it
        edited.write_text(study.read_text().replace("evaluations = 6", "evaluations = 7"))
        edited.replace(study)
        assert json.loads(out.wait_for('"study"'))["evaluations"]["total"] == 7
    finally:
        proc.send_signal(2)
        proc.wait(timeout=60)
    import sqlite3

    with sqlite3.connect(folder / "results" / "late" / "fmi_optimizer.db") as con:
        assert con.execute("SELECT COUNT(*) FROM studies").fetchone()[0] == 2


def _finished(db: Path) -> bool:
    """True once the study in ``db`` has stored its final status (set after the report is written)."""
    import sqlite3

    if not db.exists():
        return False
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            row = con.execute("SELECT status, result FROM studies ORDER BY id DESC LIMIT 1").fetchone()
    except sqlite3.OperationalError:
        return False
    return bool(row) and row[0] == "finished" and bool(row[1]) and bool(json.loads(row[1])["outputs"]["report"])


@pytest.mark.slow
def test_compare_table_and_plot(faulty_fmu: Path, tmp_path: Path) -> None:
    shutil.copy(faulty_fmu, tmp_path / "faulty.fmu")
    study = write_study(tmp_path, "faulty.fmu", budget=6)
    out = cli("compare", str(study), "--methods", "random,ga", "--repeats", "2", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [m["method"] for m in data["methods"]] == ["random", "ga"]
    assert all(m["repeats"] == 2 for m in data["methods"])
    assert "data:image/png;base64" in Path(data["report"]).read_text()


@pytest.mark.slow
def test_warnings_and_cache_hits_are_told_in_the_clis_own_words(faulty_fmu: Path, tmp_path: Path) -> None:
    """A plugin's failing observer warned in Python's form ('/.../loop.py:188: RuntimeWarning: ...' and the
    source line); the CLI says 'warning: ...' like its other messages. A re-run into the same folder says that
    its cache hits were free and why it went further than the first run."""
    shutil.copy(faulty_fmu, tmp_path / "faulty.fmu")
    study = write_study(tmp_path, "faulty.fmu", budget=4)
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "noisy.py").write_text("from fmi_optimizer import hookimpl\n\n\n@hookimpl\n"
                                      "def fmio_evaluation_finished(study, evaluation):\n"
                                      "    raise ValueError('observer bug')\n")
    first = cli("optimize", str(study), "--no-writeback", "--plugins-dir", str(plugins))
    assert first.returncode == 0, first.stderr
    lines = [line for line in first.stderr.splitlines() if "observer bug" in line]
    assert len(lines) == 1 and lines[0].startswith("warning: observer hook fmio_evaluation_finished")
    assert "RuntimeWarning" not in first.stderr and "self._observe" not in first.stderr
    assert "cache hits" not in first.stdout
    again = cli("optimize", str(study), "--no-writeback")
    assert again.returncode == 0, again.stderr
    assert "4 evaluations were cache hits, not simulated and not charged to the budget" in again.stdout
