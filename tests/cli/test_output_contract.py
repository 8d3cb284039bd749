"""The host keeps its promises: one folder per study in ``run``, one writer per output folder, deliverables
written atomically inside their folder, ``resume`` on the FMU the study began with, nonsense refused with a
one-line error (and a JSON error object with ``--json``), and the small things a new user saw."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT
from test_cli import cli, write_study

from fmi_optimizer.errors import ExitCode

# -- 1. run DIR --out X: a folder per study, one closing table --------------------------------------


@pytest.mark.slow
def test_run_out_gives_each_study_its_own_folder_and_one_summary(faulty_fmu: Path, tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    for name in ("alpha", "beta"):
        shutil.copy(faulty_fmu, folder / f"{name}.fmu")
        write_study(folder, f"{name}.fmu", budget=4)
    out = tmp_path / "X"
    res = cli("run", str(folder), "--out", str(out), "--no-writeback")
    assert res.returncode == 0, res.stderr
    for name in ("alpha", "beta"):
        assert (out / name / "fmi_optimizer.db").exists() and (out / name / "report.html").exists()
    assert not (out / "fmi_optimizer.db").exists() and not (out / "report.html").exists()
    lines = res.stdout.strip().splitlines()
    header = [i for i, line in enumerate(lines) if line.split()[:2] == ["study", "method"]]
    assert len(header) == 1, res.stdout  # ONE table for the whole folder
    rows = lines[header[0] + 2:]
    assert [r.split()[0] for r in rows] == ["alpha", "beta"]
    assert all("random" in r and str(out / r.split()[0]) in r for r in rows)
    data = json.loads(cli("run", str(folder), "--out", str(tmp_path / "Y"), "--no-writeback", "--json").stdout)
    assert [s["study"] for s in data["summary"]] == ["alpha", "beta"]
    for row in data["summary"]:
        assert row["folder"] == str(tmp_path / "Y" / row["study"])
        assert row["as_delivered"] is not None and row["best"] is not None and row["verified"] == "no FMU written"


def test_study_folders_are_distinct_per_fmu_and_stable_for_the_same_fmu(tmp_path: Path) -> None:
    from fmi_optimizer.cli.dropfolder import FolderState, study_folder

    state = FolderState()
    a = study_folder(tmp_path, tmp_path / "X", "same", tmp_path / "a.fmu", state)
    b = study_folder(tmp_path, tmp_path / "X", "same", tmp_path / "b.fmu", state)
    assert a == tmp_path / "X" / "same" and b == tmp_path / "X" / "same-b"
    assert study_folder(tmp_path, tmp_path / "X", "same", tmp_path / "a.fmu", state) == a  # --watch: again
    assert study_folder(tmp_path, tmp_path / "X", "../up", tmp_path / "c.fmu", state) == tmp_path / "X" / "up"


# -- 2. one writer per output folder -----------------------------------------------------------------

HOLD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from fmi_optimizer.writeback.atomic import OutputLock
    lock = OutputLock(Path(sys.argv[1]), command="holder-for-test").acquire()
    print("held", flush=True)
    sys.stdin.readline()
    lock.release()
""")


