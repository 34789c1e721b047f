"""H.264 MP4 writing through PyAV/libx264 (OpenCV's writer cannot produce H.264 here).

The index goes at the front (+faststart) so browsers can seek, and the file is written under a
temporary name and renamed when complete: a video is either whole or absent.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


class H264Writer:
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
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.part")
        self.container = av.open(str(self.tmp), mode="w", format="mp4", options={"movflags": "+faststart"})
        self.stream = self.container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        self.stream.width, self.stream.height = width - width % 2, height - height % 2
        self.stream.pix_fmt = "yuv420p"
        self.stream.codec_context.time_base = Fraction(1, 1000)
        self.stream.options = {"crf": str(crf), "preset": preset} | ({"tune": tune} if tune else {})
        if threads:
            self.stream.codec_context.thread_count = threads
        self.last_pts = -1
        self.done = False  # closed and renamed: abort() leaves it

    def write(self, image: np.ndarray, t: float) -> None:
        """Append a frame shown at media time `t` (seconds)."""
        frame = av.VideoFrame.from_ndarray(image[: self.stream.height, : self.stream.width], format="bgr24")
        frame.pts = max(self.last_pts + 1, round(t * 1000))
        frame.time_base = self.stream.codec_context.time_base
        self.last_pts = frame.pts
        self.container.mux(self.stream.encode(frame))

    def close(self) -> None:
        """Finish the file; if that fails (a full disk), nothing is left of it and the error is raised."""
        try:
            self.container.mux(self.stream.encode(None))
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
