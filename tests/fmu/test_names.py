"""Names real tools export (room.T, A[1], FMI 3 arrays) in templates, study files, inspect and KPIs; FMUs of a
kind fmi_optimizer cannot run refused when opened, with exit 4 and a remedy.

The twins: the sample twins and the faulty twin (built by conftest), the write-back test models, and two
hand-written test twins compiled by conftest's binary_twin (tests/twins/names2: FMI 2 with dotted, array-like
and keyword names and every parameter type; tests/twins/array3: FMI 3 with an array parameter and an array
output).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import fmpy
import numpy as np
import pytest

from fmi_optimizer.cli.templates import template_text
from fmi_optimizer.errors import ExitCode, StudyError, ValueValidationError
from fmi_optimizer.fmu.twin import Twin
from fmi_optimizer.host.kpi import builtin_registry
from fmi_optimizer.runner.run import run_study
from fmi_optimizer.study.config import load_study
from fmi_optimizer.study.problem import StudyProblem

SAMPLES = ["heat_sink", "servo_pid", "servo_pid_fmi3", "production_line", "building_zone"]
# test twin folder -> the name of its binary FMU (the write-back models keep the names test_writeback gives
# them, so the session compiles each once)
HANDWRITTEN = {"names2": "names2", "array3": "array3", "writeback_model": "wbmodel",
               "writeback_model3": "wbmodel3"}
NOT_IN_THE_RUN = {"faulty": {"fault", "fault_time"}}  # it would inject crashes and hangs: parsed, not run


@pytest.fixture
def handwritten(binary_twin: Callable[..., Path]) -> Callable[[str], Path]:
    return lambda name: binary_twin(name, HANDWRITTEN[name])


@pytest.fixture
def any_fmu(sample_fmu, faulty_fmu: Path, handwritten) -> Callable[[str], Path]:
    return lambda name: faulty_fmu if name == "faulty" else (sample_fmu(name) if name in SAMPLES else handwritten(name))


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fmi_optimizer.cli.main", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300, env={**os.environ})


def _variant(src: Path, dst: Path, rename: dict[str, str] | None = None,
             xml: Callable[[str], str] | None = None) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data, name = zin.read(item), item.filename
            name = (rename or {}).get(name, name)
            if xml is not None and name == "modelDescription.xml":
                data = xml(data.decode()).encode()
            zout.writestr(name, data)
    return dst


# -- templates: every line runs once uncommented -----------------------------------------------------------


def _sections(lines: list[str]) -> dict[int, str]:
    section, out = "", {}
    for i, line in enumerate(lines):
        if line.startswith("["):
            section = line.split("]")[0].strip("[")
        out[i] = section
    return out


def _uncommented(lines: list[str], chosen: set[int]) -> str:
    return "\n".join(line[2:] if i in chosen else line for i, line in enumerate(lines)) + "\n"


@pytest.mark.parametrize("name", [*SAMPLES, "faulty", *HANDWRITTEN])
@pytest.mark.slow
def test_every_template_line_runs_uncommented(any_fmu, tmp_path: Path, name: str) -> None:
    fmu = shutil.copy(any_fmu(name), tmp_path / f"{name}.fmu")
    twin = Twin.open(fmu)
    lines = template_text(twin).splitlines()
    assert all(line.startswith(("# ", "##")) for line in lines if line.startswith("#")), \
        "a comment is either an entry ('# ') or prose ('##')"
    section = _sections(lines)
    entries = [i for i, line in enumerate(lines) if line.startswith("# ")]
    assert not any("?" in lines[i].split("#")[1] for i in entries), "no placeholder that is not TOML"
    kpis = [i for i in entries if section[i] == "kpis"]
    objective = [i for i in entries if section[i] == "objective"]
    assert kpis and objective, "a template offers a KPI and an objective naming it"
    base = {kpis[0], objective[0]}
    reducers = builtin_registry()
    study = tmp_path / "study.toml"
    for i in entries:  # each entry alone (with the KPI and objective a study needs): parses and binds to the FMU
        study.write_text(_uncommented(lines, base | {i}))
        config = load_study(study)
        if config.parameters:
            StudyProblem.build(config, twin, reducers)
        else:
            twin.check_values(config.fixed)
    skip = NOT_IN_THE_RUN.get(name, set())
    every = {i for i in entries if section[i] in ("parameters", "fixed")
             and not any(re.match(rf'# "?{re.escape(s)}"? =', lines[i]) for s in skip)}
    study.write_text(_uncommented(lines, base | every))
    config = load_study(study)
    assert len(config.parameters) + len(config.fixed) == len(every)
    config = dataclasses.replace(config, timeout=30.0).with_overrides(
        method="random", budget_evaluations=3, workers=1, out_dir=tmp_path / "out")
    outcome = run_study(config, write_back=False, report=False)
    counts = outcome.result.counts()
    assert counts["total"] == 3 and counts["ok"] >= 1, (counts, [e.error for e in outcome.result.evaluations])


def test_template_quotes_names_and_writes_every_type(handwritten, tmp_path: Path) -> None:
    text = template_text(Twin.open(handwritten("names2")))
    assert '# "room.T0" = {}' in text and '# "gain.N" = {}' in text  # the FMU's min/max
    assert '# "room.k" = { min = 0.25, max = 1.0 }' in text  # no bounds: around the start value
    assert '# "wall.lambda" = { min = 0.0, max = 1.0 }' in text  # only min = 0, start 0
    assert '# n = { min = 1, max = 6 }' in text
    assert '# "A[1]" = { min = 0.5, max = 2.0 }' in text and '# "A[2]" = { min = -4.0, max = -1.0 }' in text
    assert '# "ctrl.mode" = { items = ["slow", "fast", "very fast"] }' in text
    assert '# "ctrl.on" = {}' in text
    fixed = text.split("[fixed]")[1].split("[kpis]")[0]
    assert '# "ctrl.label" = "say \\"hi\\""' in fixed  # strings: held fixed, never a range
    assert '# room_T_max = "max(room.T)"' in text and '# y_1_max = "max(y[1])"' in text
    # the time grid: the FMU's own step is offered (it once offered span/100, here 0.02 against a stepSize of
    # 0.01, and a 20-sim crane's 10 s against 0.001: the step is the communication step), each value sourced
    assert "stop_time = 2.0    ## the FMU's default experiment" in text
    assert "# output_interval = 0.01    ## the FMU's default stepSize" in text
    assert "# heat_in_max = \"max('heat.in')\"" in text  # 'in' is a Python keyword: the name is quoted


# -- the reader: quoted dotted keys are names, bare ones are refused with the remedy --------------------------


def _study(tmp_path: Path, fmu: Path, body: str) -> Path:
    shutil.copy(fmu, tmp_path / fmu.name)
    path = tmp_path / "s.toml"
    path.write_text(f'[twin]\nfmu = "{fmu.name}"\nstop_time = 1.0\n{body}')
    return path


@pytest.mark.parametrize("body, shown", [
    ('[parameters]\nroom.T0 = { min = 280, max = 300 }\n', "[parameters] room.T0"),
    ('[parameters]\nroom.T0 = {}\n', "[parameters] room.T0"),
    ('[parameters]\n"room.T0" = {}\n[fixed]\nctrl.on = false\n[kpis]\nt = "max(room.T)"\n', "[fixed] ctrl.on"),
    ('[parameters]\n"room.T0" = {}\n[kpis]\nroom.T_max = "max(room.T)"\n', "[kpis] room.T_max"),
    ('[parameters]\n"room.T0" = {}\n[kpis]\n"room.T_max" = "max(room.T)"\n[objective]\n'
     'minimize = { room.T_max = 1.0 }\n', "[objective] minimize: room.T_max"),
])
def test_bare_dotted_keys_are_refused_with_the_quoted_form(handwritten, tmp_path: Path, body: str, shown: str) -> None:
    path = _study(tmp_path, handwritten("names2"), body if "[objective]" in body else
                  body + '[objective]\nminimize = "t"\n')
    with pytest.raises(StudyError) as info:
        load_study(path)
    name = shown.split()[-1]
    assert shown in str(info.value) and f'quote it: "{name}" = ...' in str(info.value)
    assert "\n" not in str(info.value)


def test_names_with_dots_or_brackets_are_quoted_keys(handwritten, tmp_path: Path) -> None:
    path = _study(tmp_path, handwritten("names2"), '[parameters]\n"room.T0" = { min = 280, max = 300 }\n'
                  '"A[1]" = { min = 0, max = 2 }\n[fixed]\n"ctrl.label" = "x"\n"ctrl.on" = false\n'
                  '[kpis]\nt = "max(room.T)"\nh = "final(\'heat.in\')"\n[objective]\nminimize = "t"\n')
    config = load_study(path)
    assert set(config.parameters) == {"room.T0", "A[1]"} and config.fixed == {"ctrl.label": "x", "ctrl.on": False}
    problem = StudyProblem.build(config, Twin.open(config.fmu), builtin_registry())
    assert problem.space.names == ["room.T0", "A[1]"] and problem.outputs() == ("room.T", "heat.in")
    path.write_text(path.read_text().replace('"A[1]" = {', 'A[1] = {'))  # unquoted: a TOML syntax error
    with pytest.raises(StudyError, match=r'the key A\[1\] must be quoted: write "A\[1\]" = \.\.\.'):
        load_study(path)


# -- FMI 3 arrays: inspect, KPIs on elements, array parameters refused ----------------------------------------


@pytest.mark.slow
def test_inspect_shows_tool_kinds_and_array_dimensions(handwritten) -> None:
    fmu = handwritten("array3")
    out = cli("inspect", str(fmu))
    assert out.returncode == 0, out.stderr
    assert "(FMI 3.0 CS, generated by fmi_optimizer test twin (hand written))" in out.stdout
    assert re.search(r"^A\s+Float64\[2,2\]\s+1 0 0 2", out.stdout, re.M), out.stdout
    assert re.search(r"^y\s+Float64\[2\]", out.stdout, re.M), out.stdout
    data = json.loads(cli("inspect", str(fmu), "--json").stdout)
    assert data["generation_tool"] == "fmi_optimizer test twin (hand written)" and data["kinds"] == ["CS"]
    a = next(p for p in data["parameters"] if p["name"] == "A")
    assert a["dimensions"] == [2, 2] and a["start"] == [1.0, 0.0, 0.0, 2.0] and a["tunable"] == "no"
    assert a["elements"] == ["A[1,1]", "A[1,2]", "A[2,1]", "A[2,2]"]
    y = next(o for o in data["outputs"] if o["name"] == "y")
    assert y["dimensions"] == [2] and y["elements"] == ["y[1]", "y[2]"]
    pid = json.loads(cli("inspect", str(handwritten("names2")), "--json").stdout)
    assert pid["kinds"] == ["CS"] and next(p for p in pid["parameters"] if p["name"] == "A[1]")["dimensions"] == []


def test_kpis_on_array_output_elements(handwritten, tmp_path: Path) -> None:
    fmu = handwritten("array3")
    path = _study(tmp_path, fmu, '[parameters]\nk = { min = 0.5, max = 2 }\n[kpis]\ny1 = "final(y[1])"\n'
                  'y2 = "mean(y[2])"\n[objective]\nminimize = "y1"\n[method]\nname = "random"\n'
                  'budget = { evaluations = 3 }\n[evaluation]\nworkers = 1\n')
    outcome = run_study(load_study(path).with_overrides(out_dir=tmp_path / "out"), write_back=False, report=False)
    assert outcome.result.counts()["ok"] == 3
    for ev in outcome.result.evaluations:
        truth = fmpy.simulate_fmu(str(fmu), stop_time=1.0, start_values={"k": ev.values["k"]}, output=["y"])
        assert math.isclose(ev.kpis["y1"], float(truth["y"][-1, 0]), rel_tol=1e-9)
        assert math.isclose(ev.kpis["y2"], 2.0, rel_tol=1e-9)  # y[2] = A[2,1]*x + A[2,2] = 2
    traj = Twin.open(fmu).simulate({"k": 1.0}, outputs=["y[1]", "y[2]", "x"])
    assert np.allclose(traj.outputs["y[1]"], traj.outputs["x"]) and np.allclose(traj.outputs["y[2]"], 2.0)
    from fmi_optimizer.fmu.simulate_once import (
        simulate,  # the fresh-process run write-back verification compares
    )

    reply = simulate({"fmu": str(fmu), "outputs": ["x", "y[1]", "y[2]"], "stop_time": 1.0, "output_interval": 0.1,
                      "start_values": {"k": 1.0}})
    assert np.allclose(reply["outputs"]["y[1]"], reply["outputs"]["x"]) and np.allclose(reply["outputs"]["y[2]"], 2.0)


X_KPI = '[kpis]\nyy = "max(x)"\n'


@pytest.mark.parametrize("body, error, message", [
    ('[parameters]\n"A[1,2]" = { min = 0, max = 1 }\n' + X_KPI, StudyError,
     r"'A\[1,2\]' is an element of the FMI 3 array parameter 'A' \(Float64\[2,2\]\); fmi_optimizer cannot set or "
     r"optimize array parameters"),
    ('[parameters]\nA = {}\n' + X_KPI, ValueValidationError, r"'A' is an FMI 3 array parameter \(Float64\[2,2\]\)"),
    ('[parameters]\nk = {}\n[fixed]\n"A[2,2]" = 3.0\n' + X_KPI, ValueValidationError,
     r"'A\[2,2\]' is an element of the FMI 3 array parameter 'A'.*keep it at its start value"),
    ('[parameters]\nk = {}\n[kpis]\nyy = "max(y)"\n', StudyError,
     r"'y' is an array; name one element, e.g. \"max\(y\[1\]\)\""),
])
def test_array_parameters_and_bare_array_names_are_refused_clearly(handwritten, tmp_path: Path, body: str,
                                                                    error: type, message: str) -> None:
    path = _study(tmp_path, handwritten("array3"), body + '[objective]\nminimize = "yy"\n')
    config = load_study(path)
    with pytest.raises(error, match=message) as info:
        StudyProblem.build(config, Twin.open(config.fmu), builtin_registry())
    assert "\n" not in str(info.value)


# -- FMUs of a kind fmi_optimizer cannot run: refused when opened, exit 4 -------------------------------------


@pytest.mark.parametrize("case", ["scheduled_execution", "misnamed_binary", "interface_without_binary"])
@pytest.mark.slow
def test_unsupported_fmus_are_refused_early_with_exit_4(handwritten, tmp_path: Path, case: str) -> None:
    lib = fmpy.sharedLibraryExtension
    if case == "scheduled_execution":
        fmu = _variant(handwritten("array3"), tmp_path / "clocks.fmu", xml=lambda s: s.replace(
            '<CoSimulation modelIdentifier="array3" canHandleVariableCommunicationStepSize="true"/>',
            '<ScheduledExecution modelIdentifier="array3"/>'))
        message, body = "declares only FMI 3 scheduled execution, which fmi_optimizer does not support", ""
    elif case == "misnamed_binary":
        fmu = _variant(handwritten("names2"), tmp_path / "misnamed.fmu",
                       rename={f"binaries/{fmpy.platform}/names2{lib}": f"binaries/{fmpy.platform}/Names_Room{lib}"})
        message = (f"its binary for this platform is Names_Room{lib}, but its modelIdentifier 'names2' needs "
                   f"binaries/{fmpy.platform}/names2{lib}; the FMU was exported inconsistently: re-export it (or "
                   f"rename the binary inside the archive to names2{lib})")
        body = ""
    else:  # model exchange declared under another identifier, no binary for it; the study asks for it
        fmu = _variant(handwritten("names2"), tmp_path / "cs_only_binary.fmu", xml=lambda s: s.replace(
            '<CoSimulation', '<ModelExchange modelIdentifier="names2_me"/>\n  <CoSimulation'))
        message = ("has no binary for its ME interface (modelIdentifier 'names2_me') on this platform; set [twin] "
                   'interface = "cs", or re-export the FMU')
        body = 'interface = "me"\n'
    study = tmp_path / "s.toml"
    study.write_text(f'[twin]\nfmu = "{fmu.name}"\nstop_time = 1.0\n{body}[parameters]\nk = {{}}\n[kpis]\n'
                     'a = "max(x)"\n[objective]\nminimize = "a"\n')
    runs = [cli("optimize", str(study), "--no-writeback")]
    if case != "interface_without_binary":  # that FMU is fine for inspect (and for studies on co-simulation)
        runs.append(cli("inspect", str(fmu)))
    for out in runs:
        assert out.returncode == ExitCode.FMU_UNSUPPORTED, (out.returncode, out.stderr)
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert fmu.name in out.stderr and message in out.stderr, out.stderr
