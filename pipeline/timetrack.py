"""A small multi-object tracker that measures motion in media seconds, not in frames.

Live cameras analyse frames at an irregular rate (the shared detector drops frames under load),
so the gap between two analysed frames varies from 0.1 s to over a second. This tracker:

- predicts each track with a constant-velocity Kalman filter stepped by the real gap `dt`, its
  noise in units of the box height `h` (so near and far people are alike) and growing with `dt`;
- gates a detection by the Mahalanobis distance of its centre and height from the prediction, so
  the gate widens exactly as much as the gap makes the track uncertain (a new track, whose speed
  is unknown, has a wide gate; a long, steady track a narrow one), and by a walking reach
  (`h * (1 + max_speed * seconds unseen)`) so a lost track's gate cannot grow without bound;
- associates every detection in one Hungarian assignment on gated distance + (1 - IoU) +
  (1 - score), so an occluded person's weak detection can keep its track when a confident
  neighbour is nearby (ByteTrack's two passes would give the confident one away first); weak
  detections (below `high_score`) only extend confirmed tracks, and only confident ones
  (`activation_score`) start tracks;
- keeps a confirmed track for `lost_seconds` of media time, however few frames were analysed
  in it, and only drops it after a frame has looked for it (a long gap loses nothing by itself);
- adds appearance distance (re-identification embeddings, when the detections carry them) where
  motion is ambiguous: a detection within the gate of two tracks, or a track's gate holding two
  detections. Embeddings are asked for lazily, only for those detections and for refreshing the
  confirmed tracks' appearance, so their cost is counted in `embedded`.

One tracker runs per class (see `pipeline.track`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from pipeline.geometry import ious

GATE_CHI2 = 20.0  # squared Mahalanobis distance (centre x, y and height: 3 degrees of freedom)
LARGE = 1e6

Embed = Callable[[np.ndarray], np.ndarray]  # detection indices -> unit embeddings (len, D)


@dataclass(frozen=True, slots=True)
class MotionModel:
    """Noise of the constant-velocity model, relative to the box height h (pixels).

    Chosen by IDF1 on PETS09-S2L1 at 10, 2 and 1.5 fps and with random frame drops (STUDY.md).
    """

    measure: float = 0.06  # detector jitter of centre and size, std in h
    accel: float = 0.5  # unmodelled acceleration, std in h / s^2
    speed: float = 0.6  # speed of a new track, std in h / s (PETS09 pedestrians: median 0.5 h/s)
    size: float = 0.05  # random walk of width and height, std in h / sqrt(s)


@dataclass(slots=True)
class _Tracklet:
    local_id: int
    x: np.ndarray  # [cx, cy, w, h, vx, vy]
    P: np.ndarray  # 6 x 6 covariance
    t: float  # media time of the state
    last_seen: float
    box: np.ndarray  # last detected box
    hits: int = 1
    confirmed: bool = False
    embedding: np.ndarray | None = None  # running mean of appearance, unit length
    embedded_at: float = float("-inf")

    @property
    def predicted_box(self) -> np.ndarray:
        cx, cy, w, h = self.x[:4]
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def _xywh(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) x1, y1, x2, y2 -> (N, 4) centre x, centre y, width, height."""
    b = np.asarray(boxes, dtype=float).reshape(-1, 4)
    return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)


H = np.hstack([np.eye(4), np.zeros((4, 2))])  # observation: centre x, centre y, width, height
GATED = np.array([0, 1, 3])  # centre and height gate a match; the width (arms, bags) only follows


