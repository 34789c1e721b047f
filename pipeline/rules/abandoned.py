"""Abandoned objects (유기): things left in the scene without their owner. NumPy/OpenCV, 320 px wide.

    {name: left-bag, type: abandoned_object, zone: platform, unattended_seconds: 30}

Per analysed frame the rule gets the frame and the tracks seen in it; everything is timed in media
seconds (running means weigh each frame by the time since the previous one), so 2-5 fps and
irregular gaps work. Measured on the abandoned-object clips and the negative footage (README).

1. **Scene model at 320 px.**  A *long-term held background* ``L`` and a *short-term background*
   ``S`` (running mean, time constant ``motion_seconds``).  A pixel is *changed* when it is
   outside the range of ``L`` over its 3x3 neighbourhood (1 px of camera shake) by more than
   its threshold -- ``diff_level``, or NOISE_K x the pixel's own noise (waving trees, water,
   compression) where that is larger -- unless the change is an uncoloured darkening or
   brightening (brightness ratio in [``shadow_ratio``, 1.25], chromaticity within 0.03: a
   shadow or a lighting change).  It is *moving* when it differs from ``S`` as much.  ``L``
   follows unchanged pixels slowly (``background_seconds``), is scaled by the median frame/L
   brightness ratio every frame (auto-exposure, clouds) and is *held* where pixels changed:
   that keeps a left object in the foreground for as long as it stays.  Start-up: a pixel's
   background is learnt once it has held still for BOOT_SECONDS outside person and bag boxes,
   so people and things moving in the first seconds leave no ghosts.
2. **Static foreground.**  A changed pixel that is not moving accumulates *static time*; one
   that is back to the background is reset.  Pixels static for ``static_seconds`` outside the
   person boxes (grown by 15 %) form connected regions; regions of ``min_area`` .. ``max_area``
   (fractions of the frame), filling MIN_FILL of their box and at most MAX_ASPECT elongated, are
   candidate objects (fragments next to an object are merged into it).  If more than
   ``light_fraction`` of the visible frame changes at once, ``L`` is re-learnt from ``S``.
3. **Detector objects.**  Detections of the configured classes that stay put for
   ``static_seconds`` (IoU >= 0.5 with where they stopped), are not carried (less than half
   inside a person box) and are new (their box differs from ``L``, or covers background that
   was never seen and the bag was not there in the first frame) are candidates too; one found
   both ways is one object with the detector's label.
4. **Owner and attendance.**  ``left_at`` is when the object's pixels began to hold still
   (median over the region).  The owner is the person nearest the object around ``left_at``
   (track id when the input has them).  An *unknown* object (no detector label) that nobody was
   near when it appeared is not something a person left (a change of the scene) and is learnt
   into ``L``.  The owner is followed across tracker id changes (a new track, or an untracked
   detection, where the owner was lost within OWNER_HANDOVER_SECONDS, unless the owner was last
   seen at the left, right or top border).  An owner last seen at that border and unseen for
   OWNER_GONE_SECONDS has left the view: the owner's id seen again after that is someone the
   tracker matched to the lost track as they came in there, not the owner.  A person is *near*
   when the gap between its box and the object's box is at most ``owner_distance`` (default
   ``owner_sizes`` x sqrt(object box area), full-frame px).  The object is attended while its owner is near, or while someone has
   stood near it (feet within half that distance) for ``attend_seconds``; people walking past do
   not count.
5. **Alarm.**  Unattended for ``unattended_seconds``, still there, still (its pixels' running
   moving fraction at most MAX_UNREST: not flames, water or a screen) and not a ghost (the
   outline test ``_object_likeness`` >= ``ghost_ratio``; a ghost is learnt into ``L``) -> one
   ``start`` with box, ``left_at``, ``owner_track``, ``label``.  ``end`` when the object is taken
   away (its pixels back to the background for ``gone_seconds``, reason ``removed``) or its owner
   comes back (``owner_returned``; without an owner id, someone standing by it: ``attended``).
   The object is kept after an owner's return; leaving it again raises a new alarm.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from pipeline.config import AbandonedObjectRule
from pipeline.geometry import box_gap, box_inside, box_iou, in_zone
from pipeline.rules.base import Alarm, ImageRule, RuleHit, Sighting, hit, time_weight, work_image
from pipeline.types import Box, Track

LEFT_CLASSES = ("backpack", "handbag", "suitcase")
SIGHTING_SCORE = 0.25  # detections this confident count as people (owner, masking) even without a track  # the detector classes that are left objects by default

HIGHLIGHT_RATIO = 1.25  # upper end of the brightness band treated as lighting, not an object
BOOT_SECONDS = 1.0  # a pixel still this long at start-up has its background learnt
MAX_DT = 5.0  # a gap longer than this (s) is treated like this long for the running means
OWNER_HANDOVER_SECONDS = 3.0  # a new track this soon where the owner was lost is the owner
OWNER_GONE_SECONDS = 1.0  # an owner last seen at the border and unseen this long has left the view
STABLE_SECONDS = 2.0  # time constant of an object's unrest (moving fraction of its pixels)
MAX_UNREST = 0.2  # an object whose pixels keep changing more than this is not a still object
JITTER_PX = 1  # tolerated camera shake (px at the analysis width)
MIN_FILL = 0.3  # a candidate region fills at least this fraction of its box
MAX_ASPECT = 4.0  # and is at most this elongated (edge slivers of camera jitter are not objects)
NOISE_SECONDS = 10.0  # time constant of the per-pixel noise estimate
NOISE_K = 3.0  # a change must exceed this many times the pixel's noise


@dataclass
class SceneModel:
    """The scene model's settings: chosen on the clips (README), each checked at +-20 %."""

    unattended_seconds: float = 30.0
    owner_distance: float | None = None  # full-frame px between boxes; None: owner_sizes x object size
    classes: tuple[str, ...] = LEFT_CLASSES
    work_width: int = 320  # analysis width in px
    diff_level: float = 12.0  # colour change (0-255, max over B, G, R) that counts as different
    static_seconds: float = 4.0  # a changed pixel must hold still this long
    background_seconds: float = 30.0  # time constant of the long-term background (unchanged pixels)
    motion_seconds: float = 1.0  # time constant of the short-term background
    shadow_ratio: float = 0.75  # darkening down to this brightness ratio, colour unchanged: shadow
    min_area: float = 0.0015  # smallest object, fraction of the frame area (~115 px at 320x240)
    max_area: float = 0.04  # largest object, fraction of the frame area
    owner_sizes: float = 3.0  # default owner_distance in object sizes (sqrt of box area)
    attend_seconds: float = 3.0  # someone this long near the object attends it
    gone_seconds: float = 2.0  # object pixels back to background this long: taken away
    light_fraction: float = 0.3  # this fraction of the frame changing at once: lighting change
    ghost_ratio: float = 0.3  # object likeness below this (0..1, see _object_likeness): a ghost
    person_score: float = 0.3  # person detections used (owner, masking)
    object_score: float = 0.3  # bag detections used
    absorb_seconds: float = 600.0  # a never-alarmed candidate older than this joins the background


