"""Where source pixels go on the model's input canvas: letterbox or packed motion regions.

Regions of several consecutive frames of one camera may share a canvas (`pack_frames`): when
motion is sparse, one inference then serves several frames. The packed canvases of several cameras
may share one inference too (`merge_layouts`), each tile kept at no less than its frame's letterbox scale.

The regions (with context around them) are packed side by side into one canvas at a common scale
that is never below the full frame's letterbox scale; when they do not fit, the frame is
letterboxed instead, so packing is never worse than the full frame and there is always exactly one
inference per frame. A fixed-size model (640x640) costs the same whatever it is fed, so its regions
are packed at the largest scale up to 1 that fits. A model that takes any size (`fit`, multiples of
32) is fed only what it needs: a full frame letterboxed at its own aspect (1080p: 640x384), and
regions in the smallest of a few canvas shapes that holds them at the full-frame scale (then at the
largest scale that canvas allows), so only a handful of shapes are ever compiled.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import supervision as sv

from pipeline.types import Box

PAD_VALUE = 114  # Ultralytics' letterbox grey: what the model saw around images in training
STRIDE = 32  # a flexible model's input sides are multiples of its coarsest stride
# A canvas is compiled (0.4-0.8 s, 30-45 MB) once it has been used enough to pay for it, and runs padded on a
# larger compiled one until then (`FlexibleYolo`). 416x416 costs 0.95 of 480x480, but without it
# PETS 2006's left bag is packed at another scale and missed (`cctv eval-clips --event abandoned`).
PACK_CANVASES = ((320, 320), (416, 416), (480, 480), (640, 384), (640, 480), (640, 640))
# One inference costs about a fixed part plus a part in proportion to the canvas area (measured on this
# CPU, YOLO11n: 320x320 0.36, 480x480 0.6, 640x384 0.6 of a 640x640 inference).
FIXED_COST = 0.2
Rect = tuple[int, int, int, int]  # x1, y1, x2, y2 in whole pixels
Size = tuple[int, int]  # width, height


@dataclass(frozen=True)
class Tile:
    """One source rectangle (of image number `image` in a batch) and the canvas rectangle it is resized into."""

    src: Rect
    dst: Rect
    image: int = 0


@dataclass(frozen=True)
class Layout:
    """The tiles of one canvas; `mode` says whether it is the letterboxed frame or packed regions.

    `frames`: the size of each image the tiles index (images of several cameras differ)."""

    frames: tuple[Size, ...]
    size: Size
    tiles: tuple[Tile, ...]
    mode: Literal["full", "packed"]

    def render(self, *images: np.ndarray) -> np.ndarray:
        """The canvas (BGR uint8, grey where no tile lies) of the images the tiles index."""
        width, height = self.size
        canvas = np.full((height, width, 3), PAD_VALUE, np.uint8)
        for tile in self.tiles:
            sx1, sy1, sx2, sy2 = tile.src
            dx1, dy1, dx2, dy2 = tile.dst
            crop = images[tile.image][sy1:sy2, sx1:sx2]
            if crop.shape[:2] != (dy2 - dy1, dx2 - dx1):
                crop = cv2.resize(crop, (dx2 - dx1, dy2 - dy1), interpolation=cv2.INTER_LINEAR)
            canvas[dy1:dy2, dx1:dx2] = crop
        return canvas

    def to_source(self, detections: sv.Detections) -> sv.Detections:
        """Canvas detections in source pixels, clipped to the tile that owns them.

        `data["image"]` says which image of the batch each detection belongs to.
        A tile owns the detections centred on it. A detection centred on the padding is an
        artefact of the canvas and dropped, unless it lies beyond a tile side that is also the
        frame's border: an object entering the picture, whose box the model extends outside.
        """
        if not len(detections):
            detections.data["image"] = np.empty(0, int)
            return detections
        src = np.array([t.src for t in self.tiles], np.float32)
        dst = np.array([t.dst for t in self.tiles], np.float32)
        low = np.where(src[:, :2] <= 0, -np.inf, dst[:, :2])
        frames = np.array([self.frames[t.image] for t in self.tiles], np.float32)
        high = np.where(src[:, 2:] >= frames, np.inf, dst[:, 2:])
        centre = (detections.xyxy[:, None, :2] + detections.xyxy[:, None, 2:]) / 2
        on_tile = ((centre >= dst[:, :2]) & (centre < dst[:, 2:])).all(axis=2)
        beyond_border = ((centre >= low) & (centre < high)).all(axis=2)
        rank = 2 * on_tile + beyond_border
        keep = rank.max(axis=1) > 0
        detections = detections[keep]
        tile = rank[keep].argmax(axis=1)
        s, d = src[tile][:, None], dst[tile][:, None]  # (n, 1, 4): broadcast over both corners
        gain = (s[..., 2:] - s[..., :2]) / (d[..., 2:] - d[..., :2])
        corners = (detections.xyxy.reshape(-1, 2, 2) - d[..., :2]) * gain + s[..., :2]
        corners = np.clip(corners, s[..., :2], s[..., 2:])
        detections.xyxy = corners.reshape(-1, 4).astype(np.float32)
        if "keypoints" in detections.data:  # a pose model's keypoints move with their box
            points = detections.data["keypoints"].copy()
            points[..., :2] = (points[..., :2] - d[..., :2]) * gain + s[..., :2]
            detections.data["keypoints"] = points
        detections.data["image"] = np.array([t.image for t in self.tiles], int)[tile]
        return detections


def _stride_ceil(value: int) -> int:
    return STRIDE * math.ceil(value / STRIDE)


def letterbox(frame: Size, size: Size, fit: bool = False) -> Layout:
    """The whole frame, scaled to fit `size` and centred as Ultralytics does; with `fit`, on a canvas
    only as large as the scaled frame needs (rounded up to the stride) rather than all of `size`."""
    width, height = frame
    scale = min(size[0] / width, size[1] / height)
    new_w, new_h = round(width * scale), round(height * scale)
    canvas = (_stride_ceil(new_w), _stride_ceil(new_h)) if fit else size
    left, top = (canvas[0] - new_w) // 2, (canvas[1] - new_h) // 2
    return Layout((frame,), canvas, (Tile((0, 0, width, height), (left, top, left + new_w, top + new_h)),), "full")


def pack_frames(
    regions: Sequence[Sequence[Box]],
    frame: Size,
    size: Size,
    margin: float = 0.2,
    min_size: int = 64,
    gap: int = 4,
    fit: bool = False,
) -> Layout | None:
    """Frame i's `regions[i]` grown by `margin` (of their size, per side) to >= `min_size` px, merged, packed.

    The frames are of one camera (same size). The common scale is the largest up to 1 at which
    every tile fits; None when that is below the letterbox scale (or a frame's regions cover it
    whole), meaning: letterbox instead. With `fit` the canvas is the smallest of `PACK_CANVASES`
    (within `size`) that holds them, provided one inference on it costs less than letterboxing each
    of the frames on its own canvas (see `inference_cost`).
    """
    width, height = frame
    full = min(size[0] / width, size[1] / height)
    if full > 1:
        return None
    rects: list[Rect] = []
    owners: list[int] = []
    for image, boxes in enumerate(regions):
        merged = _merge([_expand(box, frame, margin, min_size) for box in boxes])
        if merged == [(0, 0, width, height)]:
            return None
        rects += merged
        owners += [image] * len(merged)
    if not rects:
        return None
    canvases = [size]
    if fit:
        budget = len(regions) * inference_cost(letterbox(frame, size, fit=True).size, size)
        within = [c for c in PACK_CANVASES if c[0] <= size[0] and c[1] <= size[1]]
        canvases = sorted((c for c in within if inference_cost(c, size) < budget), key=lambda c: c[0] * c[1])
    for canvas in canvases:
        placed = _best_fit(rects, canvas, gap, low=full)
        if placed is not None:
            tiles = tuple(Tile(r, d, i) for r, d, i in zip(rects, placed, owners))
            return Layout((frame,) * len(regions), canvas, tiles, "packed")
    return None


def merge_layouts(layouts: Sequence[Layout], size: Size, gap: int = 4) -> Layout | None:
    """Packed canvases (of several cameras) as one, when it has fewer pixels than theirs together.

    Every tile keeps its own scale, shrunk by one common factor only as far as keeps each at or
    above its frame's letterbox scale on `size`, so the detector sees no less detail than the frame
    alone. The images are numbered on: the second layout's image 0 follows the first's images.
    """
    if any(layout.mode != "packed" for layout in layouts):
        raise ValueError("only packed canvases merge")
    tiles = [t for layout in layouts for t in layout.tiles]
    frames = [f for layout in layouts for f in layout.frames]
    floor = 0.0
    for layout in layouts:
        for tile in layout.tiles:
            width, height = layout.frames[tile.image]
            full = min(size[0] / width, size[1] / height)
            floor = max(floor, full * (tile.src[2] - tile.src[0]) / (tile.dst[2] - tile.dst[0]))
    # By area, not `inference_cost`: its fixed part was measured on a Xeon; on an EPYC (`cctv bench-shapes`)
    # the cost is nearly in proportion to the area, and two 320x320 canvases merged onto 480x480 cost 12 % more.
    budget = sum(layout.size[0] * layout.size[1] for layout in layouts)
    rects = [(0, 0, t.dst[2] - t.dst[0], t.dst[3] - t.dst[1]) for t in tiles]
    fitting = (c for c in PACK_CANVASES if c[0] <= size[0] and c[1] <= size[1] and c[0] * c[1] < budget)
    for canvas in sorted(fitting, key=lambda c: c[0] * c[1]):
        placed = _best_fit(rects, canvas, gap, low=min(floor, 1.0))
        if placed is not None:
            first = list(itertools.accumulate((len(layout.frames) for layout in layouts), initial=0))
            owners = [first[k] + t.image for k, layout in enumerate(layouts) for t in layout.tiles]
            merged = tuple(Tile(t.src, d, i) for t, d, i in zip(tiles, placed, owners))
            return Layout(tuple(frames), canvas, merged, "packed")
    return None


def inference_cost(canvas: Size, size: Size) -> float:
    """The cost of one inference on `canvas`, relative to one on the full `size` canvas."""
    return FIXED_COST + (1 - FIXED_COST) * canvas[0] * canvas[1] / (size[0] * size[1])


def _expand(box: Box, frame: Size, margin: float, min_size: int) -> Rect:
    """The box with context around it, shifted (not cut) to stay inside the frame."""
    width, height = frame
    x1, y1, x2, y2 = box
    w = min(width, max((x2 - x1) * (1 + 2 * margin), min_size))
    h = min(height, max((y2 - y1) * (1 + 2 * margin), min_size))
    left = min(max((x1 + x2 - w) / 2, 0), width - w)
    top = min(max((y1 + y2 - h) / 2, 0), height - h)
    return (math.floor(left), math.floor(top), min(width, math.ceil(left + w)), min(height, math.ceil(top + h)))


def _area(r: Rect) -> int:
    return (r[2] - r[0]) * (r[3] - r[1])


def _merge(rects: list[Rect]) -> list[Rect]:
    """Join pairs whose bounding rectangle costs no more canvas than the two apart.

    That merges overlapping and neighbouring regions (one tile, no object cut between them) but
    keeps e.g. two regions touching at a corner apart; their shared objects are de-duplicated
    by NMS after mapping back.
    """
    rects = list(rects)
    while (pair := _mergeable(rects)) is not None:
        i, j, union = pair
        rects[i] = union
        del rects[j]
    return rects


def _mergeable(rects: list[Rect]) -> tuple[int, int, Rect] | None:
    for i, j in itertools.combinations(range(len(rects)), 2):
        a, b = rects[i], rects[j]
        union = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
        if _area(union) <= _area(a) + _area(b):
            return i, j, union
    return None


def _shelf_pack(rects: list[Rect], scale: float, size: Size, gap: int) -> list[Rect] | None:
    """Canvas rectangles for `rects` (same order) on shelves, tallest first; None if they overflow."""
    order = sorted(range(len(rects)), key=lambda i: rects[i][3] - rects[i][1], reverse=True)
    placed: dict[int, Rect] = {}
    x = y = shelf = 0
    for i in order:
        r = rects[i]
        w, h = max(1, round((r[2] - r[0]) * scale)), max(1, round((r[3] - r[1]) * scale))
        if x + w > size[0]:
            x, y, shelf = 0, y + shelf + gap, 0
        if x + w > size[0] or y + h > size[1]:
            return None
        placed[i] = (x, y, x + w, y + h)
        x += w + gap
        shelf = max(shelf, h)
    return [placed[i] for i in range(len(rects))]


def _best_fit(rects: list[Rect], size: Size, gap: int, low: float, steps: int = 12) -> list[Rect] | None:
    """Placement at the largest scale in [low, 1] that fits (bisection); None if not even `low` fits."""
    best = _shelf_pack(rects, 1.0, size, gap)
    if best is not None:
        return best
    best = _shelf_pack(rects, low, size, gap)
    high = 1.0
    for _ in range(steps if best is not None else 0):
        mid = (low + high) / 2
        placed = _shelf_pack(rects, mid, size, gap)
        if placed is None:
            high = mid
        else:
            low, best = mid, placed
    return best
