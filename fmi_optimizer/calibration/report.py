"""Calibration HTML: measured-vs-twin overlays, residual plots, fidelity tables, identifiability and
history."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fmi_optimizer.calibration.history import Entry
from fmi_optimizer.calibration.identifiability import Identifiability
from fmi_optimizer.calibration.loss import CalibrationLoss
from fmi_optimizer.calibration.metrics import METRICS
from fmi_optimizer.reporting import CSS, figure_html, pyplot, table_html
from fmi_optimizer.writeback.atomic import write_text_atomic


def time_unit(span_seconds: float) -> tuple[float, str]:
    """(seconds per unit, unit name) for a time axis: seconds up to 10 minutes, hours up to 3 days, else days
    (a 10 s record plotted in days reads 0 to 0.0001)."""
    if span_seconds <= 600.0:
        return 1.0, "s"
    if span_seconds <= 3 * 86400.0:
        return 3600.0, "h"
    return 86400.0, "days"


WINDOW_COLOURS = {"train": "#2ca02c", "validation": "#ff7f0e", "check": "#9467bd"}


def overlay_plots(loss: CalibrationLoss, trajectory: tuple[np.ndarray, dict[str, np.ndarray]],
                  windows: Mapping[str, tuple[float, float]]) -> str:
    """Per output: measured vs twin over time (``windows``, the spans the fidelity table scores, shaded)
    and residuals over time + histogram."""
    plt = pyplot()
    time, outputs = trajectory
    parts = []
    whole = (-math.inf, math.inf)
    for name, a in loss.align(time, outputs, whole).items():
        fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(9, 8), gridspec_kw={"height_ratios": [3, 2, 2]})
        per, unit = time_unit(float(a.time[-1] - a.time[0]) if a.time.size else 0.0)
        scaled = a.time / per
        ax1.plot(scaled, np.where(a.mask, a.measured, np.nan), ".", ms=2, color="#444", label="measured")
        ax1.plot(scaled, a.simulated, "-", lw=1, color="#1f77b4", label="twin")
        for label, (lo, hi) in windows.items():
            lo_d, hi_d = max(lo, a.time[0]) / per, min(hi, a.time[-1]) / per
            ax1.axvspan(lo_d, hi_d, alpha=0.08, color=WINDOW_COLOURS.get(label, "#7f7f7f"), label=label)
        ax1.set_ylabel(name)
        ax1.set_xlabel(f"time [{unit}]")
        ax1.legend(fontsize=8, loc="best")
        res = np.where(a.mask, a.simulated - a.measured, np.nan)
        ax2.plot(scaled, res, ".", ms=2, color="#d62728")
        ax2.axhline(0, color="#888", lw=0.8)
        ax2.set_ylabel("residual (twin - measured)")
        ax2.set_xlabel(f"time [{unit}]")
        finite = res[np.isfinite(res)]
        if finite.size:
            ax3.hist(finite, bins=40, color="#d62728", alpha=0.7)
        ax3.set_xlabel("residual")
        ax3.set_ylabel("count")
        fig.tight_layout()
        parts.append(f"<h3>{html.escape(name)}</h3>" + figure_html(fig))
    return "\n".join(parts)


def windows_caption(windows: Mapping[str, tuple[float, float]]) -> str:
    """One line naming the shaded spans, in the study's seconds (open ends read "start" and "end")."""
    def edge(t: float) -> str:
        return ("start" if t < 0 else "end") if math.isinf(t) else f"{t:g} s"

    spans = ", ".join(f"{html.escape(k)} {edge(lo)} to {edge(hi)}" for k, (lo, hi) in windows.items())
    return f"<p class=muted>Shaded: {spans}.</p>"


def fidelity_table(fidelity: dict[str, dict[str, dict[str, float]]]) -> str:
    rows = [[w, out, *[m.get(k) for k in METRICS]] for w, per in fidelity.items() for out, m in per.items()]
    return table_html(["window", "output", *METRICS], rows, left=2)


def identifiability_section(ident: Identifiability) -> str:
    rows = [[n, v, s, e, r, "no" if n in ident.flagged else "yes"]
            for n, v, s, e, r in zip(ident.names, ident.values, ident.sensitivity, ident.std_error,
                                     ident.rel_std_error, strict=True)]
    parts = [table_html(["parameter", "value", "sensitivity", "std error", "rel. std error", "identifiable"],
                        rows)]
    parts.append("<p>Correlation of the estimates:</p>")
    parts.append(table_html(["", *ident.names],
                            [[n, *row] for n, row in zip(ident.names, ident.correlation, strict=True)]))
    if ident.warnings:
        parts.append("<ul>" + "".join('<li '
                                      f'class="bad">{html.escape(w)}</li>' for w in ident.warnings) + "</ul>")
    return "\n".join(parts)


def history_section(entries: Sequence[Entry]) -> str:
    if not entries:
        return "<p class=muted>no history yet</p>"
    rows = []
    for e in entries:
        fid = e.metrics.get("fidelity", {})
        win = fid.get("validation") or fid.get("check") or fid.get("train") or {}
        worst = max((m.get("nrmse", math.nan) for m in win.values()), default=math.nan)
        rows.append([e.id, e.kind, e.data_sha256[:12], worst,
                     "" if e.drift is None else ("DRIFT" if e.drift else "ok")])
    parts = [table_html(["#", "kind", "data sha256", "worst NRMSE", "drift"], rows, left=2)]
    if len(entries) > 1:
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(8, 3))
        ax.plot([r[0] for r in rows], [r[3] for r in rows], "o-")
        ax.set_xlabel("history entry")
        ax.set_ylabel("worst NRMSE")
        parts.append(figure_html(fig))
    return "\n".join(parts)


def write_calibration_report(path: Path, loss: CalibrationLoss, trajectory: Any,
                             fidelity: dict[str, dict[str, dict[str, float]]], ident: Identifiability | None,
                             entries: Sequence[Entry], title: str = "Calibration",
                             windows: Mapping[str, tuple[float, float]] | None = None) -> Path:
    """The calibration (or drift-check) report; ``windows`` are the spans scored, shaded in the plots
    (default: the calibration's train and validation windows)."""
    body = [f"<h1>{html.escape(title)}</h1>",
            f"<p>data: {html.escape(str(loss.series.path))} (sha256 {loss.series.sha256[:16]}...)</p>",
            "<h2>Fidelity</h2>", fidelity_table(fidelity),
            "<h2>Measured vs twin</h2>", windows_caption(windows or loss.windows()),
            overlay_plots(loss, trajectory, windows or loss.windows())]
    if ident is not None:
        body += ["<h2>Identifiability</h2>", identifiability_section(ident)]
    body += ["<h2>History</h2>", history_section(entries)]
    doc = (f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title>"
           f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>")
    return write_text_atomic(path, doc)
