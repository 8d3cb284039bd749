"""The Python API scripts call: ``optimize(study)`` and the session object behind the CLI."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fmi_optimizer.engine.instance_strategy import StrategyVerdict, fixed_verdict, prove
from fmi_optimizer.engine.pool import EngineOptions, Evaluator, LocalPool
from fmi_optimizer.errors import (
    FmiOptimizerError,
    FmuError,
    FmuUnsupportedError,
    OutputError,
    PluginError,
    StudyError,
)
from fmi_optimizer.fmu.twin import Twin
from fmi_optimizer.host.loader import Host, load_host
from fmi_optimizer.host.routing import choose_method
from fmi_optimizer.method import Method
from fmi_optimizer.records import Candidate, Evaluation
from fmi_optimizer.study.config import StudyConfig, parse_study, plugins_dir_of, read_study
from fmi_optimizer.study.loop import ProgressCallback, Study, StudyResult
from fmi_optimizer.study.problem import StudyProblem
from fmi_optimizer.study.storage import Store
from fmi_optimizer.writeback.atomic import OutputLock, safe_name


@dataclass
class Outcome:
    """A study's result plus the files it wrote."""

    result: StudyResult
    config: StudyConfig
    problem: StudyProblem
    out_dir: Path
    db: Path
    files: dict[str, str] = field(default_factory=dict)
    verification: dict[str, Any] | None = None
    # the instance strategy, its proof and any switch during the study
    instances: dict[str, Any] | None = None
    baseline: Evaluation | None = None
    host: Host | None = None  # the plugins that ran the study (their report sections belong in its report)
    deliverables_tag: str = ""  # "" or ".2", ".3", ...: this study's files beside earlier studies' in out_dir

    @property
    def beats_delivered(self) -> bool | None:
        """Whether the best design is better than the twin as delivered: feasible where the delivered one is
        not, else a lower objective (None when either has no comparable objective)."""
        best, base = self.result.best, self.baseline
        if best is None or base is None or base.status != "ok" or None in (base.objective, best.objective):
            return None
        if best.feasible != base.feasible:
            return bool(best.feasible)
        return bool(best.objective < base.objective)  # type: ignore[operator]

    def to_json(self) -> dict[str, Any]:
        """The JSON contract of ``optimize --json`` (see docs/cli.md)."""
        best = self.result.best
        return {
            "study": self.result.name,
            "study_id": self.result.study_id,
            "method": self.result.method,
            "routing": self.result.routing,
            "stopped_because": self.result.stopped_because,
            "best": None if best is None else {
                "values": best.values, "kpis": best.kpis, "objective": best.objective,
                "feasible": best.feasible,
            },
            "evaluations": self.result.counts(),
            "wall_seconds": self.result.wall_seconds,
            "outputs": {"fmu": self.files.get("fmu"), "ssv": self.files.get("ssv"),
                        "json": self.files.get("json"),
                        "report": self.files.get("report"), "db": str(self.db)},
            "verification": self.verification,
            "instances": self.instances,
            "baseline": None if self.baseline is None else {
                "values": self.baseline.values, "kpis": self.baseline.kpis,
                "objective": self.baseline.objective,
                "feasible": self.baseline.feasible, "status": self.baseline.status,
                "error": self.baseline.error,
                "wall_seconds": self.baseline.wall_seconds,
                "best_beats_it": self.beats_delivered},
            "trace": self.result.trace(),
            "diagnostics": self.result.diagnostics,
            "method_errors": self.result.method_errors or None,
            "observer_errors": self.result.observer_errors or None,
            **({} if self.result.pareto_front is None
               else {"pareto_front": pareto_front_json(self.result.pareto_front)}),
        }


def pareto_front_json(points: list[Evaluation]) -> list[dict[str, Any]]:
    """The front of a ``pareto = true`` study; ``index`` is what ``optimize --pick N`` takes."""
    return [{"index": i, "values": e.values, "objectives": list(e.objectives), "kpis": e.kpis,
             "constraints": list(e.constraints), "feasible": e.feasible} for i, e in enumerate(points)]


