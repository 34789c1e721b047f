"""Evidence for every event: a clip from pre-roll to post-roll, a snapshot of its best frame, a thumbnail.

The clip an operator plays has the event drawn on every frame (its box, following its track between
analysed frames; the rule's zone or line; the rule's label); the same frames without drawing are kept
beside it (`raw`, for export), with the boxes of every tracked object on each of its frames (`tracks`,
so an export can blur everyone but the event's subject). A thumbnail and snapshot are written as soon as the event starts, so
an open event is never shown black, and rewritten with the best frame when it ends.

Order contract: push() each frame *before* the pipeline processes it, so the frame a change happened
on is already here when the bus delivers the change. A start is matched to its `start_frame` in the
buffer; an update (events carry no frame for it) is taken to happen on the newest pushed frame, which
is exact when frames are processed one at a time; with packed batches (`detect.pack_frames` > 1) an
update's snapshot may come from up to pack_frames - 1 frames after the update.

Wiring: hand the recorder to `engine.CameraRun`, which subscribes it, pushes every frame before
processing it, and closes it (or aborts it after an error) once the run's events have ended.

Clips are H.264 MP4 with the index at the front; their time 0 is the first pre-roll frame. Every
file is written under a temporary name and renamed when complete: evidence is whole or absent.

The pre-roll ring buffer keeps frames as JPEG (quality 90): measured, a buffered second of 768x576
at 10 fps is 13.3 MB raw and 1.1 MB as JPEG; 1080p at 30 fps is 187 MB raw and 8 MB as JPEG
(encoding costs 2.7 ms and 10.7 ms per frame on the 2-core machine).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from pipeline.config import CameraConfig
from pipeline.draw import draw_box, draw_event
from pipeline.errors import CctvError
from pipeline.events import Event, EventChange
from pipeline.types import Box, Frame, Track
from pipeline.video import H264Writer

log = logging.getLogger(__name__)

BUFFER_QUALITY = 90
SNAPSHOT_QUALITY = 90
THUMB_WIDTH = 320
# Measured: an open 1080p clip holds 160 MB in x264's lookahead and frame threads, 53 MB with
# zerolatency, and a live service may have a clip open per event. Every sampled frame of every
# open clip is encoded twice (drawn and raw) on the camera's thread: on 1080p, one thread and the
# ultrafast preset take 17 ms of CPU a frame against 43 ms with veryfast and x264's own threads
# (files about twice as large, at 5 fps still small).
CLIP_TUNE = "zerolatency"
CLIP_PRESET = "ultrafast"
CLIP_THREADS = 1
NOMINAL_FPS = 25.0  # the clip's nominal rate when the buffer holds a single frame; timestamps stay exact


@dataclass(frozen=True, slots=True)
class EvidencePaths:
    """Where one event's evidence lies once it is complete (what a store records)."""

    event_id: str
    clip: Path  # annotated
    raw: Path  # the same frames, nothing drawn
    snapshot: Path
    thumbnail: Path
    tracks: Path  # JSON: every clip frame's time and tracked boxes

    @classmethod
    def of(cls, out_dir: Path, event_id: str) -> EvidencePaths:
        return cls(
            event_id,
            out_dir / f"{event_id}.mp4",
            out_dir / f"{event_id}.raw.mp4",
            out_dir / f"{event_id}.jpg",
            out_dir / f"{event_id}.thumb.jpg",
            out_dir / f"{event_id}.tracks.json",
        )


TrackedBox = tuple[int, str, float, float, float, float]  # track id, label, x1, y1, x2, y2


@dataclass(frozen=True, slots=True)
class _Buffered:
    index: int
    pts: float
    jpeg: np.ndarray
    tracked: tuple[TrackedBox, ...]  # where the tracks were when it was pushed

    def image(self) -> np.ndarray:
        return cv2.imdecode(self.jpeg, cv2.IMREAD_COLOR)


