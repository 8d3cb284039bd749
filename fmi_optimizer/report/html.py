"""Self-contained HTML report of a study, built only from its database (so ``report DB`` works later)."""

from __future__ import annotations

import html
import json
import math
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pluggy

from fmi_optimizer.errors import OutputError
from fmi_optimizer.records import Evaluation
from fmi_optimizer.reporting import CSS, figure_html, pyplot, table_html
from fmi_optimizer.study.config import ObjectiveTerm, stated_objective
from fmi_optimizer.study.storage import Store
from fmi_optimizer.writeback.atomic import write_text_atomic


def objective_axis_scale(values: Sequence[float]) -> str:
    """``"log"`` when every value is positive and they span at least two decades (an error or cost
    converging towards zero: on a linear axis the last, decisive gains are invisible), else ``"linear"``."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite or min(finite) <= 0.0:
        return "linear"
    return "log" if max(finite) / min(finite) >= 100.0 else "linear"


def diagnostics_text(diagnostics: dict[str, Any], limit: int = 60000) -> str:
    """A method's diagnostics as indented JSON for the report: the shortest top-level entries first, so that
    a long one (a per-iteration log) cannot push the summaries out of view, and cut at ``limit`` characters
    with a note that says so and where the whole is (the study's result in its database)."""
    ordered = dict(sorted(diagnostics.items(), key=lambda kv: len(json.dumps(kv[1], default=str))))
    text = json.dumps(ordered, indent=1, default=str)
    if len(text) <= limit:
        return text
    return (text[:limit] + f"\n... cut at {limit} of {len(text)} characters; every entry is in the study's "
            "result in its fmi_optimizer.db (table studies, column result)")


def _stated_axis(terms: Sequence[ObjectiveTerm]) -> tuple[Callable[[float], float], str]:
    """How plots show the objective: a single maximized KPI as its own value, else the minimized objective."""
    what, _ = stated_objective(terms, 0.0)
    if what == "objective":
        return (lambda v: v), "objective (minimized"
    return (lambda v: stated_objective(terms, v)[1]), f"{what} (maximized"


def convergence_plot(evs: Sequence[Evaluation], title: str = "Convergence",
                     terms: Sequence[ObjectiveTerm] = ()) -> str:
    shown, label = _stated_axis(terms)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.6))
    xs_ok = [i + 1 for i, e in enumerate(evs) if e.ok and e.objective is not None]
    ys_ok = [shown(e.objective) for e in evs if e.ok and e.objective is not None]
    feas = [e.feasible for e in evs if e.ok and e.objective is not None]
    ax.scatter([x for x, f in zip(xs_ok, feas, strict=True) if f],
               [y for y, f in zip(ys_ok, feas, strict=True) if f],
               s=10, color="#1f77b4", label="feasible evaluation")
    ax.scatter([x for x, f in zip(xs_ok, feas, strict=True) if not f],
               [y for y, f in zip(ys_ok, feas, strict=True) if not f], s=10, color="#d62728", marker="x",
               label="infeasible evaluation")
    best, bx, by = math.inf, [], []
    for i, e in enumerate(evs):
        if e.feasible and e.objective is not None and e.objective < best:
            best = e.objective
        if best < math.inf:
            bx.append(i + 1)
            by.append(shown(best))
    ax.step(bx, by, where="post", color="black", label="best feasible so far")
    failed = [i + 1 for i, e in enumerate(evs) if not e.ok]
    if failed and ys_ok:
        ax.scatter(failed, [min(ys_ok)] * len(failed), marker="|", color="gray", label="failed run")
    scale = objective_axis_scale(ys_ok)
    ax.set_yscale(scale)
    ax.set_xlabel("evaluation")
    ax.set_ylabel(label + (", log scale)" if scale == "log" else ")"))
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return figure_html(fig)


