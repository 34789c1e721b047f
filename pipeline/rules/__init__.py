"""Rules stage: alive tracks (and, for scene rules, the frame itself) -> rule hits (an alarm starts, improves or ends).

One real event should be one alarm even when the camera is analysed at 1.5 fps with irregular
gaps, so every rule has some continuity, all in media seconds: zone rules an `inertia` (out of the
zone or unseen this long before a visit ends) and a `handoff` of a visit to the track that appears
where its track vanished; line crossings a `band` the track must leave before it can cross again;
crowding an `end_seconds` grace below `min_count`; and any rule an optional `cooldown_seconds`.

Rule types, one module each: `zones` (intrusion, loitering, crowding), `lines` (line crossing),
`abandoned` (objects left without their owner, from the detector and from the scene's background),
`fire` (flickering flame-coloured regions), `fall` (a person going down, from body pose).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import supervision as sv

from pipeline.config import (
    AbandonedObjectRule,
    CameraConfig,
    CrowdingRule,
    FallRule,
    FireRule,
    IntrusionRule,
    LineCrossingRule,
    LoiteringRule,
    RuleBase,
    Schedule,
)
from pipeline.geometry import polygon_array
from pipeline.rules.base import EPS, Alarm, HitKind, Rule, RuleHit, Scene, Sighting
from pipeline.rules.lines import LineRule
from pipeline.rules.zones import CrowdRule, DwellRule
from pipeline.types import Box, Track

__all__ = ["EPS", "Alarm", "HitKind", "RuleEngine", "RuleHit", "Scene", "Sighting"]


class Cooldown:
    """A rule's alarms, less those starting within `seconds` of the end of its last one (per track)."""

    def __init__(self, rule: Rule, seconds: float) -> None:
        self.rule = rule
        self.seconds = seconds
        self.ended: dict[tuple[int | None, int | None], float] = {}  # track or object -> end of its last alarm
        self.muted: set[tuple[int | None, int | None]] = set()

    def _filter(self, hits: list[RuleHit]) -> list[RuleHit]:
        out = []
        for hit in hits:
            key = hit.alarm.key[1:]
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

    def update(self, scene: Scene) -> list[RuleHit]:
        return self._filter(self.rule.update(scene))

    def close(self, t: float, frame: int) -> list[RuleHit]:
        return self._filter(self.rule.close(t, frame))


class Scheduled:
    """A rule that is on only inside its schedule; an alarm still open when the window closes ends then.

    Media times are wall-clock seconds only in the live service, so only there are schedules applied.
    """

    def __init__(self, rule: Rule, schedule: Schedule, zone: ZoneInfo) -> None:
        self.rule, self.schedule, self.zone = rule, schedule, zone

    def update(self, scene: Scene) -> list[RuleHit]:
        if self.schedule.active(datetime.fromtimestamp(scene.t, self.zone)):
            return self.rule.update(scene)
        return self.rule.close(scene.t, scene.frame)

    def close(self, t: float, frame: int) -> list[RuleHit]:
        return self.rule.close(t, frame)

    def attention(self) -> list[Box]:
        return getattr(self.rule, "attention", list)()


class RuleEngine:
    """All rules of one camera; call `update` once per processed frame and `close` at the end."""

    def __init__(self, camera: str, cfg: CameraConfig, timezone: str | None = None) -> None:
        """timezone: the site's, when frame times are wall-clock seconds (live): rule schedules apply."""
        self.camera = camera
        zone = None if timezone is None else ZoneInfo(timezone)
        self.rules: list[Rule] = []
        for rule in cfg.rules:
            built = self._build(rule, cfg)
            self.rules.append(Scheduled(built, rule.schedule, zone) if zone and rule.schedule else built)

    @staticmethod
    def _build(rule: RuleBase, cfg: CameraConfig) -> Rule:
        def zone(name: str | None) -> np.ndarray | None:
            return None if name is None else polygon_array(cfg.zones[name].polygon)

        built: Rule
        match rule:
            case IntrusionRule() | LoiteringRule():
                built = DwellRule(rule, zone(rule.zone))
            case LineCrossingRule():
                built = LineRule(rule, *cfg.lines[rule.line].points)
            case CrowdingRule():
                built = CrowdRule(rule, zone(rule.zone))
            case AbandonedObjectRule():
                from pipeline.rules.abandoned import AbandonedObjects

                built = AbandonedObjects(rule, zone(rule.zone), cfg.objects.track)
            case FireRule():
                from pipeline.rules.fire import FireWatch

                built = FireWatch(rule, zone(rule.zone))
            case FallRule():
                from pipeline.rules.fall import FallWatch

                built = FallWatch(rule, zone(rule.zone))
            case _:
                raise TypeError(f"unsupported rule type {type(rule).__name__}")
        return Cooldown(built, rule.cooldown_seconds) if rule.cooldown_seconds > 0 else built

    def update(
        self,
        t: float,
        frame: int,
        tracks: Sequence[Track],
        image: np.ndarray | None = None,
        detections: sv.Detections | None = None,
    ) -> list[RuleHit]:
        """Hits for one frame; a track missing from `tracks` is lost and its alarms end."""
        scene = Scene(t, frame, tracks, image, detections)
        return [hit for rule in self.rules for hit in rule.update(scene)]

    def close(self, t: float, frame: int) -> list[RuleHit]:
        """End every open alarm (end of the video, or shutdown)."""
        return [hit for rule in self.rules for hit in rule.close(t, frame)]

    def attention(self) -> list[Box]:
        """Places rules want the detector to look at although nothing moves there (a still, untracked bag)."""
        return [box for rule in self.rules for box in getattr(rule, "attention", list)()]
