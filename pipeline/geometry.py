"""Plane geometry the rules need, in source-frame pixels (x right, y down)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from pipeline.types import Box, Point


def polygon_array(polygon: Sequence[Point]) -> np.ndarray:
    """A polygon as the float32 contour OpenCV expects, built once per zone rather than per test."""
    return np.asarray(polygon, dtype=np.float32).reshape(-1, 1, 2)


def in_polygon(point: Point, polygon: np.ndarray) -> bool:
    """Inside or on the border: an object standing on a zone's edge is in the zone."""
    return cv2.pointPolygonTest(polygon, (float(point[0]), float(point[1])), False) >= 0


def side(a: Point, b: Point, p: Point) -> float:
    """Cross product (b - a) x (p - a): positive on one side of the line a->b, negative on the other, 0 on it."""
    return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])


def segments_intersect(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    """Whether segments p1-p2 and q1-q2 share a point (touching counts)."""
    d1, d2 = side(q1, q2, p1), side(q1, q2, p2)
    d3, d4 = side(p1, p2, q1), side(p1, p2, q2)
    if d1 == d2 == 0:  # collinear: they meet only if their extents overlap on both axes
        return all(
            max(min(p1[k], p2[k]), min(q1[k], q2[k])) <= min(max(p1[k], p2[k]), max(q1[k], q2[k])) for k in (0, 1)
        )
    return d1 * d2 <= 0 and d3 * d4 <= 0


def in_zone(point: Point, polygon: np.ndarray | None) -> bool:
    """In the polygon, or anywhere when there is none (a rule without a zone watches the whole frame)."""
    return polygon is None or in_polygon(point, polygon)


def box_overlap(a: Box, b: Box) -> float:
    """The area two boxes share."""
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def box_inside(a: Box, b: Box) -> float:
    """The fraction of box `a` that lies inside box `b`."""
    return box_overlap(a, b) / max((a[2] - a[0]) * (a[3] - a[1]), 1e-6)


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    inter = box_overlap(a, b)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def box_gap(a: Box, b: Box) -> float:
    """The distance between two boxes' nearest points (0 when they touch or overlap)."""
    dx = max(b[0] - a[2], a[0] - b[2], 0.0)
    dy = max(b[1] - a[3], a[1] - b[3], 0.0)
    return float(np.hypot(dx, dy))


def ious(a: np.ndarray | Sequence[Sequence[float]], b: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """IoU of every box in `a` (x1, y1, x2, y2) with every box in `b`, shape (len(a), len(b))."""
    a_ = np.asarray(a, dtype=float).reshape(-1, 4)
    b_ = np.asarray(b, dtype=float).reshape(-1, 4)
    lt = np.maximum(a_[:, None, :2], b_[None, :, :2])
    rb = np.minimum(a_[:, None, 2:], b_[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a_[:, 2:] - a_[:, :2], axis=1)
    area_b = np.prod(b_[:, 2:] - b_[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
