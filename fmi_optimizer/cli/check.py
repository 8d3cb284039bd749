"""``fmi-optimizer check X.fmu``: how an FMU behaves under the optimizer, probed before a study trusts it.

A user who gets an FMU from a colleague runs this first.  Each probe runs the FMU for real, in worker
processes, and compares with the truth, a fresh instance in plain fmpy:

* **loads**: the archive, the model description, the binary for this platform (source FMUs are compiled);
* **moves**: which Real parameters move which outputs (the probes below need values that make a difference);
* **instances**: reset, snapshot and reinstantiate against plain fmpy's fresh runs (:mod:`instance_strategy`),
  and the time one run takes under each strategy that reproduces them (and under ``reload`` and ``process``,
  which always do);
* **chatter**: whether the FMU prints to stdout or stderr (the optimizer keeps that out of its protocols);
* **setup order** (FMI 2 co-simulation): whether a value set before ``fmi2SetupExperiment`` takes effect, or
  only one set after it (some tools overwrite earlier values there);
* **write-back**: an FMU with changed start values is written and verified by re-simulating it.

The verdict says what the optimizer will do with the FMU.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fmi_optimizer.engine.instance_strategy import PROVEN, prove
from fmi_optimizer.engine.pool import EngineOptions, LocalPool
from fmi_optimizer.engine.protocol import RunReply, RunRequest, disagreement
from fmi_optimizer.errors import FmiOptimizerError
from fmi_optimizer.fmu.simulator import REUSING, SimSettings
from fmi_optimizer.fmu.twin import Twin
from fmi_optimizer.fmu.variables import Variable

MAX_TRIED = 24  # Real parameters tried for an effect on the outputs, in batches until two are found
BATCH = 4
PERTURBATION = 0.2  # relative change of a parameter's start (or share of its range) in the probes
TIMED_RUNS = 5


@dataclass
class Probe:
    """One probe's outcome: ``ok`` True/False, or None when it did not apply."""

    name: str
    ok: bool | None
    detail: str
    seconds: float = 0.0


@dataclass
class CheckReport:
    """Everything ``check`` found, and what the optimizer will do (``plan``)."""

    fmu: str
    model: str
    fmi_version: str
    generation_tool: str
    interfaces: list[str]
    parameters: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    strategy: dict[str, Any] = field(default_factory=dict)
    seconds_per_run: dict[str, float] = field(default_factory=dict)
    plan: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(p.ok is not False for p in self.probes)

    def verdict(self) -> str:
        failed = [p.name for p in self.probes if p.ok is False]
        return "usable" if not failed else f"usable with care: {', '.join(failed)} failed"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdict"] = self.verdict()
        data["ok"] = self.ok
        return data


def perturbed(v: Variable, sign: float = 1.0) -> float:
    """A value of a Real parameter that differs from its start by PERTURBATION, kept inside min/max."""
    start = float(v.start) if isinstance(v.start, int | float) and not isinstance(v.start, bool) else 0.0
    lo = v.min if v.min is not None and math.isfinite(v.min) else -math.inf
    hi = v.max if v.max is not None and math.isfinite(v.max) else math.inf
    span = hi - lo if math.isfinite(hi - lo) else 0.0
    step = PERTURBATION * (span if span > 0 else (abs(start) if start != 0 else 1.0))
    value = start + sign * step
    if not lo <= value <= hi:
        value = start - sign * step
    return min(max(value, lo), hi)


def _real_parameters(twin: Twin) -> list[Variable]:
    return [v for v in twin.tunable_parameters if v.type == "Real" and v.array_of is None][:MAX_TRIED]


def default_settings(twin: Twin, stop_time: float | None) -> SimSettings:
    e = twin.default_experiment
    start = e.start_time or 0.0
    stop = stop_time if stop_time is not None else (e.stop_time if e.stop_time is not None else start + 1.0)
    return SimSettings(start_time=e.start_time, stop_time=stop, output_interval=(stop - start) / 100)