def default_out_dir(config: StudyConfig) -> Path:
    """``--out`` / ``[output] dir``, else ``results/<study name>`` beside the study file; the name is made a
    single safe folder name, so a ``name`` such as ``../../x`` cannot write outside ``results/``."""
    return config.out_dir or (config.base_dir / "results" / safe_name(config.name))


DELIVERABLES = ("{stem}.optimized{tag}.fmu", "{stem}.optimized{tag}.ssv", "{stem}.optimized{tag}.json",
                "report{tag}.html")


def deliverable_tag(store: Store, out_dir: Path, stem: str) -> str:
    """The suffix of a new study's deliverables in ``out_dir``: ``""`` for the first study, else ``.2``,
    ``.3``, ... - the first whose files do not exist and that no other study in the folder's database has
    claimed (a study that stopped before writing them still owns its suffix, for ``resume``). So a second
    study into the same folder never overwrites the FMU, SSV, JSON or report a finished study handed out."""
    import json

    claimed = set()
    for row in store.conn.execute("SELECT config FROM studies"):
        with contextlib.suppress(ValueError, TypeError):
            tag = json.loads(row[0]).get("deliverables_tag")
            if isinstance(tag, str):
                claimed.add(tag)
    n = 1
    while True:
        tag = "" if n == 1 else f".{n}"
        if tag not in claimed and not any((out_dir / f.format(stem=stem, tag=tag)).exists()
                                          for f in DELIVERABLES):
            return tag
        n += 1


def ensure_writable(folder: Path) -> Path:
    """Create ``folder`` and prove it is writable before any simulation is spent."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".fmio-write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"{folder}: output folder is not writable ({exc.strerror or exc}); pass a writable "
                          "--out") from exc
    return folder


def prove_instances(problem: StudyProblem, log: Callable[[str], None] = lambda s: None) -> StrategyVerdict:
    """The instance strategy for this study's FMU: the one the study file names, else a proven one (cached by
    the FMU's hash), probed on the centre of the design space and two random points of it."""
    c = problem.config
    fmu = problem.twin.fmu.runnable
    if c.instances != "auto":
        return fixed_verdict(c.instances, "chosen in the study file ([evaluation] instances)", fmu)
    rng = np.random.default_rng(c.seed)
    units = [[0.5] * len(problem.space)] + [list(rng.uniform(size=len(problem.space))) for _ in range(2)]
    requests = [problem.request(i, Candidate(problem.space.from_unit(u), 0, "probe")) for i,
                u in enumerate(units)]
    return prove(fmu, requests, interface=c.settings.interface, timeout=c.timeout, log=log)


def make_evaluator(host: Host, problem: StudyProblem, verdict: StrategyVerdict | None = None) -> Evaluator:
    """Ask plugins for an evaluator (firstresult), else the built-in local pool or Dask cluster, preparing
    runs by ``verdict``'s instance strategy (proven here when not given)."""
    c = problem.config
    strategy = (verdict or prove_instances(problem)).strategy
    options = {"workers": c.workers, "timeout": c.timeout, "recycle_every": c.recycle_every,
               "cluster": c.cluster,
               "instances": strategy, "check_share": c.check_share}
    custom = host.pm.hook.fmio_make_evaluator(problem=problem, options=options)
    if custom is not None:
        return custom
    engine = EngineOptions(workers=c.workers, timeout=c.timeout, recycle_every=c.recycle_every,
                           interface=c.settings.interface, strategy=strategy, check_share=c.check_share)
    if c.cluster:
        from fmi_optimizer.engine.dask_pool import DaskEvaluator

        return DaskEvaluator(problem.twin.fmu.runnable, engine, c.cluster)
    return LocalPool(problem.twin.fmu.runnable, engine)


