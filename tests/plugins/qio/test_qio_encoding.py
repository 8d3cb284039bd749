"""qio encodings: round trips for every dimension kind and scheme, penalties zero exactly on valid patterns,
and calibrated penalty weights whose ground state (dimod.ExactSolver) decodes to a valid design."""

from __future__ import annotations

import dimod
import numpy as np
import pytest
from fmio_qio.bqm import add_models, encoding_weights, to_bqm
from fmio_qio.encoding import Encoding
from fmio_qio.surrogate import QuadModel
from hypothesis import given, settings
from hypothesis import strategies as st

from fmi_optimizer.errors import StudyError
from fmi_optimizer.space import Boolean, Categorical, Continuous, DesignSpace, Dimension, Integer

SCHEMES_MULTI = ["onehot", "binary", "unary", "domain_wall"]


@st.composite
def dimension_and_scheme(draw: st.DrawFn, i: int) -> tuple[Dimension, str | None]:
    kind = draw(st.sampled_from(["integer", "categorical", "boolean", "discrete"]))
    name = f"d{i}"
    if kind == "boolean":
        return Boolean(name), draw(st.sampled_from([None, "bit"]))
    k = draw(st.integers(2, 12))
    scheme = draw(st.sampled_from([None, *SCHEMES_MULTI]))
    if kind == "integer":
        lo = draw(st.integers(-5, 5))
        return Integer(name, lo, lo + k - 1), scheme
    if kind == "categorical":
        return Categorical(name, tuple(f"item{j}" for j in range(k))), scheme
    return Continuous(name, 0.5, 3.0, log=draw(st.booleans()), levels=k), scheme


@st.composite
def encodings(draw: st.DrawFn) -> Encoding:
    n = draw(st.integers(1, 5))
    dims = [draw(dimension_and_scheme(i)) for i in range(n)]
    overrides = {d.name: s for d, s in dims if s is not None}
    return Encoding(DesignSpace([d for d, _ in dims]), overrides=overrides)


@settings(max_examples=150, deadline=None)
@given(enc=encodings(), seed=st.integers(0, 2**31 - 1))
def test_values_round_trip_through_bits(enc: Encoding, seed: int) -> None:
    rng = np.random.default_rng(seed)
    idx = enc.random_indices(rng, 5)
    for row in idx:
        values = enc.space.from_indices(row.tolist())
        bits = enc.encode(values)
        assert bits.shape == (enc.n_bits,)
        back, valid = enc.decode(bits)
        assert valid
        assert back == values
        assert enc.space.validate(back) == back


@settings(max_examples=150, deadline=None)
@given(enc=encodings(), data=st.data())
def test_any_bit_pattern_decodes_to_a_valid_design_and_penalty_is_zero_iff_valid(enc: Encoding, data: st.DataObject) -> None:
    bits = np.array(data.draw(st.lists(st.integers(0, 1), min_size=enc.n_bits, max_size=enc.n_bits)), dtype=np.int8)
    values, valid = enc.decode(bits)
    enc.space.validate(values)  # raises if the decoded design is not in the space
    lin, quad, off = enc.penalty_terms()
    pen = float(off + bits @ lin + bits @ quad @ bits)
    if valid:
        assert pen == pytest.approx(0.0)
    else:
        assert pen >= 1.0 - 1e-9
        assert any(b.constrained for b in enc.blocks)


def test_bit_counts_and_report() -> None:
    space = DesignSpace([Categorical("c", ("a", "b", "c", "d")), Integer("i", 0, 9), Boolean("b"),
                         Continuous("x", 0.0, 1.0, levels=5), Integer("big", 0, 99)])
    enc = Encoding(space, overrides={"x": "domain_wall"})
    table = {row["name"]: row for row in enc.table()}
    assert table["c"]["scheme"] == "onehot" and table["c"]["bits"] == 4
    assert table["i"]["scheme"] == "unary" and table["i"]["bits"] == 9
    assert table["b"]["bits"] == 1
    assert table["x"]["scheme"] == "domain_wall" and table["x"]["bits"] == 4
    assert table["big"]["scheme"] == "binary" and table["big"]["bits"] == 7
    assert enc.n_bits == 4 + 9 + 1 + 4 + 7
    assert enc.report()["warnings"] == []
    wide = Encoding(DesignSpace([Categorical(f"c{j}", tuple(range(20))) for j in range(8)]))
    assert wide.n_bits == 160 and "160 bits" in wide.warnings()[0]


