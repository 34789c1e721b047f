"""Fire (방화): flames by colour, flicker and staying in place (NumPy/OpenCV, 320 px wide).

    {name: fire, type: fire, zone: yard, min_seconds: 1}

No fire model is available offline, so this follows the classic video-flame literature
(Chen et al. 2004 RGB rules, Celik & Demirel 2009 YCbCr rules, Toreyin et al. 2006 flicker),
reduced to what works at 320 px and 2-5 analysed frames per second.  Nothing needs a learnt
background, so flames already burning in the first frame are found (after ``window_seconds``
of warm-up + ``min_seconds``: about 2 s).

1. **Flame colour** (per pixel): red channel >= ``red_min``, R >= G >= B (red, orange, yellow;
   not pink, magenta or blue-white), warmth R - B >= ``warm_min``, Cr - Cb >= ``warm_min`` / 2
   (Celik & Demirel: flames have Cr well above Cb) and HSV saturation >= ``sat_min`` (not
   beige, skin, pinkish walls).  White-hot cores (B > 220, R >= B) count next to flame colour.
2. **Running means** (time constant ``window_seconds``, weights from the real time between
   frames; plain means during the first frames): ``P`` = how often a pixel is flame-coloured,
   ``B`` = how often it is flame-coloured in two successive frames, ``D`` = mean brightness
   change between successive frames while flame-coloured in both.
3. **Flicker** per pixel F = D / B (for B >= MIN_BOTH): flames change brightness from frame to
   frame *while staying flame-coloured* (successive samples of a ~10 Hz flicker at 2-5 fps are
   uncorrelated).  Red soil, a sunset, a parked red car, brake lights or an orange sign stay
   the same; a person walking in front of an orange wall makes it stop being flame-coloured,
   which does not count; a rigid red thing moving changes only at its edges.
4. **Regions**: pixels with P >= ``persist`` and F >= PIXEL_FRACTION x ``flicker_level``,
   joined (3x3 closing), of at least ``min_area`` (fraction of the frame).  A region *flames*
   when its mean F >= ``flicker_level`` and >= FLICKER_CONTRAST x the median brightness change
   of the whole frame (camera motion, compression, global light changes raise both), its
   centroid drifts less than ``max_drift`` of its size per second (flames stay where they
   burn), it is not mostly (PERSON_OVERLAP) inside a person box (skin, red clothes), and the
   running means already cover ``window_seconds``.
5. **Event**: a region flaming for ``min_seconds`` starts one event per fire (box = union of
   the flaming regions, widened as the fire grows); while it is open, regions at or near its
   box need only HOLD_FRACTION of ``flicker_level`` (hysteresis); it ends when nothing has
   flamed for ``end_seconds``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.config import FireRule
from pipeline.geometry import box_inside, box_iou, in_zone
from pipeline.rules.base import Alarm, ImageRule, RuleHit, Sighting, hit, time_weight, work_image
from pipeline.types import Track

MIN_BOTH = 0.2  # a pixel's flicker counts once it was flame-coloured in successive frames this often
PIXEL_FRACTION = 0.5  # a flame pixel flickers at least this fraction of flicker_level
FLICKER_CONTRAST = 3.0  # region flicker must be this many times the frame's median flicker
PERSON_OVERLAP = 0.5  # a region at least this much inside a person box is the person, not fire
HOLD_FRACTION = 0.5  # an open event is kept by flames at this fraction of flicker_level
MAX_DT = 5.0
SIGHTING_SCORE = 0.4  # people's boxes (skin, red clothes) veto flames from this score, tracked or not


@dataclass
class FlameModel:
    """The flame model's settings: chosen on the fire clips (README), each checked at +-20 %."""

    min_seconds: float = 1.0
    work_width: int = 320
    red_min: float = 165.0  # red channel of a flame pixel (0-255)
    warm_min: float = 60.0  # R - B of a flame pixel (0-255): orange/yellow, not grey or white
    sat_min: float = 100.0  # HSV saturation of a flame pixel (0-255): not pink, beige or skin
    persist: float = 0.35  # fraction of recent frames a pixel must be flame-coloured
    flicker_level: float = 12.0  # mean frame-to-frame brightness change inside flames (0-255)
    window_seconds: float = 1.0  # time constant of the running means
    min_area: float = 0.0005  # smallest flame region, fraction of the frame (~38 px at 320x240)
    max_drift: float = 0.5  # centroid drift per second, in region sizes, above which it is moving
    person_score: float = 0.4  # person detections whose boxes veto flames (skin, red clothes)
    end_seconds: float = 5.0  # the event ends after this long without flickering flames


