"""Falls (쓰러짐) from body pose: a person goes from upright to lying or collapsed and stays down.

    {name: person-down, type: fall, zone: plaza, min_seconds: 1}

Each person's sightings carry 17 COCO keypoints (the pose model runs for people on cameras with a
fall rule). Every feature is on timestamps (speeds per second, windows in seconds), so the analysed
rate may change and frames may arrive with irregular gaps; lengths are divided by a size of the
same person (body length = the largest box side over the last seconds, and the person's own
upright torso length), so no threshold depends on camera distance or resolution.

1. DESCENT: the torso centre (mid-point of shoulder-mid and hip-mid) drops by at least
   `drop_frac` (0.30) body lengths within `descent_window_s` (1.5 s), the drop having ended
   within the last `descent_window_s` and the person still at least half-way down. Sitting
   down (~0.2), bending (~0.1) and lying down slowly (drop spread over seconds) stay below it.
2. DOWN: the shoulders are at most `down_extent` (0.5) x the person's upright torso length
   above the hips: lying across the image, or along the camera axis (torso foreshortened). Pose
   is required: a box alone is never "down".
3. The alarm starts at a sighting, at least `min_seconds` after the first down sighting since
   the descent began, that is still down; an UPRIGHT sighting in between (torso within
   `upright_angle_deg` of vertical, box at least 1.3x taller than wide and at least
   `upright_height_frac` of the upright height) cancels. No alarm on absence: a person who
   walks out of view is not a fall. It carries `fell_at`, the first sighting past the middle of
   the descent; it ends when the person is upright again, or lost.
4. One alarm per person and fall; the track re-arms after being upright for `rearm_s`.
Identity guards (trackers swap or drop people exactly when a box turns from tall to wide): a step
where the body length changes by more than `jump_factor` or the torso centre moves faster than
`max_speed` body lengths/s clears the history (someone else's); a new track whose box lies mostly
inside the last box of a track lost within `relink_s` inherits its history.
Measured on the GMDCSA24 fall clips and the negative footage (README).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from pipeline.config import FallRule
from pipeline.geometry import in_zone
from pipeline.rules.base import EPS, Alarm, RuleHit, Scene, hit, track_alarm, wants

VIS = 0.3  # keypoint visibility needed to use a keypoint
L_SH, R_SH, L_HIP, R_HIP = 5, 6, 11, 12
LIMBS = (7, 8, 9, 10, 13, 14, 15, 16)  # elbows, wrists, knees, ankles


def torso(k: np.ndarray, vis: float = VIS) -> tuple[np.ndarray, np.ndarray] | None:
    """(shoulder-mid, hip-mid) from the visible shoulders / hips, or None."""
    sv = k[[L_SH, R_SH], 2] >= vis
    hv = k[[L_HIP, R_HIP], 2] >= vis
    if not sv.any() or not hv.any():
        return None
    return k[[L_SH, R_SH]][sv, :2].mean(0), k[[L_HIP, R_HIP]][hv, :2].mean(0)


def torso_angle_deg(s: np.ndarray, h: np.ndarray) -> float:
    """Angle of the hip->shoulder vector from image vertical (0 upright, 90 lying, 180 head down)."""
    d = s - h
    return float(np.degrees(np.arctan2(abs(d[0]), -d[1])))


# ----------------------------------------------------------------------------------------- fall

@dataclass(frozen=True)
class FallParams:
    min_seconds: float = 1.0  # rule: person stays down this long before the alarm
    drop_frac: float = 0.30  # torso centre descends >= this x body length ...
    descent_window_s: float = 1.5  # ... within this many seconds
    down_extent: float = 0.5  # down: shoulders at most this x (upright torso length) above the hips
    upright_angle_deg: float = 30.0  # upright: torso within this of vertical, box tall (h >= 1.3 w) and
    upright_height_frac: float = 0.75  # at least this x upright height
    rearm_s: float = 2.0  # upright this long before the same person can fall again
    history_s: float = 4.0  # body length / upright height from the last seconds
    jump_factor: float = 2.0  # body length changing more than this between two sightings = identity switch
    max_speed: float = 3.0  # torso centre faster than this (body lengths / s) = identity switch
    relink_s: float = 1.0  # a new track on the box of a track lost at most this long ago continues it


@dataclass
class _FallSample:
    t: float
    cy: float | None  # torso centre y (None when shoulders or hips are not seen)
    cx: float | None
    length: float  # max(box h, box w): body length whatever the orientation
    h: float
    w: float
    angle: float | None
    torso_len: float | None = None
    extent: float | None = None  # hip y - shoulder y: how far the shoulders are above the hips


@dataclass
class _FallTrack:
    hist: deque = field(default_factory=deque)
    state: str = "idle"  # idle | pending | fallen
    t_down: float = 0.0
    fell_at: float = 0.0
    drop: float = 0.0
    upright_since: float | None = None
    last_seen: float = 0.0
    last_box: np.ndarray | None = None
    last_down: float | None = None
    relinked: bool = False  # its history came from a lost track: the next sighting is not checked for a swap


class FallWatch:
    """The `fall` rule: each person's recent pose, and their falls; see the module docstring."""

    def __init__(self, rule: FallRule, zone: np.ndarray | None, params: FallParams | None = None) -> None:
        """zone: the rule's polygon (the fallen person's bottom-centre point must be inside)."""
        self.rule = rule
        self.zone = zone
        self.p = params or FallParams(min_seconds=rule.min_seconds)
        self.tracks: dict[int, _FallTrack] = {}
        self.open: dict[int, Alarm] = {}  # track id -> its fall's open alarm

    def _sample(self, t: float, box: np.ndarray, k: np.ndarray) -> _FallSample:
        w, h = float(box[2] - box[0]), float(box[3] - box[1])
        tr = torso(k)
        if tr is None:
            return _FallSample(t, None, None, max(w, h), h, w, None)
        s, hp = tr
        return _FallSample(t, float(s[1] + hp[1]) / 2, float(s[0] + hp[0]) / 2, max(w, h), h, w, torso_angle_deg(s, hp),
                           float(np.hypot(*(s - hp))), float(hp[1] - s[1]))

    def upright_height(self, st: _FallTrack) -> float | None:
        """Second-largest box height among upright sightings (one glitch box does not count)."""
        hs = sorted(x.h for x in st.hist if self._is_upright_shape(x))
        return hs[-2] if len(hs) >= 2 else None

    def upright_torso(self, st: _FallTrack) -> float | None:
        """Longest torso among upright sightings (standing is when the torso looks longest)."""
        ls = [x.torso_len for x in st.hist if x.torso_len is not None and self._is_upright_shape(x)]
        return max(ls) if ls else None

    def _is_upright_shape(self, x: _FallSample) -> bool:
        return (x.angle is None or x.angle <= self.p.upright_angle_deg) and x.h >= 1.3 * x.w

    def classify(self, st: _FallTrack, x: _FallSample) -> tuple[bool, bool]:
        """(down, upright) for the newest sample, relative to this track's own history."""
        p = self.p
        up_h = self.upright_height(st)
        down = False
        if x.extent is not None:  # pose needed: a box alone is never "down"
            # lying across the image (torso tilted) or along the camera axis (torso foreshortened):
            # either way the shoulders are no longer well above the hips. Without an upright
            # reference, compare with the current torso length (= torso angle >= 60 deg at 0.5).
            ref = self.upright_torso(st) or x.torso_len
            down = x.extent <= p.down_extent * ref
        upright = self._is_upright_shape(x) and (up_h is None or x.h >= p.upright_height_frac * up_h)
        return down, upright and not down

    def descent(self, st: _FallTrack, x: _FallSample) -> tuple[float, float, float] | None:
        """A fast descent of the torso centre that ended lately: the largest drop from a sighting
        a to a later sighting b at most descent_window_s later, b itself within the last
        descent_window_s, in body lengths, with the person still at least half-way down now.
        Returns (drop, fell_at, began) or None when
        below drop_frac. fell_at: first sighting past the middle of the drop; began: the last
        sighting still within 10 % of the drop from its top."""
        p = self.p
        win = [s for s in st.hist if s.cy is not None]
        if len(win) < 2 or x.cy is None:
            return None
        length = max(s.length for s in st.hist)
        best = None
        for i, a in enumerate(win):
            for b in win[i + 1:]:
                if b.t - a.t > p.descent_window_s + EPS:
                    break
                if b.t < x.t - p.descent_window_s - EPS:
                    continue  # the descent must have ended within the last descent_window_s
                d = b.cy - a.cy
                if best is None or d > best[0]:
                    best = (d, a, b)
        if best is None:
            return None
        d, a, b = best
        if d / length < p.drop_frac or x.cy < a.cy + 0.5 * d:
            return None
        mid = a.cy + 0.5 * d
        fell_at = next(s.t for s in win if s.t > a.t and s.cy >= mid)
        began = max(s.t for s in win if a.t <= s.t <= fell_at and s.cy <= a.cy + 0.1 * d)
        return d / length, fell_at, began

    def _jumped(self, a: _FallSample, b: _FallSample) -> bool:
        """Body length (largest box side) changing by more than jump_factor, or the torso centre
        moving faster than max_speed body lengths / s, between two sightings: not one body, the
        tracker swapped people."""
        f = self.p.jump_factor
        if not (1 / f <= b.length / a.length <= f):
            return True
        if a.cx is None or b.cx is None or b.t <= a.t:
            return False
        speed = np.hypot(b.cx - a.cx, b.cy - a.cy) / (b.t - a.t) / max(a.length, b.length)
        return bool(speed > self.p.max_speed)

    def _relink(self, tid: int, box: np.ndarray, t: float, current: set[int]) -> None:
        """Trackers often lose a person exactly when the box changes from tall to wide, or drops.

        A new track inherits the history and state of a track lost within `relink_s` whose last box
        it overlaps, with its centre within one body length of that box's centre (the nearest one):
        the same body, on its way down.
        """
        best, best_gap = None, float("inf")
        centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
        for oid, st in self.tracks.items():
            if oid in current or st.last_box is None or not (0 < t - st.last_seen <= self.p.relink_s + EPS):
                continue
            b = st.last_box
            overlap = min(box[2], b[2]) > max(box[0], b[0]) and min(box[3], b[3]) > max(box[1], b[1])
            gap = float(np.hypot(*(centre - [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])))
            length = max(b[2] - b[0], b[3] - b[1], box[2] - box[0], box[3] - box[1])
            if overlap and gap <= length and gap < best_gap:
                best, best_gap = oid, gap
        if best is not None:
            self.tracks[tid] = self.tracks.pop(best)
            self.tracks[tid].relinked = True
            if best in self.open:  # the fallen person, under a new track id: the same event goes on
                self.open[tid] = self.open.pop(best)

    def update(self, scene: Scene) -> list[RuleHit]:
        """People seen in this frame with keypoints: a fall starts an alarm; up again, or lost, ends it."""
        t, p = scene.t, self.p
        tracks = [tr for tr in scene.seen if tr.keypoints is not None and wants(self.rule, tr)]
        hits: list[RuleHit] = []
        seen = set()
        current = {int(tr.track_id) for tr in tracks}
        for tr in tracks:
            tid = int(tr.track_id)
            seen.add(tid)
            if tid not in self.tracks:
                self._relink(tid, np.asarray(tr.box, float), t, current)
            st = self.tracks.setdefault(tid, _FallTrack())
            x = self._sample(t, np.asarray(tr.box, float), np.asarray(tr.keypoints, float))
            if st.hist and not st.relinked and self._jumped(st.hist[-1], x):
                st.hist.clear()  # the tracker swapped people: this history is someone else's
            st.relinked = False
            st.hist.append(x)
            while st.hist and st.hist[0].t < t - p.history_s - EPS:
                st.hist.popleft()
            st.last_seen, st.last_box = t, np.asarray(tr.box, float)
            down, upright = self.classify(st, x)
            if down:
                st.last_down = t
            if upright:
                st.upright_since = t if st.upright_since is None else st.upright_since
            else:
                st.upright_since = None
            if st.state == "fallen":
                if upright and tid in self.open:  # up again: the fall is over
                    hits.append(self._end(tid, t, scene.frame))
                if st.upright_since is not None and t - st.upright_since >= p.rearm_s - EPS:
                    st.state = "idle"
                continue
            if st.state == "pending" and upright:
                st.state = "idle"  # got back up within min_seconds
            if st.state == "idle" and down:
                d = self.descent(st, x)
                if d is not None:
                    # down since the first down sighting after the descent began
                    t_down = next(s.t for s in st.hist if s.t >= d[2] and self.classify(st, s)[0])
                    st.state, st.t_down, st.drop, st.fell_at = "pending", t_down, d[0], d[1]
        # confirm on a sighting that is still down at least min_seconds after going down
        # (not on absence: a person walking out of the view must not raise a fall)
        for tid, st in self.tracks.items():
            if st.state == "pending" and tid in seen and st.hist and st.hist[-1].t == t and st.last_down == t \
                    and t - st.t_down >= p.min_seconds - EPS:
                st.state = "fallen"
                box = tuple(float(v) for v in st.last_box)
                if not in_zone(((box[0] + box[2]) / 2, box[3]), self.zone):
                    continue  # fallen outside the zone: no alarm, but no second chance either
                track = next(tr for tr in tracks if tr.track_id == tid)
                self.open[tid] = track_alarm(self.rule, track, box=box, zone=self.rule.zone, fell_at=round(st.fell_at, 3))
                hits.append(hit("start", self.open[tid]))
        # a fallen person the tracker lost is gone: the event ends at their last sighting
        alive = {tr.track_id for tr in scene.tracks}
        for tid in [k for k in self.open if k not in alive]:
            hits.append(self._end(tid, self.tracks[tid].last_seen, scene.frame))
        # forget tracks unseen for long (a pending fall needs a sighting to be confirmed)
        for tid in [k for k, v in self.tracks.items() if t - v.last_seen > p.history_s and k not in self.open]:
            del self.tracks[tid]
        return hits

    def _end(self, tid: int, t: float, frame: int) -> RuleHit:
        alarm = self.open.pop(tid)
        alarm.end, alarm.end_frame = t, frame
        return hit("end", alarm)

    def close(self, t: float, frame: int) -> list[RuleHit]:
        """End of stream: every fall still open ends at the last frame."""
        return [self._end(tid, t, frame) for tid in list(self.open)]


