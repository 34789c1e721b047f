"""Zone rules: intrusion and loitering (a visit per track), crowding (a count in the zone).

Every rule looks at the bottom-centre point of each track. Per-track rules time a track by its
sightings (`Track.last_seen`), not by the frame clock, so a track that the tracker only carries
through missed frames (or that walked out of view) neither dwells longer nor ends later than
the last time it was actually seen. Crowding is a property of the whole frame and uses the
frame clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.config import CrowdingRule, IntrusionRule, LoiteringRule
from pipeline.geometry import in_polygon
from pipeline.rules.base import EPS, Alarm, RuleHit, Scene, height, hit, track_alarm, union, wants
from pipeline.types import Point, Track

HANDOFF_RADIUS = 1.0  # box heights: how near where a visit's track vanished a new track must appear


@dataclass(slots=True)
class _Visit:
    """One stay in a zone: from the sighting where it entered to the latest sighting inside."""

    entered_at: float
    last_seen: float  # the latest sighting inside
    last_frame: int
    seen_at: float  # the latest sighting of its track, inside or out
    point: Point  # where that was
    height: float  # and the box height there
    alarm: Alarm | None = None


class DwellRule:
    """Intrusion and loitering: one alarm per visit once the track has been inside `min_seconds`.

    A visit ends when its track has not been seen inside for more than `inertia` seconds (it was
    seen outside, or it is lost); coming back within that continues the visit, so a person walking
    along the zone's edge is one event. A track first seen inside within `handoff_seconds` after a
    visit's track vanished, and within a box height of where it vanished, takes the visit over (the
    tracker lost the identity, not the person), so loitering survives an identity switch.
    """

    def __init__(self, rule: IntrusionRule | LoiteringRule, polygon: np.ndarray) -> None:
        self.rule = rule
        self.polygon = polygon
        self.visits: dict[int, _Visit] = {}
        self.retired: dict[int, int] = {}  # track id -> track now holding its handed-off visit

    def update(self, scene: Scene) -> list[RuleHit]:
        hits: list[RuleHit] = []
        mine = [tr for tr in scene.tracks if wants(self.rule, tr) and tr.track_id not in self.retired]
        for track in mine:  # where each visit's track is now, inside or out
            if track.track_id in self.visits:
                visit = self.visits[track.track_id]
                visit.seen_at, visit.point, visit.height = track.last_seen, track.point, height(track)
        inside = {tr.track_id for tr in mine if in_polygon(tr.point, self.polygon)}
        for track in (tr for tr in mine if tr.track_id in inside):
            visit = self.visits.get(track.track_id) or self._handoff(track)
            if visit is None:
                visit = _Visit(
                    track.last_seen, track.last_seen, track.last_frame, track.last_seen, track.point, height(track)
                )
                self.visits[track.track_id] = visit
            visit.last_seen, visit.last_frame = track.last_seen, track.last_frame
            if visit.alarm is None:
                if track.last_seen - visit.entered_at >= self.rule.min_seconds - EPS:
                    visit.alarm = self._alarm(track, visit)
                    hits.append(hit("start", visit.alarm))
            elif track.score > visit.alarm.score:
                visit.alarm.score, visit.alarm.box = track.score, track.box
                hits.append(hit("update", visit.alarm))
        for track_id in sorted(self.visits.keys() - inside):  # outside, or lost
            if scene.t - self.visits[track_id].last_seen > self.rule.inertia + EPS:
                hits += self._end(track_id)
        return hits

    def _handoff(self, track: Track) -> _Visit | None:
        """The open visit this track continues: one whose track vanished, before this one appeared, where it is now."""
        best: tuple[float, int] | None = None
        for track_id, visit in self.visits.items():
            gap = track.first_seen - visit.seen_at
            if gap <= 0 or gap > self.rule.handoff_seconds + EPS:  # seen at once: two people; or too late
                continue
            far = float(np.hypot(track.point[0] - visit.point[0], track.point[1] - visit.point[1]))
            if far <= HANDOFF_RADIUS * max(visit.height, height(track)) and (best is None or far < best[0]):
                best = (far, track_id)
        if best is None:
            return None
        visit = self.visits.pop(best[1])
        self.visits[track.track_id] = visit
        self.retired[best[1]] = track.track_id
        return visit

    def _alarm(self, track: Track, visit: _Visit) -> Alarm:
        loitering = isinstance(self.rule, LoiteringRule)
        return track_alarm(self.rule, track, zone=self.rule.zone, entered_at=visit.entered_at if loitering else None)

    def _end(self, track_id: int) -> list[RuleHit]:
        """Close a visit; its alarm ends at the last sighting inside the zone."""
        visit = self.visits.pop(track_id, None)
        self.retired = {old: new for old, new in self.retired.items() if new != track_id}
        if visit is None or visit.alarm is None:
            return []
        visit.alarm.end, visit.alarm.end_frame = visit.last_seen, visit.last_frame
        return [hit("end", visit.alarm)]

    def close(self, t: float, frame: int) -> list[RuleHit]:
        return [hit for track_id in list(self.visits) for hit in self._end(track_id)]


class CrowdRule:
    """One alarm while at least `min_count` tracks have been inside the zone for `min_seconds`.

    The count may fall below `min_count` for up to `end_seconds` without ending the alarm (or, before
    it starts, restarting the `min_seconds` clock): a crowd whose count flickers is one event.
    """

    def __init__(self, rule: CrowdingRule, polygon: np.ndarray) -> None:
        self.rule = rule
        self.polygon = polygon
        self.since: float | None = None  # frame time the count reached min_count
        self.last: tuple[float, int] = (0.0, 0)  # frame time and index the condition last held
        self.holding = False  # whether it held at the latest frame
        self.alarm: Alarm | None = None

    def update(self, scene: Scene) -> list[RuleHit]:
        t, frame = scene.t, scene.frame
        inside = [tr for tr in scene.tracks if wants(self.rule, tr) and in_polygon(tr.point, self.polygon)]
        self.holding = len(inside) >= self.rule.min_count
        if not self.holding:
            if self.since is None or t - self.last[0] <= self.rule.end_seconds + EPS:
                return []
            self.since = None
            return self._end()
        if self.since is None:
            self.since = t
        self.last = (t, frame)
        score = max(tr.score for tr in inside)
        if self.alarm is None:
            if t - self.since < self.rule.min_seconds - EPS:
                return []
            labels = {tr.label for tr in inside}
            self.alarm = Alarm(
                rule=self.rule.name,
                type=self.rule.type,
                label=labels.pop() if len(labels) == 1 else None,
                track_id=None,
                start=t,
                start_frame=frame,
                score=score,
                box=union([tr.box for tr in inside]),
                priority=self.rule.priority,
                zone=self.rule.zone,
                count=len(inside),
            )
            return [hit("start", self.alarm)]
        alarm, changed = self.alarm, False
        if len(inside) > (alarm.count or 0):  # the box shows the crowd at its largest
            alarm.count, alarm.box, changed = len(inside), union([tr.box for tr in inside]), True
        if score > alarm.score:
            alarm.score, changed = score, True
        return [hit("update", alarm)] if changed else []

    def _end(self) -> list[RuleHit]:
        if self.alarm is None:
            return []
        alarm, self.alarm = self.alarm, None
        alarm.end, alarm.end_frame = self.last
        return [hit("end", alarm)]

    def close(self, t: float, frame: int) -> list[RuleHit]:
        if self.alarm is not None and self.holding:
            self.last = (t, frame)  # the crowd was still there when the video ended
        self.since = None
        return self._end()