def choose_parameters(twin: Twin, settings: SimSettings, outputs: Sequence[str],
                      wanted: Sequence[str] = ()) -> tuple[list[str], dict[str, list[str]], RunReply]:
    """Parameters whose change moves at least one output (``wanted`` when given), the outputs each moves, and
    the run at the start values; each run in a fresh worker process, a few parameters at a time until two
    that move an output are found."""
    tried = [twin.variable(n) for n in wanted] if wanted else _real_parameters(twin)
    moves: dict[str, list[str]] = {}
    with LocalPool(twin.fmu.runnable, EngineOptions(workers=2, strategy="process", check_share=0.0)) as pool:
        (base,) = pool.run([RunRequest(0, {}, settings, tuple(outputs))])
        for first in range(0, len(tried), BATCH):
            if base.status != "ok" or (not wanted and len(moves) >= 2):
                break
            batch = tried[first:first + BATCH]
            requests = [RunRequest(i + 1, {v.name: perturbed(v)}, settings, tuple(outputs))
                        for i, v in enumerate(batch)]
            replies = {r.task_id: r for r in pool.run(requests)}
            for i, v in enumerate(batch):
                reply = replies[i + 1]
                moved = [o for o in outputs if reply.status == "ok"
                         and disagreement(_only(base, o), _only(reply, o))]
                if moved:
                    moves[v.name] = moved
    chosen = list(wanted) if wanted else list(moves)[:2]
    return chosen, moves, base


def _only(reply: RunReply, output: str) -> RunReply:
    return RunReply(reply.task_id, reply.status, reply.time, {output: reply.outputs[output]}, reply.error,
                    0.0, 0.0, "")


def _value_sets(twin: Twin, names: Sequence[str]) -> list[dict[str, float]]:
    variables = [twin.variable(n) for n in names]
    return [{}, {v.name: perturbed(v) for v in variables}, {v.name: perturbed(v, -1.0) for v in variables}]


def _time_strategy(fmu: Path, strategy: str, requests: Sequence[RunRequest]) -> float:
    """Wall seconds per run in one worker (after its first run), production checks off."""
    with LocalPool(fmu, EngineOptions(workers=1, strategy=strategy, check_share=0.0)) as pool:
        list(pool.run(requests[:1]))
        t0 = time.perf_counter()
        list(pool.run(requests))
        return (time.perf_counter() - t0) / len(requests)


def _chatter(fmu: Path, settings: SimSettings, outputs: Sequence[str]) -> Probe:
    """Simulate once in plain fmpy in a child process and see what reaches its stdout and stderr."""
    code = ("import sys, json; from fmpy import simulate_fmu; a = json.loads(sys.argv[1]); "
            "simulate_fmu(a['fmu'], validate=False, start_time=a['start'], stop_time=a['stop'], "
            "output_interval=a['dt'], output=a['outputs'])")
    args = json.dumps({"fmu": str(fmu), "start": settings.start_time, "stop": settings.stop_time,
                       "dt": settings.output_interval, "outputs": list(outputs)})
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, args], capture_output=True, text=True, timeout=600,
                          errors="replace")
    said = [f"{len(text.encode())} bytes on "
            f"{name}" + (f" (first line: {text.strip().splitlines()[0][:120]!r})"
                                                      if text.strip() else "")
            for name, text in (("stdout", proc.stdout), ("stderr", proc.stderr)) if text]
    if proc.returncode != 0:
        return Probe("chatter", None, f"plain fmpy failed (exit {proc.returncode}): {' '.join(said)}",
                     time.perf_counter() - t0)
    if not said:
        return Probe("chatter", True, "prints nothing", time.perf_counter() - t0)
    return Probe("chatter", True, "prints " + "; ".join(said) + ": kept out of the optimizer's protocols "
                 "(workers send it to a log, quoted for failed runs)", time.perf_counter() - t0)


