"""H.264 MP4 writing through PyAV/libx264 (OpenCV's writer cannot produce H.264 here).

The index goes at the front (+faststart) so browsers can seek, and the file is written under a
temporary name and renamed when complete: a video is either whole or absent.
"""

from __future__ import annotations

import io
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

TIME_BASE = Fraction(1, 1000)  # every stream here counts milliseconds


def _frame(image: np.ndarray, width: int, height: int, t: float, last_pts: int) -> av.VideoFrame:
    """A BGR image as a frame at `t` seconds, cropped to the even size H.264 needs, its pts rising."""
    frame = av.VideoFrame.from_ndarray(image[:height, :width], format="bgr24")
    frame.pts, frame.time_base = max(last_pts + 1, round(t * 1000)), TIME_BASE
    return frame


class _Mp4File:
    """An MP4 being written under a temporary name (index at the front), renamed when complete."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.part")
        self.container = av.open(str(self.tmp), mode="w", format="mp4", options={"movflags": "+faststart"})
        self.done = False  # closed and renamed: abort() leaves it

    def _flush(self) -> None:
        """What is still buffered, written before the file is closed."""

    def close(self) -> None:
        """Finish the file; if that fails (a full disk), nothing is left of it and the error is raised."""
        try:
            self._flush()
            self.container.close()
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise
        os.replace(self.tmp, self.path)
        self.done = True

    def abort(self) -> None:
        """Drop a half-written file (on error or interruption), even when closing it fails as its writes did."""
        if self.done:
            return
        try:
            self.container.close()
        except OSError:  # a full disk: flushing what was buffered fails, and the file goes anyway
            pass
        finally:
            self.tmp.unlink(missing_ok=True)


class H264Writer(_Mp4File):
    """Writes BGR frames with their media timestamps; call close() to finish the file."""

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: float,
        crf: int = 23,
        tune: str | None = None,
        preset: str = "veryfast",
        threads: int = 0,
    ) -> None:
        """tune: x264's tune, e.g. "zerolatency" for many concurrent writers (no lookahead buffers to hold);
        threads: encoder threads (0: x264 chooses, about 1.5 per core)."""
        super().__init__(path)
        self.stream = self.container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        self.stream.width, self.stream.height = width - width % 2, height - height % 2
        self.stream.pix_fmt = "yuv420p"
        self.stream.codec_context.time_base = TIME_BASE
        self.stream.options = {"crf": str(crf), "preset": preset} | ({"tune": tune} if tune else {})
        if threads:
            self.stream.codec_context.thread_count = threads
        self.last_pts = -1

    def write(self, image: np.ndarray, t: float) -> None:
        """Append a frame shown at media time `t` (seconds)."""
        frame = _frame(image, self.stream.width, self.stream.height, t, self.last_pts)
        self.last_pts = frame.pts
        self.container.mux(self.stream.encode(frame))

    def _flush(self) -> None:
        self.container.mux(self.stream.encode(None))


class H264Encoder:
    """Frames encoded once into H.264 packets held in memory (Annex B, no container): one encoding that any
    number of `PacketWriter`s copy into their files. x264 `ultrafast`/`zerolatency` on one thread, so each
    frame's packet comes out at once; a keyframe at the first frame and every `keyframe_seconds` after,
    where a copy may begin."""

    def __init__(self, width: int, height: int, keyframe_seconds: float = 1.0, crf: int = 23) -> None:
        self.width, self.height = width - width % 2, height - height % 2
        self.codec = av.CodecContext.create("libx264", "w")
        self.codec.width, self.codec.height, self.codec.pix_fmt = self.width, self.height, "yuv420p"
        self.codec.time_base = TIME_BASE
        self.codec.gop_size = 10_000  # keyframes are forced by time: sampled rates vary
        self.codec.thread_count = 1
        self.codec.options = {"crf": str(crf), "preset": "ultrafast", "tune": "zerolatency", "forced-idr": "1"}
        self.keyframe_seconds = keyframe_seconds
        self.last_key: float | None = None
        self.last_pts = -1

    def encode(self, image: np.ndarray, t: float) -> list[av.Packet]:
        """The packets of a frame shown at time `t` (seconds, rising)."""
        frame = _frame(image, self.width, self.height, t, self.last_pts)
        if self.last_key is None or t - self.last_key >= self.keyframe_seconds - 1e-6:
            frame.pict_type = av.video.frame.PictureType.I
            self.last_key = t
        self.last_pts = frame.pts
        return list(self.codec.encode(frame))


class PacketWriter(_Mp4File):
    """An MP4 file of packets copied from an `H264Encoder` (no second encoding), its time 0 at the first packet.

    Its stream is made from the first packet (a keyframe, which carries the SPS and PPS), so no encoder is
    opened for it: a stream added by codec name would open an idle libx264 of its own (4 threads, about
    7 MB at 1080p) per file, two files per open clip, and a live site holds tens of clips open."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self.stream: av.video.stream.VideoStream | None = None
        self.origin = 0  # the first packet's pts: the file's time 0

    def write(self, packet: av.Packet) -> None:
        if self.stream is None:
            if not packet.is_keyframe:
                raise ValueError("PacketWriter: the first packet must be a keyframe")
            self.stream = _stream_like(packet, self.container)
            self.origin = packet.pts
        copy = av.Packet(bytes(packet))
        copy.pts = copy.dts = packet.pts - self.origin  # no B-frames: decoding order is display order
        copy.time_base, copy.is_keyframe, copy.stream = TIME_BASE, packet.is_keyframe, self.stream
        self.container.mux(copy)


def _stream_like(keyframe: av.Packet, container: av.container.OutputContainer) -> av.video.stream.VideoStream:
    """A stream of `container` for the H.264 stream this keyframe starts: its parameters are read from the
    keyframe's own SPS and PPS (parsed as raw H.264), and no encoder is opened for it."""
    with av.open(io.BytesIO(bytes(keyframe)), format="h264") as source:
        stream = container.add_stream_from_template(source.streams.video[0])
    stream.time_base = TIME_BASE
    return stream
