"""The ``fmio_report_sections`` hook: any plugin adds HTML sections to the report; a failing one costs only
its own section (stated in the report and warned), never the report."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from fmi_optimizer import hookimpl
from fmi_optimizer.host.loader import load_host
from fmi_optimizer.records import Candidate, Evaluation
from fmi_optimizer.report.html import write_report
from fmi_optimizer.study.storage import Store

PROBLEM = {"space": [{"kind": "integer", "name": "x", "lo": 0, "hi": 3}], "kpis": {"y": "final(y)"},
           "objective": [{"kpi": "y", "sense": "minimize", "weight": 1.0}], "constraints": []}


def make_study(tmp_path: Path, method: str = "mine", result: dict[str, Any] | None = None) -> tuple[Store, int]:
    store = Store(tmp_path / "db.sqlite")
    sid = store.create_study("hooked", method, 7, "ab" * 32, {"raw": {}, "method": method, "problem": PROBLEM})
    for i in range(3):
        ev = Evaluation(Candidate({"x": i}), "ok", kpis={"y": float(i)}, objective=float(i))
        store.add_evaluation(sid, f"k{i}", ev)
    store.set_status(sid, "finished", result or {"diagnostics": {"answer": 42}})
    return store, sid


class Good:
    """A third-party method plugin: answers only for its own method."""

    __name__ = "Good"

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    @hookimpl
    def fmio_report_sections(self, study: dict[str, Any], result: dict[str, Any],
                             evaluations: list[Any]) -> list[str] | None:
        self.seen.append({"study": study, "result": result, "n": len(evaluations)})
        if study["method"] != "mine":
            return None
        return [f"<h2>Mine</h2><p>answer {result['diagnostics']['answer']}</p>"]


class Broken:
    __name__ = "Broken"

    @hookimpl
    def fmio_report_sections(self, study: dict[str, Any], result: dict[str, Any],
                             evaluations: list[Any]) -> list[str] | None:
        raise ValueError("boom in the plot")


class WrongType:
    __name__ = "WrongType"

    @hookimpl
    def fmio_report_sections(self, study: dict[str, Any], result: dict[str, Any], evaluations: list[Any]) -> Any:
        return "<h2>not a list</h2>"


def test_plugin_section_is_added_with_the_stored_study(tmp_path: Path) -> None:
    good = Good()
    store, sid = make_study(tmp_path)
    host = load_host(extra=[good], include_entry_points=False)
    text = write_report(store, sid, tmp_path / "r.html", pm=host.pm).read_text()
    assert "<h2>Mine</h2><p>answer 42</p>" in text
    (call,) = good.seen
    assert call["n"] == 3
    assert call["study"]["method"] == "mine" and call["study"]["id"] == sid and call["study"]["name"] == "hooked"
    assert call["study"]["problem"] == PROBLEM
    assert text.index("<h2>Mine</h2>") < text.index("<h2>All evaluations</h2>")


def test_implementation_may_take_fewer_arguments(tmp_path: Path) -> None:
    """As with any pluggy hook, an implementation names only the arguments it uses."""

    class Short:
        __name__ = "Short"

        @hookimpl
        def fmio_report_sections(self, study: dict[str, Any]) -> list[str]:
            return [f"<h2>Short {study['seed']}</h2>"]

    store, sid = make_study(tmp_path)
    pm = load_host(extra=[Short()], include_entry_points=False).pm
    assert "<h2>Short 7</h2>" in write_report(store, sid, tmp_path / "r.html", pm=pm).read_text()


def test_plugin_for_another_method_adds_nothing(tmp_path: Path) -> None:
    good = Good()
    store, sid = make_study(tmp_path, method="other")
    text = write_report(store, sid, tmp_path / "r.html", pm=load_host(extra=[good]).pm).read_text()
    assert good.seen and "<h2>Mine</h2>" not in text
    assert "Ranking &amp; selection" not in text  # the built-in ranking plugin also stays out


@pytest.mark.parametrize("bad, message", [(Broken(), "ValueError: boom in the plot"),
                                          (WrongType(), "TypeError: returned str, expected a list")])
def test_failing_plugin_is_reported_and_the_report_still_written(tmp_path: Path, bad: Any, message: str) -> None:
    good = Good()
    store, sid = make_study(tmp_path)
    pm = load_host(extra=[bad, good], include_entry_points=False).pm
    with pytest.warns(RuntimeWarning, match=f"plugin 'python:{bad.__name__}' failed: {message}"):
        text = write_report(store, sid, tmp_path / "r.html", pm=pm).read_text()
    line = f"report section of plugin &#x27;python:{bad.__name__}&#x27; failed: {message}"
    assert line in text and text.count("failed:") == 1
    assert "<h2>Mine</h2>" in text and "<h2>All evaluations</h2>" in text and text.endswith("</html>")


def test_default_plugins_are_the_installed_ones(tmp_path: Path) -> None:
    """Without ``pm`` the report asks the installed plugins (``fmi-optimizer report DB``): a study of another
    method gets no section and no failure line from any of them."""
    store, sid = make_study(tmp_path, method="random")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        text = write_report(store, sid, tmp_path / "r.html").read_text()
    assert "failed:" not in text and "<h2>Method diagnostics</h2>" in text


@pytest.mark.slow
def test_a_plugin_passed_to_optimize_adds_its_section_to_the_study_report(tmp_path: Path, sample_fmu: Any) -> None:
    from fmi_optimizer import optimize

    class Observer:
        __name__ = "Observer"

        @hookimpl
        def fmio_report_sections(self, study: dict[str, Any]) -> list[str]:
            return [f"<h2>Observer</h2><p>ran {study['method']}</p>"]

    study = {"twin": {"fmu": str(sample_fmu("heat_sink")), "stop_time": 60.0, "output_interval": 10.0},
             "parameters": {"n_fins": {}}, "kpis": {"cost": "final(cost)"}, "objective": {"minimize": "cost"},
             "method": {"name": "random", "budget": {"evaluations": 3}, "seed": 1}, "evaluation": {"workers": 1}}
    outcome = optimize(study, out=tmp_path / "out", plugins=[Observer()], write_back=False)
    assert "<h2>Observer</h2><p>ran random</p>" in Path(outcome.files["report"]).read_text()


def test_best_heading_states_a_single_maximized_kpi_in_its_own_sense(tmp_path: Path) -> None:
    problem = {**PROBLEM, "objective": [{"kpi": "y", "sense": "maximize", "weight": 1.0}]}
    store = Store(tmp_path / "db.sqlite")
    sid = store.create_study("max", "mine", 7, "ab" * 32, {"raw": {}, "method": "mine", "problem": problem})
    best = {"objective": -55.3, "feasible": True, "values": {"x": 2}, "kpis": {"y": 55.3}}
    store.set_status(sid, "finished", {"best": best, "baseline": {"objective": -49.1, "feasible": True, "kpis": {}}})
    text = write_report(store, sid, tmp_path / "r.html", pm=load_host().pm).read_text()
    assert "<h2>Best — y 55.3 (maximized)" in text
    assert "As delivered (the FMU's own start values): y 49.1 (feasible); optimized: y 55.3." in text
    # a study's [fixed] values are part of the twin it ran as delivered: the line says so
    fixed = store.create_study("max", "mine", 7, "ab" * 32, {"raw": {}, "method": "mine",
                                                             "problem": {**problem, "fixed": {"Cylinder1": 1.0}}})
    store.set_status(fixed, "finished", {"best": best, "baseline": {"objective": -49.1, "feasible": True, "kpis": {}}})
    text = write_report(store, fixed, tmp_path / "f.html", pm=load_host().pm).read_text()
    assert "As delivered (the FMU's own start values, with the study's [fixed] values: Cylinder1 = 1.0): y 49.1" in text


def test_objective_axis_turns_logarithmic_only_for_positive_values_spanning_decades() -> None:
    from fmi_optimizer.report.html import objective_axis_scale

    assert objective_axis_scale([0.7, 0.33, 0.13, 0.0063, 0.0052]) == "log"  # servo_pid's ITAE
    assert objective_axis_scale([0.7, 0.33, 0.05]) == "linear"  # one decade: linear reads fine
    assert objective_axis_scale([-3.3, -1.0, 0.0]) == "linear"  # not all positive
    assert objective_axis_scale([0.0, 1.0, 100.0]) == "linear"  # a zero has no logarithm
    assert objective_axis_scale([]) == "linear"


def test_long_method_diagnostics_keep_their_summaries_in_view_and_say_where_they_are_cut(tmp_path: Path) -> None:
    """A long per-iteration log must not push the short entries (counts, restarts) out of the report, and a cut
    says so instead of ending mid-JSON."""
    store = Store(tmp_path / "db.sqlite")
    sid = store.create_study("long", "mine", 7, "ab" * 32, {"raw": {}, "method": "mine", "problem": PROBLEM})
    iterations = [{"iteration": i, "fit_seconds": 0.25, "penalty_weights": {"c": 1.5}} for i in range(3000)]
    diagnostics = {"iterations": iterations, "restarts": {"started": 2, "won": 1}}
    store.set_status(sid, "finished", {"best": None, "diagnostics": diagnostics})
    text = write_report(store, sid, tmp_path / "r.html", pm=load_host().pm).read_text()
    shown = text.split("<h2>Method diagnostics</h2><pre>")[1].split("</pre>")[0]
    assert shown.index("&quot;restarts&quot;") < shown.index("&quot;iterations&quot;")
    assert "cut at 60000 of" in shown and "fmi_optimizer.db (table studies, column result)" in shown


def test_plots_show_a_single_maximized_kpi_as_its_own_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """The convergence and parameter plots drew a maximized KPI as the minimized objective (-flow, labelled
    "objective (minimized)") beside a heading that says "flow 3.58 (maximized)"."""
    import fmi_optimizer.report.html as report
    from fmi_optimizer.records import Candidate, Evaluation
    from fmi_optimizer.study.config import ObjectiveTerm

    figures: list[Any] = []
    monkeypatch.setattr(report, "figure_html", lambda fig, *a: figures.append(fig) or "")
    evs = [Evaluation(Candidate({"h": h}), "ok", {"flow": f}, -f) for h, f in [(1.0, 2.0), (2.0, 3.5), (3.0, 3.0)]]
    terms = [ObjectiveTerm("flow", "maximize")]
    report.convergence_plot(evs, terms=terms)
    report.scatter_plots(evs, [{"name": "h", "kind": "continuous"}], terms)
    (conv,), (scatter,) = figures[0].axes, figures[1].axes
    assert conv.get_ylabel() == "flow (maximized)"
    best_line = conv.get_lines()[0].get_ydata()
    assert list(best_line) == [2.0, 3.5, 3.5]  # best so far, in flow
    assert sorted(scatter.collections[0].get_offsets()[:, 1]) == [2.0, 3.0, 3.5]
    assert figures[1]._suptitle.get_text().startswith("flow vs each parameter")
    figures.clear()
    report.convergence_plot(evs, terms=[ObjectiveTerm("flow", "minimize")])
    assert figures[0].axes[0].get_ylabel() == "objective (minimized)"
