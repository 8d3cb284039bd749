"""Write a commented study-file template listing every tunable parameter and output of an FMU."""

from __future__ import annotations

from pathlib import Path

from .errors import OutputError, StudyError
from .twin import Twin
from .variables import Variable


def template_text(twin: Twin) -> str:
    e = twin.default_experiment
    lines = [
        f"# Study file for {twin.path.name} ({twin.model_name}, FMI {twin.fmi_version}).",
        "# Uncomment the parameters to optimize, define KPIs and the objective, then run",
        f"#   fmi-optimizer optimize {twin.path.stem}.toml",
        "# Reference: docs/study-file.md",
        "",
        "[twin]",
        f'fmu = "{twin.path.name}"',
        f"stop_time = {e.stop_time if e.stop_time is not None else 1.0}",
        "# output_interval = 0.1",
        "",
        "[parameters]   # name = {} takes the FMU's min/max; narrow with min/max, discretize with levels",
    ]
    for v in twin.tunable_parameters:
        lines.append(f"# {v.name} = {_spec(v)}{_comment(v)}")
    lines += ["", "[kpis]   # name = \"reducer(output, args)\": final mean max min integral rms time_above "
                  "settling_time overshoot"]
    for v in twin.outputs:
        lines.append(f'# {_ident(v.name)}_max = "max({v.name})"{_comment(v)}')
    lines += [
        "",
        "[objective]",
        "# minimize = { some_kpi = 1.0 }",
        "",
        "[constraints]",
        '# some_kpi = "<= 1.0"',
        "",
        "[method]",
        'name = "auto"',
        "budget = { evaluations = 100 }",
        "seed = 0",
        "",
        "[evaluation]",
        "# workers = 2",
        "timeout = 60.0",
        "",
    ]
    return "\n".join(lines)


def _spec(v: Variable) -> str:
    if v.type == "Enumeration":
        return "{}  # items: " + ", ".join(n for n, _ in v.items)
    if v.min is None or v.max is None:
        return "{ min = ?, max = ? }"
    return "{}"


def _comment(v: Variable) -> str:
    bits = [f"start {v.start}" if v.start is not None else "",
            f"[{v.min:g}, {v.max:g}]" if v.min is not None and v.max is not None else "",
            v.unit, v.description]
    text = ", ".join(b for b in bits if b)
    return f"   # {text}" if text and "#" not in _spec(v) else (f" {text}" if text else "")


def _ident(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name).strip("_")


def write_template(fmu: Path, output: Path | None = None, force: bool = False) -> Path:
    twin = Twin.open(fmu)
    path = output or fmu.with_suffix(".toml")
    if path.exists() and not force:
        raise StudyError(f"{path}: already exists; pass --force to overwrite or -o to write elsewhere")
    try:
        path.write_text(template_text(twin))
    except OSError as exc:
        raise OutputError(f"{path}: cannot write the study file ({exc.strerror or exc}); choose a writable path") from exc
    return path
