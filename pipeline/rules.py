"""Rules stage: alive tracks -> rule hits (an alarm starts, improves or ends).

Every rule looks at the bottom-centre point of each track. Per-track rules time a track by its
sightings (`Track.last_seen`), not by the frame clock, so a track that the tracker only carries
through missed frames (or that walked out of view) neither dwells longer nor ends later than
the last time it was actually seen. Crowding is a property of the whole frame and uses the
frame clock. Hits hold value snapshots: the tracker mutates its tracks in place.

One real event should be one alarm even when the camera is analysed at 1.5 fps with irregular
gaps, so every rule has some continuity, all in media seconds: zone rules an `inertia` (out of the
zone or unseen this long before a visit ends) and a `handoff` of a visit to the track that appears
where its track vanished; line crossings a `band` the track must leave before it can cross again;
crowding an `end_seconds` grace below `min_count`; and any rule an optional `cooldown_seconds`.
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
HANDOFF_RADIUS = 1.0  # box heights: how near where a visit's track vanished a new track must appear

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
    """One stay in a zone: from the sighting where it entered to the latest sighting inside."""

    entered_at: float
    last_seen: float  # the latest sighting inside
    last_frame: int
    seen_at: float  # the latest sighting of its track, inside or out
    point: Point  # where that was
    height: float  # and the box height there
    alarm: Alarm | None = None


class _DwellRule:
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

    def update(self, t: float, frame: int, tracks: Sequence[Track]) -> list[RuleHit]:
        hits: list[RuleHit] = []
        mine = [tr for tr in tracks if _wants(self.rule, tr) and tr.track_id not in self.retired]
        for track in mine:  # where each visit's track is now, inside or out
            if track.track_id in self.visits:
                visit = self.visits[track.track_id]
                visit.seen_at, visit.point, visit.height = track.last_seen, track.point, _height(track)
        inside = {tr.track_id for tr in mine if in_polygon(tr.point, self.polygon)}
        for track in (tr for tr in mine if tr.track_id in inside):
            visit = self.visits.get(track.track_id) or self._handoff(track)
            if visit is None:
                visit = _Visit(
                    track.last_seen, track.last_seen, track.last_frame, track.last_seen, track.point, _height(track)
                )
                self.visits[track.track_id] = visit
            visit.last_seen, visit.last_frame = track.last_seen, track.last_frame
            if visit.alarm is None:
                if track.last_seen - visit.entered_at >= self.rule.min_seconds - EPS:
                    visit.alarm = self._alarm(track, visit)
                    hits.append(_hit("start", visit.alarm))
            elif track.score > visit.alarm.score:
                visit.alarm.score, visit.alarm.box = track.score, track.box
                hits.append(_hit("update", visit.alarm))
        for track_id in sorted(self.visits.keys() - inside):  # outside, or lost
            if t - self.visits[track_id].last_seen > self.rule.inertia + EPS:
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
            if far <= HANDOFF_RADIUS * max(visit.height, _height(track)) and (best is None or far < best[0]):
                best = (far, track_id)
        if best is None:
            return None
        visit = self.visits.pop(best[1])
        self.visits[track.track_id] = visit
        self.retired[best[1]] = track.track_id
        return visit

    def _alarm(self, track: Track, visit: _Visit) -> Alarm:
        loitering = isinstance(self.rule, LoiteringRule)
        return _track_alarm(self.rule, track, zone=self.rule.zone, entered_at=visit.entered_at if loitering else None)

    def _end(self, track_id: int) -> list[RuleHit]:
        """Close a visit; its alarm ends at the last sighting inside the zone."""
        visit = self.visits.pop(track_id, None)
        self.retired = {old: new for old, new in self.retired.items() if new != track_id}
        if visit is None or visit.alarm is None:
            return []
        visit.alarm.end, visit.alarm.end_frame = visit.last_seen, visit.last_frame
        return [_hit("end", visit.alarm)]

    def close(self, t: float, frame: int) -> list[RuleHit]:
        return [hit for track_id in list(self.visits) for hit in self._end(track_id)]


def _height(track: Track) -> float:
    return max(track.box[3] - track.box[1], 1.0)


@dataclass(slots=True)
class _Approach:
    """One track's relation to a line."""

    point: Point  # its latest sighting
    side: float  # the side it is on, or crossed to last: -1 or 1 (0 until first seen off the line)
    armed: bool  # been farther than `band` from the line since its last crossing
    crossed_at: Point  # where it was first seen past the line at its last crossing


