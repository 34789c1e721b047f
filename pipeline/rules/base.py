"""What every rule shares: the alarm it raises, its changes, what it sees of a frame, and helpers.

Hits hold value snapshots: the tracker mutates its tracks in place, and a rule its open alarms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

import cv2
import numpy as np
import supervision as sv

from pipeline.config import RuleBase
from pipeline.geometry import box_iou
from pipeline.types import Box, Track

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
    object_id: int | None = None  # a scene object (left item, fire) the alarm is about, per rule
    owner_track_id: int | None = None  # abandoned object: the track that brought it, where known
    left_at: float | None = None  # abandoned object: when it was put down
    fell_at: float | None = None  # fall: when the person fell

    @property
    def key(self) -> tuple[str, int | None, int | None]:
        """What names the alarm while it is open: its rule and the track or scene object it is about."""
        return (self.rule, self.track_id, self.object_id)


@dataclass(frozen=True, slots=True)
class RuleHit:
    """One change of one alarm; `alarm.key` names the alarm while it is open."""

    kind: HitKind
    alarm: Alarm


@dataclass(frozen=True, slots=True)
class Sighting:
    """Something seen in this frame: a tracked object, or a detection no track has taken (yet)."""

    box: Box
    label: str
    score: float
    track_id: int | None


@dataclass(frozen=True, slots=True)
class Scene:
    """What the rules see of one analysed frame."""

    t: float  # media seconds
    frame: int  # source frame index
    tracks: Sequence[Track]  # alive tracks that passed their filters (a carried track keeps its last sighting)
    image: np.ndarray | None = None  # the BGR frame, for rules that look at pixels; None when replaying tracks
    detections: sv.Detections | None = None  # the detector's raw output, when it ran on this frame

    @property
    def seen(self) -> list[Track]:
        """The tracks sighted in this very frame."""
        return [track for track in self.tracks if track.last_seen >= self.t - EPS]

    def sightings(self, min_score: float) -> list[Sighting]:
        """The tracks seen in this frame and, for scene rules, the detections at `min_score` no track has taken:
        a person walking away is often seen only weakly, or by a track not yet confirmed."""
        seen = [Sighting(t.box, t.label, t.score, t.track_id) for t in self.seen]
        if self.detections is None:
            return seen
        labels = self.detections.data.get("class_name", np.array([], dtype=str))
        for box, score, label in zip(self.detections.xyxy, self.detections.confidence, labels):
            xyxy = (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
            if score >= min_score and not any(s.label == label and box_iou(s.box, xyxy) > 0.5 for s in seen):
                seen.append(Sighting(xyxy, str(label), float(score), None))
        return seen


class Rule(Protocol):
    def update(self, scene: Scene) -> list[RuleHit]: ...

    def close(self, t: float, frame: int) -> list[RuleHit]: ...


class ImageRule:
    """A rule that reads the frame's pixels (abandoned objects, fire); `observe` does its work."""

    sighting_score: float  # detections this confident count as seen (people, bags), tracked or not
    frame: int  # the frame being analysed, for the alarms' frame numbers

    def update(self, scene: Scene) -> list[RuleHit]:
        """One analysed frame; without its pixels (a replay of tracks) there is nothing to see."""
        if scene.image is None:
            return []
        self.frame = scene.frame
        return self.observe(scene.t, scene.image, scene.sightings(self.sighting_score))

    def observe(self, t: float, bgr: np.ndarray, detections: Sequence[Sighting | Track] = ()) -> list[RuleHit]:
        raise NotImplementedError


def work_image(bgr: np.ndarray, width: int) -> tuple[np.ndarray, float]:
    """The frame scaled to `width` pixels (the pixel rules' resolution) and the factor back to frame pixels."""
    h, w = bgr.shape[:2]
    image = bgr if w == width else cv2.resize(bgr, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)
    return image, w / width


def time_weight(dt: float, tau: float) -> float:
    """Weight of a new sample in a running mean with time constant `tau` seconds, `dt` after the last one.

    Running means over analysed frames must weigh by real time: frames arrive 0.1 to 2 s apart.
    """
    if tau <= 0:
        return 1.0
    return float(1.0 - np.exp(-max(dt, 0.0) / tau))


def hit(kind: HitKind, alarm: Alarm) -> RuleHit:
    return RuleHit(kind, replace(alarm))


def union(boxes: Sequence[Box]) -> Box:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def track_alarm(rule: RuleBase, track: Track, **fields: Any) -> Alarm:
    """An alarm about one track, starting at its latest sighting (`fields` add to or override it)."""
    values: dict[str, Any] = {
        "rule": rule.name,
        "type": rule.type,
        "label": track.label,
        "track_id": track.track_id,
        "start": track.last_seen,
        "start_frame": track.last_frame,
        "score": track.score,
        "box": track.box,
        "priority": rule.priority,
    }
    return Alarm(**(values | fields))


def wants(rule: RuleBase, track: Track) -> bool:
    return rule.classes is None or track.label in rule.classes


def height(track: Track) -> float:
    return max(track.box[3] - track.box[1], 1.0)