@dataclass
class _Clip:
    """One open event's clips and the best moment seen so far."""

    paths: EvidencePaths
    writer: H264Writer  # annotated
    raw: H264Writer
    t0: float  # source pts of the clip's first frame, the clip's time 0
    event: Event  # its latest state
    score: float
    box: Box
    image: np.ndarray  # a private copy of the best frame
    stop_after: float | None = None  # source pts past which no frame belongs, once the event ended
    tracks: list[dict[str, object]] = field(default_factory=list)  # per clip frame: its time and tracked boxes

    def write(self, image: np.ndarray, pts: float, drawn: np.ndarray, tracked: Sequence[TrackedBox]) -> None:
        self.raw.write(image, pts - self.t0)
        self.writer.write(drawn, pts - self.t0)
        self.tracks.append({"t": round(pts - self.t0, 4), "boxes": [list(b) for b in tracked]})


def _encode(image: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data


def _write_atomic(path: Path, data: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.part")
    try:
        tmp.write_bytes(data.tobytes())
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


class EvidenceRecorder:
    """Subscribe on_change to the EventBus and push every processed frame; close() at shutdown."""

    def __init__(
        self,
        out_dir: Path,
        pre_roll: float = 5.0,
        post_roll: float = 5.0,
        max_buffer_seconds: float | None = None,
        on_done: Callable[[EvidencePaths], None] | None = None,
        on_started: Callable[[EvidencePaths], None] | None = None,
        camera: CameraConfig | None = None,
    ) -> None:
        """max_buffer_seconds: history kept (default pre_roll + 1 s, room for a packed batch pushed ahead);
        on_started: told when an event's first snapshot and thumbnail exist; camera: for the zones and lines drawn."""
        if pre_roll < 0 or post_roll < 0:
            raise CctvError(f"evidence pre_roll and post_roll must be >= 0, got {pre_roll} and {post_roll}")
        self.buffer_seconds = pre_roll + 1.0 if max_buffer_seconds is None else max_buffer_seconds
        if self.buffer_seconds < pre_roll:
            raise CctvError(f"evidence max_buffer_seconds ({max_buffer_seconds}) is shorter than pre_roll ({pre_roll})")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.pre_roll, self.post_roll = pre_roll, post_roll
        self.on_done, self.on_started = on_done, on_started
        self.camera = camera
        self.buffer: deque[_Buffered] = deque()
        self.newest: Frame | None = None
        self.clips: dict[str, _Clip] = {}
        self.boxes: dict[int, Box] = {}  # track id -> its newest box, for the boxes drawn between analysed frames
        self.tracked: tuple[TrackedBox, ...] = ()  # the same with labels, for the clip's `tracks` file

    def push(self, frame: Frame) -> None:
        """Call before the pipeline processes `frame`: buffers it and appends it to every open clip."""
        self.newest = frame
        self.buffer.append(_Buffered(frame.index, frame.pts, _encode(frame.image, BUFFER_QUALITY), self.tracked))
        while self.buffer[0].pts < frame.pts - self.buffer_seconds:
            self.buffer.popleft()
        for clip in list(self.clips.values()):
            if clip.stop_after is not None and frame.pts > clip.stop_after:
                self._finish(clip)
            else:
                try:
                    clip.write(frame.image, frame.pts, self._drawn(clip, frame.image, frame.pts), self.tracked)
                except OSError as exc:
                    self._drop(clip, exc)

    def observe(self, tracks: Sequence[Track]) -> None:
        """After a frame was analysed: where its tracks are now (the boxes drawn on the frames that follow)."""
        self.boxes = {track.track_id: track.box for track in tracks}
        # Where each is on this frame: a track carried without a detection is where its motion model puts it.
        self.tracked = tuple((t.track_id, t.label, *(round(v, 1) for v in t.expected or t.box)) for t in tracks)
        # The newest frame was pushed before it was analysed: its tracked boxes are these, not the last frame's.
        if self.buffer:
            self.buffer[-1] = replace(self.buffer[-1], tracked=self.tracked)
        for clip in self.clips.values():
            if clip.tracks:
                clip.tracks[-1]["boxes"] = [list(b) for b in self.tracked]

    def _drawn(self, clip: _Clip, image: np.ndarray, pts: float) -> np.ndarray:
        """The frame with the event drawn: its box from the event's start (following its track), its zone or line."""
        box = None
        if pts >= clip.event.start - 1e-6 and (clip.event.end is None or pts <= clip.event.end + 1e-6):
            box = self.boxes.get(clip.event.track_id, clip.event.box) if clip.event.track_id is not None else clip.event.box
        return draw_event(image.copy(), self.camera, clip.event, box)

    def on_change(self, change: EventChange) -> None:
        event = change.event
        if change.kind == "start":
            self._start(event)
            return
        clip = self.clips.get(event.id)
        if clip is None or self.newest is None:  # started before this recorder was subscribed
            return
        clip.event = event
        if change.kind == "update" and event.score > clip.score:
            clip.score, clip.box, clip.image = event.score, event.box, self.newest.image.copy()
        if change.kind == "end":
            clip.stop_after = (self.newest.pts if event.end is None else event.end) + self.post_roll
            if self.newest.pts >= clip.stop_after:  # no later frame can belong to the clip
                self._finish(clip)

    def close(self) -> None:
        """Graceful shutdown: every open clip ends where the stream ended, with its evidence."""
        for clip in list(self.clips.values()):
            self._finish(clip)

    def abort(self) -> None:
        """Crash path: drop every unfinished clip, leaving no partial file."""
        for clip in self.clips.values():
            clip.writer.abort()
            clip.raw.abort()
        self.clips.clear()

    def _drop(self, clip: _Clip, exc: OSError) -> None:
        """A clip that cannot be written (a full disk): removed at once, the event goes on without it."""
        self.clips.pop(clip.paths.event_id, None)
        clip.writer.abort()
        clip.raw.abort()
        log.error("%s: clip dropped, %s", clip.paths.event_id, exc.strerror or exc)
        if self.on_done is not None:  # the stills written so far are still evidence
            self.on_done(clip.paths)

    def _start(self, event: Event) -> None:
        if self.newest is None:
            raise RuntimeError("EvidenceRecorder: push each frame before the pipeline processes it")
        pre = [b for b in self.buffer if b.pts >= event.start - self.pre_roll] or list(self.buffer)[-1:]
        if not pre:
            raise RuntimeError(f"{event.id}: no frame buffered for its clip")
        span = pre[-1].pts - pre[0].pts
        fps = (len(pre) - 1) / span if span > 0 else NOMINAL_FPS
        height, width = self.newest.image.shape[:2]
        paths = EvidencePaths.of(self.out_dir, event.id)
        at_start = next((b for b in pre if b.index == event.start_frame), pre[-1])
        try:
            writer = self._writer(paths.clip, width, height, fps)
        except OSError as exc:
            log.error("%s: no evidence, %s", event.id, exc.strerror or exc)
            return
        try:
            raw = self._writer(paths.raw, width, height, fps)
        except OSError as exc:
            writer.abort()
            log.error("%s: no evidence, %s", event.id, exc.strerror or exc)
            return
        clip = _Clip(paths, writer, raw, pre[0].pts, event, event.score, event.box, at_start.image())
        self.clips[event.id] = clip
        try:
            self._stills(clip)  # at once: an open event is never shown without a picture
            if self.on_started is not None:
                self.on_started(paths)
            for b in pre:
                image = b.image()
                clip.write(image, b.pts, self._drawn(clip, image, b.pts), b.tracked)
        except OSError as exc:
            self._drop(clip, exc)

    @staticmethod
    def _writer(path: Path, width: int, height: int, fps: float) -> H264Writer:
        return H264Writer(path, width, height, fps, tune=CLIP_TUNE, preset=CLIP_PRESET, threads=CLIP_THREADS)

    def _stills(self, clip: _Clip) -> None:
        """The snapshot (the best frame so far, its box drawn) and its thumbnail."""
        image = clip.image.copy()
        draw_box(image, clip.box)
        height, width = image.shape[:2]
        thumb = cv2.resize(image, (THUMB_WIDTH, round(height * THUMB_WIDTH / width)), interpolation=cv2.INTER_AREA)
        _write_atomic(clip.paths.snapshot, _encode(image, SNAPSHOT_QUALITY))
        _write_atomic(clip.paths.thumbnail, _encode(thumb, SNAPSHOT_QUALITY))

    def _finish(self, clip: _Clip) -> None:
        try:
            clip.writer.close()
            clip.raw.close()
            doc = {"t0": clip.t0, "frames": clip.tracks}  # t0: the source time of the clip's time 0
            _write_atomic(clip.paths.tracks, np.frombuffer(json.dumps(doc).encode(), np.uint8))
            self._stills(clip)
        except OSError as exc:
            self._drop(clip, exc)
            return
        del self.clips[clip.paths.event_id]
        if self.on_done is not None:
            self.on_done(clip.paths)


class Recorder(Protocol):
    """What `engine.CameraRun` hands frames and event changes to: an `EvidenceRecorder`, or one in the background."""

    def push(self, frame: Frame) -> None: ...

    def observe(self, tracks: Sequence[Track]) -> None: ...

    def on_change(self, change: EventChange) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


BACKGROUND_NICE = 10  # the encoder thread yields the CPU to decoding, detection, tracking and rules


class BackgroundEvidence:
    """An `EvidenceRecorder` on its own thread, at a lower CPU priority: a live camera's evidence.

    Encoding every sampled frame into every open clip (twice: drawn and raw) is most of a loaded
    site's CPU; on the camera's own thread it held back the analysis that finds the events. Here
    the calls are queued in order and run when the CPU has room (x264 releases the GIL). When more
    than `max_frames` frames wait, new frames are left out of the evidence (counted in `dropped`):
    under overload a clip gets fewer frames, the analysis none fewer. A failing recorder (a full
    disk) is logged and the camera goes on.
    """

    def __init__(self, recorder: EvidenceRecorder, max_frames: int = 25, name: str = "evidence") -> None:
        self.recorder = recorder
        self.max_frames = max_frames
        self.dropped = 0
        self._waiting = 0  # frames in the queue
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[Callable[..., None], tuple[object, ...]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def latest(self) -> bytes | None:
        """The newest buffered frame as JPEG (None before the first)."""
        buffer = self.recorder.buffer
        return buffer[-1].jpeg.tobytes() if buffer else None

    def push(self, frame: Frame) -> None:
        with self._lock:
            if self._waiting >= self.max_frames:
                self.dropped += 1
                return
            self._waiting += 1
        self._queue.put((self._push, (frame,)))

    def observe(self, tracks: Sequence[Track]) -> None:
        self._queue.put((self.recorder.observe, (list(tracks),)))

    def on_change(self, change: EventChange) -> None:
        self._queue.put((self.recorder.on_change, (change,)))

    def close(self) -> None:
        """Finish every queued call and every open clip."""
        self._stop(self.recorder.close)

    def abort(self) -> None:
        self._stop(self.recorder.abort)

    def _stop(self, last: Callable[[], None]) -> None:
        self._queue.put((last, ()))
        self._queue.put(None)
        self._thread.join()

    def _push(self, frame: Frame) -> None:
        with self._lock:
            self._waiting -= 1
        self.recorder.push(frame)

    def _run(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
        except OSError:
            pass  # not allowed here: the same priority as the camera
        while (item := self._queue.get()) is not None:
            call, args = item
            try:
                call(*args)
            except Exception:
                log.exception("evidence: %s failed", call.__name__)
