"""Unit tests of qio's parts: output warping, the trust region (nearest-design fit set, pull term), the book,
the restarts' bookkeeping."""

from __future__ import annotations

import dimod
import numpy as np
import pytest
from fmio_qio.book import PointBook, TrainingData
from fmio_qio.bqm import PenaltySchedule, to_bqm
from fmio_qio.encoding import Encoding
from fmio_qio.models import SurrogateSet
from fmio_qio.options import QioOptions
from fmio_qio.warp import ObjectiveWarp, warp_constraint
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fmi_optimizer.errors import StudyError
from fmi_optimizer.method import Restarts
from fmi_optimizer.records import Candidate, Evaluation
from fmi_optimizer.space import Boolean, Categorical, DesignSpace, Integer

finite = st.floats(-1e4, 1e4, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, min_size=3, max_size=30, unique=True))
def test_objective_warp_keeps_the_ranking(ys: list[float]) -> None:
    y = np.array(ys)
    w = ObjectiveWarp.fitted(y, "log")
    ys_sorted = np.sort(y)
    assert (np.diff(w(ys_sorted)) >= 0).all()  # monotone: the ranking is kept (ties only within rounding)
    assert (ObjectiveWarp.fitted(y, "none")(y) == y).all()


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, min_size=1, max_size=30))
@example([4.0, 5e-324])  # found by hypothesis: the smallest violation underflowed to 0, i.e. "feasible"
def test_constraint_warp_keeps_feasibility_and_order(cs: list[float]) -> None:
    c = np.array(cs)
    w = warp_constraint(c, "log")
    assert ((w <= 0) == (c <= 0)).all()
    order = np.argsort(c, kind="stable")
    assert (np.diff(w[order]) >= -1e-12).all()


def test_nearest_keeps_the_designs_closest_to_the_centre_in_their_order() -> None:
    enc = Encoding(DesignSpace([Boolean(f"b{i}") for i in range(6)]))
    bits = np.array([[1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 1], [1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]], dtype=np.int8)
    data = TrainingData(bits, np.arange(4.0), np.zeros((4, 1)), np.zeros((0, 6), dtype=np.int8))
    near = PointBook(enc).nearest(data, np.zeros(6, dtype=np.int8), 2)
    assert near.y.tolist() == [1.0, 3.0]  # distances 1 and 0; original order kept
    assert PointBook(enc).nearest(data, np.zeros(6, dtype=np.int8), 10) is data


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_strong_trust_region_pull_makes_the_centre_the_ground_state(seed: int) -> None:
    """The pull is lambda x Hamming distance to the centre: linear in the bits, so with a large weight the
    lowest energy of (draw + pull + encoding penalties) is exactly the centre (checked by enumeration)."""
    space = DesignSpace([Categorical("c", items=("a", "b", "c")), Integer("k", 0, 3), Boolean("d")])
    enc = Encoding(space)
    rng = np.random.default_rng(seed)
    models = SurrogateSet(enc, QioOptions(gibbs_burnin=20, gibbs_steps=5), rng, ())
    idx = enc.random_indices(rng, 12)
    bits = enc.indices_to_bits(idx)
    y = rng.standard_normal(12) + bits.sum(axis=1)
    models.fit(TrainingData(bits, y, np.zeros((12, 0)), np.zeros((0, enc.n_bits), dtype=np.int8)))
    centre = bits[int(np.argmax(y))]  # the worst design: the model alone would not pick it
    draw = models.draw(PenaltySchedule(), centre, pull=50.0 * enc.n_bits)
    model, weights = draw.models[0], draw.weights
    assert weights["trust_region_pull"] > 0
    best = dimod.ExactSolver().sample(to_bqm(model)).first.sample
    ground = np.array([best[i] for i in range(enc.n_bits)], dtype=np.int8)
    assert (ground == centre).all()


def test_trust_region_options_run_the_loop_and_are_checked() -> None:
    from fmio_qio import QioMethod

    from fmi_optimizer.method import Problem
    from fmi_optimizer.records import Evaluation

    space = DesignSpace([Integer(f"k{i}", 0, 3) for i in range(5)])
    m = QioMethod(Problem(space), {"local_fit": 12, "trust_pull": 1.0, "trust_alternate": True, "warp": "log",
                                   "gibbs_burnin": 30, "gibbs_steps": 3, "num_sweeps": 100}, seed=0)
    seen = set()
    for _ in range(30):
        (c,) = m.ask(1)
        key = tuple(sorted(c.values.items()))
        assert key not in seen
        seen.add(key)
        m.tell([Evaluation(c, "ok", objective=float(sum((v - 2) ** 2 for v in c.values.values())))])
    d = m.diagnostics()
    pulls = [it["penalty_weights"].get("trust_region_pull") for it in d["iterations"]]
    assert any(p for p in pulls) and any(p is None for p in pulls)  # alternates global and local batches
    with pytest.raises(ValueError):
        QioOptions(local_fit=-1)


