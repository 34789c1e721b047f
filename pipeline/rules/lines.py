"""Line crossings: one instantaneous alarm per crossing of the segment by a track's movement."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.config import LineCrossingRule
from pipeline.geometry import segments_intersect, side
from pipeline.rules.base import RuleHit, Scene, height, hit, track_alarm, wants
from pipeline.types import Point, Track


@dataclass(slots=True)
class _Approach:
    """One track's relation to a line."""

    point: Point  # its latest sighting
    side: float  # the side it is on, or crossed to last: -1 or 1 (0 until first seen off the line)
    armed: bool  # been farther than `band` from the line since its last crossing
    crossed_at: Point  # where it was first seen past the line at its last crossing


class LineRule:
    """One instantaneous alarm each time a track's movement between sightings crosses the segment.

    After a crossing, the track must get farther than `band` box heights from the line (on either
    side) before its next crossing counts: a track jittering on the line, or walking along it, is
    one crossing, counted when it first crossed. Going back beyond the band is a crossing back.
    """

    def __init__(self, rule: LineCrossingRule, a: Point, b: Point) -> None:
        self.rule = rule
        self.a, self.b = a, b
        self.length = float(np.hypot(b[0] - a[0], b[1] - a[1]))
        self.last: dict[int, _Approach] = {}

    def update(self, scene: Scene) -> list[RuleHit]:
        hits: list[RuleHit] = []
        seen: dict[int, _Approach] = {}
        for track in scene.tracks:
            if not wants(self.rule, track):
                continue
            point = track.point
            distance = side(self.a, self.b, point) / self.length  # signed, in pixels
            now = float(np.sign(distance))
            far = abs(distance) > self.rule.band * height(track)
            state = self.last.get(track.track_id) or _Approach(point, now, far, point)
            if now and now != state.side:
                if state.side == 0:  # first seen on the line: no side to cross from
                    state.side, state.armed = now, far
                elif state.armed or far:
                    start = state.point if state.armed else state.crossed_at  # back across after jitter
                    if segments_intersect(start, point, self.a, self.b):
                        direction = "a_to_b" if now > 0 else "b_to_a"
                        if self.rule.direction in ("any", direction):
                            hits += self._crossing(track, direction)
                        state.crossed_at = point
                    state.side, state.armed = now, far
            elif now and far:
                state.armed = True
            state.point = point
            seen[track.track_id] = state
        self.last = seen  # tracks that vanished are forgotten
        return hits

    def _crossing(self, track: Track, direction: str) -> list[RuleHit]:
        alarm = track_alarm(
            self.rule,
            track,
            end=track.last_seen,
            end_frame=track.last_frame,
            line=self.rule.line,
            direction=direction,
        )
        return [hit("start", alarm), hit("end", alarm)]

    def close(self, t: float, frame: int) -> list[RuleHit]:
        self.last.clear()
        return []