def run_baseline(evaluator: Evaluator, problem: StudyProblem) -> Evaluation:
    """Simulate the twin as delivered (its own start values; the study's fixed values and replication 0's
    seed).

    It proves the FMU runs before any method starts, times one run (for routing), and gives the report the
    design to compare the optimum against. It is not told to the method and costs no budget.
    """
    probe = Candidate(problem.space.from_unit([0.5] * len(problem.space)), 0, "baseline")
    request = problem.request(0, probe)
    design = {d.name: problem.twin.variable(d.name).start for d in problem.space}
    kept = {k: v for k, v in request.start_values.items() if k not in design}
    started = time.time()
    (reply,) = list(evaluator.run([dataclasses.replace(request, start_values=kept)]))
    return problem.evaluation(Candidate({k: v for k, v in design.items() if v is not None}, 0, "baseline"),
                              reply, started, time.time())


def build_problem(config: StudyConfig, host: Host) -> StudyProblem:
    twin = Twin.open(config.existing_fmu())
    problem = StudyProblem.build(config, twin, host.kpis, pm=host.pm)
    for adjusted in host.pm.hook.fmio_adjust_design_space(twin=twin, space=problem.space):
        if adjusted is not None:
            problem = StudyProblem.build(config, twin, host.kpis, space=adjusted, pm=host.pm)
    return problem


def run_study(
    config: StudyConfig,
    host: Host | None = None,
    progress: ProgressCallback | None = None,
    write_back: bool = True,
    report: bool = True,
    log: Callable[[str], None] = lambda s: None,
    resume_id: int | None = None,
    wait: float | None = None,
) -> Outcome:
    """Run one study end to end: problem, method, evaluation, storage, write-back, report.

    The output folder is locked for the whole study (one writer per folder): another holder makes this
    raise OutputError (exit 8) naming it, after waiting up to ``wait`` seconds.
    """
    host = host or load_host(config.plugins_dir)
    for bad in host.errors:
        log(f"warning: plugin {bad.name} ({bad.source}) failed to load: {bad.error}")
    folder = default_out_dir(config)
    created = not folder.exists()
    out_dir = ensure_writable(folder)
    try:
        with OutputLock(out_dir).acquire(wait, log):
            return _run_locked(config, host, progress, write_back, report, log, resume_id, out_dir)
    except BaseException:
        if created:  # a study refused before it wrote anything leaves no empty folder behind (rmdir only
            with contextlib.suppress(OSError):  # removes an empty one: a database or a deliverable keeps it)
                out_dir.rmdir()
        raise


def study_overrides(config: StudyConfig, write_back: bool) -> dict[str, Any]:
    """What the command line or the API set on top of the study file, as stored with the study: resume runs
    the same study with them, a restarted ``run --watch`` compares them."""
    return {"budget_evaluations": config.budget.evaluations, "seed": config.seed, "workers": config.workers,
            "plugins_dir": str(config.plugins_dir.resolve()) if config.plugins_dir else None,
            "method": config.method, "write_back": write_back}


def finished_study(config: StudyConfig, host: Host, write_back: bool) -> int | None:
    """The id of a finished study in the config's output folder that ran this very study: the same FMU bytes,
    study file, method, overrides, plugins folder, write-back and feature data (a calibration's data files'
    hashes), so a restarted ``run --watch`` leaves it alone; else None."""
    import json

    from fmi_optimizer.fmu.archive import content_hash

    db = default_out_dir(config) / "fmi_optimizer.db"
    if not db.exists():
        return None
    wanted = _jsonable(config.raw)
    sha = content_hash(Path(config.fmu))
    store = Store(db)
    try:
        saved = [(int(row["id"]), json.loads(row["config"])) for row in store.studies()
                 if row["status"] == "finished" and row["fmu_sha256"] == sha]
    finally:
        store.close()
    asked = study_overrides(config, write_back)
    same = []
    for sid, stored in saved:
        began = stored.get("overrides") or {}
        if stored.get("raw") == wanted and all(began.get(k) == v for k, v in asked.items()):
            same.append((sid, began))
    if not same:
        return None
    features = build_problem(config, host).features_identity()  # only now: it opens the FMU and data
    return next((sid for sid, began in reversed(same) if began.get("features") == features), None)


