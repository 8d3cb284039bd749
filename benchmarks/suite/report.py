"""Tables of the suite from one or more results files of ``benchmarks/suite/run.py``.

Per problem: median and interquartile range (25-75 %) of the metric — simple regret (continuous) or unique
evaluations to a feasible design within 1 % of the optimum (discrete; a run that does not get there within its
budget counts as not reached, +inf) — and how many runs. For the method under test (bayes / qio) against each
peer: wins/ties/losses by a two-sided Wilcoxon signed-rank test over the seeds both ran (p < 0.05; the sign of
the median paired difference decides win or loss; with fewer than 6 pairs no difference can reach p < 0.05, so
every problem is a tie). The issue's own criterion is counted as well: the tested method's median no worse than
the peer's, or inside the peer's interquartile range (a tie). Mean rank: each problem ranks the methods by
median (ties share the average rank), averaged over the problems every method ran.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from typing import Any

import numpy as np

CENSORED = 1e9  # not reached / no feasible point: worse than any finite value, equal to each other


def censored(v: float) -> bool:
    """A quantile that involves a censored run (interpolated towards CENSORED) is censored itself: +inf."""
    return v >= CENSORED / 1000


def _metric(family: str, r: dict[str, Any]) -> float:
    v = r["regret"] if family == "continuous" else r["evals"]
    return CENSORED if v is None else float(v)


def _fmt(v: float, family: str) -> str:
    if censored(v):
        return "not reached" if family == "discrete" else "no feasible"
    return f"{v:.0f}" if family == "discrete" else f"{v:.3g}"


def paired(a: dict[int, float], b: dict[int, float]) -> tuple[str, int, float]:
    """'win' / 'tie' / 'loss' of a over b (lower is better) by Wilcoxon over the common seeds, n, p."""
    from scipy.stats import wilcoxon

    seeds = sorted(set(a) & set(b))
    x, y = np.array([a[s] for s in seeds]), np.array([b[s] for s in seeds])
    diff = x - y
    if len(seeds) < 6 or np.all(diff == 0):
        return "tie", len(seeds), 1.0
    p = float(wilcoxon(x, y, zero_method="wilcox").pvalue)
    if p >= 0.05 or not math.isfinite(p):
        return "tie", len(seeds), p
    return ("win" if np.median(diff) < 0 or (np.median(diff) == 0 and diff.mean() < 0) else "loss"), len(seeds), p


def pooled(tested: str, peer: str, problems: list[str], by: dict[tuple[str, str], dict[int, float]]) -> str:
    """One table row: the tested method against a peer over every (problem, seed) pair both ran. Ratios of
    values floored at 1e-12 (an exact optimum is regret 0); a censored run (no feasible point, not reached)
    counts as worse than any finished one."""
    from scipy.stats import wilcoxon

    pairs = [(by[(tested, p)][s], by[(peer, p)][s]) for p in problems
             for s in sorted(set(by.get((tested, p), {})) & set(by.get((peer, p), {})))]
    lower = sum(a < b for a, b in pairs)
    higher = sum(a > b for a, b in pairs)
    logs = np.array([math.log(max(a, 1e-12) / max(b, 1e-12)) for a, b in pairs])
    med = f"{math.exp(float(np.median(logs))):.3g}" if len(logs) else "-"
    p = float(wilcoxon(logs).pvalue) if len(logs) >= 6 and np.any(logs != 0) else 1.0
    return f"| {peer} | {len(pairs)} | {lower} | {len(pairs) - lower - higher} | {higher} | {med} | {p:.2g} |"


def load(files: list[str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows, meta = [], {}
    for f in files:
        data = json.loads(open(f).read())
        label = data["meta"].get("label", "defaults")
        for r in data["runs"].values():
            r = dict(r)
            if r["method"] in ("bayes", "qio") and label != "defaults":
                r["method"] = f"{r['method']}[{label}]"
            rows.append(r)
        meta[f] = data["meta"] | {"import_cpu": data.get("import_cpu")}
    return rows, meta


def report(family: str, files: list[str], same_seeds: bool = False) -> str:
    """Tables of the runs in ``files``. Every method is taken on the seeds the tested method ran; with
    ``same_seeds`` only on the seeds that every method ran for that problem, so that a peer run for fewer
    repetitions is compared (medians, ranks, paired tests) on the same sample as the others."""
    rows, meta = load(files)
    tested = "bayes" if family == "continuous" else "qio"
    by: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    cpu: dict[str, list[float]] = defaultdict(list)
    extra: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        by[(r["method"], r["problem"])][r["seed"]] = _metric(family, r)
        cpu[r["method"]].append(r["cpu_per_proposal"])
        for k in ("cpu_first_model", "cpu_at_50_60"):
            if r.get(k) is not None:
                extra[r["method"]][k].append(r[k])
    problems = list(dict.fromkeys(r["problem"] for r in rows))
    methods = sorted({r["method"] for r in rows}, key=lambda m: (not m.startswith(tested), m))
    for p in problems:  # every method on the seeds the tested method ran: same sample for medians and ranks
        if (tested, p) in by:
            keep = set(by[(tested, p)])
            for m in methods:
                if (m, p) in by:
                    by[(m, p)] = {s: v for s, v in by[(m, p)].items() if s in keep}
        if same_seeds:
            ran = [set(by[(m, p)]) for m in methods if (m, p) in by]
            shared = set.intersection(*ran) if ran else set()
            for m in methods:
                if (m, p) in by:
                    by[(m, p)] = {s: v for s, v in by[(m, p)].items() if s in shared}
    if family == "discrete":  # the tuned GA: per problem the population with the best median
        for p in problems:
            gas = [m for m in methods if m.startswith("ga") and by.get((m, p))]
            if gas:
                common = set.intersection(*(set(by[(m, p)]) for m in gas))
                best = min(gas, key=lambda m: (np.median([by[(m, p)][s] for s in common] or [math.inf]), m))
                by[("ga_tuned", p)] = by[(best, p)]
                by[("ga_tuned:" + best, p)] = {}
        methods = [m for m in methods if not m.startswith("ga")] + ["ga_tuned"]
    out = [f"# Suite results: {family}\n", *(["Every method on the seeds that all methods ran for the problem.\n"]
                                             if same_seeds else []), "Files: " + ", ".join(
        f"`{f}` ({m['half']}, {tested} {m['label']} {json.dumps(m['options'])})" for f, m in meta.items()), ""]
    unit = "simple regret" if family == "continuous" else "unique evaluations to 1 % of the optimum"
    out += [f"## Median [25 %, 75 %] of {unit} (runs)\n",
            "| problem | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    med: dict[tuple[str, str], float] = {}
    for p in problems:
        cells = []
        for m in methods:
            v = list(by.get((m, p), {}).values())
            if not v:
                cells.append("-")
                continue
            q1, q2, q3 = np.percentile(v, [25, 50, 75])
            med[(m, p)] = float(q2)
            tag = ""
            if m == "ga_tuned":
                tag = " " + next((k.split(":")[1] for k in [x for x, pp in by if pp == p and x.startswith("ga_tuned:")]), "")
            reached = f", {sum(not censored(x) for x in v)} reached" if family == "discrete" else ""
            cells.append(f"{_fmt(q2, family)} [{_fmt(q1, family)}, {_fmt(q3, family)}] ({len(v)}{reached}){tag}")
        out.append(f"| {p} | " + " | ".join(cells) + " |")
    peers = [m for m in methods if not m.startswith(tested)]
    for t in [m for m in methods if m.startswith(tested)]:
        out += [f"\n## {t} against each peer, per problem: Wilcoxon result (pairs, p); median ratio {t} / peer\n",
                "| problem | " + " | ".join(peers) + " |", "|---|" + "---|" * len(peers)]
        wtl = {pe: [0, 0, 0] for pe in peers}
        crit = {pe: [0, 0, 0] for pe in peers}  # meets (better or within IQR), >3x worse, problems
        for p in problems:
            cells = []
            for pe in peers:
                a, b = by.get((t, p), {}), by.get((pe, p), {})
                if not a or not b:
                    cells.append("-")
                    continue
                res, n, pv = paired(a, b)
                wtl[pe][("win", "tie", "loss").index(res)] += 1
                ma, mb = med[(t, p)], med[(pe, p)]
                q3 = float(np.percentile(list(b.values()), 75))
                crit[pe][0] += ma <= mb or ma <= q3
                crit[pe][1] += (ma > 3 * mb) if mb > 0 else ma > mb
                crit[pe][2] += 1
                ratio = "-" if mb == 0 or censored(mb) or censored(ma) else f"{ma / mb:.2g}"
                cells.append(f"{res} ({n}, {pv:.2g}); {ratio}")
            out.append(f"| {p} | " + " | ".join(cells) + " |")
        out += [f"\n{t}: wins / ties / losses by the paired test, and the issue's criterion (median no worse than "
                f"the peer's or within its interquartile range; more than 3x worse)\n",
                "| peer | wins | ties | losses | no worse (or within IQR) | > 3x worse | problems |", "|---|---|---|---|---|---|---|"]
        for pe in peers:
            w, ti, lo = wtl[pe]
            ok, bad, n = crit[pe]
            out.append(f"| {pe} | {w} | {ti} | {lo} | {ok} ({100 * ok / max(n, 1):.0f} %) | {bad} | {n} |")
        out += [f"\n{t} against each peer pooled over every (problem, seed) pair both ran - the comparison that "
                "still says something when a peer ran too few seeds per problem for a per-problem test\n",
                f"| peer | pairs | {t} lower | equal | peer lower | median ratio {t} / peer | Wilcoxon p (log ratios) |",
                "|---|---|---|---|---|---|---|"]
        for pe in peers:
            out.append(pooled(t, pe, problems, by))
    common = [p for p in problems if all((m, p) in med for m in methods)]
    ranks: dict[str, list[float]] = defaultdict(list)
    from scipy.stats import rankdata

    for p in common:
        rk = rankdata([med[(m, p)] for m in methods])
        for m, rr in zip(methods, rk, strict=True):
            ranks[m].append(float(rr))
    out += [f"\n## Mean rank by median over the {len(common)} problems every method ran (1 = best)\n",
            "| method | mean rank | CPU s per proposal (mean over runs) | first model-based proposal (median) "
            "| at 50-60 points (mean) |", "|---|---|---|---|---|"]
    for m in sorted(methods, key=lambda m: np.mean(ranks[m]) if ranks[m] else 99):
        c = cpu.get(m) or [v for k in cpu if m == "ga_tuned" and k.startswith("ga") for v in cpu[k]]
        fm, late = extra[m]["cpu_first_model"], extra[m]["cpu_at_50_60"]
        out.append(f"| {m} | {np.mean(ranks[m]) if ranks[m] else math.nan:.2f} | {np.mean(c) if c else math.nan:.4f} | "
                   f"{np.median(fm) if fm else math.nan:.3f} | {np.mean(late) if late else math.nan:.3f} |")
    if family == "discrete":
        mixed = [p for p in problems if p.startswith("mixed") and (tested, p) in med]
        if mixed:
            runs = [v for p in mixed for v in by[(tested, p)].values()]
            within = sum(v <= 300 for v in runs)
            out += [f"\n## Targets on the random mixed designs ({len(mixed)} instances, {len(runs)} {tested} runs)\n",
                    f"- reaching 1 % within 300 evaluations: {within}/{len(runs)} runs ({100 * within / len(runs):.0f} %; "
                    "target >= 80 %)"]
            for pe, need in (("ga_tuned", 2.0), ("optuna_tpe_mv", 1.0)):
                ok = [p for p in mixed if (pe, p) in med and (med[(pe, p)] >= need * med[(tested, p)] if need > 1
                                                              else med[(tested, p)] < med[(pe, p)])]
                pooled_t = float(np.median(runs))
                pooled_p = float(np.median([v for p in mixed for v in by.get((pe, p), {}).values()] or [math.nan]))
                out.append(f"- {pe}: target {'at least 2x fewer' if need > 1 else 'fewer'} evaluations (median) met "
                           f"on {len(ok)}/{len(mixed)} instances; pooled medians {tested} {_fmt(pooled_t, family)}, "
                           f"{pe} {_fmt(pooled_p, family)}")
    imp = [m["import_cpu"] for m in meta.values() if m.get("import_cpu")]
    if imp:
        out.append(f"\nOne-time import CPU (TensorFlow + GPflow, bayes): {json.dumps(imp)} s")
    return "\n".join(out) + "\n"


def ablation(family: str, base: str, variants: list[str]) -> str:
    """One configuration of the tested method against others, run on the same problems and seeds: per problem the
    medians and the median of the paired log ratios; overall, the geometric mean of the paired ratios over every
    (problem, seed) pair and a Wilcoxon test on their logs, so the question "does this setting help?" is
    answered over all problems at once. Lower is better (regret; evaluations to 1 %); a not-reached run counts as
    twice the budget. Ratios variant / base: below 1 the variant is better."""
    from scipy.stats import wilcoxon

    def runs(f: str) -> tuple[str, dict[tuple[str, int], float], set[str]]:
        data = json.loads(open(f).read())
        floor = 1e-12
        out: dict[tuple[str, int], float] = {}
        envs: set[str] = set()
        for r in data["runs"].values():
            if r["method"] not in ("bayes", "qio"):
                continue
            envs.add(r.get("environment", "not recorded"))
            v = r["regret"] if family == "continuous" else r["evals"]
            if v is None:
                v = 2.0 * r["budget"] if family == "discrete" else math.inf
            out[(r["problem"], r["seed"])] = max(float(v), floor)
        return data["meta"]["label"], out, envs

    label0, a, env0 = runs(base)
    lines = [f"# Ablation ({family}): ratios to `{label0}` ({base}); below 1: the variant is better\n"]
    for f in variants:
        label, b, env = runs(f)
        keys = sorted(set(a) & set(b))
        logs = {k: math.log(b[k] / a[k]) for k in keys if math.isfinite(a[k]) and math.isfinite(b[k])}
        problems = list(dict.fromkeys(k[0] for k in keys))
        lines += [f"\n## `{label}` ({f}): {len(keys)} paired runs on {len(problems)} problems\n",
                  f"| problem | median {label0} | median {label} | median paired ratio | pairs |", "|---|---|---|---|---|"]
        better = worse = 0
        for p in problems:
            ks = [k for k in keys if k[0] == p]
            lr = [logs[k] for k in ks if k in logs]
            ma, mb = np.median([a[k] for k in ks]), np.median([b[k] for k in ks])
            ratio = math.exp(float(np.median(lr))) if lr else math.nan
            better += ratio < 1 / 1.5
            worse += ratio > 1.5
            lines.append(f"| {p} | {ma:.3g} | {mb:.3g} | {ratio:.3g} | {len(ks)} |")
        vals = np.array(list(logs.values()))
        p = float(wilcoxon(vals).pvalue) if len(vals) >= 6 and np.any(vals != 0) else 1.0
        lines.append(f"\n`{label}` / `{label0}`: geometric mean of paired ratios {math.exp(vals.mean()):.3g} over "
                     f"{len(vals)} pairs (Wilcoxon p = {p:.2g}); median paired ratio better than 1/1.5 on {better} "
                     f"problems, worse than 1.5 on {worse}, of {len(problems)}")
        if env0 != env or len(env) != 1 or "not recorded" in env:  # a run's path depends on versions and CPU
            lines.append(f"\n**Warning**: the runs are not known to come from one environment (`{label0}`: "
                         f"{'; '.join(sorted(env0))}; `{label}`: {'; '.join(sorted(env))}): a pair differs by "
                         "more than the setting, so rerun the base beside the variant")
    return "\n".join(lines) + "\n"
