"""Ground-truth events: MOTChallenge ground-truth tracks run through the same rules as the engine.

The truth tracks get the engine's "alive" semantics: an id missing from a few frames keeps its
last box and is lost only once unseen for longer than `lost_seconds`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import CameraConfig
from pipeline.engine import CameraRun
from pipeline.events import EventCollector
from pipeline.types import Track


def mot_tracks(
    path: str | Path, fps: float, label: str = "person", lost_seconds: float = 1.5
) -> Iterator[tuple[float, int, list[Track]]]:
    """(t, video frame index, alive tracks) for every frame up to the last annotated one.

    Rows with `consider=0` (people too far away to matter) are dropped. Each yielded track is
    a fresh object, never changed afterwards.
    """
    rows = np.loadtxt(path, delimiter=",", ndmin=2)
    rows = rows[rows[:, 6] != 0]
    frames = rows[:, 0].astype(int) - 1  # MOT frame f is video frame f - 1
    alive: dict[int, Track] = {}
    for frame in range(int(frames.max()) + 1 if len(rows) else 0):
        t = frame / fps
        for _, track_id, x, y, w, h, *_ in rows[frames == frame]:
            tid = int(track_id)
            old = alive.get(tid)
            alive[tid] = Track(
                track_id=tid,
                label=label,
                box=(float(x), float(y), float(x + w), float(y + h)),
                score=1.0,
                first_seen=old.first_seen if old else t,
                last_seen=t,
                last_frame=frame,
                hits=old.hits + 1 if old else 1,
            )
        alive = {tid: tr for tid, tr in alive.items() if t - tr.last_seen <= lost_seconds}
        yield t, frame, list(alive.values())


def events_from_mot(path: str | Path, cfg: CameraConfig, camera: str, fps: float) -> list[dict[str, Any]]:
    """The finished events the camera's rules give on the ground truth, as `events.jsonl` records."""
    collector = EventCollector()
    with CameraRun(camera, cfg, fps=fps, subscribers=[collector]) as run:
        for t, frame, tracks in mot_tracks(path, fps, lost_seconds=cfg.tracker.lost_seconds):
            run.apply(t, frame, tracks)
    return [e.to_dict() for e in collector.sorted()]
