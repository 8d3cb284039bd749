"""Direct mode: the user gives the quadratic model itself — a dimod-serialized BQM file (JSON from
``bqm.to_serializable()`` or dimod's binary ``to_file``) or a callable ``builder(encoding, history) -> BQM`` —
and qio anneals it and validates the top candidates on the twin.

The BQM's variables are the encoding's bit labels (``"n_fins[0]"``, see the encoding table) or the bit
indices ``0..n_bits-1``.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import dimod

from fmi_optimizer.errors import StudyError
from fmi_optimizer.records import Evaluation

from .bqm import from_bqm
from .encoding import Encoding
from .surrogate import QuadModel

Builder = Callable[[Encoding, Sequence[Evaluation]], dimod.BinaryQuadraticModel]


def load_bqm_file(path: str) -> dimod.BinaryQuadraticModel:
    """Read a BQM saved by dimod (JSON serializable form, or the binary file format)."""
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
    if not isinstance(bqm, dimod.BinaryQuadraticModel):
        raise StudyError(f"{source}: expected a dimod.BinaryQuadraticModel, got {type(bqm).__name__}")
    try:
        return from_bqm(bqm, enc.labels())
    except KeyError as exc:
        raise StudyError(f"{source}: BQM variable {exc.args[0]!r} is not a bit of the encoding; use the labels "
                         f"{enc.labels()[:4]}... or indices 0..{enc.n_bits - 1}") from exc
