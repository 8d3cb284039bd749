"""Local moves: unseen designs near the incumbent, ranked by the surrogates.

Also the neighbourhood that every Thompson draw ranks next to the annealer's samples (``thompson_neighbours``).

Also the design-space descent that polishes the annealer's samples (``postprocess = "descent"``).

Used by the duplicate rule (when the annealer proposes only known designs). The
neighbourhood is every one- and every two-dimension change of the incumbent (any levels; 638 designs on the
heat_sink space), or, past ``full_pairs_limit`` two-dimension changes, random ones of a step of one level
(any other item for categoricals); unseen ones are ranked predicted-feasible first, then by the
posterior-mean objective. The full two-dimension neighbourhood is what lets a run make coupled moves
such as "two more fins and one fan-speed step down" on heat_sink.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .encoding import Encoding
from .models import SurrogateSet


def neighbour(enc: Encoding, rng: np.random.Generator, j: int, i: int) -> int:
    """A random neighbouring level of level ``i`` of dimension ``j``."""
    b = enc.blocks[j]
    if b.kind == "categorical":
        return int((i + rng.integers(1, b.levels)) % b.levels)
    steps = [i + s for s in (-1, 1) if 0 <= i + s < b.levels]
    return int(steps[int(rng.integers(len(steps)))])


def one_dimension_changes(enc: Encoding, base: np.ndarray) -> list[np.ndarray]:
    """Every design (level-index row) that differs from ``base`` in exactly one dimension."""
    out = []
    for j, b in enumerate(enc.blocks):
        for level in range(b.levels):
            if level != base[j]:
                nb = base.copy()
                nb[j] = level
                out.append(nb)
    return out


def two_dimension_changes(enc: Encoding, base: np.ndarray) -> list[np.ndarray]:
    """Every design that differs from ``base`` in exactly two dimensions (any levels), ordered by the second
    dimension, then the first change, then the second's level (vectorized per second dimension)."""
    ones = one_dimension_changes(enc, base)
    if not ones:
        return []
    arr = np.array(ones)
    dim = np.array([int(np.flatnonzero(a != base)[0]) for a in ones])
    out: list[np.ndarray] = []
    for j1, b in enumerate(enc.blocks):
        first = arr[dim < j1]
        levels = np.array([lv for lv in range(b.levels) if lv != base[j1]])
        if not len(first) or not len(levels):
            continue
        rows = np.repeat(first, len(levels), axis=0)
        rows[:, j1] = np.tile(levels, len(first))
        out.extend(rows)
    return out


def local_moves(enc: Encoding, rng: np.random.Generator, models: SurrogateSet, base: np.ndarray, k: int,
                is_free: Callable[[bytes], bool], full_pairs_limit: int = 5000) -> list[np.ndarray]:
    """Up to ``k`` bit rows near the level-index row ``base`` for which ``is_free(key)`` holds, best first:
    every one-dimension change, plus every two-dimension change when there are at most
    ``full_pairs_limit`` of them (else random one-step two-dimension changes)."""
    moves = one_dimension_changes(enc, base)
    singles = np.array([b.levels - 1 for b in enc.blocks])
    n_pairs = int((singles.sum() ** 2 - (singles**2).sum()) // 2)
    if n_pairs <= full_pairs_limit:
        moves += two_dimension_changes(enc, base)
    else:
        for _ in range(20 * max(1, k)):
            nb = base.copy()
            for j in rng.choice(len(base), size=min(2, len(base)), replace=False):
                nb[j] = neighbour(enc, rng, int(j), int(nb[j]))
            moves.append(nb)
    fresh: dict[bytes, np.ndarray] = {}
    for r in enc.indices_to_bits(np.array(moves)):
        key = r.tobytes()
        if is_free(key):
            fresh.setdefault(key, r)
    if not fresh:
        return []
    arr = np.array(list(fresh.values()))
    order = np.lexsort((models.mean_energy(arr), ~models.predicted_feasible(arr)))
    return [arr[i] for i in order[:k]]


def descend(enc: Encoding, energy: Callable[[np.ndarray], np.ndarray], start: np.ndarray,
            max_steps: int = 100) -> np.ndarray:
    """Steepest descent over designs: from each distinct level-index row of ``start``, take the one-dimension
    change that lowers ``energy`` (of bit rows) most, until none does; returns the end points (distinct start
    rows x dims, in the order of ``np.unique``). A row still improving after ``max_steps`` moves stops there
    (not a local minimum; each move strictly lowers the energy, so the bound only caps the cost).

    Every step is a valid design, so the descent crosses a one-hot or domain-wall block in one move where a
    bit-flip descent (or the annealer at its cold end) would have to climb the block's penalty first."""
    out = np.unique(np.atleast_2d(np.asarray(start, dtype=np.int64)), axis=0)
    for r in range(len(out)):
        cur = out[r]
        e = float(energy(enc.indices_to_bits(cur))[0])
        for _ in range(max_steps):
            moves = one_dimension_changes(enc, cur)
            if not moves:
                break
            arr = np.array(moves)
            en = energy(enc.indices_to_bits(arr))
            k = int(np.argmin(en))
            if not en[k] < e - 1e-12 * max(1.0, abs(e)):
                break
            cur, e = arr[k], float(en[k])
        out[r] = cur
    return out