class _LineRule:
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

    def update(self, t: float, frame: int, tracks: Sequence[Track]) -> list[RuleHit]:
        hits: list[RuleHit] = []
        seen: dict[int, _Approach] = {}
        for track in tracks:
            if not _wants(self.rule, track):
                continue
            point = track.point
            distance = side(self.a, self.b, point) / self.length  # signed, in pixels
            now = float(np.sign(distance))
            far = abs(distance) > self.rule.band * _height(track)
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

    def update(self, t: float, frame: int, tracks: Sequence[Track]) -> list[RuleHit]:
        inside = [tr for tr in tracks if _wants(self.rule, tr) and in_polygon(tr.point, self.polygon)]
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
        if self.alarm is not None and self.holding:
            self.last = (t, frame)  # the crowd was still there when the video ended
        self.since = None
        return self._end()


class _Cooldown:
    """A rule's alarms, less those starting within `seconds` of the end of its last one (per track)."""

    def __init__(self, rule: _Rule, seconds: float) -> None:
        self.rule = rule
        self.seconds = seconds
        self.ended: dict[int | None, float] = {}  # track id -> end of its last alarm
        self.muted: set[int | None] = set()

    def _filter(self, hits: list[RuleHit]) -> list[RuleHit]:
        out = []
        for hit in hits:
            key = hit.alarm.track_id
            if hit.kind == "start" and hit.alarm.start - self.ended.get(key, float("-inf")) < self.seconds - EPS:
                self.muted.add(key)
            if key in self.muted:
                if hit.kind == "end":
                    self.muted.discard(key)
                continue
            out.append(hit)
            if hit.kind == "end":
                self.ended[key] = hit.alarm.end if hit.alarm.end is not None else hit.alarm.start
        return out

    def update(self, t: float, frame: int, tracks: Sequence[Track]) -> list[RuleHit]:
        return self._filter(self.rule.update(t, frame, tracks))

    def close(self, t: float, frame: int) -> list[RuleHit]:
        return self._filter(self.rule.close(t, frame))


class RuleEngine:
    """All rules of one camera; call `update` once per processed frame and `close` at the end."""

    def __init__(self, camera: str, cfg: CameraConfig) -> None:
        self.camera = camera
        self.rules: list[_Rule] = [self._build(rule, cfg) for rule in cfg.rules]

    @staticmethod
    def _build(rule: RuleBase, cfg: CameraConfig) -> _Rule:
        built: _Rule
        match rule:
            case IntrusionRule() | LoiteringRule():
                built = _DwellRule(rule, polygon_array(cfg.zones[rule.zone].polygon))
            case LineCrossingRule():
                built = _LineRule(rule, *cfg.lines[rule.line].points)
            case CrowdingRule():
                built = _CrowdRule(rule, polygon_array(cfg.zones[rule.zone].polygon))
            case _:
                raise TypeError(f"unsupported rule type {type(rule).__name__}")
        return _Cooldown(built, rule.cooldown_seconds) if rule.cooldown_seconds > 0 else built

    def update(self, t: float, frame: int, tracks: Sequence[Track]) -> list[RuleHit]:
        """Hits for one frame; a track missing from `tracks` is lost and its alarms end."""
        return [hit for rule in self.rules for hit in rule.update(t, frame, tracks)]

    def close(self, t: float, frame: int) -> list[RuleHit]:
        """End every open alarm (end of the video, or shutdown)."""
        return [hit for rule in self.rules for hit in rule.close(t, frame)]
