"""One camera's stages after the source: motion gate -> detector -> tracker -> rules -> events.

The engine is shared by offline replay and the live service; it never looks at wall time,
only at each frame's media timestamp, so a replay is deterministic.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import supervision as sv

from pipeline.config import CameraConfig
from pipeline.detect import BatchDetector
from pipeline.events import EventBus, EventManager
from pipeline.motion import MotionGate
from pipeline.rules import RuleEngine
from pipeline.track import TrackStage
from pipeline.types import Box, Frame, Track


@dataclass
class StageClock:
    """Wall seconds spent per stage, for the summary and the benchmark."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    counts: Counter[str] = field(default_factory=Counter)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start


@dataclass
class FrameResult:
    frame: Frame
    detections: sv.Detections | None  # None when the motion gate skipped the detector
    tracks: list[Track]  # alive tracks
    eligible: list[Track]  # tracks that may trigger rules
    alarms: frozenset[tuple[str, int | None]]  # (rule, track id) of the events open after this frame


class Analysis:
    """Everything after detection for one camera: tracker, rules, events.

    Kept apart from the detector so threshold sweeps can replay it over cached detections.
    """

    def __init__(
        self, name: str, cfg: CameraConfig, bus: EventBus, fps: float, clock: StageClock, run: str | None = None
    ) -> None:
        self.clock = clock
        self.tracker = TrackStage(cfg, cfg.detect.fps or fps)
        self.rules = RuleEngine(name, cfg)
        self.events = EventManager(name, bus, run)

    def step(self, t: float, index: int, detections: sv.Detections | None) -> tuple[list[Track], list[Track]]:
        """Advance to frame `index` at media time `t`; returns (alive tracks, eligible tracks)."""
        with self.clock.stage("track"):
            tracks = self.tracker.update(detections, t, index) if detections is not None else self.tracker.carry(t)
            eligible = self.tracker.eligible(tracks)
        with self.clock.stage("rules"):
            self.events.apply(self.rules.update(t, index, eligible))
        return tracks, eligible

    def close(self, t: float, index: int) -> None:
        """End every open event (end of a replay, or shutdown)."""
        self.events.apply(self.rules.close(t, index))


class CameraPipeline:
    def __init__(
        self,
        name: str,
        cfg: CameraConfig,
        detector: BatchDetector,
        bus: EventBus,
        size: tuple[int, int],
        fps: float,
        clock: StageClock | None = None,
        run: str | None = None,
    ) -> None:
        """run: a tag that makes event ids unique across runs (see `events`)."""
        self.name = name
        self.cfg = cfg
        self.detector = detector
        self.clock = clock or StageClock()
        self.gate = MotionGate(cfg.motion, *size) if cfg.motion.enabled else None
        self.analysis = Analysis(name, cfg, bus, fps, self.clock, run)
        self.last_detect_t = float("-inf")

    def _regions(self, frame: Frame) -> list[Box] | None:
        """Where to detect: None for the full frame, [] to skip the detector on this frame."""
        if self.gate is None:
            return None
        with self.clock.stage("motion"):
            regions = self.gate.regions(frame.image)
        alive = list(self.analysis.tracker.alive.values())
        recheck = alive and frame.pts - self.last_detect_t >= self.cfg.motion.recheck_seconds
        if not regions and not recheck:
            return []
        self.last_detect_t = frame.pts
        # Objects that stopped moving are looked at whenever the detector runs anyway.
        regions += [t.box for t in alive]
        return regions if self.cfg.detect.pack_regions else None

    def process(self, frames: Sequence[Frame]) -> list[FrameResult]:
        """Consecutive frames: their detections in as few inferences as fit, then tracks and rules in order."""
        plans = [self._regions(frame) for frame in frames]
        todo = [i for i, regions in enumerate(plans) if regions is None or regions]
        found: dict[int, sv.Detections] = {}
        if todo:
            with self.clock.stage("detect"):
                batch = self.detector.detect_many([(frames[i].image, plans[i]) for i in todo])
            found = dict(zip(todo, batch))
            self.clock.counts["detected"] += len(todo)
        results = []
        for i, frame in enumerate(frames):
            tracks, eligible = self.analysis.step(frame.pts, frame.index, found.get(i))
            # Snapshots: the tracker keeps updating its Track objects while later frames of the batch run.
            snapshot = [replace(t) for t in tracks]
            alarms = frozenset(self.analysis.events.open)
            results.append(FrameResult(frame, found.get(i), snapshot, eligible, alarms))
        self.clock.counts["processed"] += len(frames)
        return results

    def close(self, t: float, frame_index: int) -> None:
        """End every open event (end of a replay, or shutdown)."""
        self.analysis.close(t, frame_index)
