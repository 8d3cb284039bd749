"""The surrogate's input space: every design point as a vector the Gaussian process sees.

Continuous dimensions map to [0, 1] (log scale applied); integer, thresholded-continuous and
boolean dimensions map to ``index / (size - 1)`` in [0, 1]; categorical dimensions become a
one-hot block. Discrete coordinates are always *snapped* to valid values before the kernel
sees them (:meth:`Encoder.snap`, the Garrido-Merchán & Hernández-Lobato transform), so the GP
is constant between admissible values and the acquisition is only ever scored at points the
twin can actually run. Only the continuous columns are moved by gradient steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from fmi_optimizer.space import Categorical, Continuous, DesignSpace, Value

ColumnKind = Literal["continuous", "ordinal", "categorical"]


@dataclass(frozen=True)
class Block:
    """Where one design dimension lives in the encoded vector."""

    kind: ColumnKind
    start: int
    width: int
    size: int  # number of admissible values (0 for continuous)


class Encoder:
    """Maps values <-> encoded vectors and samples/snaps/perturbs encoded points."""

    def __init__(self, space: DesignSpace):
        self.space = space
        blocks: list[Block] = []
        col = 0
        for d in space:
            if isinstance(d, Continuous) and not d.discrete:
                blocks.append(Block("continuous", col, 1, 0))
                col += 1
            elif isinstance(d, Categorical):
                blocks.append(Block("categorical", col, d.size(), d.size()))
                col += d.size()
            else:
                size = d.size()
                assert size is not None
                blocks.append(Block("ordinal", col, 1, size))
                col += 1
        self.blocks = tuple(blocks)
        self.width = col
        self.continuous_columns = np.array([b.start for b in blocks if b.kind == "continuous"], dtype=int)
        self.has_discrete = any(b.kind != "continuous" for b in blocks)

    # -- values <-> vectors -------------------------------------------------------------
    def encode(self, values: dict[str, Value]) -> np.ndarray:
        z = np.zeros(self.width)
        for d, b in zip(self.space, self.blocks, strict=True):
            v = values[d.name]
            if b.kind == "continuous":
                z[b.start] = d.to_unit(v)
            elif b.kind == "ordinal":
                z[b.start] = d.index_of(v) / (b.size - 1)
            else:
                z[b.start + d.index_of(v)] = 1.0
        return z

    def decode(self, z: np.ndarray) -> dict[str, Value]:
        out: dict[str, Value] = {}
        for d, b in zip(self.space, self.blocks, strict=True):
            out[d.name] = d.from_unit(float(np.clip(z[b.start], 0.0, 1.0))) if b.kind == "continuous" \
                else d.value_at(self._index(z, b))
        return out

    @staticmethod
    def _index(z: np.ndarray, b: Block) -> int:
        if b.kind == "ordinal":
            return int(np.clip(np.rint(z[b.start] * (b.size - 1)), 0, b.size - 1))
        return int(np.argmax(z[b.start:b.start + b.width]))

    # -- the transform T(z) and samplers ------------------------------------------------
    def snap(self, Z: np.ndarray) -> np.ndarray:
        """Round ordinal columns to their grid and turn categorical blocks into exact one-hots."""
        Z = np.clip(np.array(Z, dtype=float, copy=True), 0.0, 1.0)
        for b in self.blocks:
            if b.kind == "ordinal":
                Z[:, b.start] = np.rint(Z[:, b.start] * (b.size - 1)) / (b.size - 1)
            elif b.kind == "categorical":
                idx = np.argmax(Z[:, b.start:b.start + b.width], axis=1)
                Z[:, b.start:b.start + b.width] = 0.0
                Z[np.arange(len(Z)), b.start + idx] = 1.0
        return Z

    def from_unit(self, U: np.ndarray) -> np.ndarray:
        """Encoded points from unit-cube points (one coordinate per dimension, e.g. a Sobol design)."""
        Z = np.zeros((len(U), self.width))
        for j, b in enumerate(self.blocks):
            u = np.clip(U[:, j], 0.0, 1.0 - 1e-12)
            if b.kind == "continuous":
                Z[:, b.start] = u
            else:
                idx = np.floor(u * b.size).astype(int)
                if b.kind == "ordinal":
                    Z[:, b.start] = idx / (b.size - 1)
                else:
                    Z[np.arange(len(U)), b.start + idx] = 1.0
        return Z

    def perturb(self, Z: np.ndarray, n: int, scale: float, rng: np.random.Generator) -> np.ndarray:
        """``n`` points near the rows of ``Z``: Gaussian steps on continuous columns, random
        one-step moves on a random discrete dimension (local exploitation starts)."""
        base = Z[rng.integers(0, len(Z), n)].copy()
        if len(self.continuous_columns):
            cc = self.continuous_columns
            base[:, cc] = np.clip(base[:, cc] + rng.normal(0.0, scale, (n, len(cc))), 0.0, 1.0)
        discrete = [b for b in self.blocks if b.kind != "continuous"]
        if discrete:
            for i in np.nonzero(rng.random(n) < 0.5)[0]:
                b = discrete[rng.integers(len(discrete))]
                if b.kind == "ordinal":
                    step = rng.choice([-1, 1]) / (b.size - 1)
                    base[i, b.start] = np.clip(base[i, b.start] + step, 0.0, 1.0)
                else:
                    base[i, b.start:b.start + b.width] = 0.0
                    base[i, b.start + rng.integers(b.width)] = 1.0
        return self.snap(base)

    def neighbours(self, z: np.ndarray) -> np.ndarray:
        """Every point one discrete move away from ``z`` (ordinal +-1 step, any other category)."""
        out = []
        for b in self.blocks:
            if b.kind == "ordinal":
                for step in (-1, 1):
                    v = z[b.start] + step / (b.size - 1)
                    if -1e-9 <= v <= 1 + 1e-9:
                        w = z.copy()
                        w[b.start] = v
                        out.append(w)
            elif b.kind == "categorical":
                cur = int(np.argmax(z[b.start:b.start + b.width]))
                for k in range(b.width):
                    if k != cur:
                        w = z.copy()
                        w[b.start:b.start + b.width] = 0.0
                        w[b.start + k] = 1.0
                        out.append(w)
        return self.snap(np.array(out)) if out else np.zeros((0, self.width))
