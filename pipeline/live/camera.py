"""One camera of the live service: a thread that keeps its source connected and its pipeline fed.

Each connection is a segment with its own pipeline, evidence recorder and run tag: frames are put
on the wall clock (epoch seconds) when they arrive, so event times are real times. When a segment
ends (the stream is lost, or shutdown) its open events are ended and their clips finished; a lost
source is reopened with exponential back-off. A camera never waits on another: each has its own
thread and source, and only the shared detector's FIFO queue is common.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from pipeline.config import CameraConfig, ServiceConfig
from pipeline.draw import annotate
from pipeline.engine import CameraRun, FrameResult
from pipeline.errors import CctvError
from pipeline.events import EventChange, Subscriber
from pipeline.evidence import BackgroundEvidence, EvidencePaths, EvidenceRecorder
from pipeline.live.detector import SharedDetector
from pipeline.live.selection import Selection
from pipeline.live.sim import SimulatedSource, is_simulated
from pipeline.sources import VideoSource, open_source
from pipeline.types import Frame

log = logging.getLogger(__name__)

Status = Literal["starting", "live", "stalled", "reconnecting", "failed", "ended", "stopped"]
FAILED_AFTER = 3  # consecutive failed connection attempts before a camera shows as failed
FIRST_RETRY_S = 1.0
RATE_WINDOW_S = 10.0  # fps figures are averaged over this many seconds
LAG_SAMPLES = 500
VIEW_QUALITY = 80  # JPEG quality of live views


@dataclass
class CameraState:
    """What the API shows of a camera; written by its worker thread, read by the API."""

    name: str
    source: str
    status: Status = "starting"
    error: str | None = None
    connects: int = 0  # successful connections (1 = never reconnected)
    failures: int = 0  # consecutive failed attempts
    frames_in: int = 0  # frames the source sampled at detect.fps (taken or dropped)
    frames_analysed: int = 0  # frames that went through the pipeline
    frames_dropped: int = 0  # sampled frames dropped because the pipeline was behind
    inferences: int = 0
    evidence_dropped: int = 0  # sampled frames left out of the evidence (its encoder was behind)
    stalls: int = 0  # times it stopped delivering frames while connected (then it is reconnected)
    time_jumps: int = 0  # timestamp discontinuities its sources had, re-anchored
    last_frame_at: float | None = None  # wall time of the newest frame
    open_events: int = 0
    events_started: int = 0
    lags: deque[float] = field(default_factory=lambda: deque(maxlen=LAG_SAMPLES))  # frame time -> analysed
    _history: deque[tuple[float, int, int]] = field(default_factory=deque)  # (wall, frames_in, frames_analysed)

    def account(self, analysed: list[float], dropped: int, now: float) -> None:
        """Frames analysed (their times) and sampled frames dropped since the last call, at wall time `now`."""
        self.frames_dropped += dropped
        self.frames_in += len(analysed) + dropped
        self.frames_analysed += len(analysed)
        self.last_frame_at = analysed[-1]
        self.lags.extend(now - t for t in analysed)
        self.sample(now)

    def sample(self, now: float) -> None:
        self._history.append((now, self.frames_in, self.frames_analysed))
        while len(self._history) > 2 and self._history[1][0] < now - RATE_WINDOW_S:
            self._history.popleft()

    def rates(self, now: float) -> tuple[float, float]:
        """(fps in, fps analysed) over the last RATE_WINDOW_S seconds (0 once frames stop coming)."""
        if len(self._history) < 2 or now - self._history[-1][0] > RATE_WINDOW_S:
            return 0.0, 0.0
        (t0, in0, done0), (t1, in1, done1) = self._history[0], self._history[-1]
        span = t1 - t0
        return ((in1 - in0) / span, (done1 - done0) / span) if span > 0 else (0.0, 0.0)

    def lag(self, q: float) -> float | None:
        return float(np.quantile(np.fromiter(self.lags, float), q)) if self.lags else None


def source_label(source: object) -> str:
    """What the API shows of a source: a file's name, or a stream's scheme only (URLs may hold passwords)."""
    label = str(source)
    return label if "://" not in label else label.split("://")[0] + "://…"


def run_tag(now: float) -> str:
    """A short tag unique per camera connection: epoch milliseconds in base 36."""
    n, digits = int(now * 1000), ""
    while n:
        n, r = divmod(n, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[r] + digits
    return digits


class CameraWorker:
    def __init__(
        self,
        name: str,
        cam: CameraConfig,
        service: ServiceConfig,
        detector: SharedDetector,
        sinks: list[Subscriber],
        evidence_dir: Path,
        on_evidence: Callable[[EvidencePaths], None],
    ) -> None:
        """sinks: every subscriber of this camera's event changes (store first)."""
        self.name, self.cam, self.source, self.service = name, cam, cam.source, service
        self.simulated = is_simulated(cam.source)
        self.detector = None if self.simulated else detector.for_camera(cam)  # a simulated camera has detections
        self.sinks = sinks
        self.evidence_dir = evidence_dir
        self.on_evidence = on_evidence
        self.state = CameraState(name, source_label(cam.source))
        self.latest: bytes | None = None  # JPEG of the newest frame
        self.selection = Selection(cam.selection, service.timezone, time.time())
        self._overlay: FrameResult | None = None  # the newest analysed frame's tracks and alarms, for live views
        self._view: tuple[int, int, bytes] | None = None  # (frame index, width, JPEG) of the last live view made
        self._view_lock = threading.Lock()
        self._stop = threading.Event()
        self._src: VideoSource | None = None
        self._thread = threading.Thread(target=self._run, name=f"camera {name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the worker to end its segment gracefully (returns at once; join() waits)."""
        self._stop.set()
        src = self._src
        if src is not None:
            src.close()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        if self.simulated:
            self._simulate()
            return
        while not self._stop.is_set():
            try:
                src = open_source(
                    self.source, fps=self.cam.detect.fps, live=True, loop=self.cam.loop,
                    backlog=self.cam.detect.pack_frames, privacy=self.cam.privacy_mask,
                )
            except CctvError as exc:
                self._failed(str(exc))
                continue
            self._src = src
            if self._stop.is_set():  # stop() came while connecting
                src.close()
                break
            self.state.connects += 1
            if self.state.connects == 1:
                self.cam.warn_outside(self.name, src.width, src.height)
            self.state.failures, self.state.error, self.state.status = 0, None, "live"
            try:
                self._segment(src)
            except Exception as exc:  # a camera's failure must not end the service
                log.exception("%s: camera pipeline failed", self.name)
                self.state.error = f"{type(exc).__name__}: {exc}"
            finally:
                src.close()
                self._src = None
            if self._stop.is_set():
                break
            if src.is_file and not src.loop:  # a file that ended is not coming back
                self.state.status = "ended"
                return
            if self.state.status != "stalled":  # a stalled camera says so until it delivers again
                self.state.status = "reconnecting"
            self.state.error = self.state.error or "stream ended"
            self._stop.wait(FIRST_RETRY_S)
        self.state.status = "stopped"

    def _failed(self, error: str) -> None:
        """A failed connection attempt: wait 1, 2, 4 ... seconds (capped) before the next."""
        state = self.state
        state.failures += 1
        state.error = error
        state.status = "failed" if state.failures >= FAILED_AFTER else "reconnecting"
        delay = min(self.service.reconnect_max_seconds, FIRST_RETRY_S * 2 ** (state.failures - 1))
        log.warning("%s: %s (retry in %.0f s)", self.name, error, delay)
        self._stop.wait(delay)

    def _simulate(self) -> None:
        """A `sim://` camera: its cached detections through tracking, rules and events at real time, no frames."""
        try:
            sim = SimulatedSource(str(self.source), self.cam.detect.fps)
        except CctvError as exc:
            self.state.status, self.state.error = "failed", str(exc)
            return
        state = self.state
        state.connects, state.status = 1, "live"
        offset = zlib.crc32(self.name.encode()) % 1000 / 1000 * sim.duration  # cameras of one clip out of step
        run = CameraRun(self.name, self.cam, fps=sim.fps, subscribers=[*self.sinks, self._count], run=run_tag(time.time()),
                        timezone=self.service.timezone)
        with run:
            for frame in sim.play(self._stop, offset):
                run.step(frame.pts, frame.index, frame.detections)
                now = time.time()
                state.account([frame.pts], sim.dropped - state.frames_dropped, now)
                self.selection.observe(now, state.open_events, set())
        state.status = "stopped"

    def _segment(self, src: VideoSource) -> None:
        """Run one connection until the source ends or stop(); end its events and finish its clips."""
        assert self.detector is not None  # a real camera's
        evidence = self.service.evidence
        recorder = BackgroundEvidence(
            EvidenceRecorder(
                self.evidence_dir, evidence.pre_roll, evidence.post_roll, on_done=self.on_evidence,
                on_started=self.on_evidence, camera=self.cam,
            ),
            name=f"evidence {self.name}",
        )
        start = time.time()
        run = CameraRun(
            self.name, self.cam, fps=src.fps, subscribers=[*self.sinks, self._count], detector=self.detector,
            size=(src.width, src.height), evidence=recorder, run=run_tag(start), timezone=self.service.timezone,
        )
        offset: float | None = None  # wall time minus media time, fixed at the first frame taken (VideoSource)
        evidence_dropped0, jumps0 = self.state.evidence_dropped, self.state.time_jumps
        dropped0 = src.stats.dropped
        stall = self.service.stall_seconds
        with run:
            while not self._stop.is_set():
                if not src.wait(stall):  # connected, yet no frame: never show such a camera as live
                    self.state.status = "stalled"
                    self.state.error = f"stalled: no frame for {stall:g} s while connected; reconnecting"
                    self.state.stalls += 1
                    log.warning("%s: %s", self.name, self.state.error)
                    break
                batch = src.take(self.cam.detect.pack_frames)
                if not batch:
                    break
                skipped = src.take_skipped()
                offset = src.wall_offset if offset is None else offset  # fixed: times rise with media time
                assert offset is not None  # set before the first frame was handed out
                frames = [replace(f, pts=f.pts + offset) for f in batch]
                detected = run.detect(frames)  # in the shared detector's next round
                # Evidence, tracking and rules after it, beside the next round's inferences.
                results = run.process(frames, [replace(f, pts=f.pts + offset) for f in skipped], detected)
                now = time.time()
                self._overlay = results[-1]
                self.selection.observe(now, self.state.open_events, {t.label for t in results[-1].eligible})
                self._account(src, frames, now, dropped0)
                dropped0 = src.stats.dropped
                self.latest = recorder.latest or self.latest
                self.state.evidence_dropped = evidence_dropped0 + recorder.dropped
                self.state.time_jumps = jumps0 + src.stats.discontinuities

    def status(self, now: float) -> dict[str, Any]:
        """The camera as the API shows it (JSON values: a cluster node records it in the camera's lease)."""
        state, selection = self.state, self.selection.state(now)
        fps_in, fps_analysed = state.rates(now)
        return {
            "id": self.name, "source": state.source, "status": state.status, "connected": state.status == "live",
            "error": state.error, "connects": state.connects, "stalls": state.stalls, "time_jumps": state.time_jumps,
            "fps_in": round(fps_in, 2), "fps_analysed": round(fps_analysed, 2), "frames_in": state.frames_in,
            "frames_analysed": state.frames_analysed, "frames_dropped": state.frames_dropped,
            "inferences": state.inferences, "evidence_dropped": state.evidence_dropped,
            "last_frame_at": state.last_frame_at, "lag_p50": state.lag(0.5), "lag_p95": state.lag(0.95),
            "open_events": state.open_events, "events_started": state.events_started,
            "has_frame": self.latest is not None, "selected": selection.selected,
            "selection_reason": selection.reason, "selected_since": selection.since,
            "selection_share": round(selection.share, 4),
        }

    def view(self, width: int) -> tuple[int, bytes] | None:
        """The newest sampled frame as a JPEG `width` pixels wide, with the camera's zones and lines and the newest
        analysed tracks and alarms drawn (carried over the frames that were not analysed): (frame index, JPEG).

        Made once per frame and width however many operators watch; None before the first frame.
        """
        src, overlay = self._src, self._overlay
        decoded = None if src is None else src.newest
        if decoded is None:
            return None
        with self._view_lock:
            if self._view is not None and self._view[:2] == (decoded.index, width):
                return decoded.index, self._view[2]
            image = decoded.frame().image
            if overlay is not None:
                image = annotate(image, self.cam, overlay.tracks, overlay.eligible, overlay.alarms)
            height = round(image.shape[0] * width / image.shape[1])
            small = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
            ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, VIEW_QUALITY])
            if not ok:
                return None
            self._view = (decoded.index, width, jpeg.tobytes())
            return decoded.index, self._view[2]

    def _account(self, src: VideoSource, frames: list[Frame], now: float, dropped_before: int) -> None:
        self.state.inferences = self.detector.inferences if self.detector is not None else 0
        self.state.account([f.pts for f in frames], src.stats.dropped - dropped_before, now)

    def _count(self, change: EventChange) -> None:
        if change.kind == "start":
            self.state.open_events += 1
            self.state.events_started += 1
        elif change.kind == "end":
            self.state.open_events -= 1
