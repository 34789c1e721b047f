"""The first stage: a video file, stream or webcam as an iterator of Frames timed by media PTS.

A recorded file is replayed deterministically: every sampled frame, as fast as the consumer goes.
A live source (RTSP/HTTP stream, webcam, or a file played as a camera) is read by a thread that
keeps only the newest sampled frame, so a slow consumer drops stale frames instead of falling
behind. Frames are converted to BGR only when handed out, so frames skipped by `fps` sampling or
dropped cost their decode alone.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import av
import cv2
import numpy as np

from pipeline.errors import CctvError
from pipeline.privacy import PrivacyMask
from pipeline.types import Frame

log = logging.getLogger(__name__)

OPEN_TIMEOUT = 10.0  # seconds to connect to a stream
READ_TIMEOUT = 10.0  # seconds without data before a stream counts as lost
JOIN_TIMEOUT = 2.0  # close() does not wait longer for a reader blocked in a network read
DEFAULT_FPS = 25.0
BACKWARD_S = 0.5  # timestamps going back more than this (or a frame) are a discontinuity
JUMP_S = 30.0  # on a stream, so is a jump forward past this
SKIPPED_KEPT = 50  # dropped frames kept for the evidence between two takes  # for the rare stream that declares no frame rate
TEXT_CODECS = {"ansi", "bintext", "xbin", "idf"}  # FFmpeg renders text files as "video" with these

Image = np.ndarray | av.VideoFrame


@dataclass
class SourceStats:
    frames_read: int = 0  # decoded from the source
    frames_yielded: int = 0  # handed to the consumer
    dropped: int = 0  # sampled frames a live consumer was too slow to take
    decode_errors: int = 0  # corrupt packets skipped, plus a read error that ended the source
    discontinuities: int = 0  # timestamp jumps re-anchored


class _Decoded:
    """A decoded frame before BGR conversion, which is paid only for the frames handed out or viewed, once.

    Live, the camera's thread and live viewers (the API's threads) may ask for the same frame at once.
    PyAV keeps its scaler on the frame, so two threads converting one frame crashed the service in
    libswscale; here one converts and the other reuses the result (consumers never draw on it in place).
    The camera's privacy zones are blacked out in the same step, so no consumer ever sees them.
    """

    __slots__ = ("_lock", "_ready", "clear", "image", "index", "mask", "pts")

    def __init__(self, index: int, pts: float, image: Image, mask: PrivacyMask | None = None) -> None:
        self.index, self.pts, self.image, self.mask = index, pts, image, mask
        self.clear: np.ndarray | None = None
        self._ready = False
        self._lock = threading.Lock()

    def frame(self) -> Frame:
        with self._lock:
            if not self._ready:
                if not isinstance(self.image, np.ndarray):
                    self.image = self.image.to_ndarray(format="bgr24")
                if self.mask is not None:
                    self.clear = self.mask.apply(self.image)
                self._ready = True
            return Frame(self.image, self.index, self.pts, self.clear)


@dataclass
class _Sampler:
    """Keeps the frames that reach the next sample time k/fps, tolerating PTS jitter of half a frame."""

    fps: float | None
    slack: float
    next_k: int = 0

    def keep(self, pts: float) -> bool:
        if self.fps is None:
            return True
        if pts < self.next_k / self.fps - self.slack:
            return False
        # after a gap in the stream, resume on the first sample time after this frame
        self.next_k = max(self.next_k + 1, math.floor(pts * self.fps + 0.5) + 1)
        return True


class _Input(Protocol):
    """One opened input; frames() yields (seconds or None when unknown, image) until the input ends."""

    fps: float
    frame_count: int | None
    duration: float | None

    def frames(self) -> Iterator[tuple[float | None, Image]]: ...

    def close(self) -> None: ...


class _AvInput:
    """A file or stream opened with FFmpeg; decoding skips corrupt packets and counts them."""

    def __init__(self, url: str, label: str, stats: SourceStats, network: bool) -> None:
        self.stats = stats
        options = {"rtsp_transport": "tcp"} if url.startswith(("rtsp://", "rtsps://")) else {}
        try:
            self.container = av.open(url, options=options, timeout=(OPEN_TIMEOUT, READ_TIMEOUT) if network else None)
        except av.error.FFmpegError as exc:
            reason = exc.strerror or str(exc).replace(url, label)  # FFmpeg's own text may quote the whole URL
            raise CctvError(f"cannot open video {label}: {reason}") from None
        video = self.container.streams.video
        if not video or video[0].codec_context.name in TEXT_CODECS:
            self.container.close()
            reason = "it is text, not video" if video else "it has no video stream"
            raise CctvError(f"cannot open video {label}: {reason}")
        self.stream = video[0]
        self.stream.thread_type = "AUTO"
        rate = self.stream.guessed_rate or self.stream.average_rate  # FFmpeg's best guess of the average
        self.fps = float(rate) if rate else DEFAULT_FPS
        self.frame_count = self.stream.frames or None
        if self.stream.duration and self.stream.time_base:
            self.duration: float | None = float(self.stream.duration * self.stream.time_base)
        else:
            self.duration = self.container.duration / av.time_base if self.container.duration else None

    def frames(self) -> Iterator[tuple[float | None, Image]]:
        packets = self.container.demux(self.stream)
        while True:
            try:
                packet = next(packets, None)
            except av.error.FFmpegError:  # a read error ends the input (truncated file, lost stream)
                self.stats.decode_errors += 1
                return
            if packet is None:
                return
            try:
                decoded = packet.decode()
            except av.error.FFmpegError:
                self.stats.decode_errors += 1
                continue
            for frame in decoded:
                yield frame.time, frame

    def close(self) -> None:
        self.container.close()


class _Webcam:
    """A local camera through OpenCV; it has no PTS, so frames are timed by capture time."""

    frame_count: int | None = None
    duration: float | None = None

    def __init__(self, index: int, stats: SourceStats) -> None:
        self.stats = stats
        self.cap = cv2.VideoCapture(index)
        if not self.cap.isOpened():
            raise CctvError(f"cannot open webcam {index}: no such camera, or it is in use")
        self.fps = self.cap.get(cv2.CAP_PROP_FPS) or DEFAULT_FPS

    def frames(self) -> Iterator[tuple[float | None, Image]]:
        start = None
        while True:
            ok, image = self.cap.read()
            now = time.monotonic()
            if not ok:
                self.stats.decode_errors += 1
                return
            start = now if start is None else start
            yield now - start, image

    def close(self) -> None:
        self.cap.release()


_SECRET_KEYS = re.compile(r"pass|pwd|key|token|secret|auth|sig|cred", re.IGNORECASE)


def redact(url: str) -> str:
    """A stream URL without its secrets, for messages and the API: the password of the user info (which may
    itself hold '@' or ':'), and the value of any query parameter that looks like a key or a password."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"***@{host}"
    query = "&".join(
        f"{k}=***" if _SECRET_KEYS.search(k) else (f"{k}={v}" if v else k)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class VideoSource:
    """An iterator of Frames from one source; made by open_source(), closed by close() or `with`."""

    def __init__(
        self,
        label: str,
        opener: Callable[[SourceStats], _Input],
        sample_fps: float | None,
        live: bool,
        loop: bool,
        is_file: bool,
        backlog: int = 1,
        privacy: PrivacyMask | None = None,
    ) -> None:
        self.label, self.live, self.loop, self.is_file = label, live, loop, is_file
        self.privacy = privacy
        self.pace = live and is_file  # a file played as a camera is read at real time
        self.stats = SourceStats()
        self._open = opener
        self._input = opener(self.stats)
        self.fps = self._input.fps  # the stream's average frame rate
        self.frame_count = None if loop else self._input.frame_count
        self.duration = None if loop else self._input.duration
        self._period = 1.0 / self.fps
        self._sampler = _Sampler(sample_fps, self._period / 2)
        self._closed = threading.Event()
        decoded = self._decoded()
        first = next(decoded, None)
        if first is None:
            self._input.close()
            errors = f" (decode errors: {self.stats.decode_errors})" if self.stats.decode_errors else ""
            raise CctvError(f"cannot open video {label}: no decodable frames{errors}")
        image = first.image
        self.height, self.width = image.shape[:2] if isinstance(image, np.ndarray) else (image.height, image.width)
        frames = itertools.chain([first], decoded)
        self._thread: threading.Thread | None = None
        self.newest: _Decoded | None = None  # live: the newest sampled frame, whether analysed or dropped
        # live: the least (arrival wall time - media time) of the sampled frames so far. Frames arrive no
        # sooner than they were captured, so the least is the truest: a burst of buffered frames at
        # connection, or a frame taken long after it arrived, would put later frames in the future.
        self.wall_offset: float | None = None
        if live:
            self._pending: deque[_Decoded] = deque()
            self._skipped: deque[_Decoded] = deque(maxlen=SKIPPED_KEPT)  # dropped, not yet handed out
            self._backlog = max(1, backlog)
            self._done = False
            self._failure: BaseException | None = None
            self._cond = threading.Condition()
            self._thread = threading.Thread(target=self._read, args=(frames,), name=f"source {label}", daemon=True)
            self._thread.start()
            self._frames = self._newest()
        else:
            self._frames = (self._emit(d) for d in frames if self._sampler.keep(d.pts))

    def _decoded(self) -> Iterator[_Decoded]:
        """Every decoded frame, indexed and timed from 0.0; a looped file restarts with pts still rising."""
        index, offset = 0, 0.0
        while True:
            last, base = None, None
            for t, image in self._input.frames():
                expected = 0.0 if last is None else last + self._period
                if t is None:  # no PTS: one frame period after the last
                    last = expected
                else:
                    base = t - expected if base is None else base
                    if last is not None and self._discontinuous(t - base, last):
                        # An encoder restart, a looping restreamer, the MPEG-TS 33-bit wrap: media time
                        # goes on one frame after the last instead of jumping (analysis would stop).
                        self.stats.discontinuities += 1
                        log.warning("%s: timestamps jumped by %+.1f s; re-anchored", self.label, t - base - expected)
                        base = t - expected
                    last = t - base
                self.stats.frames_read += 1
                yield _Decoded(index, offset + last, image, self.privacy)
                index += 1
            if not self.loop or last is None or self._closed.is_set():
                break
            offset += last + self._period
            self._input.close()
            self._input = self._open(self.stats)
        if not index:
            return  # nothing decoded: the caller raises
        if self.stats.decode_errors:
            log.warning("%s: skipped %d undecodable packets", self.label, self.stats.decode_errors)
        elif self.frame_count and index < self.frame_count:
            log.warning("%s: ended after %d of %d frames (truncated?)", self.label, index, self.frame_count)

    def _discontinuous(self, pts: float, last: float) -> bool:
        """Backwards by more than a frame's jitter anywhere; forwards past JUMP_S on a live source (FFmpeg
        itself turns a jump back in MPEG-TS into one forward by the 26.5 h wrap). A file replayed offline keeps
        its forward gaps: a motion-triggered recording has real ones."""
        return pts < last - max(BACKWARD_S, self._period) or (self.live and pts > last + JUMP_S)

    def _emit(self, decoded: _Decoded) -> Frame:
        self.stats.frames_yielded += 1
        return decoded.frame()

    def _read(self, frames: Iterator[_Decoded]) -> None:
        """Reader thread: decode on (at real time for a file) and leave only the newest sampled frame."""
        start = None
        try:
            for decoded in frames:
                if self._closed.is_set():
                    break
                if not self._sampler.keep(decoded.pts):
                    continue
                if self.pace:
                    start = time.monotonic() - decoded.pts if start is None else start
                    if self._closed.wait(start + decoded.pts - time.monotonic()):
                        break
                offset = time.time() - decoded.pts
                self.wall_offset = offset if self.wall_offset is None else min(self.wall_offset, offset)
                self.newest = decoded  # every sampled frame, for live viewers, dropped or not
                with self._cond:
                    if len(self._pending) == self._backlog:
                        self._skipped.append(self._pending.popleft())
                        self.stats.dropped += 1
                    self._pending.append(decoded)
                    self._cond.notify()
        except BaseException as exc:  # handed to the consumer's thread
            self._failure = exc
        finally:
            self._input.close()
            with self._cond:
                self._done = True
                self._cond.notify()

    def _newest(self) -> Iterator[Frame]:
        while batch := self.take(1):
            yield batch[0]

    def wait(self, timeout: float | None = None) -> bool:
        """Live: block until a frame is waiting or the source has ended (then take() does not block);
        False when `timeout` seconds passed with neither."""
        if self._thread is None:
            raise RuntimeError("wait() and take() are for live sources; iterate a file source")
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._pending and not self._done and not self._closed.is_set():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def take(self, limit: int) -> list[Frame]:
        """Live: wait for a frame, then hand out up to `limit` waiting frames, oldest first; [] once ended.

        With a backlog, a consumer that was busy gets the frames it missed as one batch (which the
        detector may pack into one inference) instead of only the newest.
        """
        self.wait()
        with self._cond:
            batch = [self._pending.popleft() for _ in range(min(limit, len(self._pending)))]
        if not batch and self._failure is not None:
            raise self._failure
        return [self._emit(d) for d in batch]

    def take_skipped(self) -> list[Frame]:
        """Live: the frames dropped since the last call (oldest first, at most SKIPPED_KEPT), older than any
        frame `take` hands out next: evidence clips keep every sampled frame though only some are analysed."""
        with self._cond:
            skipped = list(self._skipped)
            self._skipped.clear()
        return [d.frame() for d in skipped]

    def __iter__(self) -> VideoSource:
        return self

    def __next__(self) -> Frame:
        if self._closed.is_set():
            raise StopIteration
        return next(self._frames)

    def close(self) -> None:
        """Stop reading and release the input (a live reader releases it itself once unblocked)."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._thread is None:
            self._input.close()
        else:
            with self._cond:  # wake a consumer waiting in take()
                self._cond.notify_all()
            self._thread.join(JOIN_TIMEOUT)

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_source(
    source: str | int | os.PathLike[str],
    *,
    fps: float | None,
    live: bool | None = None,
    loop: bool = False,
    backlog: int = 1,
    privacy: PrivacyMask | None = None,
) -> VideoSource:
    """Open a video file, an RTSP/HTTP URL or a webcam index (int or digits).

    fps: frames per media second to hand out (None = every frame). live: keep only the newest
    `backlog` frames, dropping older ones (default: streams and webcams, and looped files).
    loop: restart a file at its end, played at real time when live. privacy: zones blacked out of every frame.
    """
    text = str(source)
    is_file = False
    if isinstance(source, int) or text.isdigit():
        index = int(text)
        label = f"webcam {index}"

        def opener(stats: SourceStats) -> _Input:
            return _Webcam(index, stats)

    elif "://" in text:
        label = redact(text)

        def opener(stats: SourceStats) -> _Input:
            return _AvInput(text, label, stats, network=True)

    else:
        path = Path(text)
        if not path.exists():
            hint = " (run `cctv assets` to fetch the sample footage)" if path.parent.name == "sample_videos" else ""
            raise CctvError(f"{text}: file not found{hint}")
        label, is_file = text, True

        def opener(stats: SourceStats) -> _Input:
            return _AvInput(text, label, stats, network=False)

    if loop and not is_file:
        raise CctvError(f"cannot loop {label}: only a video file can be looped")
    live = (not is_file or loop) if live is None else live
    return VideoSource(label, opener, fps, live, loop, is_file, backlog=backlog, privacy=privacy)