def setup_order_main() -> None:
    """Child process of the setup-order probe: ``python -c ... JSON``; prints the final outputs as JSON."""
    from fmpy import extract, read_model_description
    from fmpy.fmi2 import FMU2Slave

    a = json.loads(sys.argv[1])
    md = read_model_description(a["fmu"], validate=False)
    folder = extract(a["fmu"])
    by_name = {v.name: v for v in md.modelVariables}
    fmu = FMU2Slave(guid=md.guid, unzipDirectory=folder, modelIdentifier=md.coSimulation.modelIdentifier,
                    instanceName="order-probe")
    fmu.instantiate()
    vrs = [by_name[n].valueReference for n in a["values"]]
    values = list(a["values"].values())
    if a["before"]:
        fmu.setReal(vrs, values)
    fmu.setupExperiment(startTime=a["start"], stopTime=a["stop"])
    if not a["before"]:
        fmu.setReal(vrs, values)
    fmu.enterInitializationMode()
    fmu.exitInitializationMode()
    t, n = a["start"], 0
    while t < a["stop"] - 1e-9 * max(1.0, abs(a["stop"])):
        fmu.doStep(currentCommunicationPoint=t, communicationStepSize=a["dt"])
        n += 1
        t = a["start"] + n * a["dt"]
    out = fmu.getReal([by_name[o].valueReference for o in a["outputs"]])
    fmu.terminate()
    fmu.freeInstance()
    json.dump(dict(zip(a["outputs"], out, strict=True)), sys.stdout)


def _setup_order(twin: Twin, settings: SimSettings, values: dict[str, float],
                 outputs: Sequence[str]) -> Probe:
    if not twin.fmi_version.startswith("2") or twin.model_description.coSimulation is None:
        return Probe("setup order", None, "probed for FMI 2 co-simulation only")
    t0 = time.perf_counter()
    finals = {}
    for before in (True, False):
        args = json.dumps({"fmu": str(twin.fmu.runnable), "values": values, "before": before,
                           "start": settings.start_time or 0.0, "stop": settings.stop_time,
                           "dt": settings.output_interval, "outputs": list(outputs)})
        proc = subprocess.run([sys.executable, "-c", "from fmi_optimizer.cli.check import setup_order_main; "
                               "setup_order_main()", args], capture_output=True, text=True, timeout=600)
        try:
            finals[before] = json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return Probe("setup order", None, f"the raw FMI 2 sequence failed (exit {proc.returncode})",
                         time.perf_counter() - t0)
    if finals[True] == finals[False]:
        return Probe("setup order", True, "a value set before fmi2SetupExperiment takes effect",
                     time.perf_counter() - t0)
    return Probe("setup order", True,
                 "a value set before fmi2SetupExperiment is overwritten there; set after it, "
                 "it takes effect (fmpy and the written FMU set values after it)", time.perf_counter() - t0)


def _write_back(twin: Twin, values: dict[str, float], settings: SimSettings, outputs: Sequence[str],
                moved: bool) -> Probe:
    from fmi_optimizer.writeback.write import check_settings_for, write_back

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fmio-check-") as tmp:
        check = check_settings_for(Path(twin.fmu.runnable), list(outputs), start_time=settings.start_time,
                                   stop_time=settings.stop_time, output_interval=settings.output_interval)
        try:
            result = write_back(Path(twin.fmu.runnable), values, Path(tmp), check=check, stem=twin.path.stem,
                                strict=False)
        except FmiOptimizerError as exc:
            return Probe("write-back", False, str(exc), time.perf_counter() - t0)
        v = result.verification
        importers = v.get("verified_by") or ["fmpy"]
        if result.ok:
            caveat = ("" if moved
                      else "; the values written do not move the outputs, so this shows only that it runs")
            return Probe("write-back", True,
                         f"the written FMU reproduces the changed values in {', '.join(importers)} "
                         f"(max relative difference {v.get('max_rel_diff')}){caveat}",
                         time.perf_counter() - t0)
        return Probe("write-back", False, "; ".join(v.get("problems") or ["verification failed"]),
                     time.perf_counter() - t0)


