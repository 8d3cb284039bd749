"""``fmi-optimizer calibrate STUDY.toml`` and ``fmi-optimizer check STUDY.toml --data new.csv
[--recalibrate]``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fmi_optimizer.cli.output import emit_json, log
from fmi_optimizer.cli.terminal import ProgressBar, fmt, table
from fmi_optimizer.errors import ExitCode


def configure_calibrate(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", type=Path, help="the study file (TOML) with a [calibration] section")
    p.add_argument("--no-writeback", action="store_true", help="do not write the calibrated FMU")


def cmd_calibrate(args: argparse.Namespace) -> int:
    from fmi_optimizer.calibration.calibrate import calibrate
    from fmi_optimizer.cli.commands import config_from_args

    config = config_from_args(args)
    bar = ProgressBar(config.name)
    try:
        result = calibrate(config, log=log, progress=bar, write_back=not args.no_writeback)
    finally:
        bar.close()
    data = result.to_json()
    if args.json:
        emit_json(data)
    else:
        _print_calibration(data)
    ver = result.outcome.verification
    if ver is not None and not ver.get("ok", False):
        return int(ExitCode.VERIFICATION_FAILED)
    return 0


def _print_calibration(data: dict[str, Any]) -> None:
    ev = data["evaluations"]
    print(f"\ncalibration of {data['study']!r} with {data['method']} + least squares: {ev['total']} "
          f"evaluations ({ev['method']} method, {ev['refine']} refinement) in {data['wall_seconds']:.1f} s")
    ident = data["identifiability"]
    table(["parameter", "value", "rel. std error", "identifiable"],
          [[n, p["value"], p["rel_std_error"], "yes" if p["identifiable"] else "NO"]
           for n, p in ident["parameters"].items()])
    for w in ident["warnings"]:
        print(f"warning: {w}")
    _print_fidelity(data["fidelity"])
    for k, v in data["outputs"].items():
        if v:
            print(f"{k:>18}: {v}")


def _print_fidelity(fidelity: dict[str, dict[str, dict[str, float]]]) -> None:
    print()
    table(["window", "output", "rmse", "nrmse", "mae", "bias", "r2", "max abs", "lag s"],
          [[w, o, m["rmse"], m["nrmse"], m["mae"], m["bias"], m["r2"], m["max_abs_error"], m["lag"]]
           for w, per in fidelity.items() for o, m in per.items()])


def cmd_check(args: argparse.Namespace) -> int:
    from fmi_optimizer.calibration.drift import check, recalibrate
    from fmi_optimizer.cli.commands import config_from_args

    config = config_from_args(args)
    result = check(config, args.data, inputs=args.inputs, log=log)
    data: dict[str, Any] = {"check": result.to_json()}
    code = int(ExitCode.DRIFT_DETECTED) if result.drift else 0
    if result.drift and args.recalibrate:
        bar = ProgressBar(config.name)
        try:
            cal = recalibrate(config, args.data, inputs=args.inputs, log=log, progress=bar)
        finally:
            bar.close()
        after = check(config, args.data, inputs=args.inputs, log=log)
        data["recalibration"] = cal.to_json()
        data["after"] = after.to_json()
        code = int(ExitCode.DRIFT_DETECTED) if after.drift else 0
    if args.json:
        emit_json(data)
    else:
        print(f"drift check on {args.data}: {'DRIFT' if result.drift else 'ok'}")
        for x in result.exceeded:
            print(f"  exceeded: {x}")
        _print_fidelity({"check": result.fidelity})
        print(f"report: {fmt(result.report)}")
        if "after" in data:
            after_j = data["after"]
            print("\nrecalibrated: " + ", ".join(f"{k} = {fmt(v)}" for k, v in cal.values.items()))
            print(f"after recalibration: {'still DRIFT' if after_j['drift'] else 'ok'}; new FMU "
                  f"{data['recalibration']['outputs'].get('fmu')}")
            _print_fidelity({"check": after_j["fidelity"]})
            print(f"report: {fmt(after.report)}")
    return code
