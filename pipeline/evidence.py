"""Evidence for every event: a clip from pre-roll to post-roll, a snapshot of its best frame, a thumbnail.

The clip an operator plays has the event drawn on every frame (its box, following its track between
analysed frames; the rule's zone or line; the rule's label; and any other event of the camera open at
the same time, drawn the same way); the same frames without drawing are kept
beside it (`raw`, for export), with the boxes of every tracked object on each of its frames (`tracks`,
so an export can blur everyone but the event's subject). A thumbnail and snapshot are written as soon as the event starts, so
an open event is never shown black, and rewritten with the best frame when it ends.

Order contract: push() each frame *before* the pipeline processes it, so the frame a change happened
on is already here when the bus delivers the change. A start is matched to its `start_frame` in the
buffer; an update (events carry no frame for it) is taken to happen on the newest pushed frame, which
is exact when frames are processed one at a time; with packed batches (`detect.pack_frames` > 1) an
update's snapshot may come from up to pack_frames - 1 frames after the update.

Wiring: hand the recorder to `engine.CameraRun`, which subscribes it, pushes every frame before
processing it, calls observe() once a batch is analysed (the pushed frames are encoded then, with the
events it started drawn), and closes it (or aborts it after an error) once the run's events have ended.

Encoding: while any event of the camera is open, each frame is encoded once drawn and once raw (a
`_Session`), and every open clip copies the packets; a clip that starts while another is open begins
at the session's keyframe before its pre-roll (at most KEYFRAME_SECONDS early). Clips are H.264 MP4
with the index at the front; their time 0 is their first frame. Every file is written under a
temporary name and renamed when complete: evidence is whole or absent.

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
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import av
import cv2
import numpy as np

from pipeline.config import CameraConfig
from pipeline.draw import draw_box, draw_event, draw_title
from pipeline.errors import CctvError
from pipeline.events import Event, EventChange
from pipeline.types import Box, Frame, Track
from pipeline.video import H264Encoder, PacketWriter

log = logging.getLogger(__name__)

BUFFER_QUALITY = 90
SNAPSHOT_QUALITY = 90
THUMB_WIDTH = 320
# Every sampled frame goes into every open clip, drawn and raw. Encoded per clip, that was two x264 encodings
# per open event per frame: a loaded site with 10-20 clips open left 37-73 % of the frames out of them. Now
# a camera's frames are encoded once (drawn, raw) while any of its events is open, and each clip copies the
# packets (x264 ultrafast, zerolatency, one thread: 17 ms a 1080p frame). A clip starts at a keyframe, at most
# KEYFRAME_SECONDS before its pre-roll.
KEYFRAME_SECONDS = 1.0


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


@dataclass(frozen=True, slots=True)
class _Encoded:
    """One sampled frame of an encoding session: its packets (drawn and raw) and the tracked boxes on it."""

    pts: float
    drawn: list[av.Packet]
    raw: list[av.Packet]
    tracked: tuple[TrackedBox, ...]

    @property
    def key(self) -> bool:
        return bool(self.drawn) and self.drawn[0].is_keyframe


@dataclass
class _Session:
    """A camera's sampled frames encoded once each (drawn and raw) while any of its events is open; every open
    clip copies the packets. The encoded frames are kept back to a keyframe before the pre-roll, where the
    clip of an event starting meanwhile begins."""

    drawn: H264Encoder
    raw: H264Encoder
    frames: deque[_Encoded] = field(default_factory=deque)

    def encode(self, pts: float, drawn: np.ndarray, raw: np.ndarray, tracked: tuple[TrackedBox, ...]) -> _Encoded:
        encoded = _Encoded(pts, self.drawn.encode(drawn, pts), self.raw.encode(raw, pts), tracked)
        self.frames.append(encoded)
        return encoded

    def since(self, t: float) -> list[_Encoded]:
        """The frames from the last keyframe at or before `t` (or the first kept, a keyframe) on."""
        frames = list(self.frames)
        starts = [i for i, f in enumerate(frames) if f.key and f.pts <= t + 1e-6] or [0]
        return frames[starts[-1] :]

    def trim(self, t: float) -> None:
        """Forget what no clip starting from `t` on can need."""
        first = self.since(t)[0]
        while self.frames[0] is not first:
            self.frames.popleft()


@dataclass
class _Clip:
    """One open event's clips (packets copied from the session) and the best moment seen so far."""

    paths: EvidencePaths
    writer: PacketWriter  # annotated
    raw: PacketWriter
    t0: float  # source pts of the clip's first frame, the clip's time 0
    event: Event  # its latest state
    score: float
    box: Box
    image: np.ndarray  # a private copy of the best frame
    stop_after: float | None = None  # source pts past which no frame belongs, once the event ended
    tracks: list[dict[str, object]] = field(default_factory=list)  # per clip frame: its time and tracked boxes

    def add(self, frame: _Encoded) -> None:
        for packet in frame.drawn:
            self.writer.write(packet)
        for packet in frame.raw:
            self.raw.write(packet)
        self.tracks.append({"t": round(frame.pts - self.t0, 4), "boxes": [list(b) for b in frame.tracked]})


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
        self.session: _Session | None = None  # encoding, while any event is open
        self.pending: list[tuple[float, np.ndarray, tuple[TrackedBox, ...]]] = []  # pushed, not yet encoded
        self.boxes: dict[int, Box] = {}  # track id -> its newest box, for the boxes drawn between analysed frames
        self.tracked: tuple[TrackedBox, ...] = ()  # the same with labels, for the clip's `tracks` file
        self.observed = float("-inf")  # pts of the newest frame whose analysis `observe` has seen

    def push(self, frame: Frame) -> None:
        """Call before the pipeline processes `frame`: buffers it; while an event is open, it is encoded once
        its analysis has been observed (so the events it starts are drawn on it)."""
        self.newest = frame
        self.buffer.append(_Buffered(frame.index, frame.pts, _encode(frame.image, BUFFER_QUALITY), self.tracked))
        while self.buffer[0].pts < frame.pts - self.buffer_seconds:
            self.buffer.popleft()
        if self.session is not None:
            self.pending.append((frame.pts, frame.image, self.tracked))

    def observe(self, tracks: Sequence[Track]) -> None:
        """After a frame was analysed: where its tracks are now (the boxes drawn on the frames that follow)."""
        self.boxes = {track.track_id: track.box for track in tracks}
        self.observed = self.newest.pts if self.newest is not None else self.observed
        # Where each is on this frame: a track carried without a detection is where its motion model puts it.
        self.tracked = tuple((t.track_id, t.label, *(round(v, 1) for v in t.expected or t.box)) for t in tracks)
        # The newest frame was pushed before it was analysed: its tracked boxes are these, not the last frame's.
        if self.buffer:
            self.buffer[-1] = replace(self.buffer[-1], tracked=self.tracked)
        if self.pending:
            self.pending[-1] = (*self.pending[-1][:2], self.tracked)
        self._encode_pending()

    def _encode_pending(self) -> None:
        """Encode the frames pushed since the last look, once each, into every open clip (or end the clip)."""
        pending, self.pending = self.pending, []
        for pts, image, tracked in pending:
            if self.session is None:
                break
            self._add(self.session.encode(pts, self._drawn(image, pts), image, tracked))
        if self.session is not None and self.session.frames:
            self.session.trim(self.session.frames[-1].pts - self.pre_roll)

    def _add(self, frame: _Encoded) -> None:
        for clip in list(self.clips.values()):
            if clip.stop_after is not None and frame.pts > clip.stop_after:
                self._finish(clip)
                continue
            try:
                clip.add(frame)
            except OSError as exc:
                self._drop(clip, exc)
        self._end_if_idle()

    def _drawn(self, image: np.ndarray, pts: float) -> np.ndarray:
        """The frame with every open event drawn: its box from its start (following its track), its zone or line."""
        drawn = image.copy()
        rules: Counter[str] = Counter()
        for clip in self.clips.values():
            event, box = clip.event, None
            if pts >= event.start - 1e-6 and (event.end is None or pts <= event.end + 1e-6):
                box = self.boxes.get(event.track_id, event.box) if event.track_id is not None else event.box
            draw_event(drawn, self.camera, event, box)
            rules[f"{event.rule} ({event.type})"] += 1
        for row, (rule, count) in enumerate(rules.items()):
            draw_title(drawn, rule if count == 1 else f"{rule} x{count}", row)
        return drawn

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

    def close(self) -> None:
        """Graceful shutdown: every open clip ends where the stream ended, with its evidence."""
        self._encode_pending()
        for clip in list(self.clips.values()):
            self._finish(clip)
        self.session = None

    def abort(self) -> None:
        """Crash path: drop every unfinished clip, leaving no partial file."""
        for clip in self.clips.values():
            clip.writer.abort()
            clip.raw.abort()
        self.clips.clear()
        self.session, self.pending = None, []

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
        paths = EvidencePaths.of(self.out_dir, event.id)
        fresh = self.session is None
        if fresh:  # the first open event: its pre-roll is encoded from the buffer
            height, width = self.newest.image.shape[:2]
            self.session = _Session(*(H264Encoder(width, height, KEYFRAME_SECONDS) for _ in range(2)))
            self.pending = []
            pre = [b for b in self.buffer if b.pts >= event.start - self.pre_roll] or list(self.buffer)[-1:]
            times = [b.pts for b in pre]
        else:  # the session holds it, and the frames pushed since will come
            copied = self.session.since(event.start - self.pre_roll)
            times = [f.pts for f in copied] + [pts for pts, _, _ in self.pending]
        at_start = next((b for b in self.buffer if b.index == event.start_frame), self.buffer[-1])
        writer = None
        try:
            writer = PacketWriter(paths.clip)
            raw = PacketWriter(paths.raw)
        except OSError as exc:
            if writer is not None:
                writer.abort()
            log.error("%s: no evidence, %s", event.id, exc.strerror or exc)
            return self._end_if_idle()
        clip = _Clip(paths, writer, raw, times[0], event, event.score, event.box, at_start.image())
        self.clips[event.id] = clip
        try:
            self._stills(clip)  # at once: an open event is never shown without a picture
            if self.on_started is not None:
                self.on_started(paths)
            if fresh:
                # Frames whose analysis is under way (the newest, or a packed batch) wait for `observe`, so
                # they are drawn and recorded with their own tracked boxes, not the frame's before.
                for b in pre:
                    image = b.image()
                    if b.pts > self.observed:
                        self.pending.append((b.pts, image, b.tracked))
                    else:
                        self._add(self.session.encode(b.pts, self._drawn(image, b.pts), image, b.tracked))
            else:
                for frame in copied:
                    clip.add(frame)
        except OSError as exc:
            self._drop(clip, exc)
            self._end_if_idle()

    def _end_if_idle(self) -> None:
        """No event open: no session, no encoding."""
        if not self.clips:
            self.session, self.pending = None, []

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