def check_fmu(path: Path, *, parameters: Sequence[str] = (), outputs: Sequence[str] = (),
              stop_time: float | None = None, write_back: bool = True,
              log: Callable[[str], None] = lambda s: None) -> CheckReport:
    """Run every probe on ``path`` (see the module docstring)."""
    t0 = time.perf_counter()
    twin = Twin.open(path)
    md = twin.model_description
    report = CheckReport(str(path), twin.model_name, twin.fmi_version, str(md.generationTool or "unknown"),
                         list(twin.interfaces))
    report.probes.append(Probe("loads", True, f"FMI {twin.fmi_version} {'+'.join(twin.interfaces)}, "
                               f"{len(twin.tunable_parameters)} tunable parameters, {len(twin.outputs)} "
                               "outputs",
                               time.perf_counter() - t0))
    outs = list(outputs) or [v.name for v in twin.outputs if v.type == "Real"]
    if not outs:
        raise FmiOptimizerError(f"{path.name}: has no Real outputs to probe; name one with --output")
    settings = default_settings(twin, stop_time)
    log(f"probing which parameters move {len(outs)} outputs ...")
    t1 = time.perf_counter()
    chosen, moves, base = choose_parameters(twin, settings, outs, parameters)
    if base.status != "ok":
        report.probes.append(Probe("runs", False, f"a run at the start values fails: {base.error}"))
        report.plan.append("fix the FMU or the simulation settings first: it does not run as delivered")
        return report
    if not chosen:
        chosen = [v.name for v in _real_parameters(twin)[:2]]
    report.parameters, report.outputs = chosen, outs
    detail = ("; ".join(f"{p} moves {', '.join(o[:3])}" for p, o in list(moves.items())[:4])
              or "no Real parameter tried moved an output")
    report.probes.append(Probe("moves", bool(moves) or None, detail, time.perf_counter() - t1))
    sets = _value_sets(twin, chosen)
    requests = [RunRequest(i, v, settings, tuple(outs)) for i, v in enumerate(sets)]
    log("proving an instance strategy against plain fmpy's fresh runs ...")
    verdict = prove(twin.fmu.runnable, requests, use_cache=False)
    report.strategy = verdict.to_json()
    report.probes.append(Probe("instances", True, verdict.reason, verdict.seconds))
    timed = [RunRequest(i, sets[i % len(sets)], settings, tuple(outs)) for i in range(TIMED_RUNS)]
    for strategy, outcome in [*verdict.trials.items(), ("reload", PROVEN), ("process", PROVEN)]:
        if outcome == PROVEN and strategy not in report.seconds_per_run:
            report.seconds_per_run[strategy] = _time_strategy(twin.fmu.runnable, strategy, timed)
    log("probing output, setup order and write-back ...")
    report.probes.append(_chatter(twin.fmu.runnable, settings, outs))
    report.probes.append(_setup_order(twin, settings, sets[1], outs))
    if write_back:
        report.probes.append(_write_back(twin, sets[1], settings, outs, any(p in moves for p in chosen)))
    report.plan = _plan(report, verdict.strategy, EngineOptions().check_share)
    return report


def _plan(report: CheckReport, strategy: str, check_share: float) -> list[str]:
    checks = (f"; workers repeat the first reused run and {check_share:.0%} of the rest on a fresh instance"
              if strategy in REUSING and check_share > 0 else "")
    plan = [f"runs each evaluation on a {strategy} instance"
            + (f" ({report.seconds_per_run[strategy]:.3g} s per run "
               "here)" if strategy in report.seconds_per_run
               else "") + checks]
    if not any(p.name == "moves" and p.ok for p in report.probes):
        plan.append("could not find a parameter that moves an output: name them with --parameters to probe "
                    "reuse and write-back meaningfully")
    wb = next((p for p in report.probes if p.name == "write-back"), None)
    if wb is not None:
        plan.append("writes optimized values into a verified FMU" if wb.ok else
                    "cannot deliver an optimized FMU (write-back failed); the .ssv parameter set still "
                    "applies")
    return plan


def render(report: CheckReport) -> str:
    """The terminal form of a report."""
    tool = ("no generationTool in its model description" if report.generation_tool == "unknown"
            else f"generated by {report.generation_tool}")
    lines = [f"{Path(report.fmu).name}: {report.model}, FMI {report.fmi_version}, "
             f"{'+'.join(report.interfaces)}, {tool}",
             f"probed with parameters {', '.join(report.parameters) or '-'} on outputs "
             f"{', '.join(report.outputs[:5])}{' ...' if len(report.outputs) > 5 else ''}", ""]
    for p in report.probes:
        mark = {True: "ok  ", False: "FAIL", None: "n/a "}[p.ok]
        lines.append(f"  {mark} {p.name:<12} {p.detail}")
    if report.seconds_per_run:
        lines.append("")
        lines.append("  seconds per run: " + ", ".join(f"{s} {t:.3g}" for s,
                                                       t in report.seconds_per_run.items()))
    lines += ["", f"verdict: {report.verdict()}", "the optimizer:"] + [f"  - {p}" for p in report.plan]
    return "\n".join(lines)
