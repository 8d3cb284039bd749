"""Direct mode: the user gives the quadratic model itself — a dimod-serialized BQM file (JSON from
``bqm.to_serializable()`` or dimod's binary ``to_file``) or a callable ``builder(encoding, history) -> BQM`` —
and qio anneals it and validates the top candidates on the twin.

The BQM's variables are the encoding's bit labels (``"n_fins[0]"``, see the encoding table) or the bit
indices ``0..n_bits-1``.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fmi_optimizer.errors import StudyError
from fmi_optimizer.records import Evaluation

from .book import objective_ok
from .bqm import from_bqm
from .encoding import Encoding
from .moves import one_dimension_changes
from .surrogate import QuadModel

if TYPE_CHECKING:
    import dimod

Builder = Callable[[Encoding, Sequence[Evaluation]], "dimod.BinaryQuadraticModel"]


def load_bqm_file(path: str) -> dimod.BinaryQuadraticModel:
    """Read a BQM saved by dimod (JSON serializable form, or the binary file format)."""
    import dimod

    p = Path(path)
    if not p.is_file():
        raise StudyError(f"qio option 'bqm_file': {path} does not exist; give the path of a dimod-serialized BQM")
    try:
        if p.suffix.lower() == ".json":
            return dimod.BinaryQuadraticModel.from_serializable(json.loads(p.read_text()))
        with p.open("rb") as fh:
            return dimod.BinaryQuadraticModel.from_file(fh)
    except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise StudyError(f"qio option 'bqm_file': {path} is not a dimod BQM ({exc}); save one with "
                         "json.dump(bqm.to_serializable(), f) or bqm.to_file()") from exc


def resolve_builder(spec: Any) -> Builder:
    """A callable, or ``"package.module:function"`` naming one."""
    if callable(spec):
        return spec
    if isinstance(spec, str) and ":" in spec:
        mod, _, attr = spec.partition(":")
        try:
            fn = getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as exc:
            raise StudyError(f"qio option 'bqm_builder': cannot import {spec!r} ({exc})") from exc
        if callable(fn):
            return fn
    raise StudyError(f"qio option 'bqm_builder' = {spec!r}: give a callable or 'package.module:function'")


def user_model(bqm: Any, enc: Encoding, source: str) -> QuadModel:
    """The arrays of a user BQM, checking its variables against the encoding."""
    import dimod

    if not isinstance(bqm, dimod.BinaryQuadraticModel):
        raise StudyError(f"{source}: expected a dimod.BinaryQuadraticModel, got {type(bqm).__name__}")
    try:
        return from_bqm(bqm, enc.labels())
    except KeyError as exc:
        raise StudyError(f"{source}: BQM variable {exc.args[0]!r} is not a bit of the encoding; use the labels "
                         f"{enc.labels()[:4]}... or indices 0..{enc.n_bits - 1}") from exc


class DirectMode:
    """Anneal the user's model (plus the encoding's penalties) and hand its best unseen designs to the twin,
    at most ``direct_top`` of them; then report how well the model ranked them (Spearman vs the twin)."""

    def __init__(self, enc: Encoding, bqm_file: str | None, bqm_builder: Any, top: int):
        self.enc, self.top = enc, top
        self.bqm_file = bqm_file
        self._file_bqm = load_bqm_file(bqm_file) if bqm_file is not None else None
        self._builder = resolve_builder(bqm_builder) if bqm_builder is not None else None
        self.asked = 0
        self.exhausted = False
        self.energy: dict[bytes, float] = {}

    @property
    def finished(self) -> bool:
        return self.exhausted or self.asked >= self.top

    def user_model(self, history: Sequence[Evaluation]) -> QuadModel:
        bqm: Any
        if self._builder is not None:
            bqm, source = self._builder(self.enc, list(history)), "qio option 'bqm_builder'"
        else:
            bqm, source = self._file_bqm, f"qio option 'bqm_file' ({self.bqm_file})"
        return user_model(bqm, self.enc, source)

    def pick(self, model: QuadModel, rows: np.ndarray, k: int, is_free: Callable[[bytes], bool]) -> list[np.ndarray]:
        """Up to ``k`` free designs among ``rows`` (annealer samples) and their one-dimension neighbours, lowest
        user-model energy first."""
        k = min(k, self.top - self.asked)
        pool = np.vstack([rows, self.neighbourhood(rows[: max(1, k)])])
        energies = model.energy(pool)
        out: list[np.ndarray] = []
        taken: set[bytes] = set()
        for i in np.argsort(energies, kind="stable"):
            key = pool[i].astype(np.int8).tobytes()
            if len(out) < k and is_free(key) and key not in taken:
                taken.add(key)
                self.energy[key] = float(energies[i])
                out.append(pool[i])
        self.asked += len(out)
        self.exhausted = len(out) == 0
        return out

    def neighbourhood(self, rows: np.ndarray) -> np.ndarray:
        """Every design one dimension away from ``rows`` (valid encodings), so the user model can rank more
        candidates than the annealer's few distinct low-energy states."""
        idx, _ = self.enc.bits_to_indices(rows)
        out = [nb for base in idx for nb in one_dimension_changes(self.enc, base)]
        return self.enc.indices_to_bits(np.array(out)) if out else np.zeros((0, self.enc.n_bits), dtype=np.int8)

    def check(self, groups: Mapping[bytes, Sequence[Evaluation]]) -> dict[str, Any]:
        """How well the user's model ranked the validated candidates (Spearman correlation model vs twin)."""
        pairs = [(self.energy[k], float(np.mean([e.objective for e in evs if objective_ok(e)])))
                 for k, evs in groups.items() if k in self.energy and any(objective_ok(e) for e in evs)]
        if len(pairs) < 3:
            return {"validated": len(pairs), "spearman_model_vs_twin": None}
        a = np.array(pairs)
        ranks = np.argsort(np.argsort(a, axis=0), axis=0).astype(float)
        rho = float(np.corrcoef(ranks[:, 0], ranks[:, 1])[0, 1]) if ranks.std(axis=0).min() > 0 else None
        return {"validated": len(pairs), "spearman_model_vs_twin": rho}