def check_resumed_fmu(db: Path, study_id: int, fmu_sha256: str, fmu: Path) -> None:
    """Refuse to resume a study on an FMU other than the one it began with (exit 3, both hashes named)."""
    store = Store(db)
    try:
        began = store.study(study_id)["fmu_sha256"]
    finally:
        store.close()
    if began != fmu_sha256:
        raise FmuError(f"{fmu}: changed since study {study_id} began (sha256 then {began}, now "
                       f"{fmu_sha256}); resume needs the FMU the study began with: restore it, or start a "
                       "new study with 'fmi-optimizer optimize'")


def _run_locked(config: StudyConfig, host: Host, progress: ProgressCallback | None, write_back: bool,
                report: bool, log: Callable[[str], None], resume_id: int | None, out_dir: Path) -> Outcome:
    if resume_id is not None and Path(config.fmu).is_file():  # before anything is built from a changed FMU
        from fmi_optimizer.fmu.archive import content_hash

        check_resumed_fmu(out_dir / "fmi_optimizer.db", resume_id, content_hash(Path(config.fmu)),
                          Path(config.fmu))
    problem = build_problem(config, host)
    batch = EngineOptions(workers=config.workers).worker_count()
    if config.method != "auto":  # an unknown or unfit method fails before any worker starts
        choose_method(host.methods, config.method, problem.method_problem(batch))
    if write_back:  # an FMU write-back cannot deliver is refused before any simulation is spent
        from fmi_optimizer.writeback.write import writeback_support

        refused = writeback_support(problem.twin.fmu.runnable)
        if refused:
            raise FmuUnsupportedError(f"{refused}; or optimize without an optimized FMU: --no-writeback "
                                      "(Python: write_back=False)")
        from fmi_optimizer.writeback.proxy_fmu import uncarried

        cannot = uncarried(problem.twin.fmu.runnable, [*problem.space.names, *problem.fixed])
        if cannot:
            raise StudyError(f"{config.source or 'study'}: {', '.join(map(repr, cannot))}: a written FMU "
                             "cannot carry these as start values (an FMI 3.0 structural parameter or array); "
                             "optimize with --no-writeback (the .ssv and .json record the values)")
    verdict = prove_instances(problem, log)
    log(verdict.summary())
    evaluator = make_evaluator(host, problem, verdict)
    try:
        baseline = run_baseline(evaluator, problem)
        mproblem = problem.method_problem(batch)
        runs = problem.expansion.runs_per_candidate() if problem.expansion is not None else 1
        mproblem = dataclasses.replace(mproblem, seconds_per_evaluation=baseline.wall_seconds * runs)
        method_cls, routing = choose_method(host.methods, config.method, mproblem)
        log(routing)
        method = _make_method(host, method_cls, mproblem, config)
        study_run = _StudyRun(config, problem, method, evaluator, host, out_dir, batch, baseline, routing,
                              verdict)
        return study_run.execute(progress, write_back, report, log, resume_id)
    finally:
        evaluator.close()  # on every path: workers never outlive the study


def _make_method(host: Host, method_cls: type[Method], problem: Any, config: StudyConfig) -> Method:
    """Instantiate the method; its constructor is plugin code: a crash is a PluginError naming the plugin."""
    try:
        return method_cls(problem, config.method_options, config.seed)
    except (KeyboardInterrupt, FmiOptimizerError):
        raise  # options rejected (StudyError) keep their own exit code
    except BaseException as exc:
        raise PluginError(f"method {method_cls.name!r} of {host.method_origin(method_cls.name)} failed to "
                          f"start: {type(exc).__name__}: {' '.join(str(exc).split())}") from exc


