"""The unit that flows out of a source: one decoded image with its media time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Frame:
    image: np.ndarray  # BGR, HxWx3, uint8
    index: int  # 0-based index of the decoded frame in the source
    pts: float  # media seconds from the start of the stream (from the stream's PTS, not wall time)
