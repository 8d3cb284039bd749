"""The ranking method's sections of the HTML report (hook ``fmio_report_sections``), built only from the
stored diagnostics: the selection and its guarantee, a table of scenarios, means with confidence and MCB
intervals, and the elimination history.  Values are shown in the KPI's own sense when the objective is a
single KPI (a maximized throughput stays positive, higher is better); otherwise in the minimized objective."""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass
from typing import Any

COLORS = {"selected": "#2ca02c", "possibly best": "#1f77b4", "eliminated": "#9a9a9a", "ruled out": "#c9c9c9",
          "dropped": "#d62728"}
MAX_ROWS = 60  # scenarios drawn per plot (the best ones); the table lists all


@dataclass(frozen=True)
class Sense:
    """How a minimized objective value maps to what the user reads: ``shown = sign * objective / weight``."""

    label: str
    sign: float
    weight: float
    higher_better: bool

    def value(self, objective: float | None) -> float | None:
        return None if objective is None else self.sign * objective / self.weight

    def interval(self, iv: list[float] | None) -> list[float] | None:
        if not iv:
            return None
        a, b = (self.sign * x / self.weight + 0.0 for x in iv)  # + 0.0: no '-0' in the table
        return [min(a, b), max(a, b)]


def sense_of(problem: dict[str, Any]) -> Sense:
    terms = problem.get("objective") or []
    if len(terms) == 1:
        t = terms[0]
        up = t.get("sense") == "maximize"
        return Sense(str(t.get("kpi")), -1.0 if up else 1.0, float(t.get("weight") or 1.0), up)
    return Sense("objective (minimized)", 1.0, 1.0, False)


def report_sections(study: dict[str, Any], result: dict[str, Any], evaluations: list[Any]) -> list[str] | None:
    """HTML sections for a study the ``ranking`` method ran; None for any other method."""
    if study.get("method") != "ranking":
        return None
    d = result.get("diagnostics") or {}
    if "scenarios" not in d:
        return ["<h2>Ranking &amp; selection</h2><p class=muted>No ranking diagnostics were stored "
                "(the study stopped before the method reported).</p>"]
    sense = sense_of(study.get("problem") or {})
    rows = scenario_rows(d, sense)
    return [
        summary_section(d, sense),
        "<h2>Scenarios</h2>" + scenario_table(rows, d, sense),
        "<h2>Means and comparisons with the best</h2>" + intervals_plot(rows, d, sense)
        + f"<p class=muted>{html.escape(mcb_caption(d, sense))}</p>",
        "<h2>Elimination history</h2>" + history_plot(rows, d)
        + "<p class=muted>Step plot: scenarios still in contention after each look (−m → n: m eliminated, n "
        "left). Bars: observations spent on each scenario; an eliminated scenario's bar ends at the look where "
        "it left, labelled with the reason.</p>",
    ]


# -- facts ---------------------------------------------------------------------------------------------
def status_of(name: str, d: dict[str, Any]) -> str:
    s = str(d["scenarios"][name].get("status", ""))
    if name == d.get("selected"):
        return "selected"
    if "dropped" in s or "failed" in s:
        return "dropped"
    if s.startswith("eliminated"):
        return "eliminated"
    return "possibly best" if name in (d.get("possibly_best") or []) else "ruled out"


def scenario_rows(d: dict[str, Any], sense: Sense) -> list[dict[str, Any]]:
    """One dict per scenario, best mean first (scenarios without data last)."""
    mcb = d.get("mcb_intervals") or {}
    out = []
    for name, s in d["scenarios"].items():
        out.append({
            "name": name,
            "mean": sense.value(s.get("mean")),
            "ci": sense.interval(s.get("ci95")),
            "mcb": sense.interval(mcb.get(name)),
            "observations": int(s.get("observations") or 0),
            "replications": int(s.get("replications") or 0),
            "failed": int(s.get("failed_replications") or 0),
            "status": status_of(name, d),
            "detail": str(s.get("status", "")),
        })
    sign = -1.0 if sense.higher_better else 1.0
    out.sort(key=lambda r: (r["mean"] is None, sign * (r["mean"] if r["mean"] is not None else 0.0)))
    return out


