"""The study loop on a real FMU: budgets, cache, failures, storage, SIGKILL + resume, concurrent readers."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import faulty_study

from fmi_optimizer import Candidate, Capabilities, Method, optimize
from fmi_optimizer.errors import StudyFailedError
from fmi_optimizer.hookspecs import hookimpl


def study_dict(fmu: Path, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "twin": {"fmu": str(fmu), "stop_time": 2.0, "output_interval": 0.05},
        "parameters": {"x": {}, "n": {}},
        "kpis": {"z_end": "final(z)", "y_peak": "max(y)"},
        "objective": {"minimize": {"z_end": 1.0}},
        "method": {"name": "random", "budget": {"evaluations": 16}, "seed": 3},
        "evaluation": {"workers": 2, "timeout": 20.0},
    }
    d.update(extra)
    return d


class Repeater(Method):
    """Asks the same two candidates again and again (to prove the cache)."""

    name = "repeater"
    summary = "test method that repeats itself"
    capabilities = Capabilities()

    def ask(self, n: int) -> list[Candidate]:
        return [Candidate({"x": 1.0, "n": 4}), Candidate({"x": 2.0, "n": 5})][:n]


class RepeaterPlugin:
    @staticmethod
    @hookimpl
    def fmio_register_methods(registry: Any) -> None:
        registry.add(Repeater)


def test_optimize_from_python(faulty_fmu: Path, tmp_path: Path) -> None:
    out = optimize(study_dict(faulty_fmu), out=tmp_path, write_back=False)
    r = out.result
    assert r.counts()["total"] == 16 and r.counts()["ok"] == 16
    assert r.best is not None and r.best.feasible
    best_z = min(e.kpis["z_end"] for e in r.evaluations)
    assert r.best.kpis["z_end"] == best_z
    data = out.to_json()
    assert len(data["trace"]) == 16 and data["evaluations"]["total"] == 16
    rows = sqlite3.connect(out.db).execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
    assert rows == 16
    assert Path(data["outputs"]["report"]).read_text().startswith("<!doctype html>")


@pytest.mark.slow
def test_same_candidate_is_never_simulated_twice(faulty_fmu: Path, tmp_path: Path) -> None:
    d = study_dict(faulty_fmu, method={"name": "repeater", "budget": {"evaluations": 2}, "seed": 0})
    d["method"]["budget"] = {"evaluations": 2}
    out = optimize(d, out=tmp_path, write_back=False, plugins=[RepeaterPlugin()])
    assert out.result.counts()["total"] == 2
    # a second study in the same database reuses both simulations from the cache
    out2 = optimize(d, out=tmp_path, write_back=False, plugins=[RepeaterPlugin()], budget=2)
    sims = [e for e in out2.result.evaluations if not e.cached]
    assert sims == [] or all(e.cached for e in out2.result.evaluations)


@pytest.mark.slow
def test_a_rerun_replays_the_earlier_study_from_the_cache_and_goes_on(faulty_fmu: Path, tmp_path: Path) -> None:
    """Running the same deterministic study again into the same results: its first 30 candidates are
    cache hits (free), then it simulates 30 new ones. More than 25 batches of cache hits in a row
    once stopped such a re-run with nothing new and a worse best than the first run."""
    d = study_dict(faulty_fmu, method={"name": "random", "budget": {"evaluations": 30}, "seed": 3},
                   evaluation={"workers": 1, "timeout": 20.0})
    first = optimize(d, out=tmp_path, write_back=False).result
    again = optimize(d, out=tmp_path, write_back=False).result
    assert again.counts()["cached"] == 30 and again.counts()["total"] == 30, again.stopped_because
    assert [e.candidate.values for e in again.evaluations[:30]] == [e.candidate.values for e in first.evaluations]
    seen_first = {tuple(sorted(e.candidate.values.items())) for e in first.evaluations}
    new = [e for e in again.evaluations if not e.cached]
    assert all(tuple(sorted(e.candidate.values.items())) not in seen_first for e in new)  # it went on


class _LastFirst:
    """A real local pool whose replies come back in reverse order, batch by batch: the order two workers
    can finish in, made certain instead of left to timing."""

    def __init__(self, problem: Any, options: dict[str, Any]):
        from fmi_optimizer.engine.pool import EngineOptions, LocalPool

        self.pool = LocalPool(problem.twin.fmu.runnable, EngineOptions(workers=1, strategy=options["instances"]))

    def run(self, requests: Any) -> Any:
        yield from reversed(list(self.pool.run(requests)))

    def close(self) -> None:
        self.pool.close()


class LastFirstPlugin:
    @staticmethod
    @hookimpl
    def fmio_make_evaluator(problem: Any, options: dict[str, Any]) -> Any:
        return _LastFirst(problem, options)


def test_the_record_keeps_proposal_order_whichever_run_finishes_first(faulty_fmu: Path, tmp_path: Path) -> None:
    """Evaluations finishing in another order than proposed are stored, reported and returned in proposal
    order (``seq``), so the same study and seed give the same record; ``id`` stays the order of storing."""
    d = study_dict(faulty_fmu, method={"name": "random", "budget": {"evaluations": 8}, "seed": 3},
                   evaluation={"workers": 4, "timeout": 20.0})  # batches of 4 (one process runs them here)
    plain = optimize(d, out=tmp_path / "plain", write_back=False, workers=1).result
    out = optimize(d, out=tmp_path / "reversed", write_back=False, plugins=[LastFirstPlugin()])
    got = out.result.evaluations
    assert [e.values for e in got] == [e.values for e in plain.evaluations]
    assert [e.seq for e in got] == list(range(1, 9))
    assert [e.id for e in got] == [4, 3, 2, 1, 8, 7, 6, 5]  # stored as they came back
    stored = sqlite3.connect(out.db).execute("SELECT seq, values_json FROM evaluations ORDER BY id").fetchall()
    assert [s for s, _ in stored] == [4, 3, 2, 1, 8, 7, 6, 5]
    from fmi_optimizer.study.storage import Store

    assert [e.values for e in Store(out.db).evaluations(out.result.study_id)] == [e.values for e in got]
    report = Path(out.to_json()["outputs"]["report"]).read_text()
    table = report[report.index("All evaluations"):]
    assert [int(n) for n in re.findall(r"<tr><td class=\"l\">(\d+)</td>", table)] == list(range(1, 9))


def test_a_cache_hit_is_scored_by_the_study_that_reads_it(faulty_fmu: Path, tmp_path: Path) -> None:
    """The cache shares simulations (and so KPIs) between studies; objective and constraints are each study's
    own. A hit once carried the earlier study's: after minimizing z_end, a study maximizing it into the same
    folder read every replayed run's objective as +z_end (the opposite sense) and no constraint at all."""
    first = optimize(study_dict(faulty_fmu), out=tmp_path, write_back=False).result
    d = study_dict(faulty_fmu, objective={"maximize": {"z_end": 2.0}}, constraints={"y_peak": "<= 0.5"})
    again = optimize(d, out=tmp_path, write_back=False).result
    hits = [e for e in again.evaluations if e.cached]
    assert len(hits) == len(first.evaluations) == 16
    for e in hits:
        assert e.objective == -2.0 * e.kpis["z_end"] and e.constraints == (e.kpis["y_peak"] - 0.5,)
    assert again.best is not None and again.best.feasible and again.best.kpis["y_peak"] <= 0.5
    # the same runs under another KPI name are not hits (the key holds the expressions): simulated again
    renamed = study_dict(faulty_fmu, kpis={"zfinal": "final(z)", "y_peak": "max(y)"},
                         objective={"minimize": "zfinal"})
    third = optimize(renamed, out=tmp_path, write_back=False).result
    assert third.counts()["cached"] == 0 and all("zfinal" in e.kpis for e in third.evaluations)


