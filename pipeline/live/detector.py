"""One loaded model for every camera of the live service, run in rounds over what the cameras ask at once.

A camera takes its freshest frames, gates them for motion and plans their regions on its own
thread, then asks the shared detector. Whoever asks while no round runs starts one, serving every
request waiting by then (its own among them); requests that arrive during a round wait for the
next, so no camera waits more than the round under way and its own, and none starves. In a round
of several cameras, their packed canvases share inferences where a merged canvas has fewer pixels
(`detect_together`, `model.share_canvases`): the busier the detector, the more requests a round
holds; an idle one adds no wait. Evidence, tracking and rules run after a
camera's detections came back, beside the next round: kept within the detector's turn, the
evidence of a busy camera held every other camera back (measured with four cameras: 0.2 fps
analysed each, 130 % CPU of 200 %).

Each camera keeps its own classes and thresholds over the shared network (`Detector.with_options`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import supervision as sv

from pipeline.config import CameraConfig, ModelConfig
from pipeline.detect import BatchDetector, DetectOptions, Detector, camera_options, combine, load_model, pose_options
from pipeline.detect.base import Items, YoloDetector, detect_together


@dataclass(eq=False)
class _Request:
    """One camera's frames, waiting for a round; `found` (or `error`) once it was served."""

    view: BatchDetector
    items: Items
    shareable: bool  # a view of the shared network that can merge canvases with other cameras'
    found: list[sv.Detections] | None = None
    error: BaseException | None = None
    done: bool = False


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
        self._queue: list[_Request] = []
        self._serving = False
        self.rounds = 0
        self.shared_inferences = 0  # inferences that served more than one camera

    @property
    def waiting(self) -> int:
        """Requests waiting for the next round (the queue depth)."""
        return len(self._queue)

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

    def beside_cameras(self, options: DetectOptions) -> CameraDetector:
        """The shared model with `options` for work beside the cameras (an export), served in the cameras' rounds."""
        return CameraDetector(self, self.base.with_options(options))

    def run(self, view: BatchDetector, items: Items) -> list[sv.Detections]:
        """`view.detect_many(items)`, in the next round of the shared detector."""
        base = self._base
        shareable = (
            self.model_cfg.share_canvases and base is not None and isinstance(view, YoloDetector)
            and view.fit_canvas and view.network is base.network
        )
        request = _Request(view, items, shareable)
        with self._cond:
            self._queue.append(request)
            while self._serving and not request.done:
                self._cond.wait()
            lead = not request.done  # no round under way: this thread serves the next, its own request in it
            if lead:
                batch, self._queue, self._serving = self._queue, [], True
        if lead:
            try:
                self._serve(batch)
            finally:
                with self._cond:
                    for r in batch:  # never leave a camera waiting on a round that ended
                        if not r.done:
                            r.error, r.done = RuntimeError("the detector's round ended before serving it"), True
                    self._serving = False
                    self._cond.notify_all()
        if request.error is not None:
            raise request.error
        assert request.found is not None
        return request.found

    def _serve(self, batch: list[_Request]) -> None:
        """One round: the shareable requests together, any other (a pose camera's) on its own."""
        start = time.perf_counter()
        together = [r for r in batch if r.shareable]
        groups = [together] if len(together) > 1 else [[r] for r in together]
        groups += [[r] for r in batch if not r.shareable]
        inferences = 0
        for group in groups:
            try:
                if len(group) > 1:
                    outcome = detect_together([(cast(YoloDetector, r.view), r.items) for r in group])
                    found, count = outcome.found, outcome.inferences
                    self.shared_inferences += outcome.shared
                else:
                    before = group[0].view.inferences
                    found = [group[0].view.detect_many(group[0].items)]
                    count = group[0].view.inferences - before
                inferences += count
                for r, mine in zip(group, found):
                    r.found = mine
            except BaseException as exc:  # raised in each waiting camera's thread
                for r in group:
                    r.error = exc
            finally:
                for r in group:
                    r.done = True
        self.rounds += 1
        seconds = time.perf_counter() - start
        if self.observe is not None:
            for _ in range(inferences):
                self.observe(seconds / inferences)


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
