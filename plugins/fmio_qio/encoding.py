"""Design space <-> binary variables.

Each discrete dimension becomes a block of bits with one *scheme*:

- ``bit``: a Boolean as one bit;
- ``onehot``: one bit per level, valid when exactly one is set (quadratic penalty ``(sum b - 1)^2``);
- ``binary``: ``ceil(log2 k)`` bits, index = the binary number clamped to ``k - 1`` (no penalty);
- ``unary``: thermometer code, ``k - 1`` bits, index = number of set bits (every pattern valid, no penalty);
- ``domain_wall``: ``k - 1`` bits ``1..10..0``; the penalty counts extra walls of the chain with the
  fixed boundaries ``b_0 = 1`` and ``b_k = 0`` (Chancellor 2019), zero exactly on valid patterns.

Decoding always returns a valid design (invalid one-hot/domain-wall patterns are repaired and flagged) so the
method can both propose something and report how many annealer samples broke the encoding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from fmi_optimizer.errors import StudyError
from fmi_optimizer.space import Boolean, Categorical, Continuous, DesignSpace, Dimension, Value

Scheme = Literal["bit", "onehot", "binary", "unary", "domain_wall"]
SCHEMES: tuple[str, ...] = ("bit", "onehot", "binary", "unary", "domain_wall")
#: Above this many bits the pairwise surrogate (n(n+1)/2 features) and the annealer slow down markedly.
LARGE_ENCODING_BITS = 120


@dataclass(frozen=True)
class Block:
    """The bits of one dimension: where they start, how many, and how they map to level indices."""

    name: str
    kind: str
    scheme: Scheme
    levels: int
    start: int
    n_bits: int

    @property
    def stop(self) -> int:
        return self.start + self.n_bits

    @property
    def constrained(self) -> bool:
        """True when some bit patterns are invalid and a penalty term guards them."""
        return self.scheme in ("onehot", "domain_wall")

    # -- one block, many rows ----------------------------------------------------------
    def encode_index(self, idx: np.ndarray) -> np.ndarray:
        """Bits (rows x n_bits) of level indices ``idx``."""
        idx = np.asarray(idx, dtype=np.int64)
        if self.scheme == "bit":
            return idx.reshape(-1, 1).astype(np.int8)
        if self.scheme == "onehot":
            return (idx[:, None] == np.arange(self.levels)[None, :]).astype(np.int8)
        if self.scheme == "binary":
            return ((idx[:, None] >> np.arange(self.n_bits)[None, :]) & 1).astype(np.int8)
        # unary and domain wall share the canonical pattern 1..10..0 with idx ones
        return (np.arange(self.n_bits)[None, :] < idx[:, None]).astype(np.int8)

    def decode_bits(self, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Level indices of ``bits`` (rows x n_bits) and whether each pattern was valid."""
        bits = np.asarray(bits, dtype=np.int64)
        rows = bits.shape[0]
        valid: np.ndarray
        if self.scheme == "bit":
            return bits[:, 0].copy(), np.ones(rows, dtype=bool)
        if self.scheme == "onehot":
            ones = bits.sum(axis=1)
            # repair: the first set bit, or level 0 when none is set
            return np.where(ones > 0, bits.argmax(axis=1), 0), ones == 1
        if self.scheme == "binary":
            raw = (bits << np.arange(self.n_bits)[None, :]).sum(axis=1)
            return np.minimum(raw, self.levels - 1), np.ones(rows, dtype=bool)
        count = bits.sum(axis=1)
        if self.scheme == "unary":
            return count, np.ones(rows, dtype=bool)
        if self.n_bits > 1:
            valid = np.asarray((np.diff(bits, axis=1) <= 0).all(axis=1))
        else:
            valid = np.ones(rows, dtype=bool)
        return count, valid

    def penalty(self) -> tuple[np.ndarray, np.ndarray, float]:
        """(linear, upper-triangular quadratic, offset) of the block's validity penalty, zero iff valid.

        The penalty is >= 1 on every invalid pattern (integer-valued), which the weight calibration relies on.
        """
        k = self.n_bits
        lin = np.zeros(k)
        quad = np.zeros((k, k))
        if self.scheme == "onehot":
            # (sum b - 1)^2 = -sum b + 2 sum_{i<j} b_i b_j + 1
            lin[:] = -1.0
            quad[np.triu_indices(k, 1)] = 2.0
            return lin, quad, 1.0
        if self.scheme == "domain_wall":
            # walls of 1, b_1..b_k, 0 minus one: sum_{i} (b_i + b_{i+1} - 2 b_i b_{i+1}) + (1 - b_1) + b_k - 1
            lin[0] -= 1.0
            lin[-1] += 1.0
            for i in range(k - 1):
                lin[i] += 1.0
                lin[i + 1] += 1.0
                quad[i, i + 1] -= 2.0
            return lin, quad, 0.0
        return lin, quad, 0.0

    def repair_flips(self) -> float:
        """Worst-case bit flips needed per unit of penalty to reach a valid pattern (for weight calibration)."""
        if self.scheme == "onehot":
            return 1.0
        if self.scheme == "domain_wall":
            # 2w extra walls (penalty 2w) are removed by flipping at most n_bits bits
            return max(1.0, self.n_bits / 2.0)
        return 0.0


