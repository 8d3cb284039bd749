"""Problems for the regime where a deep ensemble might beat a GP: discontinuous, non-stationary responses with
many evaluations, in low (3) and higher (6, 12) dimension.

A GP with a stationary kernel assumes one smoothness everywhere; responses of real twins often have regimes
(a valve saturates, a controller switches mode, a flow separates) with a jump between them and a different
roughness in each. :class:`Piecewise` draws such a function at random: ``K`` random hyperplanes cut the unit
box into cells; each cell has its own level (so the function jumps across every boundary) and its own
Gaussian well with its own width, from a broad bowl to a narrow pit (so the lengthscale differs from cell
to cell), plus a tilt. Instance seeds are split like the GP-prior instances of the suite: even seeds
develop, odd seeds are held out. The optimum is estimated once per instance by dense sampling and a local
polish of the best points (the cell's well is smooth inside the cell).

    python benchmarks/bayes_ensemble.py run --functions piecewise6_1,piecewise12_1 --budget 300 --q 10 ...
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

#: instance seeds per half (even develop, odd held out)
PIECEWISE_SEEDS = {"dev": (0, 2), "heldout": (1, 3)}
PIECEWISE_DIMS = (3, 6, 12)
N_CUTS = 3  # hyperplanes: up to 8 cells


@dataclass(frozen=True)
class Piecewise:
    """A random discontinuous, non-stationary function on [0, 1]^d (see the module docstring)."""

    d: int
    seed: int

    @functools.cached_property
    def _params(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(10_000 + 100 * self.d + self.seed)
        normals = rng.normal(size=(N_CUTS, self.d))
        through = rng.random((N_CUTS, self.d)) * 0.6 + 0.2  # each cut passes through the middle of the box
        cells = 2 ** N_CUTS
        return {
            "normals": normals, "offsets": np.einsum("kd,kd->k", normals, through),
            "level": rng.random(cells),  # the jump between cells
            "depth": 0.5 + rng.random(cells),  # the well's depth
            "centre": rng.random((cells, self.d)),
            "width": np.exp(rng.uniform(np.log(0.08), np.log(0.8), cells)),  # a narrow pit to a broad bowl
            "tilt": rng.normal(scale=0.3, size=(cells, self.d)),
        }

    def cell(self, x: np.ndarray) -> np.ndarray:
        p = self._params
        bits = (np.atleast_2d(x) @ p["normals"].T > p["offsets"]).astype(int)
        return bits @ (2 ** np.arange(N_CUTS))

    def values(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(X)
        p, c = self._params, self.cell(X)
        r2 = np.sum((X - p["centre"][c]) ** 2, axis=1) / p["width"][c] ** 2
        return p["level"][c] - p["depth"][c] * np.exp(-0.5 * r2) + 0.1 * np.einsum("nd,nd->n", X - 0.5, p["tilt"][c])

    def __call__(self, x: np.ndarray) -> float:
        return float(self.values(x)[0])

    @functools.cached_property
    def optimum(self) -> float:
        """Estimated minimum: 200 000 uniform points, then a Nelder-Mead polish of the 20 best within their
        cells (a polished point that leaves its cell is not used)."""
        from scipy.optimize import minimize

        rng = np.random.default_rng(7)
        X = rng.random((200_000, self.d))
        v = self.values(X)
        best = float(v.min())
        for i in np.argsort(v)[:20]:
            home = self.cell(X[i])[0]

            def inside(z: np.ndarray, home: int = home) -> float:
                z = np.clip(z, 0.0, 1.0)
                return self(z) if self.cell(z)[0] == home else np.inf

            res = minimize(inside, X[i], method="Nelder-Mead",
                           options={"xatol": 1e-7, "fatol": 1e-10, "maxfev": 4000 * self.d})
            if np.isfinite(res.fun):
                best = min(best, float(res.fun))
        return best


NAME = re.compile(r"^piecewise(\d+)_(\d+)$")


@functools.cache
def piecewise_of(name: str) -> Piecewise | None:
    """``piecewise<d>_<seed>`` as an instance, else ``None``."""
    m = NAME.match(name)
    return Piecewise(int(m.group(1)), int(m.group(2))) if m else None


def names(half: str) -> list[str]:
    return [f"piecewise{d}_{s}" for d in PIECEWISE_DIMS for s in PIECEWISE_SEEDS[half]]