@dataclass
class _Obj:
    oid: int
    box: tuple[int, int, int, int]  # work px x1, y1, x2, y2 (exclusive)
    mask: np.ndarray  # bool, crop of the box
    left_at: float
    created: float
    label: str | None = None  # detector class, None: unknown object
    det_score: float = 0.0
    owner: int | None = None
    owner_box: Box | None = None
    owner_ids: set = field(default_factory=set)  # the owner's track id and ids handed over to
    owner_last: float = -1e9  # last sighting of the owner
    last_attended: float = -1e9  # last time it counted as attended
    standers: dict = field(default_factory=dict)  # track id -> (since, foot point, last seen near)
    absent_since: float | None = None
    last_det: float = -1e9
    alarm: Alarm | None = None
    alarmed_once: bool = False
    unrest: float = 0.0  # running mean of the moving fraction of its pixels
    still_frac: float = 1.0  # fraction of its pixels static now
    owner_left: bool = False  # the owner has been seen beyond owner_distance since left_at


@dataclass
class _BagTrack:
    anchor: Box
    box: Box
    first: float
    last: float
    label: str
    score: float


class AbandonedObjects(ImageRule):
    """The `abandoned_object` rule: one camera's scene model and its left objects; see the module docstring."""

    sighting_score = SIGHTING_SCORE

    def __init__(
        self, rule: AbandonedObjectRule, zone: np.ndarray | None, tracked: Sequence[str], model: SceneModel | None = None
    ) -> None:
        """zone: the rule's polygon (the object's bottom-centre must be inside); tracked: the camera's classes."""
        classes = tuple(rule.classes) if rule.classes is not None else tuple(c for c in LEFT_CLASSES if c in tracked)
        self.rule = rule
        self.cfg = model or SceneModel(rule.unattended_seconds, rule.owner_distance, classes)
        self.zone = zone
        self.frame = 0
        self.ended_why: dict[int | None, str] = {}  # object id -> why its alarm ended
        self.L = self.S = self.static = None
        self.t0 = self.t_prev = None
        self.scale = 1.0
        self.objs: list[_Obj] = []
        self.bags: list[_BagTrack] = []
        self.scene_bags: list[Box] = []
        self.first_seen: dict[int, float] = {}  # person track id -> first sighting
        self.history: deque = deque()  # (t, [(box, track_id)]) of persons, for owner look-back
        self.next_id = 1
        self.n_alarms = 0
        self.max_unattended = 0.0  # longest unattended time of an alarm-eligible object (diagnostics)
        self.debug: dict = {}

    # ------------------------------------------------------------------ helpers
    def _work(self, bgr: np.ndarray) -> np.ndarray:
        h, w = bgr.shape[:2]
        self.frame_wh = (w, h)
        img, self.scale = work_image(bgr, self.cfg.work_width)
        return cv2.GaussianBlur(img, (3, 3), 0)

    def _to_full(self, b) -> Box:
        s = self.scale
        return (b[0] * s, b[1] * s, b[2] * s, b[3] * s)

    def _owner_dist(self, box_full: Box) -> float:
        if self.cfg.owner_distance is not None:
            return float(self.cfg.owner_distance)
        return self.cfg.owner_sizes * float(np.sqrt(max(box_full[2] - box_full[0], 1.0) * max(box_full[3] - box_full[1], 1.0)))

    @staticmethod
    def _maxdiff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        c0, c1, c2 = cv2.split(cv2.absdiff(a, b))
        return cv2.max(cv2.max(c0, c1), c2)

    def _changed(self, img: np.ndarray, ref8: np.ndarray) -> np.ndarray:
        """Changed vs ``ref8``: colour difference above the pixel's threshold (diff_level, or
        NOISE_K x its own noise where that is larger), except uncoloured brightness changes
        (ratio in [shadow_ratio, HIGHLIGHT_RATIO], chromaticity within 0.03): shadows, lighting."""
        c = self.cfg
        # robust to JITTER_PX of camera shake: the frame must lie outside the range of the
        # background over the pixel neighbourhood of that radius, per channel
        k = np.ones((2 * JITTER_PX + 1, 2 * JITTER_PX + 1), np.uint8)
        lo = cv2.erode(ref8, k)
        hi = cv2.dilate(ref8, k)
        d = cv2.max(cv2.subtract(img, hi), cv2.subtract(lo, img))
        c0, c1, c2 = cv2.split(d)
        fg = cv2.max(cv2.max(c0, c1), c2) > self.thr
        ys, xs = np.nonzero(fg)
        if len(ys):
            pi = img[ys, xs].astype(np.float32) + 1.0
            pr = ref8[ys, xs].astype(np.float32) + 1.0
            si, sr = pi.sum(1), pr.sum(1)
            ratio = si / sr
            chroma = np.abs(pi / si[:, None] - pr / sr[:, None]).max(1)
            light = (ratio >= c.shadow_ratio) & (ratio <= HIGHLIGHT_RATIO) & (chroma < 0.03)
            fg[ys[light], xs[light]] = False
        return fg

    # ------------------------------------------------------------------ main entry
    def observe(self, t: float, bgr: np.ndarray, detections: Sequence[Sighting | Track] = ()) -> list[RuleHit]:
        """Feed one analysed frame (media time ``t``, full BGR frame, what was seen in it); returns hits."""
        c = self.cfg
        img = self._work(bgr)
        H, W = img.shape[:2]
        hits: list[RuleHit] = []
        self.debug = {}
        if self.L is None:
            self.L = img.astype(np.float32)
            self.S = img.astype(np.float32)
            self.static = np.zeros((H, W), np.float32)
            self.valid = np.zeros((H, W), bool)  # background learnt here (bootstrap)
            self.steady = np.zeros((H, W), np.float32)  # seconds a pixel has not moved (bootstrap)
            self.noise = np.zeros((H, W), np.float32)
            self.t0 = self.t_prev = t
        dt = min(max(t - self.t_prev, 0.0), MAX_DT)
        self.t_prev = t

        persons = [d for d in detections if d.label == "person" and d.score >= c.person_score]
        bags = [d for d in detections if d.label in c.classes and d.score >= c.object_score]
        for p in persons:
            tid = getattr(p, "track_id", None)
            if tid is not None and tid not in self.first_seen:
                self.first_seen[tid] = t
        self.history.append((t, [(tuple(map(float, p.box)), getattr(p, "track_id", None)) for p in persons]))
        while self.history and self.history[0][0] < t - (c.static_seconds + 10.0):
            self.history.popleft()

        # person mask (work px), boxes grown by 15 % of their height
        pm8 = np.zeros((H, W), np.uint8)
        for p in persons:
            x1, y1, x2, y2 = (np.asarray(p.box, float) / self.scale)
            m = 0.15 * (y2 - y1)
            cv2.rectangle(pm8, (int(x1 - m), int(y1 - m)), (int(x2 + m), int(y2 + m)), 1, -1)
        pmask = pm8.astype(bool)
        bm8 = np.zeros((H, W), np.uint8)  # boxes of the configured classes (not learnt at start-up)
        for b in bags:
            x1, y1, x2, y2 = (np.asarray(b.box, float) / self.scale)
            cv2.rectangle(bm8, (int(x1), int(y1)), (int(x2), int(y2)), 1, -1)
        bmask = bm8.astype(bool)

        # short-term model, change and motion masks
        cv2.accumulateWeighted(img, self.S, time_weight(dt, c.motion_seconds))
        # global gain (camera auto-exposure, clouds): scale the background by the median ratio
        if self.valid.any():
            g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)[::4, ::4].astype(np.float32) + 1.0
            gl = cv2.cvtColor(cv2.convertScaleAbs(self.L), cv2.COLOR_BGR2GRAY)[::4, ::4].astype(np.float32) + 1.0
            sel = self.valid[::4, ::4] & ~pmask[::4, ::4]
            if sel.sum() > 50:
                gain = float(np.median(g[sel] / gl[sel]))
                if abs(gain - 1.0) > 0.01:
                    self.L *= gain
                    self.debug["gain"] = gain
        L8 = cv2.convertScaleAbs(self.L)
        # per-pixel noise (waving trees, water, compression): mean |frame - S|, slow average
        dS = self._maxdiff(img, cv2.convertScaleAbs(self.S))
        cv2.accumulateWeighted(dS, self.noise, time_weight(dt, NOISE_SECONDS))
        self.thr = np.maximum(self.noise * NOISE_K, c.diff_level)
        moving = dS > self.thr
        if not self.valid.all():
            # bootstrap: the background of a pixel is learnt (from S) once it has held still for
            # BOOT_SECONDS outside person boxes; until then it cannot be foreground.  So people and
            # things that move in the first seconds leave no ghosts.
            np.add(self.steady, dt, out=self.steady, where=~moving)
            self.steady[moving | pmask] = 0.0
            learn = ~self.valid & ~pmask & ~bmask & (self.steady >= BOOT_SECONDS)
            np.copyto(self.L, self.S, where=learn[..., None])
            self.valid |= learn
            L8 = cv2.convertScaleAbs(self.L)
        fg = self._changed(img, L8)
        fg = cv2.morphologyEx(fg.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)).astype(bool)
        fg &= self.valid

        # lighting change: most of the visible scene changed at once
        nvis = H * W - int(pm8.sum())
        frac = float((fg & ~pmask).sum()) / max(nvis, 1)
        self.debug["fg_fraction"] = frac
        if frac > c.light_fraction and t - self.t0 > c.motion_seconds * 3:
            self.L = self.S.copy()
            L8 = cv2.convertScaleAbs(self.L)
            self.static[:] = 0
            self.objs = [o for o in self.objs if o.alarm is not None]
            fg = self._changed(img, L8)
            self.debug["lighting"] = True

        # static-time accumulator: +dt where changed and still, reset where back to background
        still = fg & ~moving
        np.add(self.static, dt, out=self.static, where=still)
        self.static[~fg] = 0.0

        # long-term background: follows unchanged pixels; warm-up uses a shorter time constant
        tau = min(c.background_seconds, max(c.motion_seconds, t - self.t0))
        upd = (~fg & ~pmask & ~moving).astype(np.uint8)
        cv2.accumulateWeighted(img, self.L, time_weight(dt, tau), mask=upd)

        # candidate regions
        smask = (self.static >= c.static_seconds) & ~pmask
        smask = cv2.morphologyEx(smask.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
        n, lab, stats, _ = cv2.connectedComponentsWithStats(smask, connectivity=8)
        area_px = H * W
        blobs = []
        for i in range(1, n):
            x, y, w, h, ar = stats[i]
            if ar < c.min_area * area_px:
                continue
            blobs.append(((x, y, x + w, y + h), lab[y:y + h, x:x + w] == i, ar))

        # detector bags that stay put
        self._track_bags(t, bags)
        static_bags = []
        for b in self.bags:
            if b.last < t - 1e-6 or t - b.first < c.static_seconds:
                continue
            inside = max((box_inside(b.box, p.box) for p in persons), default=0.0)
            if inside > 0.5:
                continue  # carried
            wb = tuple(int(round(v / self.scale)) for v in b.box)
            x1, y1, x2, y2 = max(wb[0], 0), max(wb[1], 0), min(wb[2], W), min(wb[3], H)
            if x2 <= x1 or y2 <= y1:
                continue
            if any(box_iou(b.box, sb) > 0.5 for sb in self.scene_bags):
                continue  # a bag that was there when the stream started
            novel = fg[y1:y2, x1:x2].mean() >= 0.2 or (
                (~self.valid[y1:y2, x1:x2]).mean() >= 0.5 and b.first > self.t0)
            if not novel:
                continue  # looks like the background: was part of the scene
            static_bags.append((b, (x1, y1, x2, y2)))

        # match blobs / bags to objects
        for box, m, ar in blobs:
            o = self._match(box)
            if o is not None:
                if o.alarm is None:
                    self._grow(o, box, m, c.max_area * area_px)
                continue
            if ar > c.max_area * area_px or not self._compact(box, ar):
                continue
            full = self._to_full(box)
            if not in_zone(((full[0] + full[2]) / 2, full[3]), self.zone):
                continue
            self.debug.setdefault("blobs", []).append((tuple(int(v) for v in box), int(ar)))
            x1, y1, x2, y2 = box
            left_at = t - float(np.median(self.static[y1:y2, x1:x2][m]))
            o = self._new_obj(t, box, m, left_at)
            if o.owner_box is None:
                # an unknown object nobody was near when it appeared: not something left by a
                # person (lighting, vegetation, a change of the scene); learn it
                self.objs.remove(o)
                self._absorb(img, box, m)
        for b, box in static_bags:
            o = self._match(box)
            if o is None:
                full = self._to_full(box)
                if not in_zone(((full[0] + full[2]) / 2, full[3]), self.zone):
                    continue
                x1, y1, x2, y2 = box
                o = self._new_obj(t, box, fg[y1:y2, x1:x2].copy(), b.first)
            o.label, o.det_score, o.last_det = b.label, max(o.det_score, b.score), t

        # per-object presence, attendance, alarm
        for o in list(self.objs):
            x1, y1, x2, y2 = o.box
            m = o.mask if o.mask.any() else np.ones_like(o.mask)
            region_fg = fg[y1:y2, x1:x2][m].mean()
            # how much of it keeps changing while nobody is in front of it (flames, water, screens)
            free = ~pmask[y1:y2, x1:x2] & m
            if free.any():
                mv = float(moving[y1:y2, x1:x2][free].mean())
                o.unrest += time_weight(dt, STABLE_SECONDS) * (mv - o.unrest)
            # present while its pixels still differ from the background (a person standing in front
            # of it differs too) or the detector still sees it there
            present = region_fg >= 0.3 or o.last_det >= t - c.gone_seconds
            o.still_frac = float((self.static[y1:y2, x1:x2] >= c.static_seconds)[m].mean())
            if present:
                o.absent_since = None
            elif o.absent_since is None:
                o.absent_since = t
            if o.absent_since is not None and t - o.absent_since >= c.gone_seconds:
                if o.alarm is not None:
                    hits.append(self._end(o, t, "removed"))
                self._absorb(img, o.box, o.mask)
                self.objs.remove(o)
                continue
            if o.alarm is None and not o.alarmed_once and t - o.created > c.absorb_seconds:
                self._absorb(img, o.box, o.mask)
                self.objs.remove(o)
                continue
            hits.extend(self._attend(o, t, persons, img, L8, fg & ~pmask))

        # static pixels that belong to no object and no person join the background after a while
        stale = self.static >= 2 * c.static_seconds + c.unattended_seconds
        if stale.any():
            for o in self.objs:
                x1, y1, x2, y2 = o.box
                stale[y1:y2, x1:x2] &= ~o.mask
            stale &= ~pmask
            if stale.any():
                np.copyto(self.L, img.astype(np.float32), where=stale[..., None])
                self.static[stale] = 0.0
        return hits

    def attention(self) -> list[Box]:
        """The still objects it follows: nothing moves there, so without this the detector would not look."""
        return [b.box for b in self.bags] + [self._to_full(o.box) for o in self.objs]

    def close(self, t: float, frame: int) -> list[RuleHit]:
        """End of stream: ends every open alarm."""
        self.frame = frame
        return [self._end(o, t, "stream_end") for o in self.objs if o.alarm is not None]

    # ------------------------------------------------------------------ pieces
    def _track_bags(self, t: float, bags) -> None:
        if t == self.t0:
            self.scene_bags = [tuple(map(float, d.box)) for d in bags]
        for d in bags:
            box = tuple(map(float, d.box))
            best, bi = None, 0.3
            for b in self.bags:
                iou = box_iou(box, b.box)
                if iou > bi:
                    best, bi = b, iou
            if best is None:
                self.bags.append(_BagTrack(box, box, t, t, d.label, float(d.score)))
                continue
            best.box, best.last, best.score = box, t, max(best.score, float(d.score))
            if box_iou(box, best.anchor) < 0.5:  # it moved: restart its still time
                best.anchor, best.first, best.score = box, t, float(d.score)
        self.bags = [b for b in self.bags if t - b.last <= self.cfg.gone_seconds]

    @staticmethod
    def _compact(box, area) -> bool:
        """Object-like shape: fills at least MIN_FILL of its box, sides within MAX_ASPECT."""
        w, h = box[2] - box[0], box[3] - box[1]
        return area >= MIN_FILL * w * h and max(w, h) <= MAX_ASPECT * min(w, h)

    @staticmethod
    def _grow(o: _Obj, box, m, max_area: float) -> None:
        """Merge a static region into a not-yet-alarmed object (fragments of one object)."""
        x1, y1 = min(o.box[0], box[0]), min(o.box[1], box[1])
        x2, y2 = max(o.box[2], box[2]), max(o.box[3], box[3])
        nm = np.zeros((y2 - y1, x2 - x1), bool)
        nm[o.box[1] - y1:o.box[3] - y1, o.box[0] - x1:o.box[2] - x1] |= o.mask
        nm[box[1] - y1:box[3] - y1, box[0] - x1:box[2] - x1] |= m
        if nm.sum() > o.mask.sum() and nm.sum() <= max_area:
            o.box, o.mask = (int(x1), int(y1), int(x2), int(y2)), nm

    def _match(self, box) -> _Obj | None:
        best, bi = None, 0.2
        for o in self.objs:
            iou = box_iou(box, o.box)
            if o.alarm is None and box_gap(box, o.box) <= 3:
                iou = max(iou, 0.205)
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            if o.box[0] <= cx <= o.box[2] and o.box[1] <= cy <= o.box[3]:
                iou = max(iou, 0.21)
            if iou > bi:
                best, bi = o, iou
        return best

    def _object_likeness(self, img, L8, fg, box, m) -> float:
        """Which image of the region continues its surroundings, judged across its outline.

        For pairs (p inside the changed region, q = p + 2 px outside it, q unchanged) it sums the
        contrast |frame(p) - frame(q)| (the object stands out) and |background(p) - frame(q)|
        (the background would fit).  Returns cur / (cur + bg): near 1 for a real object put
        down (the background is continuous with its surroundings), near 0 for a ghost (the frame
        is continuous with its surroundings: what was in the background has left)."""
        x1, y1, x2, y2 = box
        H, W = img.shape[:2]
        pad = 4
        X1, Y1, X2, Y2 = max(x1 - pad, 0), max(y1 - pad, 0), min(x2 + pad, W), min(y2 + pad, H)
        f = fg[Y1:Y2, X1:X2]
        inner = f.copy()  # the blob and any changed pixels next to it
        inner[y1 - Y1:y2 - Y1, x1 - X1:x2 - X1] |= m
        I = img[Y1:Y2, X1:X2].astype(np.int16)
        B = L8[Y1:Y2, X1:X2].astype(np.int16)
        cur = bg = 0.0
        k = 2
        for dy, dx in ((0, k), (0, -k), (k, 0), (-k, 0)):
            h, w = inner.shape
            ps = (slice(max(-dy, 0), h - max(dy, 0)), slice(max(-dx, 0), w - max(dx, 0)))
            qs = (slice(max(dy, 0), h - max(-dy, 0)), slice(max(dx, 0), w - max(-dx, 0)))
            pair = inner[ps] & ~f[qs] & ~inner[qs]
            if not pair.any():
                continue
            iq = I[qs][pair]
            cur += float(np.abs(I[ps][pair] - iq).sum())
            bg += float(np.abs(B[ps][pair] - iq).sum())
        if cur + bg <= 0:
            return 1.0
        return cur / (cur + bg)

    def _absorb(self, img, box, m) -> None:
        x1, y1, x2, y2 = box
        reg = self.L[y1:y2, x1:x2]
        reg[m] = img[y1:y2, x1:x2][m].astype(np.float32)
        self.static[y1:y2, x1:x2][m] = 0.0

    def _new_obj(self, t: float, box, m, left_at: float) -> _Obj:
        o = _Obj(self.next_id, tuple(int(v) for v in box), m.copy(), left_at, t)
        self.next_id += 1
        full = self._to_full(box)
        dist = self._owner_dist(full)
        # owner: person nearest the object around the time it was put down
        best = None
        for th, plist in self.history:
            if th < left_at - 3.0 or th > left_at + 1.0:
                continue
            for pb, tid in plist:
                key = (box_gap(pb, full), tid is None, abs(th - left_at))
                if key[0] <= 2 * dist and (best is None or key < best[0]):
                    best = (key, tid, pb, th)
        if best is not None:
            o.owner, o.owner_box, o.owner_last = best[1], best[2], best[3]
            if o.owner is not None:
                o.owner_ids = {o.owner}
        # the unattended clock starts when the owner was last near it (from the look-back);
        # with no owner id, when anyone was
        o.last_attended = left_at
        for th, plist in self.history:
            if th < left_at - 3.0:
                continue
            own = self._follow_owner(o, th, plist)
            if o.owner is None:
                own = [pb for pb, _ in plist]
            if th >= left_at and any(box_gap(pb, full) <= dist for pb in own):
                o.last_attended = th
            if th >= left_at and any(box_gap(pb, full) > dist for pb in own):
                o.owner_left = True
        self.objs.append(o)
        return o

    def _at_border(self, b: Box) -> bool:
        """A box cut by the left, right or top edge: someone leaving the view (one cut by the bottom
        edge is more often someone bending down in a close view)."""
        fw = self.frame_wh[0]
        m = 0.02 * fw
        return b[0] <= m or b[1] <= m or b[2] >= fw - m

    def _follow_owner(self, o: _Obj, th: float, plist) -> list[Box]:
        """The owner's sightings in one frame (boxes), keeping the owner's identity across tracker
        id changes: while the owner's track is not seen, an untracked detection, or a track that
        started after the owner was last seen, within one owner height of where the owner was last
        seen and within OWNER_HANDOVER_SECONDS, is the owner (a new track id is adopted)."""
        if o.owner is None:
            return []
        left_view = o.owner_box is not None and self._at_border(o.owner_box)
        if left_view and th - o.owner_last > OWNER_GONE_SECONDS:
            # the owner walked out of the view: the tracker may give the owner's id to someone
            # entering there soon after (a lost track matched by its motion), which is not the owner
            o.owner_ids.clear()
            o.owner_left = True
            return []
        own = [pb for pb, tid in plist if tid in o.owner_ids]
        if own:
            o.owner_last, o.owner_box = th, own[0]
            return own
        if o.owner_box is None or th - o.owner_last > OWNER_HANDOVER_SECONDS or left_view:
            return []
        b = o.owner_box
        h = b[3] - b[1]
        best = None
        for pb, tid in plist:
            if tid is not None and self.first_seen.get(tid, -1e9) < o.owner_last - 0.5:
                continue  # someone else, tracked since before the owner was lost
            g = box_gap(pb, b)
            if g <= h and (best is None or g < best[0]):
                best = (g, pb, tid)
        if best is None:
            return []
        if best[2] is not None:
            o.owner_ids.add(best[2])
        o.owner_last, o.owner_box = th, best[1]
        return [best[1]]

    def _attend(self, o: _Obj, t: float, persons, img, L8, fgx) -> list[RuleHit]:
        c = self.cfg
        full = self._to_full(o.box)
        dist = self._owner_dist(full)
        own = self._follow_owner(o, t, [(tuple(map(float, p.box)), getattr(p, "track_id", None)) for p in persons])
        near = [p for p in persons if box_gap(tuple(map(float, p.box)), full) <= dist]
        owner_near = any(box_gap(pb, full) <= dist for pb in own)
        # someone standing by it: near, and their feet within dist/2 of where they were, for
        # attend_seconds (per track id; without ids, whoever is near).  People walking past
        # keep restarting that clock.
        stood_by = False
        for p in near:
            key = getattr(p, "track_id", None)
            foot = ((p.box[0] + p.box[2]) / 2.0, float(p.box[3]))
            st = o.standers.get(key)
            if st is None or t - st[2] > 1.0 or np.hypot(foot[0] - st[1][0], foot[1] - st[1][1]) > dist / 2:
                st = (t, foot, t)
            st = (st[0], st[1], t)
            o.standers[key] = st
            stood_by |= t - st[0] >= c.attend_seconds
        o.standers = {k: v for k, v in o.standers.items() if t - v[2] <= 1.0}
        # A known owner who has left is what makes it abandoned (PETS 2006): strangers who stop by do not
        # take it over. Without an owner id, someone standing by it attends it.
        attended = owner_near or (stood_by and (o.owner is None or not o.owner_left))
        hits = []
        if o.owner is None:  # no owner id: anyone seen away from it
            own = [tuple(map(float, p.box)) for p in persons]
        if any(box_gap(pb, full) > dist for pb in own):
            o.owner_left = True
        if not o.owner_left:
            # the owner has not been seen away from it: it was not left (a person who lay down or
            # fell where they stood is not an object they left; nor is one the detector lost)
            attended = True
        if attended:
            o.last_attended = t
            # an open alarm ends when its owner comes back; with no owner id, when someone stays by it
            if o.alarm is not None and (owner_near or o.owner is None):
                hits.append(self._end(o, t, "owner_returned" if owner_near else "attended"))
            if o.alarm is None:
                return hits
        if o.alarm is not None:
            if box_iou(o.alarm.box, full) < 0.7:
                o.alarm.box = full
                hits.append(hit("update", o.alarm))
            return hits
        unattended_for = t - o.last_attended
        still = o.still_frac >= 0.3 or o.last_det >= t - 1e-6  # still there and still now
        if o.unrest <= MAX_UNREST and still:  # diagnostics: how close anything came to an alarm
            self.max_unattended = max(self.max_unattended, unattended_for)
        if o.alarm is None and unattended_for >= c.unattended_seconds and o.unrest <= MAX_UNREST and still:
            like = self._object_likeness(img, L8, fgx, o.box, o.mask)
            self.debug.setdefault("likeness", []).append((o.oid, round(like, 2)))
            if like < c.ghost_ratio:  # a ghost: what was in the background left; learn it
                self._absorb(img, o.box, o.mask)
                self.objs.remove(o)
                return hits
            self.n_alarms += 1
            o.alarm = Alarm(
                rule=self.rule.name,
                type=self.rule.type,
                label=o.label or "object",
                track_id=None,
                start=t,
                start_frame=self.frame,
                score=o.det_score or 1.0,
                box=full,
                priority=self.rule.priority,
                zone=self.rule.zone,
                object_id=o.oid,
                owner_track_id=o.owner,
                left_at=round(o.left_at, 2),
            )
            o.alarmed_once = True
            hits.append(hit("start", o.alarm))
        return hits

    def _end(self, o: _Obj, t: float, reason: str) -> RuleHit:
        """reason: removed, owner_returned, attended (someone stood by it; no owner id) or stream_end."""
        alarm, o.alarm = o.alarm, None
        alarm.end, alarm.end_frame = t, self.frame
        self.ended_why[alarm.object_id] = reason
        return hit("end", alarm)
