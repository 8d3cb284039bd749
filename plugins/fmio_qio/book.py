"""Bookkeeping of what the twin was asked and told, keyed by the canonical bit pattern of a design.

Replications of one design share a key; a design is *seen* once asked (pending) or told. The book turns the
told evaluations into the surrogates' training data.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from fmi_optimizer.records import Evaluation

from .encoding import Encoding


def objective_ok(e: Evaluation) -> bool:
    """An evaluation whose objective can train a surrogate."""
    return e.ok and e.objective is not None and math.isfinite(e.objective)


@dataclass(frozen=True)
class TrainingData:
    """Distinct successful designs (bits, mean objective, mean constraint values) and the failed ones."""

    bits: np.ndarray
    y: np.ndarray
    cons: np.ndarray  # rows x constraints
    failed_bits: np.ndarray


class PointBook:
    """Every told evaluation grouped by bit pattern, the pending asks, and the first-told order."""

    def __init__(self, enc: Encoding):
        self.enc = enc
        self.groups: dict[bytes, list[Evaluation]] = {}
        self.pending: dict[bytes, int] = {}  # asked, not told yet (count of replications)
        self.order: list[bytes] = []  # distinct designs in the order first told

    @staticmethod
    def key(bits: np.ndarray) -> bytes:
        return np.asarray(bits, dtype=np.int8).tobytes()

    def key_of(self, values: Mapping[str, Any]) -> bytes:
        return self.key(self.enc.encode(values))

    def seen(self, key: bytes) -> bool:
        return key in self.groups or key in self.pending

    def seen_keys(self) -> set[bytes]:
        return set(self.groups) | set(self.pending)

    def n_seen(self) -> int:
        return len(self.groups) + len(self.pending)

    def ask(self, key: bytes) -> None:
        self.pending[key] = self.pending.get(key, 0) + 1

    def tell(self, e: Evaluation) -> bytes:
        key = self.key_of(e.candidate.values)
        if key in self.pending:
            self.pending[key] -= 1
            if self.pending[key] <= 0:
                del self.pending[key]
        if key not in self.groups:
            self.order.append(key)
            self.groups[key] = []
        self.groups[key].append(e)
        return key

    def distinct_ok(self) -> int:
        return sum(1 for evs in self.groups.values() if any(objective_ok(e) for e in evs))

    def training_data(self, n_constraints: int, only: Collection[Hashable] | None = None) -> TrainingData:
        """The told designs (those in ``only`` if given) as training data."""
        ok_keys, failed_keys = [], []
        ys, cons = [], []
        for key in self.order if only is None else [k for k in self.order if k in only]:
            evs = [e for e in self.groups[key] if objective_ok(e)]
            if evs:
                ok_keys.append(key)
                ys.append(float(np.mean([e.objective for e in evs])))
                cons.append([float(np.mean([e.constraints[j] if len(e.constraints) > j else 0.0 for e in evs]))
                             for j in range(n_constraints)])
            else:
                failed_keys.append(key)
        n = self.enc.n_bits
        return TrainingData(self._rows(ok_keys, n), np.array(ys), np.array(cons).reshape(len(ok_keys), n_constraints),
                            self._rows(failed_keys, n))

    def nearest(self, data: TrainingData, center: np.ndarray, n: int) -> TrainingData:
        """The ``n`` successful designs of ``data`` nearest to ``center`` in Hamming distance (all failed ones)."""
        if len(data.y) <= n:
            return data
        dist = np.abs(data.bits.astype(np.int16) - center.astype(np.int16)).sum(axis=1)
        keep = np.sort(np.argsort(dist, kind="stable")[:n])
        return TrainingData(data.bits[keep], data.y[keep], data.cons[keep], data.failed_bits)

    @staticmethod
    def _rows(keys: list[bytes], n: int) -> np.ndarray:
        return np.array([np.frombuffer(k, dtype=np.int8) for k in keys]).reshape(len(keys), n)