class TimeTracker:
    """Tracks of one class; `update` once per analysed frame with that frame's media time."""

    def __init__(
        self,
        lost_seconds: float = 1.5,
        activation_score: float = 0.65,
        high_score: float = 0.5,
        min_frames: int = 2,
        max_speed: float = 1.0,
        reid_weight: float = 2.0,
        reid_refresh_seconds: float = 0.0,
        motion: MotionModel | None = None,
    ) -> None:
        """max_speed: box heights per second a track may move while unseen; reid_weight: weight of
        appearance distance in ambiguous matches (0: motion only); reid_refresh_seconds: how often a
        confirmed track's appearance is refreshed (0: whenever it is seen)."""
        self.lost_seconds = lost_seconds
        self.activation_score = activation_score
        self.high_score = high_score
        self.min_frames = min_frames
        self.max_speed = max_speed
        self.reid_weight = reid_weight
        self.reid_refresh_seconds = reid_refresh_seconds
        self.motion = motion or MotionModel()
        self.tracks: list[_Tracklet] = []
        self.next_id = 1
        self.embedded = 0  # embeddings asked for: what re-identification costs

    # --- Kalman -----------------------------------------------------------------------------------

    def _new(self, box: np.ndarray, t: float) -> _Tracklet:
        """A track first seen at `box`: standing still, with an unknown speed."""
        z = _xywh(box)[0]
        h = max(z[3], 1.0)
        m = self.motion
        P = np.diag([(m.measure * h) ** 2] * 4 + [(m.speed * h) ** 2] * 2)
        track = _Tracklet(self.next_id, np.concatenate([z, [0.0, 0.0]]), P, t, t, box.copy())
        self.next_id += 1
        return track

    def expected(self, t: float) -> dict[int, np.ndarray]:
        """Where the motion model puts each confirmed track at `t` (local id -> box); no state changes."""
        out = {}
        for track in self.tracks:
            if track.confirmed:
                cx, cy, w, h, vx, vy = track.x
                cx, cy = cx + vx * (t - track.t), cy + vy * (t - track.t)
                out[track.local_id] = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        return out

    def _predict(self, track: _Tracklet, t: float) -> None:
        dt = t - track.t
        if dt <= 0:
            return
        h = max(track.x[3], 1.0)
        m = self.motion
        F = np.eye(6)
        F[0, 4] = F[1, 5] = dt
        qa = (m.accel * h) ** 2  # white-noise acceleration, integrated over dt
        Q = np.zeros((6, 6))
        for p, v in ((0, 4), (1, 5)):
            Q[p, p] = qa * dt**4 / 4
            Q[p, v] = Q[v, p] = qa * dt**3 / 2
            Q[v, v] = qa * dt**2
        Q[2, 2] = Q[3, 3] = (m.size * h) ** 2 * dt
        track.x = F @ track.x
        track.P = F @ track.P @ F.T + Q
        track.t = t

    def _correct(self, track: _Tracklet, box: np.ndarray, t: float) -> None:
        R = np.eye(4) * (self.motion.measure * max(track.x[3], 1.0)) ** 2
        S = H @ track.P @ H.T + R
        K = track.P @ H.T @ np.linalg.inv(S)
        track.x = track.x + K @ (_xywh(box)[0] - H @ track.x)
        track.P = (np.eye(6) - K @ H) @ track.P
        track.last_seen, track.box = t, box.copy()
        track.hits += 1

    # --- association ------------------------------------------------------------------------------

    def _gate(self, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Squared Mahalanobis distances (tracks x detections) and which pairs are inside both gates."""
        d2 = np.full((len(self.tracks), len(boxes)), LARGE)
        z = _xywh(boxes)
        for i, track in enumerate(self.tracks):
            h = max(track.x[3], 1.0)
            S = track.P[np.ix_(GATED, GATED)] + np.eye(3) * (self.motion.measure * h) ** 2
            diff = z[:, GATED] - track.x[GATED]
            d2[i] = np.einsum("nj,jk,nk->n", diff, np.linalg.inv(S), diff)
            reach = h * (1.0 + self.max_speed * (track.t - track.last_seen))
            d2[i, np.hypot(*(z[:, :2] - _xywh(track.box)[0, :2]).T) > reach] = LARGE
        return d2, d2 <= GATE_CHI2

    def _assign(self, boxes: np.ndarray, scores: np.ndarray, embed: Embed | None) -> list[tuple[int, int]]:
        """(track index, detection index) pairs of the best gated assignment."""
        if not self.tracks or not len(boxes):
            return []
        d2, gated = self._gate(boxes)
        tentative = np.array([not tr.confirmed for tr in self.tracks])
        gated &= ~(tentative[:, None] & (scores < self.high_score)[None, :])
        iou = ious(np.array([tr.predicted_box for tr in self.tracks]), boxes)
        cost = np.where(gated, d2 / GATE_CHI2 + (1.0 - iou) + (1.0 - scores)[None, :], LARGE)
        if embed is not None and self.reid_weight > 0:
            cost = self._appearance(cost, gated, embed)
        rows, cols = linear_sum_assignment(cost)
        return [(int(r), int(c)) for r, c in zip(rows, cols) if cost[r, c] < LARGE]

    def _appearance(self, cost: np.ndarray, gated: np.ndarray, embed: Embed) -> np.ndarray:
        """Appearance distance added where a row or a column of the gate holds more than one candidate."""
        has = np.array([tr.embedding is not None for tr in self.tracks])
        cells = gated & has[:, None] & ((gated.sum(axis=1) > 1)[:, None] | (gated.sum(axis=0) > 1)[None, :])
        cols = np.flatnonzero(cells.any(axis=0))
        if not len(cols):
            return cost
        emb = self._embed(embed, cols)
        cost = cost.copy()
        for k, j in enumerate(cols):
            for i in np.flatnonzero(cells[:, j]):
                cost[i, j] += self.reid_weight * (1.0 - float(self.tracks[i].embedding @ emb[k]))
        return cost

    def _embed(self, embed: Embed, idx: np.ndarray) -> np.ndarray:
        self.embedded += len(idx)
        return embed(np.asarray(idx, dtype=int))

    def _refresh(self, seen: list[tuple[_Tracklet, int]], t: float, embed: Embed) -> None:
        """Update the appearance of the confirmed tracks seen now (at most every `reid_refresh_seconds`)."""
        due = [(tr, j) for tr, j in seen if tr.confirmed and t - tr.embedded_at >= self.reid_refresh_seconds]
        if not due:
            return
        for (track, _), e in zip(due, self._embed(embed, np.array([j for _, j in due]))):
            mean = e if track.embedding is None else 0.8 * track.embedding + 0.2 * e
            track.embedding = mean / (np.linalg.norm(mean) + 1e-12)
            track.embedded_at = t

    # --- one frame --------------------------------------------------------------------------------

    def update(
        self, boxes: np.ndarray, scores: np.ndarray, t: float, embed: Embed | None = None
    ) -> list[tuple[int, int]]:
        """Associate one frame's detections; returns (track id, detection index) of the confirmed tracks seen."""
        boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
        scores = np.asarray(scores, dtype=float).reshape(-1)
        for track in self.tracks:
            self._predict(track, t)
        pairs = self._assign(boxes, scores, embed)
        seen = [(self.tracks[i], j) for i, j in pairs]
        for track, j in seen:
            self._correct(track, boxes[j], t)
            track.confirmed = track.confirmed or track.hits >= self.min_frames
        # Tentative tracks must be seen in consecutive analysed frames (as in ByteTrack); confirmed
        # ones are dropped once unseen for `lost_seconds`.
        kept = {id(tr) for tr, _ in seen}
        self.tracks = [
            tr for tr in self.tracks if id(tr) in kept or (tr.confirmed and t - tr.last_seen <= self.lost_seconds)
        ]
        used = {j for _, j in pairs}
        for j in np.flatnonzero(scores >= self.activation_score):
            if int(j) not in used:
                track = self._new(boxes[j], t)
                track.confirmed = self.min_frames <= 1
                self.tracks.append(track)
                seen.append((track, int(j)))
        if embed is not None and self.reid_weight > 0:
            self._refresh(seen, t, embed)
        return [(tr.local_id, j) for tr, j in seen if tr.confirmed]
