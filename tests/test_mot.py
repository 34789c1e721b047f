"""MOT scoring on tiny hand-made sequences whose MOTA and IDF1 are worked out by hand.

Two people, A and B, walk for 4 frames (8 true boxes); a far-away person C is marked consider=0.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.eval.mot import evaluate_mot, load_mot
from pipeline.formats import Prediction, write_tracks

pytest.importorskip("motmetrics")

A = [(10 + 5 * f, 10, 30 + 5 * f, 60) for f in range(4)]  # x1, y1, x2, y2 per frame
B = [(200 - 5 * f, 20, 220 - 5 * f, 70) for f in range(4)]
C = (400, 300, 410, 320)  # consider=0: too far away to count


@pytest.fixture
def gt_path(tmp_path: Path) -> Path:
    rows = []
    for f in range(4):
        for tid, (x1, y1, x2, y2), consider in ((1, A[f], 1), (2, B[f], 1), (3, C, 0)):
            rows.append(f"{f + 1},{tid},{x1},{y1},{x2 - x1},{y2 - y1},{consider},-1,-1,-1")
    path = tmp_path / "gt.txt"
    path.write_text("\n".join(rows) + "\n")
    return path


def tracks(a_ids: list[int | None], b_ids: list[int | None]) -> dict[int, list[Prediction]]:
    """Predictions that follow A and B exactly, with the given id per frame (None: not output)."""
    return {
        f: [(tid, *box) for tid, box in ((a_ids[f], A[f]), (b_ids[f], B[f])) if tid is not None]
        for f in range(4)
    }


def test_perfect_tracker(gt_path: Path) -> None:
    s = evaluate_mot(gt_path, tracks([7, 7, 7, 7], [9, 9, 9, 9]))
    assert (s.mota, s.idf1, s.id_switches, s.precision, s.recall, s.num_frames) == (1.0, 1.0, 0, 1.0, 1.0, 4)
    if s.hota is not None:
        assert s.hota == pytest.approx(1.0)


def test_one_id_switch(gt_path: Path) -> None:
    s = evaluate_mot(gt_path, tracks([7, 7, 8, 8], [9, 9, 9, 9]))
    assert s.id_switches == 1
    assert s.mota == pytest.approx(1 - 1 / 8)
    # A's best single id covers 2 of its 4 boxes: IDTP 6, IDFN 2, IDFP 2 -> 12 / 16.
    assert s.idf1 == pytest.approx(0.75)
    assert (s.precision, s.recall) == (1.0, 1.0)


def test_one_miss(gt_path: Path) -> None:
    s = evaluate_mot(gt_path, tracks([7, 7, 7, 7], [9, None, 9, 9]))
    assert s.id_switches == 0
    assert s.mota == pytest.approx(1 - 1 / 8)
    assert s.idf1 == pytest.approx(14 / 15)  # IDTP 7, IDFN 1, IDFP 0
    assert (s.precision, s.recall) == (1.0, pytest.approx(7 / 8))


def test_prediction_on_ignored_person_is_not_a_false_positive(gt_path: Path) -> None:
    on_ignored = tracks([7, 7, 7, 7], [9, 9, 9, 9])
    on_ignored[1].append((5, *C))
    assert evaluate_mot(gt_path, on_ignored).mota == 1.0
    elsewhere = tracks([7, 7, 7, 7], [9, 9, 9, 9])
    elsewhere[1].append((5, 600, 300, 610, 320))
    s = evaluate_mot(gt_path, elsewhere)
    assert s.mota == pytest.approx(1 - 1 / 8) and s.precision == pytest.approx(8 / 9)


def test_only_the_given_frames_count(gt_path: Path) -> None:
    every_second = {f: p for f, p in tracks([7, 7, 7, 7], [9, 9, 9, 9]).items() if f % 2 == 0}
    s = evaluate_mot(gt_path, every_second, frames=range(0, 4, 2))
    assert (s.mota, s.idf1, s.num_frames) == (1.0, 1.0, 2)
    assert evaluate_mot(gt_path, every_second).recall == pytest.approx(0.5)


def test_write_mot_round_trips(gt_path: Path, tmp_path: Path) -> None:
    predictions = tracks([7, 7, 7, 7], [9, 9, 9, 9])
    out = tmp_path / "pred.txt"
    write_tracks(out, predictions)
    loaded = load_mot(out)
    assert {f: [(g.track_id, *g.box) for g in boxes] for f, boxes in loaded.items()} == predictions
    assert all(g.consider for boxes in loaded.values() for g in boxes)
    assert evaluate_mot(gt_path, predictions).mota == 1.0
    assert [g.consider for g in load_mot(gt_path)[0]] == [True, True, False]


def test_no_tracks_at_all(gt_path: Path) -> None:
    s = evaluate_mot(gt_path, {})
    assert (s.mota, s.idf1, s.precision, s.recall, s.num_frames) == (0.0, 0.0, 0.0, 0.0, 4)
