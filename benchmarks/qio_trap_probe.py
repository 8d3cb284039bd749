"""Look inside a qio run that ended in a trap: does the model know the optimum, and does the annealer find it?

Runs ``qio`` (default options) on a random mixed design of the suite for a fixed number of evaluations, then
draws the surrogates 30 times. Per draw it reports whether the objective draw, and the energy the loop
anneals (objective draw + the constraints' Lagrangian terms + encoding penalties), rank the true optimum
below the incumbent; whether an anneal of the objective draw alone returns a design whose draw value is
<= the optimum's; and whether the design-space descent on the objective draw (``fmio_qio.moves.descend``,
what ``postprocess = "descent"`` adds) reaches the optimum from the samples of that anneal and from the
samples of an anneal of the loop's energy. Also the annealer's default schedule as the ratio of its cold to
its hot inverse temperature, and whether a best-improvement search on the instance's *true* function from the
incumbent (changing one, or up to two, variables per step) leaves it: a true local optimum needs exploration,
an improving neighbour that was never evaluated needs a neighbourhood check. The run is the suite's run of the
same design and seed, replayed exactly (numpy is loaded with one BLAS thread, as the runner loads it). Used for
docs/methods/qio.md (``postprocess``) and docs/bench/suite_discrete.md ("Fifth run")::

    python -m benchmarks.qio_trap_probe mixed4 14 300

(run seed 14 is repetition 7 of the suite's development half: ``qio|mixed4|7`` in its result files).
"""

from __future__ import annotations

import argparse
import itertools

# isort: off
# first: the suite runner holds BLAS to one thread before numpy loads, and a run's path depends on the thread
# count (the order of floating-point sums), so the probe must load numpy the same way to replay a suite run
from benchmarks.suite.run import Answer, evaluate_cached, make_discrete
# isort: on
import numpy as np
from fmio_qio.bqm import to_bqm
from fmio_qio.models import with_encoding_penalties
from fmio_qio.moves import descend
from fmio_qio.solver import anneal, default_beta_range

from benchmarks.suite import discrete


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("problem", help="a random mixed design of the suite, e.g. mixed4")
    ap.add_argument("seed", type=int, help="the run seed (the suite's development half uses 0, 2, 4, ...)")
    ap.add_argument("evaluations", type=int)
    ap.add_argument("--draws", type=int, default=30)
    args = ap.parse_args()
    prob = discrete.problem_of(args.problem)
    inst = discrete.MixedDesign(int(args.problem.removeprefix("mixed")))
    fstar, xstar = inst.optimum()
    m, _ = make_discrete("qio", prob, args.seed, {})
    cache: dict[tuple[object, ...], Answer] = {}
    while len(cache) < args.evaluations and not m.finished:
        cands = m.ask(1)
        if not cands:
            raise SystemExit(f"qio proposed nothing after {len(cache)} evaluations; nothing to probe")
        m.tell(evaluate_cached(prob, cache, cands)[0])
    best = m.recommend()
    assert best is not None
    bi = np.array(prob.space.to_indices(best.values))
    enc = m.enc
    b_inc, b_opt = enc.indices_to_bits(bi), enc.indices_to_bits(xstar)
    found = float(inst.value_of(bi[None])[0])
    print(f"{args.problem}, seed {args.seed}, {args.evaluations} evaluations: incumbent {found:.6g}, optimum "
          f"{fstar:.6g} ({(found - fstar) / abs(fstar):.2%} above), {int((bi != xstar).sum())} variables apart")
    below = below_full = annealed_ok = descended_ok = descended_full_ok = 0
    decades: list[float] = []
    for t in range(args.draws):
        d = m.models.draw(m.schedule)
        model = with_encoding_penalties(enc, d.objective, m.schedule.encoding_factor)[0]
        at_opt, at_inc = float(model.energy(b_opt)[0]), float(model.energy(b_inc)[0])
        below += at_opt < at_inc
        full = d.models[0]  # what the loop anneals: objective, constraint (Lagrangian) terms, penalties
        below_full += float(full.energy(b_opt)[0]) < float(full.energy(b_inc)[0])
        hot, cold = default_beta_range(model.lin, model.quad)
        decades.append(float(np.log10(cold / hot)))
        samples = anneal(to_bqm(model), m.settings, 100 + t, (hot, cold))
        idx = enc.bits_to_indices(enc.canonical(samples.bits)[1])[0]
        annealed_ok += float(model.energy(enc.indices_to_bits(idx)).min()) <= at_opt + 1e-9
        descended_ok += bool((descend(enc, d.objective.energy, idx) == xstar).all(axis=1).any())
        loop = anneal(to_bqm(full), m.settings, 200 + t, default_beta_range(full.lin, full.quad))
        idx_full = enc.bits_to_indices(enc.canonical(loop.bits)[1])[0]
        descended_full_ok += bool((descend(enc, d.objective.energy, idx_full) == xstar).all(axis=1).any())
    n = args.draws
    print(f"objective draws that rank the optimum below the incumbent: {below} of {n}")
    print(f"the loop's annealed energies (with the Lagrangian terms) that do: {below_full} of {n}")
    print(f"anneals of the objective draw whose best sample has a draw value <= the optimum's: {annealed_ok} of {n}")
    print(f"descents on the objective draw that reach the optimum, from those samples: {descended_ok} of {n}; "
          f"from the samples of an anneal of the loop's energy: {descended_full_ok} of {n}")
    print(f"annealer's default schedule, cold / hot inverse temperature: 10^{min(decades):.1f} to "
          f"10^{max(decades):.1f}")
    for radius in (1, 2):
        end, steps = true_local_search(inst, bi, radius)
        gap = (float(inst.value_of(end[None])[0]) - fstar) / abs(fstar)
        print(f"true-function best-improvement search from the incumbent, changing up to {radius} variable(s) per "
              f"step (feasible designs only): {steps} step(s), ends {gap:.2%} above the optimum")


def true_local_search(inst: discrete.MixedDesign, start: np.ndarray, radius: int) -> tuple[np.ndarray, int]:
    """Best-improvement descent on the instance's true function over feasible designs, each step changing up to
    ``radius`` variables to any levels: does a trapped incumbent sit in a true local optimum, or was an
    improving design near it never evaluated?"""
    cur, steps = start.copy(), 0
    while True:
        cands = []
        for r in range(1, radius + 1):
            for dims in itertools.combinations(range(len(cur)), r):
                for levels in itertools.product(*(range(inst.levels[d]) for d in dims)):
                    if any(cur[d] != v for d, v in zip(dims, levels, strict=True)):
                        c = cur.copy()
                        c[list(dims)] = levels
                        cands.append(c)
        arr = np.array(cands)
        if inst.resource is not None:
            arr = arr[inst.constraint_of(arr) <= 0]
        vals = inst.value_of(arr)
        if not len(arr) or vals.min() >= float(inst.value_of(cur[None])[0]) - 1e-12:
            return cur, steps
        cur, steps = arr[int(np.argmin(vals))], steps + 1


if __name__ == "__main__":
    main()