def _holder(folder: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.slow
def test_a_second_run_into_a_held_folder_refuses_naming_the_holder(faulty_fmu: Path, tmp_path: Path) -> None:
    shutil.copy(faulty_fmu, tmp_path / "faulty.fmu")
    study = write_study(tmp_path, "faulty.fmu", budget=4)
    out = tmp_path / "out"
    holder = _holder(out)
    try:
        res = cli("optimize", str(study), "--out", str(out), "--no-writeback", "--json")
    finally:
        holder.communicate("\n", timeout=30)
    assert res.returncode == ExitCode.OUTPUT_UNWRITABLE, res.stderr
    err = json.loads(res.stdout)["error"]
    assert err["exit_code"] == 8 and f"pid {holder.pid}" in err["message"] and "holder-for-test" in err["message"]
    assert "--wait" in err["message"] and not (out / "fmi_optimizer.db").exists()


@pytest.mark.slow
def test_wait_takes_the_folder_when_the_holder_finishes(faulty_fmu: Path, tmp_path: Path) -> None:
    shutil.copy(faulty_fmu, tmp_path / "faulty.fmu")
    study = write_study(tmp_path, "faulty.fmu", budget=4)
    out = tmp_path / "out"
    holder = _holder(out)
    waiter = subprocess.Popen([sys.executable, "-m", "fmi_optimizer.cli.main", "optimize", str(study), "--out", str(out),
                               "--no-writeback", "--wait", "600"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    assert waiter.stderr is not None
    for line in waiter.stderr:  # the waiter says it waits (and on whom) before the holder lets go
        if "waiting up to 600 s" in line:
            assert f"pid {holder.pid}" in line
            break
    holder.communicate("\n", timeout=30)
    _, err = waiter.communicate(timeout=600)
    assert waiter.returncode == 0, err
    assert (out / "report.html").exists() and not (out / ".fmi_optimizer.lock").exists()


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    from fmi_optimizer.writeback.atomic import LOCK_NAME, OutputLock

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename, "command": "x"}))
    lock = OutputLock(tmp_path).acquire()
    try:
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    finally:
        lock.release()
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_waiting_lock_survives_the_holder_removing_its_empty_folder(tmp_path: Path) -> None:
    """A study refused before it wrote anything removes the folder it created when it lets go of the lock; a
    process waiting for that lock must take it in a new folder, not fail with 'No such file or directory'."""
    from fmi_optimizer.writeback.atomic import LOCK_NAME, OutputLock

    folder = tmp_path / "results" / "study"
    waiting = OutputLock(folder)
    folder.mkdir(parents=True)  # the waiter has seen the folder; its holder now lets go and removes it
    folder.rmdir()
    assert waiting._try()  # one poll of the wait loop
    try:
        assert json.loads((folder / LOCK_NAME).read_text())["pid"] == os.getpid()
    finally:
        os.close(waiting._fd)
        (folder / LOCK_NAME).unlink()


@pytest.mark.slow
def test_a_second_study_into_the_same_folder_keeps_the_first_ones_files(faulty_fmu: Path, tmp_path: Path) -> None:
    shutil.copy(faulty_fmu, tmp_path / "faulty.fmu")
    study = write_study(tmp_path, "faulty.fmu", budget=4)
    out = tmp_path / "out"
    first = cli("optimize", str(study), "--out", str(out), "--json")
    assert first.returncode == 0, first.stderr
    files = {k: v for k, v in json.loads(first.stdout)["outputs"].items() if v and k != "db"}
    assert set(files) == {"fmu", "ssv", "json", "report"}
    before = {k: Path(v).read_bytes() for k, v in files.items()}
    second = cli("optimize", str(study), "--out", str(out), "--json", "--seed", "5")
    assert second.returncode == 0, second.stderr
    outputs = json.loads(second.stdout)["outputs"]
    assert outputs["fmu"] == str(out / "faulty.optimized.2.fmu") and outputs["report"] == str(out / "report.2.html")
    assert {k: Path(v).read_bytes() for k, v in files.items()} == before  # nothing the first handed out changed
    again = cli("report", str(out / "fmi_optimizer.db"))  # rewriting the latest report writes its own file
    assert again.returncode == 0 and again.stdout.strip() == str(out / "report.2.html")
    assert Path(files["report"]).read_bytes() == before["report"]


# -- 3. atomic deliverables inside the output folder, names sanitized --------------------------------


@pytest.mark.slow
def test_report_replaces_a_planted_symlink_instead_of_writing_through_it(faulty_fmu: Path, tmp_path: Path) -> None:
    shutil.copy(faulty_fmu, tmp_path / "faulty.fmu")
    study = write_study(tmp_path, "faulty.fmu", budget=4)
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (out / "report.html").symlink_to(victim)
    res = cli("optimize", str(study), "--out", str(out), "--no-writeback", "--json")
    assert res.returncode == 0, res.stderr
    assert victim.read_text() == "precious"  # an existing report.html is not the study's to overwrite: .2
    report = Path(json.loads(res.stdout)["outputs"]["report"])
    assert report == out / "report.2.html" and not report.is_symlink()
    report.unlink()
    report.symlink_to(victim)  # planted where the study's own report goes: `report DB` rewrites it
    again = cli("report", str(out / "fmi_optimizer.db"))
    assert again.returncode == 0, again.stderr
    assert victim.read_text() == "precious"
    assert not report.is_symlink() and "fmi_optimizer report" in report.read_text()


