"""The basin classification of benchmarks/hartmann6_basins.py puts Hartmann6's known minimizers in
the right bumps (its per-seed traces are quoted in docs/bench/bayes.md)."""

from __future__ import annotations

import numpy as np
from conftest import load_benchmark

basins = load_benchmark("hartmann6_basins")

GLOBAL = np.array([0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573])
LOCAL = np.array([0.40465, 0.88244, 0.84610, 0.57399, 0.13893, 0.03850])


def test_known_minimizers_fall_in_bumps_three_and_four() -> None:
    assert abs(basins.peers.hartmann6(GLOBAL) - (-3.32237)) < 1e-4
    assert abs(basins.peers.hartmann6(LOCAL) - (-3.2032)) < 1e-3
    d = basins.bump_distances(np.array([GLOBAL, LOCAL]))
    assert d[0, 2] < basins.IN_BUMP and d[0, 3] > basins.IN_BUMP
    assert d[1, 3] < basins.IN_BUMP and d[1, 2] > basins.IN_BUMP
