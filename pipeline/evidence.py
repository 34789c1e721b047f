"""Evidence for every event: a clip from pre-roll to post-roll, a snapshot of its best frame, a thumbnail.

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

import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.draw import draw_box
from pipeline.errors import CctvError
from pipeline.events import Event, EventChange
from pipeline.types import Box, Frame
from pipeline.video import H264Writer

BUFFER_QUALITY = 90
SNAPSHOT_QUALITY = 90
THUMB_WIDTH = 320
# Measured: an open 1080p clip holds 160 MB in x264's lookahead and frame threads, 53 MB with
# zerolatency, and a live service may have a clip open per event.
CLIP_TUNE = "zerolatency"
NOMINAL_FPS = 25.0  # the clip's nominal rate when the buffer holds a single frame; timestamps stay exact


@dataclass(frozen=True, slots=True)
class EvidencePaths:
    """Where one event's evidence lies once it is complete (what a store records)."""

    event_id: str
    clip: Path
    snapshot: Path
    thumbnail: Path

    @classmethod
    def of(cls, out_dir: Path, event_id: str) -> EvidencePaths:
        return cls(
            event_id, out_dir / f"{event_id}.mp4", out_dir / f"{event_id}.jpg", out_dir / f"{event_id}.thumb.jpg"
        )


@dataclass(frozen=True, slots=True)
class _Buffered:
    index: int
    pts: float
    jpeg: np.ndarray

    def image(self) -> np.ndarray:
        return cv2.imdecode(self.jpeg, cv2.IMREAD_COLOR)


@dataclass
class _Clip:
    """One open event's clip and the best moment seen so far."""

    paths: EvidencePaths
    writer: H264Writer
    t0: float  # source pts of the clip's first frame, the clip's time 0
    score: float
    box: Box
    image: np.ndarray  # a private copy of the best frame
    stop_after: float | None = None  # source pts past which no frame belongs, once the event ended

    def write(self, image: np.ndarray, pts: float) -> None:
        self.writer.write(image, pts - self.t0)


def _encode(image: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data


def _write_atomic(path: Path, data: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_bytes(data.tobytes())
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
    ) -> None:
        """max_buffer_seconds: history kept (default pre_roll + 1 s, room for a packed batch pushed ahead)."""
        if pre_roll < 0 or post_roll < 0:
            raise CctvError(f"evidence pre_roll and post_roll must be >= 0, got {pre_roll} and {post_roll}")
        self.buffer_seconds = pre_roll + 1.0 if max_buffer_seconds is None else max_buffer_seconds
        if self.buffer_seconds < pre_roll:
            raise CctvError(f"evidence max_buffer_seconds ({max_buffer_seconds}) is shorter than pre_roll ({pre_roll})")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.pre_roll, self.post_roll = pre_roll, post_roll
        self.on_done = on_done
        self.buffer: deque[_Buffered] = deque()
        self.newest: Frame | None = None
        self.clips: dict[str, _Clip] = {}

    def push(self, frame: Frame) -> None:
        """Call before the pipeline processes `frame`: buffers it and appends it to every open clip."""
        self.newest = frame
        self.buffer.append(_Buffered(frame.index, frame.pts, _encode(frame.image, BUFFER_QUALITY)))
        while self.buffer[0].pts < frame.pts - self.buffer_seconds:
            self.buffer.popleft()
        for clip in list(self.clips.values()):
            if clip.stop_after is not None and frame.pts > clip.stop_after:
                self._finish(clip)
            else:
                clip.write(frame.image, frame.pts)

    def on_change(self, change: EventChange) -> None:
        event = change.event
        if change.kind == "start":
            self._start(event)
            return
        clip = self.clips.get(event.id)
        if clip is None or self.newest is None:  # started before this recorder was subscribed
            return
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
        self.clips.clear()

    def _start(self, event: Event) -> None:
        if self.newest is None:
            raise RuntimeError("EvidenceRecorder: push each frame before the pipeline processes it")
        pre = [b for b in self.buffer if b.pts >= event.start - self.pre_roll]
        span = pre[-1].pts - pre[0].pts
        fps = (len(pre) - 1) / span if span > 0 else NOMINAL_FPS
        height, width = self.newest.image.shape[:2]
        paths = EvidencePaths.of(self.out_dir, event.id)
        at_start = next((b for b in pre if b.index == event.start_frame), pre[-1])
        writer = H264Writer(paths.clip, width, height, fps, tune=CLIP_TUNE)
        clip = _Clip(paths, writer, pre[0].pts, event.score, event.box, at_start.image())
        self.clips[event.id] = clip
        for b in pre:
            clip.write(b.image(), b.pts)

    def _finish(self, clip: _Clip) -> None:
        del self.clips[clip.paths.event_id]
        clip.writer.close()
        draw_box(clip.image, clip.box)
        height, width = clip.image.shape[:2]
        thumb = cv2.resize(clip.image, (THUMB_WIDTH, round(height * THUMB_WIDTH / width)), interpolation=cv2.INTER_AREA)
        _write_atomic(clip.paths.snapshot, _encode(clip.image, SNAPSHOT_QUALITY))
        _write_atomic(clip.paths.thumbnail, _encode(thumb, SNAPSHOT_QUALITY))
        if self.on_done is not None:
            self.on_done(clip.paths)