def test_local_neighbourhood_holds_every_one_and_two_dimension_change() -> None:
    from fmio_qio.moves import one_dimension_changes, two_dimension_changes

    space = DesignSpace([Integer("a", 0, 3), Categorical("c", items=("x", "y", "z")), Boolean("b")])
    enc = Encoding(space)
    base = np.array([1, 0, 1])
    ones, twos = one_dimension_changes(enc, base), two_dimension_changes(enc, base)
    assert len(ones) == 3 + 2 + 1 and all((x != base).sum() == 1 for x in ones)
    assert len(twos) == 3 * 2 + 3 * 1 + 2 * 1  # every pair of dimensions, every other level of each
    assert len({tuple(x) for x in twos}) == len(twos) and all((x != base).sum() == 2 for x in twos)


def test_descent_crosses_a_one_hot_block_that_stops_a_bit_flip_descent() -> None:
    """From a valid design at a poor level of a categorical, every single bit flip breaks the one-hot block and
    pays its penalty, so dwave-samplers' steepest descent stays at that level; the design-space descent moves
    the categorical in one step and ends at the energy's minimum."""
    from dwave.samplers import SteepestDescentSolver
    from fmio_qio.moves import descend
    from fmio_qio.surrogate import QuadModel

    enc = Encoding(DesignSpace([Categorical("c", items=tuple("vwxyz")), Integer("n", 0, 7)]))
    value = np.r_[np.array([0.0, 1.0, 2.0, 3.0, -1.0]), np.full(7, 0.5)]  # c = z best; n = 0 best (unary bits)
    plin, pquad, poff = enc.penalty_terms([10.0])
    model = QuadModel(value + plin, pquad, poff)
    start = np.array([[1, 3]])
    flipped = SteepestDescentSolver().sample(to_bqm(model), initial_states=(enc.indices_to_bits(start),
                                                                             list(range(enc.n_bits))))
    by_flips = enc.bits_to_indices(flipped.record.sample)[0]
    assert by_flips.tolist() == [[1, 0]]  # the integer moved, the categorical is stuck behind its penalty
    ends = descend(enc, model.energy, start)
    assert ends.tolist() == [[4, 0]]
    every = np.array([[c, n] for c in range(5) for n in range(8)])
    assert model.energy(enc.indices_to_bits(ends))[0] == model.energy(enc.indices_to_bits(every)).min()


