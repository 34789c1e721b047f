"""Selection and schedules on hand-made inputs: when a camera is on the wall, when a rule is on."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from test_rules import INTRUSION, at, camera

from pipeline.config import Schedule, SelectionConfig
from pipeline.engine import CameraRun
from pipeline.events import EventChange
from pipeline.live.selection import Selection

SEOUL = ZoneInfo("Asia/Seoul")


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=SEOUL).timestamp()


@pytest.mark.parametrize(
    ("when", "on"),
    [("2026-11-30 21:59", False), ("2026-11-30 22:00", True), ("2026-12-01 05:59", True), ("2026-12-01 06:00", False),
     ("2026-12-01 23:00", False), ("2026-12-05 23:30", True), ("2026-12-06 05:00", True), ("2026-12-06 23:00", False)],
)
def test_a_window_spanning_midnight(when: str, on: bool) -> None:
    """Mondays and Saturdays 22:00-06:00: the window belongs to the day it opens on."""
    schedule = Schedule.model_validate({"days": ["mon", "sat"], "from": "22:00", "to": "06:00"})
    assert schedule.active(datetime.fromisoformat(when).replace(tzinfo=SEOUL)) is on


def test_a_bad_time_of_day_is_refused() -> None:
    with pytest.raises(ValueError, match="not a time of day"):
        Schedule.model_validate({"from": "25:00", "to": "06:00"})


def test_a_rule_outside_its_schedule_raises_nothing_and_ends_at_the_window() -> None:
    rule = INTRUSION | {"schedule": {"from": "09:00", "to": "18:00"}}
    base = epoch("2026-12-01 17:59:50")  # a person in the zone from 10 s before 18:00 for 20 s
    changes: list[EventChange] = []
    with CameraRun("cam", camera(rule), fps=10, subscribers=[changes.append], timezone="Asia/Seoul") as run:
        for k in range(200):
            t = base + k / 10
            run.apply(t, k, [at(1, 50, 50, t)])
    (end,) = [c.event for c in changes if c.kind == "end"]
    assert end.start == base and abs(end.end - epoch("2026-12-01 18:00:00")) < 0.2  # ended as the window closed
    night = epoch("2026-12-01 19:00:00")
    changes.clear()
    with CameraRun("cam", camera(rule), fps=10, subscribers=[changes.append], timezone="Asia/Seoul") as run:
        for k in range(50):
            run.apply(night + k / 10, k, [at(1, 50, 50, night + k / 10)])
    assert changes == []


def test_replays_ignore_schedules() -> None:
    """Replays time frames from 0 (media seconds): a schedule means nothing there."""
    changes: list[EventChange] = []
    with CameraRun("cam", camera(INTRUSION | {"schedule": {"days": ["mon"]}}), fps=10, subscribers=[changes.append]) as run:
        for k in range(5):
            run.apply(k / 10, k, [at(1, 50, 50, k / 10)])
    assert [c.kind for c in changes] == ["start", "end"]


def test_selection_holds_after_the_event_and_counts_its_share() -> None:
    start = epoch("2026-12-01 12:00:00")
    selection = Selection(SelectionConfig(hold_seconds=30), "Asia/Seoul", start)
    selection.observe(start + 10, 0, set())
    assert not selection.state(start + 10).selected
    selection.observe(start + 20, 1, {"person"})
    state = selection.state(start + 25)
    assert (state.selected, state.reason, state.since) == (True, "event", start + 20)
    selection.observe(start + 40, 0, set())  # the event ended at 40 s
    assert selection.state(start + 60).reason == "hold"
    assert not selection.state(start + 71).selected
    assert selection.state(start + 100).share == pytest.approx(50 / 100, abs=0.02)  # 20..70 s of 100 s


def test_presence_selects_only_inside_its_schedule() -> None:
    cfg = SelectionConfig(hold_seconds=0, presence=["person"], schedule=Schedule.model_validate({"from": "22:00", "to": "06:00"}))
    night, day = epoch("2026-12-01 23:00:00"), epoch("2026-12-01 13:00:00")
    for when, selected in ((night, True), (day, False)):
        selection = Selection(cfg, "Asia/Seoul", when - 60)
        selection.observe(when, 0, {"person"})
        assert selection.state(when + 1).selected is selected
        assert selection.state(when + 1).reason == ("presence" if selected else "")
    selection = Selection(cfg, "Asia/Seoul", night - 60)
    selection.observe(night, 0, {"car"})
    assert not selection.state(night).selected
