"""Ground-truth events from MOT files: a hand-made one with known events, and PETS09-S2L1."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pipeline.assets import asset_dir
from pipeline.config import CameraConfig, load_config
from pipeline.eval.truth import events_from_mot, mot_tracks

PETS_GT = asset_dir() / "footage" / "pets09-s2l1.gt.txt"
INSIDE = (40, 30)  # top-left of a 20x20 box whose bottom-centre (50, 50) is in the zone
OUTSIDE = (290, 30)  # bottom-centre (300, 50): outside the zone, beyond the line x = 200

CFG = CameraConfig.model_validate(
    {
        "source": "video.avi",
        "zones": {"z": {"polygon": [[0, 0], [100, 0], [100, 100], [0, 100]]}},
        "lines": {"l": {"points": [[200, 0], [200, 100]]}},
        "rules": [
            {"name": "in", "type": "intrusion", "zone": "z"},
            {"name": "cross", "type": "line_crossing", "line": "l"},
            {"name": "loiter", "type": "loitering", "zone": "z", "min_seconds": 2},
            {"name": "crowd", "type": "crowding", "zone": "z", "min_count": 2, "min_seconds": 0.5},
        ],
    }
)


def _rows(track_id: int, frames: range, corner: tuple[int, int], consider: int = 1) -> list[str]:
    return [f"{f},{track_id},{corner[0]},{corner[1]},20,20,{consider},-1,-1,0" for f in frames]


@pytest.fixture
def gt(tmp_path: Path) -> Path:
    """MOT frames are 1-based, so MOT frame f is at (f - 1) / 10 s."""
    rows = (
        _rows(1, range(1, 26), INSIDE)  # inside 0.0-2.4 s, then crosses the line at 2.5 s
        + _rows(1, range(26, 31), OUTSIDE)
        + _rows(2, range(1, 31), INSIDE, consider=0)  # far away: ignored
        + _rows(3, range(1, 6), INSIDE)  # a 0.5 s gap (0.5-0.9 s) bridged, then lost after 1.4 s
        + _rows(3, range(11, 16), INSIDE)
        + _rows(4, range(1, 4), INSIDE)  # a 2.7 s gap: lost, and back as a new visit
        + _rows(4, range(31, 34), INSIDE)
    )
    path = tmp_path / "gt.txt"
    path.write_text("\n".join(sorted(rows, key=lambda r: int(r.split(",")[0]))) + "\n")
    return path


def _by_rule(events: list[dict[str, Any]], *keys: str) -> dict[str, set[tuple[Any, ...]]]:
    out: dict[str, set[tuple[Any, ...]]] = {}
    for e in events:
        out.setdefault(e["rule"], set()).add(tuple(e[k] for k in keys))
    return out


def test_mot_tracks_keep_short_gaps_and_drop_far_people(gt: Path) -> None:
    frames = list(mot_tracks(gt, fps=10))
    assert [f for _, f, _ in frames] == list(range(33))
    t, _, tracks = frames[7]
    assert t == 0.7 and sorted(tr.track_id for tr in tracks) == [1, 3, 4]
    three = next(tr for tr in tracks if tr.track_id == 3)
    assert (three.last_seen, three.last_frame, three.box, three.label) == (0.4, 4, (40.0, 30.0, 60.0, 50.0), "person")
    assert sorted(tr.track_id for tr in frames[25][2]) == [1, 3]  # 4 lost at 1.8 s, 3 kept to 2.9 s
    assert sorted(tr.track_id for tr in frames[30][2]) == [1, 4]


def test_events_from_hand_made_mot(gt: Path) -> None:
    events = events_from_mot(gt, CFG, "cam", fps=10)
    assert all(e["camera"] == "cam" for e in events) and len({e["id"] for e in events}) == len(events)
    assert _by_rule(events, "track_id", "start", "end") == {
        "in": {(1, 0.0, 2.4), (3, 0.0, 1.4), (4, 0.0, 0.2), (4, 3.0, 3.2)},
        "cross": {(1, 2.5, 2.5)},
        "loiter": {(1, 2.0, 2.4)},
        "crowd": {(None, 0.5, 2.4)},
    }
    loiter = next(e for e in events if e["rule"] == "loiter")
    crowd = next(e for e in events if e["rule"] == "crowd")
    cross = next(e for e in events if e["rule"] == "cross")
    assert (loiter["entered_at"], crowd["count"], cross["direction"]) == (0.0, 3, "b_to_a")


@pytest.mark.skipif(not PETS_GT.is_file(), reason=f"{PETS_GT} not found")
def test_pets09_truth_counts() -> None:
    """Measured, and checked independently by counting runs of inside rows and sign changes of x - 420."""
    cam = load_config(Path(__file__).parents[1] / "configs" / "pets09.yaml").cameras["pets"]
    events = events_from_mot(PETS_GT, cam, "pets", fps=10)
    assert Counter(e["rule"] for e in events) == {
        "west-intrusion": 17,
        "mid-cross": 29,
        "west-loiter": 3,
        "west-crowd": 1,
    }
    # Every loitering visit is also an intrusion visit of the same track that ends with it.
    visits = {(e["track_id"], e["start"], e["end"]) for e in events if e["rule"] == "west-intrusion"}
    for e in events:
        if e["rule"] == "west-loiter":
            assert (e["track_id"], e["entered_at"], e["end"]) in visits
            assert e["start"] - e["entered_at"] >= 8 - 1e-6
    assert Counter(e["direction"] for e in events if e["rule"] == "mid-cross") == {"a_to_b": 16, "b_to_a": 13}
