"""Value types shared by every stage: boxes and points in source-frame pixels, frames, tracks.

Pixels are source-frame pixels, x right and y down; times are media seconds from the start of the
stream (the live service puts them on the wall clock).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Box = tuple[float, float, float, float]  # x1, y1, x2, y2
Point = tuple[float, float]  # x, y


@dataclass(frozen=True, slots=True)
class Frame:
    """The unit that flows out of a source: one decoded image with its media time."""

    image: np.ndarray  # BGR, HxWx3, uint8
    index: int  # 0-based index of the decoded frame in the source
    pts: float  # media seconds from the start of the stream (from the stream's PTS, not wall time)
    clear: np.ndarray | None = None  # the image before its privacy zones were blacked out, when detection may see it

    @property
    def detect_image(self) -> np.ndarray:
        """What the detector and the rules look at: under privacy zones only where the camera allows it."""
        return self.image if self.clear is None else self.clear


@dataclass(slots=True)
class Track:
    """What the rules see: one tracked object, with its history condensed to what rules need."""

    track_id: int
    label: str
    box: Box  # last seen box
    score: float  # detector score at the last sighting
    first_seen: float  # media seconds
    last_seen: float  # media seconds of the last sighting
    last_frame: int  # source frame index of the last sighting
    hits: int = 1  # frames in which the detector saw it
    keypoints: np.ndarray | None = None  # 17 x (x, y, visibility) at the last sighting, when a pose model ran
    expected: Box | None = None  # where the motion model puts it now, when not seen on this frame

    @property
    def point(self) -> Point:
        """Bottom-centre of the box: where the object touches the ground."""
        x1, _, x2, y2 = self.box
        return ((x1 + x2) / 2.0, y2)
