"""Small statistics the live benchmark's parts share."""

from __future__ import annotations

import numpy as np


def pct(values: list[float] | np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if len(values) else None


def mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 3) if values else None
