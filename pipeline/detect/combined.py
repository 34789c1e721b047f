"""A camera with a pose rule: its people come from the pose model (with keypoints), its other classes from the detector.

The pose model finds people as well as the detector does (measured on the fall clips), so on such
a camera it replaces the detector for people rather than running beside it; the detector still
runs for any other tracked class. Both see the same regions, so motion gating and packing apply.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import supervision as sv

from pipeline.detect.base import BatchDetector
from pipeline.types import Box


class PeopleWithPose:
    def __init__(self, pose: BatchDetector, others: BatchDetector | None, keypoints: tuple[int, int]) -> None:
        self.pose = pose
        self.others = others
        self.keypoints = keypoints

    @property
    def inferences(self) -> int:
        return self.pose.inferences + (self.others.inferences if self.others is not None else 0)

    def detect_many(self, items: Sequence[tuple[np.ndarray, Sequence[Box] | None]]) -> list[sv.Detections]:
        people = self.pose.detect_many(items)
        if self.others is None:
            return people
        return [self._merge(a, b) for a, b in zip(people, self.others.detect_many(items))]

    def _merge(self, people: sv.Detections, others: sv.Detections) -> sv.Detections:
        """One Detections: other classes carry no keypoints (zero visibility)."""
        others.data["keypoints"] = np.zeros((len(others), *self.keypoints), np.float32)
        merged = sv.Detections.merge([people, others])
        merged.metadata = people.metadata
        return merged