@pytest.mark.parametrize("name", ["../../escape", "{tmp}/abs-escape", "..", "a/../../b"])
@pytest.mark.slow
def test_a_study_name_cannot_write_outside_results(faulty_fmu: Path, tmp_path: Path, name: str) -> None:
    name = name.format(tmp=tmp_path)  # an absolute path, inside this test's folder
    base = tmp_path / "deep" / "proj"
    base.mkdir(parents=True)
    shutil.copy(faulty_fmu, base / "faulty.fmu")
    study = write_study(base, "faulty.fmu", budget=3, extra=f'name = "{name}"\n')
    text = study.read_text()
    study.write_text(f'name = "{name}"\n' + text.replace(f'name = "{name}"\n', ""))  # a top-level key
    res = cli("optimize", str(study), "--no-writeback", "--json")
    assert res.returncode == 0, res.stderr
    report = Path(json.loads(res.stdout)["outputs"]["report"]).resolve()
    assert report.parent.parent == (base / "results").resolve()
    assert not (tmp_path / "escape").exists() and not (tmp_path / "abs-escape").exists()


def test_safe_name_is_one_component_inside_its_folder() -> None:
    from fmi_optimizer.writeback.atomic import safe_name

    for raw in ("../../x", "/etc/passwd", "..", ".", "", "a\\b", "a/./b", "..hidden", "x\x00y"):
        name = safe_name(raw)
        assert name and "/" not in name and "\\" not in name and not name.startswith(".") and ".." not in name
        assert (Path("/r") / name).resolve().parent == Path("/r")
    assert safe_name("heat_sink") == "heat_sink" and safe_name("pid v2.1") == "pid_v2.1"


# -- 4. resume: the same FMU, from anywhere ----------------------------------------------------------


@pytest.mark.slow
def test_resume_refuses_a_changed_fmu_naming_both_hashes(faulty_fmu: Path, tmp_path: Path) -> None:
    from fmi_optimizer.fmu.archive import content_hash

    fmu = tmp_path / "faulty.fmu"
    shutil.copy(faulty_fmu, fmu)
    study = write_study(tmp_path, "faulty.fmu", budget=3)
    out = tmp_path / "out"
    assert cli("optimize", str(study), "--out", str(out), "--no-writeback").returncode == 0
    then = content_hash(fmu)
    with zipfile.ZipFile(fmu, "a") as zf:  # the same model, other bytes: a re-export
        zf.writestr("documentation/changed.txt", "changed")
    now = content_hash(fmu)
    res = cli("resume", str(out / "fmi_optimizer.db"), "--no-writeback", "--json")
    assert res.returncode == ExitCode.FMU_INVALID, res.stderr
    message = json.loads(res.stdout)["error"]["message"]
    assert then in message and now in message and "Traceback" not in res.stderr


@pytest.mark.slow
def test_resume_from_another_directory_finds_the_same_fmu(faulty_fmu: Path, tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    (proj / "sub").mkdir(parents=True)
    shutil.copy(faulty_fmu, proj / "sub" / "faulty.fmu")
    write_study(proj / "sub", "faulty.fmu", budget=3)
    first = cli("optimize", "sub/faulty.toml", "--no-writeback", "--json", cwd=proj)  # relative paths
    assert first.returncode == 0, first.stderr
    db = (proj / json.loads(first.stdout)["outputs"]["db"]).resolve()
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "sub").mkdir(parents=True)
    (elsewhere / "sub" / "faulty.fmu").write_text("another file that must not be picked")
    res = cli("resume", str(db), "--no-writeback", "--json", cwd=elsewhere)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["study_id"] == json.loads(first.stdout)["study_id"]


# -- 5. nonsense is refused: one line naming the key, exit 5 (study) or 2 (flag), JSON error object ---

BASE = """
[twin]
fmu = "faulty.fmu"
stop_time = 2.0
output_interval = 0.1
{twin}
[parameters]
x = {x}
n = {{}}
[kpis]
z_end = "final(z)"
y_max = "max(y)"
[objective]
{objective}
[method]
name = "random"
budget = {{ evaluations = 3 }}
[evaluation]
workers = 1
{evaluation}
"""


