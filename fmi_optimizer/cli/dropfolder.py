"""Drop folder: optimize every ``X.fmu`` that has ``X.toml`` beside it; ``--watch`` keeps picking up new
ones."""

from __future__ import annotations

import argparse
import json
import time
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmi_optimizer.errors import ExitCode, FmiOptimizerError, StudyError


@dataclass
class FolderState:
    """What has been handled, so --watch acts once per file version."""

    done: dict[Path, float] = field(default_factory=dict)
    sizes: dict[Path, int] = field(default_factory=dict)
    waiting: dict[Path, str] = field(default_factory=dict)  # why a file is not taken yet, as last told
    failures: int = 0
    successes: int = 0
    studies: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)
    summary: list[dict[str, Any]] = field(default_factory=list)  # one row per study, for the closing table
    folders: dict[Path, Path] = field(default_factory=dict)  # output folder -> the FMU it was given to
    verification_failed: int = 0


def study_pairs(folder: Path) -> list[tuple[Path, Path | None]]:
    """(fmu, study file or None) for every FMU in the folder; fmi_optimizer.toml may list studies."""
    listed: dict[Path, Path] = {}
    index = folder / "fmi_optimizer.toml"
    if index.exists():
        data = tomllib.loads(index.read_text())
        for entry in data.get("studies", []):
            study = folder / entry
            raw = tomllib.loads(study.read_text())
            listed[(folder / raw.get("twin", {}).get("fmu", "")).resolve()] = study
    pairs = []
    for fmu in sorted(folder.glob("*.fmu")):
        study = listed.get(fmu.resolve()) or (fmu.with_suffix(".toml") if fmu.with_suffix(".toml").exists()
                                              else None)
        pairs.append((fmu, study))
    return pairs


def _complete(fmu: Path, state: FolderState) -> bool:
    """A file counts as complete when its size is stable between two scans and it is a readable zip. Why a
    file is not taken yet is told once per reason, so a user who dropped it knows it was seen."""
    from fmi_optimizer.cli.output import log

    size = fmu.stat().st_size
    stable = state.sizes.get(fmu) == size
    state.sizes[fmu] = size
    if not stable:
        reason = "waiting until its size stays the same between two scans (still being copied?)"
    elif not zipfile.is_zipfile(fmu):
        reason = "its size is stable but it is not a complete zip archive; waiting for the rest of the copy"
    else:
        state.waiting.pop(fmu, None)
        return True
    if state.waiting.get(fmu) != reason:
        state.waiting[fmu] = reason
        log(f"{fmu.name}: {reason}")
    return False


def scan(folder: Path, args: argparse.Namespace, state: FolderState, watching: bool) -> None:
    from fmi_optimizer.cli.commands import config_from_args, finish, run_one
    from fmi_optimizer.cli.output import log
    from fmi_optimizer.cli.templates import write_template
    from fmi_optimizer.runner.run import finished_study

    for fmu, study in study_pairs(folder):
        stamp = max(fmu.stat().st_mtime, study.stat().st_mtime if study else 0.0)
        if state.done.get(fmu) == stamp:
            continue
        if watching and not _complete(fmu, state):
            continue
        state.done[fmu] = stamp
        if study is None:
            try:
                path = write_template(fmu)
                state.templates.append(str(path))
                log(f"{fmu.name}: no study file; wrote the template {path.name}: uncomment parameters, "
                    "define KPIs and [objective], then it will be picked up")
            except FmiOptimizerError as exc:
                _skip(state, fmu, exc)
            continue
        try:
            config = config_from_args(args, study)
            config = config.with_overrides(out_dir=study_folder(folder, args.out, config.name, fmu, state))
            write = not getattr(args, "no_writeback", False)
            ran = finished_study(config, args.study_host, write) if watching else None
            if ran is not None:  # a restarted watcher leaves what it already did alone
                log(f"{fmu.name}: already optimized (study {ran} in {config.out_dir}); edit {study.name} or "
                    "replace the FMU to optimize it again")
                continue
            outcome = run_one(config, args)
            row = summary_row(outcome)
            state.summary.append(row)
            state.successes += 1  # counted before it is shown: a stop right after the output still counts it
            if row["verified"] == "FAILED":
                state.verification_failed += 1
            if args.json:
                state.studies.append(outcome.to_json())
                if watching:  # one JSON line per study while watching
                    print(json.dumps(outcome.to_json(), default=str), flush=True)
            elif watching:
                finish(outcome, args)
        except FmiOptimizerError as exc:
            _skip(state, fmu, exc)
            if watching:
                state.done[fmu] = max(fmu.stat().st_mtime, study.stat().st_mtime)