def _levels(d: Dimension) -> int:
    size = d.size()
    if size is None:
        raise StudyError(
            f"parameter {d.name!r} is continuous without levels: qio needs a discrete space; "
            "give it `levels = N` in [parameters] or use method 'bayes'"
        )
    return int(size)


def default_scheme(d: Dimension, integer_scheme: str) -> Scheme:
    """The scheme used when the user names none: one bit, one-hot for choices, ``integer_scheme`` for numbers."""
    if isinstance(d, Boolean):
        return "bit"
    if isinstance(d, Categorical):
        return "onehot"
    k = _levels(d)
    if k == 2:
        return "bit"
    if integer_scheme == "auto":
        return "unary" if k <= 16 else "binary"
    return _check_scheme(d, integer_scheme)


def _check_scheme(d: Dimension, scheme: str) -> Scheme:
    if scheme not in SCHEMES:
        raise StudyError(f"parameter {d.name!r}: unknown encoding {scheme!r}; accepted: {', '.join(SCHEMES)}")
    k = _levels(d)
    if scheme == "bit" and k != 2:
        raise StudyError(f"parameter {d.name!r}: encoding 'bit' needs 2 levels, it has {k}; use onehot/binary/unary")
    if isinstance(d, Categorical) and scheme in ("binary", "unary", "domain_wall") and k > 2:
        # allowed (the order is then arbitrary), but say so in the report rather than refuse
        pass
    return scheme  # type: ignore[return-value]


def _n_bits(scheme: Scheme, k: int) -> int:
    if scheme == "bit":
        return 1
    if scheme == "onehot":
        return k
    if scheme == "binary":
        return max(1, math.ceil(math.log2(k)))
    return k - 1


