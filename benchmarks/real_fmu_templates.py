"""Check: the ``init`` template of every FMU exported by a real tool runs once uncommented.

Reads the FMUs in ``../shared/fmus-real`` beside the repository (or ``--folder``), never copies them into the
project. For each FMU: open it as ``inspect`` does, write its template, remove the ``# `` of each entry line
one at a time (with the first KPI and the objective a study needs) and parse and bind the study; then run one
short random study with every parameter entry uncommented. Prints one row per FMU; exit 1 when a template
line does not parse or bind (a failed simulation is reported, not counted: real FMUs fail for their own
reasons, e.g. FMI 1.0 is not supported for studies).

    python benchmarks/real_fmu_templates.py [--folder DIR] [--no-run]
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
from pathlib import Path

from fmi_optimizer.cli.templates import template_text
from fmi_optimizer.errors import FmiOptimizerError
from fmi_optimizer.fmu.twin import Twin
from fmi_optimizer.host.kpi import builtin_registry
from fmi_optimizer.runner.run import run_study
from fmi_optimizer.study.config import load_study
from fmi_optimizer.study.problem import StudyProblem

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "fmus-real"


def _uncommented(lines: list[str], chosen: set[int]) -> str:
    return "\n".join(line[2:] if i in chosen else line for i, line in enumerate(lines)) + "\n"


def check(fmu: Path, work: Path, run: bool) -> dict[str, object]:
    local = Path(shutil.copy(fmu, work / fmu.name))
    row: dict[str, object] = {"fmu": fmu.name}
    try:
        twin = Twin.open(local)
    except FmiOptimizerError as exc:
        return {**row, "opened": f"refused: {exc}"}
    row.update(opened="ok", tool=twin.generation_tool, fmi=f"{twin.fmi_version} {'+'.join(twin.kinds)}")
    lines = template_text(twin).splitlines()
    section, sections = "", {}
    for i, line in enumerate(lines):
        section = line.split("]")[0].strip("[") if line.startswith("[") else section
        sections[i] = section
    entries = [i for i, line in enumerate(lines) if line.startswith("# ")]
    base = {next(i for i in entries if sections[i] == s) for s in ("kpis", "objective")}
    study, bad = work / f"{local.stem}.toml", []
    for i in entries:
        study.write_text(_uncommented(lines, base | {i}))
        try:
            config = load_study(study)
            if config.parameters:
                StudyProblem.build(config, twin, builtin_registry())
        except FmiOptimizerError as exc:
            bad.append(f"{lines[i]!r}: {exc}")
    row.update(entries=len(entries), bad=bad)
    if run:
        every = {i for i in entries if sections[i] in ("parameters", "fixed")}
        study.write_text(_uncommented(lines, base | every))
        config = dataclasses.replace(load_study(study), timeout=60.0).with_overrides(
            method="random", budget_evaluations=3, workers=1, out_dir=work / "out" / local.stem)
        try:
            counts = run_study(config, write_back=False, report=False).result.counts()
            row["run"] = f"{counts['ok']}/{counts['total']} ok"
        except FmiOptimizerError as exc:
            row["run"] = f"failed: {' '.join(str(exc).split())[:160]}"
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", type=Path, default=DEFAULT, help=f"folder of .fmu files (default {DEFAULT})")
    parser.add_argument("--no-run", action="store_true", help="only parse and bind the template lines")
    args = parser.parse_args(argv)
    fmus = sorted(args.folder.glob("*.fmu")) if args.folder.is_dir() else []
    if not fmus:
        print(f"no FMUs in {args.folder}; nothing to check", file=sys.stderr)
        return 0
    failed = False
    with tempfile.TemporaryDirectory(prefix="fmio-real-") as tmp:
        for fmu in fmus:
            row = check(fmu, Path(tmp), not args.no_run)
            bad = row.get("bad") or []
            failed |= bool(bad)
            print(f"{row['fmu']:<24} {row.get('fmi', ''):<12} {str(row.get('tool', ''))[:40]:<40} "
                  f"{row['opened'] if row['opened'] != 'ok' else ''}"
                  f"{row.get('entries', 0)} entries, {len(bad)} bad; study: {row.get('run', '-')}")  # type: ignore[arg-type]
            for b in bad:  # type: ignore[attr-defined]
                print(f"    {b}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
