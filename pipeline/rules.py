"""Rules stage: alive tracks -> rule hits (an alarm starts, improves or ends).

Every rule looks at the bottom-centre point of each track. Per-track rules time a track by its
sightings (`Track.last_seen`), not by the frame clock, so a track that the tracker only carries
through missed frames (or that walked out of view) neither dwells longer nor ends later than
the last time it was actually seen. Crowding is a property of the whole frame and uses the
frame clock. Hits hold value snapshots: the tracker mutates its tracks in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

import numpy as np

from pipeline.config import (
    CameraConfig,
    CrowdingRule,
    IntrusionRule,
    LineCrossingRule,
    LoiteringRule,
    RuleBase,
)
from pipeline.geometry import in_polygon, polygon_array, segments_intersect, side
from pipeline.types import Box, Point, Track

EPS = 1e-6  # media times are k / fps: 8.7 - 0.7 (7.999...) must still count as 8 s

HitKind = Literal["start", "update", "end"]


@dataclass(slots=True, kw_only=True)
class Alarm:
    """What one rule firing says, in the order of the `events.jsonl` record (less id and camera)."""

    rule: str
    type: str
    label: str | None
    track_id: int | None
    start: float
    end: float | None = None
    start_frame: int
    end_frame: int | None = None
    score: float
    box: Box
    priority: int
    zone: str | None = None
    line: str | None = None
    direction: str | None = None
    count: int | None = None
    entered_at: float | None = None


@dataclass(frozen=True, slots=True)
class RuleHit:
    """One change of one alarm; (alarm.rule, alarm.track_id) names the alarm while it is open."""

    kind: HitKind
    alarm: Alarm


class _Rule(Protocol):
    def update(self, t: float, frame: int, tracks: Sequence[Track]) -> list[RuleHit]: ...

    def close(self, t: float, frame: int) -> list[RuleHit]: ...


def _hit(kind: HitKind, alarm: Alarm) -> RuleHit:
    return RuleHit(kind, replace(alarm))


def _union(boxes: Sequence[Box]) -> Box:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _track_alarm(rule: RuleBase, track: Track, **fields: Any) -> Alarm:
    """An alarm about one track, starting at its latest sighting."""
    return Alarm(
        rule=rule.name,
        type=rule.type,
        label=track.label,
        track_id=track.track_id,
        start=track.last_seen,
        start_frame=track.last_frame,
        score=track.score,
        box=track.box,
        priority=rule.priority,
        **fields,
    )


def _wants(rule: RuleBase, track: Track) -> bool:
    return rule.classes is None or track.label in rule.classes


@dataclass(slots=True)
class _Visit:
    """One track's stay in a zone, from the sighting where it entered to its latest sighting inside."""

    entered_at: float
    last_seen: float
    last_frame: int
    alarm: Alarm | None = None


class _DwellRule:
    """Intrusion (dwell 0) and loitering: one alarm per visit once the track has been inside `min_seconds`."""

    def __init__(self, rule: IntrusionRule | LoiteringRule, polygon: np.ndarray, min_seconds: float) -> None:
        self.rule = rule
        self.polygon = polygon
        self.min_seconds = min_seconds
        self.visits: dict[int, _Visit] = {}

    def update(self, t: float, frame: int, tracks: Sequence[Track]) -> list[RuleHit]:
        hits: list[RuleHit] = []
        present: set[int] = set()
        for track in tracks:
            if not _wants(self.rule, track):
                continue
            present.add(track.track_id)
            if not in_polygon(track.point, self.polygon):
                hits += self._end(track.track_id)
                continue
            visit = self.visits.setdefault(track.track_id, _Visit(track.last_seen, track.last_seen, track.last_frame))
            visit.last_seen, visit.last_frame = track.last_seen, track.last_frame
            if visit.alarm is None:
                if track.last_seen - visit.entered_at >= self.min_seconds - EPS:
                    visit.alarm = self._alarm(track, visit)
                    hits.append(_hit("start", visit.alarm))
            elif track.score > visit.alarm.score:
                visit.alarm.score, visit.alarm.box = track.score, track.box
                hits.append(_hit("update", visit.alarm))
        for track_id in sorted(self.visits.keys() - present):  # lost
            hits += self._end(track_id)
        return hits

    def _alarm(self, track: Track, visit: _Visit) -> Alarm:
        loitering = isinstance(self.rule, LoiteringRule)
        return _track_alarm(self.rule, track, zone=self.rule.zone, entered_at=visit.entered_at if loitering else None)

    def _end(self, track_id: int) -> list[RuleHit]:
        """Close a visit; its alarm ends at the last sighting inside the zone."""
        visit = self.visits.pop(track_id, None)
        if visit is None or visit.alarm is None:
            return []
        visit.alarm.end, visit.alarm.end_frame = visit.last_seen, visit.last_frame
        return [_hit("end", visit.alarm)]

    def close(self, t: float, frame: int) -> list[RuleHit]:
        return [hit for track_id in list(self.visits) for hit in self._end(track_id)]


