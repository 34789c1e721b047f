"""Abandoned objects and fire end to end on real clips: `cctv replay` with the shipped configs, events asserted.

The windows are the clips' labels (`sample_videos/events/labels.csv`, `configs/clip-labels.csv`); what
`cctv eval-clips` reaches on all of them is in the README.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, cctv

VIDEOS = ROOT / "sample_videos"


def replay(tmp_path: Path, video: Path, config: str) -> list[dict]:
    out = tmp_path / "out"
    result = cctv("replay", video, "--config", ROOT / "configs" / config, "--out", out)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]


def inside(box: list[float], x: float, y: float) -> bool:
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


@pytest.mark.parametrize(
    ("video", "config", "alarm_in", "left_in", "bag_at"),
    [
        # PETS 2006 S1 camera 3: a backpack put down about 31 s, the owner gone about 35 s; truth from 45 s
        (VIDEOS / "events" / "abandoned" / "pets2006_s1_c3.mp4", "abandoned.yaml", (45.0, 50.33), (29.0, 33.0), (330, 424)),
        # ABODA video 4: a bag the detector does not find, left about 13-14 s beside a utility box
        (VIDEOS / "aboda-video4-left-bag.avi", "abandoned.yaml", (30.0, 39.0), (12.5, 15.0), (480, 390)),
        # synthetic: the owner walks out on the right, the tracker gives the owner's id to someone entering there
        (VIDEOS / "synthetic-suspicious.mp4", "abandoned-short.yaml", (5.5, 8.0), (0.8, 2.0), (408, 410)),
    ],
    ids=["pets2006", "aboda", "synthetic"],
)
def test_left_objects_are_found_once_with_their_owner(
    tmp_path: Path, video: Path, config: str, alarm_in: tuple[float, float], left_in: tuple[float, float],
    bag_at: tuple[float, float],
) -> None:
    (event,) = replay(tmp_path, video, config)
    assert event["type"] == "abandoned_object" and event["owner_track_id"] is not None
    assert alarm_in[0] <= event["start"] <= alarm_in[1] and left_in[0] <= event["left_at"] <= left_in[1]
    assert inside(event["box"], *bag_at)


def test_flames_are_fire_and_tail_lights_are_not(tmp_path: Path) -> None:
    (event,) = replay(tmp_path / "fire", VIDEOS / "events" / "fire" / "controlled1.avi", "fire.yaml")
    assert event["type"] == "fire" and event["start"] <= 17.33 and event["box"][2] - event["box"][0] > 40
    assert replay(tmp_path / "cars", VIDEOS / "dual-carriageway-cars.mp4", "fire.yaml") == []