@pytest.mark.parametrize("case, key, args, code", [
    ("start_after_stop", "start_time", [], ExitCode.STUDY_INVALID),
    ("tiny_interval", "output_interval", [], ExitCode.STUDY_INVALID),
    ("unknown_solver", "solver", [], ExitCode.STUDY_INVALID),
    ("min_string", "min", [], ExitCode.STUDY_INVALID),
    ("min_abc", "min", [], ExitCode.STUDY_INVALID),
    ("min_list", "min", [], ExitCode.STUDY_INVALID),
    ("items_on_real", "items", [], ExitCode.STUDY_INVALID),
    ("min_and_max_same_kpi", "z_end", [], ExitCode.STUDY_INVALID),
    ("bogus_cluster", "cluster", [], ExitCode.STUDY_INVALID),
    ("missing_fmu", "s.toml: [twin] fmu:", [], ExitCode.FMU_INVALID),
    ("budget_zero", "--budget", ["--budget", "0"], ExitCode.USAGE),
    ("budget_negative", "--budget", ["--budget", "-3"], ExitCode.USAGE),
    ("workers_negative", "--workers", ["--workers", "-1"], ExitCode.USAGE),
])
@pytest.mark.slow
def test_nonsense_is_refused_with_one_line_and_a_json_error(faulty_fmu: Path, tmp_path: Path, case: str, key: str,
                                                           args: list[str], code: int) -> None:
    shutil.copy(faulty_fmu, tmp_path / "faulty.fmu")
    parts = {"twin": "", "x": "{}", "objective": "minimize = { z_end = 1.0 }", "evaluation": ""}
    parts.update({
        "start_after_stop": {"twin": "start_time = 3.0"},
        "tiny_interval": {"twin": "", "x": "{}"},
        "unknown_solver": {"twin": 'solver = "RK45"'},
        "min_string": {"x": '{ min = "0.6", max = 2.0 }'},
        "min_abc": {"x": '{ min = "abc", max = 2.0 }'},
        "min_list": {"x": "{ min = [0.6], max = 2.0 }"},
        "items_on_real": {"x": '{ items = ["a", "b"] }'},
        "min_and_max_same_kpi": {"objective": "minimize = { z_end = 1.0 }\nmaximize = { z_end = 1.0 }"},
        "bogus_cluster": {"evaluation": 'cluster = "bogus://x"'},
    }.get(case, {}))
    text = BASE.format(**parts)
    if case == "tiny_interval":
        text = text.replace("output_interval = 0.1", "output_interval = 1e-300")
    if case == "missing_fmu":
        text = text.replace('fmu = "faulty.fmu"', 'fmu = "faulty_v2.fmu"')
    study = tmp_path / "s.toml"
    study.write_text(text)
    for as_json in (False, True):
        res = cli("optimize", str(study), "--no-writeback", *args, *(["--json"] if as_json else []))
        assert res.returncode == code, (case, res.returncode, res.stderr)
        assert "Traceback" not in res.stderr
        lines = res.stderr.strip().splitlines()
        assert lines and lines[-1].startswith("error: ") and key in lines[-1], res.stderr
        if as_json:
            err = json.loads(res.stdout)["error"]
            assert err["exit_code"] == code and key in err["message"] and err["type"]
        else:
            assert res.stdout == ""


@pytest.mark.slow
def test_every_error_path_gives_a_json_error_object(tmp_path: Path) -> None:
    cases = [(["optimize", str(tmp_path / "missing.toml"), "--json"], ExitCode.STUDY_INVALID),
             (["report", str(tmp_path / "missing.db"), "--json"], ExitCode.STUDY_INVALID),
             (["optimize", "--json"], ExitCode.USAGE),  # argparse: the study is missing
             (["nosuchcommand", "--json"], ExitCode.USAGE),
             (["run", str(tmp_path), "--json"], ExitCode.STUDY_INVALID)]
    for args, code in cases:
        res = cli(*args)
        assert res.returncode == code, (args, res.stderr)
        err = json.loads(res.stdout)["error"]
        assert err["exit_code"] == code and err["exit_name"] == ExitCode(code).name and err["message"]


@pytest.mark.slow
def test_an_unedited_template_lists_all_its_problems_at_once(sample_fmu, tmp_path: Path) -> None:
    fmu = tmp_path / "hs.fmu"
    shutil.copy(sample_fmu("heat_sink"), fmu)
    assert cli("init", str(fmu)).returncode == 0
    res = cli("optimize", str(tmp_path / "hs.toml"))
    assert res.returncode == ExitCode.STUDY_INVALID
    line = res.stderr.strip().splitlines()[-1]
    assert "[parameters]" in line and "[kpis]" in line and "[objective]" in line


# -- 6. small things ---------------------------------------------------------------------------------


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_is_ended_before_the_next_message() -> None:
    from fmi_optimizer.cli.terminal import ProgressBar
    from fmi_optimizer.records import Candidate, Evaluation
    from fmi_optimizer.study.config import Budget
    from fmi_optimizer.study.loop import BudgetTracker

    stream = _Tty()
    bar = ProgressBar("s", stream=stream, min_interval=0.0)
    tracker = BudgetTracker(Budget(evaluations=10))
    ev = Evaluation(Candidate({"x": 1.0}, 0, "t"), "ok", {}, 1.0)
    bar(tracker, ev)
    said: list[str] = []
    bar.interrupting(lambda m: said.append(stream.getvalue()) or stream.write(m + "\n"))("a warning")
    assert said[0].endswith("\n")  # the bar's line was ended before the message was written
    assert stream.getvalue().endswith("a warning\n")
    bar.close()
    assert not stream.getvalue().endswith("\n\n")