@pytest.mark.slow
def test_fmu_crashing_on_every_candidate_ends_with_a_clear_error(faulty_fmu: Path, tmp_path: Path) -> None:
    d = study_dict(faulty_fmu, fixed={"fault": "abort"})
    d["method"]["budget"] = {"evaluations": 4}
    with pytest.raises(StudyFailedError, match="none of 4 evaluations succeeded .*SIGABRT"):
        optimize(d, out=tmp_path, write_back=False)
    rows = sqlite3.connect(tmp_path / "fmi_optimizer.db").execute(
        "SELECT status FROM evaluations").fetchall()
    assert [r[0] for r in rows] == ["crashed"] * 4  # every failure is stored too


def test_a_target_is_stated_like_the_objective(faulty_fmu: Path, tmp_path: Path) -> None:
    """With one maximized KPI, ``target`` is that KPI's value to reach: it was compared with the minimized
    objective (-KPI), so a study maximizing flow with target 3.5 stopped at once, claiming it was reached."""
    from fmi_optimizer.records import Evaluation
    from fmi_optimizer.study.config import Budget, ObjectiveTerm
    from fmi_optimizer.study.loop import BudgetTracker

    def ev(objective: float) -> Evaluation:
        return Evaluation(Candidate({}), "ok", objective=objective)

    tracker = BudgetTracker(Budget(target=3.5), [ObjectiveTerm("flow", "maximize", 2.0)])
    tracker.record(ev(-2.0 * 3.0))  # flow 3.0
    assert tracker.exhausted() == ""
    tracker.record(ev(-2.0 * 3.6))  # flow 3.6
    assert tracker.exhausted() == "target flow >= 3.5 reached"
    cost = BudgetTracker(Budget(target=10.0), [ObjectiveTerm("cost", "minimize"), ObjectiveTerm("mass", "maximize")])
    cost.record(ev(10.5))
    assert cost.exhausted() == ""
    cost.record(ev(9.0))
    assert cost.exhausted() == "target objective <= 10 reached"
    # end to end: maximize y's peak (at most 1 + (x-1)^2 after 2 s) with a target above the first candidates'
    d = study_dict(faulty_fmu, objective={"maximize": "y_peak"},
                   method={"name": "random", "budget": {"evaluations": 12, "target": 1e6}, "seed": 3})
    result = optimize(d, out=tmp_path, write_back=False).result
    assert result.stopped_because == "budget of 12 evaluations used"