def summary_section(d: dict[str, Any], sense: Sense) -> str:
    sel = d.get("selected")
    delta = d.get("indifference_zone")
    head = f"Ranking &amp; selection — selected <b>{html.escape(str(sel))}</b>" if sel else \
        "Ranking &amp; selection — <span class=bad>no scenario selected</span>"
    setup = (f"Procedure <b>{html.escape(str(d.get('procedure')))}</b>, 1 − α = {1 - float(d.get('alpha', 0)):g}, "
             f"δ = {delta if delta is not None else 'none'}, n0 = {d.get('n0')}, batch = {d.get('batch')}, "
             f"common random numbers {'on' if d.get('common_random_numbers') else 'off'}; "
             f"{d.get('replications_total')} replications in total over {len(d['scenarios'])} scenarios.")
    parts = [f"<h2>{head}</h2>", f"<p><b>Guarantee:</b> {html.escape(str(d.get('guarantee')))}.</p>", f"<p>{setup}</p>"]
    best = d.get("possibly_best") or []
    parts.append(f"<p>Possibly best ({len(best)}): {html.escape(', '.join(best)) or 'none'}.</p>")
    v = d.get("validation") or {}
    if v.get("replications"):
        ci = sense.interval(v.get("ci95"))
        ci_txt = f", 95 % CI [{ci[0]:.6g}, {ci[1]:.6g}]" if ci else ""
        parts.append(
            f"<p>Validation of the winner with {v['replications']} fresh replications "
            f"(of {v.get('requested')} requested): {html.escape(sense.label)} {sense.value(v['mean']):.6g}{ci_txt}; "
            f"during the selection: {_fmt(sense.value(v.get('selection_mean')))}.</p>")
    elif sel:
        parts.append("<p class=bad>The winner was not validated (no validation replication succeeded).</p>")
    warn = (d.get("normality") or {}).get("warning")
    if warn:
        parts.append(f"<p class=bad>Normality: {html.escape(str(warn))}.</p>")
    if d.get("failures"):
        parts.append(f"<p class=bad>{len(d['failures'])} replication(s) failed; see the diagnostics below.</p>")
    return "".join(parts)


def mcb_caption(d: dict[str, Any], sense: Sense) -> str:
    rival = "max" if sense.higher_better else "min"
    simul = ("simultaneous at 1 − α" if d.get("mcb_simultaneous")
             else "for orientation: this procedure does not make them simultaneous confidence intervals")
    verdict = ("an interval whose upper end is 0 says the scenario is not better than the best of the others, "
               "one whose lower end is above −δ that it is within δ of the best" if sense.higher_better else
               "an interval whose lower end is 0 says the scenario is not better than the best of the others, "
               "one whose upper end is below δ that it is within δ of the best")
    paired = (" With common random numbers the procedure compares paired differences, which are far more precise "
              "than these separate intervals: overlapping intervals do not contradict an elimination."
              if d.get("common_random_numbers") else "")
    return (f"Left: mean {sense.label} per scenario with its 95 % t confidence interval (from that scenario's own "
            f"observations; eliminated scenarios have few).{paired} Right: MCB interval for μ_i − {rival}_(j≠i) μ_j "
            f"(Nelson & Matejcik; {simul}); {verdict}; the shaded band is ±δ; an arrow marks an interval that "
            "continues beyond the window.")


# -- HTML pieces -----------------------------------------------------------------------------------------
def _fmt(x: float | None) -> str:
    return "" if x is None or not math.isfinite(x) else f"{x:.6g}"


def _iv(iv: list[float] | None) -> str:
    return "" if not iv else f"[{iv[0]:.4g}, {iv[1]:.4g}]"


def scenario_table(rows: list[dict[str, Any]], d: dict[str, Any], sense: Sense) -> str:
    head = ["scenario", f"mean {sense.label}", "95 % CI", "MCB interval", "observations", "replications",
            "failed", "status"]
    cls = {"selected": "ok", "dropped": "bad"}
    body = []
    for r in rows:
        c = cls.get(r["status"], "")
        cells = [r["name"], _fmt(r["mean"]), _iv(r["ci"]), _iv(r["mcb"]), r["observations"], r["replications"],
                 r["failed"]]
        tds = "".join(f'<td{" class=l" if i == 0 else ""}>{html.escape(str(v))}</td>' for i, v in enumerate(cells))
        body.append(f"<tr>{tds}<td class=\"l {c}\">{html.escape(r['detail'])}</td></tr>")
    ths = "".join(f'<th{" class=l" if i in (0, 7) else ""}>{html.escape(h)}</th>' for i, h in enumerate(head))
    note = (f"<p class=muted>Sorted best first ({'higher' if sense.higher_better else 'lower'} is better). "
            f"An observation is the mean of {d.get('batch')} replication(s).</p>")
    return f"<div class=scroll><table><tr>{ths}</tr>{''.join(body)}</table></div>{note}"