def test_descent_option_adds_end_points_that_the_draws_pick(monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``postprocess = "descent"`` the loop descends from every anneal's samples and some proposals are
    descent end points (counted as ``descent_picks``); the default never descends."""
    import fmio_qio.method as qio_method
    from fmio_qio import QioMethod

    from fmi_optimizer.method import Problem
    from fmi_optimizer.records import Evaluation

    calls: list[int] = []
    real = qio_method.descend

    def counted(*args: object, **kwargs: object) -> np.ndarray:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(qio_method, "descend", counted)
    space = DesignSpace([Categorical("c", items=tuple("vwxyz")), Integer("n", 0, 7), Boolean("b")])

    def run(options: dict[str, object]) -> QioMethod:
        m = QioMethod(Problem(space, budget_evaluations=30), options, seed=3)
        for _ in range(30):
            (c,) = m.ask(1)
            v = c.values
            m.tell([Evaluation(c, "ok", objective=float("vwxyz".index(v["c"]) + v["n"] - 2 * v["b"]))])
        return m

    plain = run({})
    assert not calls and plain.diagnostics()["duplicates"]["descent_picks"] == 0
    m = run({"postprocess": "descent"})
    assert calls and m.diagnostics()["duplicates"]["descent_picks"] > 0
    best = m.recommend()
    assert best is not None and best.values == {"c": "v", "n": 0, "b": True}
    with pytest.raises(StudyError, match="descent"):  # the refusal lists the accepted values, "descent" among them
        QioMethod(Problem(space), {"postprocess": "downhill"})


def _fitted_with_constraint(seed: int) -> tuple[Encoding, SurrogateSet, np.ndarray]:
    """Six bits; objective = -(number of ones), constraint = ones - 3 (feasible with at most 3 ones)."""
    enc = Encoding(DesignSpace([Boolean(f"b{i}") for i in range(6)]))
    rng = np.random.default_rng(seed)
    models = SurrogateSet(enc, QioOptions(gibbs_burnin=60, gibbs_steps=5), rng, ("ones",))
    allbits = ((np.arange(64)[:, None] >> np.arange(6)) & 1).astype(np.int8)
    ones = allbits.sum(axis=1).astype(float)
    models.fit(TrainingData(allbits, -ones, (ones - 3.0)[:, None], np.zeros((0, 6), dtype=np.int8)))
    return enc, models, allbits


@pytest.mark.parametrize("seed", [0, 1])
def test_multiplier_ladder_moves_the_ground_state_from_the_objective_to_feasibility(seed: int) -> None:
    """One draw, one annealer energy per constraint weight of the ladder; with a tiny weight the ground state
    is the objective's optimum (all ones, infeasible), with a large one it is feasible (checked exactly)."""
    enc, models, _ = _fitted_with_constraint(seed)
    draw = models.draw(PenaltySchedule(), scales=(1e-3, 1.0, 30.0))
    assert len(draw.models) == 3 and set(draw.constraints) == {0}
    grounds = []
    for model in draw.models:
        best = dimod.ExactSolver().sample(to_bqm(model)).first.sample
        grounds.append(sum(best[i] for i in range(enc.n_bits)))
    assert grounds[0] == 6 and grounds[-1] <= 3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_thompson_pick_takes_the_lowest_objective_draw_among_draw_feasible_rows(seed: int) -> None:
    _, models, allbits = _fitted_with_constraint(seed)
    draw = models.draw(PenaltySchedule())
    cons = draw.constraints[0].energy(allbits)
    feasible = cons <= 0
    assert feasible.any() and not feasible.all()
    i = models.thompson_pick(draw, allbits)
    assert feasible[i]
    assert draw.objective.energy(allbits)[i] == draw.objective.energy(allbits)[feasible].min()
    # no row feasible under the draw: the least violating one
    bad = allbits[~feasible]
    j = models.thompson_pick(draw, bad)
    assert cons[~feasible][j] == cons[~feasible].min()


def test_thompson_pick_without_constraints_is_the_objective_draws_minimum() -> None:
    enc = Encoding(DesignSpace([Boolean(f"b{i}") for i in range(5)]))
    rng = np.random.default_rng(3)
    models = SurrogateSet(enc, QioOptions(gibbs_burnin=40, gibbs_steps=5), rng, ())
    allbits = ((np.arange(32)[:, None] >> np.arange(5)) & 1).astype(np.int8)
    models.fit(TrainingData(allbits, allbits @ np.arange(5.0) - 4.0 * allbits[:, 0], np.zeros((32, 0)),
                            np.zeros((0, 5), dtype=np.int8)))
    draw = models.draw(PenaltySchedule(), scales=(0.5, 2.0))
    assert len(draw.models) == 1  # no constraint surrogate: one energy, whatever the ladder
    assert models.thompson_pick(draw, allbits) == int(np.argmin(draw.objective.energy(allbits)))


def test_multiplier_ladder_option_is_checked() -> None:
    with pytest.raises(ValueError):
        QioOptions(multiplier_ladder=())
    with pytest.raises(ValueError):
        QioOptions(multiplier_ladder=(1.0, 0.0))


def test_restarts_start_after_a_stall_end_on_a_better_design_and_restart_when_stalled_again() -> None:
    r = Restarts(after=3)

    def tell(key: bytes, y: float) -> None:
        r.told([Evaluation(Candidate({"k": key.hex()}), "ok", objective=y)], [key])

    tell(b"a", 1.0)
    for k in (b"b", b"c"):
        tell(k, 2.0)
    assert not r.active
    tell(b"d", 2.0)  # the third evaluation without a better incumbent
    assert r.active and r.started == 1 and r.incumbent() is None
    tell(b"e", 0.5)  # not asked by the fresh search: ignored by it, though it is the run's new best
    assert r.active and r.incumbent() is None
    for k, y in ((b"f", 3.0), (b"g", 2.5)):
        r.asked(k)
        tell(k, y)
    assert r.incumbent() is not None and r.incumbent().values == {"k": b"g".hex()}  # type: ignore[union-attr]
    for k in (b"h", b"i", b"j"):  # three fresh designs no better than the fresh search's best: a new one starts
        r.asked(k)
        tell(k, 2.6)
    assert r.active and r.started == 2 and r.incumbent() is None
    r.asked(b"k")
    tell(b"k", 0.1)  # beats the run's incumbent (0.5): back to learning from everything
    assert not r.active and r.won == 1 and r.stall == 0
