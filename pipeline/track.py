"""Tracking stage: detections -> tracks that rules may act on.

ByteTrack from Roboflow's `trackers` package does the association (chosen by measurement on
PETS09-S2L1, see the README). One tracker runs per class so a label never changes under a
track id. On top of it this stage keeps each track alive through short misses (the tracker
outputs only the tracks matched in this frame), and applies the per-class object filters so a
single false detection can never become an event.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import supervision as sv
from trackers import ByteTrackTracker

from pipeline.config import CameraConfig, ObjectFilter
from pipeline.types import Box, Track


class TrackStage:
    def __init__(self, cfg: CameraConfig, frame_rate: float) -> None:
        self.cfg = cfg
        self.frame_rate = frame_rate
        self.filters: dict[str, ObjectFilter] = {label: cfg.objects.filter_for(label) for label in cfg.objects.track}
        self.trackers: dict[str, ByteTrackTracker] = {}
        self.ids: dict[tuple[str, int], int] = {}  # (label, tracker's own id) -> our id, while alive
        self.last_id = 0
        self.alive: dict[int, Track] = {}
        self.qualified_hits: dict[int, int] = {}  # detections at or above the class's min_score
        self.confident: dict[int, tuple[Box, float]] = {}  # last box and score at or above min_score

    def _tracker(self, label: str) -> ByteTrackTracker:
        if label not in self.trackers:
            t = self.cfg.tracker
            self.trackers[label] = ByteTrackTracker(
                lost_track_buffer=max(1, round(t.lost_seconds * 30)),  # the library counts 30 fps frames
                frame_rate=self.frame_rate,
                track_activation_threshold=t.activation_score,
                minimum_consecutive_frames=t.min_frames,
                minimum_iou_threshold=t.match_iou,
                high_conf_det_threshold=t.high_score,
            )
        return self.trackers[label]

    def update(self, detections: sv.Detections, t: float, frame: int) -> list[Track]:
        """Feed one detected frame; returns every track alive at `t`."""
        labels = detections.data.get("class_name", np.array([], dtype=str))
        for label in self.cfg.objects.track:
            tracked = self._tracker(label).update(detections[labels == label], timestamp=t)
            for box, score, local_id in zip(tracked.xyxy, tracked.confidence, tracked.tracker_id):
                if local_id < 0:
                    continue
                self._sighting(label, int(local_id), box, float(score), t, frame)
        return self.carry(t)

    def _sighting(self, label: str, local_id: int, box: np.ndarray, score: float, t: float, frame: int) -> None:
        if (label, local_id) not in self.ids:
            self.last_id += 1
            self.ids[(label, local_id)] = self.last_id
        track_id = self.ids[(label, local_id)]
        xyxy = (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
        track = self.alive.get(track_id)
        if track is None:
            self.alive[track_id] = Track(track_id, label, xyxy, score, t, t, frame, 1)
        else:
            track.box, track.score, track.last_seen, track.last_frame = xyxy, score, t, frame
            track.hits += 1
        if score >= self.filters[label].min_score:
            self.qualified_hits[track_id] = self.qualified_hits.get(track_id, 0) + 1
            self.confident[track_id] = (xyxy, score)

    def carry(self, t: float) -> list[Track]:
        """Tracks alive at `t` without a new detection (frames the motion gate skipped)."""
        lost = [tid for tid, tr in self.alive.items() if t - tr.last_seen > self.cfg.tracker.lost_seconds]
        for tid in lost:
            del self.alive[tid]
            self.ids = {key: value for key, value in self.ids.items() if value != tid}
            self.qualified_hits.pop(tid, None)
            self.confident.pop(tid, None)
        return list(self.alive.values())

    def eligible(self, tracks: list[Track]) -> list[Track]:
        """Tracks that pass their class's filters and may trigger rules.

        Rules see each track where it was last detected with confidence: low-score detections
        keep a track alive through occlusion, but must not move it (a track that drifts onto a
        sign by a line would otherwise "cross" it back and forth).
        """
        out = []
        for track in tracks:
            f = self.filters[track.label]
            if self.qualified_hits.get(track.track_id, 0) < (f.persistence or 1):
                continue
            box, score = self.confident[track.track_id]
            area = (box[2] - box[0]) * (box[3] - box[1])
            if area < f.min_area or (f.max_area is not None and area > f.max_area):
                continue
            out.append(replace(track, box=box, score=score))
        return out
