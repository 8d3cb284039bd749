"""The ranking plugin's report sections: the selection with its guarantee, the scenario table in the KPI's
own sense, the interval and elimination plots, and the survivors-over-looks bookkeeping."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
from fmio_ranking import select_best
from fmio_ranking.sections import mcb_limit, report_sections, scenario_rows, sense_of, status_of, survivors

from fmi_optimizer.host.loader import load_host
from fmi_optimizer.report.html import write_report
from fmi_optimizer.study.storage import Store

DELTA = 1 / math.sqrt(10)


def toy(mu: list[float], rho: float = 0.5) -> Any:
    def sample(values: dict[str, Any], r: int) -> float:
        i = int(values["policy"])
        common = np.random.default_rng([3, r]).standard_normal()
        own = np.random.default_rng([3, r, i + 1]).standard_normal()
        return float(mu[i] + math.sqrt(rho) * common + math.sqrt(1 - rho) * own)

    return sample


def problem(sense: str) -> dict[str, Any]:
    return {"space": [{"kind": "integer", "name": "policy", "lo": 0, "hi": 9}], "kpis": {"throughput": "final(t)"},
            "objective": [{"kpi": "throughput", "sense": sense, "weight": 1.0}], "constraints": []}


def selection(procedure: str = "kn", k: int = 8) -> dict[str, Any]:
    """Diagnostics of a real maximizing selection: scenario 0 is best by 2 delta, the rest worse by steps."""
    mu = [50.0 + 2 * DELTA] + [50.0 - i * DELTA for i in range(k - 1)]
    systems = {f"s{i}": {"policy": i} for i in range(k)}
    sel = select_best(toy(mu), systems, {"procedure": procedure, "indifference_zone": DELTA}, maximize=True)
    assert sel.name == "s0"
    return sel.diagnostics


def test_sections_only_for_ranking_studies() -> None:
    d = selection()
    assert report_sections({"method": "bayes"}, {"diagnostics": d}, []) is None
    parts = report_sections({"method": "ranking", "problem": problem("maximize")}, {"diagnostics": d}, [])
    assert parts is not None and len(parts) == 4
    html = "".join(parts)
    assert "selected <b>s0</b>" in html and "Guarantee:</b> normal observations assumed: PCS &gt;= 0.95" in html
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,', html)) == 3
    assert all(f"<td class=l>s{i}</td>" in html for i in range(8))


def test_values_are_shown_in_the_kpi_sense_best_first() -> None:
    d = selection()
    rows = scenario_rows(d, sense_of(problem("maximize")))
    means = [r["mean"] for r in rows]
    assert rows[0]["name"] == "s0" and rows[0]["status"] == "selected"
    assert all(m > 40 for m in means) and means == sorted(means, reverse=True)  # throughput, higher first
    raw = d["scenarios"]["s0"]
    assert math.isclose(rows[0]["mean"], -raw["mean"]) and rows[0]["ci"] == sorted(-x for x in raw["ci95"])
    lo, hi = rows[0]["mcb"]
    assert lo >= -DELTA - 1e-12 and hi > 0  # the winner: within delta of the best of the others
    assert sum(r["observations"] for r in rows) + d["validation"]["replications"] == d["replications_total"]
    minimized = scenario_rows(d, sense_of(problem("minimize")))
    assert minimized[0]["name"] == "s0" and minimized[0]["mean"] == raw["mean"]


def test_survivors_follow_the_eliminations() -> None:
    d = selection()
    xs, ys, events = survivors(d)
    k = len(d["scenarios"])
    assert xs[0] == d["n0"] and ys[0] == k and ys[-1] == 1
    assert sum(g for _, g, _ in events) == k - 1 and xs == sorted(xs)
    for h in d["eliminations"]:
        for name in h["eliminated"]:
            assert d["scenarios"][name]["observations"] == h["observations"]


def test_status_of_dropped_and_two_stage_procedures() -> None:
    d = {"selected": "a", "possibly_best": ["a", "b"],
         "scenarios": {"a": {"status": "selected"}, "b": {"status": "in contention"},
                       "c": {"status": "in contention"},
                       "d": {"status": "eliminated at stage 0 (replication failed 2 time(s): dropped)"},
                       "e": {"status": "eliminated at stage 0 (KN screening)"}}}
    assert [status_of(n, d) for n in "abcde"] == ["selected", "possibly best", "ruled out", "dropped", "eliminated"]


def test_rinott_report_through_the_host_report(tmp_path: Path) -> None:
    """End to end through ``write_report`` with the installed plugins: the sections land in the report."""
    d = selection("rinott", k=5)
    store = Store(tmp_path / "db.sqlite")
    sid = store.create_study("rk", "ranking", 1, "00" * 32, {"raw": {}, "method": "ranking", "problem": problem("maximize")})
    store.set_status(sid, "finished", {"diagnostics": d})
    text = write_report(store, sid, tmp_path / "r.html", pm=load_host().pm).read_text()
    assert "Ranking &amp; selection — selected <b>s0</b>" in text and "failed:" not in text
    assert "Procedure <b>rinott</b>" in text and "simultaneous at 1 − α" in text
    assert "procedure rinott decides once" in text  # no survivors plot for a procedure that decides once
    assert "scenarios in contention after each look" not in text
    assert 'alt="observations spent per scenario and when each left"' in text


def test_mcb_window_keeps_the_region_near_zero() -> None:
    near = [{"mcb": [-0.1 * i, 0.0]} for i in range(1, 6)]
    far = [{"mcb": [-50.0, 0.0]}]
    assert mcb_limit(near, 0.5) == 0.5  # everything fits: no clipping
    assert mcb_limit(near + far, 0.5) == 6.0  # 12 delta: the far interval gets an arrow
    assert mcb_limit(near + far, 0.0) == 2.0  # no delta: 4 x the widest of the closest five