@dataclass
class _StudyRun:
    """The stored part of a study: create/resume its row, loop, write back, report."""

    config: StudyConfig
    problem: StudyProblem
    method: Method
    evaluator: Evaluator
    host: Host
    out_dir: Path
    batch: int
    baseline: Evaluation
    routing: str
    verdict: StrategyVerdict

    def execute(self, progress: ProgressCallback | None, write_back: bool, report: bool,
                log: Callable[[str], None], resume_id: int | None) -> Outcome:
        import json

        config, problem, method = self.config, self.problem, self.method
        db = self.out_dir / "fmi_optimizer.db"
        store = Store(db)
        try:
            stem = safe_name(problem.twin.path.stem, "twin")
            if resume_id is None:
                tag = deliverable_tag(store, self.out_dir, stem)
            else:
                tag = str(json.loads(store.study(resume_id)["config"]).get("deliverables_tag") or "")
            raw = {"raw": _jsonable(config.raw),
                   "source": str(config.source.resolve()) if config.source else None,
                   "base_dir": str(config.base_dir.resolve()), "method": method.name,
                   "problem": problem.describe(),
                   "deliverables_tag": tag,
                   "overrides": {**study_overrides(config, write_back),
                                 "features": problem.features_identity()},  # data behind the features
                   "resume_with": config.resume_with}
            if resume_id is None:
                study_id = store.create_study(config.name, method.name, config.seed, problem.twin.fmu.sha256,
                                              raw)
            else:
                study_id = resume_id
                store.set_status(study_id, "running")
                store.set_config(study_id, {**json.loads(store.study(study_id)["config"]),
                                            "overrides": raw["overrides"]})  # a larger --budget sticks
            study = Study(problem, method, self.evaluator, store, self.host, study_id, self.batch, progress,
                          self.routing)
            if resume_id is not None:
                log(f"resuming study {study_id}: {study.prepare_resume()} stored evaluations will be "
                    "replayed")
            try:
                result = study.run()
            # a failed study stays resumable: every finished evaluation is stored
            except BaseException as exc:
                if not isinstance(exc, KeyboardInterrupt):
                    error = f"{type(exc).__name__}: {exc}"
                    store.set_status(study_id, "failed",
                                     {"error": error, "stopped_because": f"failed: {error}",
                                                          "stored_evaluations": len(study.evaluations)})
                raise
            self.evaluator.close()  # free the workers before write-back verification starts its own processes
            outcome = Outcome(result, config, problem, self.out_dir, db, baseline=self.baseline,
                              host=self.host,
                              deliverables_tag=tag)
            outcome.instances = self._instances(study, log)
            if outcome.beats_delivered is False:
                writes = write_back and not result.interrupted  # no FMU is written after Ctrl-C
                log("warning: the best design found is not better than the twin as delivered (see "
                    "'as delivered' in the summary and the report); "
                    + ("the written FMU holds the best found, so keep the delivered FMU or run the study "
                       "again with a larger budget" if writes else
                       f"keep the delivered FMU, or continue with a larger budget: 'fmi-optimizer resume "
                       f"{db} --budget N'"))
            status = "interrupted" if result.interrupted else "finished"
            store.set_status(study_id, status, outcome.to_json())
            try:
                if write_back and result.best is not None and not result.interrupted:
                    write_back_best(outcome, log)
                    store.set_status(study_id, status, outcome.to_json())  # the report shows the write-back
                if report:
                    from fmi_optimizer.report.html import write_report

                    path = self.out_dir / f"report{tag}.html"
                    outcome.files["report"] = str(write_report(store, study_id, path, pm=self.host.pm))
            except KeyboardInterrupt:
                stopped = ("interrupted (Ctrl-C) after the search, while writing the optimized FMU and the "
                           f"report; every evaluation is stored: 'fmi-optimizer resume {db}' writes them")
                store.set_status(study_id, "interrupted", {**outcome.to_json(), "stopped_because": stopped})
                log(stopped)
                raise
            store.set_status(study_id, status, outcome.to_json())
            return outcome
        finally:
            store.close()


    def _instances(self, study: Study, log: Callable[[str], None]) -> dict[str, Any]:
        """The strategy record for the JSON and the report; a switch during the study is said on stderr."""
        switches = list(getattr(self.evaluator, "switches", []))
        record = {**self.verdict.to_json(), "switches": switches,
                  "reruns": int(getattr(self.evaluator, "reruns", 0)), "corrected": list(study.replaced),
                  "final": str(getattr(self.evaluator, "strategy", self.verdict.strategy))}
        for why in switches:
            log(f"warning: switched to fresh instances during the study: {why}; "
                f"{record['reruns']} earlier runs were repeated, {len(study.replaced)} changed their "
                "objective")
        return record


