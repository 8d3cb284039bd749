"""Look inside a qio run that ended in a trap: does the model know the optimum, and does the annealer find it?

Runs ``qio`` on a random mixed design of the suite for a fixed number of evaluations, then draws the objective
surrogate 30 times and, per draw, compares the draw at the incumbent and at the true optimum with the best
sample of an anneal of that draw (objective and encoding penalties; the annealer's default schedule), and with the design-space descent
(``fmio_qio.moves.descend``) from the same samples. Used for docs/methods/qio.md (``postprocess``)::

    python -m benchmarks.qio_trap_probe mixed4 14 300
"""

from __future__ import annotations

import argparse

import numpy as np
from fmio_qio.bqm import add_models, encoding_weights, to_bqm
from fmio_qio.moves import descend
from fmio_qio.solver import anneal, default_beta_range
from fmio_qio.surrogate import QuadModel

from benchmarks.suite import discrete
from benchmarks.suite.run import make_discrete
from fmi_optimizer.records import Evaluation


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
    cache: dict[tuple[object, ...], tuple[float | None, tuple[float, ...]]] = {}
    while len(cache) < args.evaluations:
        evs = []
        for c in m.ask(1):
            key = tuple(sorted((k, str(v)) for k, v in c.values.items()))
            cached = key in cache
            if not cached:
                cache[key] = prob.evaluate(c.values)
            obj, cons = cache[key]
            evs.append(Evaluation(c, "ok", objective=obj, constraints=cons, cached=cached))
        m.tell(evs)
    best = m.recommend()
    assert best is not None
    bi = np.array(prob.space.to_indices(best.values))
    enc = m.enc
    b_inc, b_opt = enc.indices_to_bits(bi), enc.indices_to_bits(xstar)
    found = float(inst.value_of(bi[None])[0])
    print(f"{args.problem}, seed {args.seed}, {args.evaluations} evaluations: incumbent {found:.6g}, optimum "
          f"{fstar:.6g} ({(found - fstar) / abs(fstar):.2%} above), {int((bi != xstar).sum())} variables apart")
    below = below_full = annealed_ok = descended_ok = 0
    decades: list[float] = []
    for t in range(args.draws):
        d = m.models.draw(m.schedule)
        lin, quad, off = enc.penalty_terms(encoding_weights(enc, d.objective) * m.schedule.encoding_factor)
        model = add_models([(1.0, d.objective), (1.0, QuadModel(lin, quad, off))])
        at_opt, at_inc = float(model.energy(b_opt)[0]), float(model.energy(b_inc)[0])
        below += at_opt < at_inc
        full = d.models[0]  # what the loop anneals: objective, constraint (Lagrangian) terms, penalties
        below_full += float(full.energy(b_opt)[0]) < float(full.energy(b_inc)[0])
        hot, cold = default_beta_range(model.lin, model.quad)
        decades.append(float(np.log10(cold / hot)))
        samples = anneal(to_bqm(model), m.settings, 100 + t, (hot, cold))
        idx = enc.bits_to_indices(enc.canonical(samples.bits)[1])[0]
        annealed_ok += float(model.energy(enc.indices_to_bits(idx)).min()) <= at_opt + 1e-9
        ends = descend(enc, model.energy, idx)
        descended_ok += bool((ends == xstar).all(axis=1).any())
    print(f"draws with the optimum below the incumbent: {below} of {args.draws}")
    print(f"draws whose annealer energy (with the constraint terms) puts the optimum below the incumbent: "
          f"{below_full} of {args.draws}")
    print(f"anneals whose best sample is as low under the draw as the optimum: {annealed_ok} of {args.draws}")
    print(f"descents from those samples that reach the optimum: {descended_ok} of {args.draws}")
    print(f"annealer's default schedule (cold / hot inverse temperature): {min(decades):.1f}-{max(decades):.1f} "
          "decades")


if __name__ == "__main__":
    main()
