"""Drop folder: optimize every ``X.fmu`` that has ``X.toml`` beside it; ``--watch`` keeps picking up new ones."""

from __future__ import annotations

import argparse
import json
import time
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ExitCode, FmiOptimizerError, StudyError


@dataclass
class FolderState:
    """What has been handled, so --watch acts once per file version."""

    done: dict[Path, float] = field(default_factory=dict)
    sizes: dict[Path, int] = field(default_factory=dict)
    failures: int = 0
    successes: int = 0
    studies: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)


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
        study = listed.get(fmu.resolve()) or (fmu.with_suffix(".toml") if fmu.with_suffix(".toml").exists() else None)
        pairs.append((fmu, study))
    return pairs


def _complete(fmu: Path, state: FolderState) -> bool:
    """A file counts as complete when its size is stable between two scans and it is a readable zip."""
    size = fmu.stat().st_size
    stable = state.sizes.get(fmu) == size
    state.sizes[fmu] = size
    return stable and zipfile.is_zipfile(fmu)


def scan(folder: Path, args: argparse.Namespace, state: FolderState, watching: bool) -> None:
    from .cli import log
    from .commands import _finish, _run_one, config_from_args
    from .templates import write_template

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
                log(f"{fmu.name}: no study file; wrote the template {path.name}: uncomment parameters, define KPIs "
                    "and [objective], then it will be picked up")
            except FmiOptimizerError as exc:
                _skip(state, fmu, exc)
            continue
        try:
            config = config_from_args(args, study)
            if args.out is None:
                config = config.with_overrides(out_dir=folder / "results" / fmu.stem)
            outcome = _run_one(config, args)
            if args.json:
                state.studies.append(outcome.to_json())
                if watching:  # one JSON line per study while watching
                    print(json.dumps(outcome.to_json(), default=str), flush=True)
            else:
                _finish(outcome, args)
            state.successes += 1
        except FmiOptimizerError as exc:
            _skip(state, fmu, exc)
            if watching:
                state.done[fmu] = max(fmu.stat().st_mtime, study.stat().st_mtime)


def _skip(state: FolderState, fmu: Path, exc: FmiOptimizerError) -> None:
    from .cli import log

    log(f"{fmu.name}: skipped: {exc}")
    state.failures += 1
    state.skipped.append({"fmu": str(fmu), "error": str(exc), "exit_code": str(int(exc.exit_code))})


def run_folder(args: argparse.Namespace) -> int:
    folder: Path = args.folder
    if not folder.is_dir():
        raise StudyError(f"{folder}: not a folder; give a folder holding X.fmu + X.toml pairs")
    state = FolderState()
    if not args.watch:
        if not list(folder.glob("*.fmu")):
            raise StudyError(f"{folder}: holds no .fmu file; drop FMUs with study files (X.fmu + X.toml) in it")
        scan(folder, args, state, watching=False)
        if args.json:
            print(json.dumps({"folder": str(folder), "studies": state.studies, "skipped": state.skipped,
                              "templates": state.templates}, indent=2, default=str))
        return int(ExitCode.STUDY_FAILED) if state.failures else 0
    from .cli import log

    log(f"watching {folder} (Ctrl-C to stop)")
    try:
        while True:
            scan(folder, args, state, watching=True)
            time.sleep(args.interval)
    except KeyboardInterrupt:
        log(f"stopped watching: {state.successes} studies done, {state.failures} skipped")
        return 0