def write_back_best(outcome: Outcome, log: Callable[[str], None]) -> None:
    """Write the study's best design back into a verified FMU; a failed check is logged, not raised."""
    from fmi_optimizer.writeback.write import write_back

    best = outcome.result.best
    assert best is not None
    problem = outcome.problem
    reference = _reference_replication(outcome)
    values = {**problem.fixed, **best.values}
    res = write_back(problem=problem, values=values, out_dir=outcome.out_dir,
                     stem=safe_name(problem.twin.path.stem, "twin"), tag=outcome.deliverables_tag,
                     expected_kpis=reference.kpis, seed=reference.seed,
                     strict=False)  # a failed check is reported (exit 10), not raised
    outcome.files.pop("fmu", None)
    outcome.files.update({k: str(v) for k, v in res.files.items() if v is not None})  # no fmu when it failed
    outcome.verification = res.verification
    if reference is not best:
        outcome.verification["reference"] = (f"replication {reference.candidate.replication} (seed "
                                             f"{reference.seed}); best KPIs are replication means")
    if res.ok and res.fmu is not None:
        by = ", ".join(res.trajectories.verified_by) or "no importer"
        log(f"wrote {res.fmu} (verified in {by}: max relative difference "
            f"{res.verification.get('max_rel_diff')})")
        for note in [res.platform_note(problem.twin.path.name), *res.notes]:
            if note:
                log(note)
    else:
        problems = res.verification.get("problems") or ["unknown problem"]
        log(f"write-back FAILED verification, no optimized FMU was written: {problems[0]}; "
            f"details in {res.json}, values in {res.ssv}")


def _reference_replication(outcome: Outcome) -> Evaluation:
    """The evaluation a written FMU must reproduce: the best itself, or for a stochastic twin (whose best is a
    mean over replications) its lowest replication, whose seed is then written into the FMU."""
    best = outcome.result.best
    assert best is not None
    if best.seed is not None or not outcome.config.seed_parameter:
        return best
    reps = [e for e in outcome.result.evaluations if e.ok and e.values == best.values and e.seed is not None]
    return min(reps, key=lambda e: e.candidate.replication) if reps else best


