"""The robustness and Pareto report sections, rebuilt from the stored rows: robustness of the chosen design
next to the nominal optimum, and the Pareto front of multi-objective studies."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fmi_optimizer.errors import StudyError
from fmi_optimizer.host.loader import builtin_host
from fmi_optimizer.records import Candidate, Evaluation
from fmi_optimizer.study.config import SECTIONS, StudyConfig, load_study
from fmi_optimizer.uncertainty.aggregate import Judged, aggregate, parse_tag
from fmi_optimizer.uncertainty.spec import spec_of


def regroup(config: StudyConfig, evs: Sequence[Evaluation]) -> dict[int, tuple[Evaluation, Judged]]:
    """Candidate id -> (aggregated evaluation, judgement), recomputed exactly as the study did."""
    runs: dict[int, list[Evaluation]] = {}
    nominal: dict[int, Evaluation] = {}
    for e in evs:
        parsed = parse_tag(e.candidate.tag)
        if parsed is None:
            continue
        idx, cid = parsed
        if idx is None:
            nominal[cid] = e
        else:
            runs.setdefault(cid, []).append(e)
    out = {}
    for cid in sorted(set(runs) | set(nominal)):
        mine = sorted(runs.get(cid, []), key=lambda e: (parse_tag(e.candidate.tag) or (0, 0))[0] or 0)
        first = mine[0] if mine else nominal[cid]
        out[cid] = aggregate(config, Candidate(dict(first.values)), cid, mine, nominal.get(cid))
    return out


def nominal_optimum(config: StudyConfig, groups: dict[int, tuple[Evaluation, Judged]]) -> int | None:
    """Candidate whose nominal run is best by the deterministic criterion (every constraint at its limit
    under nominal conditions), among the candidates the study evaluated."""
    best: tuple[float, int] | None = None
    for cid, (_, j) in groups.items():
        n = j.nominal
        if n is None or not n.ok or n.objective is None:
            continue
        if any(c.value(n.kpis[c.kpi]) > 0 for c in config.constraints):
            continue
        if best is None or n.objective < best[0]:
            best = (n.objective, cid)
    return None if best is None else best[1]


def extra_sections(config_row: dict[str, Any], result: dict[str, Any],
                   evs: Sequence[Evaluation]) -> list[str]:
    """HTML parts for the report (empty for studies without [uncertainty] or pareto)."""
    raw = config_row.get("raw")
    objective = raw.get("objective", {}) if isinstance(raw, dict) else {}
    terms = sum(1 if isinstance(v, str) else len(v) for k,
                v in objective.items() if k in ("minimize", "maximize"))
    if not isinstance(raw, dict) or not ("uncertainty" in raw or terms >= 2):
        return []
    # re-read with the built-in sections only: another plugin's section is none of this one's business, and
    # the plugin that registered it need not be loaded where the report is written
    known = SECTIONS | set(builtin_host().sections.names())
    try:
        own = {k: v for k, v in raw.items() if k in known}
        config = load_study(own, Path(config_row.get("base_dir") or "."))
    except StudyError as exc:
        return ["<h2>Uncertainty / Pareto</h2><p class=bad>cannot re-read the study config: "
                f"{html.escape(str(exc))}</p>"]
    parts: list[str] = []
    points: Sequence[Evaluation] = evs
    if spec_of(config) is not None:
        groups = regroup(config, evs)
        points = [g[0] for g in groups.values()]
        parts += _robust_section(config, result, groups, len(evs))
    if len(config.objective) >= 2:
        parts += pareto_section(config, points)
    return parts


def _chosen(result: dict[str, Any], groups: dict[int, tuple[Evaluation, Judged]]) -> int | None:
    best = result.get("best")
    if not best:
        return None
    same = [cid for cid, (ev, _) in groups.items() if ev.ok and ev.values == best["values"]]
    return max(same, key=lambda c: (groups[c][1].n, c)) if same else None


def _robust_section(config: StudyConfig, result: dict[str, Any], groups: dict[int, tuple[Evaluation, Judged]],
                    n_rows: int) -> list[str]:
    from fmi_optimizer.reporting import table_html

    spec = spec_of(config)
    assert spec is not None
    out = ["<h2>Under uncertainty</h2>",
           f"<p>{len(groups)} candidates x {spec.runs_per_candidate()} runs ({spec.samples} scenarios of the "
           f"shared {spec.sampler} sample" + (" + 1 nominal run" if spec.nominal else "") + ")"
           + _growth_text(spec, groups,
                          n_rows) + f" = {n_rows} simulations stored (the budget counts runs). Score: "
                          f"{html.escape(spec.score.describe())}; chance constraints "
           f"judged on the one-sided {html.escape(spec.bound)} bound at confidence {spec.confidence:g}.</p>",
           table_html(["uncertain parameter", "distribution"],
                      [[k, d.describe()] for k, d in spec.distributions.items()])]
    chosen, nominal = _chosen(result, groups), nominal_optimum(config, groups)
    if chosen is None:
        return [*out, "<p class=bad>No chosen design with successful runs.</p>"]
    designs = [("chosen (robust)",
                chosen)] + ([("nominal optimum", nominal)] if nominal not in (None, chosen) else [])
    if nominal == chosen:
        out.append("<p>The chosen design is also the best nominal design among the evaluated candidates.</p>")
    elif nominal is None:
        out.append("<p class=muted>No evaluated candidate meets the constraints at nominal conditions.</p>")
    else:
        out.append("<p class=muted>Nominal optimum = the candidate with the best objective at the twin's "
                   "nominal values that meets every constraint there, among the candidates this study "
                   "evaluated.</p>")
    names = list(config.parameters)
    out.append(table_html(["design", "candidate", "robust score", *names],
                      [[label, cid, groups[cid][0].objective,
                        *[groups[cid][0].values.get(n, "") for n in names]]
                       for label, cid in designs]))
    rows = []
    for k in config.kpis:
        for label, cid in designs:
            j = groups[cid][1]
            v = np.asarray(j.kpi_samples.get(k, []), dtype=float)
            if v.size == 0:
                continue
            nom = j.nominal.kpis.get(k) if j.nominal is not None and j.nominal.ok else None
            rows.append([k, label, nom, float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0,
                         float(np.quantile(v, 0.05)), float(np.quantile(v, 0.95)), float(v.max())])
    out.append(table_html(["KPI", "design", "at nominal", "mean", "std", "5 %", "95 %", "max"], rows, left=2))
    chance_rows = []
    for label, cid in designs:
        for c in groups[cid][1].chance:
            chance_rows.append([f"P({c.kpi} {c.op} {c.limit:g})", label, c.target, c.probability,
                                f"[{c.lower:.4f}, {c.upper:.4f}]", c.n, -c.value,
                                "holds" if c.holds else "VIOLATED"])
        for i, spec_c in enumerate(config.constraints):
            if spec_c.probability is None:
                worst = groups[cid][0].constraints[i] if groups[cid][0].ok else None
                chance_rows.append([f"{spec_c.kpi} {spec_c.op} {spec_c.limit:g} in every scenario", label,
                                    1.0, None, "", groups[cid][1].n,
                                    None if worst is None else -worst,
                                    "" if worst is None else ("holds" if worst <= 0 else "VIOLATED")])
    if chance_rows:
        out.append(table_html(["constraint", "design", "target", "achieved (sample)", "confidence bounds",
                               "scenarios",
                           "margin (KPI units)", "status"], chance_rows, left=2))
    if len(designs) == 2:
        out.append(_price_table(config, groups[chosen][1], groups[designs[1][1]][1]))
    out.append(_histograms(config, [(label, groups[cid][1]) for label, cid in designs]))
    return out


def _growth_text(spec: Any, groups: dict[int, tuple[Evaluation, Judged]], n_rows: int) -> str:
    """The runs the sequential growth added, so the run arithmetic adds up."""
    extra = n_rows - len(groups) * spec.runs_per_candidate()
    grown = [j.n for _, j in groups.values() if j.n > spec.samples]
    if extra <= 0 or not grown:
        return ""
    return (f" + {extra} runs of sequential growth ({len(grown)} candidates, topped-up incumbents included, "
            f"grown to {min(grown)}-{max(grown)} scenarios of at most {spec.pool_size})")


def _price_table(config: StudyConfig, robust: Judged, nominal: Judged) -> str:
    from fmi_optimizer.reporting import table_html

    rows = []
    for t in config.objective:
        a = robust.nominal.kpis.get(t.kpi) if robust.nominal is not None and robust.nominal.ok else None
        b = nominal.nominal.kpis.get(t.kpi) if nominal.nominal is not None and nominal.nominal.ok else None
        if a is None or b is None:
            continue
        rows.append([t.kpi, b, a, a - b, (a - b) / abs(b) if b else None])
    return "<h3>Price of robustness (objective KPIs at nominal conditions)</h3>" + table_html(
        ["KPI", "nominal optimum", "chosen (robust)", "difference", "relative"], rows)


def _histograms(config: StudyConfig, designs: list[tuple[str, Judged]]) -> str:
    from fmi_optimizer.reporting import figure_html, pyplot

    kpis = [k for k in config.kpis if any(_varies(j.kpi_samples.get(k, [])) for _, j in designs)]
    if not kpis or not designs[0][1].kpi_samples:
        return ""
    plt = pyplot()
    cols = min(3, len(kpis))
    rows = (len(kpis) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.8 * cols, 2.8 * rows), squeeze=False)
    limits = {c.kpi: c.limit for c in config.constraints}
    for i, k in enumerate(kpis):
        ax = axes[i // cols][i % cols]
        for (label, j), color in zip(designs, ("#1f77b4", "#d62728"), strict=False):
            v = j.kpi_samples.get(k)
            if v:
                ax.hist(v, bins=20, alpha=0.55, color=color, label=label)
        if k in limits:
            ax.axvline(limits[k], color="black", linestyle="--", label="limit")
        ax.set_title(k, fontsize=9)
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.legend(fontsize=7)
    for i in range(len(kpis), rows * cols):
        axes[i // cols][i % cols].axis("off")
    fig.suptitle("KPI distribution over the shared sample", fontsize=9)
    fig.tight_layout()
    return figure_html(fig)


def _varies(values: Sequence[float]) -> bool:
    """KPIs the uncertainty does not move (mass, cost) stay in the table, out of the histograms."""
    v = np.asarray(values, dtype=float)
    return v.size > 1 and float(v.max() - v.min()) > 1e-9 * max(1.0, float(np.abs(v).max()))


def pareto_section(config: StudyConfig, points: Sequence[Evaluation]) -> list[str]:
    """Front table (indices are what ``--pick N`` takes) and a plot of the first two objectives."""
    from fmi_optimizer.reporting import figure_html, pyplot, table_html
    from fmi_optimizer.study.pareto import front, study_key

    pts = front(points, study_key(config))
    kpis = [t.kpi for t in config.objective]
    basis = ("the objectives the method was told" if config.pareto
             else "the objective KPIs (the method saw their weighted sum)")
    out = [f"<h2>Pareto front ({len(pts)} non-dominated of {sum(1 for p in points if p.ok)} successful "
           "points)</h2>",
           f"<p class=muted>Front of {basis}; constrained domination: feasible points first; indices are "
           "what <code>optimize --pick N</code> takes.</p>"]
    if not pts:
        return out
    names = list(config.parameters)
    out.append("<div class=scroll>" + table_html(["#", "feasible", *kpis, *names],
                      [[i, p.feasible, *[p.kpis.get(k) for k in kpis], *[p.values.get(n, "") for n in names]]
                       for i, p in enumerate(pts)]) + "</div>")
    if len(kpis) >= 2:
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(6, 4))
        for feasible, style in ((True, {"s": 6, "color": "#bbbbbb", "label": "evaluated, feasible"}),
                                (False, {"s": 10, "color": "#f2a7a7", "marker": "x", "linewidths": 0.8,
                                         "label": "evaluated, infeasible (may lie beyond the front)"})):
            group = [p for p in points if p.ok and bool(p.feasible) == feasible]
            if group:
                ax.scatter([p.kpis[kpis[0]] for p in group], [p.kpis[kpis[1]] for p in group], **style)
        ax.plot([p.kpis[kpis[0]] for p in pts], [p.kpis[kpis[1]] for p in pts],
                "o-" if len(kpis) == 2 else "o",
                color="#d62728", ms=4,
                label="front" if len(kpis) == 2 else f"front (of all {len(kpis)} objectives)")
        ax.set_xlabel(kpis[0])
        ax.set_ylabel(kpis[1])
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        out.append(figure_html(fig))
    return out