# -- plots -------------------------------------------------------------------------------------------------
def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any, alt: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _plt().close(fig)
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _finish(fig: Any, statuses: set[str]) -> None:
    """Lay the figure out with the status legend in a strip below the axes (never over a bar)."""
    from matplotlib.patches import Patch

    handles = [Patch(color=c, label=s) for s, c in COLORS.items() if s in statuses]
    strip = 0.3 / fig.get_figheight()
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0.0, strip, 1.0, 1.0))


def intervals_plot(rows: list[dict[str, Any]], d: dict[str, Any], sense: Sense) -> str:
    """Two panels sharing the scenario axis (best on top): mean ± 95 % CI, and the MCB interval."""
    shown = [r for r in rows if r["mean"] is not None][:MAX_ROWS]
    if not shown:
        return "<p class=muted>No scenario has data.</p>"
    plt = _plt()
    n = len(shown)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 1.0 + 0.24 * n), sharey=True,
                                 gridspec_kw={"width_ratios": [1.2, 1]})
    ys = list(range(n))[::-1]
    delta = float(d.get("indifference_zone") or 0.0) / sense.weight
    lim = mcb_limit(shown, delta)
    for y, r in zip(ys, shown, strict=True):
        color = COLORS[r["status"]]
        lo, hi = r["ci"] or (r["mean"], r["mean"])
        a1.plot([lo, hi], [y, y], color=color, lw=2)
        a1.plot(r["mean"], y, "o", color=color, ms=4)
        a1.annotate(f"{r['observations']}", (hi, y), xytext=(3, 0), textcoords="offset points", va="center",
                    fontsize=6, color="#555")
        if r["mcb"]:
            a, b = r["mcb"]
            a2.plot([max(a, -lim), min(b, lim)], [y, y], color=color, lw=3, solid_capstyle="butt")
            for edge, marker in ((-lim, "<"), (lim, ">")):  # an arrow where a bar leaves the window
                if (a < -lim and edge < 0) or (b > lim and edge > 0):
                    a2.plot([edge], [y], marker, color=color, ms=4, clip_on=False)
    if delta > 0:
        a2.axvspan(-delta, delta, color="#eeeeee", zorder=0)
    a2.axvline(0.0, color="black", lw=0.8)
    ends = [x for r in shown if r["mcb"] for x in r["mcb"]] or [0.0]
    left, right = min(max(min(ends), -lim), -delta), max(min(max(ends), lim), delta)
    pad = 0.04 * (right - left) + 1e-12
    a2.set_xlim(left - pad, right + pad)
    a1.set_ylim(-0.7, n - 0.3)
    a1.set_yticks(ys, [r["name"] for r in shown], fontsize=7)
    a1.set_xlabel(f"mean {sense.label} ± 95 % CI (number = observations)", fontsize=8)
    rival = "max" if sense.higher_better else "min"
    a2.set_xlabel(f"μ_i − {rival}_(j≠i) μ_j  ({sense.label}; shaded: ±δ)", fontsize=8)
    for ax in (a1, a2):
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(axis="x", labelsize=7)
    more = f" (best {n} of {len(rows)} shown)" if len(rows) > n else ""
    a1.set_title(f"Mean per scenario, best on top{more}", fontsize=9)
    a2.set_title("MCB intervals (comparison with the best of the others)", fontsize=9)
    _finish(fig, {r["status"] for r in shown})
    return _png(fig, "scenario means with confidence intervals and MCB intervals")


def mcb_limit(rows: list[dict[str, Any]], delta: float) -> float:
    """Half-width of the MCB panel: everything, unless far-off scenarios would squeeze the region near 0
    where the decision is; then 12 delta (or 4 x the widest interval of the closest five), arrows beyond."""
    spans = sorted(max(abs(x) for x in r["mcb"]) for r in rows if r["mcb"])
    if not spans:
        return 1.0
    window = max(12.0 * delta, 4.0 * spans[min(4, len(spans) - 1)])
    return max(min(spans[-1], window), 1e-12) if window > 0 else max(spans[-1], 1e-12)


def survivors(d: dict[str, Any]) -> tuple[list[int], list[int], list[tuple[int, int, int]]]:
    """Scenarios in contention after each look, x = observations per scenario still in contention.

    Returns the step curve (xs, ys) and the eliminations as (observations, removed, left) per look.
    """
    k = len(d["scenarios"])
    last = max((int(s.get("observations") or 0) for s in d["scenarios"].values()), default=0)
    n0 = int(d.get("n0") or 0)
    xs, ys = [n0], [k]
    events: list[tuple[int, int, int]] = []
    alive = k
    for h in d.get("eliminations") or []:
        r = h.get("observations")
        x = max(int(r) if r is not None else xs[-1], xs[-1])
        gone = len(h.get("eliminated") or [])
        alive -= gone
        if events and events[-1][0] == x:
            events[-1] = (x, events[-1][1] + gone, alive)
        else:
            events.append((x, gone, alive))
        xs.append(x)
        ys.append(alive)
    xs.append(max(last, xs[-1]))
    ys.append(ys[-1])
    return xs, ys, events


