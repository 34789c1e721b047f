"""A simulated camera: a clip's cached detections (`cctv replay --cache`) replayed in real time, looped.

Source `sim://PATH.npz`. Tracking, rules, events, the store, leases and the event stream run as for a
real camera; decoding, inference and evidence do not. One machine can so stand in for a city's
thousands of cameras spread over many nodes, to measure the control plane (`cctv bench-cluster`).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import supervision as sv

from pipeline import detcache
from pipeline.errors import CctvError

SCHEME = "sim://"


def is_simulated(source: str | int) -> bool:
    return isinstance(source, str) and source.startswith(SCHEME)


@dataclass(frozen=True, slots=True)
class SimFrame:
    pts: float  # wall time it is due at
    index: int  # counts on across loops
    detections: sv.Detections | None  # None: the motion gate had skipped the detector there


@functools.lru_cache(maxsize=16)
def _cached(path: Path) -> detcache.CachedRun:
    """One copy per process: a node runs many simulated cameras off the same clip (read-only)."""
    return detcache.load(path)


class SimulatedSource:
    def __init__(self, source: str, fps: float | None) -> None:
        path = Path(source.removeprefix(SCHEME)).resolve()
        try:
            run = _cached(path)
        except (OSError, ValueError, KeyError) as exc:
            raise CctvError(f"simulated camera {source}: not a detection cache ({exc}); make one with cctv replay --cache") from None
        if not run.frames:
            raise CctvError(f"simulated camera {source}: the cache holds no frame")
        step = max(1, round(run.fps / fps)) if fps else 1  # sampled at detect.fps, as a real source would be
        self.frames = run.frames[::step]
        self.fps = run.fps / step
        self.duration = run.frames[-1].pts + 1.0 / run.fps  # one loop
        self.loop_frames = run.frames[-1].index + 1
        self.dropped = 0  # frames skipped because the machine fell behind

    def play(self, stop: threading.Event, offset: float = 0.0) -> Iterator[SimFrame]:
        """Frames at their wall times, looped until `stop`; `offset` seconds into the clip first (so cameras
        replaying one clip are not in step)."""
        start = time.time() - offset
        loop = 0
        while True:
            for frame in self.frames:
                due = start + loop * self.duration + frame.pts
                if due < time.time() - 1.0:  # behind by a second or more (a busy machine): skip, as a stream drops
                    self.dropped += 1
                    continue
                if stop.wait(max(0.0, due - time.time())):
                    return
                yield SimFrame(due, loop * self.loop_frames + frame.index, frame.detections)
            loop += 1
