"""Rules on hand-written tracks: exact start/end times, directions, dwell thresholds and crowds."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from pipeline.config import CameraConfig
from pipeline.engine import CameraRun
from pipeline.events import EventChange
from pipeline.geometry import segments_intersect
from pipeline.types import Track

FPS = 10
SQUARE = [[0, 0], [100, 0], [100, 100], [0, 100]]


def camera(*rules: dict[str, Any], track: Iterable[str] = ("person",)) -> CameraConfig:
    return CameraConfig.model_validate(
        {
            "source": "video.avi",
            "objects": {"track": list(track)},
            "zones": {"z": {"polygon": SQUARE}},
            "lines": {"l": {"points": [[0, 0], [0, 100]]}},  # a_to_b: from x > 0 to x < 0
            "rules": list(rules),
        }
    )


def at(track_id: int, x: float, y: float, t: float, score: float = 0.9, label: str = "person") -> Track:
    """A track seen at time t whose bottom-centre point is (x, y)."""
    return Track(track_id, label, (x - 5, y - 20, x + 5, y), score, 0.0, t, round(t * FPS))


def run(cfg: CameraConfig, frames: Iterable[tuple[float, list[Track]]]) -> list[EventChange]:
    """Every change published for the frames, then for closing at the last frame."""
    changes: list[EventChange] = []
    with CameraRun("cam", cfg, fps=FPS, subscribers=[changes.append]) as camera:
        for t, tracks in frames:
            camera.apply(t, round(t * FPS), tracks)
    return changes


def finished(changes: list[EventChange]) -> list[dict[str, Any]]:
    return [c.event.to_dict() for c in changes if c.kind == "end"]


def walk(track_id: int, points: list[tuple[float, float]], first: int = 0) -> list[tuple[float, list[Track]]]:
    """One track sighted at successive points, one frame apart from frame `first`."""
    return [((first + i) / FPS, [at(track_id, x, y, (first + i) / FPS)]) for i, (x, y) in enumerate(points)]


INTRUSION = {"name": "in", "type": "intrusion", "zone": "z", "priority": 2}
LOITER = {"name": "loiter", "type": "loitering", "zone": "z", "min_seconds": 8}
CROWD = {"name": "crowd", "type": "crowding", "zone": "z", "min_count": 3, "min_seconds": 2}


def test_intrusion_enter_leave_and_reenter() -> None:
    """Without inertia every re-entry is a new event (the default inertia merges this one: below)."""
    frames = walk(1, [(150, 50), (50, 50), (60, 50), (150, 50), (50, 50), (150, 50)])
    events = finished(run(camera(INTRUSION | {"inertia": 0}), frames))
    assert [(e["start"], e["end"], e["start_frame"], e["end_frame"]) for e in events] == [
        (0.1, 0.2, 1, 2),
        (0.4, 0.4, 4, 4),
    ]
    first = events[0]
    assert first["id"] == "cam-000001" and events[1]["id"] == "cam-000002"
    assert (first["rule"], first["type"], first["zone"], first["track_id"], first["priority"]) == (
        "in",
        "intrusion",
        "z",
        1,
        2,
    )
    assert first["entered_at"] is None and first["line"] is None and first["count"] is None


def test_reentry_within_inertia_continues_the_event() -> None:
    frames = walk(1, [(150, 50), (50, 50), (60, 50), (150, 50), (50, 50), (150, 50)])
    (event,) = finished(run(camera(INTRUSION), frames))  # out for 0.1 s < inertia 1 s
    assert (event["start"], event["end"]) == (0.1, 0.4)
    late = walk(1, [(150, 50), (50, 50)]) + walk(1, [(150, 50)] * 12, first=2) + walk(1, [(50, 50)], first=14)
    assert [(e["start"], e["end"]) for e in finished(run(camera(INTRUSION), late))] == [(0.1, 0.1), (1.4, 1.4)]


def test_edge_walking_along_a_zone_boundary_is_one_event() -> None:
    """A person walking down the zone's right edge (x = 100), the point jittering 3 px either side."""
    points = [(100 + (3 if k % 3 == 0 else -3), 10 + 2 * k) for k in range(40)]
    (event,) = finished(run(camera(INTRUSION), walk(1, points)))
    assert (event["start"], event["end"]) == (0.1, 3.8)  # first and last sightings inside
    assert len(finished(run(camera(INTRUSION | {"inertia": 0}), walk(1, points)))) == 13


def test_edge_walking_at_irregular_low_rates_is_one_event() -> None:
    times = [0.0, 0.7, 1.1, 2.3, 2.8, 3.9, 4.4, 5.6]  # 0.4 to 1.2 s between analysed frames
    xs = [97, 104, 98, 103, 96, 105, 99, 104]
    frames = [(t, [at(1, x, 50, t)]) for t, x in zip(times, xs)]
    (event,) = finished(run(camera(INTRUSION | {"inertia": 1.5}), frames))
    assert (event["start"], event["end"]) == (0.0, 4.4)


