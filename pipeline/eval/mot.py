"""Multi-object tracking accuracy against MOTChallenge ground truth: CLEAR MOT, IDF1 and HOTA.

The tracker and its parameters were chosen by these numbers on PETS09-S2L1, so `cctv eval-mot`
must score the same way: a prediction and a true box match at IoU >= 0.5, frames are the
0-based video frame indices (MOT frame `f` is video frame `f - 1`), and `consider=0` rows (people
too far away to annotate reliably) are ignore regions — a prediction on one is dropped, neither a
hit nor a false positive, and the box itself is never a miss.

motmetrics (the `eval` extra) does the CLEAR MOT and IDF1 bookkeeping; the IoU matrices are
computed here because its own `iou_matrix` calls `np.asfarray`, which numpy 2 removed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from pipeline.formats import Prediction, Predictions
from pipeline.geometry import ious

MATCH_IOU = 0.5  # the MOTChallenge threshold for a true positive and for an ignored prediction

from pipeline.types import Box


@dataclass(frozen=True, slots=True)
class GtBox:
    track_id: int
    box: Box
    consider: bool  # False: an ignore region, not a person the tracker must find


@dataclass(frozen=True, slots=True)
class MotScores:
    mota: float
    idf1: float
    id_switches: int
    precision: float
    recall: float
    num_frames: int
    hota: float | None  # None when `trackers` (which computes it) is not installed


def load_mot(path: str | Path) -> dict[int, list[GtBox]]:
    """MOTChallenge ground truth (`frame,id,x,y,w,h,consider,...`) keyed by 0-based frame index."""
    frames: dict[int, list[GtBox]] = {}
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        f = line.split(",")
        x, y, w, h = (float(v) for v in f[2:6])
        consider = len(f) < 7 or float(f[6]) != 0
        frames.setdefault(int(f[0]) - 1, []).append(GtBox(int(f[1]), (x, y, x + w, y + h), consider))
    return frames


def evaluate_mot(
    gt_path: str | Path,
    predictions: Predictions,
    frames: Iterable[int] | None = None,
) -> MotScores:
    """Score tracks against ground truth on `frames` (default: every frame with truth or tracks).

    Pass `frames` when the tracker saw only some frames (e.g. every second one at 5 fps), so the
    frames it never saw do not count as misses.
    """
    import motmetrics as mm  # optional `eval` extra: only scoring needs it

    gt = load_mot(gt_path)
    frame_list = sorted(set(gt) | set(predictions)) if frames is None else sorted(set(frames))
    acc = mm.MOTAccumulator(auto_id=False)
    hota_gt: list[np.ndarray] = []
    hota_pred: list[np.ndarray] = []
    hota_iou: list[np.ndarray] = []
    for frame in frame_list:
        truth = [g for g in gt.get(frame, []) if g.consider]
        ignored = [g.box for g in gt.get(frame, []) if not g.consider]
        preds = _drop_ignored([g.box for g in truth], ignored, list(predictions.get(frame, [])))
        gt_ids = np.array([g.track_id for g in truth], dtype=int)
        pred_ids = np.array([p[0] for p in preds], dtype=int)
        iou = ious([g.box for g in truth], [p[1:] for p in preds])
        acc.update(gt_ids, pred_ids, np.where(iou >= MATCH_IOU, 1.0 - iou, np.nan), frameid=frame)
        hota_gt.append(gt_ids)
        hota_pred.append(pred_ids)
        hota_iou.append(iou)
    summary = mm.metrics.create().compute(
        acc, metrics=["mota", "idf1", "num_switches", "precision", "recall", "num_frames"]
    )
    row = summary.iloc[0]
    return MotScores(
        mota=_finite(row["mota"]),
        idf1=_finite(row["idf1"]),
        id_switches=int(row["num_switches"]),
        precision=_finite(row["precision"]),
        recall=_finite(row["recall"]),
        num_frames=len(frame_list),
        hota=_hota(hota_gt, hota_pred, hota_iou),
    )


def _drop_ignored(truth: Sequence[Box], ignored: Sequence[Box], preds: list[Prediction]) -> list[Prediction]:
    """Predictions minus those on an ignore region; one that matches a real person is kept.

    Matching the real people first (optimal assignment at IoU >= 0.5) keeps a correct track
    that also happens to overlap a nearby ignored person from being thrown away.
    """
    if not ignored or not preds:
        return preds
    boxes = [p[1:] for p in preds]
    matched: set[int] = set()
    if truth:
        iou = ious(truth, boxes)
        rows, cols = linear_sum_assignment(iou, maximize=True)
        matched = {int(c) for r, c in zip(rows, cols) if iou[r, c] >= MATCH_IOU}
    on_ignored = (ious(boxes, ignored) > MATCH_IOU).any(axis=1)
    return [p for i, p in enumerate(preds) if i in matched or not on_ignored[i]]


def _finite(value: float) -> float:
    """motmetrics gives NaN for ratios over nothing (no truth, no tracks); report 0 instead."""
    return float(value) if np.isfinite(value) else 0.0


def _hota(gt_ids: list[np.ndarray], pred_ids: list[np.ndarray], iou: list[np.ndarray]) -> float | None:
    """HOTA averaged over IoU thresholds 0.05..0.95, from the `trackers` package when present."""
    try:
        from trackers.eval import compute_hota_metrics
    except ImportError:
        return None
    return float(compute_hota_metrics(gt_ids, pred_ids, iou)["HOTA"])
