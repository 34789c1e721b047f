"""Where the detector must look on a frame: new motion, and tracks that are close to changing an event.

Between detector runs the tracker carries every track on its motion model. Only where an event
can change does a track need the detector on every analysed frame: near a zone's edge or a line
(where it could enter, leave or cross), or everywhere for a rule that watches the whole frame.
A track far from all of them is looked at again at least every `detect.carry_seconds`; motion
where no track is always is (something new). So the detector sees fewer, smaller regions, and a
frame where nothing needs it skips it.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from pipeline.config import CameraConfig
from pipeline.geometry import box_overlap, polygon_array
from pipeline.types import Box, Point, Track

COVER = 0.5  # tracked boxes grown by this share per side explain the motion on and around them


def _segment_distance(p: Point, a: Point, b: Point) -> float:
    ax, ay, bx, by, px, py = *a, *b, *p
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    u = 0.0 if length2 == 0 else min(1.0, max(0.0, ((px - ax) * dx + (py - ay) * dy) / length2))
    return float(np.hypot(px - (ax + u * dx), py - (ay + u * dy)))


def _grown(box: Box) -> Box:
    w, h = box[2] - box[0], box[3] - box[1]
    return (box[0] - COVER * w, box[1] - COVER * h, box[2] + COVER * w, box[3] + COVER * h)


def _explained(region: Box, boxes: Sequence[Box]) -> bool:
    """Whether most of a motion region lies on tracked objects (grown a little): their own movement."""
    area = max((region[2] - region[0]) * (region[3] - region[1]), 1.0)
    return sum(box_overlap(region, box) for box in boxes) >= 0.5 * area


class DetectionFocus:
    def __init__(self, cfg: CameraConfig) -> None:
        self.carry_seconds = cfg.detect.carry_seconds
        self.margin = cfg.detect.near_heights
        zones = {getattr(rule, "zone", None) for rule in cfg.rules if hasattr(rule, "zone")}
        lines = {rule.line for rule in cfg.rules if hasattr(rule, "line")}
        # A rule that watches the whole frame (no zone, no line), or needs every pose, needs every track.
        self.everywhere = any(
            (hasattr(rule, "zone") and rule.zone is None) or rule.type == "fall" for rule in cfg.rules
        )
        self.edges = [polygon_array(cfg.zones[z].polygon) for z in sorted(z for z in zones if z is not None)]
        self.lines = [cfg.lines[name].points for name in sorted(lines)]
        self.looked: dict[int, float] = {}  # track id -> when the detector last looked at it

    def near(self, track: Track) -> bool:
        """Whether the track's ground point is within `near_heights` box heights of a zone edge or a line."""
        if self.everywhere:
            return True
        reach = self.margin * max(track.box[3] - track.box[1], 1.0)
        point = track.point
        for polygon in self.edges:
            if abs(cv2.pointPolygonTest(polygon, (float(point[0]), float(point[1])), True)) <= reach:
                return True
        return any(_segment_distance(point, a, b) <= reach for a, b in self.lines)

    def plan(self, t: float, motion: Sequence[Box], alive: Sequence[Track]) -> list[Box]:
        """The regions to detect on a frame at `t` ([]: none, skip the detector)."""
        self.looked = {track.track_id: self.looked.get(track.track_id, track.last_seen) for track in alive}
        grown = [_grown(track.box) for track in alive]
        fresh = [region for region in motion if not _explained(region, grown)]
        watched = [
            track for track in alive if self.near(track) or t - self.looked[track.track_id] >= self.carry_seconds - 1e-6
        ]
        if not fresh and not watched:
            return []
        for track in watched:
            self.looked[track.track_id] = t
        # A watched track's own motion shows where it has moved to since it was last seen: look there too.
        around = [_grown(track.box) for track in watched]
        moved = [region for region in motion if region not in fresh and any(box_overlap(region, box) > 0 for box in around)]
        return [*fresh, *moved, *(track.box for track in watched)]