def test_intrusion_keeps_the_best_score_and_its_box() -> None:
    frames = [
        (0.0, [at(1, 10, 50, 0.0, score=0.5)]),
        (0.1, [at(1, 20, 50, 0.1, score=0.8)]),
        (0.2, [at(1, 30, 50, 0.2, score=0.6)]),
    ]
    changes = run(camera(INTRUSION), frames)
    assert [c.kind for c in changes] == ["start", "update", "end"]
    assert len({c.event.id for c in changes}) == 1
    (event,) = finished(changes)
    assert event["score"] == 0.8 and event["box"] == [15.0, 30.0, 25.0, 50.0]


def test_track_lost_inside_ends_at_its_last_sighting() -> None:
    seen = at(1, 50, 50, 0.2)
    frames = walk(1, [(50, 50), (50, 50)]) + [(0.2, [seen]), (0.3, [seen]), (0.4, [seen]), (0.5, [])]
    (event,) = finished(run(camera(INTRUSION), frames))
    assert (event["start"], event["end"], event["end_frame"]) == (0.0, 0.2, 2)


def test_open_event_ends_on_close() -> None:
    changes = run(camera(INTRUSION), walk(1, [(50, 50), (50, 50), (50, 50)]))
    assert [c.kind for c in changes] == ["start", "end"]
    assert (changes[-1].event.start, changes[-1].event.end) == (0.0, 0.2)


@pytest.mark.parametrize(
    ("direction", "expected"),
    [("any", ["a_to_b", "b_to_a"]), ("a_to_b", ["a_to_b"]), ("b_to_a", ["b_to_a"])],
)
def test_line_crossing_directions(direction: str, expected: list[str]) -> None:
    rule = {"name": "x", "type": "line_crossing", "line": "l", "direction": direction}
    frames = walk(1, [(10, 50), (-10, 50), (-20, 50), (10, 60)])
    events = finished(run(camera(rule), frames))
    assert [e["direction"] for e in events] == expected
    times = {"a_to_b": 0.1, "b_to_a": 0.3}
    assert [(e["start"], e["end"]) for e in events] == [(times[d], times[d]) for d in expected]
    assert all(e["line"] == "l" and e["zone"] is None for e in events)


def test_crossing_on_the_extension_does_not_fire() -> None:
    rule = {"name": "x", "type": "line_crossing", "line": "l"}
    assert finished(run(camera(rule), walk(1, [(10, 150), (-10, 150), (10, 200)]))) == []


def test_point_on_the_line_counts_once() -> None:
    rule = {"name": "x", "type": "line_crossing", "line": "l"}
    through = finished(run(camera(rule), walk(1, [(10, 50), (0, 50), (0, 55), (-10, 50)])))
    assert [(e["direction"], e["start"]) for e in through] == [("a_to_b", 0.3)]
    touch_and_back = walk(1, [(10, 50), (0, 50), (10, 50)])
    assert finished(run(camera(rule), touch_and_back)) == []


def test_jitter_across_a_line_is_one_crossing() -> None:
    """Walking from x = 30 to x = -30, then standing on the line x = 0 with the point jittering 4 px."""
    rule = {"name": "x", "type": "line_crossing", "line": "l", "band": 0.25}  # 5 px for 20 px boxes
    jitter = [(4 if k % 2 else -4, 50) for k in range(20)]
    points = [(30, 50), (15, 50)] + jitter + [(-15, 50), (-30, 50)]
    events = finished(run(camera(rule), walk(1, points)))
    assert [(e["direction"], e["start"]) for e in events] == [("a_to_b", 0.2)]  # when it first crossed
    assert len(finished(run(camera(rule | {"band": 0}), walk(1, points)))) == 21
    back = [(30, 50), (15, 50)] + jitter + [(15, 50), (30, 50)]  # and back where it came from
    assert [e["direction"] for e in finished(run(camera(rule), walk(1, back)))] == ["a_to_b", "b_to_a"]


def test_segments_intersect_touching_and_collinear() -> None:
    assert segments_intersect((0, 0), (10, 0), (10, 0), (10, 10))
    assert segments_intersect((0, 0), (10, 0), (5, 0), (20, 0))
    assert not segments_intersect((0, 0), (10, 0), (11, 0), (20, 0))


@pytest.mark.parametrize(("enter_frame", "frames_inside", "fires"), [(0, 80, False), (0, 81, True), (7, 81, True)])
def test_loitering_threshold(enter_frame: int, frames_inside: int, fires: bool) -> None:
    """Inside for frames_inside sightings at 10 fps: 80 sightings span 7.9 s, 81 span exactly 8 s."""
    frames = walk(1, [(50, 50)] * frames_inside + [(150, 50)], first=enter_frame)
    events = finished(run(camera(LOITER), frames))
    if not fires:
        assert events == []
        return
    (event,) = events
    alarm = (enter_frame + 80) / FPS
    assert (event["start"], event["end"], event["entered_at"]) == (alarm, alarm, enter_frame / FPS)
    assert event["start_frame"] == enter_frame + 80 and event["type"] == "loitering"