def scatter_plots(evs: Sequence[Evaluation], space: Sequence[dict[str, Any]],
                  terms: Sequence[ObjectiveTerm] = ()) -> str:
    """Objective (as stated: a single maximized KPI's own value) against each parameter; categorical items
    shown by their labels."""
    shown, label = _stated_axis(terms)
    ok = [e for e in evs if e.ok and e.objective is not None]
    names = [d["name"] for d in space]
    if not ok or not names:
        return ""
    plt = pyplot()
    n = len(names)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    ys = [shown(e.objective) for e in ok if e.objective is not None]
    scale = objective_axis_scale(ys)
    for k, name in enumerate(names):
        ax = axes[k // cols][k % cols]
        xs = [e.values.get(name) for e in ok]
        dim = space[k]
        labels: list[str] | None = None
        if dim.get("kind") == "categorical":
            labels = [str(lb) for lb in dim.get("labels") or dim["items"]]
            xv = [dim["items"].index(x) if x in dim["items"] else -1 for x in xs]
        elif dim.get("kind") == "boolean":
            labels = ["false", "true"]
            xv = [int(bool(x)) for x in xs]
        else:
            xv = xs
        ax.scatter(xv, ys, s=8, c=["#1f77b4" if e.feasible else "#d62728" for e in ok])
        ax.set_yscale(scale)
        if labels:
            ax.set_xticks(range(len(labels)), labels, rotation=45, fontsize=7)
        ax.set_xlabel(name, fontsize=8)
        ax.tick_params(labelsize=7)
    for k in range(n, rows * cols):
        axes[k // cols][k % cols].axis("off")
    what = label.split(" (")[0]
    fig.suptitle(("Objective" if what == "objective" else what) + " vs each parameter (red: infeasible"
                 + ("; log scale)" if scale == "log" else ")"), fontsize=9)
    fig.tight_layout()
    return figure_html(fig)


def shown_values(values: dict[str, Any], space: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Values as the terminal shows them: a categorical (enumeration) by its item name, not its code."""
    labels = {d["name"]: dict(zip(d["items"], d.get("labels") or d["items"], strict=False))
              for d in space if d.get("kind") == "categorical"}
    out = {}
    for k, v in values.items():
        names = labels.get(k)
        out[k] = names.get(v, v) if names is not None and not isinstance(v, list | dict) else v
    return out


def write_report(store: Store, study_id: int, path: Path, pm: pluggy.PluginManager | None = None) -> Path:
    """Write the HTML report of one study and return its path.

    ``pm`` supplies the plugins asked for extra sections (``fmio_report_sections``); None loads the
    installed ones (entry points), as ``fmi-optimizer report`` does.
    """
    row = store.study(study_id)
    config = json.loads(row["config"])
    result = json.loads(row["result"]) if row["result"] else {}
    evs = store.evaluations(study_id)
    problem = config.get("problem", {})
    names = [d["name"] for d in problem.get("space", [])]
    parts = [f"<h1>fmi_optimizer report — {html.escape(row['name'])}</h1>",
             f"<p class=muted>study {row['id']} · method <b>{html.escape(row['method'])}</b> · status "
             f"{html.escape(row['status'])} · seed {row['seed']} · FMU sha256 {row['fmu_sha256'][:16]}…</p>"]
    if result.get("routing"):
        parts.append(f"<p>{html.escape(result['routing'])}</p>")
    if result.get("stopped_because"):
        parts.append(f"<p>Stopped: {html.escape(result['stopped_because'])}</p>")
    parts += _best_section(result, problem)
    space = problem.get("space", [])
    study = {**config, "id": row["id"], "name": row["name"], "method": row["method"], "status": row["status"],
             "seed": row["seed"]}
    parts += plugin_sections(pm, study, result, evs)
    terms = [ObjectiveTerm(**t) for t in problem.get("objective", [])]
    parts.append("<h2>Convergence</h2>"
                 + (convergence_plot(evs, terms=terms) if evs else "<p>no evaluations</p>"))
    parts.append("<h2>Parameters</h2>" + scatter_plots(evs, problem.get("space", []), terms))
    parts += _compute_section(evs, result)
    parts += _instances_section(result)
    parts += _writeback_section(result)
    failures = [e for e in evs if not e.ok]
    if failures:
        parts.append(f"<h2>Failures ({len(failures)})</h2>")
        parts.append(table_html(["#", "status", "error", *names],
                            [[e.seq, e.status, e.error,
                              *[shown_values(e.values, space).get(n, "") for n in names]]
                             for e in failures[:200]],
                            left=3))
    parts.append("<h2>All evaluations</h2><div class=scroll>")
    kpi_names = list(problem.get("kpis", {}))
    parts.append(table_html(["#", "status", "objective", "feasible", *names, *kpi_names, "wall s", "worker"],
                        [[e.seq, e.status + (" (cached)" if e.cached else ""), e.objective, e.feasible,
                          *[shown_values(e.values, space).get(n, "") for n in names],
                          *[e.kpis.get(k, "") for k in kpi_names],
                          e.wall_seconds, e.worker] for e in evs], left=2))
    parts.append("</div>")
    if result.get("diagnostics"):
        parts.append("<h2>Method diagnostics</h2><pre>" + html.escape(diagnostics_text(result["diagnostics"]))
                     + "</pre>")
    parts.append("<h2>Problem</h2><pre>" + html.escape(json.dumps(problem, indent=1, default=str)) + "</pre>")
    title = f"{html.escape(row['name'])} — fmi_optimizer"
    doc = (f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title>"
           f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write the report ({exc.strerror or exc}); choose a writable "
                          "folder") from exc
    return write_text_atomic(path, doc)  # never through a planted symlink, never half a file


def plugin_sections(pm: pluggy.PluginManager | None, study: dict[str, Any], result: dict[str, Any],
                    evs: Sequence[Evaluation]) -> list[str]:
    """Every plugin's ``fmio_report_sections``, one at a time, so a failing plugin costs only its own section:
    the failure is one line in the report naming the plugin (traceback folded below it) and a warning."""
    if pm is None:
        from fmi_optimizer.host.loader import load_host

        pm = load_host().pm
    out: list[str] = []
    given = {"study": study, "result": result, "evaluations": list(evs)}
    for impl in pm.hook.fmio_report_sections.get_hookimpls():
        try:  # like pluggy, pass only the arguments the implementation names
            got = impl.function(**{a: given[a] for a in impl.argnames})
            if got is not None and (not isinstance(got, list) or not all(isinstance(x, str) for x in got)):
                raise TypeError(f"returned {type(got).__name__}, expected a list of HTML strings or None")
        except Exception as exc:  # a plugin's bug must not lose the report; shown and warned, never hidden
            msg = f"report section of plugin {impl.plugin_name!r} failed: {type(exc).__name__}: {exc}"
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
            out.append(f"<p class=bad>{html.escape(msg)}</p><details><summary class=muted>traceback</summary>"
                       f"<pre>{html.escape(traceback.format_exc())}</pre></details>")
            continue
        out.extend(got or [])
    return out


def _best_section(result: dict[str, Any], problem: dict[str, Any]) -> list[str]:
    best = result.get("best")
    if not best:
        return ["<h2>Best</h2><p class=bad>No successful evaluation.</p>"]
    feas = '<span class=ok>feasible</span>' if best.get("feasible") else '<span class=bad>infeasible</span>'
    terms = [ObjectiveTerm(**t) for t in problem.get("objective", [])]

    # a single maximized KPI is shown as the user wrote it
    def stated(objective: float, sense: bool = False) -> str:
        what, value = stated_objective(terms, objective)
        return f"{what} {value:.6g}" + (" (maximized)" if sense and what != "objective" else "")

    out = [f"<h2>Best — {stated(best['objective'], sense=True)} ({feas})</h2>",
           table_html(["parameter", "value"],
                  [[k, v] for k, v in shown_values(best["values"], problem.get("space", [])).items()])]
    limits = {c["kpi"]: c for c in problem.get("constraints", [])}
    base = result.get("baseline") or {}
    base_kpis = base.get("kpis") or {}
    rows = []
    for k, v in best["kpis"].items():
        c = limits.get(k)
        margin = (c["limit"] - v if c["op"] == "<=" else v - c["limit"]) if c else ""
        rows.append([k, v, base_kpis.get(k, ""), f"{c['op']} {c['limit']:g}" if c else "", margin])
    out.append(table_html(["KPI", "optimized", "as delivered", "constraint", "margin (>= 0 holds)"], rows))
    if base.get("objective") is not None:
        feas = "feasible" if base.get("feasible") else "infeasible"
        fixed = problem.get("fixed") or {}
        shown = ", ".join(f"{html.escape(str(k))} = {html.escape(str(v))}" for k, v in fixed.items())
        held = f", with the study's [fixed] values: {shown}" if fixed else ""
        out.append(f"<p>As delivered (the FMU's own start values{held}): "
                   f"{stated(base['objective'])} ({feas}); optimized: {stated(best['objective'])}.</p>")
    elif base:
        out.append("<p class=muted>As delivered: the run did not succeed "
                   f"({html.escape(str(base.get('error')))}).</p>")
    return out


def _compute_section(evs: Sequence[Evaluation], result: dict[str, Any]) -> list[str]:
    """What the stored evaluations cost: every row counts, the method's and those run outside its loop
    (a calibration's refinement), so the counts add up to the table of all evaluations."""
    simulated = [e for e in evs if e.simulated]
    wall = sum(e.wall_seconds for e in simulated)
    cpu = sum(e.cpu_seconds for e in simulated)
    rows: list[list[Any]] = [["evaluations simulated", len(simulated)]]
    by_method = result.get("evaluations", {}).get("total")
    if isinstance(by_method, int) and by_method < len(simulated):
        rows += [["of them proposed by the method", by_method],
                 ["of them run after the method (e.g. a calibration's refinement)",
                  len(simulated) - by_method]]
    rows += [["cache hits", sum(1 for e in evs if e.cached)],
             ["ok / failed / crashed / timeout", " / ".join(str(sum(1 for e in simulated if e.status == s))
                                                           for s in ("ok", "failed", "crashed", "timeout"))],
             ["invalid proposals (not simulated)", sum(1 for e in evs if e.status == "invalid")],
             ["study wall time (s)", result.get("wall_seconds", "")],
            ["simulation wall time summed over workers (s)", wall], ["simulation CPU time (s)", cpu],
            ["mean wall time per evaluation (s)", wall / len(simulated) if simulated else ""]]
    return ["<h2>Compute spent</h2>", table_html(["", "value"], rows)]


def _instances_section(result: dict[str, Any]) -> list[str]:
    """How each run got the state of a fresh instance, why, and whether a production check changed it."""
    record = result.get("instances")
    if not record:
        return []
    rows: list[list[Any]] = [["strategy", record.get("strategy")], ["why", record.get("reason")],
                             *[[f"tried: {name}", outcome] for name,
                               outcome in (record.get("trials") or {}).items()]]
    if record.get("cached"):
        rows.append(["proof", "cached from an earlier study of this FMU"])
    for why in record.get("switches") or []:
        rows.append(["switched during the study", why])
    if record.get("switches"):
        rows.append(["runs repeated on fresh instances", record.get("reruns")])
        rows.append(["evaluations whose objective changed", len(record.get("corrected") or [])])
    return ["<h2>Simulation instances</h2><p class=muted>Every stored number must equal what a fresh "
            "instance gives; the strategy below was proven against plain fmpy's fresh runs before the study, "
            "and workers repeat a share of the runs on a fresh instance while it runs.</p>",
            table_html(["", ""], rows, left=2)]


def _writeback_section(result: dict[str, Any]) -> list[str]:
    v = result.get("verification")
    outs = result.get("outputs", {})
    if not v:
        return ["<h2>Write-back</h2><p class=muted>No optimized FMU was written for this study.</p>"]
    rows = [[k, p] for k, p in outs.items() if p]
    detail = [[k, d.get("expected"), d.get("actual"), d.get("rel_diff")] for k,
              d in (v.get("kpis") or {}).items()]
    if v.get("ok"):
        by = ", ".join(v.get("verified_by") or []) or "fmpy"
        text = (f"<span class=ok>verified</span> in {html.escape(by)}: the written FMU, simulated in fresh "
                "processes with no start values, reproduces the optimized evaluation (max relative "
                f"difference {v.get('max_rel_diff')}).")
    else:
        problems = v.get("problems") or ["unknown problem"]
        text = ("<span class=bad>VERIFICATION FAILED</span>: no optimized FMU was written (use the .ssv with "
                f"the original FMU); {html.escape(str(problems[0]))}")
    return ["<h2>Write-back</h2>", f"<p>{text}</p>",
            table_html(["file", "path"], list(rows), left=2),
            table_html(["KPI", "optimized evaluation", "written FMU", "relative difference"],
                       detail) if detail else ""]