def _jsonable(raw: Mapping[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(raw, default=str))


def evaluate(
    study: str | Path | Mapping[str, Any] | StudyConfig,
    values: Mapping[str, Any],
    *,
    replication: int = 0,
    plugins: Iterable[Any] = (),
    base_dir: str | Path | None = None,
) -> Evaluation:
    """Simulate one parameter set and score it with the study's own KPIs, objective and constraints.

    ``study`` is a study file, a study dict or a loaded :class:`StudyConfig`; ``values`` names design
    parameters of the study (those left out keep the twin's start values, like the as-delivered baseline).
    The run happens in an isolated worker process, prepared like a study's runs (the study's fixed values, the
    seed of ``replication`` for a stochastic twin, the nominal run in an ``[uncertainty]`` study; plugin
    evaluators and ``[evaluation] cluster`` are honoured). Nothing is stored. Returns the
    :class:`Evaluation`: ``kpis``, ``objective`` (minimization sense), ``objectives``, ``constraints`` (in
    the order of ``[constraints]``, feasible when <= 0), ``feasible``, ``status`` and ``error``; a failed
    simulation is a status, not an exception. Unknown parameters or values out of range raise
    :class:`~fmi_optimizer.errors.ValueValidationError`.
    """
    from fmi_optimizer.errors import ValueValidationError

    config, host = load_with_host(study, base_dir, plugins)
    config = config.with_overrides(workers=1)
    problem = build_problem(config, host)
    unknown = sorted(set(values) - set(problem.space.names))
    if unknown:
        raise ValueValidationError(f"evaluate: {unknown} not in the design space of study {config.name!r}; "
                                   f"its parameters: {problem.space.names}")
    given: dict[str, Any] = dict(values)
    for d in problem.space:
        if d.name not in given:
            start = problem.twin.variable(d.name).start
            if start is None:
                raise ValueValidationError(f"evaluate: give a value for {d.name!r} (the twin has no start "
                                           "value)")
            given[d.name] = start
    candidate = Candidate(problem.space.validate(given), replication, "evaluate")
    strategy = config.instances if config.instances != "auto" else "reload"  # one run: plain fmpy's way
    evaluator = make_evaluator(host, problem,
                               fixed_verdict(strategy, "a single evaluation", problem.twin.fmu.runnable))
    try:
        started = time.time()
        replies = [r for r in evaluator.run([problem.request(1, candidate)]) if not r.rerun]
        return problem.evaluation(candidate, replies[0], started, time.time())
    finally:
        evaluator.close()


def load_with_host(study: str | Path | Mapping[str, Any] | StudyConfig, base_dir: str | Path | None = None,
                   plugins: Iterable[Any] = (), plugins_dir: Path | None = None) -> tuple[StudyConfig, Host]:
    """The study and the host that runs it: the host is loaded first (entry points, the study's
    ``plugins_dir`` or ``plugins_dir``, ``plugins``), so that the study file may use the sections its
    plugins register."""
    if isinstance(study, StudyConfig):
        return study, load_host(plugins_dir or study.plugins_dir, extra=plugins)
    data, base, source = read_study(study, Path(base_dir) if base_dir else None)
    host = load_host(plugins_dir or plugins_dir_of(data, base), extra=plugins)
    return parse_study(data, base, source, host.sections), host


def optimize(
    study: str | Path | Mapping[str, Any],
    *,
    method: str | None = None,
    budget: int | None = None,
    seed: int | None = None,
    workers: int | None = None,
    out: str | Path | None = None,
    plugins: Iterable[Any] = (),
    write_back: bool = True,
    base_dir: str | Path | None = None,
) -> Outcome:
    """Run a study from a TOML file or a dict; the overrides win over the file. Returns the outcome."""
    config, host = load_with_host(study, base_dir, plugins)
    config = config.with_overrides(method=method, budget_evaluations=budget, seed=seed, workers=workers,
                                   out_dir=Path(out) if out else None)
    if not host.methods.names():
        raise StudyError("no method is registered; is fmi-optimizer installed (pip install -e .)?")
    return run_study(config, host, write_back=write_back)


def pick_and_write(outcome: Outcome, selector: str, write_back: bool,
                   log: Callable[[str], None]) -> Evaluation:
    """``optimize --pick``: choose a point of the finished study, make it the result, write it back,
    and refresh the stored result and the report."""
    from fmi_optimizer.report.html import write_report
    from fmi_optimizer.study.pareto import front, pick, study_key

    result = outcome.result
    points = result.aggregates or result.evaluations
    key = study_key(outcome.config)
    chosen = pick(points, selector, list(outcome.config.kpis), key)
    result.best = chosen
    on_front = any(chosen is p for p in front(points, key))
    result.diagnostics["pick"] = {"selector": selector, "values": dict(chosen.values),
                                  "kpis": dict(chosen.kpis),
                                  "on_front": on_front}
    log(f"picked {selector!r}: " + ", ".join(f"{k}={v:.6g}" for k, v in chosen.kpis.items())
        + ("" if on_front else " (not on the Pareto front of the objectives)"))
    if write_back and not result.interrupted:
        write_back_best(outcome, log)
    store = Store(outcome.db)
    try:
        store.set_status(result.study_id, "finished", outcome.to_json())
        if "report" in outcome.files:
            write_report(store, result.study_id, Path(outcome.files["report"]),
                         pm=outcome.host.pm if outcome.host is not None else None)
    finally:
        store.close()
    return chosen
