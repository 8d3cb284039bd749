"""Implementations of the built-in CLI sub-commands (argument parsing lives in cli.py)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .api import Outcome, run_study
from .cli import emit_json, log
from .config import StudyConfig, load_study
from .errors import ExitCode, FmiOptimizerError, StudyError
from .plugins import Host, load_host
from .storage import Store
from .terminal import ProgressBar, fmt, table

# -- inspect / init ------------------------------------------------------------------------


def configure_inspect(p: argparse.ArgumentParser) -> None:
    p.add_argument("fmu", type=Path, help="the .fmu file")


def cmd_inspect(args: argparse.Namespace) -> int:
    from .twin import Twin

    twin = Twin.open(args.fmu)
    info = twin.info()
    if args.json:
        emit_json(info)
        return 0
    e = info["default_experiment"]
    print(f"{twin.path.name}: {info['model_name']} (FMI {info['fmi_version']}, {', '.join(info['interfaces'])})"
          + ("  [compiled from sources]" if info["compiled_from_sources"] else ""))
    print(f"default experiment: start {fmt(e['start_time'])}, stop {fmt(e['stop_time'])}, "
          f"tolerance {fmt(e['tolerance'])}, step {fmt(e['step_size'])}")
    for title, key in (("Parameters", "parameters"), ("Inputs", "inputs"), ("Outputs", "outputs")):
        rows = info[key]
        print(f"\n{title} ({len(rows)})")
        if rows:
            table(["name", "type", "start", "min", "max", "unit", "tunable", "items / description"],
                  [[r["name"], r["type"], r["start"], r["min"], r["max"], r["unit"] or "", r["tunable"],
                    ", ".join(f"{i['name']}={i['value']}" for i in r["items"]) or r["description"]] for r in rows])
    return 0


def configure_init(p: argparse.ArgumentParser) -> None:
    p.add_argument("fmu", type=Path, help="the .fmu file")
    p.add_argument("-o", "--output", type=Path, help="study file to write (default: FMU name with .toml)")
    p.add_argument("--force", action="store_true", help="overwrite an existing study file")


def cmd_init(args: argparse.Namespace) -> int:
    from .templates import write_template

    path = write_template(args.fmu, args.output, args.force)
    if args.json:
        emit_json({"study_file": str(path)})
    else:
        log(f"wrote {path}: uncomment the parameters to optimize, define KPIs and the objective, then run "
            f"'fmi-optimizer optimize {path}'")
    return 0


# -- optimize / select / resume -------------------------------------------------------------


def configure_study(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", type=Path, help="the study file (TOML)")
    p.add_argument("--no-writeback", action="store_true", help="do not write the optimized FMU")
    p.add_argument("--pick", help="write back this point instead of the best: an index into the Pareto front "
                   "(see the report) or a rule such as \"min mass where fan_energy <= 500\"")


def config_from_args(args: argparse.Namespace, path: Path | None = None) -> StudyConfig:
    config = load_study(path or args.study)
    return config.with_overrides(method=args.method, budget_evaluations=args.budget, seed=args.seed,
                                 workers=args.workers, out_dir=args.out,
                                 plugins_dir=getattr(args, "plugins_dir", None))


def _run_one(config: StudyConfig, args: argparse.Namespace, host: Host | None = None, **kw: Any) -> Outcome:
    per = config.uncertainty.runs_per_candidate() if config.uncertainty is not None else 1
    bar = ProgressBar(config.name if per == 1 else f"{config.name} ({per} runs per candidate)",
                      terms=config.objective)
    try:
        return run_study(config, host or load_host(config.plugins_dir), progress=bar, log=log,
                         write_back=not getattr(args, "no_writeback", False), **kw)
    finally:
        bar.close()


def cmd_optimize(args: argparse.Namespace) -> int:
    if getattr(args, "pick", None) is None:
        return _finish(_run_one(config_from_args(args), args), args)
    from .pareto import pick_and_write  # issue 8: write back a chosen Pareto point

    write = not args.no_writeback
    args.no_writeback = True  # the picked point is written after the study, not the best one
    outcome = _run_one(config_from_args(args), args)
    pick_and_write(outcome, args.pick, write, log)
    return _finish(outcome, args)


def cmd_select(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if not config.scenarios:
        raise StudyError(f"{config.source}: [scenarios] is empty; list the alternatives to select among")
    if args.method is None:
        config = config.with_overrides(method="ranking")
    return _finish(_run_one(config, args), args)


def configure_resume(p: argparse.ArgumentParser) -> None:
    p.add_argument("db", type=Path, help="the study database (fmi_optimizer.db)")
    p.add_argument("--study-id", type=int, help="which study in the file (default: the latest)")
    p.add_argument("--no-writeback", action="store_true", help="do not write the optimized FMU")


def cmd_resume(args: argparse.Namespace) -> int:
    with existing_study(args.db, args.study_id) as (_, row):
        saved = json.loads(row["config"])
    config = load_study(saved["raw"], Path(saved["base_dir"]))
    config = config.with_overrides(out_dir=args.db.parent, method=saved["method"], source=None)
    log(f"resuming study {row['id']} ({row['name']}, status {row['status']}) in {args.db}")
    outcome = _run_one(config, args, resume_id=int(row["id"]))
    return _finish(outcome, args)


def _finish(outcome: Outcome, args: argparse.Namespace) -> int:
    data = outcome.to_json()
    if args.json:
        emit_json(data)
    else:
        print_summary(outcome)
    if outcome.result.interrupted:
        return int(ExitCode.INTERRUPTED)
    if outcome.verification is not None and not outcome.verification.get("ok", False):
        return int(ExitCode.VERIFICATION_FAILED)
    return 0


def print_summary(outcome: Outcome) -> None:
    r = outcome.result
    c = r.counts()
    print(f"\nstudy {r.name!r}  method {r.method}  ({r.routing})")
    print(f"stopped: {r.stopped_because}; {c['total']} evaluations ({c['ok']} ok, {c['failed']} failed, "
          f"{c['crashed']} crashed, {c['timeout']} timeout, {c['cached']} cached) in {r.wall_seconds:.1f} s")
    best = r.best
    if best is None:
        print("no feasible result")
        return
    base = outcome.baseline
    as_delivered = (f"  (as delivered: {fmt(base.objective)}, {'feasible' if base.feasible else 'infeasible'})"
                    if base is not None and base.objective is not None else "")
    terms = outcome.config.objective
    if len(terms) == 1 and terms[0].sense == "maximize" and best.objective is not None:  # say it as the user wrote it
        shown = outcome.problem.objective_to_kpi_sense
        as_delivered = as_delivered.replace(fmt(base.objective), fmt(shown(base.objective))) if as_delivered and base \
            and base.objective is not None else as_delivered
        print(f"best {terms[0].kpi} {fmt(shown(best.objective))} (maximized)  feasible {fmt(best.feasible)}{as_delivered}")
    else:
        print(f"best objective {fmt(best.objective)}  feasible {fmt(best.feasible)}{as_delivered}")
    table(["parameter", "value"], [[k, v] for k, v in outcome.problem.space.labelled(best.values).items()])
    print()
    limits = {s.kpi: s for s in outcome.config.constraints}
    rows = []
    for k, v in best.kpis.items():
        s = limits.get(k)
        rows.append([k, v, f"{s.op} {fmt(s.limit)}" if s else "", fmt(-s.value(v)) if s else ""])
    table(["kpi", "value", "constraint", "margin"], rows)
    robust = r.diagnostics.get("uncertainty", {})
    if robust:  # issue 8: the KPIs above are the nominal run's; say what the scenarios showed
        print(f"under uncertainty: {robust['candidates']} candidates x {robust['runs_per_candidate']} runs; "
              f"objective = {robust['score']} over {robust.get('best', {}).get('scenarios', '?')} scenarios")
        for c in robust.get("best", {}).get("chance", []):
            print(f"  P({c['kpi']} {c['op']} {fmt(c['limit'])}) = {c['probability']:.4f} "
                  f"[{c['lower']:.4f}, {c['upper']:.4f}] target {c['target']:g}: {'holds' if c['holds'] else 'NOT proven'}")
    for name, path in outcome.files.items():
        print(f"{name:>7}: {path}")
    if outcome.verification:
        ver = outcome.verification
        by = ", ".join(ver.get("verified_by") or []) or "none"
        print(f"verification: {'ok' if ver.get('ok') else 'FAILED (no optimized FMU written)'} "
              f"(max relative difference {fmt(ver.get('max_rel_diff'))}; importers ok: {by})")


# -- run FOLDER -------------------------------------------------------------------------------


def configure_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", type=Path, help="folder with X.fmu + X.toml pairs")
    p.add_argument("--watch", action="store_true", help="keep running and optimize FMUs dropped into the folder")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between folder scans with --watch")
    p.add_argument("--no-writeback", action="store_true", help="do not write optimized FMUs")


def cmd_run(args: argparse.Namespace) -> int:
    from .dropfolder import run_folder

    return run_folder(args)


# -- compare ------------------------------------------------------------------------------------


def configure_compare(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", type=Path, help="the study file (TOML)")
    p.add_argument("--methods", required=True, help="comma-separated method names, e.g. qio,ga,random")
    p.add_argument("--repeats", type=int, default=5, help="runs per method, with seeds 0..N-1 (default 5)")
    p.add_argument("--target", type=float, help="objective value that counts as reached (default: best found)")


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare_methods

    config = config_from_args(args)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods or args.repeats < 1:
        raise StudyError("--methods needs at least one name and --repeats at least 1")
    summary = compare_methods(config, methods, args.repeats, args.target, log)
    if args.json:
        emit_json(summary)
    else:
        table(["method", "best median", "IQR", "evals to target (median)", "reached", "wall s", "failures"],
              [[m["method"], m["best_median"], m["best_iqr"], m["evals_to_target_median"],
                f"{m['reached']}/{m['repeats']}", m["wall_seconds_median"], m["failures"]]
               for m in summary["methods"]])
        print(f"target {fmt(summary['target'])}; report: {summary['report']}")
    return 0


# -- apply / report / listings ----------------------------------------------------------------


def configure_apply(p: argparse.ArgumentParser) -> None:
    p.add_argument("result", type=Path, help="a result JSON (X.optimized.json, optimize --json output, or {name: value})")
    p.add_argument("fmu", type=Path, help="the FMU to write the values into")
    p.add_argument("-o", "--output", type=Path, help="output folder (default: beside the FMU)")


def cmd_apply(args: argparse.Namespace) -> int:
    from .writeback import apply_values

    res = apply_values(args.result, args.fmu, args.output, strict=False)
    data = {"outputs": {k: None if v is None else str(v) for k, v in res.files.items()},
            "verification": res.verification}
    if args.json:
        emit_json(data)
    else:
        for k, v in data["outputs"].items():
            print(f"{k:>5}: {v if v is not None else '(not written: failed verification)'}")
        by = ", ".join(res.trajectories.verified_by) or "none"
        print(f"verification: {'ok' if res.verification.get('ok') else 'FAILED'} "
              f"(max relative difference {fmt(res.verification.get('max_rel_diff'))}; importers ok: {by})")
    if not res.verification.get("ok"):
        problems = res.verification.get("problems") or ["unknown problem"]
        print(f"error: the written FMU failed verification ({problems[0]}); no FMU was written, "
              f"details in {res.json}", file=sys.stderr)
    return 0 if res.verification.get("ok") else int(ExitCode.VERIFICATION_FAILED)


def configure_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("db", type=Path, help="the study database (fmi_optimizer.db)")
    p.add_argument("--study-id", type=int, help="which study in the file (default: the latest)")
    p.add_argument("-o", "--output", type=Path, help="output file or folder")


@contextlib.contextmanager
def existing_study(db: Path, study_id: int | None) -> Iterator[tuple[Store, sqlite3.Row]]:
    """Open a database a study wrote and find one of its studies (the latest by default)."""
    if not db.exists():
        raise StudyError(f"{db}: no such database; pass the fmi_optimizer.db a study wrote")
    store = Store(db)
    try:
        yield store, store.study(study_id)
    finally:
        store.close()


def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    with existing_study(args.db, args.study_id) as (store, row):
        stored = json.loads(row["config"])  # the study's own plugins folder: its plugins add their sections
        folder = stored.get("raw", {}).get("plugins_dir")
        host = load_host(Path(stored.get("base_dir", ".")) / folder if folder else None)
        path = write_report(store, int(row["id"]), args.output or args.db.parent / "report.html", pm=host.pm)
    emit_json({"report": str(path)}) if args.json else print(path)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    with existing_study(args.db, args.study_id) as (store, row):
        sid = int(row["id"])
        folder = args.output or args.db.parent
        folder.mkdir(parents=True, exist_ok=True)
        files = {"csv": str(store.export_csv(sid, folder / f"study-{sid}.csv")),
                 "json": str(store.export_json(sid, folder / f"study-{sid}.json"))}
    emit_json(files) if args.json else print("\n".join(files.values()))
    return 0


def configure_listing(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plugins-dir", type=Path, help="also load plugin .py files from this folder")


def cmd_methods(args: argparse.Namespace) -> int:
    host = load_host(args.plugins_dir)
    rows: list[dict[str, Any]] = [{"name": e.cls.name, "aliases": list(e.cls.aliases), "summary": e.cls.summary, "source": e.source,
             "capabilities": e.cls.capabilities.to_dict()} for e in host.methods.entries()]
    if args.json:
        emit_json(rows)
    else:
        table(["method", "source", "kinds", "noisy", "multi-obj", "summary"],
              [[r["name"], r["source"], ",".join(r["capabilities"]["kinds"]), r["capabilities"]["noisy"],
                r["capabilities"]["multi_objective"], r["summary"]] for r in rows])
    _report_plugin_errors(host)
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    host = load_host(args.plugins_dir)
    rows: list[dict[str, Any]] = [{"name": p.name, "source": p.source, "version": p.version, "hooks": p.hooks, "methods": p.methods,
             "error": p.error} for p in host.plugins]
    if args.json:
        emit_json(rows)
    else:
        table(["plugin", "source", "version", "methods", "hooks", "status"],
              [[r["name"], r["source"], r["version"], ",".join(r["methods"]), ",".join(r["hooks"]),
                ("FAILED: " + r["error"]) if r["error"] else "ok"] for r in rows])
    _report_plugin_errors(host)
    return 0


def _report_plugin_errors(host: Host) -> None:
    for p in host.errors:
        log(f"warning: plugin {p.name} ({p.source}) failed: {p.error}")


__all__ = ["FmiOptimizerError"]
