"""What the rules see: one tracked object, with its history condensed to what rules need."""

from __future__ import annotations

from dataclasses import dataclass

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in source-frame pixels


@dataclass(slots=True)
class Track:
    track_id: int
    label: str
    box: Box  # last seen box
    score: float  # detector score at the last sighting
    first_seen: float  # media seconds
    last_seen: float  # media seconds of the last sighting
    last_frame: int  # source frame index of the last sighting
    hits: int = 1  # frames in which the detector saw it

    @property
    def point(self) -> tuple[float, float]:
        """Bottom-centre of the box: where the object touches the ground."""
        x1, _, x2, y2 = self.box
        return ((x1 + x2) / 2.0, y2)
