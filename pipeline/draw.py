"""All drawing in one place: a camera's zones and lines, tracked boxes with ids, alarms, evidence boxes.

Colours are BGR. Used by the annotated replay video and by evidence snapshots.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np

from pipeline.config import CameraConfig
from pipeline.rules import Alarm
from pipeline.types import Box, Track

ZONE = (255, 200, 0)
LINE = (0, 200, 255)
TRACK = (80, 220, 80)
CANDIDATE = (160, 160, 160)  # tracked but not yet allowed to trigger (filters, persistence)
ALARM = (40, 40, 240)


def _text(image: np.ndarray, text: str, org: tuple[int, int], color: tuple[int, int, int], scale: float) -> None:
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x, y = org
    cv2.rectangle(image, (x, y - h - base), (x + w + 4, y + 2), color, -1)
    cv2.putText(image, text, (x + 2, y - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)


def draw_title(image: np.ndarray, text: str, row: int = 0) -> None:
    """A rule's name on one of the title lines at the top left; in place."""
    scale = max(0.4, image.shape[0] / 1200)
    _text(image, text, (8, 24 + row * round(28 * scale / 0.5)), ALARM, scale * 1.4)


def draw_box(image: np.ndarray, box: Box, color: tuple[int, int, int] = ALARM) -> None:
    """A box outline in place (an event's object on its snapshot)."""
    x1, y1, x2, y2 = (round(v) for v in box)
    cv2.rectangle(image, (x1, y1), (x2, y2), color, 2)


def draw_geometry(image: np.ndarray, cfg: CameraConfig, zones: Iterable[str] | None = None,
                  lines: Iterable[str] | None = None) -> None:
    """The camera's zones and lines in place (None: all of them)."""
    scale = max(0.4, image.shape[0] / 1200)
    for name in cfg.zones if zones is None else zones:
        pts = np.round(np.asarray(cfg.zones[name].polygon)).astype(np.int32)
        cv2.polylines(image, [pts], True, ZONE, 2, cv2.LINE_AA)
        _text(image, name, tuple(pts[0]), ZONE, scale)
    for name in cfg.lines if lines is None else lines:
        (x1, y1), (x2, y2) = (tuple(round(v) for v in p) for p in cfg.lines[name].points)
        cv2.line(image, (x1, y1), (x2, y2), LINE, 2, cv2.LINE_AA)
        _text(image, f"{name} A", (x1, y1), LINE, scale)
        _text(image, "B", (x2, y2), LINE, scale)


def draw_event(image: np.ndarray, cfg: CameraConfig | None, event: Alarm, box: Box | None) -> np.ndarray:
    """One event on a frame of its clip: its rule's zone or line, its box (when given) and its label; in place
    (the rule's name goes on a title line, `draw_title`)."""
    if cfg is not None:
        draw_geometry(image, cfg, [event.zone] if event.zone in cfg.zones else [],
                      [event.line] if event.line in cfg.lines else [])
    scale = max(0.4, image.shape[0] / 1200)
    if box is not None:
        draw_box(image, box)
        x1, y1 = round(box[0]), round(box[1])
        _text(image, event.label or event.type, (x1, max(y1, 14)), ALARM, scale)
    return image


def annotate(
    image: np.ndarray,
    cfg: CameraConfig,
    tracks: Sequence[Track],
    eligible: Sequence[Track],
    alarms: Iterable[tuple[str, int | None, int | None]],
) -> np.ndarray:
    """A copy of the frame with the camera's geometry, its tracks and the alarms (by key) open after it."""
    alarms = frozenset(alarms)
    out = image.copy()
    scale = max(0.4, out.shape[0] / 1200)
    draw_geometry(out, cfg)
    allowed = {t.track_id for t in eligible}
    alarmed = {track_id for _, track_id, _ in alarms}
    for track in tracks:
        color = ALARM if track.track_id in alarmed else TRACK if track.track_id in allowed else CANDIDATE
        draw_box(out, track.box, color)
        x1, y1 = round(track.box[0]), round(track.box[1])
        _text(out, f"#{track.track_id} {track.label} {track.score:.2f}", (x1, max(y1, 14)), color, scale)
    for i, rule in enumerate(sorted({rule for rule, _, _ in alarms})):
        draw_title(out, f"ALARM {rule}", i)
    return out