def _skip(state: FolderState, fmu: Path, exc: FmiOptimizerError) -> None:
    from fmi_optimizer.cli.output import log

    log(f"{fmu.name}: skipped: {exc}")
    state.failures += 1
    where = str(fmu.resolve())  # as the studies that ran give it
    state.skipped.append({"fmu": where, "error": str(exc), "exit_code": int(exc.exit_code)})
    state.summary.append({"study": fmu.stem, "fmu": where, "method": None, "objective": None, "best": None,
                          "best_feasible": None, "as_delivered": None,
                          "verified": f"skipped (exit {int(exc.exit_code)})", "folder": None, "files": {}})


def study_folder(folder: Path, out: Path | None, name: str, fmu: Path, state: FolderState) -> Path:
    """Each study of a folder run gets its own output folder: ``OUT/<study name>/`` with ``--out OUT``, else
    ``FOLDER/results/<fmu stem>/``; a name already given out in this run gets ``-<fmu stem>`` appended."""
    from fmi_optimizer.writeback.atomic import safe_name

    base = out / safe_name(name) if out is not None else folder / "results" / safe_name(fmu.stem, "twin")
    chosen = base
    n = 2
    while state.folders.get(chosen, fmu) != fmu:  # another FMU's study has it (the same FMU again: --watch)
        chosen = base.with_name(f"{base.name}-{safe_name(fmu.stem, 'twin')}" + (f"-{n}" if n > 2 else ""))
        n += 1
    state.folders[chosen] = fmu
    return chosen


def summary_row(outcome: Any) -> dict[str, Any]:
    """One study for the closing table of ``run``: its best objective against the twin as delivered (the
    baseline evaluation the study stores), both as the user stated them, and whether the FMU verified."""
    from fmi_optimizer.study.config import stated_objective

    terms = outcome.config.objective
    best = outcome.result.best
    base = outcome.baseline

    def stated(e: Any) -> float | None:
        return None if e is None or e.objective is None else stated_objective(terms, e.objective)[1]

    ver = outcome.verification
    verified = "no FMU written" if ver is None else ("yes" if ver.get("ok") else "FAILED")
    files = {k: v for k, v in outcome.to_json()["outputs"].items() if v}
    return {"study": outcome.result.name, "fmu": str(outcome.config.fmu), "method": outcome.result.method,
            "objective": stated_objective(terms, 0.0)[0], "best": stated(best),
            "best_feasible": None if best is None else best.feasible, "as_delivered": stated(base),
            "verified": verified, "folder": str(outcome.out_dir), "files": files}


def print_run_summary(rows: list[dict[str, Any]]) -> None:
    """The one closing table of ``run``: every study, its method, best against as delivered, verification."""
    from fmi_optimizer.cli.terminal import fmt, table

    def shown(r: dict[str, Any], key: str) -> str:
        v = r[key]
        if v is None:
            return "-"
        what = r.get("objective", "objective")
        return fmt(v) if what == "objective" else f"{what} {fmt(v)}"

    print()
    table(["study", "method", "best", "as delivered", "verified", "files"],
          [[r["study"], r["method"] or "-", shown(r, "best"), shown(r, "as_delivered"), r["verified"],
            r["folder"] or r["fmu"]] for r in rows])


def configure_run(p: argparse.ArgumentParser) -> None:
    """The options of ``run FOLDER``."""
    p.add_argument("folder", type=Path, help="folder with X.fmu + X.toml pairs")
    p.add_argument("--watch", action="store_true",
                   help="keep running and optimize FMUs dropped into the folder")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between folder scans with --watch")
    p.add_argument("--no-writeback", action="store_true", help="do not write optimized FMUs")


def run_folder(args: argparse.Namespace) -> int:
    folder: Path = args.folder
    if not folder.is_dir():
        raise StudyError(f"{folder}: not a folder; give a folder holding X.fmu + X.toml pairs")
    state = FolderState()
    if not args.watch:
        if not list(folder.glob("*.fmu")):
            raise StudyError(f"{folder}: holds no .fmu file; drop FMUs with study files (X.fmu + X.toml) in "
                             "it")
        scan(folder, args, state, watching=False)
        if args.json:
            print(json.dumps({"folder": str(folder), "summary": state.summary, "studies": state.studies,
                              "skipped": state.skipped, "templates": state.templates}, indent=2, default=str))
        elif state.summary:
            print_run_summary(state.summary)
        if state.failures:
            return int(ExitCode.STUDY_FAILED)
        return int(ExitCode.VERIFICATION_FAILED) if state.verification_failed else 0
    from fmi_optimizer.cli.output import log

    log(f"watching {folder} (Ctrl-C to stop)")
    try:
        while True:
            scan(folder, args, state, watching=True)
            time.sleep(args.interval)
    except KeyboardInterrupt:
        log(f"stopped watching: {state.successes} studies done, {state.failures} skipped")
        return 0
