"""Probe inward from a face of the design box that the model will not leave.

A GP with a constant prior mean sees no slope into the box from points on one of its faces: the points
just inside have no data near them, so the model shrinks them towards its mean, expected improvement
stays on the face, and the search slides along it. On Hartmann6 (docs/bench/bayes.md) the search outside
a resolved basin spent 18 evaluations on the face x6 = 1 while the slope into the box was 3.5, and
main searches "resolved" a basin on that face at regret 1.6 from which L-BFGS-B walks straight down to
the global minimum. When the incumbent of the proposing model and its next proposal lie on the same
face of a continuous dimension, and no evaluated point lies inward of the incumbent nearby, one
evaluation a step inward measures that slope: a one-sided check of the optimality condition at a bound.
If the face is where the minimum is, the probe shows it, and the model is not probed there again.
"""

from __future__ import annotations

import numpy as np

PROBE_STEP = 0.15  # how far inside the probe goes, in the unit scale of the dimension
ON_FACE = 1e-3  # a coordinate this close to 0 or 1 lies on the face
INWARD = (0.02, 0.5)  # an evaluated point this far inside ...
NEAR = 0.5  # ... and this close to the incumbent in the other dimensions (lengthscale units) informs the slope


def face_probe(proposal: np.ndarray, incumbent: np.ndarray, Z: np.ndarray, lengthscales: np.ndarray,
               continuous_columns: np.ndarray) -> tuple[np.ndarray, int] | None:
    """The point to evaluate instead of ``proposal`` and the column it probes, or ``None`` if no probe is due.

    ``Z`` are the encoded points the proposing model was trained on (its incumbent among them),
    ``lengthscales`` that model's, one per encoded column. Only continuous columns are probed; the
    first face found (in column order, lower face first) is probed."""
    for j in (int(c) for c in continuous_columns):
        for face, sign in ((0.0, 1.0), (1.0, -1.0)):
            if abs(proposal[j] - face) >= ON_FACE or abs(incumbent[j] - face) >= ON_FACE:
                continue
            if _slope_known(j, face, incumbent, Z, lengthscales):
                continue
            probe = incumbent.copy()
            probe[j] = face + sign * PROBE_STEP
            return probe, j
    return None


def _slope_known(j: int, face: float, incumbent: np.ndarray, Z: np.ndarray, lengthscales: np.ndarray) -> bool:
    """Is there an evaluated point inside the box along ``j``, close to ``incumbent`` in the others?"""
    inside = np.abs(Z[:, j] - face)
    others = np.arange(Z.shape[1]) != j
    distance = np.sqrt((((Z[:, others] - incumbent[others]) / lengthscales[others]) ** 2).sum(axis=1))
    return bool(np.any((inside > INWARD[0]) & (inside < INWARD[1]) & (distance < NEAR)))
