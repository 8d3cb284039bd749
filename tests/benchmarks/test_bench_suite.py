"""The benchmark suite's problem generators: determinism by seed, disjoint development and held-out halves,
and the known optima of the analytic functions (no optimizer runs here)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import ROOT, import_benchmark

continuous = import_benchmark("suite.continuous")
discrete = import_benchmark("suite.discrete")


@pytest.mark.parametrize("name", sorted(continuous.STANDARD))
def test_standard_function_optimum(name: str) -> None:
    s = continuous.STANDARD[name]
    f, lo, hi = s.f, np.array(s.lo), np.array(s.hi)
    assert f(np.array(s.x_star)) == pytest.approx(s.optimum, abs=1e-5)
    u = np.random.default_rng(0).random((3000, len(lo)))
    assert min(f(lo + v * (hi - lo)) for v in u) >= s.optimum - 1e-9  # nothing in the box beats it


def test_twelve_functions_in_2_to_10_dimensions_and_budgets() -> None:
    assert len(continuous.STANDARD) >= 12
    for name in continuous.STANDARD:
        t = continuous.make_task(name)
        assert 2 <= len(t.lo) <= 10 and t.budget == 10 * len(t.lo) + 20


@pytest.mark.parametrize("name", ["branin", "hartmann6", "michalewicz5", "gp1"])
def test_constrained_variant_keeps_the_optimum_feasible(name: str) -> None:
    t = continuous.make_task(name, "constrained")
    assert t.constraint(t.x_star)[0] <= -0.05 + 1e-9
    u = np.random.default_rng(1).random((2000, len(t.lo)))
    infeasible = np.mean([t.constraint(t.lo + v * (t.hi - t.lo))[0] > 0 for v in u])
    assert 0.15 < infeasible < 0.95  # the constraint bites


def test_noisy_variant_adds_noise_only_to_what_is_told() -> None:
    t = continuous.make_task("branin", "noisy")
    x = np.array([1.0, 2.0])
    ys = [t.observe(x, np.random.default_rng(s))[0] for s in range(50)]
    assert np.std(ys) > 0.5 * t.noise_sd and t.f(x) == continuous.make_task("branin").f(x)


def test_gp_prior_instances_are_deterministic_and_optimum_is_a_minimum() -> None:
    a, b = continuous.GPPrior(3), continuous.GPPrior(3)
    x = np.full(a.d, 0.3)
    assert a(x) == b(x) and a.d == b.d and 2 <= a.d <= 8
    assert continuous.GPPrior(4)(np.full(continuous.GPPrior(4).d, 0.3)) != a(x) or continuous.GPPrior(4).d != a.d
    fstar, xs = a.minimize()
    assert a(xs) == pytest.approx(fstar)
    u = np.random.default_rng(2).random((5000, a.d))
    assert fstar <= min(a(v) for v in u)
    eps = 1e-6  # the gradient is the function's
    g = np.array([(a(x + eps * e) - a(x - eps * e)) / (2 * eps) for e in np.eye(a.d)])
    assert np.allclose(g, a.grad(x), atol=1e-5)


@pytest.mark.parametrize("mod", [continuous, discrete])
def test_halves_are_disjoint(mod) -> None:  # type: ignore[no-untyped-def]
    seeds = {h: {mod.RUN_SEED[h](r) for r in range(50)} for h in ("dev", "heldout")}
    assert not seeds["dev"] & seeds["heldout"]
    dev, held = set(mod.problem_names("dev")), set(mod.problem_names("heldout"))
    generated = [p for p in dev | held if p.startswith(("gp", "mixed", "bocs", "qubo"))]
    assert generated and not {p for p in generated if p in dev} & {p for p in generated if p in held}


def test_more_development_designs_are_even_seeds_outside_both_halves_and_refused_as_held_out() -> None:
    import argparse

    more = discrete.more_dev_names()
    assert len(more) == 10 and all(int(p[5:]) % 2 == 0 for p in more)
    assert not set(more) & set(discrete.problem_names("dev") + discrete.problem_names("heldout"))
    run = import_benchmark("suite.run")
    args = argparse.Namespace(family="discrete", half="heldout", problems=more[0], methods="qio", options="{}",
                              label=None, out="unused.json", reps=1, first_rep=0)
    with pytest.raises(SystemExit, match="belongs to the development half"):
        run.cmd_run(args)


def test_mixed_design_is_deterministic_with_exact_optimum() -> None:
    m1, m2 = discrete.MixedDesign(5), discrete.MixedDesign(5)
    assert m1.levels == m2.levels and len(m1.pairs) == len(m2.pairs)
    kinds = {d.kind for d in m1.dims}
    assert kinds == {"categorical", "integer", "boolean"}
    assert all(3 <= lv <= 6 for d, lv in zip(m1.dims, m1.levels, strict=True) if d.kind == "categorical")
    assert all(lv <= 16 for d, lv in zip(m1.dims, m1.levels, strict=True) if d.kind == "integer")
    fstar, arg = m1.optimum()
    p = m1.problem()
    values = {d.name: d.value_at(int(i)) for d, i in zip(m1.dims, arg, strict=True)}
    obj, cons = p.evaluate(values)
    assert obj == pytest.approx(fstar) and all(c <= 0 for c in cons)
    rng = np.random.default_rng(3)
    for _ in range(2000):  # no random feasible design beats the enumerated optimum
        idx = np.array([rng.integers(lv) for lv in m1.levels])
        o, c = p.evaluate({d.name: d.value_at(int(i)) for d, i in zip(m1.dims, idx, strict=True)})
        assert o is not None and (o >= fstar - 1e-12 or any(v > 0 for v in c))


def test_mixed_designs_vary_and_some_are_constrained() -> None:
    ms = [discrete.MixedDesign(s) for s in range(12)]
    assert len({tuple(m.levels) for m in ms}) > 6
    assert 0 < sum(m.resource is not None for m in ms) < 12
    assert all(discrete.MIN_DESIGNS <= math.prod(m.levels) <= discrete.MAX_DESIGNS for m in ms)


regimes = import_benchmark("suite.regimes")


def test_piecewise_instances_jump_across_cells_and_differ_in_roughness() -> None:
    f = regimes.piecewise_of("piecewise6_1")
    assert f is regimes.piecewise_of("piecewise6_1")  # one instance (and one optimum estimate) per name
    x = np.random.default_rng(0).random((4000, 6))
    np.testing.assert_array_equal(f.values(x), regimes.Piecewise(6, 1).values(x))  # determined by (d, seed)
    cells = f.cell(x)
    assert len(set(cells)) >= 4
    # a jump: two points a hair apart on either side of a cut have values far apart
    p = f._params
    n, b = p["normals"][0], p["offsets"][0]
    on_cut = x[0] - (x[0] @ n - b) / (n @ n) * n
    below, above = on_cut - 1e-9 * n, on_cut + 1e-9 * n
    assert abs(f(below) - f(above)) > 1e-3
    assert p["width"].max() / p["width"].min() > 2  # one smoothness does not fit every cell


def test_piecewise_optimum_is_not_beaten_by_dense_sampling_and_halves_are_disjoint() -> None:
    f = regimes.piecewise_of("piecewise6_0")
    x = np.random.default_rng(11).random((50_000, 6))
    assert f.optimum <= f.values(x).min() + 1e-12
    assert not set(regimes.names("dev")) & set(regimes.names("heldout"))


report = import_benchmark("suite.report")


def test_ablation_table_pairs_runs_by_problem_and_seed(tmp_path) -> None:
    import json as _json

    def write(name: str, label: str, regrets: dict[tuple[str, int], float]) -> str:
        runs = {f"bayes|{p}|{s}": {"method": "bayes", "problem": p, "seed": s, "regret": v, "budget": 40}
                for (p, s), v in regrets.items()}
        path = tmp_path / name
        path.write_text(_json.dumps({"meta": {"label": label}, "runs": runs}))
        return str(path)

    base = {(p, s): 1.0 for p in ("a", "b") for s in range(4)}
    variant = {("a", s): 0.5 for s in range(4)} | {("b", s): 2.0 for s in range(3)}  # b's seed 3 is missing
    text = report.ablation("continuous", write("base.json", "defaults", base), [write("v.json", "v", variant)])
    assert "7 paired runs on 2 problems" in text
    assert "| a | 1 | 0.5 | 0.5 | 4 |" in text and "| b | 1 | 2 | 2 | 3 |" in text
    # geometric mean of the 7 paired ratios: 0.5^4 * 2^3 = 0.5 -> 0.5^(1/7)
    assert f"geometric mean of paired ratios {0.5 ** (1 / 7):.3g} over 7 pairs" in text
    assert "better than 1/1.5 on 1 problems, worse than 1.5 on 1, of 2" in text
    assert "Warning" in text  # neither file records its environment


def test_ablation_warns_when_base_and_variant_ran_in_different_environments(tmp_path) -> None:
    """A run's path depends on library versions and CPU; an ablation across environments says so."""
    import json as _json

    def write(name: str, env: str) -> str:
        runs = {f"qio|p|{s}": {"method": "qio", "problem": "p", "seed": s, "evals": 50, "budget": 300,
                               "environment": env} for s in range(6)}
        path = tmp_path / name
        path.write_text(_json.dumps({"meta": {"label": name}, "runs": runs}))
        return str(path)

    same = report.ablation("discrete", write("a.json", "numpy 2.4.6"), [write("b.json", "numpy 2.4.6")])
    other = report.ablation("discrete", write("a.json", "numpy 2.4.6"), [write("c.json", "numpy 2.3.0")])
    assert "Warning" not in same
    assert "Warning" in other and "numpy 2.3.0" in other


