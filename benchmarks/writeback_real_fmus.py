"""Write-back on FMUs exported by real tools: does the written FMU run with the new values in fmpy and libcosim?

Usage: python benchmarks/writeback_real_fmus.py [DIR] [--json OUT]

DIR defaults to ../shared/fmus-real relative to the repository (when it exists). The FMUs are only read
from there, never copied into the project. For each FMU the script picks one or two Real parameters whose
value changes the outputs (a few candidates are tried), writes an FMU with changed values
(``write_optimized_fmu``) and verifies it the way the product does: the written FMU with default
settings in fmpy and in libcosim, each in a fresh process, against the truth, plain fmpy
``simulate_fmu(original, start_values=v)``, at relative 1e-6 over the default experiment. Source-only FMUs
are compiled first the way the product does (``fmi_optimizer.fmu.archive.open_fmu``: fmpy.build into the cache);
an FMU that ships C sources gets a second row from a copy without its binaries/ (in a temporary folder), so
the binary the product compiles is checked too.
The written parameters are compared as well, so "values applied?" means the written FMU reports the
new values; "output change" is how much the values change the compared outputs (relative), 0 when the
outputs depend on inputs only. Rows whose *original* does not load or compile say "n/a (the original does not
run)": there is no truth to write back against. Exit code 1 when a written FMU failed verification. Prints a
Markdown table (docs/benchmarks.md, "Write-back on FMUs from real tools").
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DIR = REPO.parent / "shared" / "fmus-real"
RTOL = 1e-6
MAX_OUTPUTS = 12
MAX_TRIES = 8


def _outputs(variables: list[Any]) -> list[str]:
    numeric = [v for v in variables if v.kind in ("Real", "Integer", "Enumeration", "Boolean")]
    outs = [v.name for v in numeric if v.causality == "output"]
    return (outs or [v.name for v in numeric if v.causality == "local" and v.kind == "Real"])[:MAX_OUTPUTS]


def _changed(value: float) -> float:
    return value * 1.25 if value != 0.0 else 0.5


def _truth(fmu: Path, check: Any, values: dict[str, float]) -> np.ndarray:
    from fmpy import simulate_fmu

    from fmi_optimizer.fmu.fd_capture import capture_fds

    with capture_fds():
        return simulate_fmu(str(fmu), start_values=values, output=list(check.outputs), stop_time=check.stop_time,
                            output_interval=check.output_interval, validate=False)


def _effect(a: np.ndarray, b: np.ndarray, outputs: list[str]) -> float:
    worst = 0.0
    for name in outputs:
        x, y = np.asarray(a[name], dtype=float), np.asarray(b[name], dtype=float)
        scale = max(float(np.max(np.abs(x), initial=0.0)), float(np.max(np.abs(y), initial=0.0)))
        if scale > 0 and x.shape == y.shape:
            worst = max(worst, float(np.max(np.abs(x - y))) / scale)
    return worst


def _pick_values(runnable: Path, variables: list[Any], check: Any) -> tuple[dict[str, float], float]:
    """One or two Real parameters (changed by 25 %) that change the outputs, and how much they do."""
    from fmi_optimizer.writeback.proxy_fmu import carried, settable_before_init

    candidates = [v for v in variables if v.kind == "Real" and settable_before_init(v) and carried(v)
                  and v.causality in ("parameter", "input")]
    default = _truth(runnable, check, {})
    picked: dict[str, float] = {}
    effect = 0.0
    for var in candidates[:MAX_TRIES]:
        start = _start(runnable, var.name)
        if start is None:
            continue
        value = _changed(start)
        if var.maximum is not None and value > var.maximum or var.minimum is not None and value < var.minimum:
            value = start * 0.8 if start != 0.0 else (var.minimum or 0.0) * 0.5 + (var.maximum or 0.0) * 0.5
        try:
            run = _truth(runnable, check, {**picked, var.name: value})
        except Exception:  # a parameter the original rejects: try another
            continue
        gained = _effect(run, default, list(check.outputs))
        if gained > effect:
            picked[var.name], effect = value, gained
        if len(picked) == 2:
            break
    if not picked and candidates:
        start = _start(runnable, candidates[0].name) or 0.0
        picked[candidates[0].name] = _changed(start)
    return picked, effect


def _start(fmu: Path, name: str) -> float | None:
    from fmi_optimizer.writeback.proxy_fmu import read_model_description

    root = read_model_description(fmu)
    for sv in root.iter():
        if sv.get("name") == name:
            typed = sv if sv.get("start") is not None else next((c for c in sv if c.get("start") is not None), None)
            if typed is not None:
                try:
                    return float(str(typed.get("start")))
                except ValueError:
                    return None
    return None


def check_fmu(fmu: Path, work: Path, label: str | None = None) -> dict[str, Any]:
    from fmi_optimizer.fmu.archive import open_fmu
    from fmi_optimizer.writeback.proxy_fmu import read_model_description, scalar_variables
    from fmi_optimizer.writeback.write import check_settings_for, verify_written_fmu, write_optimized_fmu

    root = read_model_description(fmu)
    row: dict[str, Any] = {"fmu": label or fmu.name, "tool": (root.get("generationTool") or "(not stated)").split(" (")[0],
                           "fmi": root.get("fmiVersion"), "values": {}, "applied": "-", "fmpy": "-",
                           "libcosim": "-", "max_rel_diff": None, "error": ""}
    started = time.perf_counter()
    stage = "original"  # until the FMU is written, a failure is the original's (it does not load or compile)
    try:
        opened = open_fmu(fmu)
        runnable = Path(opened.runnable)
        row["compiled"] = opened.compiled_from_sources
        variables = scalar_variables(read_model_description(runnable))
        check = check_settings_for(runnable, _outputs(variables))
        values, effect = _pick_values(runnable, variables, check)
        row["values"], row["effect"] = values, effect
        stage = "write-back"
        written = write_optimized_fmu(runnable, values, work / f"{fmu.stem}.optimized.fmu")
        # the written parameters are compared too: the written FMU must report the new values
        compared = list(check.outputs) + [n for n in values if n not in check.outputs]
        result = verify_written_fmu(runnable, written, values, compared, check.stop_time,
                                    check.output_interval, RTOL, start_time=check.start_time)
        row["fmpy"] = result.importers.get("fmpy", "-")
        row["libcosim"] = result.importers.get("libcosim", "-")
        row["max_rel_diff"] = result.max_rel_diff if math.isfinite(result.max_rel_diff) else None
        reported = all(result.per_output.get(n, math.inf) <= RTOL for n in values)
        row["applied"] = "yes" if reported else "no"
        row["output_change"] = effect
        row["error"] = "; ".join(result.problems)[:300]
    except Exception as exc:
        row["error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]
        if stage == "original":
            row["fmpy"] = row["libcosim"] = "n/a (the original does not run)"
    row["seconds"] = round(time.perf_counter() - started, 1)
    return row


def _source_only(fmu: Path, work: Path) -> list[Path]:
    """For an FMU that ships C sources: a copy without binaries/ (in the temporary folder), so the row
    shows write-back on the binary the product compiles from the sources."""
    import zipfile

    with zipfile.ZipFile(fmu) as zin:
        if not any(n.startswith("sources/") and n.endswith(".c") for n in zin.namelist()):
            return []
        copy = work / "sources-only" / fmu.name
        copy.parent.mkdir(exist_ok=True)
        with zipfile.ZipFile(copy, "w", zipfile.ZIP_DEFLATED) as zout:
            for item in zin.infolist():
                if not item.filename.startswith("binaries/"):
                    zout.writestr(item, zin.read(item))
    return [copy]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v:.6g}" for k, v in value.items()) or "-"
    return str(value).replace("|", "/")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", nargs="?", type=Path, default=DEFAULT_DIR, help=f"folder of FMUs (default {DEFAULT_DIR})")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    if not args.dir.is_dir():
        print(f"no FMU folder {args.dir}; pass the folder of real FMUs", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="fmio-wb-real-") as tmp:
        for fmu in sorted(args.dir.glob("*.fmu")):
            for variant in [fmu, *_source_only(fmu, Path(tmp))]:
                label = fmu.name if variant == fmu else f"{fmu.name} (binaries removed, compiled from sources)"
                rows.append(check_fmu(variant, Path(tmp), label))
                print(f"{label}: fmpy {rows[-1]['fmpy']}, libcosim {rows[-1]['libcosim']} "
                      f"({rows[-1]['seconds']} s)", file=sys.stderr)
    header = ["FMU", "tool", "FMI", "values written", "values applied?", "output change", "fmpy ok?",
              "libcosim ok?", "max rel diff", "error"]
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for r in rows:
        cells = [r["fmu"], r["tool"], r["fmi"],
                 r["values"], r["applied"], r.get("output_change"), r["fmpy"], r["libcosim"], r["max_rel_diff"],
                 r["error"]]
        print("| " + " | ".join(_cell(c) for c in cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str) + "\n")
    def passed(r: dict[str, Any]) -> bool:
        if r["fmpy"].startswith("n/a"):
            return True  # nothing to write back against: the original itself does not run
        return r["fmpy"] == "ok" and (r["libcosim"] == "ok" or r["libcosim"].startswith("not run"))

    return 0 if all(passed(r) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
