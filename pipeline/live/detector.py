"""One loaded model for every camera of the live service, used by one camera at a time, in turn.

A camera waits for its turn (first come, first served, so none starves) and only then takes its
waiting frames, so it always analyses its freshest frames rather than ones that queued behind other
cameras. The motion gate and the detection of a batch run within the turn; its evidence (every
sampled frame H.264-encoded into each open clip, mostly one core's work), tracking and rules run
after it, beside the next camera's inference. Kept within the turn, the evidence of a busy camera
held every other camera's detector back: measured with four cameras, 0.2 fps analysed each and
130 % CPU of 200 %.

Each camera keeps its own classes and thresholds over the shared network (`Detector.with_options`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import supervision as sv

from pipeline.config import CameraConfig, ModelConfig
from pipeline.detect import BatchDetector, DetectOptions, Detector, camera_options, combine, load_model, pose_options
from pipeline.types import Box

Items = Sequence[tuple[np.ndarray, Sequence[Box] | None]]


class SharedDetector:
    def __init__(
        self, model_cfg: ModelConfig, observe: Callable[[float], None] | None = None, lazy: bool = False
    ) -> None:
        """observe: called with the seconds of every inference (for the latency histogram); lazy: load the model
        only once a camera needs it (a site of simulated cameras never does), not at once (a bad model fails
        the start)."""
        self.model_cfg = model_cfg
        self._base = None if lazy else load_model(model_cfg, DetectOptions())
        self._load = threading.Lock()
        self.pose: Detector | None = None
        self.observe = observe
        self._cond = threading.Condition()
        self._next_ticket = 0
        self._serving = 0
        self.waiting = 0  # cameras waiting for their turn

    @property
    def base(self) -> Detector:
        with self._load:
            if self._base is None:
                self._base = load_model(self.model_cfg, DetectOptions())
            return self._base

    def for_camera(self, cam: CameraConfig) -> CameraDetector:
        """The camera's classes and thresholds over the shared networks (the pose model loaded once, when needed)."""
        main, pose = camera_options(self.model_cfg, cam), pose_options(self.model_cfg, cam)
        if pose is not None and self.pose is None:
            self.pose = load_model(self.model_cfg, DetectOptions(), task="pose")
        return CameraDetector(
            self,
            combine(
                None if main is None else self.base.with_options(main),
                None if pose is None or self.pose is None else self.pose.with_options(pose),
            ),
        )

    def in_turns(self, options: DetectOptions) -> CameraDetector:
        """The shared model with `options` for work beside the cameras (an export): each call waits its turn."""
        return TurnTakingDetector(self, self.base.with_options(options))

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the detector (and the CPU) for one batch; turns are granted in the order asked."""
        with self._cond:
            ticket = self._next_ticket
            self._next_ticket += 1
            self.waiting += 1
            while ticket != self._serving:
                self._cond.wait()
            self.waiting -= 1
        try:
            yield
        finally:
            with self._cond:
                self._serving += 1
                self._cond.notify_all()

    def run(self, view: BatchDetector, items: Items) -> list[sv.Detections]:
        """One camera's detections, within its turn."""
        before, start = view.inferences, time.perf_counter()
        found = view.detect_many(items)
        seconds, count = time.perf_counter() - start, view.inferences - before
        if self.observe is not None:
            for _ in range(count):
                self.observe(seconds / count)
        return found


class CameraDetector:
    """What one camera's pipeline calls (a `BatchDetector`): its own options over the shared model."""

    def __init__(self, shared: SharedDetector, view: BatchDetector) -> None:
        self.shared = shared
        self.view = view

    @property
    def inferences(self) -> int:
        return self.view.inferences

    def detect_many(self, items: Items) -> list[sv.Detections]:
        return self.shared.run(self.view, items)


class TurnTakingDetector(CameraDetector):
    """A `CameraDetector` for callers that are not cameras, so hold no turn of their own."""

    def detect_many(self, items: Items) -> list[sv.Detections]:
        with self.shared.turn():
            return super().detect_many(items)
