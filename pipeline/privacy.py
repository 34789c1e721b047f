"""Privacy zones: parts of a camera's view (the windows of homes, say) blacked out before anything sees them.

The source blacks them out on every frame it hands out, so evidence clips, snapshots, thumbnails,
latest frames, live views and exports never hold those pixels. Detection runs on the blacked-out
frame too, unless the camera's config lets it see under the zones (`privacy.detect_under`): then
the frame keeps a clear copy that only the detector and the rules look at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.types import Point


@dataclass(frozen=True, slots=True)
class PrivacyMask:
    polygons: tuple[np.ndarray, ...]  # int32 corner arrays, source-frame pixels
    detect_under: bool = False

    @classmethod
    def of(cls, polygons: Sequence[Sequence[Point]], detect_under: bool = False) -> PrivacyMask | None:
        """The mask of a camera's polygons; None when it has none (nothing to do per frame)."""
        if not polygons:
            return None
        return cls(tuple(np.round(np.asarray(p, dtype=np.float64)).astype(np.int32) for p in polygons), detect_under)

    def apply(self, image: np.ndarray) -> np.ndarray | None:
        """Black the zones out of `image` in place; returns the clear copy the detector may see (or None)."""
        clear = image.copy() if self.detect_under else None
        cv2.fillPoly(image, list(self.polygons), (0, 0, 0))
        return clear