def test_the_python_api_refuses_what_the_study_file_and_the_cli_refuse(faulty_fmu: Path, tmp_path: Path) -> None:
    """optimize(budget=-3) once ran an empty study ("budget of -3 evaluations used") and wrote its report;
    seed=-1 ended in a numpy traceback. The overrides are checked like the study file's values."""
    from fmi_optimizer import load_study
    from fmi_optimizer.errors import StudyError

    for kwargs, message in (({"budget": 0}, "budget = 0: expected an integer, an evaluation budget of at least 1"),
                            ({"budget": -3}, "budget = -3"), ({"seed": -1}, "seed = -1: expected an integer, a seed"),
                            ({"workers": -1}, "workers = -1: expected an integer, 0 \\(one per core\\)"),
                            ({"budget": 2.5}, "budget = 2.5: expected an integer")):
        with pytest.raises(StudyError, match=message):
            optimize(study_dict(faulty_fmu), out=tmp_path / "never", write_back=False, **kwargs)
    assert not (tmp_path / "never").exists()
    import numpy as np  # a script's integers may be numpy's

    assert optimize(study_dict(faulty_fmu), out=tmp_path / "np", write_back=False, budget=np.int64(2),
                    seed=np.int32(1)).result.counts()["total"] == 2
    # base_dir may be a str, as optimize() and evaluate() accept it
    config = load_study({**study_dict("faulty.fmu")}, base_dir=str(faulty_fmu.parent))
    assert config.fmu == faulty_fmu.resolve()