def test_compare_report_has_no_none_and_no_all_nan_warnings(tmp_path: Path) -> None:
    import math

    from fmi_optimizer.cli.compare import _write_compare_report

    inf = math.inf
    runs = {"random": [[inf, inf, 2.0], [inf, inf, inf]], "ga": [[inf, inf]]}
    rows = [{"method": "random", "repeats": 2, "best_median": 2.0, "best_iqr": 0.0, "evals_to_target_median": None,
             "reached": 1, "wall_seconds_median": None, "failures": 0},
            {"method": "ga", "repeats": 1, "best_median": None, "best_iqr": None, "evals_to_target_median": None,
             "reached": 0, "wall_seconds_median": 1.0, "failures": 0}]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _write_compare_report(tmp_path / "c.html", "s", runs, rows, 2.0, "objective")
    assert "None" not in (tmp_path / "c.html").read_text()


@pytest.mark.slow
def test_compare_states_a_maximized_kpi_and_its_target_in_its_own_sense(faulty_fmu: Path, tmp_path: Path) -> None:
    """compare once printed "best median -3.58, target -3.58" for a maximized flow and counted --target 3.5
    as reached by every run (it compared the target with -flow)."""
    shutil.copy(faulty_fmu, tmp_path / "faulty.fmu")
    study = tmp_path / "s.toml"
    study.write_text(BASE.format(twin="", x="{}", objective='maximize = "y_max"', evaluation=""))
    res = cli("compare", str(study), "--methods", "random", "--repeats", "2", "--budget", "4", "--target", "1e6",
              "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    row = data["methods"][0]
    assert data["objective"] == "y_max" and data["target"] == 1e6 and row["reached"] == 0
    assert row["best_median"] > 0 and all(v > 0 for c in data["curves"]["random"] for v in c)
    # no run feasible: no best, not +inf (the best a maximized KPI could have); the JSON file stays valid JSON
    study.write_text(BASE.format(twin="", x="{}", objective='maximize = "y_max"', evaluation="")
                     + '[constraints]\ny_max = "<= -1.0"\n')
    res = cli("compare", str(study), "--methods", "random", "--repeats", "2", "--budget", "3", "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["methods"][0]["best_median"] is None and data["target"] is None
    assert all(v is None for c in data["curves"]["random"] for v in c)
    saved = Path(data["report"]).with_name("compare.json").read_text()
    assert "Infinity" not in saved and "NaN" not in saved


def test_report_shows_enumeration_names_not_codes() -> None:
    from fmi_optimizer.report.html import _best_section

    problem = {"space": [{"kind": "categorical", "name": "material", "items": [1, 2], "labels": ["Al6063", "Cu"]}],
               "objective": [{"kpi": "cost", "sense": "minimize", "weight": 1.0}]}
    result = {"best": {"values": {"material": 2}, "kpis": {"cost": 1.0}, "objective": 1.0, "feasible": True}}
    text = "".join(_best_section(result, problem))
    assert "<td class=\"l\">material</td><td>Cu</td>" in text and "<td>2</td>" not in text


def test_pareto_section_has_no_stray_json() -> None:
    from fmi_optimizer.records import Candidate, Evaluation
    from fmi_optimizer.study.config import load_study
    from fmi_optimizer.uncertainty.sections import pareto_section

    config = load_study({"twin": {"fmu": "t.fmu"}, "parameters": {"x": {}}, "kpis": {"a": "final(a)", "b": "final(b)"},
                         "objective": {"minimize": ["a", "b"], "pareto": True}}, Path("/tmp"))
    points = [Evaluation(Candidate({"x": float(i)}, 0, "t"), "ok", {"a": float(i), "b": float(9 - i)}, 0.0,
                         (float(i), float(9 - i)), ()) for i in range(9)]
    text = "".join(pareto_section(config, points))
    assert "Pareto front (9 non-dominated" in text and "<pre>" not in text and "front_size" not in text


def test_sample_twins_readme_matches_the_studies() -> None:
    root = ROOT / "fmus"
    text = (root / "README.md").read_text()
    assert (root / "servo_pid_fmi3.toml").exists() and "no study" not in text
    assert "43 binary variables" in text and "48 one-hot bits" not in text