class _LineRule:
    """One instantaneous alarm each time a track's movement between sightings crosses the segment."""

    def __init__(self, rule: LineCrossingRule, a: Point, b: Point) -> None:
        self.rule = rule
        self.a, self.b = a, b
        self.last: dict[int, tuple[Point, float]] = {}  # track id -> (last point, last non-zero side)

    def update(self, t: float, frame: int, tracks: Sequence[Track]) -> list[RuleHit]:
        hits: list[RuleHit] = []
        seen: dict[int, tuple[Point, float]] = {}
        for track in tracks:
            if not _wants(self.rule, track):
                continue
            point = track.point
            now = side(self.a, self.b, point)
            prev_point, prev_side = self.last.get(track.track_id, (point, now))
            if now * prev_side < 0 and segments_intersect(prev_point, point, self.a, self.b):
                direction = "a_to_b" if now > 0 else "b_to_a"
                if self.rule.direction in ("any", direction):
                    hits += self._crossing(track, direction)
            seen[track.track_id] = (point, now or prev_side)  # on the line: keep the side it came from
        self.last = seen  # tracks that vanished are forgotten
        return hits

    def _crossing(self, track: Track, direction: str) -> list[RuleHit]:
        alarm = _track_alarm(
            self.rule,
            track,
            end=track.last_seen,
            end_frame=track.last_frame,
            line=self.rule.line,
            direction=direction,
        )
        return [_hit("start", alarm), _hit("end", alarm)]

    def close(self, t: float, frame: int) -> list[RuleHit]:
        self.last.clear()
        return []


class _CrowdRule:
    """One alarm while at least `min_count` tracks have been inside the zone for `min_seconds`."""

    def __init__(self, rule: CrowdingRule, polygon: np.ndarray) -> None:
        self.rule = rule
        self.polygon = polygon
        self.since: float | None = None  # frame time the count first reached min_count
        self.last: tuple[float, int] = (0.0, 0)  # frame time and index the condition last held
        self.alarm: Alarm | None = None

    def update(self, t: float, frame: int, tracks: Sequence[Track]) -> list[RuleHit]:
        inside = [tr for tr in tracks if _wants(self.rule, tr) and in_polygon(tr.point, self.polygon)]
        if len(inside) < self.rule.min_count:
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
                box=_union([tr.box for tr in inside]),
                priority=self.rule.priority,
                zone=self.rule.zone,
                count=len(inside),
            )
            return [_hit("start", self.alarm)]
        alarm, changed = self.alarm, False
        if len(inside) > (alarm.count or 0):  # the box shows the crowd at its largest
            alarm.count, alarm.box, changed = len(inside), _union([tr.box for tr in inside]), True
        if score > alarm.score:
            alarm.score, changed = score, True
        return [_hit("update", alarm)] if changed else []

    def _end(self) -> list[RuleHit]:
        if self.alarm is None:
            return []
        alarm, self.alarm = self.alarm, None
        alarm.end, alarm.end_frame = self.last
        return [_hit("end", alarm)]

    def close(self, t: float, frame: int) -> list[RuleHit]:
        if self.alarm is not None:
            self.last = (t, frame)  # the crowd was still there when the video ended
        self.since = None
        return self._end()


class RuleEngine:
    """All rules of one camera; call `update` once per processed frame and `close` at the end."""

    def __init__(self, camera: str, cfg: CameraConfig) -> None:
        self.camera = camera
        self.rules: list[_Rule] = [self._build(rule, cfg) for rule in cfg.rules]

    @staticmethod
    def _build(rule: RuleBase, cfg: CameraConfig) -> _Rule:
        match rule:
            case IntrusionRule():
                return _DwellRule(rule, polygon_array(cfg.zones[rule.zone].polygon), 0.0)
            case LoiteringRule():
                return _DwellRule(rule, polygon_array(cfg.zones[rule.zone].polygon), rule.min_seconds)
            case LineCrossingRule():
                return _LineRule(rule, *cfg.lines[rule.line].points)
            case CrowdingRule():
                return _CrowdRule(rule, polygon_array(cfg.zones[rule.zone].polygon))
        raise TypeError(f"unsupported rule type {type(rule).__name__}")

    def update(self, t: float, frame: int, tracks: Sequence[Track]) -> list[RuleHit]:
        """Hits for one frame; a track missing from `tracks` is lost and its alarms end."""
        return [hit for rule in self.rules for hit in rule.update(t, frame, tracks)]

    def close(self, t: float, frame: int) -> list[RuleHit]:
        """End every open alarm (end of the video, or shutdown)."""
        return [hit for rule in self.rules for hit in rule.close(t, frame)]