def test_a_cache_hit_can_be_the_best_the_progress_line_shows() -> None:
    """Cache hits are free (not charged, not counted towards patience), but the progress line's best once
    ignored them and showed a worse best than the study's result."""
    from fmi_optimizer.records import Evaluation
    from fmi_optimizer.study.config import Budget, ObjectiveTerm
    from fmi_optimizer.study.loop import BudgetTracker

    tracker = BudgetTracker(Budget(evaluations=10, patience=3), [ObjectiveTerm("z", "minimize")])
    tracker.record(Evaluation(Candidate({}), "ok", objective=2.0))
    tracker.seen(Evaluation(Candidate({}), "ok", objective=1.0, cached=True))
    assert tracker.best == 1.0 and tracker.used == 1 and tracker.since_improvement == 0


@pytest.mark.slow
def test_seconds_budget_stops_and_returns_best(faulty_fmu: Path, tmp_path: Path) -> None:
    d = study_dict(faulty_fmu)
    d["method"]["budget"] = {"seconds": 3.0, "evaluations": 100000}
    out = optimize(d, out=tmp_path, write_back=False)
    assert "time budget" in out.result.stopped_because
    assert out.result.best is not None


def _write_toml(path: Path, fmu: Path, budget: int) -> Path:
    return faulty_study(path, fmu, budget=budget, seed=5, stop_time=60.0, output_interval=0.5)


HOLD_PLUGIN = """
import os
import time

from fmi_optimizer import hookimpl

HOLD_AFTER = int(os.environ.get("FMIO_TEST_HOLD_AFTER", "0"))


@hookimpl
def fmio_evaluation_finished(study, evaluation):
    # the study stops here, with exactly HOLD_AFTER evaluations stored, until the test kills or interrupts it
    if HOLD_AFTER and len(study.evaluations) >= HOLD_AFTER:
        while True:
            time.sleep(3600)
"""


def _hold_plugin(folder: Path) -> Path:
    folder.mkdir()
    (folder / "hold.py").write_text(HOLD_PLUGIN)
    return folder


