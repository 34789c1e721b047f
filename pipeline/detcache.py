"""Raw detections of a replay, cached per video and model so threshold sweeps need no detector run.

The key is the video's SHA-256, the model files' SHA-256 and the settings that change what the
detector is asked (detect, motion, tracked classes). Tracking, filters and rules are not in it:
those are what a sweep varies.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import supervision as sv

from pipeline.config import CameraConfig


@dataclass
class CachedRun:
    fps: float  # the source's frame rate
    frames: list[CachedFrame]


@dataclass
class CachedFrame:
    index: int
    pts: float
    detections: sv.Detections | None  # None: the motion gate skipped the detector


def _sha256(path: Path, h: hashlib._Hash | None = None) -> hashlib._Hash:
    h = h or hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h


def cache_key(video: str | Path, model_path: str | Path, cam: CameraConfig) -> str:
    h = _sha256(Path(video))
    model = Path(model_path)
    for file in sorted(model.iterdir()) if model.is_dir() else [model]:
        _sha256(file, h)
    settings = {"detect": cam.detect.model_dump(), "motion": cam.motion.model_dump(), "track": cam.objects.track}
    if cam.privacy_zones and not cam.privacy_detect:  # the detector saw them black
        settings["privacy_zones"] = cam.privacy_zones
    h.update(json.dumps(settings, sort_keys=True).encode())
    return h.hexdigest()[:24]


def save(path: Path, run: CachedRun) -> None:
    """One compressed .npz: per-frame index, time and detection counts, then all boxes flat."""
    frames = run.frames
    found = [f.detections for f in frames if f.detections is not None and len(f.detections)]

    def flat(get: Callable[[sv.Detections], np.ndarray], empty: np.ndarray) -> np.ndarray:
        return np.concatenate([get(d) for d in found]) if found else empty

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part.npz")
    np.savez_compressed(
        tmp,
        fps=np.float64(run.fps),
        index=np.array([f.index for f in frames], np.int64),
        pts=np.array([f.pts for f in frames], np.float64),
        count=np.array([-1 if f.detections is None else len(f.detections) for f in frames], np.int64),
        xyxy=flat(lambda d: d.xyxy, np.empty((0, 4))).astype(np.float32),
        confidence=flat(lambda d: d.confidence, np.empty(0)).astype(np.float32),
        class_id=flat(lambda d: d.class_id, np.empty(0)).astype(np.int64),
        class_name=flat(lambda d: d.data["class_name"], np.empty(0, dtype=str)).astype(str),
    )
    tmp.replace(path)


def load(path: Path) -> CachedRun:
    with np.load(path) as npz:
        z = {name: npz[name] for name in npz.files}  # each access of an NpzFile reads and inflates the array again
    offsets = np.concatenate([[0], np.cumsum(np.maximum(z["count"], 0))])
    frames = []
    for k, (index, pts, count) in enumerate(zip(z["index"], z["pts"], z["count"])):
        detections = None
        if count >= 0:
            sl = slice(offsets[k], offsets[k + 1])
            detections = sv.Detections(
                xyxy=z["xyxy"][sl],
                confidence=z["confidence"][sl],
                class_id=z["class_id"][sl],
                data={"class_name": z["class_name"][sl]},
            )
        frames.append(CachedFrame(int(index), float(pts), detections))
    return CachedRun(float(z["fps"]), frames)