def history_plot(rows: list[dict[str, Any]], d: dict[str, Any]) -> str:
    """Survivors over the looks (when the procedure eliminated along the way), then the observations spent
    per scenario, ordered by when it left."""
    if not survivors(d)[2]:
        proc = str(d.get("procedure"))
        how = (f"procedure {html.escape(proc)} decides once, after its last stage (the bars show the sample size "
               "it gave each scenario)" if proc in ("rinott", "ocba", "subset") else
               "every scenario stayed in contention until the procedure stopped")
        top = f"<p>No scenario was eliminated along the way: {how}.</p>"
    else:
        top = survivors_plot(d, len(rows))
    return top + spent_plot(rows, d)


def survivors_plot(d: dict[str, Any], k: int) -> str:
    plt = _plt()
    xs, ys, events = survivors(d)
    fig, ax = plt.subplots(figsize=(8, 2.8))
    ax.step(xs, ys, where="post", color="black")
    ax.plot([xs[0]], [k], "o", color="black", ms=3)
    ax.annotate(f"{k} scenarios", (xs[0], k), xytext=(4, 4), textcoords="offset points", fontsize=7)
    sparse = len(events) <= 8
    for j, (x, gone, left) in enumerate(events):
        ax.plot([x], [left], "o", color="#d62728", ms=3)
        if sparse or gone >= max(2, k // 10) or j == len(events) - 1:  # label what stays readable
            ax.annotate(f"−{gone} → {left}", (x, left), xytext=(4, 4), textcoords="offset points", fontsize=7)
    if ys[-1] > 1 and d.get("selected"):  # two-stage procedures pick among the survivors of their screen
        ax.annotate(f"best of these {ys[-1]} selected after the last stage", (xs[-1], ys[-1]), xytext=(-4, 6),
                    textcoords="offset points", fontsize=7, ha="right")
    ax.set_xlim(0, max(xs) * 1.08 + 1)
    ax.set_ylim(0, k * 1.12 + 0.5)
    ax.set_xlabel("observations per scenario still in contention (the look)", fontsize=8)
    ax.set_ylabel("scenarios in contention", fontsize=8)
    ax.grid(alpha=0.3)
    ax.tick_params(labelsize=7)
    ax.set_title(f"Survivors over the looks (first look after n0 = {d.get('n0')} observations)", fontsize=9)
    fig.tight_layout()
    return _png(fig, "scenarios in contention after each look")


def spent_plot(rows: list[dict[str, Any]], d: dict[str, Any]) -> str:
    plt = _plt()
    order = sorted(rows, key=lambda r: (r["status"] != "selected", -r["observations"]))[:MAX_ROWS]
    n = len(order)
    fig, ax = plt.subplots(figsize=(8, max(2.0, 0.8 + 0.22 * n)))
    ypos = list(range(n))[::-1]
    ax.barh(ypos, [r["observations"] for r in order], color=[COLORS[r["status"]] for r in order], height=0.7)
    for y, r in zip(ypos, order, strict=True):
        ax.annotate(_reason(r), (r["observations"], y), xytext=(3, 0), textcoords="offset points",
                    va="center", fontsize=6.5, color="#333")
    ax.set_yticks(ypos, [r["name"] for r in order], fontsize=7)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlim(0, max(r["observations"] for r in order) * 1.7 + 1)
    ax.set_xlabel("observations spent on the scenario", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", alpha=0.3)
    more = f"; {n} of {len(rows)} shown" if len(rows) > n else ""
    ax.set_title(f"Observations spent per scenario ({d.get('replications_total')} replications in total "
                 f"incl. validation{more})", fontsize=9)
    _finish(fig, {r["status"] for r in order})
    return _png(fig, "observations spent per scenario and when each left")


def _reason(r: dict[str, Any]) -> str:
    """A short bar label: 'out after 10: KN screening', 'selected', 'possibly best'."""
    detail = str(r["detail"])
    if detail.startswith("eliminated at stage "):
        why = detail.partition(" (")[2].rstrip(")")
        return f"out after {r['observations']}: {why}"[:60]
    return r["status"] if r["status"] != "ruled out" else "not in the possibly-best subset"