def test_identity_switch_inside_a_loitering_zone_still_loiters_once() -> None:
    """Track 1 stands in the zone for 5 s and is lost; the tracker finds the same person 0.5 s later as track 2."""
    first = [(k / FPS, [at(1, 50, 50, k / FPS)]) for k in range(50)]
    second = [(k / FPS, [Track(2, "person", (47, 31, 57, 51), 0.9, 5.5, k / FPS, k)]) for k in range(55, 101)]
    changes = run(camera(LOITER), first + second)
    (event,) = finished(changes)
    assert (event["start"], event["entered_at"], event["end"], event["track_id"]) == (8.0, 0.0, 10.0, 2)
    assert [c.kind for c in changes] == ["start", "end"]
    assert finished(run(camera(LOITER | {"handoff_seconds": 0}), first + second)) == []


def test_two_people_seen_together_do_not_hand_off() -> None:
    """Track 2 was seen while track 1 still was: a second person, not an identity switch."""
    first = [(k / FPS, [at(1, 50, 50, k / FPS)]) for k in range(49)]
    both = [(4.9, [at(1, 50, 50, 4.9), Track(2, "person", (47, 31, 57, 51), 0.9, 4.9, 4.9, 49)])]
    second = [(k / FPS, [Track(2, "person", (47, 31, 57, 51), 0.9, 4.9, k / FPS, k)]) for k in range(50, 101)]
    assert finished(run(camera(LOITER), first + both + second)) == []  # neither stayed 8 s


def test_crowd_count_flickering_around_min_count_is_one_event() -> None:
    """Three people in the zone for 9 s; the tracker misses the third at 3.0-3.2 s and at 6.0-6.2 s."""
    frames = []
    for k in range(90):
        t = k / FPS
        count = 2 if k in (30, 31, 32, 60, 61, 62) else 3
        frames.append((t, [at(i, 10 * i, 50, t) for i in range(1, count + 1)]))
    (event,) = finished(run(camera(CROWD), frames))
    assert (event["start"], event["end"], event["count"]) == (2.0, 8.9, 3)
    flickering = finished(run(camera(CROWD | {"end_seconds": 0}), frames))
    assert [(e["start"], e["end"]) for e in flickering] == [(2.0, 2.9), (5.3, 5.9), (8.3, 8.9)]


def test_cooldown_mutes_a_second_alarm() -> None:
    frames = walk(1, [(50, 50), (150, 50), (150, 50), (150, 50), (50, 50), (150, 50)])
    rule = INTRUSION | {"inertia": 0, "cooldown_seconds": 1.0}
    assert [e["start"] for e in finished(run(camera(rule), frames))] == [0.0]
    assert [e["start"] for e in finished(run(camera(rule | {"cooldown_seconds": 0.2}), frames))] == [0.0, 0.4]


def test_crowd_appears_grows_and_disperses() -> None:
    present = {1: range(0, 50), 2: range(0, 60), 3: range(0, 80), 4: range(40, 80)}  # frames inside
    frames = [
        (
            k / FPS,
            [at(i, 10 * i, 50, k / FPS, score=0.5 + 0.01 * i) for i, ks in present.items() if k in ks]
            + [at(5, 150, 50, k / FPS)],
        )  # 5 stands outside the zone
        for k in range(80)
    ]
    changes = run(camera(CROWD), frames)
    (event,) = finished(changes)
    # 3 inside from 0.0 s; alarm once held 2 s; 4 inside from 4.0 s; down to 2 at 6.0 s
    assert (event["start"], event["end"], event["start_frame"], event["end_frame"]) == (2.0, 5.9, 20, 59)
    assert event["count"] == 4 and event["track_id"] is None and event["label"] == "person"
    assert event["score"] == 0.54 and event["box"] == [5.0, 30.0, 45.0, 50.0]
    assert [c.kind for c in changes] == ["start", "update", "end"]


def test_crowd_shorter_than_min_seconds_is_ignored() -> None:
    frames = [(k / FPS, [at(i, 10 * i, 50, k / FPS) for i in (1, 2, 3)] if k < 19 else []) for k in range(40)]
    assert finished(run(camera(CROWD), frames)) == []


def test_class_filter() -> None:
    rule = INTRUSION | {"classes": ["car"]}
    frames = [(k / FPS, [at(1, 50, 50, k / FPS), at(2, 60, 60, k / FPS, label="car")]) for k in range(3)]
    events = finished(run(camera(rule, track=("person", "car")), frames))
    assert [(e["track_id"], e["label"]) for e in events] == [(2, "car")]
