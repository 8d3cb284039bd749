"""What one simulation run needs and what it gives back: the engine's request/reply records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .simulator import SimSettings


@dataclass(frozen=True)
class RunRequest:
    """What a worker needs for one run (picklable)."""

    task_id: int
    start_values: dict[str, Any]
    settings: SimSettings
    outputs: tuple[str, ...]
    inputs: np.ndarray | None = None


@dataclass
class RunReply:
    """What comes back: ``status`` ok/failed, the sampled outputs, timings, the error text."""

    task_id: int
    status: str
    time: np.ndarray | None
    outputs: dict[str, np.ndarray]
    error: str
    wall_seconds: float
    cpu_seconds: float
    worker: str
