"""One loaded model for every camera of the live service.

A single inference thread takes the cameras' requests in arrival order (FIFO, so no camera starves):
on a CPU one inference already uses every core, so two at once would only slow both down. Each
camera keeps its own classes and thresholds over the shared network (`Detector.with_options`), and
each request is one camera's batch of frames, which the detector packs into as few inferences as fit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import supervision as sv

from pipeline.config import CameraConfig, ModelConfig
from pipeline.detect import DetectOptions, Detector, camera_options, load_model
from pipeline.tracks import Box

Items = Sequence[tuple[np.ndarray, Sequence[Box] | None]]


class SharedDetector:
    def __init__(self, model_cfg: ModelConfig, observe: Callable[[float], None] | None = None) -> None:
        """observe: called with the seconds of every inference (for the latency histogram)."""
        self.model_cfg = model_cfg
        self.base = load_model(model_cfg, DetectOptions())
        self.observe = observe
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="detector")
        self._lock = threading.Lock()
        self.queued = 0  # requests waiting or running
        self.inferences = 0
        self.busy_seconds = 0.0

    def for_camera(self, cam: CameraConfig) -> CameraDetector:
        return CameraDetector(self, self.base.with_options(camera_options(self.model_cfg, cam)))

    def run(self, view: Detector, items: Items) -> list[sv.Detections]:
        """Queue one camera's batch and wait for its detections."""
        with self._lock:
            self.queued += 1
        try:
            return self._executor.submit(self._infer, view, items).result()
        finally:
            with self._lock:
                self.queued -= 1

    def _infer(self, view: Detector, items: Items) -> list[sv.Detections]:
        before, start = view.inferences, time.perf_counter()
        found = view.detect_many(items)
        seconds, count = time.perf_counter() - start, view.inferences - before
        self.inferences += count
        self.busy_seconds += seconds
        if self.observe is not None:
            for _ in range(count):
                self.observe(seconds / count)
        return found

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


class CameraDetector:
    """What one camera's pipeline calls (a `BatchDetector`): its own options, the shared model and queue."""

    def __init__(self, shared: SharedDetector, view: Detector) -> None:
        self.shared = shared
        self.view = view

    @property
    def inferences(self) -> int:
        return self.view.inferences

    def detect_many(self, items: Items) -> list[sv.Detections]:
        return self.shared.run(self.view, items)
