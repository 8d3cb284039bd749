"""Output warping before a surrogate fit: resolve the region that matters.

A twin's objective often spans a wide range (here 17 to 100+) while the search needs resolution within a
percent of the best; a least-squares quadratic fitted on raw values spends its accuracy on the bad designs.
``log`` fits ``log(y - min y + s)`` with ``s`` a tenth of the gap between the median and the best value, which
compresses the bad tail and keeps the ranking. Constraint values are warped by ``sign(c) log(1 + |c| / s)``
(``s`` the median ``|c|``): the sign, hence feasibility, is kept and the region near the limit is stretched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ObjectiveWarp:
    """``y -> log(y - low + scale)`` (or the identity when ``scale`` is 0)."""

    low: float = 0.0
    scale: float = 0.0

    @classmethod
    def fitted(cls, y: np.ndarray, kind: str) -> ObjectiveWarp:
        if kind == "none" or len(y) < 2:
            return cls()
        low = float(np.min(y))
        gap = float(np.median(y)) - low
        return cls(low, gap / 10.0) if gap > 0 else cls()

    def __call__(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=float)
        if self.scale <= 0:
            return y
        return np.log(np.maximum(y - self.low, 0.0) + self.scale)


def warp_constraint(c: np.ndarray, kind: str) -> np.ndarray:
    """Sign-preserving log compression of constraint values (identity for ``kind == "none"``)."""
    c = np.asarray(c, dtype=float)
    if kind == "none" or c.size == 0:
        return c
    s = float(np.median(np.abs(c)))
    if s <= 0:
        return c
    w = np.sign(c) * np.log1p(np.abs(c) / s)
    # a violation too small to survive the division (5e-324 / 2 underflows to 0) must stay a violation
    return np.where(c > 0, np.maximum(w, np.nextafter(0.0, 1.0)), w)