def test_runner_stores_code_and_environment_with_every_run(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json as _json
    import sys

    run = import_benchmark("suite.run")
    monkeypatch.syspath_prepend(str(ROOT))  # as `python -m benchmarks.suite` from the root: lazy imports resolve
    out = tmp_path / "r.json"
    monkeypatch.setattr(sys, "argv", ["suite", "run", "--family", "discrete", "--half", "dev", "--reps", "1",
                                      "--problems", "bocs10_0", "--methods", "random", "--out", str(out)])
    run.main()
    (r,) = _json.loads(out.read_text())["runs"].values()
    assert r["environment"].startswith("python ") and "numpy " in r["environment"]
    assert r["code"] == "unknown" or len(r["code"].removesuffix("-dirty")) == 12
    # a note added by hand to the meta does not stop a resumed run; another configuration does
    data = _json.loads(out.read_text())
    data["meta"]["note"] = "relabelled by hand"
    out.write_text(_json.dumps(data))
    monkeypatch.setattr(sys, "argv", [a if a != "1" else "2" for a in sys.argv])  # --reps 2
    run.main()
    data = _json.loads(out.read_text())
    assert len(data["runs"]) == 2 and data["meta"]["note"] == "relabelled by hand"
    monkeypatch.setattr(sys, "argv", sys.argv + ["--label", "other"])
    with pytest.raises(SystemExit, match="use another --out"):
        run.main()


def test_report_common_takes_every_method_on_the_seeds_all_ran(tmp_path) -> None:
    import json as _json

    def run(m: str, s: int, v: float) -> dict:
        return {"method": m, "problem": "p", "seed": s, "rep": s, "regret": v, "budget": 40, "cpu_per_proposal": 0.1}

    # bayes ran 8 seeds at regret 1; the peer only seeds 0-1, where bayes happens to be the same; on the seeds the
    # peer did not run, bayes is worse (regret 3), which only the all-seed medians see
    runs = {f"bayes|p|{s}": run("bayes", s, 1.0 if s < 2 else 3.0) for s in range(8)}
    runs |= {f"peer|p|{s}": run("peer", s, 2.0) for s in range(2)}
    path = tmp_path / "r.json"
    path.write_text(_json.dumps({"meta": {"label": "defaults", "half": "heldout", "options": {}}, "runs": runs}))
    every = report.report("continuous", [str(path)])
    common = report.report("continuous", [str(path)], same_seeds=True)
    assert "| p | 3 [2.5, 3] (8) | 2 [2, 2] (2) |" in every
    assert "| p | 1 [1, 1] (2) | 2 [2, 2] (2) |" in common
    assert "seeds that all methods ran" in common and "seeds that all methods ran" not in every
    # pooled over (problem, seed): on the shared seeds 0-1 bayes (1) is below the peer (2) in both pairs
    assert "| peer | 2 | 2 | 0 | 0 | 0.5 | 1 |" in every


def test_trap_probe_reports_every_count(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The probe behind docs/methods/qio.md runs end to end on a small budget and prints each count out of the
    draws it made (it only reads a qio run; the numbers themselves are not asserted here)."""
    import re
    import sys

    probe = import_benchmark("qio_trap_probe")
    monkeypatch.setattr(sys, "argv", ["qio_trap_probe", "mixed0", "0", "30", "--draws", "2"])
    probe.main()
    out = capsys.readouterr().out
    assert out.startswith("mixed0, seed 0, 30 evaluations: incumbent")
    counts = re.findall(r"(\d+) of 2", out)
    assert len(counts) == 5 and all(0 <= int(c) <= 2 for c in counts), out
    assert re.search(r"inverse temperature: 10\^[\d.]+ to 10\^[\d.]+", out), out
    ends = re.findall(r"up to (\d) variable\(s\) per step \(feasible designs only\): \d+ step\(s\), ends ([\d.]+)% above", out)
    assert [r for r, _ in ends] == ["1", "2"] and float(ends[1][1]) <= float(ends[0][1]), out
