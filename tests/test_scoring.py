"""Event-level matching: tolerance edges, duplicates, wrong rules and empty inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.eval.scoring import match_events
from pipeline.formats import read_jsonl


def ev(start: float, end: float | None = None, rule: str = "in", camera: str = "cam") -> dict[str, Any]:
    return {"camera": camera, "rule": rule, "start": start, "end": start if end is None else end}


def test_exact_match() -> None:
    truth = [ev(3.0, 5.0), ev(10.0, 12.0)]
    result = match_events([ev(3.0, 5.0), ev(10.0, 12.0)], truth)
    o = result.overall
    assert (o.tp, o.fp, o.fn, o.precision, o.recall, o.f1) == (2, 0, 0, 1.0, 1.0, 1.0)
    assert (o.mean_delay, o.worst_delay) == (0.0, 0.0)
    assert [m.truth for m in result.matches] == truth


@pytest.mark.parametrize(("start", "matched"), [(8.0, True), (12.0, True), (7.99, False), (12.01, False)])
def test_tolerance_edges(start: float, matched: bool) -> None:
    result = match_events([ev(start)], [ev(10.0)], tolerance=2.0)
    o = result.overall
    assert (o.tp, o.fp, o.fn) == ((1, 0, 0) if matched else (0, 1, 1))
    if matched:
        assert o.mean_delay == o.worst_delay == pytest.approx(start - 10.0)
    else:
        assert o.mean_delay is None and result.false_alarms == [ev(start)] and result.misses == [ev(10.0)]


def test_two_alarms_for_one_event() -> None:
    closer = ev(10.5, 30.0)
    result = match_events([ev(9.0, 14.0), closer], [ev(10.0, 14.0)])
    o = result.overall
    assert (o.tp, o.fp, o.fn, o.precision, o.recall) == (1, 1, 0, 0.5, 1.0)
    assert o.f1 == pytest.approx(2 / 3)
    assert result.false_alarms == [closer]  # overlap decides before closeness


def test_optimal_assignment_does_not_let_one_alarm_steal_two_matches() -> None:
    # Greedy by |delta| would pair 5.0 with 4.0 and leave 2.5 unmatched.
    result = match_events([ev(2.5), ev(5.0)], [ev(4.0), ev(6.5)], tolerance=1.5)
    assert (result.overall.tp, result.overall.fp, result.overall.fn) == (2, 0, 0)
    assert result.overall.worst_delay == pytest.approx(-1.5)


def test_alarm_for_the_wrong_rule() -> None:
    result = match_events([ev(10.0, rule="loiter")], [ev(10.0, rule="in")])
    assert (result.overall.tp, result.overall.fp, result.overall.fn) == (0, 1, 1)
    per = result.per_rule
    assert (per["loiter"].fp, per["loiter"].precision, per["loiter"].recall) == (1, 0.0, 1.0)
    assert (per["in"].fn, per["in"].precision, per["in"].recall, per["in"].f1) == (1, 1.0, 0.0, 0.0)


def test_other_camera_does_not_match() -> None:
    result = match_events([ev(10.0, camera="a")], [ev(10.0, camera="b")])
    assert (result.overall.tp, result.overall.fp, result.overall.fn) == (0, 1, 1)


def test_empty_inputs() -> None:
    result = match_events([], [])
    assert (result.overall.tp, result.overall.fp, result.overall.fn, result.overall.f1) == (0, 0, 0, 1.0)
    assert result.per_rule == {} and result.matches == []
    only_truth = match_events([], [ev(1.0)]).overall
    assert (only_truth.fn, only_truth.recall, only_truth.f1) == (1, 0.0, 0.0)
    only_alarms = match_events([ev(1.0)], []).overall
    assert (only_alarms.fp, only_alarms.precision, only_alarms.f1) == (1, 0.0, 0.0)


def test_load_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(ev(1.0)) + "\n\n" + json.dumps(ev(2.0)) + "\n")
    assert read_jsonl(path) == [ev(1.0), ev(2.0)]
