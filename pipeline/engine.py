"""One camera's stages after the source: motion gate -> detector -> tracker -> rules -> events.

The engine is shared by offline replay, the live service, threshold sweeps and ground truth from
MOT tracks: every one of them runs a camera through a `CameraRun`, which owns the run sequence.
It never looks at wall time, only at each frame's media timestamp, so a replay is deterministic.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from types import TracebackType

import numpy as np
import supervision as sv

from pipeline.config import CameraConfig
from pipeline.detect import BatchDetector
from pipeline.events import EventBus, EventManager, Subscriber
from pipeline.evidence import Recorder
from pipeline.focus import DetectionFocus
from pipeline.motion import MotionGate
from pipeline.rules import RuleEngine
from pipeline.track import TrackStage
from pipeline.types import Box, Frame, Track

Detected = dict[int, sv.Detections]  # a batch's detections by frame position (absent: the detector skipped it)
Motion = list[list[Box]] | None  # a batch's motion regions per frame (None: the camera has no motion gate)


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
    alarms: frozenset[tuple[str, int | None, int | None]]  # keys (rule, track, object) of the events open after it


class RuleStep:
    """Rules and events of one camera: tracks in, identified event changes out on the bus."""

    def __init__(
        self, name: str, cfg: CameraConfig, bus: EventBus, clock: StageClock, run: str | None, timezone: str | None
    ) -> None:
        self.clock = clock
        self.rules = RuleEngine(name, cfg, timezone)
        self.events = EventManager(name, bus, run)

    def step(
        self,
        t: float,
        index: int,
        tracks: Sequence[Track],
        image: np.ndarray | None = None,
        detections: sv.Detections | None = None,
    ) -> None:
        with self.clock.stage("rules"):
            self.events.apply(self.rules.update(t, index, tracks, image, detections))

    def close(self, t: float, index: int) -> None:
        """End every open event (end of a replay, or shutdown)."""
        self.events.apply(self.rules.close(t, index))


class Analysis:
    """Everything after detection for one camera: tracker, then rules and events.

    Kept apart from the detector so threshold sweeps can replay it over cached detections.
    """

    def __init__(self, cfg: CameraConfig, fps: float, rules: RuleStep, clock: StageClock) -> None:
        self.clock = clock
        self.tracker = TrackStage(cfg, cfg.detect.fps or fps)
        self.rules = rules

    def step(
        self, t: float, index: int, detections: sv.Detections | None, image: np.ndarray | None = None
    ) -> tuple[list[Track], list[Track]]:
        """Advance to frame `index` at media time `t`; returns (alive tracks, eligible tracks).

        `image` (the frame) lets the tracker crop people for re-identification when it is configured.
        """
        with self.clock.stage("track"):
            if detections is None:
                tracks = self.tracker.carry(t)
            else:
                tracks = self.tracker.update(detections, t, index, image)
            eligible = self.tracker.eligible(tracks)
        self.rules.step(t, index, eligible, image, detections)
        return tracks, eligible


class CameraPipeline:
    """Motion gate and detector in front of the analysis: frames in, per-frame results out."""

    def __init__(
        self, cfg: CameraConfig, detector: BatchDetector, size: tuple[int, int], analysis: Analysis, clock: StageClock
    ) -> None:
        self.cfg = cfg
        self.detector = detector
        self.clock = clock
        self.gate = MotionGate(cfg.motion, *size) if cfg.motion.enabled else None
        self.focus = DetectionFocus(cfg) if cfg.detect.carry_seconds > 0 and cfg.detect.pack_regions else None
        self.analysis = analysis
        self.last_detect_t = float("-inf")

    def motion(self, frames: Sequence[Frame]) -> Motion:
        """The motion gate's regions of consecutive frames (None without a gate).

        They depend on the frames alone, not on the tracks, so a replay computes them for the next
        batch on another thread while this one is detected (`CameraRun.read_ahead`)."""
        if self.gate is None:
            return None
        with self.clock.stage("motion"):
            return [self.gate.regions(frame.detect_image) for frame in frames]

    def _regions(self, frame: Frame, moving: list[Box] | None) -> list[Box] | None:
        """Where to detect: None for the full frame, [] to skip the detector on this frame."""
        if moving is None:
            return None
        alive = list(self.analysis.tracker.alive.values())
        regions = moving + self.analysis.rules.rules.attention()
        if self.focus is not None:
            return self.focus.plan(frame.pts, regions, alive)
        recheck = alive and frame.pts - self.last_detect_t >= self.cfg.motion.recheck_seconds
        if not regions and not recheck:
            return []
        self.last_detect_t = frame.pts
        # Objects that stopped moving are looked at whenever the detector runs anyway.
        regions += [t.box for t in alive]
        return regions if self.cfg.detect.pack_regions else None

    def detect(self, frames: Sequence[Frame], motion: Motion = None) -> Detected:
        """Consecutive frames' detections, in as few inferences as fit (frame position -> detections).

        `motion`: what `motion(frames)` found, when it ran already."""
        moving = motion if motion is not None else self.motion(frames)
        plans = [self._regions(frame, None if moving is None else moving[i]) for i, frame in enumerate(frames)]
        todo = [i for i, regions in enumerate(plans) if regions is None or regions]
        if not todo:
            return {}
        with self.clock.stage("detect"):
            batch = self.detector.detect_many([(frames[i].detect_image, plans[i]) for i in todo])
        self.clock.counts["detected"] += len(todo)
        return dict(zip(todo, batch))

    def process(
        self, frames: Sequence[Frame], open_alarms: EventManager, found: Detected | None = None, motion: Motion = None
    ) -> list[FrameResult]:
        """Consecutive frames: their detections (`found`, or detected now), then tracks and rules in order."""
        if found is None:
            found = self.detect(frames, motion)
        results = []
        for i, frame in enumerate(frames):
            tracks, eligible = self.analysis.step(frame.pts, frame.index, found.get(i), frame.detect_image)
            # Snapshots: the tracker keeps updating its Track objects while later frames of the batch run.
            snapshot = [replace(t) for t in tracks]
            results.append(FrameResult(frame, found.get(i), snapshot, eligible, frozenset(open_alarms.open)))
        self.clock.counts["processed"] += len(frames)
        return results


class CameraRun:
    """One camera from its first frame to its close: the event bus, the stages, and the order they run in.

    Every run goes through here, at the depth it starts from: frames (`process`: replay, live),
    cached detections (`step`: sweeps) or tracks (`apply`: ground truth from MOT tracks, rule tests).
    Subscribers hear every event change in order. An evidence recorder is handed each frame *before*
    the stages see it, so the frame an event starts on is already buffered when the change arrives.
    `close()` ends every open event at the last frame, then lets the recorder finish its clips;
    leaving a `with` block on an error ends the events too but drops the unfinished clips.
    """

    def __init__(
        self,
        name: str,
        cfg: CameraConfig,
        *,
        fps: float,
        subscribers: Iterable[Subscriber] = (),
        detector: BatchDetector | None = None,
        size: tuple[int, int] | None = None,
        evidence: Recorder | None = None,
        run: str | None = None,
        clock: StageClock | None = None,
        timezone: str | None = None,
    ) -> None:
        """fps: the source's frame rate; size: frame width, height (with a detector); run: a tag that
        makes event ids unique across runs (see `events`); timezone: the site's, when frame times are
        wall-clock seconds, so that rule schedules apply."""
        self.name = name
        self.clock = clock or StageClock()
        self.bus = EventBus()
        for subscriber in subscribers:
            self.bus.subscribe(subscriber)
        self.evidence = evidence
        if evidence is not None:
            self.bus.subscribe(evidence.on_change)
        self.rules = RuleStep(name, cfg, self.bus, self.clock, run, timezone)
        self.analysis = Analysis(cfg, fps, self.rules, self.clock)
        self.pipeline = None
        if detector is not None:
            if size is None:
                raise ValueError("a CameraRun with a detector needs the frame size")
            self.pipeline = CameraPipeline(cfg, detector, size, self.analysis, self.clock)
        self.last: tuple[float, int] | None = None  # (media time, frame index) of the newest frame
        self.closed = False

    def detect(self, frames: Sequence[Frame]) -> Detected:
        """The detector's part of `process` alone: a live camera runs it in a round of the shared
        detector, and the rest (evidence, tracking, rules) after it, beside other cameras' inferences."""
        if self.pipeline is None:
            raise RuntimeError("CameraRun.detect needs a detector")
        return self.pipeline.detect(frames)

    def read_ahead(self, batches: Iterable[list[Frame]]) -> Iterator[tuple[list[Frame], Motion]]:
        """Each batch with its motion regions, the next batch decoded and gated on a worker thread
        while the caller detects and tracks this one (OpenVINO, OpenCV and the decoder release the
        GIL), so a replay's wall time is about that of detection alone."""
        if self.pipeline is None:
            raise RuntimeError("CameraRun.read_ahead needs a detector")
        batches, pipeline = iter(batches), self.pipeline

        def prepare() -> tuple[list[Frame], Motion] | None:
            batch = next(batches, None)
            return None if batch is None else (batch, pipeline.motion(batch))

        with ThreadPoolExecutor(1, thread_name_prefix=f"read-ahead {self.name}") as worker:
            pending = worker.submit(prepare)
            while (ready := pending.result()) is not None:
                pending = worker.submit(prepare)
                yield ready

    def process(
        self,
        frames: Sequence[Frame],
        unanalysed: Sequence[Frame] = (),
        detected: Detected | None = None,
        motion: Motion = None,
    ) -> list[FrameResult]:
        """Consecutive frames through every stage (they may share inferences).

        `unanalysed`: frames sampled before them that the camera had no time to analyse (a loaded live
        camera drops them); they go into the evidence only, so clips hold every sampled frame.
        `detected`: what `detect(frames)` found, when it ran already; `motion`: the frames' motion
        regions, when `read_ahead` found them already.
        """
        if self.pipeline is None:
            raise RuntimeError("CameraRun.process needs a detector")
        if not frames:
            return []
        if self.evidence is not None:
            with self.clock.stage("evidence"):
                for frame in [*unanalysed, *frames]:
                    self.evidence.push(frame)
        self.last = (frames[-1].pts, frames[-1].index)
        results = self.pipeline.process(frames, self.rules.events, detected, motion)
        if self.evidence is not None:
            self.evidence.observe(results[-1].tracks)
        return results

    def step(self, t: float, index: int, detections: sv.Detections | None) -> tuple[list[Track], list[Track]]:
        """One frame's detections (None: not detected) through tracking, rules and events."""
        self.last = (t, index)
        return self.analysis.step(t, index, detections)

    def apply(self, t: float, index: int, tracks: Sequence[Track]) -> None:
        """One frame's tracks, already tracked and filtered, through rules and events."""
        self.last = (t, index)
        self.rules.step(t, index, tracks)

    def close(self) -> None:
        """End every open event at the last frame, then finish the evidence of every event."""
        if self.closed:
            return
        self.closed = True
        if self.last is not None:
            self.rules.close(*self.last)
        if self.evidence is not None:
            with self.clock.stage("evidence"):
                self.evidence.close()

    def abort(self) -> None:
        """After an error: end the open events (they did happen) but drop every unfinished clip."""
        if self.closed:
            return
        self.closed = True
        try:
            if self.last is not None:
                self.rules.close(*self.last)
        finally:
            if self.evidence is not None:
                self.evidence.abort()

    def __enter__(self) -> CameraRun:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()
