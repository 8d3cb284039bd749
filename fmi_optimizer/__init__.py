"""fmi_optimizer: optimize digital twins delivered as FMUs."""

from __future__ import annotations

__version__ = "0.1.0"