class Encoding:
    """The whole design space as a vector of bits (``int8`` arrays, one row per design)."""

    def __init__(self, space: DesignSpace, integer_scheme: str = "auto",
                 overrides: Mapping[str, str] | None = None):
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(space.names))
        if unknown:
            raise StudyError(f"qio option 'encodings' names unknown parameter(s) {unknown}; the space has {space.names}")
        if integer_scheme != "auto":
            _check_scheme_name(integer_scheme)
        self.space = space
        blocks: list[Block] = []
        start = 0
        for d in space:
            k = _levels(d)
            scheme = _check_scheme(d, overrides[d.name]) if d.name in overrides else default_scheme(d, integer_scheme)
            nb = _n_bits(scheme, k)
            kind = "discrete" if isinstance(d, Continuous) else d.kind
            blocks.append(Block(d.name, kind, scheme, k, start, nb))
            start += nb
        self.blocks: tuple[Block, ...] = tuple(blocks)
        self.n_bits = start

    # -- values <-> bits ---------------------------------------------------------------
    def indices_to_bits(self, idx: np.ndarray) -> np.ndarray:
        """Bits (rows x n_bits) of level-index rows (rows x dims)."""
        idx = np.atleast_2d(np.asarray(idx, dtype=np.int64))
        out = np.zeros((idx.shape[0], self.n_bits), dtype=np.int8)
        for j, b in enumerate(self.blocks):
            out[:, b.start:b.stop] = b.encode_index(idx[:, j])
        return out

    def bits_to_indices(self, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Level indices (rows x dims) of bit rows and a rows x dims mask of valid blocks."""
        bits = np.atleast_2d(np.asarray(bits))
        idx = np.zeros((bits.shape[0], len(self.blocks)), dtype=np.int64)
        valid = np.ones((bits.shape[0], len(self.blocks)), dtype=bool)
        for j, b in enumerate(self.blocks):
            idx[:, j], valid[:, j] = b.decode_bits(bits[:, b.start:b.stop])
        return idx, valid

    def canonical(self, bits: np.ndarray) -> tuple[int, np.ndarray]:
        """How many rows of ``bits`` broke the encoding, and every row repaired to its canonical pattern."""
        idx, valid = self.bits_to_indices(bits)
        return int((~valid.all(axis=1)).sum()), self.indices_to_bits(idx)

    def encode(self, values: Mapping[str, Value]) -> np.ndarray:
        """The bit vector of one design."""
        return self.indices_to_bits(np.array([self.space.to_indices(values)]))[0]

    def decode(self, bits: Sequence[int] | np.ndarray) -> tuple[dict[str, Value], bool]:
        """The (repaired) design of one bit vector and whether the bits were a valid encoding."""
        idx, valid = self.bits_to_indices(np.asarray(bits).reshape(1, -1))
        return self.space.from_indices(idx[0].tolist()), bool(valid[0].all())

    # -- penalties ------------------------------------------------------------------------
    def penalty_blocks(self) -> list[Block]:
        return [b for b in self.blocks if b.constrained]

    def penalty_terms(self, weights: Sequence[float] | np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, float]:
        """(linear, upper-triangular quadratic, offset) of all validity penalties, block ``i`` scaled by
        ``weights[i]`` (one weight per :meth:`penalty_blocks` entry; 1 when omitted)."""
        n = self.n_bits
        lin = np.zeros(n)
        quad = np.zeros((n, n))
        off = 0.0
        blocks = self.penalty_blocks()
        w = [1.0] * len(blocks) if weights is None else list(weights)
        for b, wb in zip(blocks, w, strict=True):
            bl, bq, bo = b.penalty()
            lin[b.start:b.stop] += wb * bl
            quad[b.start:b.stop, b.start:b.stop] += wb * bq
            off += wb * bo
        return lin, quad, off

    # -- sampling ------------------------------------------------------------------------
    def random_indices(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` uniform level-index rows."""
        return np.column_stack([rng.integers(0, b.levels, size=n) for b in self.blocks])

    def space_filling(self, rng: np.random.Generator, n: int, exclude: set[bytes] | None = None,
                      pool_factor: int = 30) -> np.ndarray:
        """``n`` valid, distinct designs (as bit rows) spread out in Hamming distance (greedy maximin over a
        random pool), skipping the bit patterns in ``exclude``."""
        exclude = set(exclude or ())
        pool = self.indices_to_bits(self.random_indices(rng, max(n * pool_factor, 64)))
        _, first = np.unique(pool, axis=0, return_index=True)
        pool = pool[np.sort(first)]
        pool = pool[np.array([row.tobytes() not in exclude for row in pool], dtype=bool)]
        if len(pool) == 0:
            return np.zeros((0, self.n_bits), dtype=np.int8)
        ex = [np.frombuffer(x, dtype=np.int8) for x in exclude if len(x) == self.n_bits]
        if ex:  # start far from what is already evaluated
            dist = np.abs(pool[:, None, :] - np.array(ex)[None, :, :]).sum(axis=2).min(axis=1)
            chosen = [int(np.argmax(dist))]
        else:
            chosen = [0]
        dist = np.abs(pool - pool[chosen[0]]).sum(axis=1) if not ex else np.minimum(
            dist, np.abs(pool - pool[chosen[0]]).sum(axis=1))
        while len(chosen) < min(n, len(pool)):
            nxt = int(np.argmax(dist))
            chosen.append(nxt)
            dist = np.minimum(dist, np.abs(pool - pool[nxt]).sum(axis=1))
        return pool[chosen]

    # -- reporting --------------------------------------------------------------------------
    def table(self) -> list[dict[str, Any]]:
        """One row per dimension: name, kind, levels, scheme, bits, first bit."""
        return [{"name": b.name, "kind": b.kind, "levels": b.levels, "scheme": b.scheme,
                 "bits": b.n_bits, "first_bit": b.start, "penalty": b.constrained} for b in self.blocks]

    def warnings(self) -> list[str]:
        if self.n_bits > LARGE_ENCODING_BITS:
            p = self.n_bits * (self.n_bits + 1) // 2
            return [f"the design space encodes into {self.n_bits} bits ({p} surrogate features): fitting and "
                    f"annealing slow down past ~{LARGE_ENCODING_BITS} bits; use binary encodings or fewer levels"]
        return []

    def report(self) -> dict[str, Any]:
        return {"n_bits": self.n_bits, "dimensions": self.table(), "warnings": self.warnings(),
                "cardinality": self.space.cardinality()}

    def labels(self) -> list[str]:
        """A readable name per bit, e.g. ``material[2]``."""
        return [f"{b.name}[{i}]" for b in self.blocks for i in range(b.n_bits)]


def _check_scheme_name(scheme: str) -> None:
    if scheme not in SCHEMES or scheme == "bit":
        raise StudyError(f"qio option 'integer_encoding' = {scheme!r}; accepted: auto, onehot, binary, unary, domain_wall")