def _sigint_default() -> None:
    """In the child, before exec: SIGINT does its default (Python turns it into KeyboardInterrupt) even when
    the test runner was started with SIGINT ignored (a background job, nohup, some CI runners), which the
    child would otherwise inherit."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stored_count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return int(reader.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0])
        finally:
            reader.close()
    except sqlite3.OperationalError:
        return 0


def _wait_until_stored(proc: subprocess.Popen[Any], db: Path, n: int, seen: list[int] | None = None) -> None:
    deadline = time.monotonic() + 180
    while True:
        count = _stored_count(db)
        if seen is not None:
            seen.append(count)
        if count >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"the study ended ({proc.returncode}) before {n} evaluations were stored")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{n} evaluations were not stored within 180 s (stored: {count})")
        time.sleep(0.05)


@pytest.mark.slow
def test_sigkill_loses_nothing_and_resume_does_not_repeat_work(faulty_fmu: Path, tmp_path: Path) -> None:
    study = _write_toml(tmp_path / "s.toml", faulty_fmu, 40)
    out = tmp_path / "out"
    db = out / "fmi_optimizer.db"
    env = {**os.environ, "FMIO_TEST_HOLD_AFTER": "8"}  # the study cannot finish before the kill
    proc = subprocess.Popen([sys.executable, "-m", "fmi_optimizer.cli.main", "optimize", str(study), "--out", str(out),
                             "--no-writeback", "--plugins-dir", str(_hold_plugin(tmp_path / "plugins"))],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: list[int] = []
    try:
        _wait_until_stored(proc, db, 8, seen)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert seen == sorted(seen), "a concurrent reader saw the count go backwards"
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = con.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
    assert stored == 8
    assert con.execute("SELECT COUNT(*) FROM evaluations WHERE status != 'ok'").fetchone()[0] == 0
    con.close()

    env.pop("FMIO_TEST_HOLD_AFTER")
    res = subprocess.run([sys.executable, "-m", "fmi_optimizer.cli.main", "resume", str(db), "--json", "--no-writeback"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["evaluations"]["total"] == 40
    con = sqlite3.connect(db)
    keys = [r[0] for r in con.execute("SELECT cache_key FROM evaluations WHERE study_id=1")]
    assert len(keys) == 40 and len(set(keys)) == 40  # nothing simulated twice, nothing lost
    seqs = [r[0] for r in con.execute("SELECT seq FROM evaluations WHERE study_id=1 ORDER BY id")]
    assert seqs == list(range(1, 41))  # numbered as an uninterrupted study (it once jumped from 8 to 17)
    assert f"{stored} stored evaluations will be replayed" in res.stderr


@pytest.mark.slow
def test_resume_runs_the_study_the_command_line_began(faulty_fmu: Path, tmp_path: Path) -> None:
    """--budget, --seed and --workers given to optimize hold for resume too: it once re-read them from the
    study file, so a run begun with --budget 300 --seed 7 stopped at the file's 30 evaluations with seed 0's
    candidates (none of the stored ones replayed) and reported a worse best than the database held."""
    study = _write_toml(tmp_path / "s.toml", faulty_fmu, 6)  # the file says budget 6, seed 5, 1 worker
    out = tmp_path / "out"
    db = out / "fmi_optimizer.db"
    plugins = _hold_plugin(tmp_path / "plugins")
    env = {**os.environ, "FMIO_TEST_HOLD_AFTER": "8"}
    proc = subprocess.Popen([sys.executable, "-m", "fmi_optimizer.cli.main", "optimize", str(study), "--out", str(out),
                             "--no-writeback", "--method", "random", "--budget", "20", "--seed", "7", "--workers",
                             "2", "--plugins-dir", str(plugins)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until_stored(proc, db, 8)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    env.pop("FMIO_TEST_HOLD_AFTER")
    res = subprocess.run([sys.executable, "-m", "fmi_optimizer.cli.main", "resume", str(db), "--json", "--no-writeback"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr
    assert "method random, seed 7, 20 evaluations, 2 workers" in res.stderr
    data = json.loads(res.stdout)
    assert data["evaluations"]["total"] == 20 and "8 stored evaluations will be replayed" in res.stderr
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0] == 20  # the 8 were reused, not redone
    assert sorted(r[0] for r in con.execute("SELECT seq FROM evaluations")) == list(range(1, 21))
    con.close()
    whole = optimize(str(study), out=tmp_path / "whole", write_back=False, method="random", budget=20, seed=7,
                     workers=2).result
    assert data["best"]["objective"] == whole.best.objective
    # a larger budget continues the same study (and a later resume keeps it)
    more = subprocess.run([sys.executable, "-m", "fmi_optimizer.cli.main", "resume", str(db), "--json",
                           "--no-writeback", "--budget", "24"], capture_output=True, text=True, timeout=300, env=env)
    assert more.returncode == 0 and json.loads(more.stdout)["evaluations"]["total"] == 24, more.stderr
    again = subprocess.run([sys.executable, "-m", "fmi_optimizer.cli.main", "resume", str(db), "--json",
                            "--no-writeback"], capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 0 and "24 evaluations" in again.stderr, again.stderr
    # a budget below what is stored would report a worse best than the database holds: refused
    less = subprocess.run([sys.executable, "-m", "fmi_optimizer.cli.main", "resume", str(db), "--budget", "5"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert less.returncode == 5 and "has 24 evaluations stored already; give a total of at least 24" in less.stderr
    # the plugins folder the study began with has moved: resume says so, and --plugins-dir points to it
    plugins.rename(tmp_path / "moved")
    lost = subprocess.run([sys.executable, "-m", "fmi_optimizer.cli.main", "resume", str(db), "--no-writeback"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert lost.returncode == 5 and f"ran with the plugins in {plugins}, which is no longer there" in lost.stderr
    found = subprocess.run([sys.executable, "-m", "fmi_optimizer.cli.main", "resume", str(db), "--no-writeback",
                            "--plugins-dir", str(tmp_path / "moved")], capture_output=True, text=True, timeout=300,
                           env=env)
    assert found.returncode == 0, found.stderr


@pytest.mark.slow
def test_ctrl_c_during_the_write_back_leaves_a_resumable_study(faulty_fmu: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C after the search, while the FMU and the report were written, left the study marked finished, no
    FMU, no report and only the word 'interrupted'; now the study is marked interrupted, says how to finish it,
    and resume writes what was missing."""
    import fmi_optimizer.runner.run as run

    def interrupted(*args: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "write_back_best", interrupted)
    study = faulty_study(tmp_path / "s.toml", faulty_fmu, budget=4)
    logged: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        run.run_study(run.load_with_host(study)[0], log=logged.append)
    db = tmp_path / "results" / "s" / "fmi_optimizer.db"
    status, result = sqlite3.connect(db).execute("SELECT status, result FROM studies").fetchone()
    assert status == "interrupted" and f"'fmi-optimizer resume {db}' writes them" in json.loads(result)["stopped_because"]
    assert logged[-1].startswith("interrupted (Ctrl-C) after the search")
    monkeypatch.undo()
    res = subprocess.run([sys.executable, "-m", "fmi_optimizer.cli.main", "resume", str(db), "--json"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    outputs = json.loads(res.stdout)["outputs"]
    assert Path(outputs["fmu"]).exists() and Path(outputs["report"]).exists()


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_with_everything_stored(faulty_fmu: Path, tmp_path: Path) -> None:
    study = _write_toml(tmp_path / "s.toml", faulty_fmu, 100000)
    out = tmp_path / "out"
    db = out / "fmi_optimizer.db"
    proc = subprocess.Popen([sys.executable, "-m", "fmi_optimizer.cli.main", "optimize", str(study), "--out", str(out),
                             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_sigint_default)
    try:
        _wait_until_stored(proc, db, 5)
        os.killpg(proc.pid, signal.SIGINT)  # like Ctrl-C in a terminal: the whole process group
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 12, stderr
    data = json.loads(stdout)
    assert "interrupted" in data["stopped_because"]
    con = sqlite3.connect(db)
    statuses = [r[0] for r in con.execute("SELECT status FROM evaluations")]
    assert len(statuses) == data["evaluations"]["total"] and set(statuses) == {"ok"}
    assert con.execute("SELECT status FROM studies").fetchone()[0] == "interrupted"


def test_common_random_numbers_share_seeds_across_candidates(sample_fmu) -> None:
    from fmi_optimizer.fmu.twin import Twin
    from fmi_optimizer.host.kpi import builtin_registry
    from fmi_optimizer.study.config import load_study
    from fmi_optimizer.study.problem import StudyProblem

    fmu = sample_fmu("production_line")
    base = {"twin": {"fmu": str(fmu)}, "parameters": {"n_crews": {}, "buffer_1": {}},
            "kpis": {"tp": "final(throughput)"}, "objective": {"maximize": "tp"},
            "replications": {"seed_parameter": "seed"}}
    twin = Twin.open(fmu)
    crn = StudyProblem.build(load_study(base), twin, builtin_registry())
    a, b = {"n_crews": 1, "buffer_1": 2}, {"n_crews": 2, "buffer_1": 5}
    assert crn.seed_for(Candidate(a, 3)) == crn.seed_for(Candidate(b, 3))
    assert crn.seed_for(Candidate(a, 3)) != crn.seed_for(Candidate(a, 4))
    assert crn.start_values(Candidate(a, 3))["seed"] == crn.seed_for(Candidate(a, 3))
    indep = StudyProblem.build(load_study({**base, "replications": {"seed_parameter": "seed",
                                                                    "common_random_numbers": False}}),
                               twin, builtin_registry())
    assert indep.seed_for(Candidate(a, 3)) != indep.seed_for(Candidate(b, 3))
    assert crn.cache_key(Candidate(a, 3)) != crn.cache_key(Candidate(a, 4))  # a replication is its own run
    # the seeds really drive the twin: same seed reproduces, another seed differs
    s1 = twin.simulate(crn.start_values(Candidate(a, 3)), outputs=["throughput"]).outputs["throughput"][-1]
    s2 = twin.simulate(crn.start_values(Candidate(a, 3)), outputs=["throughput"]).outputs["throughput"][-1]
    s3 = twin.simulate(crn.start_values(Candidate(a, 4)), outputs=["throughput"]).outputs["throughput"][-1]
    assert s1 == s2 and s1 != s3
