"""Tracking stage: detections -> tracks that rules may act on.

Two trackers, chosen per camera by `tracker.type` (one tracker runs per class so a label never
changes under a track id):

- `time` (default, `pipeline.timetrack`): motion in media seconds, gates that widen with the gap
  between analysed frames, optional appearance re-identification. It keeps identities when a
  loaded live service analyses only 1.5-2 of a camera's frames per second, irregularly.
- `bytetrack`: Roboflow `trackers`' ByteTrack (chosen in the README on PETS09 at 10 and 5 fps); its
  association is IoU only, so below about 3 fps people move too far between analysed frames and
  come back as new tracks.

On top of either, this stage keeps each track alive through short misses (the trackers output only
the tracks matched in this frame) and applies the per-class object filters, so a single false
detection can never become an event.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import supervision as sv
from trackers import ByteTrackTracker

from pipeline.config import CameraConfig, ObjectFilter, TimeTrackerConfig
from pipeline.reid import Embedder
from pipeline.timetrack import Embed, TimeTracker
from pipeline.types import Box, Track


class TrackStage:
    def __init__(self, cfg: CameraConfig, frame_rate: float) -> None:
        self.cfg = cfg
        self.frame_rate = frame_rate
        self.filters: dict[str, ObjectFilter] = {label: cfg.objects.filter_for(label) for label in cfg.objects.track}
        self.trackers: dict[str, ByteTrackTracker | TimeTracker] = {}
        self.embedder: Embedder | None = None
        self.ids: dict[tuple[str, int], int] = {}  # (label, tracker's own id) -> our id, while alive
        self.last_id = 0
        self.alive: dict[int, Track] = {}
        self.qualified_hits: dict[int, int] = {}  # detections at or above the class's min_score
        self.qualified_since: dict[int, float] = {}  # time of the first of them
        self.confident: dict[int, tuple[Box, float, float]] = {}  # last box, score and time at or above min_score

    def _tracker(self, label: str) -> ByteTrackTracker | TimeTracker:
        if label not in self.trackers:
            t = self.cfg.tracker
            if isinstance(t, TimeTrackerConfig):
                self.trackers[label] = TimeTracker(
                    lost_seconds=t.lost_seconds,
                    activation_score=t.activation_score,
                    high_score=t.high_score,
                    min_frames=t.min_frames,
                    max_speed=t.max_speed,
                    reid_weight=t.reid_weight,
                    reid_refresh_seconds=t.reid_refresh_seconds,
                )
            else:
                self.trackers[label] = ByteTrackTracker(
                    lost_track_buffer=max(1, round(t.lost_seconds * 30)),  # the library counts 30 fps frames
                    frame_rate=self.frame_rate,
                    track_activation_threshold=t.activation_score,
                    minimum_consecutive_frames=t.min_frames,
                    minimum_iou_threshold=t.match_iou,
                    high_conf_det_threshold=t.high_score,
                )
        return self.trackers[label]

    def update(self, detections: sv.Detections, t: float, frame: int, image: np.ndarray | None = None) -> list[Track]:
        """Feed one detected frame; returns every track alive at `t`.

        `image` (the BGR frame) lets the time tracker compute re-identification embeddings when
        `tracker.reid_model` is set; detections may also carry them in `data["embedding"]`.
        """
        labels = detections.data.get("class_name", np.array([], dtype=str))
        for label in self.cfg.objects.track:
            mine = detections[labels == label]
            tracker = self._tracker(label)
            if isinstance(tracker, TimeTracker):
                scores = mine.confidence if mine.confidence is not None else np.ones(len(mine))
                poses = mine.data.get("keypoints")
                for local_id, j in tracker.update(mine.xyxy, scores, t, self._embed(mine, image)):
                    pose = None if poses is None else poses[j]
                    self._sighting(label, local_id, mine.xyxy[j], float(scores[j]), t, frame, pose)
                continue
            tracked = tracker.update(mine, timestamp=t)
            poses = tracked.data.get("keypoints")
            for k, (box, score, local_id) in enumerate(zip(tracked.xyxy, tracked.confidence, tracked.tracker_id)):
                if local_id < 0:
                    continue
                self._sighting(label, int(local_id), box, float(score), t, frame, None if poses is None else poses[k])
        return self.carry(t)

    def _embed(self, detections: sv.Detections, image: np.ndarray | None) -> Embed | None:
        """Embeddings of some of these detections, computed only when the tracker asks; None: motion only."""
        t = self.cfg.tracker
        if not isinstance(t, TimeTrackerConfig) or t.reid_weight <= 0 or not len(detections):
            return None
        carried = detections.data.get("embedding")
        if carried is not None:
            return lambda idx: carried[idx]
        if image is None or t.reid_model is None:
            return None
        if self.embedder is None:
            self.embedder = Embedder(Path(t.reid_model))
        embedder, boxes = self.embedder, detections.xyxy
        done: dict[int, np.ndarray] = {}  # this frame's crops, each embedded once

        def embed(idx: np.ndarray) -> np.ndarray:
            todo = [int(i) for i in idx if int(i) not in done]
            for i, vec in zip(todo, embedder.embed(image, boxes[todo]) if todo else []):
                done[i] = vec
            return np.array([done[int(i)] for i in idx])

        return embed

    def _sighting(
        self, label: str, local_id: int, box: np.ndarray, score: float, t: float, frame: int, pose: np.ndarray | None
    ) -> None:
        if (label, local_id) not in self.ids:
            self.last_id += 1
            self.ids[(label, local_id)] = self.last_id
        track_id = self.ids[(label, local_id)]
        xyxy = (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
        track = self.alive.get(track_id)
        if track is None:
            self.alive[track_id] = Track(track_id, label, xyxy, score, t, t, frame, 1, pose)
        else:
            track.box, track.score, track.last_seen, track.last_frame = xyxy, score, t, frame
            track.hits, track.keypoints = track.hits + 1, pose
        if score >= self.filters[label].min_score:
            self.qualified_hits[track_id] = self.qualified_hits.get(track_id, 0) + 1
            self.qualified_since.setdefault(track_id, t)
            self.confident[track_id] = (xyxy, score, t)

    def carry(self, t: float) -> list[Track]:
        """Tracks alive at `t` without a new detection (frames the motion gate skipped)."""
        lost = [tid for tid, tr in self.alive.items() if t - tr.last_seen > self.cfg.tracker.lost_seconds]
        for tid in lost:
            del self.alive[tid]
            self.ids = {key: value for key, value in self.ids.items() if value != tid}
            self.qualified_hits.pop(tid, None)
            self.qualified_since.pop(tid, None)
            self.confident.pop(tid, None)
        expected = {
            self.ids[(label, local_id)]: box
            for label, tracker in self.trackers.items() if isinstance(tracker, TimeTracker)
            for local_id, box in tracker.expected(t).items() if (label, local_id) in self.ids
        }
        for tid, track in self.alive.items():
            box = expected.get(tid) if track.last_seen < t else None
            track.expected = None if box is None else (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
        return list(self.alive.values())

    def _persistent(self, track: Track) -> bool:
        """Seen (at the class's min_score) `persistence` times, or twice `persistence_seconds` apart."""
        f = self.filters[track.label]
        hits = self.qualified_hits.get(track.track_id, 0)
        if hits >= (f.persistence or 1):
            return True
        if f.persistence_seconds is None or hits < 2:
            return False
        last = self.confident[track.track_id][2]
        return last - self.qualified_since[track.track_id] >= f.persistence_seconds - 1e-6

    def eligible(self, tracks: list[Track]) -> list[Track]:
        """Tracks that pass their class's filters and may trigger rules.

        Rules see each track where it was last detected with confidence: low-score detections
        keep a track alive through occlusion, but must not move it (a track that drifts onto a
        sign by a line would otherwise "cross" it back and forth).
        """
        out = []
        for track in tracks:
            if not self._persistent(track):
                continue
            f = self.filters[track.label]
            box, score, _ = self.confident[track.track_id]
            area = (box[2] - box[0]) * (box[3] - box[1])
            if area < f.min_area or (f.max_area is not None and area > f.max_area):
                continue
            out.append(replace(track, box=box, score=score))
        return out