@dataclass
class _Region:
    rid: int
    box: tuple[int, int, int, int]
    hist: deque  # (t, cx, cy)
    first: float
    last: float
    flame_since: float | None = None
    flicker: float = 0.0
    drift: float = 0.0
    area: int = 0


class FireWatch(ImageRule):
    """The `fire` rule: one camera's flame model and its open fire; see the module docstring."""

    sighting_score = SIGHTING_SCORE

    def __init__(self, rule: FireRule, zone: np.ndarray | None, model: FlameModel | None = None) -> None:
        """zone: the rule's polygon (a flame region's centre must be inside)."""
        self.rule = rule
        self.cfg = model or FlameModel(min_seconds=rule.min_seconds, end_seconds=rule.end_seconds)
        self.zone = zone
        self.frame = 0
        self.P = self.D = self.prevY = self.prevC = None
        self.t_prev = None
        self.n = 0
        self.regions: list[_Region] = []
        self.next_rid = 1
        self.alarm: Alarm | None = None
        self.last_flame = -1e9
        self.n_alarms = 0
        self.max_flaming = 0.0  # longest time a region kept flickering in place (diagnostics)
        self.scale = 1.0
        self.debug: dict = {}

    def colour(self, img: np.ndarray) -> np.ndarray:
        """Flame-coloured pixels of a BGR uint8 image (bool)."""
        c = self.cfg
        b, g, r = cv2.split(img)
        ycc = cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb)
        cr, cb = ycc[..., 1].astype(np.int16), ycc[..., 2].astype(np.int16)
        r16, g16, b16 = r.astype(np.int16), g.astype(np.int16), b.astype(np.int16)
        s = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)[..., 1].astype(np.int16)
        col = (r16 >= c.red_min) & (r16 >= g16) & (g16 >= b16) & (r16 - b16 >= c.warm_min) \
            & (cr - cb >= c.warm_min / 2) & (s >= c.sat_min)
        core = (b16 > 220) & (r16 >= b16)
        if core.any() and col.any():
            near = cv2.dilate(col.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
            col |= core & near
        return col

    def observe(self, t: float, bgr: np.ndarray, detections: Sequence[Sighting | Track] = ()) -> list[RuleHit]:
        """Feed one analysed frame (media time ``t``, full BGR frame, what was seen in it); returns hits."""
        c = self.cfg
        img, self.scale = work_image(bgr, c.work_width)
        H, W = img.shape[:2]
        col = self.colour(img)
        Y = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
        hits: list[RuleHit] = []
        self.debug = {}
        if self.P is None:
            self.P = col.astype(np.float32)
            self.D = np.zeros((H, W), np.float32)
            self.B = np.zeros((H, W), np.float32)
            self.prevY, self.prevC = Y, col
            self.t_prev = self.t_first = t
            self.n = 1
            return hits
        dt = min(max(t - self.t_prev, 0.0), MAX_DT)
        self.t_prev = t
        self.n += 1
        a = max(time_weight(dt, c.window_seconds), 1.0 / self.n)  # warm-up: plain mean at first
        change = np.abs(Y - self.prevY)
        both = (col & self.prevC).astype(np.float32)
        cv2.accumulateWeighted(col.astype(np.float32), self.P, a)
        cv2.accumulateWeighted(change * both, self.D, a)  # change while flame-coloured in both frames
        cv2.accumulateWeighted(both, self.B, a)
        frame_flicker = float(np.median(change[::2, ::2])) + 1.0
        self.prevY, self.prevC = Y, col

        warm = t - self.t_first >= c.window_seconds - 1e-6  # the running means cover a window
        pboxes = [tuple(v / self.scale for v in d.box) for d in detections
                  if d.label == "person" and d.score >= c.person_score]
        # per-pixel flicker: mean brightness change while flame-coloured in both frames
        F = self.D / np.maximum(self.B, 1e-3)
        F[self.B < MIN_BOTH] = 0.0
        cand = (self.P >= c.persist) & (F >= PIXEL_FRACTION * c.flicker_level)
        mask = cv2.morphologyEx(cand.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
        n, lab, stats, cents = cv2.connectedComponentsWithStats(mask, connectivity=8)
        seen = []
        for i in range(1, n):
            x, y, bw, bh, ar = stats[i]
            if ar < c.min_area * H * W:
                continue
            comp = lab[y:y + bh, x:x + bw] == i
            flick = float(F[y:y + bh, x:x + bw][comp].mean())
            box = (int(x), int(y), int(x + bw), int(y + bh))
            reg = self._match(box)
            if reg is None:
                reg = _Region(self.next_rid, box, deque(), t, t)
                self.next_rid += 1
                self.regions.append(reg)
            reg.box, reg.last, reg.flicker, reg.area = box, t, flick, int(ar)
            reg.hist.append((t, float(cents[i][0]), float(cents[i][1])))
            while len(reg.hist) > 2 and reg.hist[1][0] <= t - 1.0:
                reg.hist.popleft()
            t0, x0, y0 = reg.hist[0]
            span = t - t0
            size = float(np.sqrt(ar))
            reg.drift = (np.hypot(cents[i][0] - x0, cents[i][1] - y0) / size / span) if span > 0 else 0.0
            full = tuple(v * self.scale for v in box)
            inside = in_zone(((full[0] + full[2]) / 2, (full[1] + full[3]) / 2), self.zone)
            # while an event is open, flames it already covers need only half the flicker
            level = c.flicker_level
            if self.alarm is not None and self._near_alarm(box):
                level *= HOLD_FRACTION
            on_person = any(box_inside(box, pb) >= PERSON_OVERLAP for pb in pboxes)
            flaming = (warm and not on_person and flick >= level and flick >= FLICKER_CONTRAST * frame_flicker
                       and reg.drift <= c.max_drift and inside)
            if flaming:
                reg.flame_since = t if reg.flame_since is None else reg.flame_since
                self.max_flaming = max(self.max_flaming, t - reg.flame_since)
            else:
                reg.flame_since = None
            seen.append(reg)
            self.debug.setdefault("regions", []).append(
                (reg.rid, box, int(ar), round(flick, 1), round(reg.drift, 2), flaming))
        self.debug["frame_flicker"] = frame_flicker
        self.regions = [r for r in self.regions if t - r.last <= 1.0]

        burning = [r for r in seen if r.flame_since is not None and t - r.flame_since >= c.min_seconds - 1e-6]
        if burning:
            self.last_flame = t
            ub = (min(r.box[0] for r in burning), min(r.box[1] for r in burning),
                  max(r.box[2] for r in burning), max(r.box[3] for r in burning))
            full = tuple(float(v * self.scale) for v in ub)
            score = float(min(1.0, max(r.flicker for r in burning) / (2 * c.flicker_level)))
            if self.alarm is None:
                self.n_alarms += 1
                self.alarm = Alarm(
                    rule=self.rule.name,
                    type=self.rule.type,
                    label="fire",
                    track_id=None,
                    start=t,
                    start_frame=self.frame,
                    score=score,
                    box=full,
                    priority=self.rule.priority,
                    zone=self.rule.zone,
                    object_id=self.n_alarms,
                )
                hits.append(hit("start", self.alarm))
            else:
                grown = box_iou(full, self.alarm.box) < 0.7
                self.alarm.score = max(self.alarm.score, score)
                if grown:
                    self.alarm.box = tuple(map(float, (min(full[0], self.alarm.box[0]), min(full[1], self.alarm.box[1]),
                                                       max(full[2], self.alarm.box[2]), max(full[3], self.alarm.box[3]))))
                    hits.append(hit("update", self.alarm))
        elif self.alarm is not None and t - self.last_flame >= c.end_seconds:
            self.alarm.end, self.alarm.end_frame = t, self.frame
            hits.append(hit("end", self.alarm))
            self.alarm = None
        return hits

    def close(self, t: float, frame: int) -> list[RuleHit]:
        """End of stream: ends the open alarm."""
        if self.alarm is None:
            return []
        self.alarm.end, self.alarm.end_frame = t, frame
        alarm, self.alarm = self.alarm, None
        return [hit("end", alarm)]

    def _near_alarm(self, box) -> bool:
        ab = [v / self.scale for v in self.alarm.box]
        m = 0.25 * max(ab[2] - ab[0], ab[3] - ab[1])
        return not (box[2] < ab[0] - m or box[0] > ab[2] + m or box[3] < ab[1] - m or box[1] > ab[3] + m)

    def _match(self, box) -> _Region | None:
        best, bi = None, 0.1
        for r in self.regions:
            iou = box_iou(box, r.box)
            if iou > bi:
                best, bi = r, iou
        return best