def test_bad_encoding_requests_are_user_errors() -> None:
    space = DesignSpace([Integer("i", 0, 5), Continuous("x", 0.0, 1.0)])
    with pytest.raises(StudyError, match="levels"):
        Encoding(space)
    space = DesignSpace([Integer("i", 0, 5)])
    with pytest.raises(StudyError, match="unknown encoding"):
        Encoding(space, overrides={"i": "gray"})
    with pytest.raises(StudyError, match="unknown parameter"):
        Encoding(space, overrides={"j": "binary"})
    with pytest.raises(StudyError, match="'bit' needs 2 levels"):
        Encoding(space, overrides={"i": "bit"})


def test_space_filling_is_valid_distinct_and_avoids_excluded() -> None:
    space = DesignSpace([Categorical("c", ("a", "b", "c")), Integer("i", 0, 3), Boolean("b")])
    enc = Encoding(space, overrides={"i": "domain_wall"})
    rng = np.random.default_rng(0)
    first = enc.space_filling(rng, 6)
    exclude = {r.tobytes() for r in first}
    rows = enc.space_filling(rng, 10, exclude)
    keys = [r.tobytes() for r in rows]
    assert len(set(keys)) == len(keys) == 10
    assert not exclude & set(keys)
    _, valid = enc.bits_to_indices(rows)
    assert valid.all()


# -- penalty correctness with the exact solver --------------------------------------------------
SMALL = DesignSpace([Categorical("c", ("a", "b", "c")), Integer("dw", 0, 3), Integer("oh", 1, 3), Boolean("b")])


def _random_objective(n: int, seed: int) -> QuadModel:
    rng = np.random.default_rng(seed)
    return QuadModel(rng.normal(0, 3, n), np.triu(rng.normal(0, 3, (n, n)), 1), 0.0)


def _ground_state_valid(enc: Encoding, obj: QuadModel, scale: float) -> bool:
    lin, quad, off = enc.penalty_terms(encoding_weights(enc, obj) * scale)
    bqm = to_bqm(add_models([(1.0, obj), (1.0, QuadModel(lin, quad, off))]))
    ss = dimod.ExactSolver().sample(bqm)
    lowest = ss.lowest()  # every ground state, in case of ties
    bits = np.array([[row[i] for i in range(enc.n_bits)] for row in lowest.samples()], dtype=np.int8)
    _, valid = enc.bits_to_indices(bits)
    return bool(valid.all())


@pytest.mark.parametrize("seed", range(8))
def test_calibrated_penalties_make_every_ground_state_valid(seed: int) -> None:
    enc = Encoding(SMALL, overrides={"dw": "domain_wall", "oh": "onehot"})
    assert enc.n_bits == 3 + 3 + 3 + 1
    assert _ground_state_valid(enc, _random_objective(enc.n_bits, seed), 1.0)


def test_too_weak_penalties_are_caught_by_the_same_check() -> None:
    """The check above can fail: with penalties at 5 % of the calibrated weights, some ground state is invalid."""
    enc = Encoding(SMALL, overrides={"dw": "domain_wall", "oh": "onehot"})
    assert not all(_ground_state_valid(enc, _random_objective(enc.n_bits, s), 0.05) for s in range(8))


@pytest.mark.parametrize("seed", range(4))
def test_numpy_beta_range_matches_the_samplers_own_default(seed: int) -> None:
    from dwave.samplers.sa.sampler import _default_ising_beta_range
    from fmio_qio.solver import default_beta_range

    rng = np.random.default_rng(seed)
    n = 15
    quad = np.triu(rng.standard_normal((n, n)) * (rng.random((n, n)) < 0.3), 1)
    lin = rng.standard_normal(n) * (rng.random(n) < 0.7)
    spin = to_bqm(QuadModel(lin, quad, 0.0)).spin
    assert default_beta_range(lin, quad) == pytest.approx(tuple(_default_ising_beta_range(spin.linear, spin.quadratic)))
